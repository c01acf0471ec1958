#if canImport(Glibc)
import Glibc
#endif
import Analysis
import Core
import MPTCP
import TCP
import Wire

/// One address the stack owns, and how its subflows are named in logs.
public struct StackCorePath: Hashable, Sendable {
    public var address: [UInt8]
    /// The topology link (or interface) the path leaves by: `path` in subflow events.
    public var label: String
    public var backup: Bool
    public init(address: [UInt8], label: String, backup: Bool = false) {
        self.address = address; self.label = label; self.backup = backup
    }
}

/// What happened inside the core, for the driver to log (docs/LOGS.md) or act on.
public enum StackEvent: Hashable, Sendable {
    case connectionState(connection: Int, state: ConnectionState, mptcp: Bool, reason: String?)
    case subflowState(connection: Int, subflow: Int, state: SubflowState, path: Int?, local: String, remote: String, reason: String?)
    case joinAttempt(connection: Int, subflow: Int, path: Int?, local: String, remote: String)
    case subflowProgress(connection: Int, subflow: Int, path: Int?, bytesAcknowledged: Int, bytesReceived: Int)
    case reinjection(connection: Int, bytes: Int)
    /// A connection to a listening port finished its handshake and waits in the accept queue.
    case accepted(port: UInt16, connection: Int)
}

/// Errors the stack gives applications.
public enum StackError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownConnection(Int)
    case unknownPath(Int)
    case portInUse(UInt16)
    case connectionFailed(String)
    case connectionReset
    case writeClosed
    case stopped
    case system(String, Int32)

    public var description: String {
        switch self {
        case let .unknownConnection(id): return "no connection \(id)"
        case let .unknownPath(i): return "no path \(i)"
        case let .portInUse(p): return "port \(p) is already listening"
        case let .connectionFailed(reason): return "connection failed: \(reason)"
        case .connectionReset: return "connection reset"
        case .writeClosed: return "the connection's write side is closed"
        case .stopped: return "the stack stopped"
        case let .system(what, code): return "\(what): errno \(-code) (\(String(cString: strerror(-code))))"
        }
    }
}

/// The Swift stack without any I/O: IPv4 packets in, IPv4 packets out, a
/// clock passed to every call and a `nextDeadline` to be called back at.
/// It demultiplexes segments to MPTCP connections by four-tuple, MP_JOIN SYNs
/// by token (RFC 8684 §3.2), SYNs for a listening port to a new connection
/// (a SYN without MP_CAPABLE runs plain TCP: §3.7), and answers segments for
/// nobody with a RST (RFC 9293 §3.10.7.1).
public struct StackCore: Sendable {
    public enum Flow: Sendable {
        case mptcp(MPTCPConnection)
        /// A passive fallback: the peer's SYN had no MP_CAPABLE.
        case plain(TCPConnection)
    }

    struct SubflowSeen: Sendable {
        var reportedEstablished = false
        var reportedEnd = false
        var bytesAcknowledged = 0
        var bytesReceived = 0
        var progressAt = Instant.zero
    }

    struct Record: Sendable {
        /// Exactly one of the two is set. They are kept apart (not in an enum)
        /// so that calls mutate the connection in place: a copy of an
        /// `MPTCPConnection` shares its send buffer, and the first write to
        /// either would copy megabytes per packet.
        var mptcp: MPTCPConnection?
        var plain: TCPConnection?
        var flow: Flow { mptcp.map { .mptcp($0) } ?? .plain(plain!) }
        var label: String
        var role: MPTCPConnection.Role
        var state: ConnectionState = .connecting
        var reason: String?
        var listenerPort: UInt16?
        /// Path index → the MPTCP address id the connection knows it by.
        var addressIDs: [Int: UInt8] = [:]
        var seen: [Int: SubflowSeen] = [:]
        var reinjectedBytes = 0
        var writeClosed = false
        var peerFinished = false
        var lastService = Instant.zero
        var endedAt: Instant?
        /// The application is done with it: once ended and quiet it may be forgotten.
        var released = false
        var touched = true

        init(mptcp: MPTCPConnection? = nil, plain: TCPConnection? = nil, label: String, role: MPTCPConnection.Role) {
            self.mptcp = mptcp; self.plain = plain; self.label = label; self.role = role
        }
    }

    /// Runs `body` on connection `id`'s record in place. `body` must not call
    /// back into the core: return what is to be done instead.
    mutating func withRecord<T>(_ id: Int, _ body: (inout Record) throws -> T) rethrows -> T? {
        guard records[id] != nil else { return nil }
        return try body(&records[id]!)
    }

    public var paths: [StackCorePath]
    public let mptcp: MPTCPConfiguration
    /// Bytes an application may have written and not yet acknowledged per connection.
    public var sendBufferLimit: Int
    /// At most one `subflow.progress` event per subflow per this interval.
    public var progressInterval: Interval = .milliseconds(10)
    /// How long an ended connection keeps answering its segments before its
    /// four-tuples are forgotten (segments then get a RST).
    public var linger: Interval = .seconds(10)
    let seed: UInt64
    public private(set) var pathUp: [Bool]
    var records: [Int: Record] = [:]
    var byTuple: [TCPFourTuple: Int] = [:]
    var listeners: Set<UInt16> = []
    /// Log labels of listening ports and how many connections each has taken.
    var listenerLabels: [UInt16: (label: String, count: Int)] = [:]
    var acceptQueues: [UInt16: [Int]] = [:]
    var nextConnection = 1
    var nextEphemeral: UInt16 = 32_768
    var identification: UInt16 = 0
    var outgoing: [[UInt8]] = []
    var events: [StackEvent] = []
    /// Counters of what the demultiplexer did.
    public private(set) var packetsIn = 0
    public private(set) var packetsOut = 0
    public private(set) var packetsMalformed = 0
    public private(set) var packetsBadChecksum = 0
    public private(set) var resetsForNobody = 0

    public init(paths: [StackCorePath], mptcp: MPTCPConfiguration, seed: UInt64, sendBufferLimit: Int = 4 << 20) {
        self.paths = paths; self.mptcp = mptcp; self.seed = seed; self.sendBufferLimit = sendBufferLimit
        pathUp = paths.map { _ in true }
    }

    // MARK: Application calls

    /// Accepts connections on `port`. Their log label is `label` (the
    /// orchestrator's `--conn`, shared with the peer) for the first and
    /// `label-2`, `label-3`… after it; without one, `<port>-<id>`.
    public mutating func listen(port: UInt16, label: String? = nil) throws {
        guard !listeners.contains(port) else { throw StackError.portInUse(port) }
        listeners.insert(port)
        if let label { listenerLabels[port] = (label, 0) }
        acceptQueues[port] = []
    }

    public mutating func stopListening(port: UInt16) {
        listeners.remove(port)
        acceptQueues[port] = nil
        listenerLabels[port] = nil
    }

    /// The next connection whose handshake completed on `port`, if any.
    public mutating func accept(port: UInt16) -> Int? {
        guard var q = acceptQueues[port], !q.isEmpty else { return nil }
        let id = q.removeFirst()
        acceptQueues[port] = q
        return id
    }

    /// Opens an MPTCP connection from path `fromPath`'s address; the others
    /// that are up are handed to the path manager at once.
    public mutating func connect(to address: [UInt8], port: UInt16, fromPath: Int = 0, label: String? = nil,
                                 now: Instant) throws -> Int {
        guard paths.indices.contains(fromPath) else { throw StackError.unknownPath(fromPath) }
        let id = nextConnection
        nextConnection += 1
        var localPort = nextEphemeral
        for _ in 0 ..< 17_232 {
            localPort = nextEphemeral
            nextEphemeral = nextEphemeral >= 49_999 ? 32_768 : nextEphemeral + 1
            let t = TCPFourTuple(localAddress: paths[fromPath].address, localPort: localPort, remoteAddress: address, remotePort: port)
            if byTuple[t] == nil { break }
        }
        let tuple = TCPFourTuple(localAddress: paths[fromPath].address, localPort: localPort, remoteAddress: address, remotePort: port)
        var (c, actions) = MPTCPConnection.connect(tuple: tuple, configuration: mptcp, seed: connectionSeed(id), now: now)
        c.setJoinPorts(startingAt: joinPortBase(id))
        var record = Record(mptcp: c, label: label ?? "c\(id)", role: .active)
        record.addressIDs[fromPath] = 0
        for j in paths.indices where j != fromPath { record.addressIDs[j] = UInt8(truncatingIfNeeded: j + 1) }
        record.lastService = now
        records[id] = record
        byTuple[tuple] = id
        perform(actions, connection: id)
        for j in paths.indices where j != fromPath && pathUp[j] { announce(path: j, up: true, connection: id, now: now) }
        events.append(.connectionState(connection: id, state: .connecting, mptcp: true, reason: nil))
        return id
    }

    /// Queues as much of `bytes` as the send buffer takes; returns how many.
    public mutating func write<C: Collection>(_ id: Int, _ bytes: C, now: Instant) throws -> Int where C.Element == UInt8 {
        guard let r = records[id] else { throw StackError.unknownConnection(id) }
        if let failure = failure(of: r) { throw failure }
        guard !r.writeClosed else { throw StackError.writeClosed }
        let limit = sendBufferLimit
        let accepted = withRecord(id) { r -> Int in
            if r.mptcp != nil {
                let n = min(bytes.count, max(0, limit - r.mptcp!.queuedSendBytes))
                if n > 0 { r.mptcp!.write(Array(bytes.prefix(n))) }
                return n
            }
            return r.plain!.send(bytes)
        } ?? 0
        if accepted > 0 { service(id, now: now) }
        return accepted
    }

    /// Room for `write` now.
    public func writableBytes(_ id: Int) -> Int {
        guard let r = records[id], !r.writeClosed, failure(of: r) == nil else { return 0 }
        switch r.flow {
        case let .mptcp(c): return max(0, sendBufferLimit - c.queuedSendBytes)
        case let .plain(t): return t.sendBufferSpace
        }
    }

    /// Takes up to `maximum` bytes in order; [] when none is waiting (see `isEndOfStream`).
    public mutating func read(_ id: Int, maximum: Int, now: Instant) -> [UInt8] {
        let out = withRecord(id) { r -> [UInt8] in
            r.mptcp != nil ? r.mptcp!.read(maximum: maximum) : r.plain!.receive(maximum: maximum)
        } ?? []
        // Reading opens the window: let the connection announce it.
        if !out.isEmpty { service(id, now: now) }
        return out
    }

    public func readableBytes(_ id: Int) -> Int {
        guard let r = records[id] else { return 0 }
        switch r.flow {
        case let .mptcp(c): return c.readableBytes
        case let .plain(t): return t.receivableBytes
        }
    }

    /// Every byte the peer sent has been read and the peer closed its side.
    public func isEndOfStream(_ id: Int) -> Bool {
        guard let r = records[id] else { return true }
        return readableBytes(id) == 0 && peerFinished(r)
    }

    /// Why the connection cannot go on (reset, failed), if it cannot.
    public func failure(_ id: Int) -> StackError? {
        guard let r = records[id] else { return .unknownConnection(id) }
        return failure(of: r)
    }

    func failure(of r: Record) -> StackError? {
        switch r.state {
        case .failed: return .connectionFailed(r.reason ?? "failed")
        case .reset: return .connectionReset
        default: return nil
        }
    }

    public func state(_ id: Int) -> ConnectionState? { records[id]?.state }
    public var connectionIDs: [Int] { records.keys.sorted() }
    public func label(_ id: Int) -> String? { records[id]?.label }

    /// No more data from us: DATA_FIN (or FIN on a plain connection) after what was written.
    public mutating func shutdownWrite(_ id: Int, now: Instant) {
        guard let r = records[id], !r.writeClosed else { return }
        withRecord(id) { r in
            r.writeClosed = true
            if r.mptcp != nil { r.mptcp!.close() } else { r.plain!.close() }
        }
        service(id, now: now)
    }

    /// The application will not use connection `id` again: after it ends and
    /// `linger` passes, its four-tuples are forgotten (until then its info stays readable).
    public mutating func release(_ id: Int) {
        records[id]?.released = true
    }

    /// Ends the connection at once: RST on every subflow.
    public mutating func abort(_ id: Int, now: Instant) {
        guard records[id] != nil else { return }
        let actions = withRecord(id) { r -> [MPTCPAction] in
            if r.mptcp != nil { return r.mptcp!.abortSubflows(now: now) }
            let tuple = r.plain!.tuple
            return r.plain!.abort(now: now).compactMap { if case let .send(s) = $0 { return .send(s, tuple) } else { return nil } }
        } ?? []
        var r = records[id]!
        r.writeClosed = true
        if r.state == .connecting || r.state == .established || r.state == .finished {
            r.state = .closed
            r.reason = "aborted"
            r.endedAt = now
            events.append(.connectionState(connection: id, state: .closed, mptcp: isMPTCP(r), reason: "aborted"))
        }
        records[id] = r
        perform(actions, connection: id)
    }

    /// A path's interface went up or down (carrier, link, address).
    public mutating func setPath(_ index: Int, up: Bool, now: Instant) {
        guard paths.indices.contains(index), pathUp[index] != up else { return }
        pathUp[index] = up
        for id in records.keys.sorted() where records[id]!.endedAt == nil {
            announce(path: index, up: up, connection: id, now: now)
        }
    }

    // MARK: Network side

    /// One IPv4 packet from the network (the TUN device).
    public mutating func receive(packet: ArraySlice<UInt8>, now: Instant) {
        packetsIn += 1
        guard let ip = try? IPPacket.parse(packet), case let .v4(header) = ip.header, var segment = ip.tcp, ip.isComplete else {
            packetsMalformed += 1
            return
        }
        // RFC 9293 §3.1: a segment with a bad checksum is discarded.
        guard ip.tcpChecksumValid == true else { packetsBadChecksum += 1; return }
        _ = header
        let seen = TCPFourTuple(localAddress: ip.header.destination.bytes, localPort: segment.destinationPort,
                                remoteAddress: ip.header.source.bytes, remotePort: segment.sourcePort)
        if let id = byTuple[seen], records[id] != nil {
            let actions = withRecord(id) { r -> [MPTCPAction]? in
                if r.mptcp != nil {
                    guard let sub = r.mptcp!.subflow(for: seen) else { return nil }
                    r.lastService = now
                    r.touched = true
                    return r.mptcp!.handle(segment, on: sub, now: now)
                }
                r.lastService = now
                r.touched = true
                let tuple = r.plain!.tuple
                return r.plain!.handle(segment, now: now).compactMap { if case let .send(s) = $0 { return .send(s, tuple) } else { return nil } }
            } ?? nil
            if let actions {
                perform(actions, connection: id)
                return
            }
        }
        if segment.flags.contains(.syn) && !segment.flags.contains(.ack) && !segment.flags.contains(.rst) {
            let options = MPTCPOptionReader.options(of: segment)
            for case let .join(.syn(_, _, token, _)) in options {
                // RFC 8684 §3.2: the token names the connection; an unknown one is refused inside acceptJoin.
                let id = records.keys.sorted().first { id in
                    if let c = records[id]!.mptcp { return c.token == token && !c.isClosed }
                    return false
                } ?? records.keys.sorted().first { id in
                    if let c = records[id]!.mptcp { return !c.isClosed }
                    return false
                }
                if let id {
                    let actions = withRecord(id) { r -> [MPTCPAction] in
                        r.touched = true
                        return r.mptcp!.acceptJoin(syn: segment, tuple: seen, now: now)
                    } ?? []
                    perform(actions, connection: id)
                } else {
                    resetsForNobody += 1
                    if let rst = TCPConnection.resetReply(to: segment) { send(rst, tuple: seen) }
                }
                return
            }
            if listeners.contains(segment.destinationPort), paths.contains(where: { $0.address == seen.localAddress }) {
                openPassive(syn: &segment, tuple: seen, now: now)
                return
            }
        }
        resetsForNobody += 1
        // RFC 9293 §3.10.7.1: no connection here, answer as CLOSED does.
        if let rst = TCPConnection.resetReply(to: segment) { send(rst, tuple: seen) }
    }

    mutating func openPassive(syn: inout TCPSegment, tuple: TCPFourTuple, now: Instant) {
        let id = nextConnection
        nextConnection += 1
        var label = "\(syn.destinationPort)-\(id)"
        if let named = listenerLabels[syn.destinationPort] {
            label = named.count == 0 ? named.label : "\(named.label)-\(named.count + 1)"
            listenerLabels[syn.destinationPort] = (named.label, named.count + 1)
        }
        // RFC 8684 §3.4.1: the passive side announces its other addresses (ADD_ADDR)
        // once established, so that the peer's path manager can join to them.
        let arrival = paths.firstIndex(where: { $0.address == tuple.localAddress })
        var accepted = mptcp
        for j in paths.indices where j != arrival && pathUp[j] {
            if let a = IPv4Address(bytes: paths[j].address) {
                accepted.announcedAddresses.append(AnnouncedAddress(id: UInt8(truncatingIfNeeded: j + 1), address: .v4(a)))
            }
        }
        if let (c, actions) = MPTCPConnection.accept(syn: syn, tuple: tuple, configuration: accepted, seed: connectionSeed(id), now: now) {
            var r = Record(mptcp: c, label: label, role: .passive)
            r.listenerPort = syn.destinationPort
            r.lastService = now
            if let p = arrival {
                r.addressIDs[p] = 0
                for j in paths.indices where j != p { r.addressIDs[j] = UInt8(truncatingIfNeeded: j + 1) }
            }
            records[id] = r
            byTuple[tuple] = id
            perform(actions, connection: id)
        } else {
            // RFC 8684 §3.7: a SYN without MP_CAPABLE is answered by plain TCP.
            var t = TCPConnection(tuple: tuple, configuration: plainConfiguration, isnGenerator: InitialSequenceNumberGenerator(seed: connectionSeed(id)))
            t.listen()
            let actions = t.handle(syn, now: now)
            var r = Record(plain: t, label: label, role: .passive)
            r.listenerPort = syn.destinationPort
            r.lastService = now
            records[id] = r
            byTuple[tuple] = id
            perform(actions.compactMap { if case let .send(s) = $0 { return .send(s, tuple) } else { return nil } }, connection: id)
        }
    }

    /// Plain TCP for fallback connections: the subflow settings, Nagle as usual.
    var plainConfiguration: TCPConfiguration {
        var t = mptcp.tcp
        t.nagle = true
        return t
    }

    /// Runs every connection's timers that are due.
    public mutating func advance(now: Instant) {
        for id in records.keys.sorted() {
            guard let r = records[id] else { continue }
            if r.released, let ended = r.endedAt, now >= ended + linger, isQuiet(r) {
                forget(id)
                continue
            }
            if deadline(of: r) <= now { service(id, now: now) }
        }
    }

    /// When `advance` next has work to do.
    public var nextDeadline: Instant {
        var d = Instant.distantFuture
        for r in records.values {
            d = min(d, deadline(of: r))
            if r.released, let ended = r.endedAt { d = min(d, max(ended + linger, r.lastService + .milliseconds(1))) }
        }
        return d
    }

    func deadline(of r: Record) -> Instant {
        let d: Instant
        switch r.flow {
        case let .mptcp(c): d = c.isClosed || r.endedAt != nil ? .distantFuture : c.nextDeadline
        case let .plain(t): d = t.nextDeadline
        }
        // A deadline already due when the connection was last served would spin the loop.
        return d > r.lastService ? d : r.lastService + .milliseconds(1)
    }

    /// Packets to put on the wire, in order.
    public mutating func takeOutgoing() -> [[UInt8]] {
        defer { outgoing.removeAll(keepingCapacity: true) }
        return outgoing
    }

    /// What happened since the last call: state changes of the connections
    /// touched since, joins, progress, reinjections, accepts.
    public mutating func takeEvents(now: Instant) -> [StackEvent] {
        for id in records.keys.sorted() where records[id]!.touched { observe(id, now: now) }
        defer { events.removeAll(keepingCapacity: true) }
        return events
    }

    // MARK: Internals

    func connectionSeed(_ id: Int) -> UInt64 { seed &+ UInt64(id) &* 7_919 }

    func joinPortBase(_ id: Int) -> UInt16 { UInt16(50_000 + (id % 60) * 256) }

    func isMPTCP(_ r: Record) -> Bool {
        if case let .mptcp(c) = r.flow { return c.fallbackReason == nil }
        return false
    }

    func peerFinished(_ r: Record) -> Bool {
        switch r.flow {
        case let .mptcp(c):
            if c.peerClosed { return true }
            // §3.7: after fallback the peer's FIN ends the data stream.
            if c.fallbackReason != nil, let s = c.subflowSnapshots.first {
                return [.closeWait, .lastAck, .closing, .timeWait].contains(s.state) || (s.state == .closed && s.closeReason == .normal)
            }
            return false
        case let .plain(t): return t.isReceiveFinished
        }
    }

    func isQuiet(_ r: Record) -> Bool {
        switch r.flow {
        case let .mptcp(c): return c.isClosed || c.subflowSnapshots.allSatisfy { $0.closed || $0.state == .closed }
        case let .plain(t): return t.state == .closed || t.state == .timeWait
        }
    }

    mutating func forget(_ id: Int) {
        guard let r = records.removeValue(forKey: id) else { return }
        switch r.flow {
        case let .mptcp(c): for s in c.subflowSnapshots where byTuple[s.tuple] == id { byTuple[s.tuple] = nil }
        case let .plain(t): if byTuple[t.tuple] == id { byTuple[t.tuple] = nil }
        }
    }

    mutating func announce(path j: Int, up: Bool, connection id: Int, now: Instant) {
        guard let r = records[id], let c = r.mptcp, !c.isClosed, let aid = r.addressIDs[j] else { return }
        // The initial address (id 0) stays the connection's own; its loss shows as the subflow's silence.
        guard aid != 0 || !up else { return }
        let event: PathEvent = up
            ? .localAddressUp(AnnouncedAddress(id: aid, address: .v4(IPv4Address(bytes: paths[j].address) ?? IPv4Address(0))), backup: paths[j].backup)
            : .localAddressDown(id: aid)
        let address = paths[j].address
        let actions = withRecord(id) { r -> [MPTCPAction] in
            r.lastService = now
            r.touched = true
            return r.mptcp!.localAddress(event, address: address, now: now)
        } ?? []
        perform(actions, connection: id)
    }

    mutating func service(_ id: Int, now: Instant) {
        let actions = withRecord(id) { r -> [MPTCPAction] in
            r.lastService = now
            r.touched = true
            if r.mptcp != nil { return r.mptcp!.poll(now: now) }
            let tuple = r.plain!.tuple
            return r.plain!.poll(now: now).compactMap { if case let .send(s) = $0 { return .send(s, tuple) } else { return nil } }
        } ?? []
        perform(actions, connection: id)
    }

    mutating func perform(_ actions: [MPTCPAction], connection id: Int) {
        for action in actions {
            guard case let .send(segment, tuple) = action else { continue }
            if byTuple[tuple] == nil { byTuple[tuple] = id }
            send(segment, tuple: tuple)
        }
    }

    mutating func send(_ segment: TCPSegment, tuple: TCPFourTuple) {
        guard let from = IPv4Address(bytes: tuple.localAddress), let to = IPv4Address(bytes: tuple.remoteAddress) else { return }
        identification &+= 1
        let header = IPv4Header(source: from, destination: to, proto: IPProtocol.tcp, payloadLength: segment.encodedLength,
                                identification: identification)
        // One buffer per packet: the IPv4 header, then the segment with its checksum.
        let length = segment.encodedLength
        var packet = [UInt8](repeating: 0, count: header.headerLength + length)
        header.emit(into: &packet)
        segment.emit(into: &packet, at: header.headerLength,
                     pseudoHeaderSum: pseudoHeaderSum(source: from, destination: to, proto: IPProtocol.tcp, length: length))
        outgoing.append(packet)
        packetsOut += 1
    }

    static func endpoint(_ address: [UInt8], _ port: UInt16) -> String {
        "\(address.map(String.init).joined(separator: ".")):\(port)"
    }

    /// Compares the connection with what was last reported and records the differences as events.
    mutating func observe(_ id: Int, now: Instant) {
        guard var r = records[id] else { return }
        r.touched = false
        let mptcpNow = isMPTCP(r)
        func setState(_ s: ConnectionState, _ reason: String?) {
            guard r.state != s else { return }
            r.state = s
            r.reason = reason
            events.append(.connectionState(connection: id, state: s, mptcp: mptcpNow, reason: reason))
        }
        switch r.flow {
        case let .mptcp(c):
            let snapshots = c.subflowSnapshots
            for s in snapshots {
                let sid = s.id.rawValue
                var seen = r.seen[sid] ?? {
                    // A subflow beyond the first is a join (RFC 8684 §3.2).
                    if sid != 0 {
                        events.append(.joinAttempt(connection: id, subflow: sid, path: pathIndex(s.tuple.localAddress),
                                                   local: Self.endpoint(s.tuple.localAddress, s.tuple.localPort),
                                                   remote: Self.endpoint(s.tuple.remoteAddress, s.tuple.remotePort)))
                    }
                    return SubflowSeen()
                }()
                let local = Self.endpoint(s.tuple.localAddress, s.tuple.localPort)
                let remote = Self.endpoint(s.tuple.remoteAddress, s.tuple.remotePort)
                if s.established && !seen.reportedEstablished && !seen.reportedEnd {
                    seen.reportedEstablished = true
                    events.append(.subflowState(connection: id, subflow: sid, state: .established, path: pathIndex(s.tuple.localAddress),
                                                local: local, remote: remote, reason: nil))
                }
                let ended = s.closed || s.state == .closed
                if ended && !seen.reportedEnd {
                    seen.reportedEnd = true
                    let clean = s.closeReason == .normal && seen.reportedEstablished
                    events.append(.subflowState(connection: id, subflow: sid, state: clean ? .closed : .failed,
                                                path: pathIndex(s.tuple.localAddress), local: local, remote: remote,
                                                reason: s.closeReason?.rawValue ?? (s.stale ? "stale" : "closed by the connection")))
                }
                if (s.bytesAcknowledged != seen.bytesAcknowledged || s.bytesReceived != seen.bytesReceived)
                    && (now >= seen.progressAt + progressInterval || ended) {
                    seen.bytesAcknowledged = s.bytesAcknowledged
                    seen.bytesReceived = s.bytesReceived
                    seen.progressAt = now
                    events.append(.subflowProgress(connection: id, subflow: sid, path: pathIndex(s.tuple.localAddress),
                                                   bytesAcknowledged: s.bytesAcknowledged, bytesReceived: s.bytesReceived))
                }
                r.seen[sid] = seen
            }
            let reinjected = c.counters.reinjectedBytes
            if reinjected > r.reinjectedBytes {
                events.append(.reinjection(connection: id, bytes: reinjected - r.reinjectedBytes))
                r.reinjectedBytes = reinjected
            }
            if r.state == .connecting {
                if snapshots.contains(where: { $0.established }) {
                    setState(.established, c.fallbackReason.map { "fallback: \($0.rawValue)" })
                    if let port = r.listenerPort { acceptQueues[port]?.append(id); events.append(.accepted(port: port, connection: id)) }
                } else if !snapshots.isEmpty, snapshots.allSatisfy({ $0.state == .closed }) || c.isClosed {
                    let why = snapshots.first?.closeReason
                    setState(why == .refused ? .reset : .failed, why.map { "handshake: \($0.rawValue)" } ?? "handshake failed")
                    r.endedAt = now
                }
            }
            if r.state == .established || r.state == .finished {
                if peerFinished(r) && !r.peerFinished { r.peerFinished = true; setState(.finished, nil) }
                if c.isClosed {
                    let clean = c.peerClosed && c.allDataAcknowledged
                    setState(clean ? .closed : .failed, clean ? "DATA_FIN exchanged" : "connection lost")
                    r.endedAt = now
                } else if c.fallbackReason != nil, let s = snapshots.first, s.state == .closed || s.state == .timeWait {
                    // §3.7: a fallen-back connection is its one subflow.
                    switch s.closeReason {
                    case .reset?: setState(.reset, "reset by the peer")
                    case .timedOut?: setState(.failed, "timed out")
                    default: setState(.closed, "FIN exchanged")
                    }
                    r.endedAt = now
                }
            }
        case let .plain(t):
            let sid = 0
            var seen = r.seen[sid] ?? SubflowSeen()
            let local = Self.endpoint(t.tuple.localAddress, t.tuple.localPort)
            let remote = Self.endpoint(t.tuple.remoteAddress, t.tuple.remotePort)
            if t.state.isSynchronized && !seen.reportedEstablished {
                seen.reportedEstablished = true
                events.append(.subflowState(connection: id, subflow: 0, state: .established, path: pathIndex(t.tuple.localAddress),
                                            local: local, remote: remote, reason: nil))
                if r.state == .connecting {
                    setState(.established, "fallback: peer not MP_CAPABLE")
                    if let port = r.listenerPort { acceptQueues[port]?.append(id); events.append(.accepted(port: port, connection: id)) }
                }
            }
            let acked = t.counters.bytesSent - t.counters.bytesRetransmitted - t.unacknowledgedBytes
            let received = t.counters.bytesDelivered + t.receivableBytes
            if (acked != seen.bytesAcknowledged || received != seen.bytesReceived) && now >= seen.progressAt + progressInterval {
                seen.bytesAcknowledged = acked
                seen.bytesReceived = received
                seen.progressAt = now
                events.append(.subflowProgress(connection: id, subflow: 0, path: pathIndex(t.tuple.localAddress),
                                               bytesAcknowledged: acked, bytesReceived: received))
            }
            if t.isReceiveFinished && !r.peerFinished && r.state == .established { r.peerFinished = true; setState(.finished, nil) }
            if (t.state == .closed || t.state == .timeWait) && !seen.reportedEnd {
                seen.reportedEnd = true
                let reason = t.closeReason
                let clean = t.state == .timeWait || reason == .normal
                events.append(.subflowState(connection: id, subflow: 0, state: clean ? .closed : .failed,
                                            path: pathIndex(t.tuple.localAddress), local: local, remote: remote,
                                            reason: reason?.rawValue))
                switch reason {
                case .reset?: setState(seen.reportedEstablished ? .reset : .failed, "reset by the peer")
                case .timedOut?: setState(.failed, "timed out")
                default: setState(.closed, "FIN exchanged")
                }
                r.endedAt = now
            }
            r.seen[sid] = seen
        }
        records[id] = r
    }

    func pathIndex(_ address: [UInt8]) -> Int? { paths.firstIndex { $0.address == address } }

    // MARK: Info

    public func info(_ id: Int) -> StackConnectionInfo? {
        guard let r = records[id] else { return nil }
        var info = StackConnectionInfo(id: id, label: r.label, state: r.state, reason: r.reason,
                                       role: r.role == .active ? "client" : "server")
        switch r.flow {
        case let .mptcp(c):
            info.mptcp = c.fallbackReason == nil
            info.fallbackReason = c.fallbackReason?.rawValue
            info.counters = c.counters
            info.token = c.token
            info.queuedSendBytes = c.queuedSendBytes
            info.subflows = c.subflowSnapshots.map { s in
                StackSubflowInfo(id: s.id.rawValue, local: Self.endpoint(s.tuple.localAddress, s.tuple.localPort),
                                 remote: Self.endpoint(s.tuple.remoteAddress, s.tuple.remotePort),
                                 path: pathIndex(s.tuple.localAddress).map { paths[$0].label },
                                 state: s.closed && s.state != .closed ? "CLOSED (dropped)" : s.state.rawValue,
                                 backup: s.backup, established: s.established, active: !s.closed && s.state != .closed,
                                 smoothedRTT: s.smoothedRTT, congestionWindow: s.congestionWindow,
                                 bytesAcknowledged: s.bytesAcknowledged, bytesReceived: s.bytesReceived,
                                 retransmissions: s.counters.retransmissions, retransmissionTimeouts: s.counters.retransmissionTimeouts,
                                 segmentsSent: s.counters.segmentsSent, segmentsReceived: s.counters.segmentsReceived)
            }
        case let .plain(t):
            info.mptcp = false
            info.fallbackReason = FallbackReason.peerNotCapable.rawValue
            info.queuedSendBytes = t.unacknowledgedBytes
            info.subflows = [StackSubflowInfo(
                id: 0, local: Self.endpoint(t.tuple.localAddress, t.tuple.localPort),
                remote: Self.endpoint(t.tuple.remoteAddress, t.tuple.remotePort),
                path: pathIndex(t.tuple.localAddress).map { paths[$0].label }, state: t.state.rawValue, backup: false,
                established: t.state.isSynchronized, active: t.state != .closed,
                smoothedRTT: t.smoothedRTT, congestionWindow: t.congestionWindow,
                bytesAcknowledged: t.counters.bytesSent - t.counters.bytesRetransmitted - t.unacknowledgedBytes,
                bytesReceived: t.counters.bytesDelivered + t.receivableBytes,
                retransmissions: t.counters.retransmissions, retransmissionTimeouts: t.counters.retransmissionTimeouts,
                segmentsSent: t.counters.segmentsSent, segmentsReceived: t.counters.segmentsReceived)]
        }
        return info
    }
}

/// What MPTCP_INFO and TCP_INFO tell about one connection, as a value.
public struct StackConnectionInfo: Sendable, CustomStringConvertible {
    public var id: Int
    public var label: String
    public var state: ConnectionState
    public var reason: String?
    /// `client` (we connected) or `server` (accepted).
    public var role: String
    /// MPTCP negotiated (false after fallback or for a plain-TCP peer).
    public var mptcp = false
    public var fallbackReason: String?
    public var token: UInt32?
    /// Written and not yet acknowledged at the data level.
    public var queuedSendBytes = 0
    public var counters: MPTCPCounters?
    public var subflows: [StackSubflowInfo] = []

    /// Subflows that are alive (MPTCP_INFO `mptcpi_subflows` + the initial one).
    public var activeSubflows: Int { subflows.filter(\.active).count }

    public var description: String {
        var lines = ["\(label) #\(id) \(role) \(state.rawValue) \(mptcp ? "mptcp" : "tcp (fallback: \(fallbackReason ?? "-"))")"
                     + " subflows \(activeSubflows)/\(subflows.count)"]
        for s in subflows { lines.append("  \(s)") }
        return lines.joined(separator: "\n")
    }
}

/// TCP_INFO of one subflow.
public struct StackSubflowInfo: Sendable, CustomStringConvertible {
    public var id: Int
    public var local: String
    public var remote: String
    public var path: String?
    public var state: String
    public var backup: Bool
    public var established: Bool
    public var active: Bool
    public var smoothedRTT: Interval?
    public var congestionWindow: Int
    public var bytesAcknowledged: Int
    public var bytesReceived: Int
    public var retransmissions: Int
    public var retransmissionTimeouts: Int
    public var segmentsSent: Int
    public var segmentsReceived: Int

    public var description: String {
        "subflow \(id) \(local) → \(remote) path \(path ?? "-") \(state)\(backup ? " backup" : "")"
            + " srtt \(smoothedRTT?.description ?? "-") cwnd \(congestionWindow) acked \(bytesAcknowledged) received \(bytesReceived)"
            + " retrans \(retransmissions) rto \(retransmissionTimeouts)"
    }
}
