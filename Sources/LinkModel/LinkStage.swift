import Core

/// What a link model needs to know about a packet: its size on the link.
/// Everything else is opaque, so the same models carry raw Ethernet frames in
/// the emulator and IP packets in the simulator.
public protocol LinkPacket {
    /// Bytes the packet occupies on the link (what serialisation and byte limits count).
    var byteCount: Int { get }
}

/// One link model, in the spirit of Mahimahi: packets go in at `now`, come out
/// at `now`, and the model says when it next has something to do. Models nest
/// (`Chain`) into a per-direction link pipeline.
///
/// The contract every stage keeps, and every driver relies on:
/// - Calls come with non-decreasing `now`.
/// - `dequeue(now:)` returns one packet whose departure time is at or before
///   `now`, oldest departure first; call it until it returns `nil`.
/// - After `dequeue(now:)` returned `nil`, `nextEventTime > now`: a stage
///   advances its own state (a trace opportunity that carried only part of a
///   packet, a CoDel drop) inside `dequeue`, so a driver that polls at
///   `nextEventTime` always makes progress.
/// - A stage never reads a clock and draws randomness only from the
///   `SeededRandom` it was given.
public protocol LinkStage<Packet> {
    associatedtype Packet: LinkPacket

    /// Hands `packet` to the stage at `now`. The stage keeps it, or drops it
    /// (recorded for `drainDrops()`), or keeps more than one copy.
    mutating func enqueue(_ packet: Packet, now: Instant)

    /// The next packet due at or before `now`, if any.
    mutating func dequeue(now: Instant) -> Packet?

    /// When `dequeue` next has work: a packet due, or a state change.
    /// `Instant.distantFuture` when idle.
    var nextEventTime: Instant { get }

    /// Drops everything the stage holds (an interface that lost carrier).
    mutating func flush(now: Instant, reason: DropReason)

    /// Packets dropped since the last call, in the order they were dropped.
    mutating func drainDrops() -> [Dropped<Packet>]
}

/// Why a model dropped a packet.
public enum DropReason: String, Hashable, Sendable, CaseIterable {
    /// Random loss (Bernoulli or Gilbert–Elliott).
    case loss
    /// The queue was full (drop-tail in packets or bytes).
    case queueFull = "queue-full"
    /// CoDel's control law dropped it at the head of the queue (RFC 8289).
    case codel
    /// The coverage gate was down when it entered or left the link.
    case coverage
}

/// A packet a model dropped, when and why.
public struct Dropped<Packet> {
    public var packet: Packet
    public var at: Instant
    public var reason: DropReason
    public init(packet: Packet, at: Instant, reason: DropReason) {
        self.packet = packet; self.at = at; self.reason = reason
    }
}

extension Dropped: Sendable where Packet: Sendable {}

/// Two stages in series: what leaves `first` enters `second` at the instant it
/// left (not at the instant the driver happened to poll), so a late poll does
/// not shift the second stage's timing.
public struct Chain<First: LinkStage, Second: LinkStage>: LinkStage where First.Packet == Second.Packet {
    public typealias Packet = First.Packet
    public var first: First
    public var second: Second

    public init(_ first: First, _ second: Second) { self.first = first; self.second = second }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        first.enqueue(packet, now: now)
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        transfer(from: &first, to: &second, upTo: now)
        return second.dequeue(now: now)
    }

    public var nextEventTime: Instant { min(first.nextEventTime, second.nextEventTime) }

    public mutating func flush(now: Instant, reason: DropReason) {
        first.flush(now: now, reason: reason)
        second.flush(now: now, reason: reason)
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        let a = first.drainDrops()
        let b = second.drainDrops()
        if a.isEmpty { return b }
        if b.isEmpty { return a }
        return (a + b).enumerated().sorted { l, r in
            l.element.at != r.element.at ? l.element.at < r.element.at : l.offset < r.offset
        }.map(\.element)
    }
}

/// Moves everything `upstream` releases up to `now` into `downstream`, each
/// packet at the instant it was released.
@inlinable
public func transfer<A: LinkStage, B: LinkStage>(from upstream: inout A, to downstream: inout B, upTo now: Instant)
where A.Packet == B.Packet {
    while true {
        let t = upstream.nextEventTime
        guard t <= now else { return }
        while let p = upstream.dequeue(now: t) { downstream.enqueue(p, now: t) }
    }
}

/// A stage that passes packets straight through; the neutral element of `Chain`.
public struct PassThrough<Packet: LinkPacket>: LinkStage {
    @usableFromInline var line = ReadyLine<Packet>()
    public init() {}
    public mutating func enqueue(_ packet: Packet, now: Instant) { line.append(packet, now: now) }
    public mutating func dequeue(now: Instant) -> Packet? { line.dequeue(now: now) }
    public var nextEventTime: Instant { line.nextEventTime }
    public mutating func flush(now: Instant, reason: DropReason) { line.flush(now: now, reason: reason) }
    public mutating func drainDrops() -> [Dropped<Packet>] { line.drainDrops() }
}
