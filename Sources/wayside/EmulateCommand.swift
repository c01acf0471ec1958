import ArgumentParser
import Core
import Emulator
import Foundation
import Netlink
import Testbed

/// `wayside emulate TOPOLOGY ROUTE`: runs the link emulator on a testbed that
/// is up (`wayside up TOPOLOGY`) and replays the route's coverage timeline on
/// it, so the user's own programs (`wayside exec`) see the drive.
struct EmulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulate",
        abstract: "Replay a route's coverage timeline on a topology that is up.",
        discussion: """
        Finds the run of TOPOLOGY that 'wayside up' left up (or the one given with --run), \
        moves its emulated links' frames through their link models in the run's emulator \
        namespace, and applies the route's timeline from now on. Stops at the end of the \
        route, or on Ctrl-C; frames stop crossing emulated links when it stops.
        """)

    @Argument(help: "The topology file the run was built from.")
    var topology: String

    @Argument(help: "A route file (Routes/*.yaml; see docs/ROUTES.md).")
    var route: String

    @Option(name: .customLong("run"), help: "The run to emulate on (see 'wayside ls'); needed when several runs of TOPOLOGY are up.")
    var runID: String?

    @Option(help: "Backend: auto (netem where the kernel has it, else userspace), netem, or userspace.")
    var emulator: EmulatorBackend = .auto

    @Option(help: "Override the route's seed (shadowing and the links' random loss).")
    var seed: UInt64?

    @Option(help: "Write every packet event and timeline change as JSON lines to this file.")
    var log: String?

    @Option(help: "Stop after this long (e.g. 30s) instead of at the end of the route.")
    var duration: String?

    func run() throws {
        var limit: Interval?
        if let duration {
            let d = try? Quantity.interval(duration)
            guard let d, d > .zero else { throw fail("--duration: expected a positive time such as 30s or 500ms, found '\(duration)'") }
            limit = d
        }
        let loaded: RouteFiles.Loaded
        do { loaded = try RouteFiles.load(route: route, topology: topology, seed: seed) } catch { throw fail("\(error)") }
        let topo: Topology
        do { topo = try Topology.load(contentsOf: topology) } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode.failure
        }
        let choice: BackendChoice
        do { choice = try BackendChoice.resolve(emulator) } catch { throw fail("\(error)") }
        print("emulator: \(choice.explanation)")
        if choice.backend == .netem, log != nil {
            throw fail("--log: per-packet events come from the userspace backend only (the kernel's netem keeps none); add --emulator userspace")
        }
        guard getuid() == 0 else { throw fail("emulating links needs root") }
        let record = try findRun(topology: topo)
        guard let runID = RunID(record.runID) else { throw fail("run record '\(record.runID)' has a malformed run id") }
        let plan: TestbedPlan
        do { plan = try TestbedPlan(topology: topo, runID: runID) } catch { throw fail("\(topology): \(error)") }
        let links = plan.emulatedLinks
        guard !links.isEmpty, let namespace = plan.emulatorNamespace, NetworkNamespace.exists(named: namespace),
              Set(links.map(\.aSide.name)).isSubset(of: Set(record.links.compactMap { $0.emulator?.aSide.name })) else {
            throw fail("run \(runID) has no emulated links matching \(topology) (was it built from another file or with --emulation none?)")
        }


        let logFile: FileHandle?
        if let log {
            guard FileManager.default.createFile(atPath: log, contents: nil), let h = FileHandle(forWritingAtPath: log) else {
                throw fail("--log \(log): cannot create the file")
            }
            logFile = h
        } else { logFile = nil }
        let writer = logFile.map { LogWriter($0) }

        let timeline = loaded.coverage.timeline
        let emulator: LinkEmulator
        let userspace: UserspaceEmulator?
        if choice.backend == .netem {
            emulator = NetemEmulator(links: links, timeline: timeline)
            userspace = nil
        } else {
            let u = UserspaceEmulator(links: links, timeline: timeline, seed: loaded.route.seed,
                                      eventLog: writer.map { w in { w.write($0) } })
            emulator = u
            userspace = u
        }
        do { try emulator.start(origin: nil) } catch { throw fail("\(error)") }
        let stop = DispatchSemaphore(value: 0)
        let signals = TerminationSignals { stop.signal() }
        defer { signals.restore() }
        let end = limit ?? timeline.duration
        print("run \(runID): \(links.count) emulated links, \(timeline.events.count) timeline events over \(timeline.duration)\(userspace?.realtime == false ? " (no real-time priority: timing may suffer)" : "")")
        let startWall = DispatchTime.now()
        var shown = 0
        while true {
            let elapsed = UserspaceEmulator.now() - emulator.origin
            if elapsed >= end { break }
            if stop.wait(timeout: .now() + .milliseconds(100)) == .success { break }
            let applied = emulator.appliedChanges
            for c in applied[shown...] {
                print(String(format: "%9.3f s  %@ %@: %@ (%.3f ms late)", (c.scheduled - emulator.origin).seconds,
                             c.link, c.direction.rawValue, describe(c.step), c.lateness.milliseconds))
            }
            shown = applied.count
        }
        _ = startWall
        emulator.stop()
        writer?.close()
        let late = emulator.appliedChanges.map(\.lateness.milliseconds)
        print(String(format: "%d changes applied, at most %.3f ms late", late.count, late.max() ?? 0))
        for l in links where userspace != nil {
            for d in [LinkDirection.aToB, .bToA] {
                let c = userspace!.counters(link: l.name, direction: d)
                let drops = c.dropped.sorted { $0.key.rawValue < $1.key.rawValue }.map { "\($0.key.rawValue) \($0.value)" }.joined(separator: ", ")
                print("  \(l.name) \(d.rawValue): \(c.received) frames in, \(c.sent) out\(drops.isEmpty ? "" : ", dropped: " + drops)")
            }
        }
    }

    func findRun(topology topo: Topology) throws -> RunRecord {
        let registry = RunRegistry()
        if let run = runID {
            do { return try registry.read(run) } catch { throw fail("--run \(run): no such run (see 'wayside ls')") }
        }
        let mine = registry.all().filter { $0.state == .up && $0.topology == topo.name }
        guard let first = mine.first else { throw fail("no run of '\(topo.name)' is up: start one with 'wayside up \(topology)'") }
        guard mine.count == 1 else {
            throw fail("\(mine.count) runs of '\(topo.name)' are up (\(mine.map(\.runID).joined(separator: ", "))): choose one with --run")
        }
        return first
    }
}

extension EmulatorBackend: ExpressibleByArgument {}

/// JSON lines to a file, off the event loop's thread.
final class LogWriter: @unchecked Sendable {
    private let handle: FileHandle
    private let queue = DispatchQueue(label: "wayside-emulator-log")
    init(_ handle: FileHandle) { self.handle = handle }
    func write(_ line: String) { queue.async { self.handle.write(Data((line + "\n").utf8)) } }
    func close() { queue.sync { try? self.handle.close() } }
}
