import Core

/// Radio coverage around a link: while coverage is down, nothing enters the
/// link and nothing leaves it (a packet on its way when coverage goes is lost
/// if it would arrive during the loss). `carrier` tells a backend whether the
/// node's interface should show carrier: a `silent` loss keeps it (a black
/// hole), a `carrier` loss drops it, as when a radio disassociates — and, as a
/// kernel does when an interface loses carrier, flushes what the link held.
public struct CoverageGate<Inner: LinkStage>: LinkStage {
    public typealias Packet = Inner.Packet
    public var inner: Inner
    public private(set) var isUp = true
    public private(set) var loss = CoverageLoss.silent
    @usableFromInline var drops: [Dropped<Packet>] = []

    public init(_ inner: Inner, isUp: Bool = true, loss: CoverageLoss = .silent) {
        self.inner = inner; self.isUp = isUp; self.loss = loss
    }

    /// Whether the node's interface on this link has carrier.
    public var carrier: Bool { isUp || loss == .silent }

    /// Coverage comes or goes at `now`.
    public mutating func setCoverage(_ up: Bool, loss: CoverageLoss, now: Instant) {
        // Packets due before the change leave under the old state.
        if up && !isUp { dropDue(upTo: now) }
        isUp = up
        self.loss = loss
        if !up && loss == .carrier { inner.flush(now: now, reason: .coverage) }
    }

    /// Drops what left the inner stage while coverage was down.
    mutating func dropDue(upTo now: Instant) {
        while inner.nextEventTime <= now {
            let t = inner.nextEventTime
            while let p = inner.dequeue(now: t) { drops.append(Dropped(packet: p, at: t, reason: .coverage)) }
        }
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        if isUp { inner.enqueue(packet, now: now) }
        else { drops.append(Dropped(packet: packet, at: now, reason: .coverage)) }
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        if isUp { return inner.dequeue(now: now) }
        dropDue(upTo: now)
        return nil
    }

    public var nextEventTime: Instant { inner.nextEventTime }

    public mutating func flush(now: Instant, reason: DropReason) { inner.flush(now: now, reason: reason) }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        let innerDrops = inner.drainDrops()
        if drops.isEmpty { return innerDrops }
        let own = drops
        drops = []
        if innerDrops.isEmpty { return own }
        return (innerDrops + own).enumerated().sorted { l, r in
            l.element.at != r.element.at ? l.element.at < r.element.at : l.offset < r.offset
        }.map(\.element)
    }
}
