import Core

/// Holds back a random share of packets so that later ones overtake them
/// (netem's `reorder`, the simulator's reordering): each packet is, with
/// `probability`, delayed by `extraDelay`; the others pass at once.
public struct Reordering<Packet: LinkPacket>: LinkStage {
    public var probability: Probability
    public var extraDelay: Interval
    @usableFromInline var random: SeededRandom
    @usableFromInline var held = TimeOrderedQueue<Packet>()
    @usableFromInline var drops: [Dropped<Packet>] = []
    /// Packets held back so far.
    public private(set) var reordered = 0

    public init(probability: Probability, extraDelay: Interval,
                random: SeededRandom = SeededRandom(seed: 0, stream: "reorder")) {
        self.probability = probability; self.extraDelay = max(.zero, extraDelay); self.random = random
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        if random.chance(probability.value) {
            reordered += 1
            held.insert(packet, at: now + extraDelay)
        } else {
            held.insert(packet, at: now)
        }
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        guard held.nextTime <= now else { return nil }
        return held.removeFirst()!.element
    }

    public var nextEventTime: Instant { held.nextTime }

    public mutating func flush(now: Instant, reason: DropReason) {
        while let p = held.removeFirst() { drops.append(Dropped(packet: p.element, at: now, reason: reason)) }
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        if drops.isEmpty { return [] }
        let d = drops
        drops = []
        return d
    }
}

/// Sends a random share of packets twice (netem's `duplicate`): each packet
/// is, with `probability`, followed at once by a copy of itself.
public struct Duplication<Packet: LinkPacket>: LinkStage {
    public var probability: Probability
    @usableFromInline var random: SeededRandom
    @usableFromInline var line = ReadyLine<Packet>()
    /// Copies made so far.
    public private(set) var duplicated = 0

    public init(probability: Probability, random: SeededRandom = SeededRandom(seed: 0, stream: "duplicate")) {
        self.probability = probability; self.random = random
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        line.append(packet, now: now)
        if random.chance(probability.value) {
            duplicated += 1
            line.append(packet, now: now)
        }
    }

    public mutating func dequeue(now: Instant) -> Packet? { line.dequeue(now: now) }
    public var nextEventTime: Instant { line.nextEventTime }
    public mutating func flush(now: Instant, reason: DropReason) { line.flush(now: now, reason: reason) }
    public mutating func drainDrops() -> [Dropped<Packet>] { line.drainDrops() }
}
