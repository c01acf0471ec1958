import Core

/// How packets are lost at random.
public enum LossProcess: Hashable, Sendable {
    /// Each packet lost independently with this probability.
    case bernoulli(Probability)
    /// The Gilbert–Elliott two-state Markov chain, stepped once per packet:
    /// from Good to Bad with `p`, from Bad to Good with `r`; a packet is lost
    /// with `lossInGood` in Good and `lossInBad` in Bad (Gilbert's original
    /// model is `lossInGood = 0`, `lossInBad = 1`).
    case gilbertElliott(p: Probability, r: Probability, lossInGood: Probability, lossInBad: Probability)

    /// The long-run loss rate.
    public var meanLoss: Double {
        switch self {
        case .bernoulli(let q): return q.value
        case .gilbertElliott(let p, let r, let g, let b):
            let total = p.value + r.value
            guard total > 0 else { return g.value }
            let piBad = p.value / total
            return (1 - piBad) * g.value + piBad * b.value
        }
    }
}

/// Drops packets at random as they enter; the rest pass at once.
public struct RandomLoss<Packet: LinkPacket>: LinkStage {
    public var process: LossProcess {
        didSet { if case .bernoulli = process { inBadState = false } }
    }
    /// Gilbert–Elliott's current state.
    public private(set) var inBadState = false
    @usableFromInline var random: SeededRandom
    @usableFromInline var line = ReadyLine<Packet>()

    public init(_ process: LossProcess, random: SeededRandom = SeededRandom(seed: 0, stream: "loss")) {
        self.process = process; self.random = random
    }

    /// Whether the next packet is lost (steps the chain).
    @usableFromInline mutating func losesNext() -> Bool {
        switch process {
        case .bernoulli(let q):
            return random.chance(q.value)
        case .gilbertElliott(let p, let r, let g, let b):
            // Transition first, then draw the loss in the new state (netem's order).
            if inBadState { if random.chance(r.value) { inBadState = false } }
            else { if random.chance(p.value) { inBadState = true } }
            return random.chance(inBadState ? b.value : g.value)
        }
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        if losesNext() { line.drop(packet, now: now, reason: .loss) } else { line.append(packet, now: now) }
    }

    public mutating func dequeue(now: Instant) -> Packet? { line.dequeue(now: now) }
    public var nextEventTime: Instant { line.nextEventTime }
    public mutating func flush(now: Instant, reason: DropReason) { line.flush(now: now, reason: reason) }
    public mutating func drainDrops() -> [Dropped<Packet>] { line.drainDrops() }
}
