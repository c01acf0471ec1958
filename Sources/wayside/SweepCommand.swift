import Analysis
import ArgumentParser
import Config
import Core
import Foundation
import Sweep
#if canImport(Glibc)
import Glibc
#endif

/// `wayside sweep SWEEP.yaml`: a matrix of runs (docs/SWEEPS.md), run in
/// parallel on this machine, or one shard of it; then summary.csv,
/// summary.html, sweep.json and, with a baseline, a regression check.
struct SweepCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run a sweep: routes × topologies × stacks × parameters × seeds, in parallel, real or simulated.",
        discussion: """
        The sweep file format is in docs/SWEEPS.md (example: Sweeps/). Runs are expanded in a fixed order with \
        stable ids; --shard K/N runs every N-th of them so that a scheduler (Kubernetes Indexed Job, Slurm array, \
        a CI matrix) can spread a sweep over machines, and `wayside merge` joins the shards' folders. \
        Exit status: 0 when every run completed, its thresholds held and nothing regressed; 1 otherwise; \
        64 for a bad sweep file or flag (nothing is run then).
        """
    )

    @Argument(help: "The sweep file (YAML).")
    var sweepFile: String

    @Option(help: ArgumentHelp("Run only shard K of N (1 ≤ K ≤ N): the runs whose matrix index is K-1 modulo N.", valueName: "K/N"))
    var shard: String?

    @Option(help: ArgumentHelp("Runs at once (default: the number of cores).", valueName: "N"))
    var jobs: Int?

    @Flag(help: "Simulate every run (as `simulate: true` in the file).")
    var simulate = false

    @Option(help: ArgumentHelp("The sweep's folder (default: results/<sweep name>, with .shard-K-of-N for a shard). Must not hold a sweep already.", valueName: "DIR"))
    var output: String?

    @Option(help: ArgumentHelp("Compare with this baseline (written by --write-baseline); exit 1 when a metric regressed beyond its tolerance.", valueName: "FILE"))
    var baseline: String?

    @Option(name: .customLong("compare-as"), help: ArgumentHelp("With --baseline: compare runs whose DIMENSION is CURRENT with the baseline's runs where it was BASELINE; repeatable.", valueName: "DIMENSION=CURRENT:BASELINE"))
    var compareAs: [String] = []

    @Option(help: ArgumentHelp("Write this sweep's per-configuration metrics as a baseline file.", valueName: "FILE"))
    var writeBaseline: String?

    @Option(help: ArgumentHelp("Write JUnit XML: a testcase per run, and per configuration and metric with --baseline.", valueName: "FILE"))
    var junit: String?

    @Flag(help: "No line per run (failures, the summary path and the regression verdict still print).")
    var quiet = false

    /// The plan, the shard and the substitutions, or a `ValidationError` naming the flag or file:line:column.
    func parsed() throws -> (plan: SweepPlan, shard: Shard, substitutions: [Substitution]) {
        var plan: SweepPlan
        switch Result(catching: { () throws(ConfigError) -> SweepPlan in try loadSweep(sweepFile) }) {
        case .success(let p): plan = p
        case .failure(let e): throw ValidationError(e.description)
        }
        if simulate { plan.simulate = true }
        var s = Shard.whole
        if let shard {
            switch Shard.parse(shard) {
            case .success(let v): s = v
            case .failure(let e): throw ValidationError("--shard: \(e.message)")
            }
        }
        if let jobs, jobs < 1 { throw ValidationError("--jobs: \(jobs) is not a positive number of runs") }
        if baseline != nil, s != .whole {
            throw ValidationError("--baseline compares whole configurations: run the shards, then `wayside merge DIR... --output DIR --baseline FILE`")
        }
        if writeBaseline != nil, s != .whole {
            throw ValidationError("--write-baseline needs every run: write it from the merged folder with `wayside merge DIR... --output DIR --write-baseline FILE`")
        }
        if baseline != nil, plan.tolerances.isEmpty {
            throw ValidationError("--baseline: \(plan.file) gives no tolerances (regression: metrics:), so nothing would be compared")
        }
        let subs = try parseSubstitutions(compareAs)
        if !subs.isEmpty && baseline == nil { throw ValidationError("--compare-as needs --baseline") }
        return (plan, s, subs)
    }

    func validate() throws { _ = try parsed() }

    func run() throws {
        let (plan, shard, substitutions) = try parsed()
        let executor = try sweepExecutor(plan: plan)
        let runs = plan.runs(in: shard)
        if let problems = executor.check(runs) {
            FileHandle.standardError.write(Data("\(problems.description)\n".utf8))
            throw ExitCode(64)
        }
        // A bad baseline is found before anything runs.
        let base = try baseline.map { try loadBaseline($0, flag: "--baseline") }
        if !plan.simulate && getuid() != 0 {
            throw fail("real sweep runs build network namespaces and need root (CAP_NET_ADMIN, CAP_SYS_ADMIN); simulated ones (simulate: true, --simulate) need nothing")
        }
        let suffix = shard == .whole ? "" : ".shard-\(shard.index)-of-\(shard.count)"
        let folder = URL(fileURLWithPath: output ?? "results/\(plan.name)\(suffix)")
        try prepareOutput(folder, flag: output == nil ? "--output (default)" : "--output")

        let jobs = self.jobs ?? SweepScheduler.defaultJobs
        if !quiet {
            print("wayside sweep \(plan.name): \(runs.count) of \(plan.runs.count) runs\(shard == .whole ? "" : " (shard \(shard))"), "
                  + "\(executor.kind), \(jobs) at a time → \(folder.path)")
        }
        let stop = StopRequest()
        let signals = TerminationSignals { stop.stop() }
        defer { signals.restore() }
        let total = runs.count
        let quiet = self.quiet
        let start = DispatchTime.now().uptimeNanoseconds
        let records = SweepScheduler.run(runs, executor: executor, jobs: jobs, folder: folder, stop: stop) { record, done in
            if record.status == .failed {
                FileHandle.standardError.write(Data("[\(done)/\(total)] \(record.id) FAILED: \(record.message ?? "")\n".utf8))
            } else if !quiet {
                print("[\(done)/\(total)] \(record.id) \(record.configurationKey) seed \(record.seed): \(String(format: "%.1f", record.wallSeconds ?? 0)) s")
            }
        }
        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        let manifest = SweepManifest(plan: plan, shard: shard, records: records)
        let outcome = try finishSweep(manifest, folder: folder, baseline: base, substitutions: substitutions,
                                      writeBaseline: writeBaseline, junit: junit, quiet: quiet)
        if !quiet { print(String(format: "%d runs in %.1f s (%.1f runs per minute)", records.count, wall, Double(records.count) * 60 / max(wall, 1e-9))) }
        if stop.isStopped {
            FileHandle.standardError.write(Data("wayside: interrupted after \(records.count) of \(total) runs; their results are in \(folder.path)\n".utf8))
            throw ExitCode(128 + (signals.received ?? SIGINT))
        }
        if !outcome { throw ExitCode(1) }
    }

    func sweepExecutor(plan: SweepPlan) throws -> SweepExecutor {
        let assertions = plan.assertions.map(\.text)
        if plan.simulate { return try simulatedExecutor(assertions: assertions) }
        return RealRunExecutor(assertions: assertions)
    }
}

/// Reads a sweep file; relative route and topology names resolve as in experiment files.
func loadSweep(_ path: String) throws(ConfigError) -> SweepPlan {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ConfigError(at: SourceLocation(file: path, line: 0, column: 0),
                          FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
    }
    return try SweepPlan.decode(text: String(decoding: data, as: UTF8.self), file: path) { FileManager.default.fileExists(atPath: $0) }
}

func parseSubstitutions(_ texts: [String]) throws -> [Substitution] {
    try texts.map { t in
        switch Substitution.parse(t) {
        case .success(let s): return s
        case .failure(let e): throw ValidationError("--compare-as: \(e.message)")
        }
    }
}

func loadBaseline(_ path: String, flag: String) throws -> SweepBaseline {
    guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("\(flag) \(path): no such file") }
    switch SweepBaseline.parse(String(decoding: data, as: UTF8.self)) {
    case .success(let b): return b
    case .failure(let e): throw ValidationError("\(flag) \(path): \(e.message)")
    }
}

/// An output folder must be new or empty, so a sweep never mixes with an older one.
func prepareOutput(_ folder: URL, flag: String) throws {
    let fm = FileManager.default
    var isDir: ObjCBool = false
    if fm.fileExists(atPath: folder.path, isDirectory: &isDir) {
        guard isDir.boolValue else { throw ValidationError("\(flag) \(folder.path): exists and is not a folder") }
        let contents = (try? fm.contentsOfDirectory(atPath: folder.path)) ?? []
        guard contents.isEmpty else {
            throw ValidationError("\(flag) \(folder.path): the folder is not empty (it holds \(contents.sorted().prefix(3).joined(separator: ", "))…); give a new --output")
        }
    }
    do { try fm.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
        throw fail("\(flag) \(folder.path): cannot create: \(error.localizedDescription)")
    }
}

/// Writes sweep.json, summary.csv, summary.html (and the baseline and JUnit
/// when asked), compares with the baseline, prints the verdicts. Returns
/// whether everything held: every run completed, its thresholds passed, no regression.
func finishSweep(_ manifest: SweepManifest, folder: URL, baseline: SweepBaseline?, substitutions: [Substitution],
                 writeBaseline: String?, junit: String?, quiet: Bool) throws -> Bool {
    func write(_ text: String, _ url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch { throw fail("\(url.path): cannot write: \(error.localizedDescription)") }
    }
    let regression = baseline.map { RegressionReport.compare(current: manifest, baseline: $0, tolerances: manifest.tolerances, substitutions: substitutions) }
    try write(manifest.render(), folder.appendingPathComponent("sweep.json"))
    try write(SweepSummary.csv(manifest), folder.appendingPathComponent("summary.csv"))
    try write(SweepSummary.html(manifest, regression: regression), folder.appendingPathComponent("summary.html"))
    if let writeBaseline { try write(SweepBaseline(manifest: manifest).render(), URL(fileURLWithPath: writeBaseline)) }
    if let junit { try write(SweepJUnit.xml(manifest: manifest, regression: regression), URL(fileURLWithPath: junit)) }

    let failed = manifest.records.filter { $0.status == .failed }
    let thresholdFailures = manifest.records.filter { !$0.failedThresholds.isEmpty }
    for r in thresholdFailures { print("FAIL  \(r.id)  \(r.failedThresholds.joined(separator: "; "))") }
    if !failed.isEmpty { print("\(failed.count) of \(manifest.records.count) runs failed (see summary.html)") }
    if let regression {
        print(regression.diff, terminator: "")
        print(regression.passed ? "regression check: pass" : "regression check: FAIL")
    }
    if !manifest.missingShards.isEmpty && manifest.shards != [.whole] && !quiet {
        print("shards still missing: \(manifest.missingShards.map(\.description).joined(separator: ", "))")
    }
    print("summary: \(folder.appendingPathComponent("summary.html").path)")
    return failed.isEmpty && thresholdFailures.isEmpty && (regression?.passed ?? true)
}

/// `wayside merge DIR... --output DIR`: the shards' folders as one sweep.
struct MergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the result folders of a sweep's shards into one folder with one summary.",
        discussion: "Refuses folders of different sweeps (fingerprints differ), a shard given twice and runs present twice. Run folders are copied."
    )

    @Argument(help: "Shard folders (each with a sweep.json).")
    var folders: [String]

    @Option(help: ArgumentHelp("The merged folder (new or empty).", valueName: "DIR"))
    var output: String

    @Option(help: ArgumentHelp("Compare the merged sweep with this baseline.", valueName: "FILE"))
    var baseline: String?

    @Option(name: .customLong("compare-as"), help: ArgumentHelp("As for `wayside sweep`.", valueName: "DIMENSION=CURRENT:BASELINE"))
    var compareAs: [String] = []

    @Option(help: ArgumentHelp("Write the merged sweep's per-configuration metrics as a baseline.", valueName: "FILE"))
    var writeBaseline: String?

    @Option(help: ArgumentHelp("Write JUnit XML.", valueName: "FILE"))
    var junit: String?

    @Flag(help: "Fewer lines.")
    var quiet = false

    func run() throws {
        guard !folders.isEmpty else { throw ValidationError("give the shard folders to merge") }
        let substitutions = try parseSubstitutions(compareAs)
        let base = try baseline.map { try loadBaseline($0, flag: "--baseline") }
        var parts: [(origin: String, manifest: SweepManifest)] = []
        for f in folders {
            parts.append((f, try readManifest(f)))
        }
        let merged: SweepManifest
        switch SweepManifest.merge(parts) {
        case .success(let m): merged = m
        case .failure(let e): throw ValidationError(e.message)
        }
        if baseline != nil, merged.tolerances.isEmpty {
            throw ValidationError("--baseline: sweep \(merged.name) (\(merged.file)) gives no tolerances (regression: metrics:), so nothing would be compared")
        }
        if writeBaseline != nil && !merged.missingShards.isEmpty {
            throw ValidationError("--write-baseline: shards \(merged.missingShards.map(\.description).joined(separator: ", ")) are missing; a baseline needs the whole sweep")
        }
        let out = URL(fileURLWithPath: output)
        if folders.contains(where: { URL(fileURLWithPath: $0).standardizedFileURL == out.standardizedFileURL }) {
            throw ValidationError("--output \(output): is one of the folders being merged")
        }
        try prepareOutput(out, flag: "--output")
        let fm = FileManager.default
        let runsDir = out.appendingPathComponent("runs")
        for (origin, m) in parts {
            for r in m.records {
                let from = URL(fileURLWithPath: origin).appendingPathComponent("runs").appendingPathComponent(r.id)
                guard fm.fileExists(atPath: from.path) else { continue }
                do {
                    try fm.createDirectory(at: runsDir, withIntermediateDirectories: true)
                    try fm.copyItem(at: from, to: runsDir.appendingPathComponent(r.id))
                } catch { throw fail("cannot copy \(from.path): \(error.localizedDescription)") }
            }
        }
        if !quiet {
            print("merged \(folders.count) folder(s): \(merged.records.count) of \(merged.totalRuns) runs of sweep \(merged.name), shards \(merged.shards.map(\.description).joined(separator: ", "))")
        }
        if !merged.missingShards.isEmpty {
            print("shards missing: \(merged.missingShards.map(\.description).joined(separator: ", ")) (\(merged.totalRuns - merged.records.count) runs)")
        }
        let ok = try finishSweep(merged, folder: out, baseline: base, substitutions: substitutions,
                                 writeBaseline: writeBaseline, junit: junit, quiet: quiet)
        if !ok { throw ExitCode(1) }
    }
}

func readManifest(_ folder: String) throws -> SweepManifest {
    let path = URL(fileURLWithPath: folder).appendingPathComponent("sweep.json").path
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("\(folder): no sweep.json (is it the folder of a `wayside sweep`?)")
    }
    switch SweepManifest.parse(String(decoding: data, as: UTF8.self)) {
    case .success(let m): return m
    case .failure(let e): throw ValidationError("\(path): \(e.message)")
    }
}

/// `wayside regress DIR --baseline FILE`: the regression check of a finished
/// sweep folder, without running anything.
struct RegressCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "regress",
        abstract: "Compare a sweep folder's per-configuration metrics with a baseline, with the sweep file's tolerances.",
        discussion: "Exit 1 with a diff (and --junit) when a metric regressed beyond its tolerance; the tolerances are the ones the sweep ran with (in its sweep.json)."
    )

    @Argument(help: "A sweep folder (with sweep.json).")
    var folder: String

    @Option(help: ArgumentHelp("The baseline file.", valueName: "FILE"))
    var baseline: String

    @Option(name: .customLong("compare-as"), help: ArgumentHelp("As for `wayside sweep`.", valueName: "DIMENSION=CURRENT:BASELINE"))
    var compareAs: [String] = []

    @Option(help: ArgumentHelp("Write JUnit XML.", valueName: "FILE"))
    var junit: String?

    func run() throws {
        let substitutions = try parseSubstitutions(compareAs)
        let base = try loadBaseline(baseline, flag: "--baseline")
        let manifest = try readManifest(folder)
        guard !manifest.tolerances.isEmpty else {
            throw ValidationError("\(folder): the sweep has no tolerances (regression: metrics: in its sweep file), so nothing can be compared")
        }
        let report = RegressionReport.compare(current: manifest, baseline: base, tolerances: manifest.tolerances, substitutions: substitutions)
        if let junit {
            do { try Data(SweepJUnit.xml(manifest: manifest, regression: report).utf8).write(to: URL(fileURLWithPath: junit), options: .atomic) } catch {
                throw fail("\(junit): cannot write: \(error.localizedDescription)")
            }
        }
        print(report.diff, terminator: "")
        print(report.passed ? "regression check: pass" : "regression check: FAIL")
        if !report.passed { throw ExitCode(1) }
    }
}
