import Analysis
import Core
import Emulator
import ExperimentSimulation
import Foundation
import LinkModel
import MPTCP
import Mobility
import Netlink
import Testbed
import Traffic
#if canImport(Glibc)
import Glibc
#endif

/// Set by SIGINT/SIGTERM (or a failure) to end a run early; checked between steps.
final class StopRequest: @unchecked Sendable {
    private let lock = NSLock()
    private var stopped = false
    let cancellation = BuildCancellation()
    func stop() { lock.lock(); stopped = true; lock.unlock(); cancellation.cancel() }
    var isStopped: Bool { lock.lock(); defer { lock.unlock() }; return stopped }
}

struct RunFailure: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Everything one stack's run needs that is the same for every stack.
struct PreparedExperiment {
    var experiment: Experiment
    var topology: Topology
    var topologyName: String
    var route: Route
    var vehicle: String
    var server: String
    var timeline: CoverageTimeline
    var duration: Interval
}

/// Which links are covered at route time `t`: a link is covered unless the
/// latest coverage change at or before `t` (in any direction) took it away.
func coveredLinks(_ timeline: CoverageTimeline, links: [String], at t: Interval) -> [String: Bool] {
    var state: [String: [LinkDirection: Bool]] = [:]
    for e in timeline.events where e.at <= t {
        if case let .coverage(up, _) = e.change {
            for d in e.direction == .both ? [LinkDirection.aToB, .bToA] : [e.direction] { state[e.link, default: [:]][d] = up }
        }
    }
    return Dictionary(uniqueKeysWithValues: links.map { l in (l, state[l]?.values.allSatisfy { $0 } ?? true) })
}

/// One stack's run: build the topology, replay the route through the userspace
/// emulator, configure kernel MPTCP, run the traffic as `wayside node`
/// processes in the nodes' namespaces, and remove everything whatever happens.
final class StackRun {
    let prepared: PreparedExperiment
    let stack: Experiment.Stack
    let folder: URL
    let runID: RunID
    let progress: Bool
    let stop: StopRequest
    /// Capture every packet of the vehicle and the server (`tshark -i any` in their namespaces).
    var pcap = false
    /// The `ip mptcp` commands run, per node, recorded in results.
    private(set) var mptcpCommands: [(node: String, command: [String])] = []

    init(prepared: PreparedExperiment, stack: Experiment.Stack, folder: URL, progress: Bool, stop: StopRequest) {
        self.prepared = prepared; self.stack = stack; self.folder = folder; self.progress = progress; self.stop = stop
        runID = RunID.random()
    }

    /// One path of an end point. `address` is what traffic uses: the veth
    /// address for kernel stacks, the Swift stack's own address behind it for `swift`.
    struct Endpoint { var node: String; var namespace: String; var interface: String; var address: String; var link: String }

    /// The vehicle's interfaces on its radio links and the server's first interface.
    func endpoints(_ plan: TestbedPlan) throws -> (vehicle: [Endpoint], server: Endpoint) {
        func ends(of node: String) -> [Endpoint] {
            plan.links.flatMap { link in
                [link.a, link.b].compactMap { end in
                    guard end.node == node, let a = end.address else { return nil }
                    let behind = plan.stackPlacement(forNode: node)?.path(forLink: link.name)?.stackAddress
                    return Endpoint(node: node, namespace: end.namespace, interface: end.name,
                                    address: (behind ?? a.address).description, link: link.name)
                }
            }
        }
        let vehicle = ends(of: prepared.vehicle)
        guard !vehicle.isEmpty else { throw RunFailure("vehicle '\(prepared.vehicle)' has no links") }
        guard let server = ends(of: prepared.server).first else { throw RunFailure("server '\(prepared.server)' has no links") }
        return (vehicle, server)
    }

    func run() throws {
        let plan: TestbedPlan
        do {
            plan = try TestbedPlan(topology: prepared.topology, runID: runID, emulation: .userspace,
                                   swiftStackNodes: stack == .swift ? [prepared.vehicle, prepared.server] : [])
        } catch { throw RunFailure("\(prepared.topologyName): \(error.description)") }
        let links = plan.emulatedLinks
        guard !links.isEmpty else { throw RunFailure("\(prepared.topologyName): no link goes through the emulator") }
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)

        let testbed: TestbedNetwork
        do {
            testbed = try TestbedNetwork.build(plan, topologyFile: prepared.experiment.topology?.path, cancellation: stop.cancellation)
        } catch TestbedError.interrupted { throw RunFailure("interrupted while building the topology") }
        var processes: [(name: String, process: Process)] = []
        var emulator: UserspaceEmulator?
        defer {
            // Apps by pid, then the emulator, then the namespaces: nothing is left behind.
            for p in processes.reversed() { Self.end(p.process) }
            emulator?.stop()
            do { try testbed.teardown() } catch {
                FileHandle.standardError.write(Data("wayside: teardown of run \(runID): \(error); 'wayside cleanup' removes what is left\n".utf8))
            }
        }
        let (vehicleEnds, serverEnd) = try endpoints(plan)
        var attributes = ["topology": prepared.topologyName, "route": prepared.experiment.route.name,
                          "traffic": prepared.experiment.traffic.rawValue, "direction": prepared.experiment.direction.rawValue,
                          "experiment_run": runID.value, "seed": String(prepared.route.seed)]
        if stack == .kernelMPTCP {
            try configureMPTCP(vehicle: vehicleEnds, server: serverEnd)
            attributes["path_manager"] = "in-kernel " + prepared.experiment.pathManager.rawValue
            attributes["endpoints"] = mptcpCommands.map { "\($0.node): ip \($0.command.joined(separator: " "))" }.joined(separator: "; ")
        }
        if stack == .swift {
            attributes["path_manager"] = prepared.experiment.swiftPathManager
            attributes["scheduler"] = prepared.experiment.scheduler
            attributes["congestion_control"] = prepared.experiment.congestionControl
        }
        try Data(describeConfiguration(plan).utf8).write(to: folder.appendingPathComponent("configuration.txt"))

        // Time zero of the run: the emulator replays the timeline from here and
        // every log counts from here. It lies a little ahead, so that the
        // emulator's loop runs when the timeline's first steps fall due.
        let epoch = RunClock.monotonicNanoseconds() + 500_000_000
        let clock = RunClock(epoch: epoch)
        var linkLogs: [String: EventLogWriter] = [:]
        for l in links {
            linkLogs[l.name] = try EventLogWriter(path: folder.appendingPathComponent("link-\(l.name).jsonl").path, source: .link(l.name),
                                                  clock: clock, run: runID.value, stack: stack.rawValue, attributes: ["role": "emulator"])
        }
        defer { for w in linkLogs.values { w.close() } }
        let emu = UserspaceEmulator(links: links, timeline: prepared.timeline, seed: prepared.route.seed)
        try emu.start(origin: Instant(nanoseconds: epoch))
        emulator = emu
        clock.sleep(until: .zero)
        var coverageLog = CoverageLogWriter(logs: linkLogs, origin: epoch)
        coverageLog.writeInitial(prepared.timeline, links: vehicleEnds.map(\.link))
        coverageLog.write(emu.appliedChanges)

        if pcap {
            for end in [vehicleEnds[0], serverEnd] {
                processes.append(("\(end.node) capture", try capture(end)))
            }
        }

        // Receivers first (they listen), then senders.
        let flows = self.flows(vehicle: vehicleEnds, server: serverEnd)
        let paths = vehicleEnds.flatMap { ["--path", "\($0.address)=\($0.link)"] }
        let socketKind = stack.rawValue
        for f in flows {
            let receiver = try node(ns: f.receiver.namespace, name: f.receiver.node, conn: f.conn, arguments: swiftArguments(plan, f.receiver.node, f.conn) + [
                // Any address: an MPTCP join arrives at the vehicle's other addresses (RFC 8684 §3.2).
                "--app", f.receiverApp, "--listen", "0.0.0.0:\(f.port)", "--socket", socketKind,
                "--conn", f.conn, "--node", f.receiver.node, "--run", runID.value, "--epoch", String(epoch),
                "--log", folder.appendingPathComponent("\(f.receiver.node)-\(f.conn).jsonl").path] + paths + Self.attributeFlags(attributes))
            processes.append(("\(f.receiver.node) \(f.receiverApp)", receiver))
            // The Swift stack's listener is not a kernel socket (`ss` cannot see it): its sender retries until it answers.
            if stack != .swift { try waitListening(ns: f.receiver.namespace, port: f.port, process: receiver) }
        }
        for f in flows {
            var args = swiftArguments(plan, f.sender.node, f.conn) + ["--app", prepared.experiment.traffic.rawValue, "--connect", "\(f.receiver.address):\(f.port)",
                        "--socket", socketKind, "--conn", f.conn, "--node", f.sender.node, "--run", runID.value,
                        "--epoch", String(epoch), "--rate", String(prepared.experiment.rate), "--size", String(prepared.experiment.size),
                        "--connect-timeout", "\(max(1, Int(prepared.duration.seconds)))s",
                        "--log", folder.appendingPathComponent("\(f.sender.node)-\(f.conn).jsonl").path]
            if let bind = f.bind { args += ["--bind", bind] }
            let sender = try node(ns: f.sender.namespace, name: f.sender.node, conn: f.conn, arguments: args + paths + Self.attributeFlags(attributes))
            processes.append(("\(f.sender.node) \(prepared.experiment.traffic.rawValue)", sender))
        }

        // Drive: until the route's (or --duration's) end, with a progress line.
        let receiverLogs = flows.map { LogTail(path: folder.appendingPathComponent("\($0.receiver.node)-\($0.conn).jsonl").path) }
        let radioLinks = vehicleEnds.map(\.link)
        var lastProgress = Instant.zero
        while !stop.isStopped {
            let now = clock.now()
            coverageLog.write(emu.appliedChanges)
            if now.nanoseconds >= prepared.duration.nanoseconds { break }
            if let dead = processes.first(where: { !$0.process.isRunning && $0.process.terminationStatus != 0 }) {
                FileHandle.standardError.write(Data("\nwayside: \(dead.name) on run \(runID) exited with status \(dead.process.terminationStatus) (see \(folder.path))\n".utf8))
                break
            }
            if progress, now.nanoseconds - lastProgress.nanoseconds >= 250_000_000 {
                lastProgress = now
                let covered = coveredLinks(prepared.timeline, links: radioLinks, at: Interval(nanoseconds: now.nanoseconds))
                let coverText = radioLinks.map { "\($0) \(covered[$0]! ? "up" : "--")" }.joined(separator: ", ")
                let bytes = receiverLogs.reduce(Int64(0)) { $0 + $1.deliveredBytes() }
                let line = String(format: "  %@ %6.1f / %.0f s   %@   delivered %@", stack.rawValue, now.seconds, prepared.duration.seconds,
                                  coverText, ByteCount.text(bytes))
                FileHandle.standardOutput.write(Data(("\r" + line + "\u{1B}[K").utf8))
            }
            usleep(50_000)
        }
        if progress { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        // Senders first, so that receivers see the end of the stream; then receivers.
        for p in processes.reversed() { Self.end(p.process) }
        processes.removeAll()
        let endTime = clock.now()
        emu.stop()
        emulator = nil
        coverageLog.write(emu.appliedChanges)
        for w in linkLogs.values { w.log(.runEnd, at: endTime) }
        if stop.isStopped { throw RunFailure("interrupted") }
    }

    /// `wayside node` flags that put the Swift stack under a node's application:
    /// its TUN device, its address per path, the experiment's path manager,
    /// scheduler and congestion control, and a capture with `--pcap`.
    func swiftArguments(_ plan: TestbedPlan, _ node: String, _ conn: String) -> [String] {
        guard stack == .swift, let placement = plan.stackPlacement(forNode: node) else { return [] }
        var args = ["--tun", placement.tunName]
        for p in placement.paths { args += ["--stack-address", "\(p.stackAddress)=\(p.interface.name)"] }
        args += ["--path-manager", prepared.experiment.swiftPathManager, "--scheduler", prepared.experiment.scheduler,
                 "--congestion-control", prepared.experiment.congestionControl]
        if pcap { args += ["--pcap", folder.appendingPathComponent("\(node)-\(conn)-stack.pcap").path] }
        return args
    }

    struct Flow {
        var conn: String
        var sender: Endpoint
        var receiver: Endpoint
        var receiverApp: String
        var port: Int
        var bind: String?
    }

    /// Downlink: the server sends to the vehicle's address on the link covered
    /// at the start; uplink: the vehicle sends to the server from that address.
    func flows(vehicle: [Endpoint], server: Endpoint) -> [Flow] {
        let covered = coveredLinks(prepared.timeline, links: vehicle.map(\.link), at: .zero)
        let first = vehicle.first { covered[$0.link] == true } ?? vehicle[0]
        let receiverApp = prepared.experiment.traffic == .rr ? "echo" : "sink"
        var flows: [Flow] = []
        let direction = prepared.experiment.traffic == .rr ? .up : prepared.experiment.direction
        if direction == .down || direction == .both {
            flows.append(Flow(conn: "dl0", sender: server, receiver: first, receiverApp: receiverApp, port: 5001))
        }
        if direction == .up || direction == .both {
            flows.append(Flow(conn: "ul0", sender: first, receiver: server, receiverApp: receiverApp, port: 5002, bind: first.address))
        }
        return flows
    }

    /// Kernel MPTCP's in-kernel path manager, set explicitly (BASELINES.md):
    /// limits that accept ADD_ADDR, an endpoint per vehicle radio interface
    /// (`subflow` where the vehicle opens the connection, `signal` where it
    /// accepts it), `fullmesh` on request, and a `signal` endpoint on the server.
    func configureMPTCP(vehicle: [Endpoint], server: Endpoint) throws {
        let pm = prepared.experiment.pathManager
        let vehicleOpens = prepared.experiment.traffic == .rr || prepared.experiment.direction != .down
        let serverOpens = prepared.experiment.traffic != .rr && prepared.experiment.direction != .up
        var commands: [(Endpoint, [String])] = []
        for node in [vehicle[0], server] {
            commands.append((node, ["mptcp", "limits", "set", "subflows", "8", "add_addr_accepted", "8"]))
        }
        for (k, end) in vehicle.enumerated() {
            var flags: [String] = []
            if vehicleOpens { flags.append("subflow") }
            if serverOpens { flags.append("signal") }
            if pm == .fullmesh && vehicleOpens { flags.append("fullmesh") }
            commands.append((end, ["mptcp", "endpoint", "add", end.address, "dev", end.interface, "id", String(k + 1)] + flags))
        }
        if pm == .fullmesh {
            var flags = ["signal"]
            if serverOpens { flags = ["subflow", "fullmesh"] }
            commands.append((server, ["mptcp", "endpoint", "add", server.address, "dev", server.interface, "id", "1"] + flags))
        }
        for (end, command) in commands {
            let out = try Self.shell(["ip", "-n", end.namespace] + command)
            if !out.ok { throw RunFailure("ip -n \(end.namespace) \(command.joined(separator: " ")): \(out.text)") }
            mptcpCommands.append((end.node, command))
        }
    }

    func describeConfiguration(_ plan: TestbedPlan) -> String {
        var s = "run \(runID.value)  stack \(stack.rawValue)  topology \(prepared.topologyName)  route \(prepared.experiment.route.name)\n"
        s += "traffic \(prepared.experiment.traffic.rawValue) \(prepared.experiment.direction.rawValue) rate \(prepared.experiment.rate)/s size \(prepared.experiment.size) B  seed \(prepared.route.seed)  duration \(prepared.duration)\n"
        if stack == .swift {
            s += "Swift stack: path manager \(prepared.experiment.swiftPathManager), scheduler \(prepared.experiment.scheduler), congestion control \(prepared.experiment.congestionControl)\n"
            for p in plan.stackPlacements {
                s += "  \(p.node): TUN \(p.tunName), " + p.paths.map { "\($0.stackAddress) behind \($0.interface.name) (\($0.link))" }.joined(separator: ", ") + "\n"
            }
        }
        if stack == .kernelMPTCP {
            s += "kernel MPTCP path manager: in-kernel, \(prepared.experiment.pathManager.rawValue)\n"
            for c in mptcpCommands { s += "  \(c.node): ip \(c.command.joined(separator: " "))\n" }
        }
        return s
    }

    static func attributeFlags(_ attributes: [String: String]) -> [String] {
        attributes.sorted { $0.key < $1.key }.flatMap { ["--attribute", "\($0.key)=\($0.value)"] }
    }

    /// This binary, to run `wayside node` in a namespace.
    static let binary: String = {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }()

    func node(ns: String, name: String, conn: String, arguments: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", ns, Self.binary, "node"] + arguments
        let errPath = folder.appendingPathComponent("\(name)-\(conn).stderr").path
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        do { try p.run() } catch { throw RunFailure("cannot start wayside node in \(ns): \(error)") }
        return p
    }

    /// Starts tshark on every interface of a node's namespace and waits until it captures.
    func capture(_ end: Endpoint) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        let file = folder.appendingPathComponent("\(end.node).pcapng").path
        _ = FileManager.default.createFile(atPath: file, contents: nil)
        p.arguments = ["ip", "netns", "exec", end.namespace, "tshark", "-q", "-i", "any", "-w", file]
        let errPath = folder.appendingPathComponent("\(end.node)-capture.stderr").path
        _ = FileManager.default.createFile(atPath: errPath, contents: nil)
        p.standardError = FileHandle(forWritingAtPath: errPath)
        p.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        do { try p.run() } catch { throw RunFailure("--pcap: cannot start tshark in \(end.namespace): \(error)") }
        for _ in 0..<250 {
            if let text = try? String(contentsOfFile: errPath, encoding: .utf8), text.contains("Capturing on") { return p }
            guard p.isRunning else { throw RunFailure("--pcap: tshark in \(end.namespace) exited with status \(p.terminationStatus) (see \(errPath))") }
            usleep(20_000)
        }
        Self.end(p)
        throw RunFailure("--pcap: tshark in \(end.namespace) did not start capturing within 5 s")
    }

    func waitListening(ns: String, port: Int, process: Process) throws {
        for _ in 0..<250 {
            if stop.isStopped { throw RunFailure("interrupted") }
            guard process.isRunning else { throw RunFailure("the receiver in \(ns) exited with status \(process.terminationStatus) (see \(folder.path))") }
            let out = try Self.shell(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :\(port)"])
            if out.ok, !out.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty { return }
            usleep(20_000)
        }
        throw RunFailure("nothing listens on port \(port) in \(ns) after 5 s")
    }

    /// SIGTERM by pid and wait; SIGKILL if it has not ended within 3 s.
    static func end(_ p: Process) {
        guard p.isRunning else { return }
        kill(p.processIdentifier, SIGTERM)
        for _ in 0..<300 where p.isRunning { usleep(10_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
    }

    static func shell(_ arguments: [String]) throws -> (ok: Bool, text: String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = arguments
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        p.standardInput = FileHandle(forReadingAtPath: "/dev/null")
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus == 0, String(decoding: data, as: UTF8.self))
    }
}

/// Turns the emulator's applied timeline steps into `coverage` and
/// `link.params` events (docs/LOGS.md) in each link's log, once per link
/// (a change applied to both directions is one event), through the
/// `CoverageEventLog` the simulated run logs with too.
struct CoverageLogWriter {
    let logs: [String: EventLogWriter]
    let origin: Int64
    var written = 0
    var events = CoverageEventLog()

    init(logs: [String: EventLogWriter], origin: Int64) { self.logs = logs; self.origin = origin }

    /// Each of `links`' state at the run's start, at t = 0 (docs/METRICS.md: the
    /// initial state, not a change), so that analysis knows every vehicle link —
    /// also one the timeline never touches — and whether it starts covered.
    mutating func writeInitial(_ timeline: CoverageTimeline, links: [String]) {
        let covered = coveredLinks(timeline, links: links, at: .zero)
        for name in links {
            guard let log = logs[name], events.initial(link: name, covered: covered[name]!) else { continue }
            let loss = timeline.events.lazy.compactMap { e -> CoverageLoss? in
                if e.link == name, case let .coverage(_, loss) = e.change { return loss }
                return nil
            }.first ?? .silent
            log.log(.coverage(covered: covered[name]!, loss: loss, rate: nil), at: .zero)
        }
    }

    mutating func write(_ changes: [AppliedChange]) {
        guard changes.count > written else { return }
        for c in changes[written...] {
            guard let log = logs[c.link] else { continue }
            // Steps due at the timeline's start set the initial state: logged at t = 0.
            let t = c.scheduled.nanoseconds <= origin ? Instant.zero : Instant(nanoseconds: c.applied.nanoseconds - origin)
            for body in events.apply(link: c.link, direction: c.direction, step: c.step) { log.log(body, at: t) }
        }
        written = changes.count
    }
}

/// Follows a receiver's event log to count delivered bytes for the progress line.
final class LogTail {
    let path: String
    private var handle: FileHandle?
    private var pending = Data()
    private var total: Int64 = 0

    init(path: String) { self.path = path }

    func deliveredBytes() -> Int64 {
        if handle == nil { handle = FileHandle(forReadingAtPath: path) }
        guard let handle else { return total }
        let data = handle.availableData
        guard !data.isEmpty else { return total }
        pending.append(data)
        while let nl = pending.firstIndex(of: UInt8(ascii: "\n")) {
            let line = String(decoding: pending[pending.startIndex..<nl], as: UTF8.self)
            pending.removeSubrange(pending.startIndex...nl)
            guard let event = try? LogEvent.parse(line: line) else { continue }
            switch event.body {
            case let .appDelivered(m): total += Int64(m.size)
            case let .bytesDelivered(_, bytes, _): total += bytes
            default: break
            }
        }
        return total
    }
}

enum ByteCount {
    static func text(_ b: Int64) -> String {
        let d = Double(b)
        if b >= 1 << 30 { return String(format: "%.2f GiB", d / 1_073_741_824) }
        if b >= 1 << 20 { return String(format: "%.1f MiB", d / 1_048_576) }
        if b >= 1 << 10 { return String(format: "%.1f KiB", d / 1024) }
        return "\(b) B"
    }
}
