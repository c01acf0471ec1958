import Testing
import Analysis
import Core
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
@testable import Sweep

/// Made-up outcomes with known answers: max_gap = 100 ms × (1 + scheduler
/// number) + seed ms, goodput 8 Mbit/s − seed × 0.1 Mbit/s, survived unless
/// break-before-make with seed 2.
func records(_ plan: SweepPlan, gapScale: Double = 1, failing: Set<String> = []) -> [SweepRecord] {
    plan.runs.map { r in
        if failing.contains(r.id) { return SweepRecord(run: r, status: .failed, message: "the test said so") }
        let k = Double(["min-rtt", "round-robin", "redundant"].firstIndex(of: r[.scheduler]?.text ?? "") ?? 0)
        let gap = (100 * (1 + k) + Double(r.seed)) * gapScale
        let survived = !(r[.pathManager]?.text == "break-before-make" && r.seed == 2)
        return SweepRecord(run: r, status: .ok, wallSeconds: 0.5, metrics: [
            .init(name: "survived", value: survived ? 1 : 0, unit: "bool"),
            .init(name: "max_gap", value: gap, unit: "ms"),
            .init(name: "goodput_mean", value: 8e6 - Double(r.seed) * 1e5, unit: "bit/s"),
        ])
    }
}

func wellFormed(_ xml: String) -> Bool {
    let parser = XMLParser(data: Data(xml.utf8))
    return parser.parse()
}

@Suite("Sweep summaries, baselines and regression checks")
struct SummaryAndRegressionTests {
    @Test func summaryCSVHasOneRowPerRunWithConfigurationColumnsAndMetrics() throws {
        let plan = try decode(exampleSweep)
        let m = SweepManifest(plan: plan, shard: .whole, records: records(plan))
        let lines = SweepSummary.csv(m).split(separator: "\n").map(String.init)
        #expect(lines.count == 61)
        #expect(lines[0] == "run,configuration,seed,route,stack,path-manager,scheduler,rate,status,wall_s,survived,max_gap_ms,goodput_mean_bps")
        let first = plan.runs[0]
        #expect(lines[1] == "\(first.id),\(first.configurationID),1,highway-2rsu-30s,swift,make-before-break,min-rtt,1000,ok,0.500,1,101.000,7900000.000")
    }

    @Test func configurationsFoldSeedsWithTheStatistic() throws {
        let plan = try decode(exampleSweep)
        let s = ConfigurationSummary.summarize(records(plan), statistic: .median)
        #expect(s.count == 12)
        #expect(s[0].runs == 5 && s[0].failed == 0)
        #expect(s[0].metric("max_gap")?.value == 103)       // seeds 1…5: 101…105
        #expect(s[0].metric("max_gap")?.min == 101 && s[0].metric("max_gap")?.max == 105)
        #expect(s[1].metric("max_gap")?.value == 203)
        // Flags fold as the fraction of runs: break-before-make loses seed 2.
        #expect(s[0].metric("survived")?.value == 1)
        #expect(s[3].metric("survived")?.value == 0.8)
    }

    @Test func summaryPageIsSelfContainedWellFormedWithAPlotPerMetric() throws {
        let plan = try decode(exampleSweep)
        var recs = records(plan, failing: [plan.runs[7].id])
        recs[3].failedThresholds = ["max_gap < 10s: max_gap = 12 s, expected < 10 s"]
        let html = SweepSummary.html(SweepManifest(plan: plan, shard: .whole, records: recs))
        #expect(wellFormed(html))
        #expect(html.components(separatedBy: "<svg ").count - 1 == 3)
        #expect(html.components(separatedBy: "class=\"median\"").count - 1 == 3 * 12)
        #expect(!html.contains("<script") && !html.contains("http://") || !html.contains("src="))
        #expect(html.contains("the test said so"))
        #expect(html.contains("max_gap &lt; 10s"))
        // Labels name only what varies (stack and rate are the same everywhere).
        #expect(html.contains("highway-2rsu-30s · make-before-break · min-rtt"))
    }

    @Test func manifestRoundTripsThroughJSON() throws {
        let plan = try decode(exampleSweep)
        let m = SweepManifest(plan: plan, shard: Shard(index: 2, count: 3), records: records(plan, failing: [plan.runs[1].id]))
        let back = try SweepManifest.parse(m.render()).get()
        #expect(back.records == m.records)
        #expect(back.fingerprint == m.fingerprint && back.shards == m.shards && back.totalRuns == 60)
        #expect(back.tolerances == m.tolerances && back.dimensions == m.dimensions && back.simulate)
        #expect(back.render() == m.render())
        for bad in ["", "{}", "{\"schema\":\"wayside.sweep\",\"version\":2}", "[1,2]", "{\"schema\":\"wayside.sweep\",\"version\":1}"] {
            if case .success = SweepManifest.parse(bad) { Issue.record("parsed '\(bad)'") }
        }
    }

    @Test func mergingShardsGivesTheWholeSweepAndRefusesMismatches() throws {
        let plan = try decode(exampleSweep)
        let all = records(plan)
        func shard(_ k: Int, _ n: Int) -> SweepManifest {
            let s = Shard(index: k, count: n)
            return SweepManifest(plan: plan, shard: s, records: all.filter { r in plan.runs[r.index].index % n == k - 1 })
        }
        let merged = try SweepManifest.merge([("a", shard(2, 2)), ("b", shard(1, 2))]).get()
        #expect(merged.records == SweepManifest(plan: plan, shard: .whole, records: all).records)
        #expect(merged.shards == [Shard(index: 1, count: 2), Shard(index: 2, count: 2)] && merged.missingShards.isEmpty)
        #expect(try SweepManifest.merge([("a", shard(1, 3))]).get().missingShards == [Shard(index: 2, count: 3), Shard(index: 3, count: 3)])

        func refusal(_ parts: [(String, SweepManifest)]) -> String {
            switch SweepManifest.merge(parts.map { (origin: $0.0, manifest: $0.1) }) {
            case .success: return "merged"
            case .failure(let e): return e.message
            }
        }
        #expect(refusal([("a", shard(1, 2)), ("b", shard(1, 2))]).contains("shard 1/2 is in both a and b"))
        #expect(refusal([("a", shard(1, 2)), ("b", shard(1, 3))]).contains("split the sweep the same way"))
        var other = try decode(exampleSweep.replacingOccurrences(of: "count: 5", with: "count: 6"))
        other.name = "other"
        #expect(refusal([("a", shard(1, 2)), ("b", SweepManifest(plan: other, shard: Shard(index: 2, count: 2), records: []))])
            .contains("only shards of one sweep file"))
        var overlapping = shard(2, 2)
        overlapping.records.append(all[0])
        #expect(refusal([("a", shard(1, 2)), ("b", overlapping)]).contains("run \(all[0].id) is in both a and b"))
    }

    @Test func baselineRoundTripsAndTheSameSweepPasses() throws {
        let plan = try decode(exampleSweep)
        let m = SweepManifest(plan: plan, shard: .whole, records: records(plan))
        let text = SweepBaseline(manifest: m).render()
        let baseline = try SweepBaseline.parse(text).get()
        #expect(baseline.configurations == SweepBaseline(manifest: m).configurations)
        let report = RegressionReport.compare(current: m, baseline: baseline, tolerances: plan.tolerances)
        #expect(report.passed)
        #expect(report.checks.count == 12 * 3)
        #expect(report.diff.contains("36 of 36 checks within tolerance over 12 configuration(s)"))
        // Within tolerance: every gap 5 % longer (allowed 10 % + 20 ms).
        let slower = SweepManifest(plan: plan, shard: .whole, records: records(plan, gapScale: 1.05))
        #expect(RegressionReport.compare(current: slower, baseline: baseline, tolerances: plan.tolerances).passed)
    }

    @Test func aRegressionBeyondToleranceFailsWithADiffAndJUnit() throws {
        let plan = try decode(exampleSweep)
        let baseline = SweepBaseline(manifest: SweepManifest(plan: plan, shard: .whole, records: records(plan)))
        let worse = SweepManifest(plan: plan, shard: .whole, records: records(plan, gapScale: 1.5, failing: [plan.runs[59].id]))
        let report = RegressionReport.compare(current: worse, baseline: baseline, tolerances: plan.tolerances)
        #expect(!report.passed)
        // Every configuration's max_gap (median 103 → 154.5 ms > 103 + 30.3 ms), and one configuration's failed run.
        #expect(report.failures.count == 14)
        #expect(report.failures.filter { $0.metric == "max_gap" }.count == 12)
        #expect(report.failures.filter { $0.metric == "runs" }.count == 1)
        // That configuration's survival: 3 of 4 remaining runs against 4 of 5 (tolerance 0).
        #expect(report.failures.filter { $0.metric == "survived" }.count == 1)
        let first = report.failures.first { $0.metric == "max_gap" }!
        #expect(first.baseline == 103 && first.current == 154.5)
        #expect(abs(first.allowance - 30.3) < 1e-9)
        #expect(report.diff.contains("REGRESSED route=highway-2rsu-30s stack=swift path-manager=make-before-break scheduler=min-rtt rate=1000"))
        #expect(report.diff.contains("  - max_gap 103.0 ms\n  + max_gap 154.5 ms    worse by 51.5 ms, allowed 30.3 ms (10% + 20ms)\n"), "\(report.diff)")
        #expect(report.diff.contains("  ! runs: 1 of 5 runs failed"))
        let junit = SweepJUnit.xml(manifest: worse, regression: report)
        #expect(wellFormed(junit))
        #expect(junit.contains("<testsuites tests=\"\(60 + report.checks.count)\" failures=\"15\">"))  // 1 failed run + 14 regression checks
        #expect(junit.components(separatedBy: "type=\"regression\"").count - 1 == 14)
    }

    @Test func substitutionsCompareADegradedConfigurationWithTheBaselinesOwn() throws {
        let plan = try decode(exampleSweep)
        let baseline = SweepBaseline(manifest: SweepManifest(plan: plan, shard: .whole, records: records(plan)))
        // "What if redundant became the default?": its gaps are longer than min-rtt's.
        let only = try decode(exampleSweep.replacingOccurrences(of: "[min-rtt, round-robin, redundant]", with: "[redundant]"))
        let current = SweepManifest(plan: only, shard: .whole, records: records(only))
        let sub = try Substitution.parse("scheduler=redundant:min-rtt").get()
        let report = RegressionReport.compare(current: current, baseline: baseline, tolerances: only.tolerances, substitutions: [sub])
        #expect(!report.passed)
        #expect(report.failures.allSatisfy { $0.metric == "max_gap" } && report.failures.count == 4)
        #expect(report.failures[0].label.contains("(as route=highway-2rsu-30s stack=swift path-manager=make-before-break scheduler=min-rtt rate=1000)"))
        // Without the substitution it is simply the baseline's own redundant: passes.
        #expect(RegressionReport.compare(current: current, baseline: baseline, tolerances: only.tolerances).passed)
        if case .success = Substitution.parse("schedular=a:b") { Issue.record("accepted an unknown dimension") }
        if case .failure(let e) = Substitution.parse("schedular=a:b") { #expect(e.message.contains("did you mean 'scheduler'?")) }
    }

    @Test func aMetricNoLongerMeasuredIsARegressionAndNothingComparedIsNotAPass() throws {
        let plan = try decode(exampleSweep)
        let baseline = SweepBaseline(manifest: SweepManifest(plan: plan, shard: .whole, records: records(plan)))
        var recs = records(plan)
        for i in recs.indices where recs[i].index < 5 { recs[i].metrics.removeAll { $0.name == "max_gap" } }
        for i in recs.indices where recs[i].index == 5 { recs[i].metrics.removeAll { $0.name == "max_gap" } }
        let report = RegressionReport.compare(current: SweepManifest(plan: plan, shard: .whole, records: recs), baseline: baseline,
                                              tolerances: plan.tolerances)
        #expect(report.failures.count == 2)
        #expect(report.failures[0].message.contains("not measured in any run"))
        #expect(report.failures[1].message.contains("measured in 4 of 5 runs, baseline 5 of 5"))
        let empty = SweepBaseline(name: "x", fingerprint: "", statistic: .median, configurations: [])
        let none = RegressionReport.compare(current: SweepManifest(plan: plan, shard: .whole, records: records(plan)), baseline: empty,
                                            tolerances: plan.tolerances)
        #expect(!none.passed)
        #expect(none.diff.contains("nothing was compared"))
    }
}
