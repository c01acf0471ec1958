import Analysis
import CStack
import Core
import Foundation
import MPTCP
import Traffic
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// One path of the stack: an address it owns behind the TUN device and the
/// interface its subflows leave by (policy routing is the caller's: see
/// docs/STACK.md).
public struct StackPath: Hashable, Sendable {
    /// IPv4 address the stack owns (the kernel routes it to the TUN device).
    public var address: [UInt8]
    /// The veth (or other) interface this path leaves by; its rtnetlink link
    /// and address events move the path up and down.
    public var interface: String
    public var backup: Bool
    /// How subflows on this path are named in logs (`path`): the topology link; default the interface.
    public var label: String?

    public init(address: [UInt8], interface: String, backup: Bool = false, label: String? = nil) {
        self.address = address; self.interface = interface; self.backup = backup; self.label = label
    }
}

public struct StackConfiguration: Sendable {
    public var tunName: String
    public var paths: [StackPath]
    public var mptcp: MPTCPConfiguration
    public var seed: UInt64
    /// Capture of every packet sent and received (LINKTYPE_RAW), written at `stop`.
    public var pcapPath: String?
    public var eventLog: EventLogWriter?
    public var nodeName: String
    /// MTU set on the TUN device (0 keeps the kernel's).
    public var mtu = 1500
    /// Bytes written and not yet acknowledged per connection before `write` waits.
    public var sendBufferLimit = 4 << 20
    /// The run's clock when there is no event log (whose clock wins).
    public var clock: RunClock?

    public init(tunName: String, paths: [StackPath], mptcp: MPTCPConfiguration = MPTCPConfiguration(), seed: UInt64 = 1,
                pcapPath: String? = nil, eventLog: EventLogWriter? = nil, nodeName: String = "node") {
        self.tunName = tunName; self.paths = paths; self.mptcp = mptcp; self.seed = seed
        self.pcapPath = pcapPath; self.eventLog = eventLog; self.nodeName = nodeName
    }
}

/// The Swift MPTCP stack as a host: a TUN device in a namespace, one event
/// loop thread (epoll over the TUN descriptor, a timerfd armed at the core's
/// next deadline, an eventfd for API calls, and an rtnetlink socket for path
/// events), and a socket-like API. The pure `StackCore` does the protocol work.
public final class SwiftStack: @unchecked Sendable {
    public let configuration: StackConfiguration
    public let clock: RunClock

    let lock = NSLock()
    var core: StackCore
    var waiters = Waiters()
    var stopping = false
    var stopped = false
    var started = false
    var thread: Thread?
    let finished = DispatchSemaphore(value: 0)
    var wakeFD: Int32 = -1
    /// The TUN device's name and index once started.
    public internal(set) var tunName = ""
    public internal(set) var tunIndex: Int32 = 0
    var pcap: PcapWriter?
    /// Packets the loop read and wrote, and writes the device refused.
    public internal(set) var packetsRead = 0
    public internal(set) var packetsWritten = 0
    public internal(set) var writeErrors = 0
    public internal(set) var loopIterations = 0
    /// Loop wake-ups by first cause: [unused, TUN, timer, API, rtnetlink].
    public internal(set) var wakeups = [0, 0, 0, 0, 0]

    struct Waiters {
        var reads: [Int: (maximum: Int, resume: (Result<[UInt8], Error>) -> Void)] = [:]
        var writes: [Int: (remaining: [UInt8], offset: Int, resume: (Result<Void, Error>) -> Void)] = [:]
        var connects: [Int: (Result<Void, Error>) -> Void] = [:]
        var accepts: [UInt16: [(Result<Int, Error>) -> Void]] = [:]
        var isEmpty: Bool { reads.isEmpty && writes.isEmpty && connects.isEmpty && accepts.values.allSatisfy(\.isEmpty) }
    }

    public init(configuration: StackConfiguration) {
        self.configuration = configuration
        clock = configuration.eventLog?.clock ?? configuration.clock ?? RunClock(epoch: RunClock.monotonicNanoseconds())
        core = StackCore(paths: configuration.paths.map { StackCorePath(address: $0.address, label: $0.label ?? $0.interface, backup: $0.backup) },
                         mptcp: configuration.mptcp, seed: configuration.seed, sendBufferLimit: configuration.sendBufferLimit)
        if configuration.pcapPath != nil { pcap = PcapWriter(header: PcapHeader(linkType: .raw)) }
    }

    deinit { if started && !stopped { stop(grace: .zero) } }

    // MARK: Starting and stopping

    /// Opens the TUN device in namespace `namespace` (nil: the caller's),
    /// brings it up, and starts the loop. The loop thread enters the namespace
    /// for its whole life; no concurrency task ever does.
    public func start(namespace: String?) throws {
        guard !started else { return }
        var namespaceFD: Int32 = -1
        if let namespace {
            namespaceFD = open("/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
            guard namespaceFD >= 0 else { throw StackError.system("open namespace \(namespace)", -errno) }
        }
        wakeFD = wst_event_create()
        guard wakeFD >= 0 else { if namespaceFD >= 0 { close(namespaceFD) }; throw StackError.system("eventfd", wakeFD) }
        let ready = DispatchSemaphore(value: 0)
        let setupError = ErrorBox()
        let nsFD = namespaceFD
        let t = Thread { [self] in
            var loop: EventLoop?
            do {
                if nsFD >= 0 {
                    let rc = wst_enter_netns(nsFD)
                    close(nsFD)
                    guard rc == 0 else { throw StackError.system("enter namespace \(namespace ?? "")", rc) }
                }
                loop = try EventLoop(stack: self)
            } catch { setupError.error = error }
            ready.signal()
            if var loop { loop.run(); loop.close() }
            finished.signal()
        }
        t.name = "wayside-stack"
        t.start()
        ready.wait()
        if let setupError = setupError.error {
            finished.wait()
            close(wakeFD); wakeFD = -1
            throw setupError
        }
        thread = t
        started = true
    }

    /// Closes every connection with DATA_FIN (FIN on plain ones), waits up to
    /// `grace` for them to finish, aborts the rest, flushes the logs and the
    /// capture, and closes the TUN device.
    public func stop(grace: Interval) {
        lock.lock()
        guard started, !stopped, !stopping else { lock.unlock(); return }
        let now = clock.now()
        for id in core.connectionIDs { core.shutdownWrite(id, now: now) }
        lock.unlock()
        wake()
        let deadline = clock.now() + grace
        while clock.now() < deadline {
            lock.lock()
            let open = core.connectionIDs.contains { id in
                guard let s = core.state(id) else { return false }
                return s == .connecting || s == .established || s == .finished
            }
            lock.unlock()
            if !open { break }
            usleep(2_000)
        }
        lock.lock()
        let late = clock.now()
        for id in core.connectionIDs { core.abort(id, now: late) }
        stopping = true
        lock.unlock()
        wake()
        finished.wait()
        close(wakeFD); wakeFD = -1
        lock.lock()
        stopped = true
        let pending = waiters
        waiters = Waiters()
        lock.unlock()
        for (_, w) in pending.reads { w.resume(.failure(StackError.stopped)) }
        for (_, w) in pending.writes { w.resume(.failure(StackError.stopped)) }
        for (_, w) in pending.connects { w(.failure(StackError.stopped)) }
        for (_, list) in pending.accepts { for w in list { w(.failure(StackError.stopped)) } }
        configuration.eventLog?.flush()
        if let pcap, let path = configuration.pcapPath {
            _ = FileManager.default.createFile(atPath: path, contents: Data(pcap.bytes))
        }
    }

    func wake() { if wakeFD >= 0 { wst_event_signal(wakeFD) } }

    /// Runs `body` on the core under the lock, then lets the loop send what it produced.
    func withCore<T>(_ body: (inout StackCore, Instant) throws -> T) rethrows -> T {
        lock.lock()
        let result: T
        do {
            result = try body(&core, clock.now())
        } catch {
            lock.unlock()
            throw error
        }
        lock.unlock()
        wake()
        return result
    }

    // MARK: Sockets

    public func listen(port: UInt16) throws -> StackListener {
        try withCore { core, _ in try core.listen(port: port) }
        return StackListener(stack: self, port: port)
    }

    /// Opens an MPTCP connection from path `fromPath` and waits for its handshake.
    public func connect(to address: [UInt8], port: UInt16, fromPath: Int = 0, label: String? = nil) async throws -> StackSocket {
        let id = try await withCheckedThrowingContinuation { (k: CheckedContinuation<Int, Error>) in
            startConnect(to: address, port: port, fromPath: fromPath, label: label) { k.resume(with: $0) }
        }
        return StackSocket(stack: self, id: id)
    }

    /// `connect` for threads that may block.
    public func connectBlocking(to address: [UInt8], port: UInt16, fromPath: Int = 0, label: String? = nil) throws -> StackSocket {
        let id = try blocking { done in startConnect(to: address, port: port, fromPath: fromPath, label: label, done) }
        return StackSocket(stack: self, id: id)
    }

    func startConnect(to address: [UInt8], port: UInt16, fromPath: Int, label: String?, _ done: @escaping (Result<Int, Error>) -> Void) {
        lock.lock()
        guard !stopping, !stopped else { lock.unlock(); done(.failure(StackError.stopped)); return }
        do {
            let id = try core.connect(to: address, port: port, fromPath: fromPath, label: label, now: clock.now())
            waiters.connects[id] = { result in done(result.map { id }) }
            lock.unlock()
            wake()
        } catch {
            lock.unlock()
            done(.failure(error))
        }
    }

    func blocking<T>(_ start: (@escaping (Result<T, Error>) -> Void) -> Void) throws -> T {
        let done = DispatchSemaphore(value: 0)
        let box = ResultBox<T>()
        start { box.set($0); done.signal() }
        done.wait()
        return try box.get()
    }

    func startAccept(port: UInt16, _ done: @escaping (Result<Int, Error>) -> Void) {
        lock.lock()
        if stopping || stopped { lock.unlock(); done(.failure(StackError.stopped)); return }
        if let id = core.accept(port: port) { lock.unlock(); done(.success(id)); return }
        waiters.accepts[port, default: []].append(done)
        lock.unlock()
    }

    func startRead(_ id: Int, maximum: Int, _ done: @escaping (Result<[UInt8], Error>) -> Void) {
        lock.lock()
        if let ready = readNow(id, maximum: maximum) { lock.unlock(); wake(); done(ready); return }
        if stopping || stopped { lock.unlock(); done(.failure(StackError.stopped)); return }
        waiters.reads[id] = (maximum, done)
        lock.unlock()
    }

    /// Under the lock: the read's outcome if it need not wait.
    func readNow(_ id: Int, maximum: Int) -> Result<[UInt8], Error>? {
        let bytes = core.read(id, maximum: maximum, now: clock.now())
        if !bytes.isEmpty { return .success(bytes) }
        if core.isEndOfStream(id) { return .success([]) }
        if let failure = core.failure(id) { return .failure(failure) }
        return nil
    }

    func startWrite(_ id: Int, _ bytes: [UInt8], _ done: @escaping (Result<Void, Error>) -> Void) {
        lock.lock()
        do {
            let n = try core.write(id, bytes, now: clock.now())
            if n == bytes.count { lock.unlock(); wake(); done(.success(())); return }
            if stopping || stopped { lock.unlock(); done(.failure(StackError.stopped)); return }
            waiters.writes[id] = (bytes, n, done)
            lock.unlock()
            wake()
        } catch {
            lock.unlock()
            done(.failure(error))
        }
    }

    /// Under the lock, on the loop thread: hands waiting callers what became possible.
    func serviceWaiters(now: Instant) -> [() -> Void] {
        guard !waiters.isEmpty else { return [] }
        var resumes: [() -> Void] = []
        for (id, w) in waiters.connects {
            switch core.state(id) {
            case .established?, .finished?: waiters.connects[id] = nil; resumes.append { w(.success(())) }
            case .connecting?: break
            default:
                waiters.connects[id] = nil
                let failure = core.failure(id) ?? .connectionFailed("closed")
                resumes.append { w(.failure(failure)) }
            }
        }
        for (port, list) in waiters.accepts where !list.isEmpty {
            var remaining = list
            while !remaining.isEmpty, let id = core.accept(port: port) {
                let w = remaining.removeFirst()
                resumes.append { w(.success(id)) }
            }
            waiters.accepts[port] = remaining
        }
        for (id, w) in waiters.reads {
            if let result = readNow(id, maximum: w.maximum) {
                waiters.reads[id] = nil
                resumes.append { w.resume(result) }
            }
        }
        for (id, w) in waiters.writes {
            do {
                let n = try core.write(id, w.remaining[w.offset...], now: now)
                if w.offset + n == w.remaining.count {
                    waiters.writes[id] = nil
                    resumes.append { w.resume(.success(())) }
                } else {
                    waiters.writes[id] = (w.remaining, w.offset + n, w.resume)
                }
            } catch {
                waiters.writes[id] = nil
                resumes.append { w.resume(.failure(error)) }
            }
        }
        return resumes
    }

    /// Every connection's info, now.
    public var connectionInfos: [StackConnectionInfo] {
        lock.lock(); defer { lock.unlock() }
        return core.connectionIDs.compactMap { core.info($0) }
    }

    public func info(_ id: Int) -> StackConnectionInfo? {
        lock.lock(); defer { lock.unlock() }
        return core.info(id)
    }

    /// Counters of the demultiplexer (packets in/out, malformed, RSTs for nobody).
    public var coreCounters: (packetsIn: Int, packetsOut: Int, malformed: Int, badChecksum: Int, resetsForNobody: Int) {
        lock.lock(); defer { lock.unlock() }
        return (core.packetsIn, core.packetsOut, core.packetsMalformed, core.packetsBadChecksum, core.resetsForNobody)
    }

    // MARK: Logging

    func log(_ events: [StackEvent], at t: Instant) {
        guard let writer = configuration.eventLog, !events.isEmpty else { return }
        func path(_ p: Int?) -> String? { p.flatMap { core.paths.indices.contains($0) ? core.paths[$0].label : nil } }
        for e in events {
            switch e {
            case let .connectionState(id, state, mptcp, reason):
                writer.log(.connectionState(conn: core.label(id) ?? "c\(id)", state: state, mptcp: mptcp, reason: reason), at: t)
            case let .subflowState(id, sub, state, p, local, remote, reason):
                writer.log(.subflowState(SubflowChange(conn: core.label(id) ?? "c\(id)", subflow: sub, state: state, path: path(p),
                                                       local: local, remote: remote, reason: reason)), at: t)
            case let .joinAttempt(id, sub, p, local, remote):
                writer.log(.joinAttempt(conn: core.label(id) ?? "c\(id)", subflow: sub, path: path(p), local: local, remote: remote), at: t)
            case let .subflowProgress(id, sub, p, acked, received):
                writer.log(.subflowProgress(conn: core.label(id) ?? "c\(id)", subflow: sub, path: path(p),
                                            bytesAcked: Int64(acked), bytesReceived: Int64(received)), at: t)
            case let .reinjection(id, bytes):
                writer.log(.reinjection(conn: core.label(id) ?? "c\(id)", bytes: Int64(bytes), from: nil, to: nil), at: t)
            case .accepted: break
            }
        }
    }

    func logInterface(_ name: String, _ change: InterfaceChange, address: String?, at t: Instant) {
        configuration.eventLog?.log(.interface(name: name, change: change, address: address), at: t)
    }
}

final class ErrorBox: @unchecked Sendable { var error: Error? }

final class ResultBox<T>: @unchecked Sendable {
    private var value: Result<T, Error>?
    func set(_ r: Result<T, Error>) { value = r }
    func get() throws -> T { try value!.get() }
}

/// A listening port.
public final class StackListener: @unchecked Sendable {
    public let stack: SwiftStack
    public let port: UInt16
    init(stack: SwiftStack, port: UInt16) { self.stack = stack; self.port = port }

    /// The next connection whose handshake completed.
    public func accept() async throws -> StackSocket {
        let id = try await withCheckedThrowingContinuation { (k: CheckedContinuation<Int, Error>) in
            stack.startAccept(port: port) { k.resume(with: $0) }
        }
        return StackSocket(stack: stack, id: id)
    }

    public func acceptBlocking() throws -> StackSocket {
        StackSocket(stack: stack, id: try stack.blocking { stack.startAccept(port: port, $0) })
    }

    public func close() { stack.withCore { core, _ in core.stopListening(port: port) } }
}

/// One connection, like a connected socket.
public final class StackSocket: @unchecked Sendable {
    public let stack: SwiftStack
    public let id: Int
    init(stack: SwiftStack, id: Int) { self.stack = stack; self.id = id }

    /// Up to `maximum` bytes in order; [] at the end of the stream.
    public func read(maximum: Int = 65_536) async throws -> [UInt8] {
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<[UInt8], Error>) in
            stack.startRead(id, maximum: maximum) { k.resume(with: $0) }
        }
    }

    /// Writes all of `bytes`, suspending while the send buffer is full.
    public func write(_ bytes: [UInt8]) async throws {
        guard !bytes.isEmpty else { return }
        try await withCheckedThrowingContinuation { (k: CheckedContinuation<Void, Error>) in
            stack.startWrite(id, bytes) { k.resume(with: $0) }
        }
    }

    /// Reads into `buffer`, blocking the calling thread; 0 at the end of the stream.
    public func readBlocking(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        let bytes = try stack.blocking { stack.startRead(id, maximum: buffer.count, $0) }
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        return bytes.count
    }

    /// Writes all of `bytes`, blocking the calling thread while the send buffer is full.
    public func writeAllBlocking(_ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        try stack.blocking { stack.startWrite(id, bytes, $0) }
    }

    /// DATA_FIN after what was written (FIN on a plain connection).
    public func shutdownWrite() { stack.withCore { core, now in core.shutdownWrite(id, now: now) } }
    /// Shuts the write side; the connection ends once the peer closes too.
    public func close() { shutdownWrite() }
    /// Resets every subflow at once.
    public func abort() { stack.withCore { core, now in core.abort(id, now: now) } }

    public func info() -> StackConnectionInfo? { stack.info(id) }
}
