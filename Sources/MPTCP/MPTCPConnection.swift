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
    /// Connection-level receive buffer (§3.3.4). Its free space, relative to
    /// the data ACK, is the window every subflow advertises; the peer's
    /// window is read the same way (§3.3.5).
    public var receiveBuffer = 4 << 20
    /// Passive side: our other addresses, announced with ADD_ADDR once the
    /// connection is established so the peer can join to them (§3.4.1).
    public var announcedAddresses: [AnnouncedAddress] = []
    /// How long a DATA_FIN waits for its data ACK before it is sent again
    /// (doubling each time; §3.3.3). The subflows' RTO is used when larger.
    public var dataFINRetransmissionInterval: Interval = .milliseconds(200)
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
        var lossIntervals = LossIntervals()

        var options: SubflowOptions {
            get { tcp.optionExtension as! SubflowOptions }
            set { tcp.optionExtension = newValue }
            // In place: taken out of the engine while it changes, so that its
            // arrays (outgoing mappings) are uniquely referenced and an append
            // does not copy them (the copies were a quarter of a simulated run's time).
            _modify {
                var o = tcp.optionExtension as! SubflowOptions
                tcp.optionExtension = nil
                defer { tcp.optionExtension = o }
                yield &o
            }
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
    /// Where our stream became plain TCP: subflow bytes written before it
    /// and the data sequence number of the next byte (§3.7).
    var fallbackAnchor: (subflowOffset: Int, dataSequenceNumber: DataSequenceNumber)?
    /// The right edge of the connection-level window the peer last heard.
    var advertisedEdge: DataSequenceNumber?
    var windowUpdateOwed = false
    var dataFINDeadline = Instant.distantFuture
    var dataFINBackoff = 0
    var windowProbeDeadline = Instant.distantFuture
    var windowProbeBackoff = 0

    /// Subflows run with a receive buffer at least the connection's: the
    /// window they advertise is the connection-level one (§3.3.4).
    var subflowTCP: TCPConfiguration {
        var t = configuration.tcp
        t.receiveBufferSize = max(t.receiveBufferSize, configuration.receiveBuffer)
        return t
    }

    // MARK: Opening

    /// Active open on the initial path (local address id 0 to remote address id 0).
    public static func connect(tuple: TCPFourTuple, configuration: MPTCPConfiguration, seed: UInt64,
                               now: Instant) -> (MPTCPConnection, [MPTCPAction]) {
        var c = MPTCPConnection(role: .active, configuration: configuration, seed: seed, tuple: tuple)
        let handshake = CapableHandshake(role: .active, localKey: c.localKey,
                                         configuration: .init(requestChecksums: configuration.requestChecksums))
        var tcp = TCPConnection(tuple: tuple, configuration: c.subflowTCP, isnGenerator: c.isnGenerator)
        var options = SubflowOptions(handshake: .capable(handshake))
        // §3.3.4: even the SYN offers no more than the connection-level buffer.
        options.connectionWindow = configuration.receiveBuffer
        tcp.optionExtension = options
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
        options.connectionWindow = configuration.receiveBuffer
        options.now = now
        var tcp = TCPConnection(tuple: tuple, configuration: c.subflowTCP, isnGenerator: c.isnGenerator)
        tcp.optionExtension = options
        tcp.listen()
        c.subflows[SubflowID(0)] = Subflow(tcp: tcp, path: PathKey(localID: 0, remoteID: 0), backup: false, lastProgress: now)
        let actions = c.subflows[SubflowID(0)]!.tcp.handle(syn, now: now).map { c.wrap($0, SubflowID(0)) }
        return (c, actions)
    }

    /// Passive fallback (§3.7): a SYN without a usable MP_CAPABLE arrived at
    /// a listener that also serves plain TCP. The connection runs as plain
    /// TCP on this one subflow, with the same application interface. Returns
    /// nil when the SYN is MP_CAPABLE (use `accept`).
    public static func acceptPlainTCP(syn: TCPSegment, tuple: TCPFourTuple, configuration: MPTCPConfiguration, seed: UInt64,
                                      now: Instant) -> (MPTCPConnection, [MPTCPAction])? {
        var c = MPTCPConnection(role: .passive, configuration: configuration, seed: seed, tuple: tuple)
        var handshake = CapableHandshake(role: .passive, localKey: c.localKey,
                                         configuration: .init(requestChecksums: configuration.requestChecksums))
        var probe = MPTCPCounters()
        guard handshake.receivedSYN(MPTCPOptionReader.options(of: syn), counters: &probe) == nil else { return nil }
        c.ownCounters.fallbackPassive += 1
        var options = SubflowOptions(handshake: .capable(handshake))
        options.fallenBack = true
        options.now = now
        var tcp = TCPConnection(tuple: tuple, configuration: c.subflowTCP, isnGenerator: c.isnGenerator)
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
        var tcp = TCPConnection(tuple: tuple, configuration: subflowTCP, isnGenerator: isnGenerator)
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
        guard var r = reassembly else { return [] }
        let bytes = r.read(maximum: maximum)
        // §3.3.4: reading opens the connection-level window; when half the
        // buffer opened since the peer last heard, tell it unasked.
        if let edge = advertisedEdge, (r.expected + r.window) - edge >= r.capacity / 2 { windowUpdateOwed = true }
        reassembly = r
        return bytes
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
        guard var pm = pathManager else {
            // §3.4.1/§3.4.2: the passive side has no path manager of its own; it
            // announces an address that comes up (the peer may join it) and
            // withdraws one that goes, as Linux's in-kernel PM does for `signal` endpoints.
            if role == .passive, signals != nil, !isClosed {
                switch event {
                case let .localAddressUp(a, _) where a.id != 0: signals!.announce(a, now: now, counters: &ownCounters)
                case let .localAddressDown(id) where id != 0: signals!.withdraw(ids: [id], counters: &ownCounters)
                default: break
                }
                return flushSignals(now: now) + service(now: now)
            }
            return service(now: now)
        }
        let actions = pm.handle(event, now: now)
        pathManager = pm
        return perform(actions, now: now) + service(now: now)
    }

    // MARK: Input and timers

    public mutating func handle(_ segment: TCPSegment, on id: SubflowID, now: Instant) -> [MPTCPAction] {
        guard subflows[id] != nil, !subflows[id]!.closed else { return [] }
        subflows[id]!.options.now = now
        let engine = subflows[id]!.tcp.handle(segment, now: now)
        let rest = service(now: now)
        return freshen(engine, on: id).map { wrap($0, id) } + rest
    }

    /// The engine acknowledges inside `handle`, before the data level has
    /// taken the segment's bytes: its DSS would carry the data ACK from
    /// before them. Segments not yet on the wire get the data ACK as it is
    /// now (cumulative, so only ever larger), and a window cut so that its
    /// right edge stays where it was (§3.3.5: relative to the data ACK).
    func freshen(_ actions: [TCPAction], on id: SubflowID) -> [TCPAction] {
        guard let r = reassembly, let s = subflows[id] else { return actions }
        let shift = Int(s.tcp.receiveWindowShift)
        let window = max(0, Int(r.advertisedRightEdge - r.expected))
        return actions.map { action in
            guard case var .send(segment) = action else { return action }
            for i in segment.options.indices {
                guard case var .mptcp(.dss(dss)) = segment.options[i], let ack = dss.dataACK, dss.dataACKIsEightBytes,
                      DataSequenceNumber(ack) < r.expected else { continue }
                dss.dataACK = r.expected.rawValue
                segment.options[i] = .mptcp(.dss(dss))
                segment.window = min(segment.window, UInt16(clamping: window >> shift))
            }
            return .send(segment)
        }
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
        if !isClosed {
            d = min(d, dataFINDeadline, windowProbeDeadline)
            // A window update is owed: poll at once.
            if windowUpdateOwed { d = .zero }
        }
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
            // RFC 8684 §3.4.2: the peer withdrew an address; its subflows there
            // are closed (as Linux's mptcp_pm_nl_rm_addr_or_subflow does) and
            // what they carried goes again on the others.
            for case let .peerAddressRemoved(rid) in pmEvents {
                let gone = subflows.keys.sorted().filter { !subflows[$0]!.closed && subflows[$0]!.path.remoteID == rid }
                for id in gone { sender?.reinjectOutstanding(on: id, counters: &ownCounters) }
                actions += perform(gone.map { .closeSubflow($0, reason: .unspecified) }, now: now)
            }
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
        actions += dataLevelTimers(now: now)
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
        s.options.settleRefused()
        var options = s.options
        // Handshake outcomes.
        if let rejection = options.rejection {
            subflows[id] = s
            events.append(.subflowFailed(id))
            return reset(id, reason: rejection.reason, now: now)
        }
        if keys == nil, case let .capable(c) = options.handshake, let k = c.keys {
            keys = k
            checksums = c.checksumsRequired
            options.checksums = checksums
            // The peer's window until its first data ACK: the window of its SYN/ACK or third ACK.
            sender = DataSender(initialDataSequenceNumber: k.localIDSN, initialPeerWindow: s.tcp.sendWindow)
            reassembly = DataReassembly(remoteIDSN: k.remoteIDSN, capacity: configuration.receiveBuffer)
            signals = AddressSignals(keys: k, configuration: configuration.addressSignals)
            sender!.write(pendingWrites)
            pendingWrites.removeAll()
            if closeRequested { sender!.close() }
            s.mapper = SubflowDataMapper(checksumsEnabled: checksums)
            s.reportedEstablished = true
            // §3.4.1: the passive side announces its other addresses itself.
            for a in configuration.announcedAddresses where role == .passive {
                localAddresses[a.id] = a.address.bytes
                signals!.announce(a, now: now, counters: &ownCounters)
            }
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
            if fallbackAnchor == nil, let snd = sender { fallbackAnchor = (0, snd.firstDataSequenceNumber) }
        }
        let finBefore = reassembly?.dataFINReceived ?? false
        var acknowledgeNow = false
        var failAt: DataSequenceNumber?
        // Arrivals: data ACKs, mappings, signals.
        let arrivals = options.arrivals
        options.arrivals.removeAll()
        for arrival in arrivals {
            for option in arrival.options {
                if case let .dss(dss) = option {
                    if let ack = dss.dataACK, var snd = sender {
                        sender = nil // `snd` alone holds the buffer: no copy on mutation
                        let full = dss.dataACKIsEightBytes ? DataSequenceNumber(ack) : DataSequenceNumber.expand(UInt32(truncatingIfNeeded: ack), near: snd.unacknowledged)
                        // §3.3.5: the window field is relative to the data ACK of the same segment.
                        let window = Int(arrival.window) << Int(s.tcp.sendWindowShift)
                        _ = snd.acknowledge(full, window: window, counters: &ownCounters)
                        sender = snd
                    }
                    // §3.3.3: a DATA_FIN seen again means our data ACK of it was lost.
                    if dss.dataFIN && finBefore { acknowledgeNow = true }
                    if let mapping = dss.mapping, var mapper = s.mapper, let r = reassembly {
                        let verdict = mapper.receive(mapping: mapping, dataFIN: dss.dataFIN, reference: r.expected,
                                                     carriedAt: arrival.subflowSequence, counters: &ownCounters)
                        s.mapper = mapper
                        if verdict == .conflict {
                            subflows[id] = s
                            events.append(.subflowFailed(id))
                            return reset(id, reason: .mptcpError, now: now)
                        }
                        if verdict == .infinite && fallbackReason == nil, let snd = sender {
                            // §3.7: the peer answered our MP_FAIL; our own stream goes on unmapped too.
                            fallbackReason = .checksumFailure
                            fallbackAnchor = (s.written, snd.nextNew)
                            options.infiniteMapping = (SequenceNumber(1) + s.written, snd.nextNew)
                            options.fallenBack = true
                            if case var .capable(c) = options.handshake {
                                c.fallBackAfterChecksumFailure(counters: &ownCounters)
                                options.handshake = .capable(c)
                            }
                            acknowledgeNow = true
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
                if case .fail = option { ownCounters.mpFailsReceived += 1 }
                // On a RST, MP_FAIL only says why the subflow is gone (its data is reinjected).
                if case let .fail(raw) = option, !arrival.flags.contains(.rst), var snd = sender {
                    let dsn = DataSequenceNumber.expand(UInt32(truncatingIfNeeded: raw), near: snd.unacknowledged)
                    if otherUsableSubflows(than: id) > 0 || fallbackReason != nil || dsn < snd.unacknowledged || dsn > snd.nextNew {
                        // §3.7: with other subflows the failing one is reset; its data is reinjected.
                        s.options = options
                        subflows[id] = s
                        events.append(.subflowFailed(id))
                        return reset(id, reason: .middleboxInterference, now: now)
                    }
                    // §3.7: the only subflow: answer with the infinite mapping from
                    // the failed DSN and go on as plain TCP, sending again from there.
                    snd.rewind(to: dsn)
                    sender = snd
                    fallbackReason = .checksumFailure
                    fallbackAnchor = (s.written, dsn)
                    options.infiniteMapping = (SequenceNumber(1) + s.written, dsn)
                    options.fallenBack = true
                    if case var .capable(c) = options.handshake {
                        c.fallBackAfterChecksumFailure(counters: &ownCounters)
                        options.handshake = .capable(c)
                    }
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
        if options.fallenBack, options.infiniteMapping == nil, var mapper = s.mapper, !mapper.isInfinite, let k = keys {
            mapper.fallBack(anchoredAt: k.remoteIDSN + 1)
            s.mapper = mapper
        }
        // Subflow bytes into the data level.
        let bytes = s.tcp.receive()
        if !bytes.isEmpty, var mapper = s.mapper, var r = reassembly {
            reassembly = nil // `r` alone holds the buffer: appending does not copy it
            let start = SequenceNumber(1) + s.consumed
            s.consumed += bytes.count
            for event in mapper.receive(subflowSequence: start, bytes, counters: &ownCounters) {
                switch event {
                case let .data(dsn, data): _ = r.receive(dsn, data, counters: &ownCounters)
                case let .dataFIN(dsn): _ = r.receiveDataFIN(at: dsn, counters: &ownCounters)
                case let .checksumFailed(dsn): if failAt == nil { failAt = dsn }
                }
            }
            for case let .dataFIN(dsn) in mapper.drain(counters: &ownCounters) { _ = r.receiveDataFIN(at: dsn, counters: &ownCounters) }
            s.mapper = mapper
            reassembly = r
        } else if var mapper = s.mapper, var r = reassembly {
            reassembly = nil
            for case let .dataFIN(dsn) in mapper.drain(counters: &ownCounters) { _ = r.receiveDataFIN(at: dsn, counters: &ownCounters) }
            s.mapper = mapper
            reassembly = r
        }
        // In fallback the TCP FIN is the DATA_FIN (no option can carry it).
        if fallbackReason != nil, s.tcp.isReceiveFinished, s.mapper?.unmappedBytes == 0, var r = reassembly, !r.dataFINReceived {
            _ = r.receiveDataFIN(at: r.expected, counters: &ownCounters)
            reassembly = r
        }
        if let dsn = failAt {
            // §3.7: a DSS checksum failed.
            switch ChecksumFailurePolicy.respond(toFailureAt: dsn, otherSubflows: otherUsableSubflows(than: id)) {
            case .resetSubflow:
                ownCounters.checksumFailureResets += 1
                ownCounters.mpFailsSent += 1
                subflows[id] = s
                events.append(.subflowFailed(id))
                return actions + reset(id, reason: .middleboxInterference, extra: [.fail(dataSequenceNumber: dsn.rawValue)], now: now)
            case let .sendFailAndFallBack(at):
                // MP_FAIL names the failed mapping; the peer answers with an infinite mapping.
                ownCounters.mpFailsSent += 1
                s.options.signals.append(.fail(dataSequenceNumber: at.rawValue))
                acknowledgeNow = true
            }
        }
        if var r = reassembly {
            reassembly = nil
            // Move the connection-level window's right edge as the application reads (§3.3.4).
            let window = r.windowToAdvertise()
            reassembly = r
            s.options.dataACK = r.expected
            s.options.connectionWindow = window
            advertisedEdge = r.expected + window
            if r.dataFINReceived && !finBefore { acknowledgeNow = true }
        }
        // Fallback: the data level is acknowledged by TCP itself from the anchor on.
        if fallbackReason != nil, let anchor = fallbackAnchor, var snd = sender, !s.closed {
            let acknowledged = s.written - s.tcp.unacknowledgedBytes
            if acknowledged >= anchor.subflowOffset {
                let target = anchor.dataSequenceNumber + (acknowledged - anchor.subflowOffset)
                if target > snd.unacknowledged && target <= snd.nextNew {
                    _ = snd.acknowledge(target, window: configuration.receiveBuffer, counters: &ownCounters)
                }
                if acknowledged > anchor.subflowOffset { s.options.infiniteMappingConfirmed = true }
            }
            if let fin = snd.dataFINSequenceNumber, snd.bufferedBytes == 0 {
                // A DATA_FIN cannot be signalled without options: TCP's FIN carries it.
                if s.tcp.state == .established || s.tcp.state == .closeWait { s.tcp.close() }
                // TCP acknowledged our FIN: the DATA_FIN is acknowledged too.
                if [.finWait2, .timeWait].contains(s.tcp.state) || (s.tcp.state == .closed && s.tcp.closeReason == .normal) {
                    if snd.nextNew == fin { _ = snd.nextChunk(for: id, maximumLength: 1) } // the DATA_FIN, as the FIN sent it
                    _ = snd.acknowledge(fin + 1, window: nil, counters: &ownCounters)
                }
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
        if acknowledgeNow { actions += s.tcp.sendAcknowledgment(now: now).map { .send(extract($0), s.tcp.tuple) } }
        // Progress and health.
        let unacked = s.tcp.unacknowledgedBytes
        // Progress: the subflow's cumulative acknowledged bytes grew, or it was idle.
        let acknowledged = s.written - unacked
        // A closed peer window is no dead path: the peer answers the window
        // probes (RFC 9293 §3.8.6.1), it only cannot take more yet.
        if acknowledged > s.lastUnacknowledged || unacked == 0 || s.tcp.sendWindow == 0 {
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

    /// What the data level sends on its own: window updates after reads
    /// (§3.3.4), the DATA_FIN again until acknowledged (§3.3.3), and probes
    /// of a closed connection-level window.
    mutating func dataLevelTimers(now: Instant) -> [MPTCPAction] {
        guard let snd = sender else { return [] }
        var out: [MPTCPAction] = []
        let usable = subflows.keys.sorted().filter {
            let s = subflows[$0]!
            return !s.closed && s.options.canSendData && s.health != .stale && (s.tcp.state == .established || s.tcp.state == .closeWait)
        }
        let timeout = max(.milliseconds(200), usable.map { subflows[$0]!.tcp.retransmissionTimeout }.max() ?? .zero)
        func refresh(_ id: SubflowID) {
            guard var r = reassembly else { return }
            let window = r.windowToAdvertise()
            reassembly = r
            subflows[id]!.options.dataACK = r.expected
            subflows[id]!.options.connectionWindow = window
            advertisedEdge = r.expected + window
        }
        if windowUpdateOwed {
            windowUpdateOwed = false
            if let id = usable.first {
                refresh(id)
                out += subflows[id]!.tcp.sendAcknowledgment(now: now).map { wrap($0, id) }
            }
        }
        // §3.3.3: a DATA_FIN is acknowledged at the data level; until then it
        // goes again on its own timer, in turn on every usable subflow.
        if fallbackReason == nil, let fin = snd.dataFINSequenceNumber, snd.nextNew > fin, !snd.dataFINAcknowledged {
            if dataFINDeadline == .distantFuture {
                dataFINDeadline = now + timeout
            } else if now >= dataFINDeadline {
                if snd.unacknowledged == fin, !usable.isEmpty {
                    let id = usable[dataFINBackoff % usable.count]
                    refresh(id)
                    subflows[id]!.options.bareDataFIN = DataChunk(dataSequenceNumber: fin, bytes: [], dataFIN: true)
                    out += subflows[id]!.tcp.sendAcknowledgment(now: now).map { wrap($0, id) }
                    ownCounters.dataFINRetransmissions += 1
                }
                dataFINBackoff += 1
                dataFINDeadline = now + timeout * Int64(1 << min(dataFINBackoff, 6))
            }
        } else {
            dataFINDeadline = .distantFuture
            dataFINBackoff = 0
        }
        // A closed connection-level window with nothing in flight: nothing
        // would ever bring the update if it was lost, so probe for it.
        if fallbackReason == nil, snd.unsentBytes > 0, !snd.hasReinjectionPending, snd.bytesInFlight == 0,
           snd.peerWindowRightEdge <= snd.nextNew {
            if windowProbeDeadline == .distantFuture {
                windowProbeDeadline = now + timeout
            } else if now >= windowProbeDeadline {
                if let id = usable.first {
                    out += subflows[id]!.tcp.sendWindowProbe(now: now).map { wrap($0, id) }
                    ownCounters.dataWindowProbes += 1
                }
                windowProbeBackoff += 1
                windowProbeDeadline = now + timeout * Int64(1 << min(windowProbeBackoff, 8))
            }
        } else {
            windowProbeDeadline = .distantFuture
            windowProbeBackoff = 0
        }
        return out
    }

    /// Established subflows other than `id` that can carry data.
    func otherUsableSubflows(than id: SubflowID) -> Int {
        subflows.filter { $0.key != id && !$0.value.closed && $0.value.options.canSendData && $0.value.tcp.state.isSynchronized }.count
    }

    /// Aborts subflow `id` with a RST that says why (MP_TCPRST, §3.6), plus
    /// `extra` options (MP_FAIL after a checksum failure, §3.7). The RST
    /// carries SND.NXT so the peer's RFC 5961 check accepts it.
    mutating func reset(_ id: SubflowID, reason: ResetReason, extra: [MPTCPOption] = [], now: Instant) -> [MPTCPAction] {
        guard var s = subflows[id], !s.closed else { return [] }
        var out: [MPTCPAction] = []
        for case var .send(segment) in s.tcp.abort(now: now) where segment.flags.contains(.rst) {
            segment.options += ([reason.option()] + extra).map { .mptcp($0) }
            out.append(.send(segment, s.tcp.tuple))
            ownCounters.resetsSent += 1
        }
        s.closed = true
        subflows[id] = s
        return out
    }

    func extract(_ a: TCPAction) -> TCPSegment {
        if case let .send(seg) = a { return seg }
        return TCPSegment(sourcePort: 0, destinationPort: 0, sequenceNumber: SequenceNumber(0), flags: [], window: 0)
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
                var tcp = TCPConnection(tuple: tuple, configuration: subflowTCP, isnGenerator: isnGenerator)
                tcp.optionExtension = options
                subflows[id] = Subflow(tcp: tcp, path: path, backup: backup, lastProgress: now)
                actions += subflows[id]!.tcp.connect(now: now).map { wrap($0, id) }
            case let .closeSubflow(id, reason):
                actions += reset(id, reason: reason, now: now)
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
        var states: [CoupledSubflow] = []
        for id in ids {
            let t = subflows[id]!.tcp
            // OLIA's ℓ_r from the subflow's acknowledged bytes and losses.
            let acknowledged = subflows[id]!.written - t.unacknowledgedBytes
            subflows[id]!.lossIntervals.update(acknowledgedBytes: acknowledged,
                                               losses: t.counters.fastRecoveries + t.counters.retransmissionTimeouts)
            states.append(CoupledSubflow(congestionWindow: t.congestionWindow, smoothedRTT: t.smoothedRTT ?? .milliseconds(100),
                                         maximumSegmentSize: t.sendMaximumSegmentSize,
                                         bytesBetweenLosses: subflows[id]!.lossIntervals.bytesBetweenLosses(acknowledgedBytes: acknowledged)))
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
        sender = nil // `snd` alone holds the buffer while chunks are cut
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
                                       bytesInFlight: min(s.tcp.congestionWindow, s.tcp.bytesInFlight + (usable ? 0 : s.tcp.congestionWindow)),
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
                // Changed in place in the dictionary: a copy taken out and put back
                // shares the send buffer and the mappings, so every append copied them.
                let start = SequenceNumber(1) + subflows[id]!.written
                if chunk.bytes.isEmpty {
                    subflows[id]!.options.bareDataFIN = chunk
                } else {
                    subflows[id]!.options.map(chunk, at: start)
                    let sent = subflows[id]!.tcp.send(chunk.bytes)
                    subflows[id]!.written += sent
                }
                subflows[id]!.options.dataACK = reassembly?.expected
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
