import Core
import LinkModel
import Testing

@Suite struct MahimahiTraceTests {
    let trace = try! MahimahiTrace.parse("1\n1\n3\n7\n10\n")

    @Test func aSaturatedLinkUsesExactlyTheTracesOpportunitiesCyclically() {
        var link = TraceLink<TestPacket>(trace: trace, origin: .zero)
        let (out, drops) = drive(&link, packets(12, bytes: 1500))
        #expect(drops.isEmpty)
        // Cycle 0: 1 1 3 7 10; the trace repeats with period 10 ms.
        #expect(out.map(\.1) == [1, 1, 3, 7, 10, 11, 11, 13, 17, 20, 21, 21].map { Instant.ms($0) })
        #expect(link.opportunitiesUsed == 12)
    }

    @Test func smallPacketsShareAnOpportunityAndLargeOnesSpanTwo() {
        var link = TraceLink<TestPacket>(trace: trace, origin: .zero)
        let arrivals: [(Instant, TestPacket)] = [(.zero, TestPacket(id: 0, byteCount: 500)), (.zero, TestPacket(id: 1, byteCount: 1000)),
                                                 (.zero, TestPacket(id: 2, byteCount: 2000)), (.zero, TestPacket(id: 3, byteCount: 100))]
        let (out, _) = drive(&link, arrivals)
        // 500+1000 fill the first opportunity; 2000 takes the second and 500 of the third,
        // where the 100-byte packet follows it.
        #expect(out.map(\.0.id) == [0, 1, 2, 3])
        #expect(out.map(\.1) == [.ms(1), .ms(1), .ms(3), .ms(3)])
    }

    @Test func opportunitiesWhileIdleAreLost() {
        var link = TraceLink<TestPacket>(trace: trace, origin: .ms(1000))
        let (out, _) = drive(&link, [(.ms(1004), TestPacket(id: 0, byteCount: 1500)), (.ms(1024), TestPacket(id: 1, byteCount: 1500)),
                                     (.ms(1030), TestPacket(id: 2, byteCount: 1500))])
        // 4 ms into the trace the next opportunity is at 7; 24 ms is cycle 2 at 4 -> 27.
        // 30 ms: the last line of cycle 2 (10 + 20) is at exactly 30.
        #expect(out.map(\.1) == [.ms(1007), .ms(1027), .ms(1030)])
    }

    @Test func aTraceThatDoesNotRepeatStopsAtItsEnd() throws {
        let once = try MahimahiTrace.parse("0\n5\n", cyclic: false)
        var link = TraceLink<TestPacket>(trace: once, origin: .zero)
        let (out, _) = drive(&link, packets(3, bytes: 1500))
        #expect(out.map(\.1) == [.ms(0), .ms(5)])
        #expect(link.nextEventTime == .distantFuture)
    }

    @Test func parseErrorsNameTheLineAndColumn() {
        func error(_ text: String, cyclic: Bool = true) -> String? {
            do { _ = try MahimahiTrace.parse(text, file: "cell.up", cyclic: cyclic); return nil }
            catch { return error.description }
        }
        #expect(error("1\n2\nthree\n") == "cell.up:3:1: expected a whole number of milliseconds, found 'three'")
        #expect(error("1\n  -4\n") == "cell.up:2:3: expected a whole number of milliseconds, found '-4'")
        #expect(error("5\n9\n7\n")?.hasPrefix("cell.up:3:1: timestamp 7 is earlier") == true)
        #expect(error("") == "cell.up:1:1: the trace has no delivery opportunities")
        #expect(error("\n\n") == "cell.up:3:1: the trace has no delivery opportunities")
        #expect(error("0\n0\n")?.hasPrefix("cell.up:") == true)
        #expect(error("0\n0\n", cyclic: false) == nil)
        #expect(error("1.5\n") != nil)
        #expect(error("99999999999999999999\n") != nil)
        #expect(error("1\r\n2\r\n") == nil)
    }
}

@Suite struct LinkPipelineTests {
    @Test func parametersBuildAPipelineWithExactTiming() {
        var link = LinkPipeline<TestPacket>(parameters: LinkParameters(delay: .milliseconds(10), rate: .mbit(8)),
                                            seed: 1, name: "l")
        let (out, _) = drive(&link, packets(3))
        #expect(out.map(\.1) == [.ms(11), .ms(12), .ms(13)])
    }

    @Test func sameSeedSameDropsThroughThePipeline() {
        func run(_ seed: UInt64, name: String = "radio") -> [Int] {
            var link = LinkPipeline<TestPacket>(parameters: LinkParameters(delay: .milliseconds(5), loss: Probability(0.1)),
                                                seed: seed, name: name)
            return drive(&link, packets(2000, every: .microseconds(100))).drops.map(\.packet.id)
        }
        #expect(run(4) == run(4))
        #expect(run(4) != run(5))
        #expect(run(4) != run(4, name: "other"))  // streams are per link
    }

    @Test func queueLimitsComeFromTheParameters() {
        var link = LinkPipeline<TestPacket>(parameters: LinkParameters(rate: .mbit(8), queuePackets: 2), seed: 1, name: "q")
        let (out, drops) = drive(&link, packets(10))
        #expect(out.count == 3)
        #expect(drops.map(\.reason) == Array(repeating: .queueFull, count: 7))
    }

    @Test func applyChangesParametersInPlace() {
        var link = LinkPipeline<TestPacket>(parameters: LinkParameters(delay: .milliseconds(10)), seed: 1, name: "x")
        link.enqueue(TestPacket(id: 0, byteCount: 100), now: .zero)
        link.apply(LinkParameters(delay: .milliseconds(30), rate: .mbit(8)), now: .ms(1))
        link.enqueue(TestPacket(id: 1, byteCount: 1000), now: .ms(2))
        let (out, _) = drive(&link, [])
        // The first keeps the delay it was given; the second has 1 ms of serialisation and 30 ms.
        #expect(out.map(\.1) == [.ms(10), .ms(33)])
        #expect(link.parameters == LinkParameters(delay: .milliseconds(30), rate: .mbit(8)))
    }
}

@Suite struct TimelineApplicationTests {
    @Test func rampsMoveLinearlyInStepsAndEndOnTheTarget() {
        var s = TimelineSchedule(events: [
            TimelineEvent(at: .milliseconds(100), link: "l", change: .ramp(LinkParameters(delay: .milliseconds(50), rate: .mbit(20)), over: .milliseconds(40))),
        ], origin: .ms(1000), rampStep: .milliseconds(10))
        var current = LinkParameters(delay: .milliseconds(10), rate: .mbit(10))
        var steps: [(Instant, LinkParameters)] = []
        while let (at, step) = s.popNext(current: current) {
            guard case .set(let p) = step else { Issue.record("unexpected step"); break }
            current = current.updated(by: p)
            steps.append((at, p))
        }
        #expect(steps.map(\.0) == [1100, 1110, 1120, 1130, 1140].map { Instant.ms($0) })
        #expect(steps.map(\.1.delay) == [10, 20, 30, 40, 50].map { Interval.milliseconds($0) })
        #expect(steps.map(\.1.rate) == [10, 12.5, 15, 17.5, 20].map { Bitrate.mbit($0) })
        #expect(s.isFinished)
    }

    @Test func scheduledLinkAppliesChangesAtTheirTimes() {
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: .milliseconds(100), link: "radio", direction: .aToB, change: .set(LinkParameters(delay: .milliseconds(20)))),
            TimelineEvent(at: .milliseconds(100), link: "radio", direction: .bToA, change: .set(LinkParameters(delay: .milliseconds(99)))),
            TimelineEvent(at: .milliseconds(200), link: "radio", change: .coverage(false, loss: .carrier)),
            TimelineEvent(at: .milliseconds(300), link: "radio", change: .coverage(true, loss: .carrier)),
            TimelineEvent(at: .milliseconds(300), link: "other", change: .coverage(false, loss: .silent)),
        ], duration: .seconds(1))
        var link = ScheduledLink(pipeline: LinkPipeline<TestPacket>(parameters: LinkParameters(delay: .milliseconds(10)), seed: 1, name: "radio"),
                                 schedule: TimelineSchedule(timeline: timeline, link: "radio", direction: .aToB, origin: .zero))
        // One packet every 10 ms for 400 ms.
        let (out, drops) = drive(&link, packets(40, bytes: 100, every: .milliseconds(10)))
        var delays: [Int: Interval] = [:]
        for (p, t) in out { delays[p.id] = t - .ms(p.id * 10) }
        #expect(delays[9] == .milliseconds(10))
        #expect(delays[10] == .milliseconds(20))
        #expect(delays[17] == .milliseconds(20))
        // Sent 180..<200 ms would arrive at 200..<220: lost with coverage (carrier loss flushes).
        #expect(Set(out.map(\.0.id)) == Set(Array(0..<18) + Array(30..<40)))
        #expect(drops.count == 12)
        #expect(link.carrier)
        let steps = link.drainAppliedSteps()
        #expect(steps.map(\.at) == [.ms(100), .ms(200), .ms(300)])
    }

    @Test func aLatePollStillDeliversWhatWasDueBeforeTheChange() {
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: .milliseconds(100), link: "l", change: .coverage(false, loss: .silent)),
        ], duration: .seconds(1))
        var link = ScheduledLink(pipeline: LinkPipeline<TestPacket>(parameters: LinkParameters(delay: .milliseconds(10)), seed: 1, name: "l"),
                                 schedule: TimelineSchedule(timeline: timeline, link: "l", direction: .both, origin: .zero))
        link.enqueue(TestPacket(id: 0, byteCount: 100), now: .ms(80))   // due at 90
        link.enqueue(TestPacket(id: 1, byteCount: 100), now: .ms(95))   // due at 105, after coverage went
        // The backend wakes up late, at 150 ms.
        var out: [Int] = []
        while let p = link.dequeue(now: .ms(150)) { out.append(p.id) }
        #expect(out == [0])
        #expect(link.drainDrops().map(\.packet.id) == [1])
        #expect(!link.pipeline.isCovered)
    }
}
