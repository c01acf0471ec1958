import Convert
#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 address and port.
public struct IPv4Endpoint: Hashable, Sendable, CustomStringConvertible {
    public var address: UInt32
    public var port: UInt16

    public init(address: UInt32, port: UInt16) { self.address = address; self.port = port }

    /// Reads `198.18.0.1:5000`; nil when it is not a dotted quad and a port.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else { return nil }
        let octets = parts[0].split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var v: UInt32 = 0
        for o in octets {
            guard let b = UInt8(o), String(b) == o else { return nil }
            v = v << 8 | UInt32(b)
        }
        address = v
        self.port = port
    }

    /// In 198.18.0.0/15 (RFC 2544), the only range Wayside sends to.
    public var isTestbedAddress: Bool { address & 0xFFFE_0000 == 0xC612_0000 }

    public var host: String { "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)" }
    public var description: String { "\(host):\(port)" }

    var sockaddr: sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = address.bigEndian
        return sa
    }

    init(_ sa: sockaddr_in) {
        address = UInt32(bigEndian: sa.sin_addr.s_addr)
        port = UInt16(bigEndian: sa.sin_port)
    }

    public var convertDestination: ConvertDestination { ConvertDestination(ipv4: address, port: port) }
}

/// A failed system call: which, on what, and the errno.
public struct ConverterSocketError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var context: String
    public var errno: Int32
    public var description: String { "\(operation) \(context): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// Which transport a kernel socket uses.
public enum KernelTransport: Sendable {
    /// `IPPROTO_MPTCP` (262, linux/in.h; Glibc does not export it): kernel Multipath TCP.
    case mptcp
    case tcp

    var socketProtocol: Int32 { self == .mptcp ? 262 : Int32(IPPROTO_TCP) }
}

/// A byte stream between the converter's two sides: what a relay reads and writes.
/// Implementations: `StreamSocket` (a kernel TCP or MPTCP socket); the Swift
/// stack's connection joins through an adapter (docs/CONVERTER.md).
public protocol ByteStream: AnyObject, Sendable {
    /// A descriptor that polls readable when `read` would not block (data, end of
    /// stream or error) and writable when `writeSome` would take bytes; nil for a
    /// stream that only blocks (the Swift stack's `StackSocket`): its `read` and
    /// `writeSome` may block, and `abort` must wake them.
    var pollDescriptor: Int32? { get }
    /// As many of `bytes` as fit now without blocking; 0 when none do. A stream
    /// without a poll descriptor blocks until it took them all.
    func writeSome(_ bytes: UnsafeRawBufferPointer) throws -> Int
    /// Up to `buffer.count` bytes; 0 at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws
    /// Half-close: no more bytes from this side (FIN, or DATA_FIN over MPTCP).
    func shutdownWrite()
    /// Close so that the peer sees a reset rather than an orderly end.
    func abort()
    /// Orderly close; a no-op after `abort` or a first `close`.
    func close()
}

extension ByteStream {
    public func writeAll(_ bytes: [UInt8]) throws { try bytes.withUnsafeBytes { try writeAll($0) } }
}

/// A blocking kernel stream socket. One relay direction reads it while the
/// other writes it; closing is guarded so a descriptor number is never closed twice.
public final class StreamSocket: ByteStream, @unchecked Sendable {
    public let fd: Int32
    private let lock = Mutex()
    private var closed = false

    init(fd: Int32) { self.fd = fd }
    deinit { close() }

    public var pollDescriptor: Int32? { fd }

    static func check(_ r: Int32, _ op: String, _ context: String) throws {
        if r < 0 { throw ConverterSocketError(operation: op, context: context, errno: errno) }
    }

    static func make(_ transport: KernelTransport) throws -> StreamSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), transport.socketProtocol)
        try check(fd, "socket", transport == .mptcp ? "(IPPROTO_MPTCP)" : "(TCP)")
        return StreamSocket(fd: fd)
    }

    /// A listening socket; `transparent` would need IP_TRANSPARENT and is not used:
    /// nftables `redirect` keeps the original destination for SO_ORIGINAL_DST.
    public static func listen(_ transport: KernelTransport, on endpoint: IPv4Endpoint, backlog: Int32 = 128) throws -> StreamSocket {
        let s = try make(transport)
        var one: Int32 = 1
        _ = setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sa = endpoint.sockaddr
        try check(withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, "bind", "to \(endpoint)")
        try check(Glibc.listen(s.fd, backlog), "listen", "on \(endpoint)")
        return s
    }

    /// Waits up to `timeoutMilliseconds` for a connection; nil on timeout (so the
    /// caller can look at its stop flag).
    public func accept(timeoutMilliseconds: Int32) throws -> StreamSocket? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        let r = poll(&p, 1, timeoutMilliseconds)
        if r == 0 || (r < 0 && errno == EINTR) { return nil }
        try Self.check(r, "poll", "(accept)")
        let c = Glibc.accept(fd, nil, nil)
        if c < 0 {
            // The connection may have been reset between poll and accept.
            if [EAGAIN, ECONNABORTED, EINTR, EPROTO].contains(errno) { return nil }
            throw ConverterSocketError(operation: "accept", context: "", errno: errno)
        }
        _ = fcntl(c, F_SETFD, FD_CLOEXEC)
        return StreamSocket(fd: c)
    }

    /// A blocking connect; the error's errno says refused (ECONNREFUSED), unreachable, timed out.
    public static func connect(_ transport: KernelTransport, to endpoint: IPv4Endpoint, mark: UInt32? = nil) throws -> StreamSocket {
        let s = try make(transport)
        if var m = mark {
            try check(setsockopt(s.fd, SOL_SOCKET, SO_MARK, &m, socklen_t(MemoryLayout<UInt32>.size)), "setsockopt", "SO_MARK")
        }
        var sa = endpoint.sockaddr
        while true {
            let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if r == 0 { return s }
            if errno == EINTR { continue }
            throw ConverterSocketError(operation: "connect", context: "to \(endpoint)", errno: errno)
        }
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw ConverterSocketError(operation: "recv", context: "", errno: errno)
        }
    }

    /// Bytes already waiting, without blocking (for data that rides with the Convert message).
    public func readAvailable(max: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: max)
        let n = out.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, Int32(MSG_DONTWAIT)) }
        return n > 0 ? Array(out[..<n]) : []
    }

    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 { done += n; continue }
            if n < 0 && errno == EINTR { continue }
            throw ConverterSocketError(operation: "send", context: "", errno: n < 0 ? errno : EPIPE)
        }
    }

    public func writeSome(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        while true {
            let n = send(fd, bytes.baseAddress!, bytes.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK { return 0 }
            throw ConverterSocketError(operation: "send", context: "", errno: errno)
        }
    }

    /// SO_RCVTIMEO: a read blocks at most this long (0: for ever).
    public func setReceiveTimeout(milliseconds: Int) {
        var tv = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func shutdownWrite() {
        lock.locked { if !closed { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) } }
    }

    /// SO_LINGER with a zero timeout makes close send a RST (RFC 9293 §3.10.7.1 abort).
    public func abort() {
        lock.locked {
            guard !closed else { return }
            var l = linger(l_onoff: 1, l_linger: 0)
            _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, socklen_t(MemoryLayout<linger>.size))
            closed = true
            _ = Glibc.close(fd)
        }
    }

    public func close() {
        lock.locked {
            if !closed { closed = true; _ = Glibc.close(fd) }
        }
    }

    public var localEndpoint: IPv4Endpoint? { endpoint(getsockname) }
    public var remoteEndpoint: IPv4Endpoint? { endpoint(getpeername) }

    private func endpoint(_ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> IPv4Endpoint? {
        var sa = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &len) } }
        return r == 0 && sa.sin_family == sa_family_t(AF_INET) ? IPv4Endpoint(sa) : nil
    }

    /// SO_ORIGINAL_DST (80 at SOL_IP, linux/netfilter_ipv4.h): where a connection
    /// that nftables redirected to this listener was going before the NAT.
    public func originalDestination() throws -> IPv4Endpoint {
        var sa = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &sa) { getsockopt(fd, Int32(SOL_IP), 80, $0, &len) }
        try Self.check(r, "getsockopt", "SO_ORIGINAL_DST")
        return IPv4Endpoint(sa)
    }
}

/// A pthread mutex, for state shared by a connection's two relay threads.
final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}
