import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which kernel socket the traffic applications use.
public enum SocketKind: String, Sendable, CaseIterable {
    /// `socket(AF_INET, SOCK_STREAM, IPPROTO_MPTCP)`: Linux kernel MPTCP (falls back to TCP if the peer does not speak it).
    case kernelMPTCP = "kernel-mptcp"
    /// Plain TCP.
    case kernelTCP = "kernel-tcp"

    /// `IPPROTO_MPTCP` from linux/in.h (not exported by Glibc's headers).
    public static let ipprotoMPTCP: Int32 = 262
    var socketProtocol: Int32 { self == .kernelMPTCP ? SocketKind.ipprotoMPTCP : Int32(IPPROTO_TCP) }
}

/// A failed system call: which, on what, and the errno.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var context: String
    public var errno: Int32
    public var description: String { "\(operation) \(context): \(String(cString: strerror(errno))) (errno \(errno))" }
}

/// An IPv4 address and port inside the testbed's range.
public struct SocketAddress: Hashable, Sendable, CustomStringConvertible {
    public var host: String
    public var port: UInt16

    public init(host: String, port: UInt16) { self.host = host; self.port = port }

    /// Reads `198.18.0.1:5000`. Only 198.18.0.0/15 (RFC 2544) is accepted:
    /// Wayside sends traffic nowhere else.
    public static func parse(_ text: String) throws -> SocketAddress {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let port = UInt16(parts[1]) else {
            throw AddressError(text: text, expected: "ADDRESS:PORT, e.g. 198.18.0.1:5000")
        }
        let host = String(parts[0])
        guard let a = ipv4(host) else { throw AddressError(text: text, expected: "an IPv4 address, e.g. 198.18.0.1:5000") }
        guard a & 0xFFFE_0000 == 0xC612_0000 else {
            throw AddressError(text: text, expected: "an address in 198.18.0.0/15, the testbed's range")
        }
        return SocketAddress(host: host, port: port)
    }

    /// Reads a listening address: one in 198.18.0.0/15, or `0.0.0.0:PORT` —
    /// every address of the node, so that MPTCP joins (RFC 8684 §3.2) sent to
    /// the node's other addresses find the listener. Listening sends nothing.
    public static func parseListening(_ text: String) throws -> SocketAddress {
        if text.hasPrefix("0.0.0.0:"), let port = UInt16(text.dropFirst(8)) { return SocketAddress(host: "0.0.0.0", port: port) }
        return try parse(text)
    }

    public static func isIPv4(_ s: String) -> Bool { ipv4(s) != nil }

    static func ipv4(_ s: String) -> UInt32? {
        let octets = s.split(separator: ".", omittingEmptySubsequences: false)
        guard octets.count == 4 else { return nil }
        var v: UInt32 = 0
        for o in octets {
            guard let b = UInt8(o), String(b) == o else { return nil }
            v = v << 8 | UInt32(b)
        }
        return v
    }

    var sockaddr: sockaddr_in {
        var sa = sockaddr_in()
        sa.sin_family = sa_family_t(AF_INET)
        sa.sin_port = port.bigEndian
        sa.sin_addr.s_addr = (SocketAddress.ipv4(host) ?? 0).bigEndian
        return sa
    }

    init(_ sa: sockaddr_in) {
        let a = UInt32(bigEndian: sa.sin_addr.s_addr)
        host = "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
        port = UInt16(bigEndian: sa.sin_port)
    }

    public var description: String { "\(host):\(port)" }
}

public struct AddressError: Error, CustomStringConvertible, Sendable {
    public var text: String
    public var expected: String
    public var description: String { "cannot read '\(text)': expected \(expected)" }
}

/// A blocking kernel stream socket. Each application drives one from its own
/// thread; `shutdown` from another thread unblocks a read, write or accept.
public final class KernelSocket: @unchecked Sendable {
    public let fd: Int32
    public let kind: SocketKind
    private let closeLock = NSLock()
    private var closed = false

    init(fd: Int32, kind: SocketKind) { self.fd = fd; self.kind = kind }

    deinit { close() }

    static func check(_ r: Int32, _ op: String, _ context: String) throws {
        if r < 0 { throw SocketError(operation: op, context: context, errno: errno) }
    }

    static func make(_ kind: SocketKind) throws -> KernelSocket {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), kind.socketProtocol)
        try check(fd, "socket", "(\(kind.rawValue))")
        return KernelSocket(fd: fd, kind: kind)
    }

    public static func listen(_ kind: SocketKind, on address: SocketAddress) throws -> KernelSocket {
        let s = try make(kind)
        var one: Int32 = 1
        _ = setsockopt(s.fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var sa = address.sockaddr
        try check(withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(s.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, "bind", "to \(address)")
        try check(Glibc.listen(s.fd, 16), "listen", "on \(address)")
        return s
    }

    public func accept() throws -> KernelSocket {
        while true {
            let c = Glibc.accept(fd, nil, nil)
            if c >= 0 {
                _ = fcntl(c, F_SETFD, FD_CLOEXEC)
                return KernelSocket(fd: c, kind: kind)
            }
            if errno == EINTR { continue }
            throw SocketError(operation: "accept", context: "", errno: errno)
        }
    }

    /// Connects, retrying while the server is not listening yet or the path is
    /// not up, until `deadline` (CLOCK_MONOTONIC ns).
    public static func connect(_ kind: SocketKind, to address: SocketAddress, from local: SocketAddress?,
                               retryUntil deadline: Int64, shouldStop: () -> Bool) throws -> KernelSocket {
        while true {
            let s = try make(kind)
            if let local {
                var la = local.sockaddr
                try check(withUnsafePointer(to: &la) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(s.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }, "bind", "to \(local)")
            }
            var sa = address.sockaddr
            let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(s.fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
            if r == 0 { return s }
            let e = errno
            let retryable = [ECONNREFUSED, ENETUNREACH, EHOSTUNREACH, ETIMEDOUT, EINTR].contains(e)
            guard retryable, RunClock.monotonicNanoseconds() < deadline, !shouldStop() else {
                throw SocketError(operation: "connect", context: "to \(address)", errno: e)
            }
            s.close()
            usleep(50_000)
        }
    }

    /// Reads up to `buffer.count` bytes; 0 at the end of the stream.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw SocketError(operation: "recv", context: "", errno: errno)
        }
    }

    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        var done = 0
        while done < bytes.count {
            let n = send(fd, bytes.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
            if n > 0 { done += n; continue }
            if n < 0 && errno == EINTR { continue }
            throw SocketError(operation: "send", context: "", errno: n < 0 ? errno : EPIPE)
        }
    }

    public func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }

    /// A no-op once closed: the descriptor number may already belong to another socket.
    public func shutdown(_ how: Int32) {
        closeLock.lock()
        defer { closeLock.unlock() }
        if !closed { _ = Glibc.shutdown(fd, how) }
    }

    public func close() {
        closeLock.lock()
        defer { closeLock.unlock() }
        if !closed { closed = true; _ = Glibc.close(fd) }
    }

    public var localAddress: SocketAddress? { address(getsockname) }
    public var remoteAddress: SocketAddress? { address(getpeername) }

    private func address(_ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32) -> SocketAddress? {
        var sa = sockaddr_in()
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let r = withUnsafeMutablePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &len) } }
        return r == 0 && sa.sin_family == sa_family_t(AF_INET) ? SocketAddress(sa) : nil
    }

    // MARK: Kernel MPTCP introspection (linux/mptcp.h)

    static let solMPTCP: Int32 = 284
    static let mptcpInfo: Int32 = 1
    static let mptcpSubflowAddrs: Int32 = 3

    /// Whether the connection fell back to TCP (MPTCP_INFO_FLAG_FALLBACK), or nil when the kernel does not say.
    public func mptcpFellBack() -> Bool? {
        guard kind == .kernelMPTCP else { return nil }
        // struct mptcp_info: flags (u32) at offset 8.
        var info = [UInt8](repeating: 0, count: 64)
        var len = socklen_t(info.count)
        let r = info.withUnsafeMutableBytes { getsockopt(fd, KernelSocket.solMPTCP, KernelSocket.mptcpInfo, $0.baseAddress, &len) }
        // A fallen-back socket refuses MPTCP_INFO on some kernels.
        if r < 0 { return errno == EOPNOTSUPP ? true : nil }
        guard len >= 12 else { return nil }
        let flags = info.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self) }
        return flags & 1 != 0
    }

    static let mptcpTCPInfo: Int32 = 2
    /// struct tcp_info up to and including tcpi_bytes_received (linux/tcp.h).
    static let tcpInfoPrefix = 136
    static let bytesAckedOffset = 120, bytesReceivedOffset = 128

    /// (bytes acked, bytes received) of each subflow, in the kernel's subflow order
    /// (MPTCP_TCPINFO), or of the one TCP connection (TCP_INFO).
    public func subflowCounters() -> [(acked: Int64, received: Int64)]? {
        func counters(_ raw: UnsafeRawBufferPointer, at base: Int) -> (acked: Int64, received: Int64) {
            (Int64(bitPattern: raw.loadUnaligned(fromByteOffset: base + KernelSocket.bytesAckedOffset, as: UInt64.self)),
             Int64(bitPattern: raw.loadUnaligned(fromByteOffset: base + KernelSocket.bytesReceivedOffset, as: UInt64.self)))
        }
        if kind == .kernelTCP || subflowAddresses() == nil {
            var info = [UInt8](repeating: 0, count: KernelSocket.tcpInfoPrefix)
            var len = socklen_t(info.count)
            let r = info.withUnsafeMutableBytes { getsockopt(fd, Int32(IPPROTO_TCP), TCP_INFO, $0.baseAddress, &len) }
            guard r == 0, Int(len) >= KernelSocket.tcpInfoPrefix else { return nil }
            return info.withUnsafeBytes { [counters($0, at: 0)] }
        }
        let element = KernelSocket.tcpInfoPrefix, maxSubflows = 8
        var buffer = [UInt8](repeating: 0, count: 16 + element * maxSubflows)
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(16), toByteOffset: 0, as: UInt32.self)        // size_subflow_data
            raw.storeBytes(of: UInt32(element), toByteOffset: 12, as: UInt32.self)  // size_user
        }
        var len = socklen_t(buffer.count)
        let r = buffer.withUnsafeMutableBytes { getsockopt(fd, KernelSocket.solMPTCP, KernelSocket.mptcpTCPInfo, $0.baseAddress, &len) }
        guard r == 0 else { return nil }
        return buffer.withUnsafeBytes { raw in
            let count = Int(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let sizeUser = Int(raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            guard sizeUser >= element else { return [] }
            return (0..<min(count, maxSubflows)).map { counters(raw, at: 16 + $0 * sizeUser) }
        }
    }

    /// The (local, remote) address of every live subflow (MPTCP_SUBFLOW_ADDRS),
    /// or nil when the kernel refuses (fallback, plain TCP). Subflows being torn
    /// down (port 0) are left out.
    public func subflowAddresses() -> [(local: SocketAddress, remote: SocketAddress)]? {
        rawSubflowAddresses()?.compactMap { $0 }
    }

    /// Every entry in the kernel's order; nil entries are not (or no longer) usable IPv4 subflows.
    func rawSubflowAddresses() -> [(local: SocketAddress, remote: SocketAddress)?]? {
        guard kind == .kernelMPTCP else { return nil }
        // struct mptcp_subflow_data (16 bytes) then up to 8 struct mptcp_subflow_addrs
        // (two 128-byte __kernel_sockaddr_storage unions each).
        let element = 256, maxSubflows = 8
        var buffer = [UInt8](repeating: 0, count: 16 + element * maxSubflows)
        buffer.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: UInt32(16), toByteOffset: 0, as: UInt32.self)        // size_subflow_data
            raw.storeBytes(of: UInt32(element), toByteOffset: 12, as: UInt32.self)  // size_user
        }
        var len = socklen_t(buffer.count)
        let r = buffer.withUnsafeMutableBytes { getsockopt(fd, KernelSocket.solMPTCP, KernelSocket.mptcpSubflowAddrs, $0.baseAddress, &len) }
        guard r == 0 else { return nil }
        return buffer.withUnsafeBytes { raw -> [(local: SocketAddress, remote: SocketAddress)?] in
            let count = Int(raw.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
            let sizeUser = Int(raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
            guard sizeUser >= element else { return [] }
            return (0..<min(count, maxSubflows)).map { i in
                let base = 16 + i * sizeUser
                let l = raw.loadUnaligned(fromByteOffset: base, as: sockaddr_in.self)
                let rm = raw.loadUnaligned(fromByteOffset: base + 128, as: sockaddr_in.self)
                // A subflow being torn down reports port 0; it is no longer usable.
                guard l.sin_family == sa_family_t(AF_INET), l.sin_port != 0, rm.sin_port != 0 else { return nil }
                return (SocketAddress(l), SocketAddress(rm))
            }
        }
    }
}
