import ArgumentParser
import Core
import ExperimentSimulation
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `wayside bench sim`: how fast `wayside run --simulate` runs (issue 8:
/// at least 100× real time for the default experiment).
struct BenchSimCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sim",
        abstract: "Simulated seconds per wall second of `wayside run --simulate` (default experiment and variants).",
        discussion: """
        Each case is the embedded default experiment (highway-2rsu, 30 s, CBR downlink \
        1000 msg/s × 1 KiB, Swift stack) or a variant of it. `simulate` times the \
        simulation alone (building the network, running it, producing the logs); `run` \
        times all of `wayside run --simulate` (also writing logs, analysing them, \
        results.json, CSV and report.html). `cpu` is the simulation's own CPU time \
        (this thread's), which other work on a shared machine does not inflate. \
        Results go to a temporary folder, removed after.
        """
    )

    @Option(help: "Seed of the route and the links.") var seed: UInt64 = 1
    @Option(help: "Times each case is run (the best is reported).") var repeats: Int = 3

    static func threadCPUSeconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }

    func run() throws {
        let cases: [(String, Experiment)] = {
            var cases: [(String, Experiment)] = [("default (cbr down)", Experiment.standard)]
            var bulk = Experiment.standard
            bulk.traffic = .bulk
            cases.append(("bulk down", bulk))
            var both = Experiment.standard
            both.direction = .both
            cases.append(("cbr both directions", both))
            var redundant = Experiment.standard
            redundant.scheduler = "redundant"
            cases.append(("cbr down, redundant", redundant))
            return cases
        }()
        var rows: [[String]] = [["case", "simulated", "simulate (wall)", "× real time", "simulate (cpu)", "× real time (cpu)",
                                 "run (wall)", "× real time", "segments", "segments/cpu s"]]
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-bench-sim-\(UInt32.random(in: 0...UInt32.max))")
        defer { try? FileManager.default.removeItem(at: base) }
        for (name, experiment) in cases {
            var e = experiment
            e.seed = seed
            e.stacks = [.swift]
            let prepared = try RunCommand.prepare(e)
            let simulation = try SimulatedRun.simulation(for: prepared)
            var bestSimulate = Double.infinity, bestRun = Double.infinity, bestCPU = Double.infinity
            var segments = 0
            for k in 0..<max(1, repeats) {
                let t0 = DispatchTime.now().uptimeNanoseconds
                let c0 = Self.threadCPUSeconds()
                let out = try simulation.run()
                bestCPU = min(bestCPU, Self.threadCPUSeconds() - c0)
                bestSimulate = min(bestSimulate, Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
                segments = out.segments
                let t1 = DispatchTime.now().uptimeNanoseconds
                _ = try SimulatedRun.run(prepared: prepared, outputDirectory: base.appendingPathComponent("\(rows.count)-\(k)"))
                bestRun = min(bestRun, Double(DispatchTime.now().uptimeNanoseconds - t1) / 1e9)
            }
            let simulated = prepared.duration.seconds
            rows.append([name, String(format: "%.1f s", simulated),
                         String(format: "%.3f s", bestSimulate), String(format: "%.1f×", simulated / bestSimulate),
                         String(format: "%.3f s", bestCPU), String(format: "%.1f×", simulated / bestCPU),
                         String(format: "%.3f s", bestRun), String(format: "%.1f×", simulated / bestRun),
                         String(segments), String(format: "%.0f", Double(segments) / bestCPU)])
        }
        print("wayside run --simulate speed (best of \(repeats); goal: ≥ 100× real time for the default experiment)")
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        for row in rows {
            print(row.enumerated().map { c, cell in cell.padding(toLength: widths[c], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }
}
