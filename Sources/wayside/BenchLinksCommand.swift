import ArgumentParser
import Core
import LinkModel
import Simulation

/// `wayside bench links`: how many packets per second each link model, and
/// the simulator as a whole, can move on this machine. Figures, not
/// assertions: speed never decides a test.
struct BenchLinksCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "links",
        abstract: "Measure the throughput of the link models and the simulator (packets per second).",
        discussion: """
        Each model gets a stream of 1500-byte packets in virtual time, driven as the \
        simulator drives it (enqueue at arrival, dequeue at its next event), and the \
        wall time is measured. The simulator row runs a 100 Mbit/s packet stream \
        through a router and reports simulated seconds per wall second.
        """
    )

    @Option(name: .long, help: "Packets per model (default 1000000).")
    var packets = 1_000_000

    @Option(name: .long, help: "Simulated seconds of the simulator run (default 10).")
    var simulatedSeconds = 10

    @Option(name: .long, help: "Run only the rows whose name contains this text ('simulator' for the simulator rows).")
    var only: String?

    func validate() throws {
        guard packets > 0 else { throw ValidationError("--packets must be positive") }
        guard simulatedSeconds > 0 else { throw ValidationError("--simulated-seconds must be positive") }
    }

    func run() throws {
        print("Link models, \(packets) packets of 1500 bytes each (one every 100 us of virtual time):")
        print(pad("model", 44) + pad("Mpackets/s", 12, right: true) + pad("ns/packet", 12, right: true) + pad("delivered", 12, right: true))
        let n = packets
        func row<S: LinkStage>(_ name: String, _ make: () -> S) where S.Packet == BenchPacket {
            if let only, !name.contains(only) { return }
            var stage = make()
            let clock = ContinuousClock()
            var delivered = 0
            let elapsed = clock.measure { delivered = BenchLinksCommand.drive(&stage, count: n) }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(pad(name, 44) + pad(fixed(Double(n) / seconds / 1e6, 3), 12, right: true)
                  + pad(fixed(seconds * 1e9 / Double(n), 1), 12, right: true) + pad("\(delivered)", 12, right: true))
        }
        let trace = try! MahimahiTrace(milliseconds: Array(1...1000).map { Int64($0) }.flatMap { [$0, $0, $0, $0, $0, $0, $0, $0, $0, $0, $0, $0] })
        row("pass-through") { PassThrough<BenchPacket>() }
        row("delay 20ms") { DelayLine<BenchPacket>(delay: .milliseconds(20)) }
        row("delay 20ms, jitter 5ms (order kept)") { DelayLine<BenchPacket>(delay: .milliseconds(20), jitter: .milliseconds(5)) }
        row("delay 20ms, jitter 5ms (reordering)") { DelayLine<BenchPacket>(delay: .milliseconds(20), jitter: .milliseconds(5), allowsReordering: true) }
        row("loss Bernoulli 1%") { RandomLoss<BenchPacket>(.bernoulli(Probability(0.01))) }
        row("loss Gilbert-Elliott") {
            RandomLoss<BenchPacket>(.gilbertElliott(p: Probability(0.01), r: Probability(0.3), lossInGood: .zero, lossInBad: Probability(0.5)))
        }
        row("rate 100mbit, drop-tail 1000p") { RateLink<BenchPacket>(rate: .mbit(100)) }
        row("rate 100mbit, token bucket 15 KB") { RateLink<BenchPacket>(rate: .mbit(100), burstBytes: 15_000) }
        row("rate 100mbit, CoDel") { RateLink<BenchPacket>(rate: .mbit(100), queue: PacketQueue(codel: CoDelParameters())) }
        row("rate 110mbit (overloaded), CoDel") { RateLink<BenchPacket>(rate: .mbit(110), queue: PacketQueue(codel: CoDelParameters())) }
        row("Mahimahi trace, 12 opportunities/ms") { TraceLink<BenchPacket>(trace: trace, origin: .zero) }
        row("duplication 1%") { Duplication<BenchPacket>(probability: Probability(0.01)) }
        row("reordering 1%, +5ms") { Reordering<BenchPacket>(probability: Probability(0.01), extraDelay: .milliseconds(5)) }
        row("pipeline: delay+jitter+loss+rate+queue") {
            LinkPipeline<BenchPacket>(parameters: LinkParameters(delay: .milliseconds(20), jitter: .milliseconds(2), rate: .mbit(200),
                                                                 loss: Probability(0.01), queuePackets: 1000), seed: 1, name: "bench")
        }
        row("pipeline + timeline (rate ramp every 10ms)") {
            let timeline = CoverageTimeline(events: [
                TimelineEvent(at: .zero, link: "l", change: .ramp(LinkParameters(rate: .mbit(400)), over: .seconds(100))),
            ], duration: .seconds(100))
            return ScheduledLink(pipeline: LinkPipeline<BenchPacket>(parameters: LinkParameters(delay: .milliseconds(20), rate: .mbit(200)),
                                                                     seed: 1, name: "l"),
                                 schedule: TimelineSchedule(timeline: timeline, link: "l", direction: .aToB, origin: .zero))
        }

        print("")
        print("Simulator: one 100 Mbit/s stream of 1500-byte packets, host -> router -> host, \(simulatedSeconds) s simulated:")
        print(pad("event log", 12) + pad("packets", 10, right: true) + pad("wall s", 10, right: true)
              + pad("sim s/wall s", 14, right: true) + pad("packets/s", 12, right: true))
        for logs in [false, true] where only == nil || "simulator".contains(only!) {
            let interval = Bitrate.mbit(100).transmissionTime(bytes: 1500)
            let count = Int(Interval.seconds(simulatedSeconds).nanoseconds / interval.nanoseconds)
            let a = NodeAddress(198, 18, 0, 1), b = NodeAddress(198, 18, 1, 1)
            var net = Network(seed: 1, logsEvents: logs)
            let src = try net.addHost("src", PacketSource(from: a, to: b, packetBytes: 1480, interval: interval, count: count))
            let r = try net.addRouter("r")
            let dst = try net.addHost("dst", PacketSink())
            try net.connect(src, a, r, nil, parameters: LinkParameters(delay: .milliseconds(10), rate: .gbit(1)))
            try net.connect(r, nil, dst, b, parameters: LinkParameters(delay: .milliseconds(10), rate: .mbit(100), queuePackets: 100))
            let clock = ContinuousClock()
            let elapsed = clock.measure { net.runUntilIdle() }
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            let received = net.host(dst, as: PacketSink.self)?.arrivals.count ?? 0
            print(pad(logs ? "on" : "off", 12) + pad("\(received)", 10, right: true) + pad(fixed(seconds, 3), 10, right: true)
                  + pad(fixed(net.now.seconds / seconds, 2), 14, right: true) + pad(fixed(Double(received) / seconds, 0), 12, right: true))
        }
    }

    /// Feeds `count` packets, one every 100 us, polling at every next event.
    static func drive<S: LinkStage>(_ stage: inout S, count: Int) -> Int where S.Packet == BenchPacket {
        var delivered = 0
        var i = 0
        let gap = Interval.microseconds(100)
        var nextArrival = Instant.zero
        while true {
            let t = min(i < count ? nextArrival : .distantFuture, stage.nextEventTime)
            if t == .distantFuture { break }
            while stage.dequeue(now: t) != nil { delivered += 1 }
            if i < count && nextArrival == t {
                stage.enqueue(BenchPacket(id: i), now: t)
                i += 1
                nextArrival = nextArrival + gap
            }
            if i & 1023 == 0 { _ = stage.drainDrops() }
        }
        _ = stage.drainDrops()
        return delivered
    }
}

struct BenchPacket: LinkPacket {
    var id: Int
    var byteCount: Int { 1500 }
}

private func pad(_ s: String, _ width: Int, right: Bool = false) -> String {
    let fill = String(repeating: " ", count: max(0, width - s.count))
    return right ? fill + s : s + fill
}

private func fixed(_ v: Double, _ digits: Int) -> String {
    guard v.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let r = (v * scale).rounded() / scale
    var s = "\(r)"
    if digits == 0, s.hasSuffix(".0") { s.removeLast(2) }
    if let dot = s.firstIndex(of: "."), digits > 0 {
        let frac = s[s.index(after: dot)...].count
        if frac < digits { s += String(repeating: "0", count: digits - frac) }
    }
    return s
}
