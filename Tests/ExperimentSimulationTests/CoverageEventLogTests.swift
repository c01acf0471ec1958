import Analysis
import Core
import ExperimentSimulation
import LinkModel
import Testing

/// The `coverage`/`link.params` events that timeline steps make a link's log
/// write — the same for the emulator's driver and the simulated run.
struct CoverageEventLogTests {
    @Test func aChangeToBothDirectionsIsOneEvent() {
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: .seconds(1), link: "car-rsu1", change: .coverage(false, loss: .silent)),
            TimelineEvent(at: .seconds(2), link: "car-rsu1", change: .coverage(true, loss: .silent)),
        ], duration: .seconds(3))
        let events = CoverageEventLog.events(timeline: timeline, link: "car-rsu1", aToB: LinkParameters(), bToA: LinkParameters())
        #expect(events.map(\.at) == [.zero + .seconds(1), .zero + .seconds(2)])
        #expect(events.map(\.body) == [.coverage(covered: false, loss: .silent, rate: nil), .coverage(covered: true, loss: .silent, rate: nil)])
    }

    @Test func oneDirectionLostMakesTheLinkUncoveredUntilItReturns() {
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: .seconds(1), link: "l", direction: .aToB, change: .coverage(false, loss: .carrier)),
            TimelineEvent(at: .seconds(2), link: "l", direction: .bToA, change: .coverage(false, loss: .carrier)),
            TimelineEvent(at: .seconds(3), link: "l", direction: .aToB, change: .coverage(true, loss: .carrier)),
            TimelineEvent(at: .seconds(4), link: "l", direction: .bToA, change: .coverage(true, loss: .carrier)),
        ], duration: .seconds(5))
        let events = CoverageEventLog.events(timeline: timeline, link: "l", aToB: LinkParameters(), bToA: LinkParameters())
        // Lost at 1 s (one direction is enough), covered again only at 4 s.
        #expect(events.map(\.at) == [.zero + .seconds(1), .zero + .seconds(4)])
    }

    @Test func rateChangesAreLoggedAndCarriedByCoverage() {
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: .seconds(1), link: "l", change: .set(LinkParameters(rate: .mbit(3)))),
            TimelineEvent(at: .seconds(2), link: "l", change: .coverage(false, loss: .silent)),
            TimelineEvent(at: .seconds(3), link: "l", change: .ramp(LinkParameters(rate: .mbit(5)), over: .milliseconds(20))),
        ], duration: .seconds(4))
        let events = CoverageEventLog.events(timeline: timeline, link: "l", aToB: LinkParameters(rate: .mbit(12)),
                                             bToA: LinkParameters(rate: .mbit(12)), rampStep: .milliseconds(10))
        #expect(events.first?.body == .linkParameters(rate: .mbit(3), delay: nil, loss: nil))
        #expect(events.contains { $0.body == .coverage(covered: false, loss: .silent, rate: .mbit(3)) })
        // The ramp's steps at 3.000 s (still 3 Mbit/s: not a change, not logged), 3.010 s (4) and 3.020 s (5).
        let rates = events.compactMap { e -> Bitrate? in if case let .linkParameters(r, _, _) = e.body { return r } else { return nil } }
        #expect(rates == [.mbit(3), .mbit(4), .mbit(5)], "\(rates)")
    }
}
