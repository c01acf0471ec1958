import Analysis
import Config
import Core
import Foundation
import Sweep

/// What one run of a sweep gives back: its run-level metrics and which of the
/// sweep's thresholds failed.
struct SweepRunOutput {
    var metrics: [SweepRecord.Metric]
    var failedThresholds: [String]

    init(metrics: [SweepRecord.Metric], failedThresholds: [String] = []) {
        self.metrics = metrics; self.failedThresholds = failedThresholds
    }
}

/// Runs one point of a sweep's matrix. Three kinds: a real run in its own
/// namespaces (`RealRunExecutor`), a simulated run, and test doubles. The
/// sweep asks every executor to check every run before any starts, so a value
/// it cannot run is reported at its file:line:column and nothing is built.
protocol SweepExecutor: Sendable {
    /// "real" or "simulated", for messages.
    var kind: String { get }
    /// Problems with one run's configuration, located at the values in the sweep file.
    func problems(_ run: SweepRun) -> [ConfigProblem]
    /// Runs it, leaving its results (logs, results.json, report.html) in `folder`.
    func execute(_ run: SweepRun, folder: URL, stop: StopRequest) throws -> SweepRunOutput
}

extension SweepExecutor {
    /// Every problem of every run, each reported once (runs share values).
    func check(_ runs: [SweepRun]) -> ConfigError? {
        var seen = Set<ConfigProblem>()
        var problems: [ConfigProblem] = []
        for r in runs { for p in self.problems(r) where seen.insert(p).inserted { problems.append(p) } }
        return problems.isEmpty ? nil : ConfigError(problems)
    }
}

/// The experiment a run of a sweep describes, as `wayside run` would take it.
func experiment(for run: SweepRun, assertions: [String]) -> Experiment {
    var e = Experiment.standard
    e.topology = nil
    if let r = run[.route] { e.route = Experiment.Source(name: r.text, path: r.path ?? r.text) }
    if let t = run[.topology] { e.topology = Experiment.Source(name: t.text, path: t.path ?? t.text) }
    if let v = run[.traffic], let t = Experiment.Traffic(rawValue: v.text) { e.traffic = t }
    if let v = run[.rate], let r = Int(v.text.filter { $0 != "_" }) { e.rate = r }
    if let v = run[.size], let s = try? ByteSize.parse(v.text) { e.size = s }
    if let v = run[.direction], let d = Experiment.Direction(rawValue: v.text) { e.direction = d }
    if e.traffic == .rr { e.direction = .up }
    if let v = run[.duration], let d = try? Quantity.nonNegativeInterval(v.text) { e.duration = d }
    if let v = run[.pathManager], let p = Experiment.PathManager(rawValue: v.text) { e.pathManager = p }
    e.seed = run.seed
    e.assertions = assertions
    return e
}

/// A real run: `wayside run`'s path for one stack (`StackRun`: its own run id,
/// namespaces, emulator and `wayside node` processes, all removed afterwards),
/// then the same analysis. Needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN).
struct RealRunExecutor: SweepExecutor {
    var assertions: [String]
    var kind: String { "real" }

    func problems(_ run: SweepRun) -> [ConfigProblem] {
        var out: [ConfigProblem] = []
        if let s = run[.stack] {
            if s.text == Experiment.Stack.swift.rawValue {
                out.append(ConfigProblem(at: s.location, "stack 'swift' cannot run for real yet (issue 5: its TUN runtime); use kernel-mptcp or kernel-tcp, or simulate: true"))
            } else if Experiment.Stack(rawValue: s.text) == nil {
                let names = [Experiment.Stack.kernelMPTCP.rawValue, Experiment.Stack.kernelTCP.rawValue]
                out.append(ConfigProblem(at: s.location, "expected a stack a real run has (\(Suggestion.list(names))), found '\(s.text)'\(Suggestion.didYouMean(s.text, among: names))"))
            }
        }
        if let p = run[.pathManager], Experiment.PathManager(rawValue: p.text) == nil {
            let names = Experiment.PathManager.allCases.map(\.rawValue)
            out.append(ConfigProblem(at: p.location, "expected kernel MPTCP's in-kernel path manager (\(Suggestion.list(names))), found '\(p.text)'\(Suggestion.didYouMean(p.text, among: names))"))
        }
        for d in [SweepDimension.scheduler, .congestionControl] {
            if let v = run[d] {
                out.append(ConfigProblem(at: v.location, "a real run cannot set the \(d.rawValue) yet (kernel stacks run with the host's defaults); use simulate: true to sweep it"))
            }
        }
        return out
    }

    func execute(_ run: SweepRun, folder: URL, stop: StopRequest) throws -> SweepRunOutput {
        let e = experiment(for: run, assertions: assertions)
        let stack = run[.stack].flatMap { Experiment.Stack(rawValue: $0.text) } ?? .kernelMPTCP
        var one = e
        one.stacks = [stack]
        let prepared = try RunCommand.prepare(one)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let stackRun = StackRun(prepared: prepared, stack: stack, folder: folder.appendingPathComponent(stack.rawValue), progress: false, stop: stop)
        try stackRun.run()
        let (runs, checks) = try RunCommand.writeResults(folder: folder, assertions: assertions,
                                                         title: "Wayside sweep run \(folder.lastPathComponent)", junit: nil)
        guard let result = runs.first(where: { $0.stack == stack.rawValue }) ?? runs.first else {
            throw RunFailure("\(folder.path): no readable event log")
        }
        return SweepRunOutput(metrics: SweepRecord.metrics(of: result),
                              failedThresholds: checks.filter { !$0.passed }.map { "\($0.threshold.expression): \($0.message)" })
    }
}

/// Runs a list of sweep runs on `jobs` threads (never Swift tasks: real runs
/// enter namespaces). Each run gets `folder/runs/<id>`; a run that fails is
/// recorded with its reason and the others go on. `stop` ends the sweep early:
/// runs not started are not recorded.
enum SweepScheduler {
    /// The queue of runs and the records, shared by the worker threads under a lock.
    private final class Board: @unchecked Sendable {
        let lock = NSLock()
        var next = 0
        var done = 0
        var records: [SweepRecord?]
        init(count: Int) { records = Array(repeating: nil, count: count) }

        func take(_ count: Int, stop: StopRequest) -> Int? {
            lock.lock(); defer { lock.unlock() }
            guard next < count, !stop.isStopped else { return nil }
            next += 1
            return next - 1
        }

        func put(_ record: SweepRecord, at i: Int) -> Int {
            lock.lock(); defer { lock.unlock() }
            records[i] = record
            done += 1
            return done
        }
    }

    static func run(_ runs: [SweepRun], executor: SweepExecutor, jobs: Int, folder: URL, stop: StopRequest,
                    progress: @escaping @Sendable (SweepRecord, Int) -> Void = { _, _ in }) -> [SweepRecord] {
        let board = Board(count: runs.count)
        let group = DispatchGroup()
        let workers = max(1, min(jobs, runs.count))
        for _ in 0..<workers {
            group.enter()
            let thread = Thread {
                defer { group.leave() }
                while let i = board.take(runs.count, stop: stop) {
                    let run = runs[i]
                    let start = DispatchTime.now().uptimeNanoseconds
                    let record: SweepRecord
                    do {
                        let output = try executor.execute(run, folder: folder.appendingPathComponent("runs").appendingPathComponent(run.id), stop: stop)
                        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        record = SweepRecord(run: run, status: .ok, wallSeconds: wall, metrics: output.metrics,
                                             failedThresholds: output.failedThresholds)
                    } catch {
                        let wall = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                        record = SweepRecord(run: run, status: .failed, message: "\(error)", wallSeconds: wall)
                    }
                    progress(record, board.put(record, at: i))
                }
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        group.wait()
        return board.records.compactMap { $0 }
    }

    /// Twice the cores for simulated runs would only queue; real runs wait on
    /// processes and timers, but every one is a full experiment: one per core.
    static var defaultJobs: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }
}
