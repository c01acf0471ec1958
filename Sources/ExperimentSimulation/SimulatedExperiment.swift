import Analysis
import Core
import LinkModel
import MPTCP
import MPTCPSimulation
import Simulation
import TCP
import Testbed
import Wire

/// Why an experiment cannot be simulated.
public struct SimulationSetupError: Error, Hashable, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// One experiment as the simulator runs it (issue 8, simulation mode): the
/// topology's plan (names, addresses, links and their parameters), the
/// route's coverage timeline, the traffic, and the Swift MPTCP stack's
/// settings. `run()` builds the same network in virtual time — every
/// topology link a simulator link whose two directions are the emulator's
/// `LinkPipeline`s with the same parameters, seed and stream names, the
/// timeline replayed on them through `TimelineSchedule` — runs `MPTCPHost`s
/// on the vehicle and the server, routers everywhere else, and returns the
/// event logs a real run of the Swift stack writes (docs/LOGS.md).
///
/// Connections: the vehicle opens every connection (from its address on the
/// link covered at time zero, as a real run's flows do), to the server's
/// port 5001 (`dl0`, the server sends) and 5002 (`ul0`, the vehicle sends).
public struct SimulatedExperiment: Sendable {
    public enum Traffic: String, Sendable, CaseIterable { case bulk, cbr, rr }
    public enum Direction: String, Sendable, CaseIterable { case down, up, both }

    public var plan: TestbedPlan
    public var timeline: CoverageTimeline
    public var vehicle: String
    public var server: String
    public var traffic: Traffic = .cbr
    public var direction: Direction = .down
    /// CBR messages per second.
    public var rate = 1000
    /// CBR message size in bytes.
    public var size = 1024
    public var duration: Interval
    /// Seeds the links (as the emulator's), the stacks' keys and payloads.
    public var seed: UInt64
    /// The run id every log carries (`log.start` `run`).
    public var runID: String
    public var pathManager = PathManagers.defaultName
    public var scheduler = Schedulers.defaultName
    public var congestionControl = CongestionControlAlgorithm.cubic
    public var coupling = CoupledAlgorithm.uncoupled
    /// Extra `log.start` attributes of every log (topology, route, …).
    public var attributes: [String: String] = [:]
    /// Written bytes a bulk sender keeps ahead of the data-level acknowledgment.
    public var bulkWriteAhead = 1 << 20

    public init(plan: TestbedPlan, timeline: CoverageTimeline, vehicle: String, server: String,
                duration: Interval, seed: UInt64, runID: String) {
        self.plan = plan; self.timeline = timeline; self.vehicle = vehicle; self.server = server
        self.duration = duration; self.seed = seed; self.runID = runID
    }

    /// The flows a run has (labels, ports, who sends), as `wayside run` names them.
    struct Flow {
        var conn: String
        var port: UInt16
        /// The vehicle sends (uplink) or receives (downlink).
        var vehicleSends: Bool
    }

    var flows: [Flow] {
        var out: [Flow] = []
        if direction == .down || direction == .both { out.append(Flow(conn: "dl0", port: 5001, vehicleSends: false)) }
        if direction == .up || direction == .both { out.append(Flow(conn: "ul0", port: 5002, vehicleSends: true)) }
        return out
    }

    public var configuration: MPTCPConfiguration {
        var c = MPTCPConfiguration()
        c.pathManager = pathManager
        c.scheduler = scheduler
        c.tcp.congestionControl = congestionControl
        c.coupledCongestionControl = coupling
        return c
    }

    /// The attributes every log's header carries.
    public var logAttributes: [String: String] {
        var a = attributes
        a["simulated"] = "true"
        a["path_manager"] = pathManager
        a["scheduler"] = scheduler
        a["congestion_control"] = coupling == .uncoupled ? congestionControl.rawValue : coupling.rawValue
        return a
    }

    /// Checks what the simulator cannot run, before anything is built.
    public func validate() throws(SimulationSetupError) {
        if traffic == .rr {
            throw SimulationSetupError("traffic rr cannot be simulated yet (the simulated hosts run bulk and cbr); use --traffic cbr or bulk")
        }
        guard PathManagers.names.contains(pathManager) else {
            throw SimulationSetupError("path manager '\(pathManager)' is not one of \(PathManagers.names.joined(separator: ", "))")
        }
        guard Schedulers.names.contains(scheduler) else {
            throw SimulationSetupError("scheduler '\(scheduler)' is not one of \(Schedulers.names.joined(separator: ", "))")
        }
        guard plan.node(named: vehicle) != nil else { throw SimulationSetupError("the topology has no node '\(vehicle)'") }
        guard plan.node(named: server) != nil else { throw SimulationSetupError("the topology has no node '\(server)'") }
        guard duration > .zero else { throw SimulationSetupError("the run has no duration") }
        guard rate > 0, size > 0 else { throw SimulationSetupError("cbr needs a positive rate and size") }
    }

    /// The vehicle's links with its address on each; the one covered at time zero first.
    func vehicleLinks() throws(SimulationSetupError) -> [(link: PlannedLink, address: NodeAddress, interface: String)] {
        var ends: [(link: PlannedLink, address: NodeAddress, interface: String)] = []
        for l in plan.links {
            for end in [l.a, l.b] where end.node == vehicle {
                guard let a = end.address else { continue }
                ends.append((l, IPv4Address(a.address.value), end.name))
            }
        }
        guard !ends.isEmpty else { throw SimulationSetupError("vehicle '\(vehicle)' has no addressed link") }
        let coveredAtStart = Self.coveredLinks(timeline, at: .zero)
        if let first = ends.firstIndex(where: { coveredAtStart[$0.link.name] ?? true }) {
            ends.insert(ends.remove(at: first), at: 0)
        }
        return ends
    }

    /// Which links the timeline has covered at `t` (absent: never changed, covered).
    static func coveredLinks(_ timeline: CoverageTimeline, at t: Interval) -> [String: Bool] {
        var state: [String: [LinkDirection: Bool]] = [:]
        for e in timeline.events where e.at <= t {
            if case let .coverage(up, _) = e.change {
                for d in e.direction == .both ? [LinkDirection.aToB, .bToA] : [e.direction] { state[e.link, default: [:]][d] = up }
            }
        }
        return state.mapValues { $0.values.allSatisfy { $0 } }
    }

    /// Runs the experiment in virtual time and returns its logs.
    public func run() throws(SimulationSetupError) -> SimulatedRunOutput {
        try validate()
        let vehicleEnds = try vehicleLinks()
        var serverEnds: [(link: PlannedLink, address: NodeAddress, interface: String)] = []
        for l in plan.links {
            for end in [l.a, l.b] where end.node == server {
                if let a = end.address { serverEnds.append((l, IPv4Address(a.address.value), end.name)) }
            }
        }
        guard let serverAddress = serverEnds.first?.address else { throw SimulationSetupError("server '\(server)' has no addressed link") }

        // Links in the order that numbers each host's interfaces as its addresses.
        var linkOrder = vehicleEnds.map(\.link.name)
        for l in plan.links where !linkOrder.contains(l.name) { linkOrder.append(l.name) }
        let serverOrder = linkOrder.compactMap { name in serverEnds.first { $0.link.name == name } }

        let messageInterval = Interval(nanoseconds: max(1, 1_000_000_000 / Int64(rate)))
        let end = Instant.zero + duration
        let senderApp: MPTCPApplication = traffic == .cbr
            ? .constantBitRate(messageBytes: size, interval: messageInterval, start: .zero, end: end)
            : .bulkSender(bytes: Int.max / 2, start: .zero)
        let flowApp: FlowEnd.App = traffic == .cbr ? .cbr : .bulk
        let offered: Bitrate? = traffic == .cbr ? Bitrate(bitsPerSecond: Int64(rate) * Int64(size) * 8) : nil
        let sinkMessageBytes = traffic == .cbr ? size : 0

        var vehicleHost = MPTCPHost(addresses: vehicleEnds.map(\.address), configuration: configuration, seed: seed &+ 101)
        var serverHost = MPTCPHost(addresses: serverOrder.map(\.address), configuration: configuration, seed: seed &+ 202)
        vehicleHost.bulkWriteAhead = bulkWriteAhead
        serverHost.bulkWriteAhead = bulkWriteAhead
        var vehicleFlows: [FlowEnd] = [], serverFlows: [FlowEnd] = []
        for (k, f) in flows.enumerated() {
            let localPort = UInt16(40_001 + k)
            if f.vehicleSends {
                vehicleHost.addConnection(localPort: localPort, remote: serverAddress, remotePort: f.port, application: senderApp)
                serverHost.listen(port: f.port, application: .sink)
            } else {
                vehicleHost.addConnection(localPort: localPort, remote: serverAddress, remotePort: f.port, application: .sink, opensAt: .zero)
                serverHost.listen(port: f.port, application: senderApp)
            }
            vehicleFlows.append(FlowEnd(conn: f.conn, servicePort: f.port, app: f.vehicleSends ? flowApp : .sink,
                                        messageBytes: f.vehicleSends ? size : sinkMessageBytes, offered: f.vehicleSends ? offered : nil))
            serverFlows.append(FlowEnd(conn: f.conn, servicePort: f.port, app: f.vehicleSends ? .sink : flowApp,
                                       messageBytes: f.vehicleSends ? sinkMessageBytes : size, offered: f.vehicleSends ? nil : offered))
        }
        var pathOfAddress: [UInt32: String] = [:]
        for v in vehicleEnds { pathOfAddress[v.address.rawValue] = v.link.name }

        var network = Network(seed: seed, logsEvents: false)
        var ids: [String: NodeID] = [:]
        do {
            for n in plan.nodes {
                if n.name == vehicle {
                    ids[n.name] = try network.addHost(n.name, ObservedHost(
                        host: vehicleHost, node: n.name, flows: vehicleFlows, interfaceNames: vehicleEnds.map(\.interface),
                        pathOfAddress: pathOfAddress))
                } else if n.name == server {
                    ids[n.name] = try network.addHost(n.name, ObservedHost(
                        host: serverHost, node: n.name, flows: serverFlows, interfaceNames: serverOrder.map(\.interface),
                        pathOfAddress: pathOfAddress))
                } else {
                    ids[n.name] = try network.addRouter(n.name)
                }
            }
            for name in linkOrder {
                let l = plan.link(named: name)!
                func address(_ end: PlannedInterface) -> NodeAddress? {
                    guard end.node == vehicle || end.node == server, let a = end.address else { return nil }
                    return IPv4Address(a.address.value)
                }
                guard let a = l.a.node.flatMap({ ids[$0] }), let b = l.b.node.flatMap({ ids[$0] }) else {
                    throw SimulationSetupError("link '\(name)' does not join two nodes of the topology")
                }
                try network.connect(a, address(l.a), b, address(l.b), name: name,
                                    parameters: l.link.aToB, reverse: l.link.bToA)
            }
            try network.apply(timeline)
        } catch let e as SimulationSetupError {
            throw e
        } catch {
            throw SimulationSetupError("cannot build the simulated network: \(error)")
        }
        network.run(until: end)

        // Logs: per flow end, as `<node>-<conn>.jsonl`; per emulated link, `link-<name>.jsonl`.
        var files: [SimulatedLog] = []
        var vehicleSide = network.host(ids[vehicle]!, as: ObservedHost.self)!
        var serverSide = network.host(ids[server]!, as: ObservedHost.self)!
        vehicleSide.finish(at: end)
        serverSide.finish(at: end)
        // A receiver's `sent_at` is the sender's schedule (real apps carry it in each message's header).
        func sendTimes(_ side: ObservedHost, _ conn: String) -> [Instant] {
            side.events[conn, default: []].compactMap { if case let .appSent(m) = $0.body { return m.sentAt } else { return nil } }
        }
        var vehicleEvents = vehicleSide.events, serverEvents = serverSide.events
        for f in flows where traffic == .cbr {
            let times = f.vehicleSends ? sendTimes(vehicleSide, f.conn) : sendTimes(serverSide, f.conn)
            func fill(_ events: inout [LogEvent]) {
                for i in events.indices {
                    if case var .appDelivered(m) = events[i].body, Int(m.sequence) < times.count {
                        m.sentAt = times[Int(m.sequence)]
                        events[i].body = .appDelivered(m)
                    }
                }
            }
            if f.vehicleSends { fill(&serverEvents[f.conn, default: []]) } else { fill(&vehicleEvents[f.conn, default: []]) }
        }
        let attributes = logAttributes
        func header(_ source: EventSource, role: String) -> LogEvent {
            var a = attributes
            a["role"] = role
            return LogEvent(time: .zero, source: source, body: .logStart(version: EventLogFormat.version, run: runID, stack: "swift", attributes: a))
        }
        for f in flows {
            files.append(SimulatedLog(name: "\(vehicle)-\(f.conn).jsonl",
                                      events: [header(.node(vehicle), role: f.vehicleSends ? "sender" : "receiver")] + vehicleEvents[f.conn, default: []]))
            files.append(SimulatedLog(name: "\(server)-\(f.conn).jsonl",
                                      events: [header(.node(server), role: f.vehicleSends ? "receiver" : "sender")] + serverEvents[f.conn, default: []]))
        }
        for l in plan.links where l.emulator != nil {
            var events = [header(.link(l.name), role: "emulator")]
            for (at, body) in CoverageEventLog.events(timeline: timeline, link: l.name, aToB: l.link.aToB, bToA: l.link.bToA)
            where at <= end {
                events.append(LogEvent(time: at, source: .link(l.name), body: body))
            }
            events.append(LogEvent(time: end, source: .link(l.name), body: .runEnd))
            files.append(SimulatedLog(name: "link-\(l.name).jsonl", events: events))
        }
        let v = vehicleSide.host, s = serverSide.host
        return SimulatedRunOutput(logs: files, virtualDuration: duration,
                                  segments: v.segmentsOut + s.segmentsOut,
                                  counters: (v.endpoints + s.endpoints).compactMap { $0.connection?.counters })
    }
}

/// One event log of a simulated run.
public struct SimulatedLog: Sendable {
    /// File name, e.g. `car-dl0.jsonl`.
    public var name: String
    public var events: [LogEvent]
    /// JSON lines, one per event, as `EventLogWriter` writes them.
    public var text: String {
        var s = ""
        for e in events { s += e.jsonLine; s += "\n" }
        return s
    }
}

/// What a simulated run produced.
public struct SimulatedRunOutput: Sendable {
    public var logs: [SimulatedLog]
    public var virtualDuration: Interval
    /// TCP segments the two hosts sent.
    public var segments: Int
    /// Each connection's MPTCP counters.
    public var counters: [MPTCPCounters]
}
