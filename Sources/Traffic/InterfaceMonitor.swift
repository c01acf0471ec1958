import Analysis
import Core
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What one rtnetlink message says about an interface of the node's namespace.
public enum RouteMessage: Hashable, Sendable {
    /// RTM_NEWLINK (or a dump's answer): administrative state (IFF_UP) and carrier (IFF_LOWER_UP).
    case link(index: Int32, name: String?, up: Bool, carrier: Bool)
    /// RTM_DELLINK.
    case linkRemoved(index: Int32, name: String?)
    /// RTM_NEWADDR / RTM_DELADDR (IPv4 and IPv6), the address as text with its prefix length.
    case address(index: Int32, address: String, added: Bool)
}

/// Parses rtnetlink datagrams (netlink(7), rtnetlink(7)): a sequence of
/// `nlmsghdr` + `ifinfomsg`/`ifaddrmsg` + attributes. Untrusted bytes: never traps,
/// stops at the first malformed header, skips malformed attributes.
public enum RouteMessageParser {
    static let newLink: UInt16 = 16, delLink: UInt16 = 17, newAddr: UInt16 = 20, delAddr: UInt16 = 21
    static let nlmsgDone: UInt16 = 3, nlmsgError: UInt16 = 2
    static let iffUp: UInt32 = 0x1, iffLowerUp: UInt32 = 0x10000
    static let iflaIfname: UInt16 = 3, ifaAddress: UInt16 = 1, ifaLocal: UInt16 = 2

    public static func parse(_ bytes: [UInt8]) -> (messages: [RouteMessage], done: Bool) {
        var out: [RouteMessage] = []
        var offset = 0
        var done = false
        while offset + 16 <= bytes.count {
            let length = Int(u32(bytes, offset))
            let type = u16(bytes, offset + 4)
            guard length >= 16, offset + length <= bytes.count else { break }
            let body = offset + 16, end = offset + length
            switch type {
            case newLink, delLink:
                guard end - body >= 16 else { break }
                // ifinfomsg: family, pad, type (u16), index (i32), flags (u32), change (u32).
                let index = Int32(bitPattern: u32(bytes, body + 4))
                let flags = u32(bytes, body + 8)
                var name: String?
                attributes(bytes, from: body + 16, to: end) { kind, value in
                    if kind == iflaIfname { name = String(decoding: value.prefix { $0 != 0 }, as: UTF8.self) }
                }
                out.append(type == newLink
                           ? .link(index: index, name: name, up: flags & iffUp != 0, carrier: flags & iffLowerUp != 0)
                           : .linkRemoved(index: index, name: name))
            case newAddr, delAddr:
                guard end - body >= 8 else { break }
                // ifaddrmsg: family, prefix length, flags, scope, index (u32).
                let family = bytes[body], prefix = bytes[body + 1]
                let index = Int32(bitPattern: u32(bytes, body + 4))
                var local: [UInt8]?, address: [UInt8]?
                attributes(bytes, from: body + 8, to: end) { kind, value in
                    if kind == ifaLocal { local = value } else if kind == ifaAddress { address = value }
                }
                // IFA_LOCAL is the interface's own address on point-to-point links; IFA_ADDRESS otherwise.
                if let raw = local ?? address, let text = addressText(family: family, raw) {
                    out.append(.address(index: index, address: "\(text)/\(prefix)", added: type == newAddr))
                }
            case Self.nlmsgDone, Self.nlmsgError:
                done = true
            default: break
            }
            offset += (length + 3) & ~3
        }
        return (out, done)
    }

    static func attributes(_ bytes: [UInt8], from start: Int, to end: Int, _ visit: (UInt16, [UInt8]) -> Void) {
        var a = start
        while a + 4 <= end {
            let len = Int(u16(bytes, a)), kind = u16(bytes, a + 2) & 0x3fff
            guard len >= 4, a + len <= end else { return }
            visit(kind, Array(bytes[(a + 4)..<(a + len)]))
            a += (len + 3) & ~3
        }
    }

    static func addressText(family: UInt8, _ raw: [UInt8]) -> String? {
        switch (Int32(family), raw.count) {
        case (AF_INET, 4): return raw.map(String.init).joined(separator: ".")
        case (AF_INET6, 16):
            return stride(from: 0, to: 16, by: 2).map { String(UInt16(raw[$0]) << 8 | UInt16(raw[$0 + 1]), radix: 16) }
                .joined(separator: ":")
        default: return nil
        }
    }

    static func u16(_ b: [UInt8], _ i: Int) -> UInt16 { UInt16(b[i]) | UInt16(b[i + 1]) << 8 }
    static func u32(_ b: [UInt8], _ i: Int) -> UInt32 {
        UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }
}

/// The interfaces of a namespace as last seen, turning rtnetlink messages into
/// `interface` events (docs/LOGS.md) for what changed. The first sight of an
/// interface (the dump at start, or a new one) logs nothing for its state; a
/// new interface that is already up or has carrier logs those as changes.
public struct InterfaceTracker: Sendable {
    struct State: Sendable { var name: String; var up: Bool; var carrier: Bool }
    var interfaces: [Int32: State] = [:]
    var addresses: [Int32: Set<String>] = [:]
    /// Still reading the initial dump: record, do not log.
    public var seeding = true

    public init() {}

    public mutating func apply(_ message: RouteMessage) -> [EventBody] {
        switch message {
        case let .link(index, name, up, carrier):
            let old = interfaces[index]
            let n = name ?? old?.name ?? "if\(index)"
            interfaces[index] = State(name: n, up: up, carrier: carrier)
            if seeding { return [] }
            // Carrier goes before the link goes down, and comes after it is up.
            let wasUp = old?.up ?? false, hadCarrier = old?.carrier ?? false
            var events: [EventBody] = []
            if hadCarrier, !carrier { events.append(.interface(name: n, change: .carrierDown, address: nil)) }
            if up != wasUp { events.append(.interface(name: n, change: up ? .linkUp : .linkDown, address: nil)) }
            if !hadCarrier, carrier { events.append(.interface(name: n, change: .carrierUp, address: nil)) }
            return events
        case let .linkRemoved(index, name):
            let old = interfaces.removeValue(forKey: index)
            addresses.removeValue(forKey: index)
            guard !seeding, let old else { return [] }
            var events: [EventBody] = []
            if old.carrier { events.append(.interface(name: name ?? old.name, change: .carrierDown, address: nil)) }
            if old.up { events.append(.interface(name: name ?? old.name, change: .linkDown, address: nil)) }
            return events
        case let .address(index, address, added):
            let changed = added ? addresses[index, default: []].insert(address).inserted
                                : addresses[index]?.remove(address) != nil
            guard changed, !seeding else { return [] }
            return [.interface(name: interfaces[index]?.name ?? "if\(index)", change: added ? .addressAdded : .addressRemoved,
                               address: address)]
        }
    }
}

/// Follows link, carrier and address changes of the namespace this process
/// runs in (rtnetlink multicast groups) and logs them as `interface` events,
/// so that kernel-stack runs show what the emulator's `carrier` coverage loss
/// did to the node. One thread; `stop()` ends it within its poll interval.
public final class InterfaceMonitor: @unchecked Sendable {
    private let fd: Int32
    private let log: EventLogWriter
    private let lock = NSLock()
    private var stopping = false
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)

    // rtnetlink(7): RTMGRP_LINK, RTMGRP_IPV4_IFADDR, RTMGRP_IPV6_IFADDR.
    static let groups: UInt32 = 0x1 | 0x10 | 0x100
    static let getLink: UInt16 = 18, getAddr: UInt16 = 22
    static let requestFlags: UInt16 = 0x1 | 0x300 // NLM_F_REQUEST | NLM_F_DUMP

    /// Opens the socket and subscribes; reads the namespace's current interfaces
    /// and addresses (logging nothing for them), then starts following changes.
    public init(log: EventLogWriter) throws {
        self.log = log
        let s = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0 /* NETLINK_ROUTE */)
        guard s >= 0 else { throw SocketError(operation: "netlink socket", context: "rtnetlink", errno: errno) }
        fd = s
        // struct sockaddr_nl: family, pad, pid (0: the kernel assigns), groups.
        var address = [UInt8](repeating: 0, count: 12)
        address[0] = UInt8(AF_NETLINK & 0xff)
        withUnsafeBytes(of: Self.groups.littleEndian) { for (i, b) in $0.enumerated() { address[8 + i] = b } }
        let bound = address.withUnsafeBytes { bind(s, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12) }
        guard bound == 0 else {
            let e = errno
            close(s)
            throw SocketError(operation: "bind netlink socket", context: "rtnetlink groups", errno: e)
        }
        var tv = timeval(tv_sec: 0, tv_usec: 200_000)
        _ = setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    public func start() {
        let t = Thread { [self] in
            var tracker = InterfaceTracker()
            // Seed from dumps, one at a time (the kernel answers one dump per socket at once).
            for (seq, type) in [(1, Self.getLink), (2, Self.getAddr)] {
                guard request(type: type, sequence: UInt32(seq)) else { continue }
                var done = false
                while !done, !isStopping {
                    guard let bytes = receive() else { break }
                    let parsed = RouteMessageParser.parse(bytes)
                    for m in parsed.messages { _ = tracker.apply(m) }
                    done = parsed.done
                }
            }
            tracker.seeding = false
            while !isStopping {
                guard let bytes = receive() else { continue }
                for m in RouteMessageParser.parse(bytes).messages {
                    for body in tracker.apply(m) { log.log(body) }
                }
            }
            finished.signal()
        }
        thread = t
        t.start()
    }

    /// Ends the thread and waits for it (at most its 200 ms poll).
    public func stop() {
        lock.lock()
        let wasRunning = !stopping && thread != nil
        stopping = true
        lock.unlock()
        if wasRunning { finished.wait() }
    }

    private var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    /// A dump request: nlmsghdr + rtgenmsg (family unspecified).
    private func request(type: UInt16, sequence: UInt32) -> Bool {
        var m = [UInt8](repeating: 0, count: 20)
        func put32(_ v: UInt32, _ at: Int) { for i in 0..<4 { m[at + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) } }
        put32(20, 0)
        m[4] = UInt8(type & 0xff); m[5] = UInt8(type >> 8)
        m[6] = UInt8(Self.requestFlags & 0xff); m[7] = UInt8(Self.requestFlags >> 8)
        put32(sequence, 8)
        m[16] = UInt8(AF_UNSPEC)
        return m.withUnsafeBytes { send(fd, $0.baseAddress, 20, 0) } == 20
    }

    /// One datagram, or nil after the poll interval (or an error such as ENOBUFS
    /// when the kernel dropped notifications; the next ones still arrive).
    private func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return nil }
        return Array(buffer[0..<n])
    }
}
