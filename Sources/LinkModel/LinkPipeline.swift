import Core

/// What a link direction has beyond `LinkParameters` (which is what timelines
/// set): the shape of its loss, its queue discipline, a trace instead of a
/// rate, and the simulator's reordering and duplication.
public struct PipelineOptions: Hashable, Sendable {
    /// Replaces the Bernoulli loss of `LinkParameters.loss` (e.g. Gilbert–Elliott).
    /// A timeline that later sets `loss` switches back to Bernoulli.
    public var lossProcess: LossProcess?
    /// CoDel on the bottleneck queue (`nil`: drop-tail only).
    public var codel: CoDelParameters?
    /// Token bucket depth in bytes (0: pure serialisation).
    public var burstBytes: Int
    /// A trace-driven bottleneck instead of a fixed rate (rate changes then have no effect).
    public var trace: MahimahiTrace?
    /// Let jitter reorder packets (netem's behaviour) instead of keeping their order.
    public var jitterReorders: Bool
    /// Share of packets held back by `reorderDelay` so later ones overtake them.
    public var reorderProbability: Probability
    public var reorderDelay: Interval
    /// Share of packets delivered twice.
    public var duplicateProbability: Probability

    public init(lossProcess: LossProcess? = nil, codel: CoDelParameters? = nil, burstBytes: Int = 0,
                trace: MahimahiTrace? = nil, jitterReorders: Bool = false,
                reorderProbability: Probability = .zero, reorderDelay: Interval = .zero,
                duplicateProbability: Probability = .zero) {
        self.lossProcess = lossProcess; self.codel = codel; self.burstBytes = burstBytes
        self.trace = trace; self.jitterReorders = jitterReorders
        self.reorderProbability = reorderProbability; self.reorderDelay = reorderDelay
        self.duplicateProbability = duplicateProbability
    }
}

/// The stages inside a link direction, in the order a packet meets them:
/// duplication, random loss, the bottleneck (a rate with its queue, or a
/// Mahimahi trace), propagation delay with jitter, reordering.
public struct LinkInterior<Packet: LinkPacket>: LinkStage {
    public var duplication: Duplication<Packet>
    public var loss: RandomLoss<Packet>
    /// The bottleneck when it is a rate (exactly one of `rate` and `trace` is set).
    public var rate: RateLink<Packet>?
    public var trace: TraceLink<Packet>?
    public var delay: DelayLine<Packet>
    public var reordering: Reordering<Packet>

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        duplication.enqueue(packet, now: now)
        advance(upTo: now)
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        advance(upTo: now)
        return reordering.dequeue(now: now)
    }

    /// Moves every packet as far along as it has got by `now`, so that a
    /// parameter changed at `now` applies only to what comes after.
    public mutating func advance(upTo now: Instant) {
        transfer(from: &duplication, to: &loss, upTo: now)
        if rate != nil {
            transfer(from: &loss, to: &rate!, upTo: now)
            transfer(from: &rate!, to: &delay, upTo: now)
        } else {
            transfer(from: &loss, to: &trace!, upTo: now)
            transfer(from: &trace!, to: &delay, upTo: now)
        }
        transfer(from: &delay, to: &reordering, upTo: now)
    }

    public var nextEventTime: Instant {
        min(min(duplication.nextEventTime, loss.nextEventTime),
            min(min(rate?.nextEventTime ?? .distantFuture, trace?.nextEventTime ?? .distantFuture),
                min(delay.nextEventTime, reordering.nextEventTime)))
    }

    public mutating func flush(now: Instant, reason: DropReason) {
        duplication.flush(now: now, reason: reason)
        loss.flush(now: now, reason: reason)
        rate?.flush(now: now, reason: reason)
        trace?.flush(now: now, reason: reason)
        delay.flush(now: now, reason: reason)
        reordering.flush(now: now, reason: reason)
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        var all = duplication.drainDrops()
        all += loss.drainDrops()
        all += rate?.drainDrops() ?? []
        all += trace?.drainDrops() ?? []
        all += delay.drainDrops()
        all += reordering.drainDrops()
        guard all.count > 1 else { return all }
        return all.enumerated().sorted { l, r in
            l.element.at != r.element.at ? l.element.at < r.element.at : l.offset < r.offset
        }.map(\.element)
    }
}

/// One direction of a link, built from `LinkParameters` (what topologies and
/// timelines speak) and `PipelineOptions`, behind a coverage gate. This is the
/// value the simulator and the emulator backends run.
public struct LinkPipeline<Packet: LinkPacket>: LinkStage {
    public private(set) var parameters: LinkParameters
    public let options: PipelineOptions
    public var gate: CoverageGate<LinkInterior<Packet>>

    /// - Parameters:
    ///   - seed, name: randomness comes from `SeededRandom(seed:stream:)` with
    ///     streams named after the link (`name/loss`, `name/delay`, ...), so
    ///     two links, or two stages, never share draws.
    ///   - origin: time zero of a trace-driven bottleneck.
    public init(parameters: LinkParameters, options: PipelineOptions = PipelineOptions(),
                seed: UInt64, name: String, origin: Instant = .zero) {
        self.parameters = parameters
        self.options = options
        let queue = PacketQueue<Packet>(
            packetLimit: parameters.queuePackets ?? (parameters.queueBytes == nil ? PacketQueue<Packet>.defaultPacketLimit : nil),
            byteLimit: parameters.queueBytes, codel: options.codel)
        let interior = LinkInterior<Packet>(
            duplication: Duplication(probability: options.duplicateProbability,
                                     random: SeededRandom(seed: seed, stream: name + "/duplicate")),
            loss: RandomLoss(options.lossProcess ?? .bernoulli(parameters.loss ?? .zero),
                             random: SeededRandom(seed: seed, stream: name + "/loss")),
            rate: options.trace == nil ? RateLink(rate: parameters.rate, burstBytes: options.burstBytes, queue: queue) : nil,
            trace: options.trace.map { TraceLink(trace: $0, origin: origin, queue: queue) },
            delay: DelayLine(delay: parameters.delay ?? .zero, jitter: parameters.jitter ?? .zero,
                             allowsReordering: options.jitterReorders,
                             random: SeededRandom(seed: seed, stream: name + "/delay")),
            reordering: Reordering(probability: options.reorderProbability, extraDelay: options.reorderDelay,
                                   random: SeededRandom(seed: seed, stream: name + "/reorder")))
        self.gate = CoverageGate(interior)
    }

    /// Sets every field `change` carries, from `now` on; `nil` fields stay.
    public mutating func apply(_ change: LinkParameters, now: Instant) {
        // What entered before `now` has met the old parameters.
        gate.inner.advance(upTo: now)
        parameters = parameters.updated(by: change)
        if let d = change.delay { gate.inner.delay.delay = max(.zero, d) }
        if let j = change.jitter { gate.inner.delay.jitter = max(.zero, j) }
        if let l = change.loss { gate.inner.loss.process = .bernoulli(l) }
        if change.rate != nil { gate.inner.rate?.setRate(change.rate, now: now) }
        if change.queuePackets != nil || change.queueBytes != nil {
            let p = parameters.queuePackets ?? (parameters.queueBytes == nil ? PacketQueue<Packet>.defaultPacketLimit : nil)
            gate.inner.rate?.queue.packetLimit = p
            gate.inner.rate?.queue.byteLimit = parameters.queueBytes
            gate.inner.trace?.queue.packetLimit = p
            gate.inner.trace?.queue.byteLimit = parameters.queueBytes
        }
    }

    /// Coverage comes or goes at `now`.
    public mutating func setCoverage(_ up: Bool, loss: CoverageLoss, now: Instant) {
        gate.inner.advance(upTo: now)
        gate.setCoverage(up, loss: loss, now: now)
    }

    public var isCovered: Bool { gate.isUp }
    /// Whether the node's interface on this link shows carrier (for backends).
    public var carrier: Bool { gate.carrier }

    public mutating func enqueue(_ packet: Packet, now: Instant) { gate.enqueue(packet, now: now) }
    public mutating func dequeue(now: Instant) -> Packet? { gate.dequeue(now: now) }
    public var nextEventTime: Instant { gate.nextEventTime }
    public mutating func flush(now: Instant, reason: DropReason) { gate.flush(now: now, reason: reason) }
    public mutating func drainDrops() -> [Dropped<Packet>] { gate.drainDrops() }
}
