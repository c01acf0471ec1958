import Core
import Foundation
import LinkModel
import Netlink
import Testbed
import Testing
@testable import Emulator

func uniqueRunID() -> RunID { RunID("e" + RunID.random().value)! }

/// Two hosts joined by one emulated link `a-b`, built for real, with the
/// userspace emulator running on it (timeline time zero: when it started).
final class EmulatedPair {
    let plan: TestbedPlan
    let testbed: TestbedNetwork
    let emulator: LinkEmulator
    var userspace: UserspaceEmulator { emulator as! UserspaceEmulator }
    let registry: RunRegistry
    let a: Probe.Endpoint
    let b: Probe.Endpoint

    init(link: String, timeline: [TimelineEvent] = [], duration: Interval = .seconds(10),
         backend: EmulatorBackend = .userspace, eventLog: ((String) -> Void)? = nil) throws {
        let yaml = """
        nodes:
          a: {role: host}
          b: {role: host}
        links:
          - {endpoints: [a, b], emulate: true\(link.isEmpty ? "" : ", " + link)}
        """
        let topology = try Topology.parse(text: yaml, file: "pair.yaml")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-emu-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        registry = RunRegistry(directory: dir)
        plan = try TestbedPlan(topology: topology, runID: uniqueRunID())
        testbed = try TestbedNetwork.build(plan, registry: registry)
        let l = plan.links[0]
        a = Probe.Endpoint(namespace: l.a.namespace, address: l.a.address!.address)
        b = Probe.Endpoint(namespace: l.b.namespace, address: l.b.address!.address)
        let t = CoverageTimeline(events: timeline, duration: duration)
        emulator = backend == .netem ? NetemEmulator(links: plan.emulatedLinks, timeline: t)
            : UserspaceEmulator(links: plan.emulatedLinks, timeline: t, seed: 7, eventLog: eventLog)
        do { try emulator.start(origin: nil) } catch { try? testbed.teardown(); throw error }
    }

    func close() {
        emulator.stop()
        try? testbed.teardown()
        try? FileManager.default.removeItem(atPath: registry.directory)
    }

    /// A few datagrams so that ARP has resolved before measuring.
    /// Until datagrams get through both ways (a slow guest kernel may take a while).
    func warmUp() throws {
        for (from, to) in [(a, b), (b, a)] {
            for _ in 0..<20 {
                let run = try Probe.datagrams(from: from, to: to, port: 9, count: 5, interval: .milliseconds(10), size: 64, linger: .milliseconds(100))
                if !run.received.isEmpty { break }
            }
        }
    }
}

func percentile(_ values: [Double], _ p: Double) -> Double {
    let s = values.sorted()
    guard !s.isEmpty else { return .nan }
    return s[min(s.count - 1, Int((Double(s.count - 1) * p).rounded()))]
}

/// Frame bits per second from TCP goodput: full-sized segments of 1448 bytes
/// (MSS 1460 less the 12-byte timestamp option) travel in 1514-byte frames.
func frameRate(_ progress: [(at: Instant, bytes: Int)], from: Interval, to: Interval) -> Double? {
    guard let first = progress.first else { return nil }
    let t0 = first.at + from, t1 = first.at + to
    guard let s = progress.last(where: { $0.at <= t0 }), let e = progress.last(where: { $0.at <= t1 }), e.at > s.at else { return nil }
    return Double(e.bytes - s.bytes) * 8 * 1514 / 1448 / (e.at - s.at).seconds
}

@Suite("Userspace emulator on real namespaces (root)", .enabled(if: getuid() == 0), .serialized)
struct UserspaceEmulatorRootTests {
    @Test func oneWayDelayOf20msWithinHalfAMillisecondAtP99() throws {
        let pair = try EmulatedPair(link: "delay: 20ms")
        defer { pair.close() }
        try pair.warmUp()
        // Moderate load: 1000-byte datagrams every 0.5 ms (16 Mbit/s) for 2 s.
        let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 5001, count: 4000, interval: .microseconds(500))
        let errors = run.received.map { abs($0.oneWay.milliseconds - 20) }
        let p50 = percentile(errors, 0.5), p99 = percentile(errors, 0.99)
        print("delay 20ms: \(run.received.count)/\(run.sent) received, |error| p50 \(p50) ms, p99 \(p99) ms, max \(errors.max() ?? .nan) ms; realtime \(pair.userspace.realtime)")
        #expect(run.received.count == run.sent)
        #expect(p99 <= 0.5, "p99 one-way delay error \(p99) ms")
        // Never early: the emulator holds each frame at least the configured delay.
        #expect(run.received.allSatisfy { $0.oneWay >= .milliseconds(20) })
    }

    @Test(arguments: [10, 100])
    func rateWithinThreePercent(megabits: Int) throws {
        let pair = try EmulatedPair(link: "rate: \(megabits)mbit")
        defer { pair.close() }
        try pair.warmUp()
        let before = pair.userspace.counters(link: "a-b", direction: .aToB)
        let progress = try Probe.bulk(from: pair.a, to: pair.b, port: 5002, duration: .seconds(4))
        let after = pair.userspace.counters(link: "a-b", direction: .aToB)
        let measured = try #require(frameRate(progress, from: .seconds(1), to: .milliseconds(3900)))
        let configured = Double(megabits) * 1e6
        print("rate \(megabits)mbit: TCP goodput as frames \(measured / 1e6) Mbit/s (\((measured / configured - 1) * 100)%), emulator sent \(after.sent - before.sent) frames, dropped \(after.dropped)")
        #expect(abs(measured / configured - 1) <= 0.03, "measured \(measured / 1e6) Mbit/s")
    }

    @Test func configuredLossWithinStatisticalBounds() throws {
        // Loss is switched on by the timeline once ARP has resolved.
        let pair = try EmulatedPair(link: "", timeline: [
            TimelineEvent(at: .milliseconds(400), link: "a-b", direction: .aToB, change: .set(LinkParameters(loss: Probability(0.05)))),
        ])
        defer { pair.close() }
        try pair.warmUp()
        usleep(300_000)
        let n = 4000
        let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 5003, count: n, interval: .microseconds(500), size: 200)
        let lost = Double(run.sent - run.received.count)
        // Binomial(4000, 0.05): mean 200, sd 13.8; 4.5 sd either side.
        let mean = Double(run.sent) * 0.05, sd = (Double(run.sent) * 0.05 * 0.95).squareRoot()
        let counters = pair.userspace.counters(link: "a-b", direction: .aToB)
        print("loss 5%: \(Int(lost)) of \(run.sent) lost (expected \(mean) ± \(sd)); emulator drops \(counters.dropped)")
        #expect(run.sent == n)
        #expect(abs(lost - mean) <= 4.5 * sd)
        #expect(counters.dropped[.loss, default: 0] == Int(lost))
    }

    @Test func coverageChangesAppliedWithinTwoMilliseconds() throws {
        var events: [TimelineEvent] = []
        for k in 0..<10 {
            events.append(TimelineEvent(at: .milliseconds(300 + 150 * k), link: "a-b",
                                        change: .coverage(k % 2 == 1, loss: .silent)))
        }
        let pair = try EmulatedPair(link: "delay: 1ms", timeline: events)
        defer { pair.close() }
        try pair.warmUp()
        // Datagrams every ms across the whole timeline.
        let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 5004, count: 1900, interval: .milliseconds(1), size: 100)
        let applied = pair.emulator.appliedChanges
        let late = applied.map(\.lateness.milliseconds)
        print("coverage: \(applied.count) changes applied, lateness max \(late.max() ?? .nan) ms, p50 \(percentile(late, 0.5)) ms")
        #expect(applied.count == 20)  // each change in both directions
        #expect(applied.allSatisfy { $0.lateness >= .zero && $0.lateness <= .milliseconds(2) })
        // Nothing sent well inside a coverage gap arrives; what is sent well inside coverage does.
        let origin = pair.emulator.origin
        func gap(_ t: Interval) -> Bool? {
            for k in 0..<10 {
                let start = Interval.milliseconds(300 + 150 * k), end = start + .milliseconds(150)
                if t >= start + .milliseconds(3) && t < end - .milliseconds(3) { return k % 2 == 0 }
                if t >= start - .milliseconds(3) && t < start + .milliseconds(3) { return nil }
            }
            return t >= .milliseconds(1803) ? false : (t < .milliseconds(297) ? false : nil)
        }
        let arrived = Set(run.received.map(\.sequence))
        var wrong = 0
        for (seq, sent) in run.sendTimes.enumerated() where sent != .distantFuture {
            guard let inGap = gap(sent - origin) else { continue }
            if inGap == arrived.contains(seq) { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) datagrams met the wrong coverage")
    }

    @Test func carrierLossShowsAsNoCarrierAtTheNode() throws {
        let pair = try EmulatedPair(link: "", timeline: [
            TimelineEvent(at: .milliseconds(300), link: "a-b", change: .coverage(false, loss: .carrier)),
            TimelineEvent(at: .milliseconds(900), link: "a-b", change: .coverage(true, loss: .carrier)),
        ])
        defer { pair.close() }
        let link = pair.plan.links[0]
        let node = try NetworkNamespace.open(named: link.a.namespace).routeSocket()
        let peer = try NetworkNamespace.open(named: link.b.namespace).routeSocket()
        #expect(try node.state(ofLink: link.a.name).isRunning)
        usleep(600_000)
        let down = try node.state(ofLink: link.a.name), peerDown = try peer.state(ofLink: link.b.name)
        print("carrier at 0.6 s: \(down.operationalState) carrier=\(down.carrier); peer \(peerDown.operationalState)")
        #expect(down.up && !down.carrier, "the node's interface is administratively up without carrier (NO-CARRIER)")
        #expect(!peerDown.carrier)
        usleep(600_000)
        #expect(try node.state(ofLink: link.a.name).isRunning)
        let applied = pair.emulator.appliedChanges
        print("carrier changes lateness: \(applied.map(\.lateness.milliseconds)) ms")
        #expect(applied.count == 4)
        #expect(applied.allSatisfy { $0.lateness >= .zero && $0.lateness <= .milliseconds(2) })
    }

    @Test func eventLogHasEveryFrameAndChange() throws {
        let lines = LogLines()
        let pair = try EmulatedPair(link: "delay: 5ms", timeline: [
            TimelineEvent(at: .milliseconds(200), link: "a-b", direction: .aToB, change: .set(LinkParameters(delay: .milliseconds(8)))),
        ], eventLog: lines.append)
        defer { pair.close() }
        try pair.warmUp()
        usleep(200_000)
        let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 5005, count: 200, interval: .milliseconds(1), size: 300)
        pair.emulator.stop()
        let records = try lines.all.map { try #require(JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]) }
        // The probe's datagrams are the 342-byte frames a→b (300 + 8 + 20 + 14).
        let probe = records.filter { $0["dir"] as? String == "a-to-b" && $0["bytes"] as? Int == 342 }
        let arrivals = probe.filter { $0["event"] as? String == "arrival" }.compactMap { $0["t"] as? Double }
        let departures = probe.filter { $0["event"] as? String == "departure" }.compactMap { $0["t"] as? Double }
        let changes = records.filter { $0["event"] as? String == "change" }
        print("event log: \(records.count) lines, \(arrivals.count) arrivals and \(departures.count) departures of probe frames, \(changes.count) changes")
        #expect(arrivals.count == run.sent && departures.count == run.received.count && run.received.count == run.sent)
        #expect(changes.count == 1 && changes.first?["change"] as? String == "set delay 8ms")
        // In order on the link, each frame leaves 8 ms after it came (the
        // change came first); a departure is logged when it was sent, so the
        // loop's wake-up latency shows.
        let held = zip(arrivals, departures).map { ($1 - $0) * 1000 }
        print("held p50 \(percentile(held, 0.5)) ms, p99 \(percentile(held, 0.99)) ms, min \(held.min() ?? 0) ms")
        #expect(held.allSatisfy { $0 >= 8 - 0.001 })
    }
}

final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.lock(); lines.append(line); lock.unlock() }
    var all: [String] { lock.lock(); defer { lock.unlock() }; return lines }
}
