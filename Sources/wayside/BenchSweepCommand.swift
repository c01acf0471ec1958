import ArgumentParser
import Config
import Core
import Foundation
import Sweep

/// `wayside bench sweep`: simulated sweep throughput on this machine — the
/// same runs with one job, then one per core — in runs per minute.
struct BenchSweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Simulated sweep throughput: runs per minute with one job and with one per core."
    )

    @Option(help: ArgumentHelp("The sweep file whose first runs are timed.", valueName: "FILE"))
    var sweep = "Sweeps/handover-ci.yaml"

    @Option(help: "How many runs of the matrix (from its start) to time per row.")
    var runs = 16

    func run() throws {
        let plan: SweepPlan
        switch Result(catching: { () throws(ConfigError) -> SweepPlan in try loadSweep(sweep) }) {
        case .success(let p): plan = p
        case .failure(let e): throw ValidationError(e.description)
        }
        guard runs >= 1 else { throw ValidationError("--runs: at least one run") }
        // Spread over the matrix, so every configuration is timed.
        let step = max(1, plan.runs.count / runs)
        let selected = Array(stride(from: 0, to: plan.runs.count, by: step).prefix(runs).map { plan.runs[$0] })
        let executor = SimulatedRunExecutor(assertions: [])
        if let problems = executor.check(selected) { throw ValidationError(problems.description) }
        // Virtual time per run: the drive's length, or the sweep's duration if shorter.
        let simulated = try selected.map { r -> Double in
            do { return try RunCommand.prepare(experiment(for: r, assertions: [])).duration.seconds } catch { throw ValidationError("\(r.id): \(error)") }
        }
        let cores = SweepScheduler.defaultJobs
        print("wayside bench sweep: \(selected.count) simulated runs of \(plan.file) (every \(step). of \(plan.runs.count)), "
              + String(format: "%.0f s simulated in all, ", simulated.reduce(0, +)) + "\(cores) cores")
        var rows: [[String]] = [["jobs", "runs", "failed", "wall s", "runs/min", "simulated s per wall s"]]
        for jobs in Array(Set([1, cores])).sorted() {
            let folder = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-bench-sweep-\(UUID().uuidString.prefix(8))")
            defer { try? FileManager.default.removeItem(at: folder) }
            let start = DispatchTime.now().uptimeNanoseconds
            let records = SweepScheduler.run(selected, executor: executor, jobs: jobs, folder: folder, stop: StopRequest())
            let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            let failed = records.filter { $0.status == .failed }
            for f in failed.prefix(3) { FileHandle.standardError.write(Data("\(f.id): \(f.message ?? "")\n".utf8)) }
            let virtual = String(format: "%.1f", simulated.reduce(0, +) / wall)
            rows.append([String(jobs), String(records.count), String(failed.count), String(format: "%.2f", wall),
                         String(format: "%.1f", Double(records.count) * 60 / wall), virtual])
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max()! }
        for r in rows {
            print(r.enumerated().map { c, cell in String(repeating: " ", count: widths[c] - cell.count) + cell }.joined(separator: "  "))
        }
    }
}
