import Core

/// A link whose capacity follows a Mahimahi trace, such as an always-on
/// cellular backup path: uplink (vehicle → network) and downlink capacity
/// become rate settings per window.
public struct CapacityTraceLink: Hashable, Sendable {
    public var link: String
    /// Which direction of the link is the uplink, by the topology's endpoint order.
    public var uplinkDirection: LinkDirection
    public var uplink: MahimahiCapacity?
    public var downlink: MahimahiCapacity?
    /// The capacity is averaged over windows of this length.
    public var window: Interval

    public init(link: String, uplinkDirection: LinkDirection = .aToB, uplink: MahimahiCapacity?,
                downlink: MahimahiCapacity?, window: Interval = .seconds(1)) {
        self.link = link; self.uplinkDirection = uplinkDirection
        self.uplink = uplink; self.downlink = downlink; self.window = window
    }

    var downlinkDirection: LinkDirection {
        switch uplinkDirection {
        case .aToB: return .bToA
        case .bToA: return .aToB
        case .both: return .both
        }
    }

    /// Rate settings whenever a window's capacity differs from the previous one.
    /// A window without any delivery opportunity is a silent coverage gap in that
    /// direction (a rate of zero cannot carry anything, and a link model cannot
    /// serialise at it).
    public func events(duration: Interval) -> [TimelineEvent] {
        var events: [TimelineEvent] = []
        for (trace, direction) in [(uplink, uplinkDirection), (downlink, downlinkDirection)] {
            guard let trace else { continue }
            var lastRate: Bitrate? = nil
            var up = true
            for (at, rate) in trace.capacity(window: window, duration: duration) {
                if rate.bitsPerSecond == 0 {
                    if up { events.append(TimelineEvent(at: at, link: link, direction: direction, change: .coverage(false, loss: .silent))) }
                    up = false
                    continue
                }
                if rate != lastRate {
                    events.append(TimelineEvent(at: at, link: link, direction: direction, change: .set(LinkParameters(rate: rate))))
                    lastRate = rate
                }
                if !up {
                    events.append(TimelineEvent(at: at, link: link, direction: direction, change: .coverage(true, loss: .silent)))
                    up = true
                }
            }
        }
        return events
    }
}
