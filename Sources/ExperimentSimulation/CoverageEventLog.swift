import Analysis
import Core
import LinkModel

/// Turns the timeline steps applied to links into their logs' `coverage` and
/// `link.params` events (docs/LOGS.md), once per link: a link is covered when
/// every direction seen so far is, and a change applied to both directions
/// is one event. The emulator's driver (`wayside run`) and the simulated run
/// both log through it, so the two write the same events for one timeline.
public struct CoverageEventLog: Sendable {
    var covered: [String: [LinkDirection: Bool]] = [:]
    var loggedCovered: [String: Bool] = [:]
    var rate: [String: Bitrate] = [:]

    public init() {}

    /// The events one applied step makes the link's log write (none, or one).
    public mutating func apply(link name: String, direction: LinkDirection, step: LinkStep) -> [EventBody] {
        switch step {
        case let .set(p):
            if let r = p.rate, rate[name] != r, direction == .aToB || rate[name] == nil {
                rate[name] = r
                return [.linkParameters(rate: r, delay: p.delay, loss: p.loss)]
            }
        case let .coverage(up, loss):
            covered[name, default: [:]][direction] = up
            let now = covered[name]!.values.allSatisfy { $0 }
            if loggedCovered[name] != now {
                loggedCovered[name] = now
                return [.coverage(covered: now, loss: loss, rate: rate[name])]
            }
        }
        return []
    }

    /// Every step `timeline` makes on `link` (both directions, starting from
    /// `aToB`/`bToA`), in the order an emulator applies them: by time, a-to-b
    /// first at one instant; with the events they log.
    public static func events(timeline: CoverageTimeline, link: String, aToB: LinkParameters, bToA: LinkParameters,
                              rampStep: Interval = .milliseconds(10)) -> [(at: Instant, body: EventBody)] {
        var schedules = [TimelineSchedule(timeline: timeline, link: link, direction: .aToB, origin: .zero, rampStep: rampStep),
                         TimelineSchedule(timeline: timeline, link: link, direction: .bToA, origin: .zero, rampStep: rampStep)]
        var current = [aToB, bToA]
        var steps: [(at: Instant, direction: Int, step: LinkStep)] = []
        for d in 0..<2 {
            while let (at, step) = schedules[d].popNext(current: current[d]) {
                if case let .set(p) = step { current[d] = current[d].updated(by: p) }
                steps.append((at, d, step))
            }
        }
        // Stable: within one direction, steps are already in order.
        let order = steps.indices.sorted { (steps[$0].at, steps[$0].direction, $0) < (steps[$1].at, steps[$1].direction, $1) }
        var log = CoverageEventLog()
        var out: [(at: Instant, body: EventBody)] = []
        for i in order {
            let s = steps[i]
            for body in log.apply(link: link, direction: s.direction == 0 ? .aToB : .bToA, step: s.step) { out.append((s.at, body)) }
        }
        return out
    }
}
