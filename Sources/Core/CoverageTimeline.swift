/// What the emulator replays: a time-ordered list of changes to named links.
///
/// Routes produce timelines (module `Mobility`), users may write them by hand
/// (`Routes/*.yaml`), and both the userspace emulator and the simulator apply
/// them through the same link models. A link is named as in the topology
/// (`name:` of the link, or `<a>-<b>` from its two node names); a direction is
/// relative to the link's endpoints as the topology lists them.
public struct CoverageTimeline: Hashable, Sendable {
    public var events: [TimelineEvent]
    /// How long the route lasts; the run ends here.
    public var duration: Interval

    /// Events are kept sorted by time; events at the same time keep their order.
    public init(events: [TimelineEvent], duration: Interval) {
        self.events = events.enumerated().sorted { l, r in
            l.element.at != r.element.at ? l.element.at < r.element.at : l.offset < r.offset
        }.map(\.element)
        self.duration = duration
    }

    /// The link names the timeline touches, in order of first appearance.
    public var links: [String] {
        var seen = Set<String>()
        return events.compactMap { seen.insert($0.link).inserted ? $0.link : nil }
    }

    /// The events for one link, in time order.
    public func events(for link: String) -> [TimelineEvent] { events.filter { $0.link == link } }
}

public struct TimelineEvent: Hashable, Sendable {
    /// Offset from the start of the run.
    public var at: Interval
    public var link: String
    public var direction: LinkDirection
    public var change: LinkChange

    public init(at: Interval, link: String, direction: LinkDirection = .both, change: LinkChange) {
        self.at = at; self.link = link; self.direction = direction; self.change = change
    }
}

/// Which way along a link: from its first-listed endpoint `a` to `b`, back, or both.
public enum LinkDirection: String, Hashable, Sendable, CaseIterable {
    case both
    case aToB = "a-to-b"
    case bToA = "b-to-a"

    public func includes(_ d: LinkDirection) -> Bool { self == .both || d == .both || self == d }
}

/// How a loss of coverage shows itself to the node.
public enum CoverageLoss: String, Hashable, Sendable, CaseIterable {
    /// Frames are dropped; the interface stays up (a black hole).
    case silent
    /// The node's interface loses carrier, as when a radio disassociates.
    case carrier
}

public enum LinkChange: Hashable, Sendable {
    /// Coverage comes (`true`) or goes (`false`).
    case coverage(Bool, loss: CoverageLoss)
    /// Set parameters at once; `nil` fields stay as they are.
    case set(LinkParameters)
    /// Move parameters linearly from their values at `at` to these over `over`.
    case ramp(LinkParameters, over: Interval)
}

/// Per-direction properties of a link. `nil` means "unchanged" in a change and
/// "none" (no delay, unlimited rate, no loss, default queue) in a full description.
public struct LinkParameters: Hashable, Sendable {
    public var delay: Interval?
    public var jitter: Interval?
    public var rate: Bitrate?
    public var loss: Probability?
    /// Drop-tail limit in packets.
    public var queuePackets: Int?
    /// Drop-tail limit in bytes.
    public var queueBytes: Int?

    public init(delay: Interval? = nil, jitter: Interval? = nil, rate: Bitrate? = nil,
                loss: Probability? = nil, queuePackets: Int? = nil, queueBytes: Int? = nil) {
        self.delay = delay; self.jitter = jitter; self.rate = rate
        self.loss = loss; self.queuePackets = queuePackets; self.queueBytes = queueBytes
    }

    /// These parameters with every field that `change` sets replaced.
    public func updated(by change: LinkParameters) -> LinkParameters {
        LinkParameters(delay: change.delay ?? delay, jitter: change.jitter ?? jitter,
                       rate: change.rate ?? rate, loss: change.loss ?? loss,
                       queuePackets: change.queuePackets ?? queuePackets,
                       queueBytes: change.queueBytes ?? queueBytes)
    }
}
