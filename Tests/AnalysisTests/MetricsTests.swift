import Testing
import Core
@testable import Analysis

/// Hand-made runs with answers worked out by hand (docs/METRICS.md).
enum HandMadeRuns {
    static func ms(_ n: Int) -> Instant { Instant(nanoseconds: Int64(n) * 1_000_000) }

    static func header(_ node: String, stack: String) -> LogEvent {
        LogEvent(time: .zero, source: .node(node), body: .logStart(version: 1, run: "t1", stack: stack, attributes: [:]))
    }

    /// Writes events as a log file and reads it back, so every test also goes through the format.
    static func file(_ name: String, _ events: [LogEvent]) -> EventLogFile {
        let log = EventLogFile.parse(text: events.map(\.jsonLine).joined(separator: "\n") + "\n", file: name)
        precondition(log.problems.isEmpty, "\(log.problems)")
        return log
    }

    /// Make-before-break over MPTCP: link a covers 0–5 s, link b from 4 s, both 10 Mbit/s
    /// (their states at t = 0 are initial states, not handovers).
    /// CBR 100 msg/s × 1000 B from 0 to 10 s (message k sent at 10k ms, delivered 1 ms later),
    /// except messages 500–529 (sent 5.00–5.29 s), held behind the dead subflow and
    /// delivered together at 5.301 s with message 530.
    static func makeBeforeBreak() -> [EventLogFile] {
        var car = [header("car", stack: "kernel-mptcp"),
                   LogEvent(time: .zero, source: .node("car"), body: .appStart(conn: "f", app: "cbr", role: .sender, offered: .kbit(800)))]
        var server = [header("server", stack: "kernel-mptcp"),
                      LogEvent(time: .zero, source: .node("server"), body: .appStart(conn: "f", app: "sink", role: .receiver, offered: nil)),
                      LogEvent(time: ms(40), source: .node("server"), body: .connectionState(conn: "f", state: .established, mptcp: true, reason: nil)),
                      LogEvent(time: ms(50), source: .node("server"), body: .subflowState(SubflowChange(conn: "f", subflow: 0, state: .established, path: "a")))]
        for k in 0..<1000 {
            let sent = ms(10 * k)
            let m = AppMessage(conn: "f", sequence: UInt64(k), size: 1000, sentAt: sent)
            car.append(LogEvent(time: sent, source: .node("car"), body: .appSent(m)))
            let at = (500..<531).contains(k) ? ms(5301) : sent + .milliseconds(1)
            server.append(LogEvent(time: at, source: .node("server"), body: .appDelivered(m)))
        }
        car.append(LogEvent(time: ms(4050), source: .node("car"), body: .joinAttempt(conn: "f", subflow: 1, path: "b", local: nil, remote: nil)))
        car.append(LogEvent(time: ms(5250), source: .node("car"), body: .reinjection(conn: "f", bytes: 30_000, from: 0, to: 1)))
        car.append(LogEvent(time: ms(10_000), source: .node("car"), body: .appStop(conn: "f", reason: "done")))
        server.append(LogEvent(time: ms(4100), source: .node("server"), body: .subflowState(SubflowChange(conn: "f", subflow: 1, state: .established, path: "b"))))
        server.append(LogEvent(time: ms(5200), source: .node("server"), body: .subflowState(SubflowChange(conn: "f", subflow: 0, state: .failed, path: "a"))))
        server.append(LogEvent(time: ms(10_000), source: .node("server"), body: .connectionState(conn: "f", state: .finished, mptcp: true, reason: nil)))
        server.sort { $0.time < $1.time }
        car.sort { $0.time < $1.time }
        let links = [
            LogEvent(time: .zero, source: .link("a"), body: .logStart(version: 1, run: "t1", stack: "kernel-mptcp", attributes: [:])),
            LogEvent(time: .zero, source: .link("a"), body: .coverage(covered: true, loss: .silent, rate: .mbit(10))),
            LogEvent(time: .zero, source: .link("b"), body: .coverage(covered: false, loss: .silent, rate: .mbit(10))),
            LogEvent(time: ms(4000), source: .link("b"), body: .coverage(covered: true, loss: .silent, rate: .mbit(10))),
            LogEvent(time: ms(5000), source: .link("a"), body: .coverage(covered: false, loss: .silent, rate: nil)),
            LogEvent(time: ms(10_000), source: .node("run"), body: .runEnd),
        ]
        return [file("car.jsonl", car), file("server.jsonl", server), file("emulator.jsonl", links)]
    }

    /// Plain TCP on link a only; a covers 0–5 s, b 5.5–10 s: the stream stops at 5 s for good.
    static func breakBeforeMakeTCP() -> [EventLogFile] {
        var car = [header("car", stack: "kernel-tcp"),
                   LogEvent(time: .zero, source: .node("car"), body: .appStart(conn: "f", app: "cbr", role: .sender, offered: .kbit(800)))]
        var server = [header("server", stack: "kernel-tcp"),
                      LogEvent(time: ms(30), source: .node("server"), body: .subflowState(SubflowChange(conn: "f", subflow: 0, state: .established, path: "a")))]
        for k in 0..<1000 {
            let m = AppMessage(conn: "f", sequence: UInt64(k), size: 1000, sentAt: ms(10 * k))
            car.append(LogEvent(time: ms(10 * k), source: .node("car"), body: .appSent(m)))
            if k < 500 { server.append(LogEvent(time: ms(10 * k + 1), source: .node("server"), body: .appDelivered(m))) }
        }
        car.append(LogEvent(time: ms(10_000), source: .node("car"), body: .appStop(conn: "f", reason: "done")))
        server.sort { $0.time < $1.time }
        let links = [
            LogEvent(time: .zero, source: .link("a"), body: .logStart(version: 1, run: "t2", stack: "kernel-tcp", attributes: [:])),
            LogEvent(time: .zero, source: .link("a"), body: .coverage(covered: true, loss: .silent, rate: .mbit(10))),
            LogEvent(time: .zero, source: .link("b"), body: .coverage(covered: false, loss: .silent, rate: .mbit(10))),
            LogEvent(time: ms(5000), source: .link("a"), body: .coverage(covered: false, loss: .silent, rate: nil)),
            LogEvent(time: ms(5500), source: .link("b"), body: .coverage(covered: true, loss: .silent, rate: .mbit(10))),
            LogEvent(time: ms(10_000), source: .node("run"), body: .runEnd),
        ]
        return [file("car.jsonl", car), file("server.jsonl", server), file("emulator.jsonl", links)]
    }
}

@Suite struct MetricsTests {
    let mbb = RunAnalysis.analyze(logs: HandMadeRuns.makeBeforeBreak())
    let tcp = RunAnalysis.analyze(logs: HandMadeRuns.breakBeforeMakeTCP())

    @Test func flowIsFoundAndPaired() throws {
        #expect(mbb.stack == "kernel-mptcp")
        #expect(mbb.run == "t1")
        #expect(mbb.duration == HandMadeRuns.ms(10_000))
        let f = try #require(mbb.flows.first)
        #expect(mbb.flows.count == 1)
        #expect(f.conn == "f" && f.receiver == "server" && f.sender == "car" && f.app == "cbr")
        #expect(f.mptcp == true)
        #expect(f.endedCleanly)
        // An orderly end: the flow ends with its last delivery (message 999 at 9.991 s), not at the FIN.
        #expect(f.end == HandMadeRuns.ms(9991))
    }

    @Test func gapIsTheLongestSilence() throws {
        let f = mbb.flows[0]
        // Message 499 arrives at 4.991 s, the next arrivals at 5.301 s.
        #expect(f.maxGap == .milliseconds(310))
        #expect(f.maxGapStart == HandMadeRuns.ms(4991))
        // CBR at 100 msg/s: threshold is max(100 ms, 2 × 10 ms).
        #expect(f.stallThreshold == .milliseconds(100))
        #expect(f.stalls == [DeliveryGap(start: HandMadeRuns.ms(4991), end: HandMadeRuns.ms(5301))])
        #expect(f.stallTime == .milliseconds(310))
    }

    @Test func deliveredAgainstIdeal() {
        let f = mbb.flows[0]
        #expect(f.deliveredBytes == 1_000_000)
        // 800 kbit/s offered for 10 s, coverage (10 Mbit/s) always present.
        #expect(f.idealBytes == 1_000_000)
        #expect(f.goodputMean == 8_000_000 / 9.991)
        #expect(mbb.metric("delivered_ratio") == .ratio(1))
        #expect(f.messagesSent == 1000 && f.messagesDelivered == 1000 && f.messagesLost == 0)
    }

    @Test func goodputSeriesBins() {
        let g = mbb.flows[0].goodput
        #expect(g.count == 100)
        #expect(g[0].bitsPerSecond == 800_000)
        #expect(g[50].bitsPerSecond == 0 && g[51].bitsPerSecond == 0 && g[52].bitsPerSecond == 0)
        // 5.3–5.4 s: messages 530–539 plus the 30 held back.
        #expect(g[53].start == HandMadeRuns.ms(5300))
        #expect(g[53].bitsPerSecond == 3_200_000)
    }

    @Test func latencyPercentilesByNearestRank() throws {
        let l = try #require(mbb.flows[0].latency)
        // 970 messages at 1 ms; messages 500..529 at 301, 291, ..., 11 ms.
        #expect(l.count == 1000)
        #expect(l.p50 == .milliseconds(1))
        #expect(l.p90 == .milliseconds(1))
        #expect(l.p99 == .milliseconds(201))   // rank 990: the 20th of 11, 21, ...
        #expect(l.p999 == .milliseconds(291))  // rank 999
        #expect(l.max == .milliseconds(301))
        // (970 × 1 + Σ_{j=0}^{29} (11 + 10j)) / 1000 = (970 + 4680) / 1000 ms
        #expect(l.mean == .microseconds(5650))
    }

    @Test func subflowsAndRedundancy() {
        let f = mbb.flows[0]
        #expect(f.subflowObserver == "server")
        #expect(f.subflows == [
            SubflowSpan(subflow: 0, path: "a", start: HandMadeRuns.ms(50), end: HandMadeRuns.ms(5200), endState: .failed),
            SubflowSpan(subflow: 1, path: "b", start: HandMadeRuns.ms(4100), end: nil, endState: nil),
        ])
        #expect(f.subflowCounts.map { [$0.time.nanoseconds / 1_000_000, Int64($0.established), Int64($0.usable)] } == [
            [0, 0, 0], [50, 1, 1], [4100, 2, 2], [5000, 2, 1], [5200, 1, 1],
        ])
        // Two usable subflows from 4.1 s (b joined) until 5 s (a lost coverage).
        #expect(f.redundancyTime == .milliseconds(900))
        #expect(f.maxSubflows == 2)
        #expect(f.reinjectedBytes == 30_000)
        #expect(f.joinAttempts == 1)
    }

    @Test func perHandover() {
        let h = mbb.flows[0].handovers
        // a covered and b out of range at t = 0 are the links' initial states, not handovers.
        #expect(h.map(\.link) == ["b", "a"])
        #expect(h.map(\.covered) == [true, false])
        #expect(mbb.metric("handovers") == .count(2))
        // b arrives at 4 s: its window [4 s, 5 s) touches the silence that starts at 4.991 s.
        #expect(h[0].gap == .milliseconds(310))
        #expect(h[0].subflowUsableAfter == .milliseconds(100))
        #expect(h[0].trafficMovedAfter == nil)
        // a is lost at 5 s: delivery resumes at 5.301 s.
        #expect(h[1].gap == .milliseconds(310))
        #expect(h[1].gapStart == HandMadeRuns.ms(4991) && h[1].gapEnd == HandMadeRuns.ms(5301))
        #expect(h[1].trafficMovedAfter == .milliseconds(301))
        #expect(h[1].subflowUsableAfter == nil)
        // Coverage bands start at the run's start for a link covered then.
        #expect(mbb.coverage.map { [$0.link, "\($0.start.nanoseconds / 1_000_000)", $0.end.map { "\($0.nanoseconds / 1_000_000)" } ?? "-"] }
                == [["a", "0", "5000"], ["b", "4000", "-"]])
    }

    @Test func survivesOverlappingCoverage() {
        #expect(mbb.flows[0].survived)
        #expect(mbb.metric("survived") == .flag(true))
        #expect(mbb.metric("max_gap") == .duration(.milliseconds(310)))
        #expect(mbb.metric("max_join_latency") == .duration(.milliseconds(100)))
        #expect(mbb.metric("max_move_latency") == .duration(.milliseconds(301)))
        #expect(mbb.metric("redundancy") == .duration(.milliseconds(900)))
        #expect(mbb.metric("latency_p99") == .duration(.milliseconds(201)))
        #expect(mbb.metric("reinjected_bytes") == .bytes(30_000))
    }

    @Test func plainTCPLosingItsOnlyPathStallsForTheRestOfTheRun() throws {
        let f = try #require(tcp.flows.first)
        // Last delivery 4.991 s, run ends at 10 s with no orderly close: the silence lasts to the end.
        #expect(f.maxGap == .milliseconds(5009))
        #expect(f.stallTime == .milliseconds(5009))
        #expect(!f.survived)
        #expect(f.deliveredBytes == 500_000)
        // Coverage offered 0–5 s and 5.5–10 s at 800 kbit/s: 9.5 s × 100 kB/s.
        #expect(f.idealBytes == 950_000)
        #expect(f.messagesLost == 500)
        #expect(f.latency?.max == .milliseconds(1))
        // b arrives at 5.5 s but TCP never uses it.
        let arrival = try #require(f.handovers.first { $0.link == "b" })
        #expect(arrival.subflowUsableAfter == nil)
        #expect(tcp.metric("max_join_latency") == nil)
        #expect(f.handovers.map(\.link) == ["a", "b"])
        let loss = try #require(f.handovers.first { $0.link == "a" && !$0.covered })
        #expect(loss.trafficMovedAfter == nil)
        #expect(f.redundancyTime == .zero)
    }

    @Test func framesStillInFlightAfterTheLastChangeDoNotMeanSurvival() {
        // Plain TCP's last message arrives 5 ms after coverage last changed (it was
        // already in flight), then nothing for 4.5 s: that connection did not carry on.
        var logs = HandMadeRuns.breakBeforeMakeTCP()
        let late = AppMessage(conn: "f", sequence: 500, size: 1000, sentAt: HandMadeRuns.ms(5000))
        logs[1].events.append(LogEvent(time: HandMadeRuns.ms(5505), source: .node("server"), body: .appDelivered(late)))
        let r = RunAnalysis.analyze(logs: logs)
        #expect(!r.flows[0].survived)
        // A delivery after the threshold has passed does count.
        let later = AppMessage(conn: "f", sequence: 501, size: 1000, sentAt: HandMadeRuns.ms(5600))
        logs[1].events.append(LogEvent(time: HandMadeRuns.ms(5650), source: .node("server"), body: .appDelivered(later)))
        #expect(RunAnalysis.analyze(logs: logs).flows[0].survived)
    }

    @Test func aResetConnectionDidNotSurvive() {
        var logs = HandMadeRuns.makeBeforeBreak()
        logs[0].events.append(LogEvent(time: HandMadeRuns.ms(9000), source: .node("car"),
                                       body: .connectionState(conn: "f", state: .reset, mptcp: true, reason: "RST")))
        let r = RunAnalysis.analyze(logs: logs)
        #expect(!r.flows[0].survived)
        #expect(r.flows[0].failure == "reset at 9.000 s (car: RST)")
        #expect(r.flows[0].endedCleanly == false)
    }

    @Test func byteStreamDeliveriesGiveGapsAndGoodput() {
        // A bulk sink reading 125 000 B every 100 ms for 2 s, then nothing until 2.6 s, then on to 3 s.
        var events = [LogEvent(time: .zero, source: .node("srv"), body: .appStart(conn: "b", app: "sink", role: .receiver, offered: nil))]
        var total: Int64 = 0
        for k in 1...30 where !(21...25).contains(k) {
            total += 125_000
            events.append(LogEvent(time: HandMadeRuns.ms(100 * k), source: .node("srv"), body: .bytesDelivered(conn: "b", bytes: 125_000, total: total)))
        }
        events.append(LogEvent(time: HandMadeRuns.ms(3000), source: .node("srv"), body: .connectionState(conn: "b", state: .finished, mptcp: false, reason: nil)))
        let r = RunAnalysis.analyze(events: events)
        let f = r.flows[0]
        #expect(f.deliveredBytes == 25 * 125_000)
        #expect(f.maxGap == .milliseconds(600))          // 2.0 s → 2.6 s
        #expect(f.stallTime == .milliseconds(600))
        #expect(f.goodput[5].bitsPerSecond == 10_000_000)  // 125 kB in a 100 ms bin
        #expect(f.goodputMean == Double(25 * 125_000 * 8) / 3)
        #expect(f.idealBytes == nil)                        // bulk over links of unknown rate
        #expect(f.survived)                                 // orderly end, no coverage events
        #expect(f.latency == nil)
    }
}

@Suite struct RunGroupingTests {
    @Test func filesGroupByStackAndStacklessFilesFollowTheirRunID() {
        func file(_ name: String, run: String, stack: String?) -> EventLogFile {
            HandMadeRuns.file(name, [LogEvent(time: .zero, source: .node(name), body: .logStart(version: 1, run: run, stack: stack, attributes: [:]))])
        }
        let groups = EventLogFile.groupIntoRuns([
            file("a", run: "r1", stack: "kernel-tcp"), file("b", run: "r2", stack: "kernel-mptcp"),
            file("emu1", run: "r1", stack: nil), file("c", run: "r1", stack: "kernel-tcp"), file("lost", run: "r9", stack: nil),
            file("d", run: "r3", stack: "kernel-tcp"),
        ])
        // Two runs of one stack (another seed, say) stay apart.
        #expect(groups.map { $0.map(\.file) } == [["a", "emu1", "c"], ["b"], ["lost"], ["d"]])
        // A file that could not be read at all contributes nothing.
        #expect(EventLogFile.groupIntoRuns([EventLogFile.parse(text: "garbage", file: "x")]).isEmpty)
    }

    @Test func redundancyCountsOnlyUntilTheFlowEnds() {
        // Two subflows from 1 s; last delivery at 1.5 s, orderly end at 2 s; a third subflow appears at 3 s.
        let sf = { (t: Int, id: Int, state: SubflowState) in
            LogEvent(time: HandMadeRuns.ms(t), source: .node("s"), body: .subflowState(SubflowChange(conn: "c", subflow: id, state: state)))
        }
        let events = [
            LogEvent(time: .zero, source: .node("s"), body: .appStart(conn: "c", app: "sink", role: .receiver, offered: nil)),
            sf(1000, 0, .established), sf(1000, 1, .established),
            LogEvent(time: HandMadeRuns.ms(1500), source: .node("s"), body: .bytesDelivered(conn: "c", bytes: 10, total: 10)),
            LogEvent(time: HandMadeRuns.ms(2000), source: .node("s"), body: .connectionState(conn: "c", state: .finished, mptcp: true, reason: nil)),
            sf(3000, 2, .established), sf(3500, 2, .closed),
        ]
        let f = RunAnalysis.analyze(events: events).flows[0]
        #expect(f.end == HandMadeRuns.ms(1500))
        #expect(f.redundancyTime == .milliseconds(500))
        #expect(f.maxSubflows == 3)
    }
}

@Suite struct JoinLatencyTests {
    @Test func aPathPresentBeforeTheConnectionIsMeasuredFromItsStart() {
        // a starts out of range and arrives at 0.5 s, before the receiver starts at 1 s.
        let events = [
            LogEvent(time: .zero, source: .link("a"), body: .coverage(covered: false, loss: .silent, rate: nil)),
            LogEvent(time: HandMadeRuns.ms(500), source: .link("a"), body: .coverage(covered: true, loss: .silent, rate: nil)),
            LogEvent(time: HandMadeRuns.ms(1000), source: .node("s"), body: .appStart(conn: "c", app: "sink", role: .receiver, offered: nil)),
            LogEvent(time: HandMadeRuns.ms(1200), source: .node("s"), body: .subflowState(SubflowChange(conn: "c", subflow: 0, state: .established, path: "a"))),
            LogEvent(time: HandMadeRuns.ms(1300), source: .node("s"), body: .bytesDelivered(conn: "c", bytes: 5, total: 5)),
        ]
        let f = RunAnalysis.analyze(events: events).flows[0]
        #expect(f.handovers.count == 1)
        #expect(f.handovers[0].subflowUsableAfter == .milliseconds(200))
        // With the connection's start logged, it counts from there.
        let connecting = LogEvent(time: HandMadeRuns.ms(1150), source: .node("c"), body: .connectionState(conn: "c", state: .connecting, mptcp: nil, reason: nil))
        let g = RunAnalysis.analyze(events: Array(events[0...2]) + [connecting] + Array(events[3...])).flows[0]
        #expect(g.handovers[0].subflowUsableAfter == .milliseconds(50))
    }

    @Test func aSubflowKeptThroughAnOutageIsUsableWhenItMovesBytesAgain() {
        // Link a covered 0–1 s and from 2 s; the subflow on a stays established throughout.
        func progress(_ t: Int, _ acked: Int64) -> LogEvent {
            LogEvent(time: HandMadeRuns.ms(t), source: .node("car"),
                     body: .subflowProgress(conn: "c", subflow: 0, path: "a", bytesAcked: acked, bytesReceived: 0))
        }
        var events = [
            LogEvent(time: .zero, source: .link("a"), body: .coverage(covered: true, loss: .silent, rate: nil)),
            LogEvent(time: .zero, source: .node("s"), body: .appStart(conn: "c", app: "sink", role: .receiver, offered: nil)),
            LogEvent(time: HandMadeRuns.ms(100), source: .node("s"), body: .subflowState(SubflowChange(conn: "c", subflow: 0, state: .established, path: "a"))),
            LogEvent(time: HandMadeRuns.ms(500), source: .node("s"), body: .bytesDelivered(conn: "c", bytes: 5, total: 5)),
            LogEvent(time: HandMadeRuns.ms(1000), source: .link("a"), body: .coverage(covered: false, loss: .silent, rate: nil)),
            LogEvent(time: HandMadeRuns.ms(2000), source: .link("a"), body: .coverage(covered: true, loss: .silent, rate: nil)),
            LogEvent(time: HandMadeRuns.ms(2400), source: .node("s"), body: .bytesDelivered(conn: "c", bytes: 5, total: 10)),
        ]
        let without = RunAnalysis.analyze(events: events).flows[0].handovers[1]
        #expect(without.subflowPersisted && without.subflowUsableAfter == .zero)
        // Progress at 0.5 s, a repeat of the same counters at 2.1 s (no advance), an advance at 2.3 s.
        events += [progress(500, 100), progress(2100, 100), progress(2300, 200)]
        events.sort { $0.time < $1.time }
        let with = RunAnalysis.analyze(events: events).flows[0].handovers[1]
        #expect(with.subflowPersisted && with.subflowUsableAfter == .milliseconds(300))
    }
}

/// Issue 10's analysis defects, each on a hand-made log with its answer worked out.
@Suite struct CoverageStateTests {
    static func ms(_ n: Int) -> Instant { HandMadeRuns.ms(n) }
    static func cover(_ t: Int, _ link: String, _ covered: Bool) -> LogEvent {
        LogEvent(time: ms(t), source: .link(link), body: .coverage(covered: covered, loss: .silent, rate: nil))
    }
    static func subflow(_ t: Int, _ id: Int, _ path: String, _ state: SubflowState = .established) -> LogEvent {
        LogEvent(time: ms(t), source: .node("car"), body: .subflowState(SubflowChange(conn: "c", subflow: id, state: state, path: path)))
    }
    /// A sink on the car receiving 1000 B every 10 ms from 0.3 s to 9 s, then an orderly end.
    static func sink(from: Int = 300, to: Int = 9000) -> [LogEvent] {
        var events = [LogEvent(time: .zero, source: .node("car"), body: .appStart(conn: "c", app: "sink", role: .receiver, offered: nil))]
        var total: Int64 = 0
        for t in stride(from: from, through: to, by: 10) {
            total += 1000
            events.append(LogEvent(time: ms(t), source: .node("car"), body: .bytesDelivered(conn: "c", bytes: 1000, total: total)))
        }
        events.append(LogEvent(time: ms(to), source: .node("car"), body: .connectionState(conn: "c", state: .finished, mptcp: true, reason: nil)))
        return events
    }
    static func analyze(_ events: [LogEvent]) -> RunResult {
        RunAnalysis.analyze(events: events.enumerated().sorted { ($0.element.time, $0.offset) < ($1.element.time, $1.offset) }.map(\.element))
    }

    @Test func initialStatesAreNotHandovers() {
        // What the orchestrator writes: a covered and b out of range at t = 0, b arrives at
        // 3 s, a leaves at 6 s. Only those two are changes, whatever the initial states say.
        let r = Self.analyze([Self.cover(0, "a", true), Self.cover(0, "b", false), Self.cover(3000, "b", true),
                              Self.cover(6000, "a", false)] + Self.sink())
        let h = r.flows[0].handovers
        #expect(h.map { "\($0.link) \($0.covered) \($0.time.nanoseconds / 1_000_000)" } == ["b true 3000", "a false 6000"])
        #expect(r.metric("handovers") == .count(2))
        // A repeated initial state, or a first "covered" on a link that starts covered, changes nothing.
        let s = Self.analyze([Self.cover(0, "a", true), Self.cover(0, "a", true), Self.cover(2000, "c", true)] + Self.sink())
        #expect(s.flows[0].handovers.isEmpty && s.metric("handovers") == .count(0))
        #expect(s.coverage.map(\.link) == ["a", "c"] && s.coverage.allSatisfy { $0.start == .zero && $0.end == nil })
    }

    @Test func linksWithoutEventsAreCoveredAndALinkIsCoveredUntilItsFirstLoss() {
        // The drive of issue 10: a is lost at 5 s (its only event), b never gets one.
        // Two usable subflows from 0.305 s (b's subflow) until 5 s: 4695 ms of redundancy.
        let r = Self.analyze([Self.cover(5000, "a", false), Self.subflow(249, 0, "a"), Self.subflow(305, 1, "b")] + Self.sink())
        let f = r.flows[0]
        #expect(f.subflowCounts.map { [$0.time.nanoseconds / 1_000_000, Int64($0.established), Int64($0.usable)] } == [
            [0, 0, 0], [249, 1, 1], [305, 2, 2], [5000, 2, 1],
        ])
        #expect(f.redundancyTime == .milliseconds(4695))
        #expect(r.metric("redundancy") == .duration(.milliseconds(4695)))
        #expect(f.handovers.map(\.covered) == [false])
        #expect(r.coverage == [CoverageBand(link: "a", start: .zero, end: Self.ms(5000), rate: nil)])
    }

    @Test func idealCountsALinkAsCoveredBeforeItsFirstLoss() {
        // 1 Mbit/s on a, covered until 2 s; a CBR sender offering 2 Mbit/s from 0 to 4 s.
        let events = [
            LogEvent(time: .zero, source: .link("a"), body: .linkParameters(rate: .mbit(1), delay: nil, loss: nil)),
            Self.cover(2000, "a", false),
            LogEvent(time: .zero, source: .node("srv"), body: .appStart(conn: "c", app: "cbr", role: .sender, offered: .mbit(2))),
            LogEvent(time: Self.ms(4000), source: .node("srv"), body: .appStop(conn: "c", reason: "done")),
        ] + Self.sink(to: 1000)
        // 1 Mbit/s × 2 s = 250 000 B; nothing after a is lost.
        #expect(Self.analyze(events).flows[0].idealBytes == 250_000)
    }

    @Test func oneDeliveryAtTheEndIsOneLongSilence() {
        // A sink that logged all its bytes at once at 3.3 s (the coalescing bug of issue 10's
        // bulk flow with max_gap = 0) then finished: silent from its start at 0.9 s until then.
        let events = [
            LogEvent(time: Self.ms(900), source: .node("car"), body: .appStart(conn: "c", app: "sink", role: .receiver, offered: nil)),
            LogEvent(time: Self.ms(3300), source: .node("car"), body: .bytesDelivered(conn: "c", bytes: 6_160_384, total: 6_160_384)),
            LogEvent(time: Self.ms(3300), source: .node("car"), body: .connectionState(conn: "c", state: .finished, mptcp: true, reason: nil)),
        ]
        let f = Self.analyze(events).flows[0]
        #expect(f.end == Self.ms(3300))
        #expect(f.maxGap == .milliseconds(2400))
        #expect(f.maxGapStart == Self.ms(900))
        #expect(f.stallTime == .milliseconds(2400))
        // Two deliveries keep the usual definition: the gap between them.
        let two = Self.analyze(Array(events[0...1]) + [LogEvent(time: Self.ms(3400), source: .node("car"),
            body: .bytesDelivered(conn: "c", bytes: 10, total: 6_160_394))] + [events[2]]).flows[0]
        #expect(two.maxGap == .milliseconds(100))
    }
}
