import Analysis
import Config
import Foundation
import MPTCP
import Sweep

/// A simulated run: the experiment of the run's configuration in the
/// deterministic simulator (`SimulatedRun`, as `wayside run --simulate`), with
/// the Swift MPTCP stack. Needs no privileges; same configuration and seed,
/// same results.
struct SimulatedRunExecutor: SweepExecutor {
    var assertions: [String]
    var kind: String { "simulated" }

    func problems(_ run: SweepRun) -> [ConfigProblem] {
        var out: [ConfigProblem] = []
        func check(_ d: SweepDimension, _ names: [String], _ what: String) {
            guard let v = run[d], !names.contains(v.text) else { return }
            out.append(ConfigProblem(at: v.location, "expected \(what) of the simulated Swift stack (\(Suggestion.list(names))), found '\(v.text)'\(Suggestion.didYouMean(v.text, among: names))"))
        }
        if let s = run[.stack], s.text != Experiment.Stack.swift.rawValue {
            if Experiment.Stack(rawValue: s.text) != nil {
                out.append(ConfigProblem(at: s.location, "stack '\(s.text)' cannot be simulated: the simulator runs the Swift MPTCP stack only (kernel baselines need real runs: simulate: false)"))
            } else {
                check(.stack, [Experiment.Stack.swift.rawValue], "the stack")
            }
        }
        check(.pathManager, PathManagers.names, "a path manager")
        check(.scheduler, Schedulers.names, "a scheduler")
        check(.congestionControl, Experiment.congestionControlNames, "a congestion control")
        return out
    }

    func execute(_ run: SweepRun, folder: URL, stop: StopRequest) throws -> SweepRunOutput {
        var e = experiment(for: run, assertions: assertions)
        e.stacks = [.swift]
        if let v = run[.pathManager] { _ = e.setPathManager(v.text) }
        if let v = run[.scheduler] { e.scheduler = v.text }
        if let v = run[.congestionControl] { e.congestionControl = v.text }
        let r = try SimulatedRun.run(experiment: e, outputDirectory: folder)
        guard let result = r.runs.first(where: { $0.stack == Experiment.Stack.swift.rawValue }) ?? r.runs.first else {
            throw RunFailure("\(folder.path): the simulated run left no log to analyse")
        }
        return SweepRunOutput(metrics: SweepRecord.metrics(of: result),
                              failedThresholds: r.checks.filter { !$0.passed }.map { "\($0.threshold.expression): \($0.message)" })
    }
}

func simulatedExecutor(assertions: [String]) throws -> SweepExecutor { SimulatedRunExecutor(assertions: assertions) }
