import Analysis
import Core
import MPTCP
import MPTCPSimulation
import Simulation
import TCP
import Wire

/// One flow's end on a simulated host: which connection label it is and
/// what its application logs (docs/LOGS.md).
struct FlowEnd: Sendable {
    enum App: String, Sendable { case bulk, cbr, sink }
    var conn: String
    /// The port the flow's listener is on: an endpoint is this flow's when its
    /// remote port (it opened) or local port (it accepted) is this.
    var servicePort: UInt16
    var app: App
    var messageBytes: Int
    /// CBR offered load (rate × size × 8), logged in `app.start`.
    var offered: Bitrate?
}

/// An `MPTCPHost` whose driver writes the node's event log: it looks at the
/// host after every call the network makes and turns what changed into
/// docs/LOGS.md events at the virtual instant of the call (application
/// messages and bytes, connection and subflow states, joins, subflow
/// progress, reinjections, carrier changes). Pure: it only records.
struct ObservedHost: SimulatedHost {
    var host: MPTCPHost
    let node: String
    let flows: [FlowEnd]
    /// Interface names (the topology's) and the link each address is on.
    let interfaceNames: [String]
    let pathOfAddress: [UInt32: String]
    /// Subflow counters are logged at most this often per connection, as the
    /// kernel apps poll TCP_INFO (docs/LOGS.md `subflow.progress`).
    let progressInterval: Interval

    /// Events per connection label; node-level events (interfaces) go to the first flow.
    private(set) var events: [String: [LogEvent]] = [:]
    private var watched: [Watch] = []

    /// What was already logged of one endpoint.
    struct Watch {
        var flow: Int
        var established = false
        var finished = false
        var closedReasons = 0
        var messagesWritten = 0
        var reads = 0
        var delivered: Int64 = 0
        var messagesDelivered = 0
        var subflows: [SubflowID: SubflowSeen] = [:]
        var nextProgress = Instant.zero
        var reinjectedBytes = 0
    }

    struct SubflowSeen {
        var established = false
        var closed = false
        var acknowledged = 0
        var received = 0
    }

    init(host: MPTCPHost, node: String, flows: [FlowEnd], interfaceNames: [String], pathOfAddress: [UInt32: String],
         progressInterval: Interval = .milliseconds(5)) {
        self.host = host; self.node = node; self.flows = flows
        self.interfaceNames = interfaceNames; self.pathOfAddress = pathOfAddress
        self.progressInterval = progressInterval
        nextDeadline = host.nextDeadline
        for f in flows {
            events[f.conn] = [LogEvent(time: .zero, source: .node(node), body: .appStart(
                conn: f.conn, app: f.app.rawValue, role: f.app == .sink ? .receiver : .sender, offered: f.offered))]
        }
    }

    // MARK: SimulatedHost

    /// The host's deadline, kept from its last change: it moves only when the
    /// host is called (the network asks for it several times per event, and
    /// the MPTCP connection computes it over all its subflows and timers).
    private(set) var nextDeadline = Instant.zero

    mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant) {
        host.receive(packet, on: interface, now: now)
        observe(now: now)
    }

    mutating func advance(now: Instant) {
        host.advance(now: now)
        observe(now: now)
    }

    mutating func carrierChanged(interface: Int, up: Bool, now: Instant) {
        if interface < host.carrier.count, host.carrier[interface] != up, let first = flows.first {
            let name = interface < interfaceNames.count ? interfaceNames[interface] : "if\(interface)"
            log(first.conn, now, .interface(name: name, change: up ? .carrierUp : .carrierDown,
                                            address: host.addresses[interface].description))
        }
        host.carrierChanged(interface: interface, up: up, now: now)
        observe(now: now)
    }

    mutating func takeOutgoing(now: Instant) -> [SimulatedPacket] { host.takeOutgoing(now: now) }

    // MARK: Observing

    private mutating func log(_ conn: String, _ t: Instant, _ body: EventBody) {
        events[conn, default: []].append(LogEvent(time: t, source: .node(node), body: body))
    }

    /// Which flow an endpoint belongs to, if any.
    private func flowIndex(of e: MPTCPEndpoint) -> Int? {
        flows.firstIndex { $0.servicePort == e.remotePort || $0.servicePort == e.localPort }
    }

    private func path(of tuple: TCPFourTuple) -> String? {
        for bytes in [tuple.localAddress, tuple.remoteAddress] {
            if let a = IPv4Address(bytes: bytes), let p = pathOfAddress[a.rawValue] { return p }
        }
        return nil
    }

    private static func endpointText(_ address: [UInt8], _ port: UInt16) -> String {
        (IPv4Address(bytes: address)?.description ?? "?") + ":\(port)"
    }

    mutating func observe(now: Instant) {
        defer { nextDeadline = host.nextDeadline }
        while watched.count < host.endpoints.count {
            let e = host.endpoints[watched.count]
            watched.append(Watch(flow: flowIndex(of: e) ?? -1))
        }
        for i in host.endpoints.indices where watched[i].flow >= 0 {
            observe(endpoint: i, now: now)
        }
    }

    private mutating func observe(endpoint i: Int, now: Instant) {
        let e = host.endpoints[i]
        var w = watched[i]
        defer { watched[i] = w }
        let flow = flows[w.flow]
        let conn = flow.conn
        guard let c = e.connection else { return }
        if !w.established && c.isEstablished {
            w.established = true
            log(conn, now, .connectionState(conn: conn, state: .established, mptcp: c.fallbackReason == nil, reason: nil))
        }
        // Messages written (CBR): `sent_at` is the message's scheduled time.
        if e.messageWrites.count > w.messagesWritten {
            for seq in w.messagesWritten..<e.messageWrites.count {
                log(conn, now, .appSent(AppMessage(conn: conn, sequence: UInt64(seq), size: flow.messageBytes,
                                                   sentAt: e.messageWrites[seq])))
            }
            w.messagesWritten = e.messageWrites.count
        }
        // Reads: whole messages (CBR) or bytes (bulk).
        if e.progress.count > w.reads {
            for (t, total) in e.progress[w.reads...] {
                switch flow.app {
                case .sink where flow.messageBytes > 0:
                    while (w.messagesDelivered + 1) * flow.messageBytes <= total {
                        let seq = w.messagesDelivered
                        w.messagesDelivered += 1
                        log(conn, t, .appDelivered(AppMessage(conn: conn, sequence: UInt64(seq), size: flow.messageBytes,
                                                              sentAt: .zero)))  // the sender's time, filled in by `SimulatedExperiment.run`
                    }
                default:
                    let bytes = Int64(total) - w.delivered
                    if bytes > 0 { log(conn, t, .bytesDelivered(conn: conn, bytes: bytes, total: Int64(total))) }
                    w.delivered = Int64(total)
                }
            }
            w.reads = e.progress.count
        }
        if !w.finished, let at = e.finishedAt {
            w.finished = true
            log(conn, at, .connectionState(conn: conn, state: .finished, mptcp: nil, reason: "DATA_FIN received"))
        }
        if e.closedReasons.count > w.closedReasons {
            for reason in e.closedReasons[w.closedReasons...] {
                if reason == "DATA_FIN exchanged" {
                    log(conn, now, .connectionState(conn: conn, state: .closed, mptcp: nil, reason: reason))
                } else if reason.hasPrefix("no subflow") {
                    log(conn, now, .connectionState(conn: conn, state: .failed, mptcp: nil, reason: reason))
                } else if reason == "MP_FASTCLOSE" {
                    log(conn, now, .connectionState(conn: conn, state: .reset, mptcp: nil, reason: reason))
                }
            }
            w.closedReasons = e.closedReasons.count
        }
        // Subflows: every call, so that a state change is logged at its instant.
        let pollDue = now >= w.nextProgress
        for s in c.subflowStatuses {
            var seen = w.subflows[s.id] ?? {
                if s.isJoinInitiator {
                    log(conn, now, .joinAttempt(conn: conn, subflow: s.id.rawValue, path: path(of: s.tuple),
                                                local: Self.endpointText(s.tuple.localAddress, s.tuple.localPort),
                                                remote: Self.endpointText(s.tuple.remoteAddress, s.tuple.remotePort)))
                }
                return SubflowSeen()
            }()
            if !seen.established && s.isEstablished && !s.isClosed {
                seen.established = true
                log(conn, now, .subflowState(SubflowChange(
                    conn: conn, subflow: s.id.rawValue, state: .established, path: path(of: s.tuple),
                    local: Self.endpointText(s.tuple.localAddress, s.tuple.localPort),
                    remote: Self.endpointText(s.tuple.remoteAddress, s.tuple.remotePort))))
            }
            if !seen.closed && s.isClosed {
                seen.closed = true
                log(conn, now, .subflowState(SubflowChange(
                    conn: conn, subflow: s.id.rawValue, state: seen.established ? .closed : .failed, path: path(of: s.tuple),
                    local: Self.endpointText(s.tuple.localAddress, s.tuple.localPort),
                    remote: Self.endpointText(s.tuple.remoteAddress, s.tuple.remotePort),
                    reason: seen.established ? "closed" : "join did not complete")))
            }
            if pollDue && (s.bytesAcknowledged != seen.acknowledged || s.bytesReceived != seen.received) {
                seen.acknowledged = s.bytesAcknowledged
                seen.received = s.bytesReceived
                log(conn, now, .subflowProgress(conn: conn, subflow: s.id.rawValue, path: path(of: s.tuple),
                                                bytesAcked: Int64(s.bytesAcknowledged), bytesReceived: Int64(s.bytesReceived)))
            }
            w.subflows[s.id] = seen
        }
        if pollDue {
            w.nextProgress = now + progressInterval
            let reinjected = c.counters.reinjectedBytes
            if reinjected > w.reinjectedBytes {
                log(conn, now, .reinjection(conn: conn, bytes: Int64(reinjected - w.reinjectedBytes), from: nil, to: nil))
                w.reinjectedBytes = reinjected
            }
        }
    }

    /// Closes the logs at the run's end: each application stops.
    mutating func finish(at end: Instant) {
        observe(now: end)
        for f in flows { log(f.conn, end, .appStop(conn: f.conn, reason: "run ended")) }
    }
}
