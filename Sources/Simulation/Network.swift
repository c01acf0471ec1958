import Core
import LinkModel
import Wire

public struct NodeID: Hashable, Comparable, Sendable {
    public let index: Int
    public static func < (a: NodeID, b: NodeID) -> Bool { a.index < b.index }
}

public struct LinkID: Hashable, Comparable, Sendable {
    public let index: Int
    public static func < (a: LinkID, b: LinkID) -> Bool { a.index < b.index }
}

public enum SimulationError: Error, Hashable, Sendable, CustomStringConvertible {
    case duplicateName(String)
    case unknownLink(String)
    case addressInUse(NodeAddress)
    case notAHost(String)

    public var description: String {
        switch self {
        case .duplicateName(let n): return "a node or link named '\(n)' already exists"
        case .unknownLink(let n): return "the timeline names link '\(n)', which the network does not have"
        case .addressInUse(let a): return "address \(a) is already on another interface"
        case .notAHost(let n): return "'\(n)' is not a host of that type"
        }
    }
}

/// A packet on its way, numbered for the event log (a duplicate keeps its number).
struct Transit: LinkPacket {
    var id: UInt64
    var packet: SimulatedPacket
    let byteCount: Int
    init(id: UInt64, packet: SimulatedPacket) { self.id = id; self.packet = packet; byteCount = packet.byteCount }
}

/// What one direction of a link has carried and dropped.
public struct LinkCounters: Hashable, Sendable {
    public var delivered = 0
    public var bytesDelivered = 0
    public var dropped: [DropReason: Int] = [:]
    public var totalDropped: Int { dropped.values.reduce(0, +) }
}

/// A deterministic discrete-event IP network in virtual time.
///
/// Hosts (with one interface per link they sit on, each with an address) and
/// routers are joined by links; each direction of a link is a `LinkPipeline`
/// (delay, jitter, loss, rate and queue, reordering, duplication, coverage),
/// changed over time by outage windows and coverage timelines. The clock
/// jumps from one event to the next. Everything random comes from
/// `SeededRandom` streams named after the links, so the same seed and the
/// same calls give the same run, and the same event log byte for byte.
///
/// ```
/// var net = Network(seed: 1)
/// let a = try net.addHost("a", PacketSource(...))
/// let b = try net.addHost("b", PacketSink())
/// try net.connect(a, NodeAddress(198, 18, 0, 1), b, NodeAddress(198, 18, 0, 2),
///                 parameters: LinkParameters(delay: .milliseconds(10), rate: .mbit(10)))
/// net.run(until: .zero + .seconds(5))
/// ```
public struct Network {
    public let seed: UInt64
    public private(set) var now = Instant.zero
    public private(set) var eventLog: EventLog
    /// Every packet a host sent, as it left the host (when `capturesPackets`).
    public private(set) var captured: [CapturedPacket] = []
    public var capturesPackets: Bool

    enum Side: Int { case a = 0, b = 1 }

    struct Interface {
        var address: NodeAddress?
        var link: Int
        var side: Side
        var carrier = true
    }

    struct Node {
        var name: String
        var host: (any SimulatedHost)?
        var interfaces: [Interface] = []
        /// Computed routes: destination address -> interface.
        var routes: [NodeAddress: Int] = [:]
        /// Routes added by hand, longest prefix first: (prefix, length, interface).
        var staticRoutes: [(NodeAddress, Int, Int)] = []
        var isHost: Bool { host != nil || isHostSlot }
        var isHostSlot = false
    }

    struct Direction {
        var pipeline: LinkPipeline<Transit>
        var schedules: [TimelineSchedule] = []
        var counters = LinkCounters()
        var nextStepTime: Instant { schedules.reduce(Instant.distantFuture) { min($0, $1.nextTime) } }
    }

    struct Link {
        var name: String
        var ends: [(node: Int, interface: Int)]
        var directions: [Direction]   // [a->b, b->a]
    }

    var nodes: [Node] = []
    var links: [Link] = []
    var names: [String: Int] = [:]
    var linkNames: [String: Int] = [:]
    var routesAreStale = true
    var nextPacketID: UInt64 = 1

    public init(seed: UInt64, logsEvents: Bool = true, capturesPackets: Bool = false) {
        self.seed = seed
        self.eventLog = EventLog(isEnabled: logsEvents)
        self.capturesPackets = capturesPackets
    }

    // MARK: Building

    /// Adds a host driven by `host`.
    @discardableResult
    public mutating func addHost(_ name: String, _ host: some SimulatedHost) throws(SimulationError) -> NodeID {
        guard names[name] == nil, linkNames[name] == nil else { throw .duplicateName(name) }
        names[name] = nodes.count
        nodes.append(Node(name: name, host: host))
        routesAreStale = true
        return NodeID(index: nodes.count - 1)
    }

    /// Adds a router: it forwards every packet it receives by its destination.
    @discardableResult
    public mutating func addRouter(_ name: String) throws(SimulationError) -> NodeID {
        guard names[name] == nil, linkNames[name] == nil else { throw .duplicateName(name) }
        names[name] = nodes.count
        nodes.append(Node(name: name, host: nil))
        routesAreStale = true
        return NodeID(index: nodes.count - 1)
    }

    /// Joins `a` and `b` with a new link, giving each a new interface (with
    /// the address, if any). The link's directions are `a-to-b` and `b-to-a`
    /// in timelines; `name` defaults to "<a>-<b>".
    @discardableResult
    public mutating func connect(_ a: NodeID, _ aAddress: NodeAddress?, _ b: NodeID, _ bAddress: NodeAddress?,
                                 name: String? = nil,
                                 parameters: LinkParameters = LinkParameters(), options: PipelineOptions = PipelineOptions(),
                                 reverse: LinkParameters? = nil, reverseOptions: PipelineOptions? = nil) throws(SimulationError) -> LinkID {
        let linkName = name ?? "\(nodes[a.index].name)-\(nodes[b.index].name)"
        guard linkNames[linkName] == nil, names[linkName] == nil else { throw .duplicateName(linkName) }
        for address in [aAddress, bAddress].compactMap({ $0 }) where interface(owning: address) != nil {
            throw .addressInUse(address)
        }
        if let x = aAddress, x == bAddress { throw .addressInUse(x) }
        let index = links.count
        let forward = LinkPipeline<Transit>(parameters: parameters, options: options, seed: seed,
                                            name: linkName + "/a-to-b", origin: now)
        let backward = LinkPipeline<Transit>(parameters: reverse ?? parameters, options: reverseOptions ?? options,
                                             seed: seed, name: linkName + "/b-to-a", origin: now)
        nodes[a.index].interfaces.append(Interface(address: aAddress, link: index, side: .a))
        nodes[b.index].interfaces.append(Interface(address: bAddress, link: index, side: .b))
        links.append(Link(name: linkName,
                          ends: [(a.index, nodes[a.index].interfaces.count - 1), (b.index, nodes[b.index].interfaces.count - 1)],
                          directions: [Direction(pipeline: forward), Direction(pipeline: backward)]))
        linkNames[linkName] = index
        routesAreStale = true
        return LinkID(index: index)
    }

    /// A route added by hand, preferred over computed ones: packets for
    /// `prefix/length` leave `node` by its interface number `interface`.
    public mutating func addRoute(at node: NodeID, to prefix: NodeAddress, length: Int, interface: Int) {
        nodes[node.index].staticRoutes.append((prefix, length, interface))
        nodes[node.index].staticRoutes.sort { $0.1 > $1.1 }
    }

    // MARK: Changes over time

    /// The link is dead from `from` to `to` (offsets from time zero) in the
    /// given direction: nothing enters or leaves it.
    public mutating func addOutage(_ link: LinkID, from: Interval, to: Interval,
                                   direction: LinkDirection = .both, loss: CoverageLoss = .silent) {
        let name = links[link.index].name
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: from, link: name, direction: direction, change: .coverage(false, loss: loss)),
            TimelineEvent(at: to, link: name, direction: direction, change: .coverage(true, loss: loss)),
        ], duration: to)
        apply(timeline, link: link.index, origin: .zero)
    }

    /// Replays a coverage timeline on the links it names, with its time zero at `origin`.
    public mutating func apply(_ timeline: CoverageTimeline, origin: Instant = .zero,
                               rampStep: Interval = .milliseconds(10)) throws(SimulationError) {
        for name in timeline.links {
            guard let index = linkNames[name] else { throw .unknownLink(name) }
            apply(timeline, link: index, origin: origin, rampStep: rampStep)
        }
    }

    mutating func apply(_ timeline: CoverageTimeline, link index: Int, origin: Instant, rampStep: Interval = .milliseconds(10)) {
        let name = links[index].name
        for (d, direction) in [LinkDirection.aToB, .bToA].enumerated() {
            let schedule = TimelineSchedule(timeline: timeline, link: name, direction: direction,
                                            origin: origin, rampStep: rampStep)
            if !schedule.isFinished { links[index].directions[d].schedules.append(schedule) }
        }
    }

    // MARK: Looking in

    public func name(of node: NodeID) -> String { nodes[node.index].name }
    public func name(of link: LinkID) -> String { links[link.index].name }
    public func node(named name: String) -> NodeID? { names[name].map(NodeID.init(index:)) }
    public func link(named name: String) -> LinkID? { linkNames[name].map(LinkID.init(index:)) }

    /// Counters of one direction of a link.
    public func counters(_ link: LinkID, _ direction: LinkDirection) -> LinkCounters {
        links[link.index].directions[direction == .bToA ? 1 : 0].counters
    }

    /// The parameters a link direction has now.
    public func parameters(_ link: LinkID, _ direction: LinkDirection) -> LinkParameters {
        links[link.index].directions[direction == .bToA ? 1 : 0].pipeline.parameters
    }

    /// A copy of the host as it is now.
    public func host<H: SimulatedHost>(_ id: NodeID, as type: H.Type = H.self) -> H? {
        nodes[id.index].host as? H
    }

    /// Lets a caller act on a host (an application writing data, a test
    /// inspecting state); whatever it then wants to send leaves at `now`.
    public mutating func withHost<H: SimulatedHost, R>(_ id: NodeID, as type: H.Type = H.self,
                                                        _ body: (inout H) throws -> R) throws -> R {
        guard var h = nodes[id.index].host as? H else { throw SimulationError.notAHost(nodes[id.index].name) }
        nodes[id.index].host = nil
        nodes[id.index].isHostSlot = true
        let result: R
        do { result = try body(&h) } catch { nodes[id.index].host = h; throw error }
        nodes[id.index].host = h
        collectOutgoing(from: id.index)
        return result
    }

    // MARK: Running

    /// The time of the next event; `distantFuture` when nothing is left to do.
    public var nextEventTime: Instant {
        var t = Instant.distantFuture
        for l in links {
            for d in l.directions { t = min(t, min(d.pipeline.nextEventTime, d.nextStepTime)) }
        }
        for n in nodes { if let h = n.host { t = min(t, h.nextDeadline) } }
        return t
    }

    /// Runs every event up to and including `end`; the clock then reads `end`.
    public mutating func run(until end: Instant) {
        while step(notAfter: end) {}
        if end > now && end != .distantFuture { now = end }
    }

    public mutating func run(for duration: Interval) { run(until: now + duration) }

    /// Runs until no event is left or `limit` is reached; returns whether the network went quiet.
    @discardableResult
    public mutating func runUntilIdle(limit: Instant = .distantFuture) -> Bool {
        while step(notAfter: limit) {}
        return nextEventTime == .distantFuture
    }

    /// Processes everything due at the next event time, if it is not after `limit`.
    @discardableResult
    public mutating func step(notAfter limit: Instant = .distantFuture) -> Bool {
        if routesAreStale { computeRoutes() }
        let t = nextEventTime
        guard t <= limit, t != .distantFuture else { return false }
        precondition(t >= now, "an event in the past: \(t) < \(now)")
        now = t
        // At one instant: timeline steps, then packets leaving links (which may
        // enter zero-delay links and leave at once), then host timers; repeated
        // until nothing else is due now.
        var busy = true
        while busy {
            busy = false
            for l in links.indices {
                for d in 0..<2 where links[l].directions[d].nextStepTime <= now {
                    applySteps(link: l, direction: d)
                    busy = true
                }
            }
            for l in links.indices {
                for d in 0..<2 where links[l].directions[d].pipeline.nextEventTime <= now {
                    busy = true
                    while let p = links[l].directions[d].pipeline.dequeue(now: now) {
                        links[l].directions[d].counters.delivered += 1
                        links[l].directions[d].counters.bytesDelivered += p.byteCount
                        let end = links[l].ends[1 - d]
                        arrive(p, at: end.node, interface: end.interface)
                    }
                    logDrops(link: l, direction: d)
                }
            }
            for n in nodes.indices where (nodes[n].host?.nextDeadline ?? .distantFuture) <= now {
                busy = true
                nodes[n].host!.advance(now: now)
                collectOutgoing(from: n)
            }
        }
        return true
    }

    // MARK: Internals

    mutating func applySteps(link l: Int, direction d: Int) {
        let before = links[l].directions[d].pipeline.carrier
        for s in links[l].directions[d].schedules.indices {
            while links[l].directions[d].schedules[s].nextTime <= now {
                let current = links[l].directions[d].pipeline.parameters
                guard let (at, step) = links[l].directions[d].schedules[s].popNext(current: current) else { break }
                switch step {
                case .set(let p):
                    links[l].directions[d].pipeline.apply(p, now: at)
                    eventLog.record(at, "step \(links[l].name) \(Self.directionName(d)) set \(Self.describe(p))")
                case .coverage(let up, let loss):
                    links[l].directions[d].pipeline.setCoverage(up, loss: loss, now: at)
                    eventLog.record(at, "step \(links[l].name) \(Self.directionName(d)) coverage \(up ? "up" : "down") \(loss.rawValue)")
                }
            }
        }
        links[l].directions[d].schedules.removeAll { $0.isFinished }
        logDrops(link: l, direction: d)
        if links[l].directions[d].pipeline.carrier != before { updateCarrier(link: l) }
    }

    /// An interface has carrier when both directions of its link have it.
    mutating func updateCarrier(link l: Int) {
        let up = links[l].directions[0].pipeline.carrier && links[l].directions[1].pipeline.carrier
        for end in links[l].ends where nodes[end.node].interfaces[end.interface].carrier != up {
            nodes[end.node].interfaces[end.interface].carrier = up
            eventLog.record(now, "carrier \(nodes[end.node].name) if\(end.interface) \(up ? "up" : "down")")
            if nodes[end.node].host != nil {
                nodes[end.node].host!.carrierChanged(interface: end.interface, up: up, now: now)
                collectOutgoing(from: end.node)
            }
        }
    }

    mutating func logDrops(link l: Int, direction d: Int) {
        let drops = links[l].directions[d].pipeline.drainDrops()
        for drop in drops {
            links[l].directions[d].counters.dropped[drop.reason, default: 0] += 1
            eventLog.record(drop.at, "drop \(links[l].name) \(Self.directionName(d)) #\(drop.packet.id) \(drop.reason.rawValue)")
        }
    }

    mutating func collectOutgoing(from n: Int) {
        guard nodes[n].host != nil else { return }
        let out = nodes[n].host!.takeOutgoing(now: now)
        for packet in out { send(packet, from: n) }
    }

    mutating func send(_ packet: SimulatedPacket, from n: Int) {
        let id = nextPacketID
        nextPacketID += 1
        guard let i = nodes[n].interfaces.firstIndex(where: { $0.address == packet.source })
                ?? route(at: n, to: packet.destination) else {
            eventLog.record(now, "drop \(nodes[n].name) #\(id) no-route \(packet)")
            return
        }
        eventLog.record(now, "send \(nodes[n].name) if\(i) #\(id) \(packet)")
        if capturesPackets {
            captured.append(CapturedPacket(at: now, node: nodes[n].name, interface: i, id: id, packet: packet))
        }
        transmit(Transit(id: id, packet: packet), from: n, interface: i)
    }

    mutating func transmit(_ t: Transit, from n: Int, interface i: Int) {
        let iface = nodes[n].interfaces[i]
        let d = iface.side == .a ? 0 : 1
        links[iface.link].directions[d].pipeline.enqueue(t, now: now)
        logDrops(link: iface.link, direction: d)
    }

    mutating func arrive(_ t: Transit, at n: Int, interface i: Int) {
        if nodes[n].host != nil {
            guard nodes[n].interfaces.contains(where: { $0.address == t.packet.destination }) else {
                eventLog.record(now, "drop \(nodes[n].name) if\(i) #\(t.id) not-for-host")
                return
            }
            eventLog.record(now, "recv \(nodes[n].name) if\(i) #\(t.id)")
            nodes[n].host!.receive(t.packet, on: i, now: now)
            collectOutgoing(from: n)
            return
        }
        if nodes[n].isHostSlot {
            // The host is lent out through `withHost`; nothing arrives meanwhile.
            eventLog.record(now, "drop \(nodes[n].name) if\(i) #\(t.id) host-busy")
            return
        }
        var forwarded = t
        guard forwarded.packet.timeToLive > 1 else {
            eventLog.record(now, "drop \(nodes[n].name) #\(t.id) ttl-expired")
            return
        }
        forwarded.packet.timeToLive -= 1
        guard let out = route(at: n, to: t.packet.destination) else {
            eventLog.record(now, "drop \(nodes[n].name) #\(t.id) no-route")
            return
        }
        eventLog.record(now, "forward \(nodes[n].name) if\(i)>if\(out) #\(t.id)")
        transmit(forwarded, from: n, interface: out)
    }

    func route(at n: Int, to destination: NodeAddress) -> Int? {
        for (prefix, length, iface) in nodes[n].staticRoutes where destination.isIn(prefix, length: length) {
            return iface
        }
        return nodes[n].routes[destination]
    }

    func interface(owning address: NodeAddress) -> (node: Int, interface: Int)? {
        for (n, node) in nodes.enumerated() {
            if let i = node.interfaces.firstIndex(where: { $0.address == address }) { return (n, i) }
        }
        return nil
    }

    /// Shortest-path host routes: for every address, every node learns the
    /// interface toward it. The path to an address always ends on the link of
    /// the interface that owns it, so each address of a multi-homed host is
    /// reached through its own link. Hosts do not forward; ties go to the
    /// lower-numbered link.
    mutating func computeRoutes() {
        for n in nodes.indices { nodes[n].routes = [:] }
        for (owner, node) in nodes.enumerated() {
            for ownerInterface in node.interfaces {
                guard let address = ownerInterface.address else { continue }
                let link = links[ownerInterface.link]
                let ownerSide = ownerInterface.side.rawValue
                let first = link.ends[1 - ownerSide]
                guard first.node != owner else { continue }
                var visited = Set([owner])
                var queue = [first.node]
                visited.insert(first.node)
                nodes[first.node].routes[address] = first.interface
                var head = 0
                while head < queue.count {
                    let x = queue[head]; head += 1
                    // Only routers pass packets on.
                    if nodes[x].host != nil || nodes[x].isHostSlot { continue }
                    for (i, iface) in nodes[x].interfaces.enumerated() {
                        let l = links[iface.link]
                        let other = l.ends[1 - iface.side.rawValue]
                        guard !visited.contains(other.node) else { continue }
                        _ = i
                        visited.insert(other.node)
                        nodes[other.node].routes[address] = other.interface
                        queue.append(other.node)
                    }
                }
            }
        }
        routesAreStale = false
    }

    static func directionName(_ d: Int) -> String { d == 0 ? "a-to-b" : "b-to-a" }

    static func describe(_ p: LinkParameters) -> String {
        var parts: [String] = []
        if let v = p.delay { parts.append("delay=\(v)") }
        if let v = p.jitter { parts.append("jitter=\(v)") }
        if let v = p.rate { parts.append("rate=\(v)") }
        if let v = p.loss { parts.append("loss=\(v)") }
        if let v = p.queuePackets { parts.append("queue=\(v)p") }
        if let v = p.queueBytes { parts.append("queue=\(v)B") }
        return parts.joined(separator: " ")
    }
}

/// A packet as a host sent it, for a capture file.
public struct CapturedPacket: Hashable, Sendable {
    public var at: Instant
    public var node: String
    public var interface: Int
    /// The number the event log gives the packet (`#id`).
    public var id: UInt64
    public var packet: SimulatedPacket
}

extension Network {
    /// A classic pcap file (raw IP link type, nanosecond timestamps from the
    /// virtual clock) of every packet a host sent, in the order they were
    /// sent, for Wireshark or tshark. Needs `capturesPackets`.
    public func pcap() -> [UInt8] {
        var writer = PcapWriter(header: PcapHeader(linkType: .raw))
        for c in captured {
            // The IP identification carries the log's packet number, so a capture
            // and the event log can be matched.
            writer.append(PcapRecord(timestamp: UInt64(max(0, c.at.nanoseconds)),
                                     data: c.packet.ipv4Bytes(identification: UInt16(truncatingIfNeeded: c.id))))
        }
        return writer.bytes
    }
}

/// The simulator's event log: one line per event, `<seconds> <event> ...`,
/// with the time to the nanosecond, so two runs compare byte for byte.
public struct EventLog: Sendable {
    public let isEnabled: Bool
    public private(set) var lines: [String] = []

    public init(isEnabled: Bool) { self.isEnabled = isEnabled }

    mutating func record(_ at: Instant, _ text: @autoclosure () -> String) {
        guard isEnabled else { return }
        lines.append(Self.timestamp(at) + " " + text())
    }

    /// The whole log, one event per line.
    public var text: String { lines.isEmpty ? "" : lines.joined(separator: "\n") + "\n" }

    /// `12.000345678`: seconds with nine decimals.
    public static func timestamp(_ t: Instant) -> String {
        let ns = t.nanoseconds
        let sign = ns < 0 ? "-" : ""
        let m = ns.magnitude
        var frac = String(m % 1_000_000_000)
        frac = String(repeating: "0", count: 9 - frac.count) + frac
        return "\(sign)\(m / 1_000_000_000).\(frac)"
    }
}
