import Core

/// A propagation delay with optional jitter.
///
/// Each packet is held for `delay` plus a jitter drawn uniformly from
/// `[-jitter, +jitter]` (as netem's default distribution), never less than
/// zero. Unless `allowsReordering`, a packet never leaves before the one that
/// entered ahead of it: its departure is pushed to the previous departure, so
/// jitter stretches gaps but keeps the order, as on a real wire.
public struct DelayLine<Packet: LinkPacket>: LinkStage {
    public var delay: Interval
    public var jitter: Interval
    public var allowsReordering: Bool
    @usableFromInline var random: SeededRandom
    @usableFromInline var fifo = PacketFIFO<(Packet, Instant)>()
    @usableFromInline var heap = TimeOrderedQueue<Packet>()
    @usableFromInline var lastDeparture = Instant(nanoseconds: .min)
    @usableFromInline var drops: [Dropped<Packet>] = []

    public init(delay: Interval, jitter: Interval = .zero, allowsReordering: Bool = false,
                random: SeededRandom = SeededRandom(seed: 0, stream: "delay")) {
        self.delay = max(delay, .zero); self.jitter = max(jitter, .zero)
        self.allowsReordering = allowsReordering; self.random = random
    }

    /// The delay the next packet entering at `now` gets (draws randomness).
    @usableFromInline mutating func departure(for now: Instant) -> Instant {
        var d = delay
        if jitter > .zero {
            // Uniform in [-jitter, +jitter], in whole nanoseconds.
            let span = UInt64(jitter.nanoseconds) * 2 + 1
            let offset = Int64(random.next() % span) - jitter.nanoseconds
            d = max(.zero, d + Interval(nanoseconds: offset))
        }
        return now + d
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        var t = departure(for: now)
        if allowsReordering {
            heap.insert(packet, at: t)
        } else {
            t = max(t, lastDeparture)
            lastDeparture = t
            fifo.append((packet, t))
        }
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        if let head = fifo.first, head.1 <= now, head.1 <= heap.nextTime {
            return fifo.removeFirst().0
        }
        if heap.nextTime <= now { return heap.removeFirst()!.element }
        return nil
    }

    public var nextEventTime: Instant { min(fifo.first?.1 ?? .distantFuture, heap.nextTime) }

    public var count: Int { fifo.count + heap.count }

    public mutating func flush(now: Instant, reason: DropReason) {
        while !fifo.isEmpty { drops.append(Dropped(packet: fifo.removeFirst().0, at: now, reason: reason)) }
        while let p = heap.removeFirst() { drops.append(Dropped(packet: p.element, at: now, reason: reason)) }
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        if drops.isEmpty { return [] }
        let d = drops
        drops = []
        return d
    }
}
