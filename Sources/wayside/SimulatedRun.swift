import Analysis
import ArgumentParser
import Core
import ExperimentSimulation
import Foundation
import MPTCP
import Mobility
import TCP
import Testbed

/// What a simulated run wrote and found.
struct RunResults {
    /// The results folder: results.json, CSV, report.html, and the logs under `swift/`.
    var folder: URL
    var runs: [RunResult]
    var checks: [ThresholdCheck]
    /// The run id in every log (derived from the experiment and seed, so a rerun is identical).
    var runID: String
    var seed: UInt64
    /// Virtual time simulated.
    var simulated: Interval
    /// Wall-clock seconds the simulation itself took (not written anywhere: results stay identical).
    var wallSeconds: Double
    var segments: Int
}

/// `wayside run --simulate` as a library call: the experiment's topology,
/// route, traffic and the Swift MPTCP stack in the deterministic simulator
/// (`ExperimentSimulation`), written as a real run's results folder and
/// analysed by the same code (`RunCommand.writeResults`). Same experiment
/// and seed: byte-identical folder contents.
enum SimulatedRun {
    /// Simulates `experiment` (only the Swift stack; its stack list is not
    /// consulted) with `seed` (nil: the experiment's, else the route's) into
    /// `outputDirectory`, which is created (and removed again if the run fails
    /// before writing anything); its logs go to `outputDirectory/swift/`.
    static func run(experiment: Experiment, seed: UInt64? = nil, outputDirectory: URL, junit: String? = nil) throws -> RunResults {
        var e = experiment
        if let seed { e.seed = seed }
        let prepared = try RunCommand.prepare(e)
        return try run(prepared: prepared, outputDirectory: outputDirectory, junit: junit)
    }

    static func run(prepared: PreparedExperiment, outputDirectory folder: URL, junit: String? = nil) throws -> RunResults {
        let simulation = try self.simulation(for: prepared)
        let fm = FileManager.default
        let created = !fm.fileExists(atPath: folder.path)
        let logFolder = folder.appendingPathComponent(Experiment.Stack.swift.rawValue)
        do { try fm.createDirectory(at: logFolder, withIntermediateDirectories: true) } catch {
            throw RunFailure("\(folder.path): cannot create the results folder: \(error.localizedDescription)")
        }
        var wrote = false
        do {
            let started = DispatchTime.now().uptimeNanoseconds
            let output: SimulatedRunOutput
            do { output = try simulation.run() } catch { throw RunFailure(error.description) }
            let wall = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            wrote = true
            try write(describe(simulation, prepared), logFolder.appendingPathComponent("configuration.txt"))
            for log in output.logs { try write(log.text, logFolder.appendingPathComponent(log.name)) }
            let (runs, checks) = try RunCommand.writeResults(folder: folder, assertions: prepared.experiment.assertions,
                                                            title: "Wayside simulated run \(simulation.runID) (seed \(simulation.seed))",
                                                            junit: junit)
            return RunResults(folder: folder, runs: runs, checks: checks, runID: simulation.runID, seed: simulation.seed,
                              simulated: output.virtualDuration, wallSeconds: wall, segments: output.segments)
        } catch {
            if created && !wrote { try? fm.removeItem(at: folder) }
            throw error
        }
    }

    static func write(_ text: String, _ url: URL) throws {
        do { try Data(text.utf8).write(to: url, options: .atomic) } catch {
            throw RunFailure("\(url.path): cannot write: \(error.localizedDescription)")
        }
    }

    /// The simulator's view of a prepared experiment.
    static func simulation(for prepared: PreparedExperiment) throws -> SimulatedExperiment {
        let e = prepared.experiment
        let id = runID(prepared)
        let plan: TestbedPlan
        do { plan = try TestbedPlan(topology: prepared.topology, runID: RunID(id)!, emulation: .userspace) } catch {
            throw RunFailure("\(prepared.topologyName): \(error.description)")
        }
        var s = SimulatedExperiment(plan: plan, timeline: prepared.timeline, vehicle: prepared.vehicle, server: prepared.server,
                                    duration: prepared.duration, seed: prepared.route.seed, runID: id)
        s.traffic = SimulatedExperiment.Traffic(rawValue: e.traffic.rawValue)!
        s.direction = SimulatedExperiment.Direction(rawValue: e.direction.rawValue)!
        s.rate = e.rate
        s.size = e.size
        s.pathManager = e.swiftPathManager
        s.scheduler = e.scheduler
        if let cc = Experiment.congestionControl(named: e.congestionControl) {
            if let c = cc.coupled { s.coupling = c }
            if let u = cc.uncoupled { s.congestionControl = u }
        }
        s.attributes = ["topology": prepared.topologyName, "route": e.route.name, "traffic": e.traffic.rawValue,
                        "direction": e.direction.rawValue, "experiment_run": id, "seed": String(prepared.route.seed)]
        do { try s.validate() } catch { throw RunFailure(error.description) }
        return s
    }

    /// A run id from everything that shapes the run (FNV-1a, base 36), so
    /// that the same experiment and seed give the same logs byte for byte
    /// and different configurations of a sweep get different ids.
    static func runID(_ p: PreparedExperiment) -> String {
        let e = p.experiment
        let text = [p.topologyName, e.route.name, e.traffic.rawValue, e.direction.rawValue, String(e.rate), String(e.size),
                    e.swiftPathManager, e.scheduler, e.congestionControl, String(p.route.seed), String(p.duration.nanoseconds)]
            .joined(separator: "|")
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in text.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        var id = "s"
        for _ in 0..<7 { id.append(alphabet[Int(h % 36)]); h /= 36 }
        return id
    }

    static func describe(_ s: SimulatedExperiment, _ p: PreparedExperiment) -> String {
        var text = "run \(s.runID)  stack swift (simulated)  topology \(p.topologyName)  route \(p.experiment.route.name)\n"
        text += "traffic \(s.traffic.rawValue) \(s.direction.rawValue) rate \(s.rate)/s size \(s.size) B  seed \(s.seed)  duration \(p.duration)\n"
        text += "Swift MPTCP: path manager \(s.pathManager), scheduler \(s.scheduler), congestion control "
            + "\(s.coupling == .uncoupled ? s.congestionControl.rawValue : s.coupling.rawValue)\n"
        text += "links (LinkModel pipelines, seed \(s.seed)):\n"
        for l in s.plan.links {
            text += "  \(l.name): a-to-b \(l.link.aToB)  b-to-a \(l.link.bToA)\(l.emulator == nil ? "  (not emulated)" : "")\n"
        }
        return text
    }
}

extension RunCommand {
    /// `--simulate`: the Swift stack in virtual time, into results/<time>-<id>/.
    func runSimulated(_ prepared: PreparedExperiment) throws {
        let explicit = !stacks.isEmpty
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let id = SimulatedRun.runID(prepared)
        let folder = URL(fileURLWithPath: results).appendingPathComponent("\(formatter.string(from: Date()))-\(id)")
        if !quiet {
            if !explicit { print("--simulate runs the Swift stack only: kernel-mptcp and kernel-tcp cannot be simulated") }
            print("wayside run --simulate \(id): \(prepared.topologyName), route \(prepared.experiment.route.name) (\(formatSeconds(prepared.duration))), "
                  + "\(prepared.experiment.traffic.rawValue) \(prepared.experiment.direction.rawValue) \(prepared.experiment.rate)/s × \(prepared.experiment.size) B, "
                  + "swift (\(prepared.experiment.swiftPathManager), \(prepared.experiment.scheduler), \(prepared.experiment.congestionControl)), seed \(prepared.route.seed)")
        }
        let result: RunResults
        do { result = try SimulatedRun.run(prepared: prepared, outputDirectory: folder, junit: junit) } catch let e as RunFailure {
            throw fail("--simulate: \(e.description)")
        }
        if !quiet {
            print(String(format: "simulated %.1f s in %.2f s of wall time (%.0f× real time)", result.simulated.seconds, result.wallSeconds,
                         result.simulated.seconds / max(result.wallSeconds, 1e-9)))
        }
        try printOutcome(runs: result.runs, checks: result.checks, folder: folder)
    }
}
