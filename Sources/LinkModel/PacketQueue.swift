import Core

/// CoDel's two knobs (RFC 8289 §4.2–4.3).
public struct CoDelParameters: Hashable, Sendable {
    /// Acceptable standing queue delay (RFC 8289 §4.4: 5 ms).
    public var target: Interval
    /// Window over which the delay must stay above target before dropping starts
    /// (RFC 8289 §4.3: 100 ms, "on the order of a worst-case RTT").
    public var interval: Interval
    /// A queue holding at most this many bytes is never dropped from (RFC 8289 §5.4:
    /// one maximum-size packet, so a lone packet is not punished for a slow link).
    public var maximumPacketBytes: Int

    public init(target: Interval = .milliseconds(5), interval: Interval = .milliseconds(100),
                maximumPacketBytes: Int = 1500) {
        self.target = target; self.interval = interval; self.maximumPacketBytes = maximumPacketBytes
    }
}

/// The queue in front of a bottleneck: drop-tail in packets and/or bytes, with
/// CoDel (RFC 8289) as an option on top of the limits.
public struct PacketQueue<Packet: LinkPacket> {
    /// Drop-tail limit in packets (`nil`: no packet limit).
    public var packetLimit: Int?
    /// Drop-tail limit in bytes (`nil`: no byte limit).
    public var byteLimit: Int?
    /// CoDel parameters; `nil` for a plain drop-tail queue.
    public var codel: CoDelParameters? {
        didSet { if codel == nil { codelState = CoDelState() } }
    }

    @usableFromInline var items = PacketFIFO<(packet: Packet, enqueuedAt: Instant)>()
    public private(set) var bytes = 0
    @usableFromInline var codelState = CoDelState()
    @usableFromInline var drops: [Dropped<Packet>] = []

    /// The queue used when a link has a rate but no limit is given: 1000
    /// packets, Linux's default `txqueuelen`.
    public static var defaultPacketLimit: Int { 1000 }

    public init(packetLimit: Int? = PacketQueue.defaultPacketLimit, byteLimit: Int? = nil,
                codel: CoDelParameters? = nil) {
        self.packetLimit = packetLimit; self.byteLimit = byteLimit; self.codel = codel
    }

    public var count: Int { items.count }
    public var isEmpty: Bool { items.isEmpty }
    /// When the packet at the head entered.
    public var headEnqueuedAt: Instant? { items.first?.enqueuedAt }

    /// Adds `packet` at the tail unless a limit would be exceeded (then it is dropped).
    public mutating func enqueue(_ packet: Packet, now: Instant) {
        let size = packet.byteCount
        if let limit = packetLimit, items.count + 1 > limit {
            drops.append(Dropped(packet: packet, at: now, reason: .queueFull)); return
        }
        if let limit = byteLimit, bytes + size > limit {
            drops.append(Dropped(packet: packet, at: now, reason: .queueFull)); return
        }
        items.append((packet, now))
        bytes += size
    }

    /// The packet to serve next at `now`, after CoDel has dropped what its
    /// control law says (recorded for `drainDrops()`).
    public mutating func dequeue(now: Instant) -> Packet? {
        guard let params = codel else { return removeHead()?.packet }
        return codelDequeue(now: now, params)
    }

    /// Drops everything held.
    public mutating func flush(now: Instant, reason: DropReason) {
        while let head = removeHead() { drops.append(Dropped(packet: head.packet, at: now, reason: reason)) }
        codelState.dropping = false
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        if drops.isEmpty { return [] }
        let d = drops
        drops = []
        return d
    }

    @usableFromInline mutating func removeHead() -> (packet: Packet, enqueuedAt: Instant)? {
        guard !items.isEmpty else { return nil }
        let head = items.removeFirst()
        bytes -= head.packet.byteCount
        return head
    }

    // MARK: CoDel (RFC 8289 §5)

    @usableFromInline struct CoDelState {
        /// When the sojourn time first went above target and stayed (`nil`: it is below).
        var firstAboveTime: Instant?
        var dropNext = Instant.zero
        var count = 0
        var lastCount = 0
        var dropping = false
    }

    /// RFC 8289 §5.5: the next drop comes `interval / sqrt(count)` after `t`.
    func controlLaw(_ t: Instant, _ params: CoDelParameters, count: Int) -> Instant {
        t + params.interval * (1 / Double(max(count, 1)).squareRoot())
    }

    /// Takes the head and says whether CoDel may drop it (RFC 8289 §5.4):
    /// the sojourn time must have stayed at or above target for a whole interval.
    mutating func codelTakeHead(now: Instant, _ params: CoDelParameters) -> (Packet, okToDrop: Bool)? {
        guard let head = removeHead() else {
            codelState.firstAboveTime = nil
            return nil
        }
        let sojourn = now - head.enqueuedAt
        if sojourn < params.target || bytes <= params.maximumPacketBytes {
            codelState.firstAboveTime = nil
            return (head.packet, false)
        }
        guard let above = codelState.firstAboveTime else {
            codelState.firstAboveTime = now + params.interval
            return (head.packet, false)
        }
        return (head.packet, now >= above)
    }

    mutating func codelDequeue(now: Instant, _ params: CoDelParameters) -> Packet? {
        guard var r = codelTakeHead(now: now, params) else {
            codelState.dropping = false
            return nil
        }
        if codelState.dropping {
            if !r.okToDrop {
                codelState.dropping = false   // delay went below target: leave the dropping state
            }
            while codelState.dropping && now >= codelState.dropNext {
                drops.append(Dropped(packet: r.0, at: now, reason: .codel))
                codelState.count += 1
                guard let next = codelTakeHead(now: now, params) else {
                    codelState.dropping = false
                    return nil
                }
                r = next
                if !r.okToDrop { codelState.dropping = false }
                else { codelState.dropNext = controlLaw(codelState.dropNext, params, count: codelState.count) }
            }
        } else if r.okToDrop {
            drops.append(Dropped(packet: r.0, at: now, reason: .codel))
            let next = codelTakeHead(now: now, params)
            codelState.dropping = true
            // RFC 8289 §5.6: if we left the dropping state only recently, resume
            // near the drop rate that controlled the queue last time.
            let delta = codelState.count - codelState.lastCount
            if delta > 1 && now - codelState.dropNext < params.interval * Int64(16) {
                codelState.count = delta
            } else {
                codelState.count = 1
            }
            codelState.dropNext = controlLaw(now, params, count: codelState.count)
            codelState.lastCount = codelState.count
            guard let n = next else { return nil }
            r = n
        }
        return r.0
    }
}
