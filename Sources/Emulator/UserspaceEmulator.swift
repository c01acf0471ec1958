import CEmulator
import Core
import Foundation
import LinkModel
import Netlink

public struct EmulatorError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    static func system(_ what: String, _ code: Int32) -> EmulatorError {
        EmulatorError("\(what): \(String(cString: strerror(-code)))")
    }
    public var description: String { message }
}

/// The userspace link emulator: in the run's emulator namespace, an AF_PACKET
/// socket on each emulator-side veth end, and one event loop on a dedicated
/// thread that moves frames a→b and b→a through each link's per-direction
/// `LinkPipeline`, applying the coverage timeline at its times. The loop
/// sleeps in epoll until a frame arrives or a timerfd armed at the pipelines'
/// next event fires (absolute CLOCK_MONOTONIC time, 1 ns timer slack,
/// SCHED_FIFO when granted), so it never spins.
public final class UserspaceEmulator: @unchecked Sendable {
    public let links: [EmulatedLink]
    public let timeline: CoverageTimeline
    public let seed: UInt64
    /// Per-packet and per-change events as JSON lines, when set. Called on the
    /// event loop's thread: it must be quick.
    private let eventLog: ((String) -> Void)?

    private let lock = NSLock()
    private var applied: [AppliedChange] = []
    private var counters: [[DirectionCounters]]
    private var stopFD: Int32 = -1
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// Time zero of the timeline (CLOCK_MONOTONIC).
    public private(set) var origin: Instant = .zero
    private var requestedOrigin: Instant?
    fileprivate func startClock() { origin = requestedOrigin ?? Self.now() }
    /// Whether the loop runs with real-time priority.
    public private(set) var realtime = false

    public init(links: [EmulatedLink], timeline: CoverageTimeline = CoverageTimeline(events: [], duration: .zero),
                seed: UInt64 = 1, eventLog: ((String) -> Void)? = nil) {
        self.links = links; self.timeline = timeline; self.seed = seed; self.eventLog = eventLog
        counters = Array(repeating: [DirectionCounters(), DirectionCounters()], count: links.count)
    }

    /// The emulator's clock.
    public static func now() -> Instant { Instant(nanoseconds: ws_monotonic_ns()) }

    /// Prepares the nodes' ends (offloads off, so frames are whole and
    /// checksummed), opens and binds the packet sockets on a thread that
    /// entered the emulator namespace, and starts the loop there. Returns once
    /// frames are being moved. `origin` is the timeline's time zero (default: now).
    public func start(origin: Instant? = nil) throws {
        guard thread == nil else { throw EmulatorError("the emulator is already running") }
        guard let namespace = links.first?.emulatorNamespace else { throw EmulatorError("no emulated links") }
        guard links.allSatisfy({ $0.aSide.namespace == namespace && $0.bSide.namespace == namespace }) else {
            throw EmulatorError("emulated links span several emulator namespaces")
        }
        for link in links {
            for end in [link.aNode, link.bNode] {
                let ns = try NetworkNamespace.open(named: end.namespace)
                defer { ns.close() }
                let rc = try ns.run { ws_disable_offloads(end.name) }
                guard rc == 0 else { throw EmulatorError.system("turn off offloads on \(end.name) in \(end.namespace)", rc) }
            }
        }
        let nsFD = open(NetworkNamespace.path(namespace), O_RDONLY | O_CLOEXEC)
        guard nsFD >= 0 else { throw EmulatorError("cannot open emulator namespace \(namespace): \(String(cString: strerror(errno)))") }
        stopFD = ws_event_create()
        guard stopFD >= 0 else { close(nsFD); throw EmulatorError.system("eventfd", stopFD) }

        let ready = DispatchSemaphore(value: 0)
        let setupError = Box<Error?>(nil)
        requestedOrigin = origin
        let t = Thread { [self] in
            // This thread stays in the emulator namespace for its whole life:
            // it exists only to run the loop, and its sockets stay bound there.
            let rc = ws_enter_netns(nsFD)
            close(nsFD)
            var loop: EventLoop?
            if rc != 0 {
                setupError.set(EmulatorError.system("enter emulator namespace \(namespace)", rc))
            } else {
                do { loop = try EventLoop(emulator: self) } catch { setupError.set(error) }
            }
            realtime = ws_precise_thread(10) == 0
            ready.signal()
            if var loop { loop.run(); loop.close() }
            finished.signal()
        }
        t.name = "wayside-emulator"
        t.start()
        ready.wait()
        if let setupError = setupError.value {
            finished.wait()
            close(stopFD); stopFD = -1
            throw setupError
        }
        thread = t
    }

    /// Stops the loop and closes its sockets; frames still in the links are dropped.
    public func stop() {
        guard thread != nil else { return }
        ws_event_signal(stopFD)
        finished.wait()
        close(stopFD); stopFD = -1
        thread = nil
    }

    deinit { stop() }

    /// Every timeline step applied so far, in order.
    public var appliedChanges: [AppliedChange] { lock.lock(); defer { lock.unlock() }; return applied }

    public func counters(link: String, direction: LinkDirection) -> DirectionCounters {
        guard let i = links.firstIndex(where: { $0.name == link }) else { return DirectionCounters() }
        lock.lock(); defer { lock.unlock() }
        return counters[i][direction == .bToA ? 1 : 0]
    }

    fileprivate func publish(_ changes: [AppliedChange], _ directions: [EventLoop.Direction]) {
        lock.lock()
        applied += changes
        for d in directions { counters[d.link][d.direction == .bToA ? 1 : 0] = d.counters }
        lock.unlock()
    }

    fileprivate var stopDescriptor: Int32 { stopFD }
    fileprivate func log(_ line: String) { eventLog?(line) }
    fileprivate var logs: Bool { eventLog != nil }
}

/// The loop's own state, touched only by the emulator thread.
private struct EventLoop {
    struct Direction {
        var link: Int
        var name: String
        var direction: LinkDirection
        var scheduled: ScheduledLink<Frame>
        var input: Int32
        var output: Int32
        var counters = DirectionCounters()
    }

    static let stopToken: UInt64 = 0
    static let timerToken: UInt64 = 1
    static let firstSocketToken: UInt64 = 2
    static let stride = 16384
    static let batch = 64

    unowned let emulator: UserspaceEmulator
    var directions: [Direction] = []
    /// Per link: the carrier the emulator-side ends show.
    var carrier: [Bool]
    var sockets: [Int32] = []
    let epoll: Int32
    let timer: Int32
    var armed = Instant.distantFuture
    let routes: RouteSocket
    var buffer: UnsafeMutablePointer<UInt8>
    var lengths = [Int32](repeating: 0, count: EventLoop.batch)
    var stamps = [Int64](repeating: 0, count: EventLoop.batch)
    /// When the loop last called into the pipelines: link models take calls
    /// with non-decreasing times.
    var lastService = Instant.zero
    var lastArrival: [Instant] = []

    init(emulator: UserspaceEmulator) throws {
        self.emulator = emulator
        carrier = Array(repeating: true, count: emulator.links.count)
        buffer = .allocate(capacity: Self.stride * Self.batch)
        routes = try RouteSocket(namespace: emulator.links[0].emulatorNamespace)
        epoll = ws_epoll_create()
        timer = ws_timer_create()
        guard epoll >= 0, timer >= 0 else { throw EmulatorError("cannot create epoll or timerfd") }
        var failure: EmulatorError?
        for link in emulator.links {
            let a = ws_packet_open(link.aSide.index, 4 << 20)
            if a < 0 { failure = .system("open packet socket on \(link.aSide.name)", a); break }
            sockets.append(a)
            let b = ws_packet_open(link.bSide.index, 4 << 20)
            if b < 0 { failure = .system("open packet socket on \(link.bSide.name)", b); break }
            sockets.append(b)
        }
        // Time zero is when frames start to move, unless the caller fixed it.
        emulator.startClock()
        for (k, link) in emulator.links.enumerated() where failure == nil {
            let a = sockets[2 * k], b = sockets[2 * k + 1]
            for (dir, params, input, output) in [(LinkDirection.aToB, link.aToB, a, b), (.bToA, link.bToA, b, a)] {
                let name = "\(link.name)/\(dir.rawValue)"
                let pipeline = LinkPipeline<Frame>(parameters: params, options: link.options, seed: emulator.seed,
                                                   name: name, origin: emulator.origin)
                let schedule = TimelineSchedule(timeline: emulator.timeline, link: link.name, direction: dir, origin: emulator.origin)
                directions.append(Direction(link: k, name: link.name, direction: dir,
                                            scheduled: ScheduledLink(pipeline: pipeline, schedule: schedule),
                                            input: input, output: output))
            }
        }
        if failure == nil {
            var rc = ws_epoll_add(epoll, emulator.stopDescriptor, Self.stopToken)
            if rc == 0 { rc = ws_epoll_add(epoll, timer, Self.timerToken) }
            for (i, d) in directions.enumerated() where rc == 0 {
                rc = ws_epoll_add(epoll, d.input, Self.firstSocketToken + UInt64(i))
            }
            if rc != 0 { failure = .system("epoll", rc) }
        }
        lastArrival = Array(repeating: .zero, count: directions.count)
        if let failure { close(); throw failure }
    }

    func close() {
        for s in sockets { _ = Glibc.close(s) }
        if epoll >= 0 { _ = Glibc.close(epoll) }
        if timer >= 0 { _ = Glibc.close(timer) }
        buffer.deallocate()
    }

    mutating func run() {
        var tokens = [UInt64](repeating: 0, count: 64)
        while true {
            serviceLinks()
            let next = directions.reduce(Instant.distantFuture) { min($0, $1.scheduled.nextEventTime) }
            if next != armed {
                _ = ws_timer_arm(timer, next == .distantFuture ? 0 : max(1, next.nanoseconds))
                armed = next
            }
            let n = tokens.withUnsafeMutableBufferPointer { ws_epoll_wait(epoll, $0.baseAddress, 64, -1) }
            guard n >= 0 else { return }
            let now = UserspaceEmulator.now()
            for token in tokens[0..<Int(n)] {
                switch token {
                case Self.stopToken: return
                case Self.timerToken:
                    ws_drain(timer)
                    armed = .distantFuture
                default: receive(direction: Int(token - Self.firstSocketToken), now: now)
                }
            }
        }
    }

    /// Reads what waits on a direction's input socket into its pipeline, in
    /// batches, up to a bound so that due departures are not held up.
    mutating func receive(direction i: Int, now: Instant) {
        for _ in 0..<8 {
            let n = lengths.withUnsafeMutableBufferPointer { l in
                stamps.withUnsafeMutableBufferPointer { s in
                    ws_packet_receive_batch(directions[i].input, buffer, Int32(Self.stride), Int32(Self.batch), l.baseAddress, s.baseAddress)
                }
            }
            guard n > 0 else { return }
            // A frame enters the link when the kernel received it, not when
            // the loop got round to reading it (kernel stamps are CLOCK_REALTIME).
            let offset = ws_realtime_ns() - ws_monotonic_ns()
            for k in 0..<Int(n) where lengths[k] > 0 {
                let stamped = stamps[k] > 0 ? Instant(nanoseconds: stamps[k] - offset) : now
                let arrival = min(now, max(lastService, max(lastArrival[i], stamped)))
                lastArrival[i] = arrival
                let frame = Frame(Array(UnsafeBufferPointer(start: buffer + k * Self.stride, count: Int(lengths[k]))))
                directions[i].counters.received += 1
                directions[i].counters.receivedBytes += frame.byteCount
                if emulator.logs { logPacket(i, "arrival", frame.byteCount, arrival, nil) }
                directions[i].scheduled.enqueue(frame, now: arrival)
            }
            if n < Self.batch { return }
        }
    }

    /// Sends every frame due, records drops and the timeline steps applied,
    /// and sets carrier where coverage changed it.
    mutating func serviceLinks() {
        let now = UserspaceEmulator.now()
        lastService = now
        var steps: [(Int, Instant, LinkStep)] = []
        for i in directions.indices {
            while let frame = directions[i].scheduled.dequeue(now: now) {
                let rc = frame.bytes.withUnsafeBufferPointer { ws_packet_send(directions[i].output, $0.baseAddress, Int32($0.count)) }
                if rc == 0 {
                    directions[i].counters.sent += 1
                    directions[i].counters.sentBytes += frame.byteCount
                    if emulator.logs { logPacket(i, "departure", frame.byteCount, now, nil) }
                } else {
                    directions[i].counters.sendFailures += 1
                    if emulator.logs { logPacket(i, "drop", frame.byteCount, now, "send-failed") }
                }
            }
            for d in directions[i].scheduled.drainDrops() {
                directions[i].counters.dropped[d.reason, default: 0] += 1
                if emulator.logs { logPacket(i, "drop", d.packet.byteCount, d.at, d.reason.rawValue) }
            }
            for s in directions[i].scheduled.drainAppliedSteps() { steps.append((i, s.at, s.step)) }
        }
        guard !steps.isEmpty else {
            if directions.contains(where: { $0.counters.received > 0 || $0.counters.sent > 0 }) { publish([]) }
            return
        }
        // A `carrier` coverage loss in either direction takes the link's
        // carrier away at both emulator-side ends: both nodes see NO-CARRIER,
        // as when a radio disassociates.
        for k in carrier.indices {
            let wanted = directions.filter { $0.link == k }.allSatisfy(\.scheduled.carrier)
            guard wanted != carrier[k] else { continue }
            let link = emulator.links[k]
            for end in [link.aSide, link.bSide] {
                do { try routes.setLink(index: end.index, name: end.name, up: wanted) } catch {
                    emulator.log(#"{"event":"error","link":"\#(link.name)","message":"\#(error)"}"#)
                }
            }
            carrier[k] = wanted
        }
        let appliedAt = UserspaceEmulator.now()
        let changes = steps.map { AppliedChange(link: directions[$0.0].name, direction: directions[$0.0].direction,
                                                step: $0.2, scheduled: $0.1, applied: appliedAt) }
        if emulator.logs {
            for c in changes {
                emulator.log(#"{"t":\#(seconds(c.applied)),"link":"\#(c.link)","dir":"\#(c.direction.rawValue)","event":"change","scheduled":\#(seconds(c.scheduled)),"change":"\#(describe(c.step))"}"#)
            }
        }
        publish(changes)
    }

    func publish(_ changes: [AppliedChange]) { emulator.publish(changes, directions) }

    func seconds(_ t: Instant) -> String { String(format: "%.6f", (t - emulator.origin).seconds) }

    func logPacket(_ i: Int, _ event: String, _ bytes: Int, _ at: Instant, _ reason: String?) {
        let r = reason.map { #","reason":"\#($0)""# } ?? ""
        emulator.log(#"{"t":\#(seconds(at)),"link":"\#(directions[i].name)","dir":"\#(directions[i].direction.rawValue)","event":"\#(event)","bytes":\#(bytes)\#(r)}"#)
    }
}

/// A timeline step in words, for logs and the command line.
public func describe(_ step: LinkStep) -> String {
    switch step {
    case .coverage(let up, let loss): return up ? "coverage up" : "coverage down (\(loss.rawValue))"
    case .set(let p):
        var parts: [String] = []
        if let d = p.delay { parts.append("delay \(d)") }
        if let j = p.jitter { parts.append("jitter \(j)") }
        if let r = p.rate { parts.append("rate \(r)") }
        if let l = p.loss { parts.append("loss \(l)") }
        if let q = p.queuePackets { parts.append("queue \(q) packets") }
        if let q = p.queueBytes { parts.append("queue \(q) bytes") }
        return "set " + parts.joined(separator: ", ")
    }
}
