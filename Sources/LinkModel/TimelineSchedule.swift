import Core

/// One concrete change to a link direction at an instant: what a timeline's
/// events (and the steps of its ramps) come down to.
public enum LinkStep: Hashable, Sendable {
    case set(LinkParameters)
    case coverage(Bool, loss: CoverageLoss)
}

/// Turns one link direction's timeline events into concrete steps in time
/// order. A ramp moves each parameter it names linearly from the value it has
/// when the ramp starts to the target, in steps of `rampStep`, ending exactly
/// on the target at the ramp's end. A parameter with no value when its ramp
/// starts (an unlimited rate, the default queue) jumps to the target at once;
/// delay, jitter and loss start from zero. A new ramp replaces one in progress;
/// a `set` during a ramp is overridden by the ramp's next step for the fields
/// the ramp moves.
public struct TimelineSchedule: Sendable {
    public let origin: Instant
    public let rampStep: Interval
    @usableFromInline var events: [TimelineEvent]
    @usableFromInline var cursor = 0
    @usableFromInline var ramp: Ramp?

    @usableFromInline struct Ramp: Sendable {
        var start: LinkParameters
        var target: LinkParameters
        var from: Instant
        var until: Instant
        var nextStep: Instant
    }

    /// - Parameter events: the events of one link that include the direction
    ///   (see `CoverageTimeline.events(for:)` and `LinkDirection.includes`).
    public init(events: [TimelineEvent], origin: Instant, rampStep: Interval = .milliseconds(10)) {
        self.events = CoverageTimeline(events: events, duration: .zero).events
        self.origin = origin
        self.rampStep = max(rampStep, .microseconds(1))
    }

    /// A schedule for `link` in `direction` taken from a whole timeline.
    public init(timeline: CoverageTimeline, link: String, direction: LinkDirection, origin: Instant,
                rampStep: Interval = .milliseconds(10)) {
        self.init(events: timeline.events(for: link).filter { $0.direction.includes(direction) },
                  origin: origin, rampStep: rampStep)
    }

    /// When the next step is due; `distantFuture` when there is none.
    public var nextTime: Instant {
        let e = cursor < events.count ? origin + events[cursor].at : .distantFuture
        return min(e, ramp?.nextStep ?? .distantFuture)
    }

    public var isFinished: Bool { cursor >= events.count && ramp == nil }

    /// The next step, given the parameters the link has at that moment (a ramp
    /// starts from them). Events come before ramp steps due at the same time.
    public mutating func popNext(current: LinkParameters) -> (at: Instant, step: LinkStep)? {
        let eventTime = cursor < events.count ? origin + events[cursor].at : .distantFuture
        if let r = ramp, r.nextStep < eventTime {
            return (r.nextStep, .set(stepRamp()))
        }
        guard cursor < events.count else { return nil }
        let e = events[cursor]
        cursor += 1
        switch e.change {
        case .coverage(let up, let loss):
            return (eventTime, .coverage(up, loss: loss))
        case .set(let p):
            return (eventTime, .set(p))
        case .ramp(let target, let over):
            if over <= .zero {
                ramp = nil
                return (eventTime, .set(target))
            }
            ramp = Ramp(start: current, target: target, from: eventTime, until: eventTime + over, nextStep: eventTime)
            return (eventTime, .set(stepRamp()))
        }
    }

    /// The ramp's values at its next step, and the step after it.
    mutating func stepRamp() -> LinkParameters {
        guard var r = ramp else { return LinkParameters() }
        let t = r.nextStep
        let total = Double((r.until - r.from).nanoseconds)
        let f = min(1, max(0, Double((t - r.from).nanoseconds) / total))
        let values = Self.interpolate(r.start, r.target, fraction: f)
        if t >= r.until {
            ramp = nil
        } else {
            r.nextStep = min(t + rampStep, r.until)
            ramp = r
        }
        return values
    }

    /// The fields `target` names, a fraction `f` of the way from `start`.
    public static func interpolate(_ start: LinkParameters, _ target: LinkParameters, fraction f: Double) -> LinkParameters {
        func mix(_ a: Double, _ b: Double) -> Double { a + (b - a) * f }
        var out = LinkParameters()
        if let d = target.delay {
            out.delay = Interval(nanoseconds: Int64(mix(Double((start.delay ?? .zero).nanoseconds), Double(d.nanoseconds)).rounded()))
        }
        if let j = target.jitter {
            out.jitter = Interval(nanoseconds: Int64(mix(Double((start.jitter ?? .zero).nanoseconds), Double(j.nanoseconds)).rounded()))
        }
        if let l = target.loss {
            out.loss = Probability(min(1, max(0, mix(start.loss?.value ?? 0, l.value))))
        }
        if let r = target.rate {
            out.rate = start.rate.map { Bitrate(bitsPerSecond: Int64(mix(Double($0.bitsPerSecond), Double(r.bitsPerSecond)).rounded())) } ?? r
        }
        if let q = target.queuePackets {
            out.queuePackets = start.queuePackets.map { Int(mix(Double($0), Double(q)).rounded()) } ?? q
        }
        if let q = target.queueBytes {
            out.queueBytes = start.queueBytes.map { Int(mix(Double($0), Double(q)).rounded()) } ?? q
        }
        return out
    }
}

/// A link direction that replays its part of a coverage timeline: a
/// `LinkPipeline` and a `TimelineSchedule`, itself a `LinkStage`, so a
/// backend that only polls `dequeue` and `nextEventTime` gets every change
/// applied at its time — packets due before a change leave under the old
/// parameters, even when the backend polls late.
public struct ScheduledLink<Packet: LinkPacket>: LinkStage {
    public var pipeline: LinkPipeline<Packet>
    public private(set) var schedule: TimelineSchedule
    /// Steps applied since the last `drainAppliedSteps()`, for event logs.
    @usableFromInline var applied: [(at: Instant, step: LinkStep)] = []
    /// Packets that left before a step the driver was late for.
    @usableFromInline var early = PassThrough<Packet>()

    public init(pipeline: LinkPipeline<Packet>, schedule: TimelineSchedule) {
        self.pipeline = pipeline; self.schedule = schedule
    }

    /// Whether the node's interface on this link shows carrier now.
    public var carrier: Bool { pipeline.carrier }

    /// Applies every step due at or before `now`, without first taking out the
    /// packets due before them (`dequeue` does that; a driver that polls at
    /// `nextEventTime` never needs to).
    public mutating func applySteps(upTo now: Instant) {
        while schedule.nextTime <= now {
            guard let (at, step) = schedule.popNext(current: pipeline.parameters) else { break }
            apply(step, at: at)
        }
    }

    @usableFromInline mutating func apply(_ step: LinkStep, at: Instant) {
        switch step {
        case .set(let p): pipeline.apply(p, now: at)
        case .coverage(let up, let loss): pipeline.setCoverage(up, loss: loss, now: at)
        }
        applied.append((at, step))
    }

    public mutating func drainAppliedSteps() -> [(at: Instant, step: LinkStep)] {
        if applied.isEmpty { return [] }
        let a = applied
        applied = []
        return a
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        catchUp(to: now)
        pipeline.enqueue(packet, now: now)
    }

    /// Applies the steps due by `now` in time order with the pipeline's own
    /// events: packets due before a step are taken out first (kept in `early`).
    mutating func catchUp(to now: Instant) {
        while schedule.nextTime <= now {
            let step = schedule.nextTime
            let before = step - Interval(nanoseconds: 1)
            if pipeline.nextEventTime <= before {
                transfer(from: &pipeline, to: &early, upTo: before)
            }
            applySteps(upTo: step)
        }
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        catchUp(to: now)
        if let p = early.dequeue(now: now) { return p }
        return pipeline.dequeue(now: now)
    }

    public var nextEventTime: Instant { min(min(pipeline.nextEventTime, schedule.nextTime), early.nextEventTime) }

    public mutating func flush(now: Instant, reason: DropReason) {
        early.flush(now: now, reason: reason)
        pipeline.flush(now: now, reason: reason)
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        let e = early.drainDrops()
        return e.isEmpty ? pipeline.drainDrops() : e + pipeline.drainDrops()
    }
}
