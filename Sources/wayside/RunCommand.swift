import Analysis
import ArgumentParser
import Config
import Core
import Foundation
import MPTCP
import Mobility
import Report
import Testbed
#if canImport(Glibc)
import Glibc
#endif

/// `wayside run`: an experiment end to end (issue 10) — per stack, build the
/// topology, replay the route through the emulator, run the traffic, tear
/// down; then analyse the logs into results.json, CSV and report.html.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run an experiment: drive a route through a topology with each stack, and report how connections lived through the handovers.",
        discussion: """
        With no arguments, runs the embedded default: two roadside units on a highway \
        (highway-2rsu), 30 s of driving with one make-before-break handover, CBR downlink \
        1000 msg/s x 1 KiB, kernel-mptcp then kernel-tcp. EXPERIMENT.yaml keys: topology, route, \
        traffic, rate, size, direction, stacks, path-manager, seed, duration, assert; flags override them.
        Results go to results/<time>-<id>/ (results.json, CSV, logs, report.html).
        """
    )

    @Argument(help: "An experiment file (YAML); optional.")
    var experimentFile: String?

    @Option(help: ArgumentHelp("A topology file (default: the route's topology).", valueName: "FILE"))
    var topology: String?

    @Option(help: ArgumentHelp("A route file (Routes/*.yaml).", valueName: "FILE"))
    var route: String?

    @Option(help: ArgumentHelp("bulk, cbr or rr.", valueName: "KIND"))
    var traffic: String?

    @Option(help: "CBR messages per second (rr: requests per second).")
    var rate: Int?

    @Option(help: ArgumentHelp("Message size, header included (cbr, rr), e.g. 1KiB.", valueName: "SIZE"))
    var size: String?

    @Option(help: ArgumentHelp("down (server to vehicle), up or both.", valueName: "DIR"))
    var direction: String?

    @Option(name: .customLong("stack"), help: ArgumentHelp("swift, kernel-mptcp or kernel-tcp; repeatable.", valueName: "STACK"))
    var stacks: [String] = []

    @Option(help: ArgumentHelp("Path manager: kernel MPTCP's subflow or fullmesh; the Swift stack's fullmesh, make-before-break (default), break-before-make or backup.", valueName: "PM"))
    var pathManager: String?

    @Option(help: ArgumentHelp("The Swift stack's scheduler: min-rtt (default), round-robin, redundant, backup-aware, ecf.", valueName: "NAME"))
    var scheduler: String?

    @Option(help: ArgumentHelp("The Swift stack's congestion control: cubic (default), reno, lia, olia, balia.", valueName: "NAME"))
    var congestionControl: String?

    @Flag(help: "Run the experiment in the deterministic simulator (Swift stack only, virtual time, no root): same logs, results and report as a real run.")
    var simulate = false

    @Option(name: .customLong("swift-path-manager"), help: ArgumentHelp("The Swift stack's path manager only (kernel MPTCP keeps its own): \(PathManagers.names.joined(separator: ", ")).", valueName: "PM"))
    var swiftPathManager: String?

    @Option(help: "Seed of the route's randomness and the link models.")
    var seed: UInt64?

    @Option(help: ArgumentHelp("Stop the drive after this long (default: the route's duration).", valueName: "DURATION"))
    var duration: String?

    @Option(name: .customLong("assert"), help: ArgumentHelp("A threshold, e.g. 'max_gap < 600ms'; repeatable. Exit 1 when one fails.", valueName: "EXPR"))
    var assertions: [String] = []

    @Option(help: ArgumentHelp("Write the threshold checks as JUnit XML to this file.", valueName: "FILE"))
    var junit: String?

    @Option(help: ArgumentHelp("Where results folders go.", valueName: "DIR"))
    var results: String = "results"

    @Flag(help: "Also capture the vehicle's and the server's packets (tshark -i any in their namespaces) into <node>.pcapng.")
    var pcap = false

    @Flag(help: "No progress line and no summary tables (threshold verdicts and the report path still print).")
    var quiet = false

    /// The experiment the arguments describe; every problem names its flag or file:line:column.
    func experiment() throws -> Experiment {
        var e: Experiment
        if let experimentFile {
            do { e = try Experiment.load(contentsOf: experimentFile, allowSwift: simulate) } catch { throw ValidationError(error.description) }
        } else {
            e = .standard
        }
        if let route {
            e.route = Experiment.Source(name: route, path: route)
            if topology == nil && experimentFile == nil { e.topology = nil }
        }
        if let topology { e.topology = Experiment.Source(name: topology, path: topology) }
        if let traffic {
            guard let t = Experiment.Traffic(rawValue: traffic) else {
                throw ValidationError("--traffic: '\(traffic)' is not one of bulk, cbr, rr")
            }
            e.traffic = t
        }
        if let rate {
            guard (1...1_000_000).contains(rate) else { throw ValidationError("--rate: \(rate) messages per second is outside 1 ... 1000000") }
            e.rate = rate
        }
        if let size {
            let bytes: Int
            do throws(QuantityError) { bytes = try ByteSize.parse(size) } catch { throw ValidationError("--size: \(error.description)") }
            guard (24...(16 << 20)).contains(bytes) else { throw ValidationError("--size: \(size) is outside 24 B ... 16 MiB") }
            e.size = bytes
        }
        if let direction {
            guard let d = Experiment.Direction(rawValue: direction) else {
                throw ValidationError("--direction: '\(direction)' is not one of down, up, both")
            }
            e.direction = d
        }
        if e.traffic == .rr && e.direction != .up && self.direction != nil {
            throw ValidationError("--direction: rr always runs its requests from the vehicle to the server; give --direction up or leave it out")
        }
        if !stacks.isEmpty {
            var list: [Experiment.Stack] = []
            for s in stacks {
                guard let k = Experiment.Stack(rawValue: s) else {
                    throw ValidationError("--stack: '\(s)' is not one of \(Experiment.Stack.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                if k != .swift && simulate {
                    throw ValidationError("--stack \(k.rawValue): kernel stacks cannot be simulated (--simulate runs the Swift MPTCP stack in virtual time); give --stack swift or drop --simulate")
                }
                if !list.contains(k) { list.append(k) }
            }
            e.stacks = list
        } else if simulate {
            // The experiment's (or the default) stack list: only the Swift stack can be simulated.
            e.stacks = [.swift]
        }
        guard !e.stacks.isEmpty else { throw ValidationError("no stack to run: give --stack swift, kernel-mptcp and/or kernel-tcp") }
        if let pathManager, !e.setPathManager(pathManager) {
            throw ValidationError("--path-manager: '\(pathManager)' is not one of \(Experiment.pathManagerNames.joined(separator: ", "))")
        }
        if let swiftPathManager { e.swiftPathManager = try Experiment.choice(swiftPathManager, of: PathManagers.names, flag: "--swift-path-manager") }
        if let scheduler { e.scheduler = try Experiment.choice(scheduler, of: Schedulers.names, flag: "--scheduler") }
        if let congestionControl {
            e.congestionControl = try Experiment.choice(congestionControl, of: Experiment.congestionControlNames, flag: "--congestion-control")
        }
        if let seed { e.seed = seed }
        if let duration {
            do throws(QuantityError) {
                let d = try Quantity.nonNegativeInterval(duration)
                guard d > .zero else { throw QuantityError(text: duration, expected: "a positive duration") }
                e.duration = d
            } catch { throw ValidationError("--duration: \(error.description)") }
        }
        e.assertions += assertions
        for a in e.assertions {
            do { _ = try Threshold.parse(a, origin: "--assert") } catch { throw ValidationError(error.description) }
        }
        return e
    }

    func validate() throws {
        _ = try experiment()
    }

    /// Loads topology and route and computes the timeline; nothing is built yet.
    static func prepare(_ e: Experiment) throws -> PreparedExperiment {
        func read(_ path: String) throws -> String {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw RunFailure("\(path): \(FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")")
            }
            return String(decoding: data, as: UTF8.self)
        }
        var route: Route
        do {
            if let text = e.route.text { route = try Route.decode(text: text, file: e.route.name) }
            else { route = try Route.decode(text: try read(e.route.path!), file: e.route.path!) }
        } catch { throw RunFailure("\(error)") }
        if let seed = e.seed { route.seed = seed }
        var topologySource = e.topology
        if topologySource == nil {
            guard let path = RouteFiles.topologyPath(for: route) else {
                throw RunFailure("\(route.topologyLocation): no topology file '\(route.topology)' next to the route or in Topologies/; give one with --topology")
            }
            topologySource = Experiment.Source(name: path, path: path)
        }
        let topology: Topology
        do {
            if let text = topologySource!.text { topology = try Topology.parse(text: text, file: topologySource!.name) }
            else { topology = try Topology.load(contentsOf: topologySource!.path!) }
        } catch { throw RunFailure(error.description) }
        let view = RouteTopology(topology)
        let vehicle: String
        let coverage: DriveCoverage
        do {
            vehicle = try route.vehicle(in: view)
            coverage = try route.coverage(on: view) { try read($0) }
        } catch { throw RunFailure("\(error)") }
        guard let server = topology.nodes.first(where: { $0.role == .server })?.name else {
            throw RunFailure("\(topologySource!.name): the experiment needs a node with role: server to exchange traffic with '\(vehicle)'")
        }
        var duration = coverage.timeline.duration
        if let d = e.duration { duration = min(d, duration) }
        guard duration > .zero else { throw RunFailure("\(e.route.name): the route has no duration") }
        var experiment = e
        experiment.topology = topologySource
        return PreparedExperiment(experiment: experiment, topology: topology, topologyName: topologySource!.name, route: route,
                                  vehicle: vehicle, server: server, timeline: coverage.timeline, duration: duration)
    }

    func run() throws {
        let e = try experiment()
        let prepared: PreparedExperiment
        do { prepared = try Self.prepare(e) } catch { throw fail("\(error)") }
        if simulate { return try runSimulated(prepared) }
        guard getuid() == 0 else { throw fail("'wayside run' builds network namespaces and needs root") }
        let interactive = !quiet && isatty(STDOUT_FILENO) == 1

        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd-HHmmss"
        let id = RunID.random()
        let folder = URL(fileURLWithPath: results).appendingPathComponent("\(formatter.string(from: Date()))-\(id.value)")
        do { try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true) } catch {
            throw fail("--results \(results): cannot create \(folder.path): \(error.localizedDescription)")
        }

        let stop = StopRequest()
        let signals = TerminationSignals { stop.stop() }
        defer { signals.restore() }
        if !quiet {
            print("wayside run \(id.value): \(prepared.topologyName), route \(prepared.experiment.route.name) (\(formatSeconds(prepared.duration))), "
                  + "\(prepared.experiment.traffic.rawValue) \(prepared.experiment.direction.rawValue) \(prepared.experiment.rate)/s × \(prepared.experiment.size) B, "
                  + "stacks \(prepared.experiment.stacks.map(\.rawValue).joined(separator: ", ")), seed \(prepared.route.seed)")
        }
        for stack in prepared.experiment.stacks {
            let stackRun = StackRun(prepared: prepared, stack: stack, folder: folder.appendingPathComponent(stack.rawValue),
                                    progress: interactive, stop: stop)
            stackRun.pcap = pcap
            if !quiet { print("\(stack.rawValue): run \(stackRun.runID) building \(prepared.topologyName) …") }
            do { try stackRun.run() } catch {
                if stop.isStopped {
                    FileHandle.standardError.write(Data("wayside: interrupted; everything built was removed; partial logs in \(folder.path)\n".utf8))
                    throw ExitCode(128 + (signals.received ?? SIGINT))
                }
                throw fail("\(stack.rawValue): \(error)")
            }
        }
        try analyze(folder: folder, experiment: prepared.experiment)
    }

    /// Analyses the run's logs (as `wayside analyze` would) and writes
    /// results.json, the CSV series and report.html; prints the comparison.
    func analyze(folder: URL, experiment: Experiment, title: String? = nil) throws {
        let runs: [RunResult], checks: [ThresholdCheck]
        do {
            (runs, checks) = try Self.writeResults(folder: folder, assertions: experiment.assertions,
                                                   title: title ?? "Wayside run: \(folder.lastPathComponent)", junit: junit)
        } catch let e as RunFailure { throw fail(e.description) }
        try printOutcome(runs: runs, checks: checks, folder: folder)
    }

    /// The handover and summary tables (unless quiet), the threshold verdicts
    /// and the report's path; exit 1 when a threshold failed.
    func printOutcome(runs: [RunResult], checks: [ThresholdCheck], folder: URL) throws {
        if !quiet {
            print("")
            print(HandoverTable.render(runs), terminator: "")
            print("")
            print(SummaryTable.render(runs), terminator: "")
        }
        // Threshold verdicts and where the results are print even when quiet: a CI
        // log must say why a run exited 1.
        for c in checks { print("\(c.passed ? "pass" : "FAIL")  \(c.stack)  \(c.threshold.expression)  (\(c.message))") }
        print("report: \(folder.appendingPathComponent("report.html").path)")
        if checks.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }

    /// Reads every log below `folder`, analyses it, checks `assertions`, and
    /// writes results.json, the CSV series, report.html (titled `title`) and,
    /// if asked, JUnit XML. The real and the simulated run both end here.
    /// Problems are `RunFailure`s (a threshold that does not parse: its own error).
    static func writeResults(folder: URL, assertions: [String], title: String, junit: String?) throws
        -> (runs: [RunResult], checks: [ThresholdCheck]) {
        let thresholds = try assertions.map { try Threshold.parse($0, origin: "--assert") }
        let options = AnalysisOptions()
        let files = try AnalyzeCommand.logFiles(under: folder)
        var logs: [EventLogFile] = []
        for url in files {
            let text = (try? String(contentsOf: url, encoding: .utf8)) ?? ""
            logs.append(EventLogFile.parse(text: text, file: AnalyzeCommand.relative(url, to: folder)))
        }
        let runs = EventLogFile.groupIntoRuns(logs).map { RunAnalysis.analyze(logs: $0, options: options) }
        guard !runs.isEmpty else { throw RunFailure("\(folder.path): no readable event log") }
        let checks = Threshold.evaluate(thresholds, against: runs)
        func write(_ text: String, _ url: URL) throws {
            do { try Data(text.utf8).write(to: url, options: .atomic) } catch { throw RunFailure("\(url.path): cannot write: \(error.localizedDescription)") }
        }
        try write(ResultsDocument.render(runs: runs, checks: checks, options: options), folder.appendingPathComponent("results.json"))
        for csv in ResultsDocument.csv(runs: runs) { try write(csv.text, folder.appendingPathComponent(csv.name)) }
        try write(HTMLReport.render(runs: runs, checks: checks, title: title), folder.appendingPathComponent("report.html"))
        if let junit { try write(ThresholdCheck.junitXML(checks), URL(fileURLWithPath: junit)) }
        return (runs, checks)
    }
}

/// Per stack and flow: the delivery gap at each coverage change, then stall
/// time, survival, mean goodput and the most subflows at once.
enum HandoverTable {
    static func render(_ runs: [RunResult]) -> String {
        var table: [[String]] = [["stack", "flow", "gap per handover (coverage change: gap)", "stall", "survived", "goodput", "subflows"]]
        for run in runs {
            for flow in run.flows {
                let gaps = flow.handovers.map { h in
                    "\(formatSeconds(Interval(nanoseconds: h.time.nanoseconds))) \(h.link) \(h.covered ? "up" : "down"): \(h.gap.map(formatMilliseconds) ?? "–")"
                }.joined(separator: "; ")
                table.append([run.stack, flow.conn, gaps.isEmpty ? "–" : gaps, formatMilliseconds(flow.stallTime),
                              flow.survived ? "yes" : "no", String(format: "%.2f Mbit/s", flow.goodputMean / 1e6), String(flow.maxSubflows)])
            }
        }
        let widths = (0..<table[0].count).map { col in table.map { $0[col].count }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { col, cell in cell + String(repeating: " ", count: widths[col] - cell.count) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n") + "\n"
    }
}

func formatMilliseconds(_ i: Interval) -> String { String(format: "%.0f ms", i.seconds * 1000) }
