import Testing
import Config
import Core
@testable import Sweep

/// Files that exist for these tests (no file system needed).
let knownFiles: Set<String> = ["Routes/highway-2rsu-30s.yaml", "Routes/highway-80-gaps.yaml", "Topologies/highway-2rsu.yaml"]
func exists(_ path: String) -> Bool { knownFiles.contains(path) }

let exampleSweep = """
name: handovers
simulate: true
matrix:
  route: [highway-2rsu-30s, highway-80-gaps]
  stack: swift
  path-manager: [make-before-break, break-before-make]
  scheduler: [min-rtt, round-robin, redundant]
  rate: [1000]
seeds: {from: 1, count: 5}
assert:
  - "max_gap < 10s"
regression:
  statistic: median
  metrics:
    max_gap: 10% + 20ms
    goodput_mean: 5%
    survived: {tolerance: 0, worse: lower}

"""

func decode(_ text: String, file: String = "Sweeps/test.yaml") throws(ConfigError) -> SweepPlan {
    try SweepPlan.decode(text: text, file: file, fileExists: exists)
}

@Suite("Sweep plan: decoding and expansion")
struct SweepPlanTests {
    @Test func expandsTheMatrixInDimensionOrderWithSeedsInnermost() throws {
        let plan = try decode(exampleSweep)
        #expect(plan.name == "handovers")
        #expect(plan.simulate)
        #expect(plan.runs.count == 2 * 1 * 2 * 3 * 1 * 5)
        #expect(plan.runs.map(\.index) == Array(0..<60))
        #expect(plan.runs[0][.route]?.text == "highway-2rsu-30s")
        #expect(plan.runs[0][.route]?.path == "Routes/highway-2rsu-30s.yaml")
        #expect(plan.runs[0].seed == 1 && plan.runs[4].seed == 5 && plan.runs[5].seed == 1)
        #expect(plan.runs[0][.scheduler]?.text == "min-rtt" && plan.runs[5][.scheduler]?.text == "round-robin")
        #expect(plan.runs[30][.route]?.text == "highway-80-gaps")
        #expect(plan.runs[0].configurationKey == "route=highway-2rsu-30s stack=swift path-manager=make-before-break scheduler=min-rtt rate=1000")
        #expect(Set(plan.runs.map(\.id)).count == 60)
        #expect(Set(plan.runs.map(\.configurationID)).count == 12)
        #expect(plan.tolerances.map(\.metric) == ["max_gap", "goodput_mean", "survived"])
        #expect(plan.tolerances[0].relative == 0.1 && plan.tolerances[0].absolute == 20)
        #expect(plan.tolerances[1].worse == .lower && plan.tolerances[2].worse == .lower)
        #expect(plan.assertions.map(\.text) == ["max_gap < 10s"])
    }

    @Test func runIDsDependOnTheConfigurationNotOnItsPlaceInTheMatrix() throws {
        let a = try decode(exampleSweep)
        // Another file: fewer schedulers, more seeds, other order of path managers.
        let b = try decode(exampleSweep.replacingOccurrences(of: "[min-rtt, round-robin, redundant]", with: "[redundant]")
            .replacingOccurrences(of: "[make-before-break, break-before-make]", with: "[break-before-make, make-before-break]")
            .replacingOccurrences(of: "count: 5", with: "count: 7"), file: "elsewhere/other.yaml")
        let idsA = Dictionary(uniqueKeysWithValues: a.runs.map { ($0.configurationKey + " \($0.seed)", $0.id) })
        var shared = 0
        for r in b.runs {
            if let id = idsA[r.configurationKey + " \(r.seed)"] { #expect(id == r.id); shared += 1 }
        }
        #expect(shared == 2 * 2 * 5)
        #expect(a.fingerprint != b.fingerprint)
        #expect(try decode(exampleSweep).fingerprint == a.fingerprint)
    }

    @Test func shardsPartitionTheMatrixDeterministically() throws {
        let plan = try decode(exampleSweep)
        for n in [1, 2, 3, 7, 60, 61] {
            var seen: [String] = []
            for k in 1...n {
                let part = plan.runs(in: Shard(index: k, count: n))
                #expect(part == plan.runs(in: Shard(index: k, count: n)))
                #expect(abs(part.count - plan.runs.count / n) <= 1)
                seen += part.map(\.id)
            }
            #expect(seen.count == plan.runs.count)
            #expect(Set(seen) == Set(plan.runs.map(\.id)))
        }
        // Interleaved: both shards of two get every configuration of a 5-seed matrix.
        let one = Set(plan.runs(in: Shard(index: 1, count: 2)).map(\.configurationID))
        #expect(one.count == 12)
    }

    @Test func shardFlagsAreChecked() throws {
        #expect(try Shard.parse("2/4").get() == Shard(index: 2, count: 4))
        for bad in ["0/4", "5/4", "1/0", "a/b", "3", "1/2/3", ""] {
            if case .success = Shard.parse(bad) { Issue.record("accepted '\(bad)'") }
        }
    }

    @Test func everyProblemIsReportedWithFileLineAndColumn() {
        let text = """
        name: bad
        simulat: true
        matrix:
          route: [highway-2rsu-30s, nowhere, highway-2rsu-30s]
          traffic: [cbr, bulkk]
          rate: [0]
          scheduller: [min-rtt]
          size: [10]
        seeds: [1, 1]
        regression:
          metrics:
            max_gapp: 10%
            goodput_mean: 5 furlongs
        """
        do {
            _ = try decode(text, file: "Sweeps/bad.yaml")
            Issue.record("a bad sweep was accepted")
        } catch {
            let lines = error.problems.map(\.description)
            func has(_ prefix: String, _ fragment: String) -> Bool { lines.contains { $0.hasPrefix(prefix) && $0.contains(fragment) } }
            #expect(has("Sweeps/bad.yaml:2:1:", "unknown key 'simulat'; did you mean 'simulate'?"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:4:29:", "no route file 'nowhere'"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:4:38:", "already a value of 'route'"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:5:18:", "did you mean 'bulk'?"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:6:10:", "a whole number from 1 to 1000000"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:7:3:", "did you mean 'scheduler'?"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:8:10:", "outside 24 B"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:9:12:", "seed 1 is already listed"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:12:5:", "unknown metric 'max_gapp'; did you mean 'max_gap'?"), "\(lines)")
            #expect(has("Sweeps/bad.yaml:13:19:", "tolerance of 'goodput_mean'"), "\(lines)")
            #expect(lines.count == 10, "\(lines)")
        }
    }

    @Test func aMatrixWithoutRoutesOrValuesIsRefused() {
        #expect(throws: ConfigError.self) { try decode("matrix: {stack: [swift]}") }
        #expect(throws: ConfigError.self) { try decode("matrix: {route: []}") }
        #expect(throws: ConfigError.self) { try decode("seeds: [1]") }
        #expect(throws: ConfigError.self) { try decode("matrix: [route]") }
        #expect(throws: ConfigError.self) { try decode("matrix: {route: x}\n---\nname: two") }
    }

    @Test func tolerancesReadTheMetricsUnits() throws {
        let t = try Tolerance.parse("10% + 20ms", metric: "max_gap", kind: .duration, worse: .higher).get()
        #expect(t.allowance(baseline: 500) == 70)
        #expect(t.worsening(current: 560, baseline: 500) == 60)
        let g = try Tolerance.parse("5% + 1mbit", metric: "goodput_mean", kind: .rate, worse: .lower).get()
        #expect(g.allowance(baseline: 8_000_000) == 1_400_000)
        #expect(g.worsening(current: 7_000_000, baseline: 8_000_000) == 1_000_000)
        // Fractions: a percentage is absolute.
        let s = try Tolerance.parse("10%", metric: "survived", kind: .flag, worse: .lower).get()
        #expect(s.allowance(baseline: 1) == 0.1 && s.relative == 0)
        for bad in ["", "10", "x%", "10% +", "-5%"] {
            if case .success = Tolerance.parse(bad, metric: "max_gap", kind: .duration, worse: .higher) { Issue.record("accepted '\(bad)'") }
        }
    }

    @Test func statisticsOverSeeds() {
        #expect(SweepStatistic.median.of([5, 1, 3]) == 3)
        #expect(SweepStatistic.median.of([4, 1, 3, 2]) == 2.5)
        #expect(SweepStatistic.mean.of([1, 2, 3, 6]) == 3)
        #expect(SweepStatistic.max.of([1, 9, 3]) == 9)
        #expect(SweepStatistic.min.of([]) == nil)
    }

    @Test func pathsResolveLikeExperimentFiles() {
        let files: Set<String> = ["Sweeps/../Routes/a.yaml", "Routes/a.yaml", "x/Routes/b.yaml", "x/s/local.yaml"]
        func e(_ p: String) -> Bool { files.contains(p) || files.contains(p.replacingOccurrences(of: "Sweeps/../", with: "")) }
        #expect(SweepPlan.resolve("a", beside: "Sweeps", folder: "Routes", fileExists: e) == "Routes/a.yaml")
        #expect(SweepPlan.resolve("b.yaml", beside: "x/s", folder: "Routes", fileExists: { files.contains($0) }) == "x/Routes/b.yaml")
        #expect(SweepPlan.resolve("local.yaml", beside: "x/s", folder: "Routes", fileExists: { files.contains($0) }) == "x/s/local.yaml")
        #expect(SweepPlan.resolve("c.yaml", beside: "x/s", folder: "Routes", fileExists: { files.contains($0) }) == "Routes/c.yaml")
        #expect(SweepPlan.resolve("s/local.yaml", beside: "x", folder: "Routes", fileExists: { files.contains($0) }) == "x/s/local.yaml")
        #expect(SweepPlan.resolve("/abs/r.yaml", beside: "x", folder: "Routes", fileExists: { _ in false }) == "/abs/r.yaml")
        #expect(SweepPlan.normalise("a/./b/../c") == "a/c")
    }
}
