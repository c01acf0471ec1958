import Core

/// A bottleneck that serialises packets at a rate, with a token bucket and a
/// queue in front of it.
///
/// With `burstBytes == 0` it is a plain serialiser: a packet leaves when its
/// last bit is out, `size / rate` after it started, and the next starts then.
/// With a bucket of `burstBytes`, credit accumulates at `rate` while the link is
/// idle (up to the bucket's size), and packets leave at once while there is
/// credit for them, as Linux's TBF does. A `nil` rate is unlimited: packets
/// pass at once and the queue never fills.
public struct RateLink<Packet: LinkPacket>: LinkStage {
    public private(set) var rate: Bitrate?
    public var burstBytes: Int
    public var queue: PacketQueue<Packet>

    /// The packet on the wire and when its last bit leaves.
    @usableFromInline var inService: (packet: Packet, departure: Instant)?
    /// The instant at which the bucket was (or will be) empty, if no more credit
    /// were spent: the bucket holds `rate * (t - emptyAt)` bytes at `t`, capped at the burst.
    @usableFromInline var emptyAt = Instant(nanoseconds: .min / 2)
    @usableFromInline var ready = PacketFIFO<(Packet, Instant)>()
    @usableFromInline var drops: [Dropped<Packet>] = []

    public init(rate: Bitrate?, burstBytes: Int = 0, queue: PacketQueue<Packet> = PacketQueue()) {
        self.rate = rate; self.burstBytes = max(0, burstBytes); self.queue = queue
    }

    /// Changes the rate from `now` on. The packet on the wire keeps its
    /// departure, unless the link had stopped (rate 0): then it starts now.
    public mutating func setRate(_ newRate: Bitrate?, now: Instant) {
        advance(to: now)
        rate = newRate
        if let s = inService, s.departure == .distantFuture {
            inService = nil
            start(s.packet, at: now)
        }
    }

    /// Starts serialising `packet` at `h`.
    @usableFromInline mutating func start(_ packet: Packet, at h: Instant) {
        guard let rate else {
            inService = (packet, h); return
        }
        guard rate.bitsPerSecond > 0 else {
            inService = (packet, .distantFuture); return
        }
        let tx = rate.transmissionTime(bytes: packet.byteCount)
        let credit = burstBytes > 0 ? rate.transmissionTime(bytes: burstBytes) : .zero
        let from = max(emptyAt, h - credit)
        emptyAt = from + tx
        inService = (packet, max(h, emptyAt))
    }

    /// Moves every packet that finished by `now` to the output, starting the
    /// next from the queue at the instant the previous one left (or arrived).
    @usableFromInline mutating func advance(to now: Instant) {
        while let s = inService, s.departure <= now {
            ready.append((s.packet, s.departure))
            inService = nil
            let startAt = max(s.departure, queue.headEnqueuedAt ?? s.departure)
            if let next = queue.dequeue(now: startAt) { start(next, at: startAt) }
        }
        drops.append(contentsOf: queue.drainDrops())
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        advance(to: now)
        if inService == nil && queue.isEmpty {
            start(packet, at: now)
        } else {
            queue.enqueue(packet, now: now)
            drops.append(contentsOf: queue.drainDrops())
        }
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        if let head = ready.first, head.1 <= now { return ready.removeFirst().0 }
        advance(to: now)
        if let head = ready.first, head.1 <= now { return ready.removeFirst().0 }
        return nil
    }

    public var nextEventTime: Instant {
        if let head = ready.first { return head.1 }
        return inService?.departure ?? .distantFuture
    }

    /// Packets waiting plus the one on the wire.
    public var backlog: Int { queue.count + (inService == nil ? 0 : 1) + ready.count }

    public mutating func flush(now: Instant, reason: DropReason) {
        advance(to: now)
        if let s = inService { drops.append(Dropped(packet: s.packet, at: now, reason: reason)); inService = nil }
        queue.flush(now: now, reason: reason)
        drops.append(contentsOf: queue.drainDrops())
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        if drops.isEmpty { return [] }
        let d = drops
        drops = []
        return d
    }
}
