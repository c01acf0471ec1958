import ArgumentParser
import Core
import Foundation
import MPTCP
import MPTCPSimulation

/// `wayside bench mptcp`: issue 4's handover table in the simulator.
struct BenchMPTCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mptcp",
        abstract: "MPTCP handover in the simulator: path manager × scheduler × coverage × cut.",
        discussion: """
        A vehicle sends CBR (1000 messages/s of 1 KiB) to a server over two roadside-unit \
        paths of 10 ms RTT; the first unit is lost at 5 s, the second appears 1 s before \
        (overlap) or 500 ms after (gap); the loss is silent (black hole) or a carrier loss. \
        Largest delivery gap at the server after 2 s, against issue 4's bound (overlap: \
        1 RTT + 1 ms; gap: 500 ms + 2 RTT + 10 ms), and whether the connection survived \
        (every message delivered intact, no give-up). Virtual time: figures are the \
        protocol's, not this machine's.
        """
    )

    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1
    @Option(help: "Only these path managers (comma-separated).") var pathManagers: String = PathManagers.names.joined(separator: ",")
    @Option(help: "Only these schedulers (comma-separated).") var schedulers: String = Schedulers.names.joined(separator: ",")

    func validate() throws {
        for name in pathManagers.split(separator: ",") where !PathManagers.names.contains(String(name)) {
            throw ValidationError("--path-managers: unknown path manager '\(name)' (known: \(PathManagers.names.joined(separator: ", ")))")
        }
        for name in schedulers.split(separator: ",") where !Schedulers.names.contains(String(name)) {
            throw ValidationError("--schedulers: unknown scheduler '\(name)' (known: \(Schedulers.names.joined(separator: ", ")))")
        }
    }

    @Flag(help: "Also run Linux's simult_flows cases: 16 MiB over two paths (10/10 and 30/10 Mbit/s; 0/0, 1/50, 50/1 ms).")
    var simultFlows = false

    @Flag(help: "Also run the fairness cases: two coupled subflows and one TCP flow at one bottleneck (LIA, OLIA, BALIA, uncoupled).")
    var fairness = false

    func run() throws {
        handoverTable()
        if simultFlows { aggregationTable() }
        if fairness { fairnessTable() }
    }

    func fairnessTable() {
        var rows: [[String]] = [["coupling", "MPTCP (MB)", "TCP (MB)", "MPTCP/TCP", "bound", "within", "utilisation", "joins", "stale"]]
        for algorithm in CoupledAlgorithm.allCases {
            var s = FairnessScenario()
            s.coupled = algorithm
            s.rate = .mbit(4)
            s.roundTripTime = .milliseconds(40)
            s.duration = .seconds(40)
            s.warmUp = .seconds(10)
            s.seed = seed
            let r = s.run()
            let within = algorithm == .uncoupled ? "-" : (r.ratio >= 0.8 && r.ratio <= 1.25 ? "yes" : "NO")
            rows.append([algorithm.rawValue, String(format: "%.2f", Double(r.mptcpBytes) / 1e6),
                         String(format: "%.2f", Double(r.tcpBytes) / 1e6), String(format: "%.2f", r.ratio),
                         algorithm == .uncoupled ? "-" : "0.8–1.25", within, String(format: "%.2f", r.utilisation),
                         "\(r.counters?.joinsEstablished ?? 0)", "\(r.counters?.staleEvents ?? 0)"])
        }
        print("\nMPTCP fairness: two subflows and one NewReno flow at one 4 Mbit/s bottleneck, 40 ms RTT (seconds 10–40)")
        Self.printTable(rows)
    }

    func aggregationTable() {
        var rows: [[String]] = [["rates (Mbit/s)", "delays (ms)", "completion", "ideal", "bound", "within", "intact", "joins", "stale", "reinjections", "MB per path"]]
        for (r1, r2) in [(10.0, 10.0), (30.0, 10.0)] {
            for (d1, d2) in [(0, 0), (1, 50), (50, 1)] {
                var s = AggregationScenario()
                s.rates = (.mbit(r1), .mbit(r2))
                s.delays = (.milliseconds(d1), .milliseconds(d2))
                s.seed = seed
                let r = s.run()
                rows.append(["\(Int(r1))/\(Int(r2))", "\(d1)/\(d2)",
                             r.completionTime.map { String(format: "%.3f s", $0.seconds) } ?? "unfinished",
                             String(format: "%.3f s", s.idealTime.seconds), String(format: "%.3f s", s.bound.seconds),
                             r.withinBound ? "yes" : "NO", r.isIntact ? "yes" : "NO",
                             "\(r.counters?.joinsEstablished ?? 0)", "\(r.counters?.staleEvents ?? 0)",
                             "\(r.counters?.reinjections ?? 0)",
                             r.bytesPerPath.map { String(format: "%.1f", Double($0) / 1e6) }.joined(separator: "/")])
            }
        }
        print("\nMPTCP aggregation, Linux simult_flows.sh (16 MiB, fullmesh, min-rtt; bound: ideal + 10% + 450 ms)")
        Self.printTable(rows)
    }

    static func printTable(_ rows: [[String]]) {
        let widths = rows.reduce(into: [Int](repeating: 0, count: rows[0].count)) { w, row in
            for (i, cell) in row.enumerated() { w[i] = max(w[i], cell.count) }
        }
        for (n, row) in rows.enumerated() {
            print(row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  "))
            if n == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
    }

    func handoverTable() {
        var rows: [[String]] = [["path manager", "scheduler", "coverage", "cut", "largest gap", "bound", "within", "delivered", "survived"]]
        let started = Date()
        for pm in pathManagers.split(separator: ",").map(String.init) {
            for scheduler in schedulers.split(separator: ",").map(String.init) {
                for coverage in [CoveragePattern.overlap(.seconds(1)), .gap(.milliseconds(500))] {
                    for cut in [CoverageLoss.silent, .carrier] {
                        var s = HandoverScenario()
                        s.pathManager = pm
                        s.scheduler = scheduler
                        s.coverage = coverage
                        s.cut = cut
                        s.seed = seed
                        let r = s.run()
                        let coverageName: String
                        switch coverage {
                        case .overlap: coverageName = "overlap 1 s"
                        case .gap: coverageName = "gap 500 ms"
                        }
                        rows.append([pm, scheduler, coverageName, cut.rawValue,
                                     String(format: "%.1f ms", r.largestGap.seconds * 1e3),
                                     String(format: "%.0f ms", s.gapBound.seconds * 1e3),
                                     r.withinBound ? "yes" : "NO",
                                     "\(r.messagesDelivered)/\(r.messagesSent)",
                                     r.survived ? "yes" : "NO"])
                    }
                }
            }
        }
        print("MPTCP handover in the simulator (seed \(seed); \(rows.count - 1) runs in \(String(format: "%.1f", Date().timeIntervalSince(started))) s wall)")
        Self.printTable(rows)
    }
}
