import CNetlink
#if canImport(Glibc)
import Glibc
#endif

/// A failed netlink or namespace operation: what was being done, to which
/// interface or namespace, and the errno the kernel gave.
public struct NetlinkError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The operation, e.g. `create veth`, `add route`, `setns`.
    public var operation: String
    /// The interface, namespace or object it was applied to.
    public var subject: String
    /// The errno (positive), or 0 when libnl reported a code with no errno.
    public var errno: Int32
    /// libnl's or strerror's text.
    public var reason: String

    public init(operation: String, subject: String, errno: Int32, reason: String) {
        self.operation = operation; self.subject = subject; self.errno = errno; self.reason = reason
    }

    /// From a libnl return code (negative `NLE_*`).
    init(operation: String, subject: String, libnl code: Int32) {
        let nle = abs(code)
        self.init(operation: operation, subject: subject, errno: NetlinkError.errno(forLibnl: nle),
                  reason: String(cString: nl_geterror(nle)))
    }

    /// From the calling thread's errno after a failed system call.
    static func system(_ operation: String, _ subject: String, errno e: Int32 = Glibc.errno) -> NetlinkError {
        NetlinkError(operation: operation, subject: subject, errno: e, reason: String(cString: strerror(e)))
    }

    public var description: String {
        let name = errno != 0 ? NetlinkError.errnoName(errno).map { " (\($0))" } ?? " (errno \(errno))" : ""
        return "\(operation) \(subject): \(reason)\(name)"
    }

    /// libnl folds the kernel's errno into its own codes; map back the ones
    /// that route configuration meets.
    static func errno(forLibnl nle: Int32) -> Int32 {
        switch nle {
        case NLE_INTR: return EINTR
        case NLE_AGAIN: return EAGAIN
        case NLE_NOMEM: return ENOMEM
        case NLE_EXIST: return EEXIST
        case NLE_INVAL: return EINVAL
        case NLE_RANGE: return ERANGE
        case NLE_MSGSIZE: return EMSGSIZE
        case NLE_OPNOTSUPP: return EOPNOTSUPP
        case NLE_AF_NOSUPPORT: return EAFNOSUPPORT
        case NLE_OBJ_NOTFOUND: return ENOENT
        case NLE_NOADDR: return EADDRNOTAVAIL
        case NLE_BUSY: return EBUSY
        case NLE_NOACCESS: return EACCES
        case NLE_PERM: return EPERM
        case NLE_NODEV: return ENODEV
        default: return 0
        }
    }

    static func errnoName(_ e: Int32) -> String? {
        let names: [Int32: String] = [
            EPERM: "EPERM", ENOENT: "ENOENT", EINTR: "EINTR", EAGAIN: "EAGAIN", ENOMEM: "ENOMEM", EACCES: "EACCES",
            EBUSY: "EBUSY", EEXIST: "EEXIST", ENODEV: "ENODEV", EINVAL: "EINVAL", ERANGE: "ERANGE", EMSGSIZE: "EMSGSIZE",
            EOPNOTSUPP: "EOPNOTSUPP", EAFNOSUPPORT: "EAFNOSUPPORT", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENETDOWN: "ENETDOWN",
            ENETUNREACH: "ENETUNREACH", ENOTDIR: "ENOTDIR", EMFILE: "EMFILE", ENOSPC: "ENOSPC",
        ]
        return names[e]
    }
}
