#if canImport(Glibc)
import Glibc
#endif

/// How a relayed connection ended.
public enum RelayEnding: Equatable, Sendable, CustomStringConvertible {
    /// Both directions ended with an orderly close (FIN / DATA_FIN) and every byte was passed on.
    case closed
    /// One side reset (or failed); the other side was reset too.
    case reset(side: String)
    /// The converter is shutting down.
    case stopped

    public var description: String {
        switch self {
        case .closed: return "closed"
        case let .reset(side): return "reset by \(side)"
        case .stopped: return "stopped"
        }
    }
}

/// Moves bytes both ways between two streams with two threads (the caller's and
/// one more), so a connection costs two threads whatever its byte rate.
///
/// - End of stream on one side becomes a half-close (shutdown write) on the other:
///   the other direction keeps flowing until it ends too.
/// - A reset or error on one side resets the other (abort: RST), and wakes the
///   other direction through a cancel pipe, since close does not wake a blocked read.
public final class Relay: @unchecked Sendable {
    let a: ByteStream, b: ByteStream
    let nameA: String, nameB: String
    private let cancelPipe: (read: Int32, write: Int32)
    private let lock = Mutex()
    private var ending: RelayEnding?
    let bufferSize = 64 * 1024

    public init(_ a: ByteStream, named nameA: String, _ b: ByteStream, named nameB: String) throws {
        self.a = a; self.b = b; self.nameA = nameA; self.nameB = nameB
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ConverterSocketError(operation: "pipe", context: "(relay)", errno: errno) }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        cancelPipe = (fds[0], fds[1])
    }

    deinit {
        Glibc.close(cancelPipe.read)
        Glibc.close(cancelPipe.write)
    }

    /// Ends the relay from outside (shutdown): both sides are reset.
    public func stop() { finish(.stopped) }

    private func finish(_ e: RelayEnding) {
        let first: Bool = lock.locked {
            guard ending == nil else { return false }
            ending = e
            return true
        }
        guard first else { return }
        var one: UInt8 = 1
        _ = Glibc.write(cancelPipe.write, &one, 1)
        // A stream that only blocks cannot see the cancel pipe: aborting it wakes its read or write.
        if e != .closed { for s in [a, b] where s.pollDescriptor == nil { s.abort() } }
    }

    private var cancelled: Bool { lock.locked { ending != nil } }

    /// Relays until both directions end; then closes both streams (orderly, or
    /// with a reset when one side reset). `startAB` is sent to `b` first (0-RTT data).
    public func run(startAB: [UInt8] = [], startBA: [UInt8] = []) -> RelayEnding {
        let other = RelayThread(stackSize: 256 * 1024) { [self] in self.pump(from: b, to: a, fromName: nameB, start: startBA) }
        let started = other.start()
        if !started {
            finish(.reset(side: "converter (no thread for the connection)"))
        } else {
            pump(from: a, to: b, fromName: nameA, start: startAB)
            other.join()
        }
        let e = lock.locked { ending ?? .closed }
        if e == .closed { a.close(); b.close() } else { a.abort(); b.abort() }
        return e
    }

    /// One direction: read `from`, write `to`; end of stream → half-close `to`.
    private func pump(from: ByteStream, to: ByteStream, fromName: String, start: [UInt8]) {
        var buffer = [UInt8](repeating: 0, count: bufferSize)
        if !start.isEmpty {
            guard write(start[...], to: to, fromName: fromName) else { return }
        }
        while !cancelled {
            switch from.pollDescriptor.map({ waitFor($0, events: Int16(POLLIN)) }) ?? .ready {
            case .cancelled: return
            case .failed: finish(.reset(side: fromName)); return
            case .ready: break
            }
            let n: Int
            do { n = try buffer.withUnsafeMutableBytes { try from.read(into: $0) } } catch {
                finish(.reset(side: fromName)); return
            }
            if n == 0 {
                // RFC 9293 §3.6: the peer's FIN ends one direction only.
                to.shutdownWrite()
                return
            }
            guard write(buffer[..<n], to: to, fromName: fromName) else { return }
        }
    }

    private func write(_ bytes: ArraySlice<UInt8>, to: ByteStream, fromName: String) -> Bool {
        var rest = bytes
        while !rest.isEmpty {
            let n: Int
            do { n = try rest.withUnsafeBytes { try to.writeSome($0) } } catch {
                finish(.reset(side: fromName == nameA ? nameB : nameA)); return false
            }
            if n > 0 { rest = rest.dropFirst(n); continue }
            // A blocking stream that took nothing is broken: treat it as reset rather than spin.
            guard let fd = to.pollDescriptor else { finish(.reset(side: fromName == nameA ? nameB : nameA)); return false }
            switch waitFor(fd, events: Int16(POLLOUT)) {
            case .cancelled: return false
            case .failed, .ready: continue  // the next send reports the error, if any
            }
        }
        return true
    }

    private enum Wait { case ready, cancelled, failed }

    private func waitFor(_ fd: Int32, events: Int16) -> Wait {
        var fds = [pollfd(fd: fd, events: events, revents: 0), pollfd(fd: cancelPipe.read, events: Int16(POLLIN), revents: 0)]
        while true {
            let r = poll(&fds, 2, -1)
            if r < 0 && errno == EINTR { continue }
            if r < 0 { return .failed }
            if fds[1].revents != 0 { return .cancelled }
            // POLLERR/POLLHUP: let read or send report what happened.
            return .ready
        }
    }
}

/// A joinable pthread with a chosen stack size (Foundation's Thread cannot be joined).
final class RelayThread: @unchecked Sendable {
    private let body: () -> Void
    private let stackSize: Int
    private var handle = pthread_t()

    init(stackSize: Int, _ body: @escaping () -> Void) { self.body = body; self.stackSize = stackSize }

    /// false when the system has no thread to give.
    func start() -> Bool {
        var attr = pthread_attr_t()
        pthread_attr_init(&attr)
        defer { pthread_attr_destroy(&attr) }
        pthread_attr_setstacksize(&attr, stackSize)
        let box = Unmanaged.passRetained(self)
        let r = pthread_create(&handle, &attr, { raw in
            let t = Unmanaged<RelayThread>.fromOpaque(raw!).takeRetainedValue()
            t.body()
            return nil
        }, box.toOpaque())
        if r != 0 { box.release(); return false }
        return true
    }

    func join() { pthread_join(handle, nil) }

    /// Runs `body` on a detached thread; false when none could be made.
    static func detach(stackSize: Int, _ body: @escaping () -> Void) -> Bool {
        let t = RelayThread(stackSize: stackSize, body)
        guard t.start() else { return false }
        pthread_detach(t.handle)
        return true
    }
}
