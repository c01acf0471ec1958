import Testing
import Foundation
import Core
import LinkModel
@testable import Mobility
@testable import wayside

/// Route → timeline → link model: a shipped route's timeline replayed on the
/// link models the simulator and the emulator run, in virtual time.
@Suite struct RouteReplayTests {
    struct Probe: LinkPacket, Hashable {
        var id: Int
        var sent: Instant
        var byteCount: Int
    }

    static let root = ShippedRouteTests.root

    /// Sends a probe every `gap` from 0 to the route's end through one direction
    /// of `link`, polling the link at its own event times as a driver does.
    func replay(_ name: String, link: String, direction: LinkDirection, parameters: LinkParameters, gap: Interval = .milliseconds(50))
        throws -> (timeline: CoverageTimeline, delivered: [(Probe, Instant)], dropped: [Probe], link: ScheduledLink<Probe>) {
        let c = try RouteFiles.load(route: Self.root + "/Routes/" + name, topology: nil, seed: nil).coverage
        let end = Instant.zero + c.timeline.duration
        var scheduled = ScheduledLink(pipeline: LinkPipeline<Probe>(parameters: parameters, seed: 1, name: link),
                                      schedule: TimelineSchedule(timeline: c.timeline, link: link, direction: direction, origin: .zero))
        var delivered: [(Probe, Instant)] = []
        var dropped: [Probe] = []
        var nextSend = Instant.zero
        var id = 0
        while true {
            let t = min(nextSend, scheduled.nextEventTime)
            if t > end + .seconds(1) || t == .distantFuture { break }
            while let p = scheduled.dequeue(now: t) { delivered.append((p, t)) }
            if t == nextSend && t <= end {
                scheduled.enqueue(Probe(id: id, sent: t, byteCount: 1000), now: t)
                id += 1
                nextSend = t + gap
            } else if t == nextSend {
                nextSend = .distantFuture
            }
            dropped += scheduled.drainDrops().map(\.packet)
        }
        return (c.timeline, delivered, dropped, scheduled)
    }

    @Test func gapsRouteGatesTheRadioLink() throws {
        let params = LinkParameters(delay: .milliseconds(2), rate: .mbit(12))
        let r = try replay("highway-80-gaps.yaml", link: "car-rsu2", direction: .aToB, parameters: params)
        let covered = r.timeline.coveredIntervals(of: "car-rsu2")
        #expect(covered.count == 1)
        let (start, end) = (Instant.zero + covered[0].start, Instant.zero + covered[0].end)
        // 1000 bytes at 12 Mbit/s take 666.667 us, then 2 ms of propagation.
        let transit = Bitrate.mbit(12).transmissionTime(bytes: 1000) + .milliseconds(2)
        for (p, at) in r.delivered {
            #expect(p.sent >= start && at <= end)
            #expect(at - p.sent == transit)
        }
        // Everything sent while covered and due before coverage ends arrives; nothing else does.
        let expected = r.delivered.count + r.dropped.count
        #expect(r.delivered.count == (0..<expected).filter { k in
            let sent = Instant.zero + .milliseconds(50) * Int64(k)
            return sent >= start && sent + transit <= end
        }.count)
        #expect(r.delivered.count > 400)
        // The route ends out of coverage, with carrier lost.
        #expect(!r.link.carrier)
    }

    @Test func cellularCapacityFollowsTheTrace() throws {
        let r = try replay("cellular-backup.yaml", link: "cellular", direction: .bToA,
                           parameters: LinkParameters(delay: .milliseconds(25), rate: .mbit(20)), gap: .milliseconds(100))
        // After the replay the pipeline's rate is the trace's capacity in the last window.
        let lastSet = r.timeline.events(for: "cellular").last { e in
            if case .set(let p) = e.change, e.direction.includes(.bToA), e.direction != .aToB { return p.rate != nil } else { return false }
        }
        guard case .set(let p)? = lastSet?.change else { Issue.record("no rate set on the downlink"); return }
        #expect(r.link.pipeline.parameters.rate == p.rate)
        // The backup never loses coverage: every probe arrives.
        #expect(r.dropped.isEmpty)
        #expect(r.delivered.count == 811)
    }

    @Test func urbanRouteSetsRateAndLossWhileCovered() throws {
        let r = try replay("urban-stop-and-go.yaml", link: "car-rsu-sw", direction: .bToA,
                           parameters: LinkParameters(delay: .milliseconds(2), rate: .mbit(6)), gap: .milliseconds(20))
        let covered = r.timeline.coveredIntervals(of: "car-rsu-sw")
        func inCoverage(_ t: Instant) -> Bool { covered.contains { Instant.zero + $0.start <= t && t < Instant.zero + $0.end } }
        #expect(r.delivered.allSatisfy { inCoverage($0.0.sent) })
        // During the red light (24.3–44.3 s, 20 m from the unit) the signal is strong:
        // 27 Mbit/s and no loss, so every probe sent then arrives.
        let redLight = r.delivered.filter { $0.0.sent >= .zero + .seconds(25) && $0.0.sent < .zero + .seconds(44) }
        #expect(redLight.count == 950)
    }
}
