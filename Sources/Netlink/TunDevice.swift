#if canImport(Glibc)
import Glibc
#endif

/// Persistent TUN devices (linux/if_tun.h), made by the testbed so that routes
/// can point at them before the Swift stack attaches: the stack later opens the
/// same name with `TUNSETIFF` (IFF_TUN | IFF_NO_PI) and reads and writes its
/// packets. Until then the device is up without carrier and drops what is
/// routed to it. The device goes away with its namespace.
public enum TunDevice {
    /// `_IOW('T', 202, int)` and friends from linux/if_tun.h.
    static let setInterface: UInt = 0x4004_54ca
    static let setPersistent: UInt = 0x4004_54cb
    static let setInterfaceIndex: UInt = 0x4004_54da
    /// IFF_TUN and IFF_NO_PI: IP packets without the 4-byte packet-information header.
    public static let flags: Int16 = 0x0001 | 0x1000
    /// struct ifreq: a 16-byte name, then a 24-byte union whose first member here is the flags.
    static let ifreqSize = 40

    /// Creates a persistent TUN device `name` in the calling thread's network
    /// namespace, with interface index `index` (0: the kernel picks). Call it on
    /// a `NamespaceThread` inside the namespace (`NetworkNamespace.run`).
    public static func createPersistent(name: String, index: Int32 = 0, namespace: String = "host") throws {
        let utf8 = Array(name.utf8)
        guard (1...15).contains(utf8.count) else {
            throw NetlinkError.system("create TUN device", "'\(name)' (namespace \(namespace)): names are 1 to 15 bytes;", errno: EINVAL)
        }
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError.system("open /dev/net/tun for", name) }
        defer { close(fd) }
        if index > 0 {
            var wanted = UInt32(index)
            guard ioctl(fd, setInterfaceIndex, &wanted) == 0 else { throw NetlinkError.system("set TUN interface index \(index) of", name) }
        }
        var request = [UInt8](repeating: 0, count: ifreqSize)
        for (i, b) in utf8.enumerated() { request[i] = b }
        request.withUnsafeMutableBytes { $0.storeBytes(of: flags, toByteOffset: 16, as: Int16.self) }
        guard request.withUnsafeMutableBytes({ ioctl(fd, setInterface, $0.baseAddress!) }) == 0 else {
            throw NetlinkError.system("create TUN device", "\(name) (namespace \(namespace))")
        }
        guard ioctl(fd, setPersistent, CInt(1)) == 0 else { throw NetlinkError.system("make TUN device persistent:", name) }
    }
}

extension TunDevice {
    /// Opens the existing TUN device `name` of the calling thread's namespace
    /// for reading and writing packets (no packet-information header); the
    /// caller owns the descriptor. Call it inside the namespace.
    public static func attach(name: String, nonBlocking: Bool = false) throws -> Int32 {
        let fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | (nonBlocking ? O_NONBLOCK : 0))
        guard fd >= 0 else { throw NetlinkError.system("open /dev/net/tun for", name) }
        var request = [UInt8](repeating: 0, count: ifreqSize)
        for (i, b) in name.utf8.prefix(15).enumerated() { request[i] = b }
        request.withUnsafeMutableBytes { $0.storeBytes(of: flags, toByteOffset: 16, as: Int16.self) }
        guard request.withUnsafeMutableBytes({ ioctl(fd, setInterface, $0.baseAddress!) }) == 0 else {
            let e = errno
            close(fd)
            throw NetlinkError.system("attach to TUN device", name, errno: e)
        }
        return fd
    }
}
