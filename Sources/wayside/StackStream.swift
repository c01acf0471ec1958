import Core
import Foundation
import Stack
import Traffic
#if canImport(Glibc)
import Glibc
#endif

/// The traffic applications over the Swift stack: `StackSocket` and
/// `StackListener` seen as the `Traffic` module's stream protocols, so that
/// `wayside node --socket swift` runs the very code that measures the kernel
/// baselines.
///
/// A blocked read or accept must end when the application is asked to stop
/// (`shutdown(.both)` from the signal thread) without resetting the
/// connection: the call runs as the stack's async operation and the caller
/// waits on a semaphore that either its completion or the shutdown signals;
/// an abandoned read's bytes are dropped with the connection.
final class StackTransport: StreamTransport, @unchecked Sendable {
    let stack: SwiftStack
    let name = "swift"

    init(stack: SwiftStack) { self.stack = stack }

    func listen(on address: SocketAddress) throws -> any StreamListener {
        // The stack owns every one of its addresses: a port is enough, and
        // joins (RFC 8684 §3.2) to any of them find the listener.
        do { return StackStreamListener(try stack.listen(port: address.port)) } catch {
            throw SocketError("listen", "on \(address) (Swift stack): \(error)", errno: EADDRINUSE)
        }
    }

    func connect(to address: SocketAddress, from local: SocketAddress?, retryUntil deadline: Int64,
                 shouldStop: @escaping () -> Bool) throws -> any StreamConnection {
        guard let remote = InetBytes.parse(address.host) else {
            throw SocketError("connect", "to \(address): not an IPv4 address", errno: EINVAL)
        }
        // The initial subflow leaves from the path whose stack address is `local`, else the first.
        var fromPath = 0
        if let local, let bytes = InetBytes.parse(local.host) {
            guard let k = stack.configuration.paths.firstIndex(where: { $0.address == bytes }) else {
                throw SocketError("connect", "from \(local): not one of the Swift stack's addresses", errno: EADDRNOTAVAIL)
            }
            fromPath = k
        }
        while true {
            do {
                return StackStream(try stack.connectBlocking(to: remote, port: address.port, fromPath: fromPath))
            } catch {
                guard RunClock.monotonicNanoseconds() < deadline, !shouldStop() else {
                    throw SocketError("connect", "to \(address) (Swift stack): \(error)", errno: ECONNREFUSED)
                }
                usleep(50_000)
            }
        }
    }
}

/// Dotted quads as the stack's byte arrays.
enum InetBytes {
    static func parse(_ text: String) -> [UInt8]? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var bytes: [UInt8] = []
        for p in parts {
            guard let b = UInt8(p), String(b) == p else { return nil }
            bytes.append(b)
        }
        return bytes
    }

    /// `a.b.c.d:port` as the stack's subflow info writes it.
    static func socketAddress(_ text: String) -> SocketAddress? {
        let parts = text.split(separator: ":")
        guard parts.count == 2, parse(String(parts[0])) != nil, let port = UInt16(parts[1]) else { return nil }
        return SocketAddress(host: String(parts[0]), port: port)
    }
}

/// Waits for an async operation of the stack, or for `interrupt()`.
final class InterruptibleWait: @unchecked Sendable {
    private let lock = NSLock()
    private var interrupted = false
    private var waiters: [DispatchSemaphore] = []

    var isInterrupted: Bool { lock.lock(); defer { lock.unlock() }; return interrupted }

    func interrupt() {
        lock.lock()
        interrupted = true
        let w = waiters
        waiters.removeAll()
        lock.unlock()
        for s in w { s.signal() }
    }

    /// The operation's result, or nil if interrupted first.
    func run<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) throws -> T? {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        lock.lock()
        if interrupted { lock.unlock(); return nil }
        waiters.append(done)
        lock.unlock()
        Task {
            let r: Result<T, Error>
            do { r = .success(try await operation()) } catch { r = .failure(error) }
            box.set(r)
            done.signal()
        }
        done.wait()
        lock.lock()
        waiters.removeAll { $0 === done }
        lock.unlock()
        guard let r = box.get() else { return nil }
        return try r.get()
    }
}

final class ResultBox<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Result<T, Error>?
    func set(_ r: Result<T, Error>) { lock.lock(); value = r; lock.unlock() }
    func get() -> Result<T, Error>? { lock.lock(); defer { lock.unlock() }; return value }
}

final class StackStreamListener: StreamListener, @unchecked Sendable {
    let listener: StackListener
    let wait = InterruptibleWait()
    init(_ listener: StackListener) { self.listener = listener }

    func acceptConnection() throws -> any StreamConnection {
        let l = listener
        do {
            guard let s = try wait.run({ try await l.accept() }) else {
                throw SocketError("accept", "(Swift stack): stopped", errno: EINVAL)
            }
            return StackStream(s)
        } catch let e as SocketError { throw e } catch {
            throw SocketError("accept", "(Swift stack): \(error)", errno: EIO)
        }
    }

    func shutdown() { wait.interrupt() }
    func close() { wait.interrupt(); listener.close() }
}

/// One Swift stack connection as a `StreamConnection`.
final class StackStream: StreamConnection, @unchecked Sendable {
    let socket: StackSocket
    let wait = InterruptibleWait()
    private let lock = NSLock()
    private var readTimeout: Interval?
    private var wroteFIN = false
    private var closed = false

    init(_ socket: StackSocket) { self.socket = socket }

    /// A stack error as the errno the applications expect (EPIPE/ECONNRESET end a connection).
    func socketError(_ operation: String, _ error: Error) -> SocketError {
        if let e = error as? SocketError { return e }
        let text = "\(error)"
        let code = text.contains("reset") || text.contains("RST") || text.contains("FASTCLOSE") ? ECONNRESET : EPIPE
        return SocketError(operation, "(Swift stack): \(text)", errno: code)
    }

    func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let s = socket, maximum = buffer.count
        lock.lock(); let timeout = readTimeout; lock.unlock()
        if let timeout {
            // Draining a closing connection: give up after `timeout`, as SO_RCVTIMEO does.
            let w = InterruptibleWait()
            let timer = Thread { usleep(UInt32(max(0, timeout.nanoseconds / 1000))); w.interrupt() }
            timer.start()
            do {
                guard let bytes = try w.run({ try await s.read(maximum: maximum) }) else { return 0 }
                bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
                return bytes.count
            } catch { throw socketError("read", error) }
        }
        do {
            guard let bytes = try wait.run({ try await s.read(maximum: maximum) }) else { return 0 }
            bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
            return bytes.count
        } catch { throw socketError("read", error) }
    }

    func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        if wait.isInterrupted { throw SocketError("write", "(Swift stack): shut down", errno: EPIPE) }
        do { try socket.writeAllBlocking(Array(bytes)) } catch { throw socketError("write", error) }
    }

    func shutdown(_ how: StreamShutdown) {
        lock.lock()
        let first = !wroteFIN && !closed
        wroteFIN = true
        lock.unlock()
        // DATA_FIN after what was written (RFC 8684 §3.3.3); `.both` also ends a waiting read.
        if first { socket.shutdownWrite() }
        if how == .both { wait.interrupt() }
    }

    func close() {
        lock.lock()
        let first = !closed
        closed = true
        let fin = !wroteFIN
        wroteFIN = true
        lock.unlock()
        guard first else { return }
        if fin { socket.close() }
        wait.interrupt()
    }

    func setReadTimeout(_ timeout: Interval?) { lock.lock(); readTimeout = timeout; lock.unlock() }

    var localAddress: SocketAddress? { socket.info()?.subflows.first.flatMap { InetBytes.socketAddress($0.local) } }
    var remoteAddress: SocketAddress? { socket.info()?.subflows.first.flatMap { InetBytes.socketAddress($0.remote) } }

    func multipathInUse() -> Bool? { socket.info()?.mptcp }

    func subflows() -> [StreamSubflow]? {
        guard let info = socket.info(), info.mptcp else { return nil }
        return info.subflows.filter(\.established).compactMap { s in
            guard let l = InetBytes.socketAddress(s.local), let r = InetBytes.socketAddress(s.remote) else { return nil }
            return StreamSubflow(local: l, remote: r, counters: SubflowCounters(bytesAcked: Int64(s.bytesAcknowledged),
                                                                                   bytesReceived: Int64(s.bytesReceived)))
        }
    }

    func singlePathCounters() -> SubflowCounters? {
        socket.info()?.subflows.first.map { SubflowCounters(bytesAcked: Int64($0.bytesAcknowledged), bytesReceived: Int64($0.bytesReceived)) }
    }
}
