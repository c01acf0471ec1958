import ArgumentParser
import Core
import Foundation
import TCP
import TCPSimulation

/// `wayside bench tcp`: the TCP engine's figures in the simulator (issue 3).
struct BenchTCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp",
        abstract: "TCP in the simulator: utilisation, loss response vs Mathis, fairness, speed.",
        discussion: """
        (a) one flow, 20 Mbit/s, 50 ms RTT, BDP queue, no loss: goodput from 5 s to 30 s \
        against the link rate (goal ≥ 95%); (b) 1% random loss: Reno against the Mathis \
        estimate MSS/RTT·1.22/√p, and CUBIC against Reno; (c) two flows on one bottleneck: \
        Jain fairness over 30 s (goal ≥ 0.95); (d) simulated seconds per wall-clock second \
        for a 100 Mbit/s transfer, and the engine's own cost in ns per segment.
        """
    )

    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1

    func run() throws {
        var rows: [[String]] = [["case", "measured", "reference", "ratio", "goal"]]
        func base() -> TCPScenario {
            var s = TCPScenario()
            s.rate = .mbit(20)
            s.roundTripTime = .milliseconds(50)
            s.configuration.receiveBufferSize = 4 << 20
            s.configuration.sendBufferSize = 4 << 20
            s.seed = seed
            return s
        }
        let linkRate = 20e6

        // (a) Utilisation after slow start.
        for cc in [CongestionControlAlgorithm.cubic, .newReno] {
            var s = base()
            s.configuration.congestionControl = cc
            s.duration = .seconds(30)
            let r = s.run()
            let g = r.flows[0].goodput(from: .zero + .seconds(5), to: .zero + .seconds(30))
            rows.append(["(a) \(cc.rawValue), no loss, goodput 5–30 s", TCPReport.mbit(g), "link " + TCPReport.mbit(linkRate),
                         String(format: "%.1f%%", 100 * g / linkRate), "≥ 95%"])
        }

        // (b) 1% random loss: Reno vs Mathis, CUBIC vs Reno.
        var lossy: [CongestionControlAlgorithm: Double] = [:]
        var renoRTT = 0.05
        for cc in [CongestionControlAlgorithm.newReno, .cubic] {
            var s = base()
            s.configuration.congestionControl = cc
            s.loss = Probability(0.01)
            s.duration = .seconds(120)
            let r = s.run()
            lossy[cc] = r.flows[0].goodput(from: .zero + .seconds(5), to: .zero + .seconds(120))
            if cc == .newReno, let srtt = r.flows[0].sender.connection.smoothedRTT { renoRTT = srtt.seconds }
        }
        let mss = 1_448.0
        let mathis = mss * 8 / 0.05 * 1.22 / 0.01.squareRoot()
        rows.append(["(b) reno, 1% loss", TCPReport.mbit(lossy[.newReno]!), "Mathis " + TCPReport.mbit(mathis),
                     String(format: "%.2f", lossy[.newReno]! / mathis), "≈ 1"])
        rows.append(["    (Mathis with measured SRTT \(String(format: "%.0f ms", renoRTT * 1e3)))", "",
                     TCPReport.mbit(mss * 8 / renoRTT * 1.22 / 0.1), String(format: "%.2f", lossy[.newReno]! / (mss * 8 / renoRTT * 1.22 / 0.1)), ""])
        rows.append(["(b) cubic, 1% loss", TCPReport.mbit(lossy[.cubic]!), "reno " + TCPReport.mbit(lossy[.newReno]!),
                     String(format: "%.2f", lossy[.cubic]! / lossy[.newReno]!), "≥ 1"])

        // (c) Two flows sharing the bottleneck.
        for cc in [CongestionControlAlgorithm.cubic, .newReno] {
            var s = base()
            s.configuration.congestionControl = cc
            s.flows = 2
            s.flowStartSpacing = .milliseconds(500)
            s.duration = .seconds(30)
            let r = s.run()
            let end = Instant.zero + .seconds(30)
            let j = r.jainFairness(from: .zero + .seconds(1), to: end)
            let g = r.flows.map { TCPReport.mbit($0.goodput(from: .zero + .seconds(1), to: end)) }.joined(separator: " + ")
            rows.append(["(c) 2 × \(cc.rawValue), Jain over 1–30 s", String(format: "%.3f", j), g, "", "≥ 0.95"])
        }

        // (d) Simulator and engine speed.
        var fast = base()
        fast.rate = .mbit(100)
        fast.roundTripTime = .milliseconds(20)
        fast.duration = .seconds(20)
        let clock = ContinuousClock()
        var result: TCPScenarioResult?
        let wall = clock.measure { result = fast.run() }
        let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) / 1e18
        let simulated = result!.simulatedTime.seconds
        rows.append(["(d) 100 Mbit/s, 20 ms: simulated s per wall s", String(format: "%.1f", simulated / wallSeconds),
                     String(format: "%.0f s in %.2f s wall", simulated, wallSeconds),
                     String(format: "%.0f segments/s", Double(result!.engineSegments) / wallSeconds), "-"])
        var loop = EngineLoop()
        var ok = false
        let engineWall = clock.measure { ok = loop.transfer(200_000_000) }
        let engineSeconds = Double(engineWall.components.seconds) + Double(engineWall.components.attoseconds) / 1e18
        rows.append(["(d) engine cost per segment (back to back, 200 MB)",
                     String(format: "%.0f ns", engineSeconds * 1e9 / Double(max(1, loop.segmentsHandled))),
                     "\(loop.segmentsHandled) segments" + (ok ? "" : " (incomplete!)"), "", "-"])

        print("TCP benchmarks in the simulator (seed \(seed))")
        let widths = rows.reduce(into: [Int](repeating: 0, count: 5)) { w, row in
            for (i, cell) in row.enumerated() { w[i] = max(w[i], cell.count) }
        }
        for (n, row) in rows.enumerated() {
            print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
            if n == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
    }
}
