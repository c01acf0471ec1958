import Foundation
import Testing
@testable import Sweep
@testable import wayside

/// Issue 8, "what must be shown" 2: the committed simulated sweep
/// (`Sweeps/handover-ci.yaml`, ≥ 50 runs) run as two shards, merged, checked
/// against the committed baseline (passes), and the degraded configuration —
/// break-before-make compared as make-before-break — checked against the same
/// baseline (fails, with a diff and JUnit failures).
@Suite("Simulated sweep in CI: shards, merge, regression")
struct SimulatedSweepCITests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let sweep = repository.appendingPathComponent("Sweeps/handover-ci.yaml").path
    static let baseline = repository.appendingPathComponent("Sweeps/handover-ci.baseline.json").path

    @Test func twoShardsMergedPassTheBaselineAndTheDegradedConfigurationFails() throws {
        let root = temporaryFolder()
        defer { try? FileManager.default.removeItem(at: root) }
        var shards: [String] = []
        for k in 1...2 {
            let out = root.appendingPathComponent("shard\(k)").path
            var command = try SweepCommand.parse([Self.sweep, "--shard", "\(k)/2", "--jobs", "2", "--output", out, "--quiet"])
            try command.run()
            shards.append(out)
        }
        let merged = root.appendingPathComponent("merged").path
        let junit = root.appendingPathComponent("junit.xml").path
        var merge = try MergeCommand.parse(shards + ["--output", merged, "--baseline", Self.baseline, "--junit", junit, "--quiet"])
        try merge.run()
        let manifest = try readManifest(merged)
        #expect(manifest.records.count >= 50)
        #expect(manifest.records.allSatisfy { $0.status == .ok && $0.failedThresholds.isEmpty })
        #expect(manifest.simulate && manifest.missingShards.isEmpty)
        // Same configuration and seed, same metrics: a few runs again, in another folder.
        let again = root.appendingPathComponent("again").path
        var rerun = try SweepCommand.parse([Self.sweep, "--shard", "1/26", "--jobs", "1", "--output", again, "--quiet"])
        try rerun.run()
        let repeated = try readManifest(again).records
        #expect(repeated.count == 2)
        for r in repeated {
            #expect(manifest.records.first { $0.id == r.id }?.metrics == r.metrics)
        }
        let passing = try String(contentsOfFile: junit, encoding: .utf8)
        #expect(passing.contains("failures=\"0\""))

        // The same runs, break-before-make standing in for make-before-break.
        let degradedJUnit = root.appendingPathComponent("degraded.xml").path
        var degraded = try RegressCommand.parse([merged, "--baseline", Self.baseline, "--junit", degradedJUnit,
                                                 "--compare-as", "path-manager=break-before-make:make-before-break"])
        #expect(throws: (any Error).self) { try degraded.run() }
        let base = try SweepBaseline.parse(String(contentsOfFile: Self.baseline, encoding: .utf8)).get()
        let report = RegressionReport.compare(current: manifest, baseline: base, tolerances: manifest.tolerances,
                                              substitutions: [try Substitution.parse("path-manager=break-before-make:make-before-break").get()])
        #expect(!report.passed)
        #expect(report.failures.contains { $0.metric == "max_gap" && $0.label.contains("path-manager=break-before-make") })
        #expect(report.diff.contains("REGRESSED"))
        let failing = try String(contentsOfFile: degradedJUnit, encoding: .utf8)
        #expect(failing.contains("type=\"regression\""))
    }
}
