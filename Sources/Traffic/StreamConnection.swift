import Core
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Which half of a connection to close.
public enum StreamShutdown: Sendable {
    /// Our sending side: FIN, or DATA_FIN over MPTCP (RFC 8684 §3.3.3). Reads go on.
    case write
    /// Both sides: also unblocks a read, write or accept waiting on another thread.
    case both
}

/// Counters of one subflow (or of the one TCP connection), as TCP_INFO gives them.
public struct SubflowCounters: Hashable, Sendable {
    public var bytesAcked: Int64
    public var bytesReceived: Int64
    public init(bytesAcked: Int64, bytesReceived: Int64) { self.bytesAcked = bytesAcked; self.bytesReceived = bytesReceived }
}

/// One live subflow of an MPTCP connection.
public struct StreamSubflow: Sendable {
    public var local: SocketAddress
    public var remote: SocketAddress
    /// Nil when the counters could not be read consistently with the addresses.
    public var counters: SubflowCounters?
    public init(local: SocketAddress, remote: SocketAddress, counters: SubflowCounters?) {
        self.local = local; self.remote = remote; self.counters = counters
    }
}

/// A connected byte stream the traffic applications run over: a kernel socket
/// (`KernelSocket`) or the Swift stack's socket. Calls block the calling thread
/// (each application runs on its own); `shutdown(.both)` from another thread
/// unblocks them. Errors are `SocketError`s, with `EPIPE`/`ECONNRESET` for a
/// connection the peer ended.
public protocol StreamConnection: AnyObject, Sendable {
    /// Reads up to `buffer.count` bytes; 0 at the end of the stream.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Returns once every byte is handed to the transport.
    func writeAll(_ bytes: UnsafeRawBufferPointer) throws
    /// A no-op once closed.
    func shutdown(_ how: StreamShutdown)
    func close()
    /// How long a read may wait before it returns 0 (used only to drain a
    /// closing connection); nil waits for ever.
    func setReadTimeout(_ timeout: Interval?)

    var localAddress: SocketAddress? { get }
    var remoteAddress: SocketAddress? { get }
    /// True when the connection runs MPTCP, false for plain TCP or fallback
    /// (RFC 8684 §3.7), nil when the transport cannot tell.
    func multipathInUse() -> Bool?
    /// The live subflows, or nil when the connection is one TCP connection
    /// (plain TCP, fallback): then `singlePathCounters()` describes it.
    func subflows() -> [StreamSubflow]?
    func singlePathCounters() -> SubflowCounters?
}

extension StreamConnection {
    public func writeAll(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll($0) }
    }
}

/// Accepts connections on one port.
public protocol StreamListener: AnyObject, Sendable {
    func acceptConnection() throws -> any StreamConnection
    /// Unblocks an `accept` waiting on another thread; later accepts fail.
    func shutdown()
    func close()
}

/// Where a node's connections come from: kernel sockets of one kind, or the
/// Swift stack running in the node process.
public protocol StreamTransport: Sendable {
    /// Recorded in logs and results: `kernel-mptcp`, `kernel-tcp`, `swift`.
    var name: String { get }
    func listen(on address: SocketAddress) throws -> any StreamListener
    /// Connects, retrying while the server is not listening yet or the path is
    /// not up, until `deadline` (CLOCK_MONOTONIC ns) or `shouldStop()`.
    func connect(to address: SocketAddress, from local: SocketAddress?, retryUntil deadline: Int64,
                 shouldStop: @escaping () -> Bool) throws -> any StreamConnection
}

/// Kernel sockets: `IPPROTO_MPTCP` or plain TCP.
public struct KernelTransport: StreamTransport {
    public var kind: SocketKind
    public init(_ kind: SocketKind) { self.kind = kind }
    public var name: String { kind.rawValue }

    public func listen(on address: SocketAddress) throws -> any StreamListener {
        try KernelSocket.listen(kind, on: address)
    }

    public func connect(to address: SocketAddress, from local: SocketAddress?, retryUntil deadline: Int64,
                        shouldStop: @escaping () -> Bool) throws -> any StreamConnection {
        try KernelSocket.connect(kind, to: address, from: local, retryUntil: deadline, shouldStop: shouldStop)
    }
}

extension KernelSocket: StreamConnection, StreamListener {
    public func acceptConnection() throws -> any StreamConnection { try accept() }

    public func shutdown(_ how: StreamShutdown) {
        shutdown(how == .write ? Int32(SHUT_WR) : Int32(SHUT_RDWR))
    }

    public func shutdown() { shutdown(Int32(SHUT_RDWR)) }

    public func setReadTimeout(_ timeout: Interval?) {
        let us = timeout.map { max(0, $0.nanoseconds / 1000) } ?? 0
        var tv = timeval(tv_sec: Int(us / 1_000_000), tv_usec: Int(us % 1_000_000))
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    public func multipathInUse() -> Bool? {
        kind == .kernelTCP ? false : mptcpFellBack().map { !$0 }
    }

    public func subflows() -> [StreamSubflow]? {
        guard kind == .kernelMPTCP, let before = rawSubflowAddresses() else { return nil }
        // Counters come from a second call: pair them with addresses only if the
        // list did not change in between (entries are matched by position).
        var counters: [(acked: Int64, received: Int64)]?
        if let c = subflowCounters(), let after = rawSubflowAddresses(), c.count == before.count,
           after.map({ $0.map { "\($0.local)>\($0.remote)" } }) == before.map({ $0.map { "\($0.local)>\($0.remote)" } }) {
            counters = c
        }
        var result: [StreamSubflow] = []
        for (i, entry) in before.enumerated() {
            guard let (l, r) = entry else { continue }
            result.append(StreamSubflow(local: l, remote: r, counters: counters.map {
                SubflowCounters(bytesAcked: $0[i].acked, bytesReceived: $0[i].received) }))
        }
        return result
    }

    public func singlePathCounters() -> SubflowCounters? {
        subflowCounters()?.first.map { SubflowCounters(bytesAcked: $0.acked, bytesReceived: $0.received) }
    }
}

extension SocketError {
    /// For other transports (the Swift stack's adapter) reporting in the same terms.
    public init(_ operation: String, _ context: String, errno: Int32) {
        self.init(operation: operation, context: context, errno: errno)
    }
}
