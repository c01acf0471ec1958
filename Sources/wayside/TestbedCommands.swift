import ArgumentParser
import Config
import Foundation
import Netlink
import Testbed

/// Options shared by the commands that read a topology.
struct TopologyOptions: ParsableArguments {
    @Argument(help: "A topology file (Topologies/*.yaml; schema in docs/TOPOLOGY.md).")
    var topology: String

    @Option(name: .customLong("run-id"), help: "Run id (1-12 of a-z, 0-9); random if omitted.")
    var runID: String?

    @Option(help: "Override the topology's emulation: userspace (links split through the emulator namespace) or none.")
    var emulation: String?

    func validate() throws {
        if let runID, RunID(runID) == nil { throw ValidationError("--run-id: expected 1 to 12 characters of a-z and 0-9, found '\(runID)'") }
        if let emulation, EmulationMode(rawValue: emulation) == nil {
            throw ValidationError("--emulation: expected 'userspace' or 'none', found '\(emulation)'")
        }
    }

    /// Loads and plans; a bad file prints every problem and exits 1 having created nothing.
    func plan() throws -> TestbedPlan {
        let topology: Topology
        do {
            topology = try Topology.load(contentsOf: self.topology)
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode.failure
        }
        do {
            return try TestbedPlan(topology: topology, runID: runID.flatMap(RunID.init) ?? RunID.random(),
                                   emulation: emulation.flatMap(EmulationMode.init(rawValue:)))
        } catch {
            FileHandle.standardError.write(Data("\(self.topology): \(error.description)\n".utf8))
            throw ExitCode.failure
        }
    }
}

func milliseconds(_ d: Duration) -> Int64 { d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000 }

func fail(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("wayside: " + message + "\n").utf8))
    return ExitCode.failure
}

struct PlanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plan",
        abstract: "Print what 'wayside up' would build from a topology, without building it.")

    @OptionGroup var options: TopologyOptions

    @Flag(help: "Print the plan as the equivalent shell script of ip commands.")
    var script = false

    func run() throws {
        let plan = try options.plan()
        print(script ? plan.shellScript() : plan.render(), terminator: "")
    }
}

struct UpCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Build a topology in network namespaces and leave it up.",
        discussion: "Ctrl-C or SIGTERM during the build removes everything built so far. 'wayside down' removes the run.")

    @OptionGroup var options: TopologyOptions

    @Flag(name: .customLong("dry-run"), help: "Print the plan and build nothing.")
    var dryRun = false

    func run() throws {
        let plan = try options.plan()
        if dryRun {
            print(plan.render(), terminator: "")
            return
        }
        guard getuid() == 0 else { throw fail("building namespaces needs root") }
        let cancellation = BuildCancellation()
        let signals = TerminationSignals { cancellation.cancel() }
        defer { signals.restore() }
        let testbed: TestbedNetwork
        do {
            testbed = try TestbedNetwork.build(plan, topologyFile: options.topology, cancellation: cancellation)
        } catch TestbedError.interrupted {
            FileHandle.standardError.write(Data("wayside: \(TestbedError.interrupted)\n".utf8))
            throw ExitCode(128 + (signals.received ?? SIGINT))
        } catch {
            throw fail("\(error)")
        }
        let t = testbed.timings
        print("run \(plan.runID) is up: \(plan.nodes.count) nodes, \(plan.links.count) links in \(plan.namespaces.count) namespaces (\(milliseconds(t.total)) ms)")
        for n in plan.nodes { print("  \(n.name)\t\(n.namespace)\t\(n.interfaces.map { "\($0.name) \($0.address!)" }.joined(separator: ", "))") }
        if let e = plan.emulatorNamespace { print("  emulator\t\(e)") }
        print("'wayside exec --run \(plan.runID) NODE -- CMD' runs a command on a node; 'wayside down --run \(plan.runID)' removes the run.")
    }
}

/// Turns SIGINT and SIGTERM into a callback while a build runs.
final class TerminationSignals: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var signal: Int32?
    var received: Int32? { lock.lock(); defer { lock.unlock() }; return signal }

    init(_ handler: @escaping @Sendable () -> Void) {
        for s in [SIGINT, SIGTERM] {
            Foundation.signal(s, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: s, queue: .global())
            source.setEventHandler { [weak self] in
                self?.lock.lock(); self?.signal = s; self?.lock.unlock()
                handler()
            }
            source.resume()
            sources.append(source)
        }
    }

    func restore() {
        for s in sources { s.cancel() }
        Foundation.signal(SIGINT, SIG_DFL)
        Foundation.signal(SIGTERM, SIG_DFL)
    }
}

/// Picks the run a command means: the one given, or the only one there is.
func chooseRun(_ runID: String?, registry: RunRegistry = RunRegistry()) throws -> RunRecord {
    if let runID {
        do { return try registry.read(runID) } catch { throw fail("\(error)") }
    }
    let runs = registry.all()
    switch runs.count {
    case 0: throw fail("no runs are up")
    case 1: return runs[0]
    default: throw fail("\(runs.count) runs are up (\(runs.map(\.runID).joined(separator: ", "))); choose one with --run")
    }
}

struct DownCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Remove a run built by 'wayside up'.")

    @Option(name: .customLong("run"), help: "The run id ('wayside ls'); may be omitted when only one run is up.")
    var runID: String?

    func run() throws {
        let record = try chooseRun(runID)
        do { try TestbedNetwork.remove(runID: record.runID) } catch { throw fail("\(error)") }
        print("run \(record.runID) removed (\(record.namespaces.count) namespaces)")
    }
}

struct ExecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command on a node of a run: 'wayside exec car -- ip addr'.")

    @Option(name: .customLong("run"), help: "The run id; may be omitted when only one run is up.")
    var runID: String?

    @Argument(help: "The node.")
    var node: String

    @Argument(parsing: .postTerminator, help: "The command and its arguments, after --.")
    var command: [String] = []

    func validate() throws {
        if command.isEmpty { throw ValidationError("expected a command after --, e.g. 'wayside exec car -- ip addr'") }
    }

    func run() throws {
        let record = try chooseRun(runID)
        guard let node = record.node(named: node) else {
            throw fail("run \(record.runID) has no node '\(node)' (nodes: \(record.nodes.map(\.name).joined(separator: ", ")))")
        }
        do { try NetworkNamespace.enterForExec(named: node.namespace) } catch { throw fail("\(error)") }
        let argv = command.map { strdup($0) } + [nil]
        execvp(command[0], argv)
        throw fail("cannot run '\(command[0])': \(String(cString: strerror(errno)))")
    }
}

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ls",
        abstract: "List the runs that are up (or were left behind).")

    func run() throws {
        let runs = RunRegistry().all()
        if runs.isEmpty { print("no runs"); return }
        let formatter = ISO8601DateFormatter()
        print("RUN\tSTATE\tTOPOLOGY\tNODES\tLINKS\tCREATED")
        for r in runs {
            let state = r.state == .building && !r.ownerIsAlive ? "left-behind" : r.state.rawValue
            print("\(r.runID)\t\(state)\t\(r.topology)\t\(r.nodes.count)\t\(r.links.count)\t\(formatter.string(from: r.created))")
        }
    }
}

struct CleanupCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cleanup",
        abstract: "Remove what runs left behind (e.g. after SIGKILL): only Wayside's own namespaces, as recorded in /run/wayside.")

    @Option(name: .customLong("run"), help: "The run to remove.")
    var runID: String?

    @Flag(help: "Remove every recorded run whose building process is gone.")
    var all = false

    func validate() throws {
        if (runID == nil) == !all { throw ValidationError("expected exactly one of --run ID or --all") }
    }

    func run() throws {
        let registry = RunRegistry()
        let records = all ? registry.all() : [try chooseRun(runID, registry: registry)]
        var failed = false
        for r in records {
            if all && r.ownerIsAlive {
                print("run \(r.runID): still being built by process \(r.pid); skipped")
                continue
            }
            let present = r.namespaces.filter(NetworkNamespace.exists(named:))
            do {
                try TestbedNetwork.remove(runID: r.runID, registry: registry)
                print("run \(r.runID): removed \(present.count) namespaces")
            } catch {
                failed = true
                FileHandle.standardError.write(Data("wayside: run \(r.runID): \(error)\n".utf8))
            }
        }
        if failed { throw ExitCode.failure }
    }
}
