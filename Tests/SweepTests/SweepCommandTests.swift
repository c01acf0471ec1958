import Testing
import Analysis
import Config
import Foundation
@testable import Sweep
@testable import wayside

/// A test double: metrics from a formula of the run's configuration and seed,
/// a file in the run's folder, and a failure for runs it is told to fail.
struct FormulaExecutor: SweepExecutor {
    var failing: Set<String> = []
    var refused: String? = nil
    var kind: String { "formula" }

    func problems(_ run: SweepRun) -> [ConfigProblem] {
        guard let refused, let v = run[.scheduler], v.text == refused else { return [] }
        return [ConfigProblem(at: v.location, "this executor has no scheduler '\(refused)'")]
    }

    func execute(_ run: SweepRun, folder: URL, stop: StopRequest) throws -> SweepRunOutput {
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        try Data("run \(run.id)\n".utf8).write(to: folder.appendingPathComponent("results.json"))
        if failing.contains(run.id) { throw RunFailure("formula refused \(run.id)") }
        let k = Double(["min-rtt", "round-robin", "redundant"].firstIndex(of: run[.scheduler]?.text ?? "") ?? 0)
        return SweepRunOutput(metrics: [
            .init(name: "survived", value: 1, unit: "bool"),
            .init(name: "max_gap", value: 100 * (1 + k) + Double(run.seed), unit: "ms"),
            .init(name: "goodput_mean", value: 8e6, unit: "bit/s"),
        ])
    }
}

func temporaryFolder() -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-sweep-test-\(UUID().uuidString.prefix(8))")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("Sweep command: scheduling runs, merging shard folders")
struct SweepCommandTests {
    @Test func runsEveryRunOnSeveralThreadsAndRecordsFailures() throws {
        let plan = try decode(exampleSweep)
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let executor = FormulaExecutor(failing: [plan.runs[10].id])
        let records = SweepScheduler.run(plan.runs, executor: executor, jobs: 3, folder: folder, stop: StopRequest())
        #expect(records.map(\.index) == Array(0..<60))
        #expect(records.filter { $0.status == .failed }.map(\.id) == [plan.runs[10].id])
        #expect(records[10].message == "formula refused \(plan.runs[10].id)")
        #expect(records[0].metric("max_gap") == 101)
        for r in plan.runs {
            #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent("runs/\(r.id)/results.json").path))
        }
    }

    @Test func aStoppedSweepStartsNoMoreRuns() throws {
        let plan = try decode(exampleSweep)
        let folder = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let stop = StopRequest()
        stop.stop()
        #expect(SweepScheduler.run(plan.runs, executor: FormulaExecutor(), jobs: 2, folder: folder, stop: stop).isEmpty)
    }

    @Test func executorProblemsAreLocatedAndReportedOnce() throws {
        let plan = try decode(exampleSweep)
        let problems = FormulaExecutor(refused: "redundant").check(plan.runs)
        #expect(problems?.problems.map(\.description) == ["Sweeps/test.yaml:7:37: this executor has no scheduler 'redundant'"])
        let real = RealRunExecutor(assertions: []).check(plan.runs)?.problems.map(\.description) ?? []
        #expect(real.contains { $0.hasPrefix("Sweeps/test.yaml:5:10: stack 'swift' cannot run for real yet") })
        #expect(real.contains { $0.hasPrefix("Sweeps/test.yaml:6:18: expected kernel MPTCP's in-kernel path manager") })
        #expect(real.contains { $0.hasPrefix("Sweeps/test.yaml:7:15: a real run cannot set the scheduler") })
    }

    @Test func shardsRunSeparatelyThenMergedEqualTheWholeSweep() throws {
        let plan = try decode(exampleSweep)
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var folders: [String] = []
        for k in 1...2 {
            let shard = Shard(index: k, count: 2)
            let folder = root.appendingPathComponent("shard\(k)")
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            let recs = SweepScheduler.run(plan.runs(in: shard), executor: FormulaExecutor(), jobs: 2, folder: folder, stop: StopRequest())
            #expect(try finishSweep(SweepManifest(plan: plan, shard: shard, records: recs), folder: folder, baseline: nil,
                                    substitutions: [], writeBaseline: nil, junit: nil, quiet: true))
            folders.append(folder.path)
        }
        let merged = root.appendingPathComponent("merged")
        let baselineFile = root.appendingPathComponent("baseline.json").path
        var merge = try MergeCommand.parse(folders + ["--output", merged.path, "--write-baseline", baselineFile, "--quiet"])
        try merge.run()
        let manifest = try readManifest(merged.path)
        #expect(manifest.records.count == 60 && manifest.missingShards.isEmpty)
        let whole = SweepScheduler.run(plan.runs, executor: FormulaExecutor(), jobs: 1, folder: root.appendingPathComponent("whole"), stop: StopRequest())
        #expect(manifest.records.map(\.id) == whole.map(\.id))
        #expect(manifest.records.map(\.metrics) == whole.map(\.metrics))
        for r in plan.runs {
            #expect(FileManager.default.fileExists(atPath: merged.appendingPathComponent("runs/\(r.id)/results.json").path))
        }
        for name in ["sweep.json", "summary.csv", "summary.html"] {
            #expect(FileManager.default.fileExists(atPath: merged.appendingPathComponent(name).path))
        }
        // The merged sweep against its own baseline passes.
        var regress = try RegressCommand.parse([merged.path, "--baseline", baselineFile, "--junit", root.appendingPathComponent("j.xml").path])
        try regress.run()
        // Merging into a folder that is not empty, or a shard twice, is refused.
        var again = try MergeCommand.parse(folders + ["--output", merged.path])
        #expect(throws: (any Error).self) { try again.run() }
        var twice = try MergeCommand.parse([folders[0], folders[0], "--output", root.appendingPathComponent("m2").path])
        #expect(throws: (any Error).self) { try twice.run() }
        #expect(!FileManager.default.fileExists(atPath: root.appendingPathComponent("m2").path))
    }

    @Test func badFlagsAreRefusedBeforeAnythingRuns() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        let file = root.appendingPathComponent("s.yaml")
        try Data("matrix: {route: [\(FileManager.default.currentDirectoryPath)/Routes/highway-2rsu-30s.yaml]}\n".utf8).write(to: file)
        for flags in [["--shard", "3/2"], ["--jobs", "0"], ["--shard", "1/2", "--baseline", "b.json"], ["--compare-as", "scheduler=a:b"],
                      ["--shard", "1/2", "--write-baseline", "b.json"]] {
            #expect(throws: (any Error).self) { _ = try SweepCommand.parse([file.path] + flags) }
        }
        try Data("matrix: {route: [nowhere], stak: [swift]}\n".utf8).write(to: file)
        do {
            _ = try SweepCommand.parse([file.path])
            Issue.record("a bad sweep file was accepted")
        } catch {
            let text = SweepCommand.message(for: error)
            #expect(text.contains("\(file.path):1:18: no route file 'nowhere'"), "\(text)")
            #expect(text.contains("\(file.path):1:28: unknown key 'stak'; did you mean 'stack'?"), "\(text)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: root.path) == ["s.yaml"])
    }

    @Test func shippedSweepsDecodeAndTheirExecutorAcceptsEveryRun() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sweeps")
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasSuffix(".yaml") }.sorted()
        #expect(!files.isEmpty)
        for name in files {
            let plan = try loadSweep(folder.appendingPathComponent(name).path)
            #expect(plan.name + ".yaml" == name, "the sweep's name gives its default folder; keep it equal to the file's")
            let executor: SweepExecutor = plan.simulate ? try simulatedExecutor(assertions: []) : RealRunExecutor(assertions: [])
            #expect(executor.check(plan.runs) == nil, "\(name): \(executor.check(plan.runs)?.description ?? "")")
        }
    }
}
