import Core

/// The event log every node and link of a run writes: one JSON object per
/// line (docs/LOGS.md). This file is the one definition that writers (the
/// stack, the traffic applications, the emulator, the orchestrator) and the
/// reader (analysis) share.
public enum EventLogFormat {
    /// The `version` written in every `log.start` header. A reader accepts any
    /// log whose version it knows; additions that old readers can ignore
    /// (new kinds, new optional fields) do not change it.
    public static let version = 1
}

/// Who wrote an event: a node (its name in the topology) or a link (its name
/// in the topology or timeline; the emulator writes these).
public enum EventSource: Hashable, Sendable, CustomStringConvertible {
    case node(String)
    case link(String)

    public var name: String {
        switch self { case .node(let n), .link(let n): return n }
    }
    public var description: String {
        switch self { case .node(let n): return "node \(n)"; case .link(let n): return "link \(n)" }
    }
}

/// The stacks Wayside compares.
public enum StackKind: String, Hashable, Sendable, CaseIterable {
    case swift
    case kernelMPTCP = "kernel-mptcp"
    case kernelTCP = "kernel-tcp"
}

/// Which end of a flow an application is.
public enum AppRole: String, Hashable, Sendable, CaseIterable {
    case sender
    case receiver
    /// Both directions through one application (`rr`, `echo`).
    case both
}

public enum ConnectionState: String, Hashable, Sendable, CaseIterable {
    case connecting
    case established
    /// The peer's end of the byte stream arrived (FIN or DATA_FIN) and all data before it was delivered.
    case finished
    /// Closed in an orderly way by this side or both.
    case closed
    /// Gave up (timeout, too many retransmissions, no path).
    case failed
    /// Reset by the peer or by the stack (RST, MP_FASTCLOSE).
    case reset
}

public enum SubflowState: String, Hashable, Sendable, CaseIterable {
    /// The handshake (SYN with MP_CAPABLE or MP_JOIN) completed: data may flow.
    case established
    /// Closed in an orderly way (FIN) or removed by the path manager.
    case closed
    /// Died: RST, timeout, join rejected.
    case failed
}

public enum InterfaceChange: String, Hashable, Sendable, CaseIterable {
    case linkUp = "link-up"
    case linkDown = "link-down"
    case carrierUp = "carrier-up"
    case carrierDown = "carrier-down"
    case addressAdded = "address-added"
    case addressRemoved = "address-removed"
}

/// An application message (CBR and rr requests): what its header carries.
public struct AppMessage: Hashable, Sendable {
    /// Connection label shared by both ends (the orchestrator names flows).
    public var conn: String
    public var sequence: UInt64
    /// Bytes of the whole message, header included.
    public var size: Int
    /// When the sender handed it to the socket (same clock as `t`).
    public var sentAt: Instant

    public init(conn: String, sequence: UInt64, size: Int, sentAt: Instant) {
        self.conn = conn; self.sequence = sequence; self.size = size; self.sentAt = sentAt
    }
}

/// One subflow's change of state.
public struct SubflowChange: Hashable, Sendable {
    public var conn: String
    /// The stack's id for the subflow within the connection (0 = the initial subflow).
    public var subflow: Int
    public var state: SubflowState
    /// The topology link the subflow uses, when the writer knows it; this is
    /// what ties subflows to coverage events.
    public var path: String?
    /// "address:port" of each end.
    public var local: String?
    public var remote: String?
    public var reason: String?

    public init(conn: String, subflow: Int, state: SubflowState, path: String? = nil,
                local: String? = nil, remote: String? = nil, reason: String? = nil) {
        self.conn = conn; self.subflow = subflow; self.state = state; self.path = path
        self.local = local; self.remote = remote; self.reason = reason
    }
}

/// What happened. Each case is one `kind` of docs/LOGS.md.
public enum EventBody: Hashable, Sendable {
    /// `log.start`: the first line of every file.
    case logStart(version: Int, run: String, stack: String?, attributes: [String: String])
    /// `run.end`: the orchestrator's mark for the end of the run.
    case runEnd
    /// `app.start`: an application began; `offered` is its sending rate when it has one (cbr).
    case appStart(conn: String, app: String, role: AppRole, offered: Bitrate?)
    /// `app.stop`: an application stopped sending or receiving.
    case appStop(conn: String, reason: String?)
    /// `app.sent`: a message was written to the socket.
    case appSent(AppMessage)
    /// `app.delivered`: a whole message was read, in order.
    case appDelivered(AppMessage)
    /// `bytes.delivered`: `bytes` new in-order bytes were read; `total` is the running sum.
    case bytesDelivered(conn: String, bytes: Int64, total: Int64)
    /// `conn.state`
    case connectionState(conn: String, state: ConnectionState, mptcp: Bool?, reason: String?)
    /// `subflow.state`
    case subflowState(SubflowChange)
    /// `subflow.progress`: a subflow's byte counters advanced (TCP_INFO `bytes_acked` as
    /// sender, `bytes_received` as receiver); written at most once per poll.
    case subflowProgress(conn: String, subflow: Int, path: String?, bytesAcked: Int64?, bytesReceived: Int64?)
    /// `subflow.join`: a join (SYN with MP_JOIN) was attempted on a path.
    case joinAttempt(conn: String, subflow: Int?, path: String?, local: String?, remote: String?)
    /// `interface`: link, carrier or address events the node saw.
    case interface(name: String, change: InterfaceChange, address: String?)
    /// `reinject`: bytes sent again on another subflow after being sent on one.
    case reinjection(conn: String, bytes: Int64, from: Int?, to: Int?)
    /// `coverage`: the emulator applied a coverage change to a link.
    case coverage(covered: Bool, loss: CoverageLoss, rate: Bitrate?)
    /// `link.params`: the emulator set a link's parameters (only the rate matters to analysis).
    case linkParameters(rate: Bitrate?, delay: Interval?, loss: Probability?)
    /// A kind this version does not know: kept, so that newer writers do not break older readers.
    case unknown(kind: String, fields: [String: JSONValue])

    public var kind: String {
        switch self {
        case .logStart: return "log.start"
        case .runEnd: return "run.end"
        case .appStart: return "app.start"
        case .appStop: return "app.stop"
        case .appSent: return "app.sent"
        case .appDelivered: return "app.delivered"
        case .bytesDelivered: return "bytes.delivered"
        case .connectionState: return "conn.state"
        case .subflowState: return "subflow.state"
        case .subflowProgress: return "subflow.progress"
        case .joinAttempt: return "subflow.join"
        case .interface: return "interface"
        case .reinjection: return "reinject"
        case .coverage: return "coverage"
        case .linkParameters: return "link.params"
        case .unknown(let k, _): return k
        }
    }
}

public struct LogEvent: Hashable, Sendable {
    /// Monotonic time since the run's start.
    public var time: Instant
    public var source: EventSource
    public var body: EventBody

    public init(time: Instant, source: EventSource, body: EventBody) {
        self.time = time; self.source = source; self.body = body
    }
}

// MARK: - Writing

extension LogEvent {
    /// The event as one JSON line (no trailing newline). Keys come in a fixed
    /// order — `t`, `node`/`link`, `kind`, then the kind's fields — so logs diff well.
    public var jsonLine: String { jsonObject.serialized }

    public var jsonObject: JSONValue {
        var f: [(String, JSONValue)] = [("t", .int(time.nanoseconds))]
        switch source {
        case .node(let n): f.append(("node", .string(n)))
        case .link(let n): f.append(("link", .string(n)))
        }
        f.append(("kind", .string(body.kind)))
        func put(_ k: String, _ v: String?) { if let v { f.append((k, .string(v))) } }
        func put(_ k: String, _ v: Int64?) { if let v { f.append((k, .int(v))) } }
        func put(_ k: String, _ v: Bool?) { if let v { f.append((k, .bool(v))) } }
        switch body {
        case let .logStart(version, run, stack, attributes):
            put("version", Int64(version)); put("run", run); put("stack", stack)
            for k in attributes.keys.sorted() where !LogEvent.reservedKeys.contains(k) { put(k, attributes[k]) }
        case .runEnd: break
        case let .appStart(conn, app, role, offered):
            put("conn", conn); put("app", app); put("role", role.rawValue); put("offered_bps", offered?.bitsPerSecond)
        case let .appStop(conn, reason):
            put("conn", conn); put("reason", reason)
        case .appSent(let m), .appDelivered(let m):
            put("conn", m.conn)
            // Sequence numbers above Int64.max cannot be written as JSON integers we read back; they wrap at 2^63.
            put("seq", Int64(truncatingIfNeeded: m.sequence & UInt64(Int64.max)))
            put("size", Int64(m.size)); put("sent_at", m.sentAt.nanoseconds)
        case let .bytesDelivered(conn, bytes, total):
            put("conn", conn); put("bytes", bytes); put("total", total)
        case let .connectionState(conn, state, mptcp, reason):
            put("conn", conn); put("state", state.rawValue); put("mptcp", mptcp); put("reason", reason)
        case .subflowState(let s):
            put("conn", s.conn); put("subflow", Int64(s.subflow)); put("state", s.state.rawValue)
            put("path", s.path); put("local", s.local); put("remote", s.remote); put("reason", s.reason)
        case let .subflowProgress(conn, subflow, path, acked, received):
            put("conn", conn); put("subflow", Int64(subflow)); put("path", path)
            put("bytes_acked", acked); put("bytes_received", received)
        case let .joinAttempt(conn, subflow, path, local, remote):
            put("conn", conn); put("subflow", subflow.map(Int64.init)); put("path", path)
            put("local", local); put("remote", remote)
        case let .interface(name, change, address):
            put("iface", name); put("change", change.rawValue); put("address", address)
        case let .reinjection(conn, bytes, from, to):
            put("conn", conn); put("bytes", bytes); put("from", from.map(Int64.init)); put("to", to.map(Int64.init))
        case let .coverage(covered, loss, rate):
            put("covered", covered); put("loss", loss.rawValue); put("rate_bps", rate?.bitsPerSecond)
        case let .linkParameters(rate, delay, loss):
            put("rate_bps", rate?.bitsPerSecond); put("delay_ns", delay?.nanoseconds)
            if let loss { f.append(("loss", .double(loss.value))) }
        case .unknown(_, let fields):
            for k in fields.keys.sorted() where !LogEvent.reservedKeys.contains(k) { f.append((k, fields[k]!)) }
        }
        return .object(f)
    }

    static let reservedKeys: Set<String> = ["t", "node", "link", "kind", "version", "run", "stack"]
}

// MARK: - Reading

/// Why one line is not an event; `message` says which field and what was expected.
public struct EventSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public var column: Int?
    public var message: String
    public init(column: Int? = nil, message: String) { self.column = column; self.message = message }
    public var description: String { column.map { "column \($0): \(message)" } ?? message }
}

extension LogEvent {
    /// Reads one line. Unknown kinds become `.unknown`; a known kind with a
    /// missing or mistyped field is an error.
    public static func parse(line: String) throws(EventSyntaxError) -> LogEvent {
        try parse(utf8: Array(line.utf8))
    }

    /// Reads one line given as UTF-8 bytes (without its newline).
    public static func parse(utf8 line: [UInt8]) throws(EventSyntaxError) -> LogEvent {
        let value: JSONValue
        do { value = try JSONValue.parse(utf8: line) } catch { throw EventSyntaxError(column: error.column, message: error.message) }
        guard let fields = value.objectValue else { throw EventSyntaxError(column: 1, message: "expected a JSON object") }
        return try parse(object: fields)
    }

    static func parse(object fields: [(String, JSONValue)]) throws(EventSyntaxError) -> LogEvent {
        let r = FieldReader(fields: fields)
        guard let t = try r.int("t") else { throw EventSyntaxError(message: "missing field 't' (nanoseconds since the run's start)") }
        let source: EventSource
        switch (try r.string("node"), try r.string("link")) {
        case let (n?, nil): source = .node(n)
        case let (nil, l?): source = .link(l)
        case (nil, nil): throw EventSyntaxError(message: "missing field 'node' or 'link' (who wrote the event)")
        case (_?, _?): throw EventSyntaxError(message: "an event has either 'node' or 'link', not both")
        }
        guard let kind = try r.string("kind") else { throw EventSyntaxError(message: "missing field 'kind'") }
        let body: EventBody
        switch kind {
        case "log.start":
            guard let v = try r.int("version") else { throw EventSyntaxError(message: "log.start: missing field 'version'") }
            var attributes: [String: String] = [:]
            for (k, val) in fields where !reservedKeys.contains(k) {
                switch val {
                case .string(let s): attributes[k] = s
                case .int(let i): attributes[k] = String(i)
                case .double(let d): attributes[k] = JSONValue.format(d)
                case .bool(let b): attributes[k] = String(b)
                default: attributes[k] = val.serialized
                }
            }
            body = .logStart(version: Int(clamping: v), run: try r.string("run") ?? "", stack: try r.string("stack"), attributes: attributes)
        case "run.end":
            body = .runEnd
        case "app.start":
            body = .appStart(conn: try r.required("conn", kind), app: try r.required("app", kind),
                             role: try r.enumeration("role", kind) ?? .sender,
                             offered: try r.int("offered_bps").map { Bitrate(bitsPerSecond: $0) })
        case "app.stop":
            body = .appStop(conn: try r.required("conn", kind), reason: try r.string("reason"))
        case "app.sent", "app.delivered":
            let m = AppMessage(conn: try r.required("conn", kind), sequence: UInt64(try r.nonNegative("seq", kind)),
                               size: Int(try r.nonNegative("size", kind)),
                               sentAt: Instant(nanoseconds: try r.requiredInt("sent_at", kind)))
            body = kind == "app.sent" ? .appSent(m) : .appDelivered(m)
        case "bytes.delivered":
            body = .bytesDelivered(conn: try r.required("conn", kind), bytes: try r.nonNegative("bytes", kind),
                                   total: try r.nonNegative("total", kind))
        case "conn.state":
            guard let state: ConnectionState = try r.enumeration("state", kind) else {
                throw EventSyntaxError(message: "conn.state: missing field 'state'")
            }
            body = .connectionState(conn: try r.required("conn", kind), state: state, mptcp: try r.bool("mptcp"),
                                    reason: try r.string("reason"))
        case "subflow.state":
            guard let state: SubflowState = try r.enumeration("state", kind) else {
                throw EventSyntaxError(message: "subflow.state: missing field 'state'")
            }
            body = .subflowState(SubflowChange(
                conn: try r.required("conn", kind), subflow: Int(try r.nonNegative("subflow", kind)), state: state,
                path: try r.string("path"), local: try r.string("local"), remote: try r.string("remote"),
                reason: try r.string("reason")))
        case "subflow.progress":
            body = .subflowProgress(conn: try r.required("conn", kind), subflow: Int(try r.nonNegative("subflow", kind)),
                                    path: try r.string("path"), bytesAcked: try r.int("bytes_acked"),
                                    bytesReceived: try r.int("bytes_received"))
        case "subflow.join":
            body = .joinAttempt(conn: try r.required("conn", kind), subflow: try r.int("subflow").map { Int(clamping: $0) },
                                path: try r.string("path"), local: try r.string("local"), remote: try r.string("remote"))
        case "interface":
            guard let change: InterfaceChange = try r.enumeration("change", kind) else {
                throw EventSyntaxError(message: "interface: missing field 'change'")
            }
            body = .interface(name: try r.required("iface", kind), change: change, address: try r.string("address"))
        case "reinject":
            body = .reinjection(conn: try r.required("conn", kind), bytes: try r.nonNegative("bytes", kind),
                                from: try r.int("from").map { Int(clamping: $0) }, to: try r.int("to").map { Int(clamping: $0) })
        case "coverage":
            guard let covered = try r.bool("covered") else { throw EventSyntaxError(message: "coverage: missing field 'covered'") }
            body = .coverage(covered: covered, loss: try r.enumeration("loss", kind) ?? .silent,
                             rate: try r.int("rate_bps").map { Bitrate(bitsPerSecond: $0) })
        case "link.params":
            var loss: Probability?
            if let l = r.value("loss") {
                guard let d = l.doubleValue, (0...1).contains(d) else {
                    throw EventSyntaxError(message: "link.params: field 'loss' must be a number from 0 to 1")
                }
                loss = Probability(d)
            }
            body = .linkParameters(rate: try r.int("rate_bps").map { Bitrate(bitsPerSecond: $0) },
                                   delay: try r.int("delay_ns").map { Interval(nanoseconds: $0) }, loss: loss)
        default:
            var rest: [String: JSONValue] = [:]
            for (k, v) in fields where !reservedKeys.contains(k) { rest[k] = v }
            body = .unknown(kind: kind, fields: rest)
        }
        return LogEvent(time: Instant(nanoseconds: t), source: source, body: body)
    }
}

/// Typed access to an event's fields with errors that name the field.
struct FieldReader {
    let fields: [(String, JSONValue)]

    func value(_ key: String) -> JSONValue? {
        guard let v = fields.first(where: { $0.0 == key })?.1 else { return nil }
        if case .null = v { return nil }
        return v
    }

    func string(_ key: String) throws(EventSyntaxError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.stringValue else { throw EventSyntaxError(message: "field '\(key)' must be a string") }
        return s
    }

    func int(_ key: String) throws(EventSyntaxError) -> Int64? {
        guard let v = value(key) else { return nil }
        guard let i = v.int64Value else { throw EventSyntaxError(message: "field '\(key)' must be an integer") }
        return i
    }

    func bool(_ key: String) throws(EventSyntaxError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard let b = v.boolValue else { throw EventSyntaxError(message: "field '\(key)' must be true or false") }
        return b
    }

    func required(_ key: String, _ kind: String) throws(EventSyntaxError) -> String {
        guard let s = try string(key) else { throw EventSyntaxError(message: "\(kind): missing field '\(key)'") }
        return s
    }

    func requiredInt(_ key: String, _ kind: String) throws(EventSyntaxError) -> Int64 {
        guard let i = try int(key) else { throw EventSyntaxError(message: "\(kind): missing field '\(key)'") }
        return i
    }

    func nonNegative(_ key: String, _ kind: String) throws(EventSyntaxError) -> Int64 {
        let i = try requiredInt(key, kind)
        guard i >= 0 else { throw EventSyntaxError(message: "\(kind): field '\(key)' must not be negative") }
        return i
    }

    func enumeration<E: RawRepresentable & CaseIterable>(_ key: String, _ kind: String) throws(EventSyntaxError) -> E?
    where E.RawValue == String {
        guard let s = try string(key) else { return nil }
        guard let e = E(rawValue: s) else {
            let allowed = E.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")
            throw EventSyntaxError(message: "\(kind): field '\(key)' is '\(s)', expected one of \(allowed)")
        }
        return e
    }
}

