import Core
import TCP
import Wire

/// Settings of one MPTCP connection.
public struct MPTCPConfiguration: Sendable {
    /// Settings of every subflow's TCP engine. Nagle is off: a chunk's tail
    /// must leave alone so no segment straddles two DSS mappings.
    public var tcp: TCPConfiguration
    public var requestChecksums = false
    public var scheduler = Schedulers.defaultName
    public var pathManager = PathManagers.defaultName
    public var paths = PathBook.Configuration()
    public var staleDetector = StaleDetector()
    /// Make-after-break: how long the connection lives with no usable subflow.
    public var outageTimeout: Interval = .seconds(60)
    /// Connection-level receive buffer (§3.3.4); also assumed for the peer
    /// until the engine exposes the peer's scaled window.
    public var receiveBuffer = 4 << 20
    /// Largest chunk handed to one subflow at a time, in segments.
    public var chunkSegments = 16
    public var addressSignals = AddressSignals.Configuration()
    /// Coupled congestion avoidance across subflows. Anything but `uncoupled`
    /// runs every subflow on NewReno with the coupled increase installed.
    public var coupledCongestionControl = CoupledAlgorithm.uncoupled {
        didSet { if coupledCongestionControl != .uncoupled { tcp.congestionControl = .newReno } }
    }

    public init(tcp: TCPConfiguration = TCPConfiguration()) {
        var tcp = tcp
        tcp.nagle = false
        self.tcp = tcp
    }
}

/// What the connection asks its driver to do.
public enum MPTCPAction: Hashable, Sendable {
    /// Put `segment` on the wire from `tuple.local…` to `tuple.remote…`.
    case send(TCPSegment, TCPFourTuple)
    /// The whole connection is over (DATA_FIN exchanged, fast close, outage timeout, or reset).
    case closed(String)
}

/// One Multipath TCP connection (Linux `protocol.c`): subflows are TCP
/// engines with `SubflowOptions` installed; the data level (sender,
/// reassembly), the scheduler, the path manager, address signals, stale
/// detection and the make-after-break clock sit above them. Pure and
/// clock-injected like the engine.
public struct MPTCPConnection: Sendable {
    public enum Role: Hashable, Sendable { case active, passive }

    struct Subflow: Sendable {
        var tcp: TCPConnection
        var path: PathKey
        var backup: Bool
        var written = 0
        var consumed = 0
        var mapper: SubflowDataMapper?
        var lastProgress: Instant
        /// Bytes the subflow had acknowledged at the last look (named for history).
        var lastUnacknowledged = 0
        var timeoutsAtProgress = 0
        var health: StaleDetector.Verdict = .healthy
        var healthDeadline = Instant.distantFuture
        var reportedEstablished = false
        var closed = false

        var options: SubflowOptions {
            get { tcp.optionExtension as! SubflowOptions }
            set { tcp.optionExtension = newValue }
        }
    }

    public let role: Role
    public let configuration: MPTCPConfiguration
    public let localKey: UInt64
    public private(set) var keys: ConnectionKeys?
    var ownCounters = MPTCPCounters()
    /// The connection's counters, its subflows' option counters included.
    public var counters: MPTCPCounters {
        var total = ownCounters
        for s in subflows.values { total.add(s.options.counters) }
        return total
    }
    public private(set) var isClosed = false
    public private(set) var fallbackReason: FallbackReason?
    var subflows: [SubflowID: Subflow] = [:]
    var sender: DataSender?
    var reassembly: DataReassembly?
    var signals: AddressSignals?
    var scheduler: any PacketScheduler
    var pathManager: (any PathManager)?
    var outage: OutageClock
    var random: SeededRandom
    let isnGenerator: InitialSequenceNumberGenerator
    /// Our addresses by address id, and the peer's (id 0 is where we connected).
    public private(set) var localAddresses: [UInt8: [UInt8]] = [:]
    public private(set) var remoteAddresses: [UInt8: (address: [UInt8], port: UInt16)] = [:]
    var nextPort: UInt16 = 50_000
    var pendingWrites: [UInt8] = []
    var closeRequested = false

    // MARK: Opening

    /// Active open on the initial path (local address id 0 to remote address id 0).
    public static func connect(tuple: TCPFourTuple, configuration: MPTCPConfiguration, seed: UInt64,
                               now: Instant) -> (MPTCPConnection, [MPTCPAction]) {
        var c = MPTCPConnection(role: .active, configuration: configuration, seed: seed, tuple: tuple)
        let handshake = CapableHandshake(role: .active, localKey: c.localKey,
                                         configuration: .init(requestChecksums: configuration.requestChecksums))
        var tcp = TCPConnection(tuple: tuple, configuration: configuration.tcp, isnGenerator: c.isnGenerator)
        tcp.optionExtension = SubflowOptions(handshake: .capable(handshake))
        let id = SubflowID(0)
        let path = PathKey(localID: 0, remoteID: 0)
        c.subflows[id] = Subflow(tcp: tcp, path: path, backup: false, lastProgress: now)
        c.pathManager = PathManagers.make(configuration.pathManager, configuration: configuration.paths, initialPath: (id, path))
        var actions: [MPTCPAction] = []
        c.subflows[id]!.options.now = now
        actions += c.subflows[id]!.tcp.connect(now: now).map { c.wrap($0, id) }
        if var pm = c.pathManager {
            _ = pm.handle(.localAddressUp(AnnouncedAddress(id: 0, address: Self.ip(tuple.localAddress)), backup: false), now: now)
            c.pathManager = pm
        }
        return (c, actions)
    }

    /// Passive open: a SYN arrived at a listener. Returns nil when the SYN
    /// carries no usable MP_CAPABLE (the listener then runs plain TCP).
    public static func accept(syn: TCPSegment, tuple: TCPFourTuple, configuration: MPTCPConfiguration, seed: UInt64,
                              now: Instant) -> (MPTCPConnection, [MPTCPAction])? {
        var c = MPTCPConnection(role: .passive, configuration: configuration, seed: seed, tuple: tuple)
        var handshake = CapableHandshake(role: .passive, localKey: c.localKey,
                                         configuration: .init(requestChecksums: configuration.requestChecksums))
        guard let synAck = handshake.receivedSYN(MPTCPOptionReader.options(of: syn), counters: &c.ownCounters) else { return nil }
        var options = SubflowOptions(handshake: .capable(handshake))
        options.synAckOption = synAck
        options.now = now
        var tcp = TCPConnection(tuple: tuple, configuration: configuration.tcp, isnGenerator: c.isnGenerator)
        tcp.optionExtension = options
        tcp.listen()
        c.subflows[SubflowID(0)] = Subflow(tcp: tcp, path: PathKey(localID: 0, remoteID: 0), backup: false, lastProgress: now)
        let actions = c.subflows[SubflowID(0)]!.tcp.handle(syn, now: now).map { c.wrap($0, SubflowID(0)) }
        return (c, actions)
    }

    init(role: Role, configuration: MPTCPConfiguration, seed: UInt64, tuple: TCPFourTuple) {
        self.role = role
        self.configuration = configuration
        random = SeededRandom(seed: seed, stream: "mptcp")
        var table = TokenTable<Int>()
        localKey = table.newKey(using: &random)
        isnGenerator = InitialSequenceNumberGenerator(seed: seed)
        scheduler = Schedulers.make(configuration.scheduler) ?? MinRTTScheduler()
        outage = OutageClock(timeout: configuration.outageTimeout)
        localAddresses[0] = tuple.localAddress
        remoteAddresses[0] = (tuple.remoteAddress, tuple.remotePort)
    }

    static func ip(_ bytes: [UInt8]) -> IPAddress {
        bytes.count == 4 ? .v4(IPv4Address(bytes: bytes)!) : .v6(IPv6Address(bytes: bytes) ?? IPv6Address(high: 0, low: 0))
    }

    /// An MP_JOIN SYN for this connection (its token matched ours) arrived on `tuple`.
    public mutating func acceptJoin(syn: TCPSegment, tuple: TCPFourTuple, now: Instant) -> [MPTCPAction] {
        guard let keys else { return [] }
        var join: MPJoin?
        for case let .join(j) in MPTCPOptionReader.options(of: syn) { join = j }
        let localID = localAddresses.first { $0.value == tuple.localAddress }?.key ?? 0
        guard let join, case let .success(responder) = JoinResponder.accept(
            join, localAddressID: localID, nonce: UInt32(truncatingIfNeeded: random.next()),
            keysForToken: { $0 == keys.localToken ? keys : nil }, counters: &ownCounters) else {
            return TCPConnection.resetReply(to: syn).map { [.send($0, tuple)] } ?? []
        }
        var options = SubflowOptions(handshake: .joinResponder(responder))
        options.now = now
        options.checksums = sender != nil && checksums
        var tcp = TCPConnection(tuple: tuple, configuration: configuration.tcp, isnGenerator: isnGenerator)
        tcp.optionExtension = options
        tcp.listen()
        let id = SubflowID((subflows.keys.map(\.rawValue).max() ?? 0) + 1)
        subflows[id] = Subflow(tcp: tcp, path: PathKey(localID: localID, remoteID: responder.remoteAddressID),
                               backup: responder.remoteBackup, mapper: SubflowDataMapper(checksumsEnabled: checksums),
                               lastProgress: now)
        return subflows[id]!.tcp.handle(syn, now: now).map { wrap($0, id) }
    }

    /// The subflow a segment arriving on `tuple` (seen from this host) belongs to.
    public func subflow(for tuple: TCPFourTuple) -> SubflowID? {
        subflows.first { !$0.value.closed && $0.value.tcp.tuple.localPort == tuple.localPort
            && $0.value.tcp.tuple.remotePort == tuple.remotePort
            && $0.value.tcp.tuple.localAddress == tuple.localAddress && $0.value.tcp.tuple.remoteAddress == tuple.remoteAddress }?.key
    }

    public var token: UInt32? { keys?.localToken }
    var checksums = false

    // MARK: Application

    /// Queues bytes to send; they get data sequence numbers once the connection is established.
    public mutating func write(_ bytes: [UInt8]) {
        if sender != nil { sender!.write(bytes) } else { pendingWrites += bytes }
    }

    public mutating func read(maximum: Int = .max) -> [UInt8] {
        if fallbackReason != nil, let first = subflows.values.first(where: { !$0.closed }), reassembly == nil {
            _ = first
        }
        return reassembly?.read(maximum: maximum) ?? []
    }

    public var readableBytes: Int { reassembly?.readableBytes ?? 0 }
    public var peerClosed: Bool { reassembly?.dataFINReceived ?? false }
    public var allDataAcknowledged: Bool { sender.map { $0.bufferedBytes == 0 && pendingWrites.isEmpty } ?? false }

    /// No more data from us: a DATA_FIN follows what was written.
    public mutating func close() {
        closeRequested = true
        if sender != nil, pendingWrites.isEmpty { sender!.close() }
    }

    /// Tell the path manager about local addresses coming and going.
    public mutating func localAddress(_ event: PathEvent, address: [UInt8]? = nil, now: Instant) -> [MPTCPAction] {
        switch event {
        case let .localAddressUp(a, _): localAddresses[a.id] = address ?? a.address.bytes
        default: break
        }
        guard var pm = pathManager else { return service(now: now) }
        let actions = pm.handle(event, now: now)
        pathManager = pm
        return perform(actions, now: now) + service(now: now)
    }

    // MARK: Input and timers

    public mutating func handle(_ segment: TCPSegment, on id: SubflowID, now: Instant) -> [MPTCPAction] {
        guard subflows[id] != nil, !subflows[id]!.closed else { return [] }
        subflows[id]!.options.now = now
        var actions = subflows[id]!.tcp.handle(segment, now: now).map { wrap($0, id) }
        actions += service(now: now)
        return actions
    }

    public mutating func poll(now: Instant) -> [MPTCPAction] { service(now: now) }

    public var nextDeadline: Instant {
        var d = outage.nextDeadline
        for s in subflows.values where !s.closed {
            d = min(d, s.tcp.nextDeadline)
            d = min(d, s.healthDeadline)
        }
        if let pm = pathManager { d = min(d, pm.nextDeadline) }
        if let signals { d = min(d, signals.nextDeadline) }
        return d
    }

    func wrap(_ action: TCPAction, _ id: SubflowID) -> MPTCPAction {
        switch action {
        case let .send(segment): return .send(segment, subflows[id]!.tcp.tuple)
        case let .closed(reason): return .closed("subflow \(id.rawValue) \(reason)")
        }
    }

    /// Everything that follows an input: handshake results, arrivals, data
    /// delivery, health, timers, scheduling, and the engines' output.
    mutating func service(now: Instant) -> [MPTCPAction] {
        guard !isClosed else { return [] }
        var actions: [MPTCPAction] = []
        var pmEvents: [PathEvent] = []
        for id in subflows.keys.sorted() where !subflows[id]!.closed {
            subflows[id]!.options.now = now
            actions += absorb(id, now: now, events: &pmEvents)
        }
        // Path manager events and timers.
        if var pm = pathManager {
            var pmActions: [PathAction] = []
            for e in pmEvents { pmActions += pm.handle(e, now: now) }
            if now >= pm.nextDeadline { pmActions += pm.advance(now: now) }
            pathManager = pm
            actions += perform(pmActions, now: now)
        } else {
            // The passive side has no path manager: it reinjects on its own.
            for case let .subflowStale(id) in pmEvents { sender?.reinjectOutstanding(on: id, counters: &ownCounters) }
            for case let .subflowFailed(id) in pmEvents { sender?.reinjectOutstanding(on: id, counters: &ownCounters) }
        }
        if var s = signals {
            s.advance(now: now, counters: &ownCounters)
            signals = s
            actions += flushSignals(now: now)
        }
        // Make-after-break.
        let usable = subflows.values.filter { !$0.closed && $0.options.canSendData && $0.health != .stale }.count
        // The outage clock runs once the connection is up (the handshake has its own timers).
        if sender != nil { outage.update(usableSubflows: usable, now: now, counters: &ownCounters) }
        if outage.advance(now: now, counters: &ownCounters) {
            isClosed = true
            return actions + abortAll(now: now) + [.closed("no subflow for \(configuration.outageTimeout)")]
        }
        couple()
        actions += schedule(now: now)
        for id in subflows.keys.sorted() where !subflows[id]!.closed {
            actions += subflows[id]!.tcp.poll(now: now).map { wrap($0, id) }
        }
        if let sender, sender.dataFINAcknowledged, reassembly?.dataFINReceived == true, !isClosed {
            isClosed = true
            for id in subflows.keys.sorted() where !subflows[id]!.closed {
                subflows[id]!.tcp.close()
                actions += subflows[id]!.tcp.poll(now: now).map { wrap($0, id) }
            }
            actions.append(.closed("DATA_FIN exchanged"))
        }
        return actions
    }

    /// Reads what one subflow learnt and received.
    mutating func absorb(_ id: SubflowID, now: Instant, events: inout [PathEvent]) -> [MPTCPAction] {
        var actions: [MPTCPAction] = []
        var s = subflows[id]!
        var options = s.options
        // Handshake outcomes.
        if let rejection = options.rejection {
            s.closed = true
            subflows[id] = s
            events.append(.subflowFailed(id))
            return s.tcp.abort(now: now).map { _ in .send(rstFor(s.tcp, reason: rejection.reason), s.tcp.tuple) }
        }
        if keys == nil, case let .capable(c) = options.handshake, let k = c.keys {
            keys = k
            checksums = c.checksumsRequired
            options.checksums = checksums
            sender = DataSender(initialDataSequenceNumber: k.localIDSN, initialPeerWindow: configuration.receiveBuffer)
            reassembly = DataReassembly(remoteIDSN: k.remoteIDSN, capacity: configuration.receiveBuffer)
            signals = AddressSignals(keys: k, configuration: configuration.addressSignals)
            sender!.write(pendingWrites)
            pendingWrites.removeAll()
            if closeRequested { sender!.close() }
            s.mapper = SubflowDataMapper(checksumsEnabled: checksums)
            s.reportedEstablished = true
        }
        if case let .capable(c) = options.handshake, let reason = c.fallbackReason, fallbackReason == nil {
            // §3.7: the connection goes on as plain TCP over this one subflow.
            fallbackReason = reason
            if sender == nil {
                sender = DataSender(initialDataSequenceNumber: DataSequenceNumber(0), initialPeerWindow: configuration.receiveBuffer)
                reassembly = DataReassembly(remoteIDSN: DataSequenceNumber(0), capacity: configuration.receiveBuffer)
                sender!.write(pendingWrites)
                pendingWrites.removeAll()
                if closeRequested { sender!.close() }
                s.mapper = SubflowDataMapper(checksumsEnabled: false)
                s.mapper!.fallBack(anchoredAt: DataSequenceNumber(1))
                s.reportedEstablished = true
            }
        }
        // Arrivals: data ACKs, mappings, signals.
        let arrivals = options.arrivals
        options.arrivals.removeAll()
        for arrival in arrivals {
            for option in arrival.options {
                if case let .dss(dss) = option {
                    if let ack = dss.dataACK, var snd = sender {
                        let full = dss.dataACKIsEightBytes ? DataSequenceNumber(ack) : DataSequenceNumber.expand(UInt32(truncatingIfNeeded: ack), near: snd.unacknowledged)
                        _ = snd.acknowledge(full, window: configuration.receiveBuffer, counters: &ownCounters)
                        sender = snd
                    }
                    if let mapping = dss.mapping, var mapper = s.mapper, let r = reassembly {
                        let verdict = mapper.receive(mapping: mapping, dataFIN: dss.dataFIN, reference: r.expected, counters: &ownCounters)
                        s.mapper = mapper
                        if verdict == .conflict {
                            s.closed = true
                            subflows[id] = s
                            events.append(.subflowFailed(id))
                            return [.send(rstFor(s.tcp, reason: .mptcpError), s.tcp.tuple)]
                        }
                    }
                }
                if case let .capable(c) = option, let length = c.dataLevelLength, let k = keys, var mapper = s.mapper {
                    // §3.1: the first data's MP_CAPABLE maps it at IDSN + 1, subflow sequence 1.
                    _ = mapper.receive(mapping: DSSMapping(dataSequenceNumber: (k.remoteIDSN + 1).rawValue, subflowSequenceNumber: 1,
                                                           dataLevelLength: length, checksum: c.checksum),
                                       dataFIN: false, reference: k.remoteIDSN + 1, counters: &ownCounters)
                    s.mapper = mapper
                }
            }
            if var sig = signals {
                for event in sig.received(arrival.options, counters: &ownCounters) {
                    switch event {
                    case let .peerAddressAdded(a):
                        if let port = a.port ?? remoteAddresses[0]?.port { remoteAddresses[a.id] = (a.address.bytes, port) }
                        events.append(.peerAddressAdded(a))
                    case let .peerAddressRemoved(rid): events.append(.peerAddressRemoved(id: rid))
                    case let .peerPriorityChanged(backup): s.backup = backup
                    case .fastClose:
                        isClosed = true
                        subflows[id] = s
                        return abortAll(now: now) + [.closed("MP_FASTCLOSE")]
                    case .peerReset: break
                    }
                }
                signals = sig
            }
        }
        s.options = options
        // Fallback: the subflow is a plain TCP stream mapped one to one.
        if options.fallenBack, var mapper = s.mapper, !mapper.isInfinite, let k = keys {
            mapper.fallBack(anchoredAt: k.remoteIDSN + 1)
            s.mapper = mapper
        }
        // Subflow bytes into the data level.
        let bytes = s.tcp.receive()
        if !bytes.isEmpty, var mapper = s.mapper, var r = reassembly {
            let start = SequenceNumber(1) + s.consumed
            s.consumed += bytes.count
            for event in mapper.receive(subflowSequence: start, bytes, counters: &ownCounters) {
                switch event {
                case let .data(dsn, data): _ = r.receive(dsn, data, counters: &ownCounters)
                case let .dataFIN(dsn): _ = r.receiveDataFIN(at: dsn, counters: &ownCounters)
                case .checksumFailed: break
                }
            }
            for case let .dataFIN(dsn) in mapper.drain(counters: &ownCounters) { _ = r.receiveDataFIN(at: dsn, counters: &ownCounters) }
            s.mapper = mapper
            reassembly = r
        } else if var mapper = s.mapper, var r = reassembly {
            for case let .dataFIN(dsn) in mapper.drain(counters: &ownCounters) { _ = r.receiveDataFIN(at: dsn, counters: &ownCounters) }
            s.mapper = mapper
            reassembly = r
        }
        if var r = reassembly {
            // Move the connection-level window's right edge as the application reads (§3.3.4).
            _ = r.windowToAdvertise()
            reassembly = r
            s.options.dataACK = r.expected
        }
        // Fallback with one subflow: the data level is acknowledged by TCP itself.
        if options.fallenBack, var snd = sender {
            let target = snd.firstDataSequenceNumber + (s.written - s.tcp.unacknowledgedBytes)
            if target > snd.unacknowledged && target <= snd.nextNew {
                _ = snd.acknowledge(target, window: configuration.receiveBuffer, counters: &ownCounters)
            }
            // A DATA_FIN cannot be signalled without options: TCP's FIN carries it.
            // The peer may have closed first (CLOSE-WAIT): our FIN still follows our data.
            if snd.dataFINSequenceNumber != nil, snd.bufferedBytes == 0, s.tcp.state == .established || s.tcp.state == .closeWait {
                s.tcp.close()
            }
            sender = snd
        }
        // Joins become usable after their handshake.
        if !s.reportedEstablished && s.options.canSendData {
            s.reportedEstablished = true
            if s.mapper == nil { s.mapper = SubflowDataMapper(checksumsEnabled: checksums) }
            events.append(.subflowEstablished(id))
            // §3.2: the responder's ACK of the third ACK is the fourth ACK.
            if case .joinResponder = s.options.handshake { actions += s.tcp.sendAcknowledgment(now: now).map { .send(extract($0), s.tcp.tuple) } }
        }
        // Progress and health.
        let unacked = s.tcp.unacknowledgedBytes
        // Progress: the subflow's cumulative acknowledged bytes grew, or it was idle.
        let acknowledged = s.written - unacked
        if acknowledged > s.lastUnacknowledged || unacked == 0 {
            s.lastProgress = now
            s.timeoutsAtProgress = s.tcp.counters.retransmissionTimeouts
        }
        s.lastUnacknowledged = acknowledged
        let verdict = configuration.staleDetector.verdict(
            now: now, bytesInFlight: unacked, lastProgress: s.lastProgress, smoothedRTT: s.tcp.smoothedRTT,
            timeoutsWithoutProgress: s.tcp.counters.retransmissionTimeouts - s.timeoutsAtProgress)
        if verdict == .stale && s.health != .stale { ownCounters.staleEvents += 1; events.append(.subflowStale(id)) }
        if verdict != .stale && s.health == .stale { ownCounters.staleRecoveries += 1; events.append(.subflowRecovered(id)) }
        s.health = verdict
        s.healthDeadline = configuration.staleDetector.nextDeadline(
            bytesInFlight: unacked, lastProgress: s.lastProgress, smoothedRTT: s.tcp.smoothedRTT, now: now)
        if s.tcp.state == .closed && s.reportedEstablished {
            s.closed = true
            ownCounters.subflowsFailed += 1
            events.append(.subflowFailed(id))
        }
        subflows[id] = s
        return actions
    }

    func extract(_ a: TCPAction) -> TCPSegment {
        if case let .send(seg) = a { return seg }
        return TCPSegment(sourcePort: 0, destinationPort: 0, sequenceNumber: SequenceNumber(0), flags: [], window: 0)
    }

    func rstFor(_ tcp: TCPConnection, reason: ResetReason) -> TCPSegment {
        TCPSegment(sourcePort: tcp.tuple.localPort, destinationPort: tcp.tuple.remotePort, sequenceNumber: SequenceNumber(0),
                   flags: .rst, window: 0, options: [.mptcp(reason.option())])
    }

    mutating func abortAll(now: Instant) -> [MPTCPAction] {
        var actions: [MPTCPAction] = []
        for id in subflows.keys.sorted() where !subflows[id]!.closed {
            actions += subflows[id]!.tcp.abort(now: now).compactMap { if case let .send(seg) = $0 { return .send(seg, subflows[id]!.tcp.tuple) } else { return nil } }
            subflows[id]!.closed = true
        }
        return actions
    }

    /// Carries out what the path manager decided.
    mutating func perform(_ pathActions: [PathAction], now: Instant) -> [MPTCPAction] {
        var actions: [MPTCPAction] = []
        for action in pathActions {
            switch action {
            case let .openSubflow(id, path, backup):
                guard let keys, let local = localAddresses[path.localID], let remote = remoteAddresses[path.remoteID] else { continue }
                nextPort = nextPort == .max ? 50_000 : nextPort + 1
                let tuple = TCPFourTuple(localAddress: local, localPort: nextPort, remoteAddress: remote.address, remotePort: remote.port)
                var options = SubflowOptions(handshake: .joinInitiator(JoinInitiator(
                    keys: keys, localAddressID: path.localID, backup: backup, nonce: UInt32(truncatingIfNeeded: random.next()))))
                options.now = now
                options.checksums = checksums
                var tcp = TCPConnection(tuple: tuple, configuration: configuration.tcp, isnGenerator: isnGenerator)
                tcp.optionExtension = options
                subflows[id] = Subflow(tcp: tcp, path: path, backup: backup, lastProgress: now)
                actions += subflows[id]!.tcp.connect(now: now).map { wrap($0, id) }
            case let .closeSubflow(id, reason):
                guard var s = subflows[id], !s.closed else { continue }
                _ = s.tcp.abort(now: now)
                s.closed = true
                subflows[id] = s
                actions.append(.send(rstFor(s.tcp, reason: reason), s.tcp.tuple))
            case let .setBackup(id, backup):
                guard subflows[id] != nil, !subflows[id]!.closed else { continue }
                subflows[id]!.backup = backup
                signals?.setPriority(backup: backup, counters: &ownCounters)
                actions += flushSignals(now: now, preferring: id)
            case let .reinject(id):
                sender?.reinjectOutstanding(on: id, counters: &ownCounters)
            case let .announce(address):
                signals?.announce(address, now: now, counters: &ownCounters)
            case let .withdraw(id):
                signals?.withdraw(ids: [id], counters: &ownCounters)
            }
        }
        return actions + flushSignals(now: now)
    }

    /// Moves queued signal options onto a usable subflow and sends a pure ACK to carry them.
    mutating func flushSignals(now: Instant, preferring preferred: SubflowID? = nil) -> [MPTCPAction] {
        guard var sig = signals, !sig.queued.isEmpty else { return [] }
        let candidates = subflows.keys.sorted().filter { !subflows[$0]!.closed && subflows[$0]!.options.canSendData && subflows[$0]!.health != .stale }
        guard let id = preferred.flatMap({ candidates.contains($0) ? $0 : nil }) ?? candidates.first else { return [] }
        let options = sig.takeQueued(room: 40)
        signals = sig
        subflows[id]!.options.signals += options
        return subflows[id]!.tcp.sendAcknowledgment(now: now).map { wrap($0, id) }
    }

    /// Refreshes every subflow's coupled increase with the others' windows and
    /// RTTs (RFC 6356 §3: the increase of one depends on all).
    mutating func couple() {
        let algorithm = configuration.coupledCongestionControl
        guard algorithm != .uncoupled else { return }
        let ids = subflows.keys.sorted().filter { !subflows[$0]!.closed && subflows[$0]!.options.canSendData }
        let states = ids.map { id -> CoupledSubflow in
            let t = subflows[id]!.tcp
            return CoupledSubflow(congestionWindow: t.congestionWindow, smoothedRTT: t.smoothedRTT ?? .milliseconds(100),
                                  maximumSegmentSize: t.sendMaximumSegmentSize)
        }
        for (index, id) in ids.enumerated() {
            guard var reno = subflows[id]!.tcp.congestion as? NewReno else { continue }
            reno.coupling = CoupledSubflowIncrease(algorithm: algorithm, subflows: states, index: index)
            subflows[id]!.tcp.installCongestionControl(reno)
        }
    }

    /// Whether subflow `id` currently runs a coupled increase (for tests and reports).
    public func isCoupled(_ id: SubflowID) -> Bool {
        (subflows[id]?.tcp.congestion as? NewReno)?.coupling != nil
    }

    /// Hands data chunks to subflows as the scheduler decides.
    mutating func schedule(now: Instant) -> [MPTCPAction] {
        guard var snd = sender else { return [] }
        defer { sender = snd }
        var rounds = 0
        while snd.hasDataToSend && rounds < 256 {
            rounds += 1
            let snapshots = subflows.keys.sorted().compactMap { id -> SubflowSnapshot? in
                let s = subflows[id]!
                guard !s.closed else { return nil }
                let mss = s.tcp.sendMaximumSegmentSize
                let usable = s.options.canSendData && s.health != .stale && s.tcp.unsentBytes == 0
                    && (s.tcp.state == .established || s.tcp.state == .closeWait)
                return SubflowSnapshot(id: id, smoothedRTT: s.tcp.smoothedRTT, congestionWindow: s.tcp.congestionWindow,
                                       bytesInFlight: min(s.tcp.congestionWindow, s.tcp.unacknowledgedBytes + (usable ? 0 : s.tcp.congestionWindow)),
                                       maximumSegmentSize: mss, isBackup: s.backup, isUsable: usable,
                                       isSuspect: s.health == .suspect)
            }
            let chosen = scheduler.subflows(for: snapshots, queuedBytes: snd.unsentBytes)
            guard let first = chosen.first, let snap = snapshots.first(where: { $0.id == first }) else { break }
            let mss = snap.maximumSegmentSize
            // One segment more than the window has room for: the engine then stops
            // because of its congestion window, not for want of data, and so may
            // grow it (RFC 7661 §4.1 keeps a window that is not used from growing).
            let room = min(snap.space + mss, configuration.chunkSegments * mss, subflows[first]!.tcp.sendBufferSpace)
            let length = room >= mss ? room / mss * mss : room
            guard length > 0, let chunk = snd.nextChunk(for: first, maximumLength: length) else { break }
            for id in chosen {
                if id != first { snd.record(chunk, on: id) }
                var s = subflows[id]!
                let start = SequenceNumber(1) + s.written
                if chunk.bytes.isEmpty {
                    s.options.bareDataFIN = chunk
                } else {
                    s.options.map(chunk, at: start)
                    s.written += s.tcp.send(chunk.bytes)
                }
                s.options.dataACK = reassembly?.expected
                subflows[id] = s
            }
            if chunk.bytes.isEmpty {
                var out: [MPTCPAction] = []
                for id in chosen { out += subflows[id]!.tcp.sendAcknowledgment(now: now).map { wrap($0, id) } }
                return out
            }
        }
        return []
    }
}
