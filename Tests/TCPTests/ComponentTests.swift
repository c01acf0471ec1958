import Core
import Testing
import Wire
@testable import TCP

@Suite("SipHash-2-4 and RFC 6528 initial sequence numbers")
struct SipHashAndISNTests {
    let key = SipHash24(key: Array(0..<16))

    @Test func referenceVectors() {
        // From the SipHash paper (Appendix A) and its reference implementation.
        #expect(key.hash([]) == 0x726f_db47_dd0e_0e31)
        #expect(key.hash([0]) == 0x74f8_39c5_93dc_67fd)
        #expect(key.hash(Array(0..<15)) == 0xa129_ca61_49be_45e5)
    }

    @Test func keyWordsAreLittleEndian() {
        #expect(key.k0 == 0x0706_0504_0302_0100 && key.k1 == 0x0f0e_0d0c_0b0a_0908)
    }

    @Test func isnIsKeyedAndAdvancesEveryFourMicroseconds() {
        let g = InitialSequenceNumberGenerator(secret: key)
        let a = g.initialSequenceNumber(for: testTuple, at: .zero)
        #expect(g.initialSequenceNumber(for: testTuple, at: .zero) == a)
        #expect(g.initialSequenceNumber(for: testTuple, at: Instant(nanoseconds: 4_000)) == a + 1)
        #expect(g.initialSequenceNumber(for: testTuple, at: Instant(nanoseconds: 3_999)) == a)
        var other = testTuple
        other.remotePort += 1
        #expect(g.initialSequenceNumber(for: other, at: .zero) != a)
        let otherKey = InitialSequenceNumberGenerator(secret: SipHash24(k0: 1, k1: 2))
        #expect(otherKey.initialSequenceNumber(for: testTuple, at: .zero) != a)
    }
}

@Suite("SACK scoreboard (RFC 6675 §3–§4)")
struct ScoreboardTests {
    let base = SequenceNumber(UInt32.max - 2_000) // crosses the wrap

    @Test func blocksMergeAndStaySorted() {
        var s = SACKScoreboard()
        s.add(SACKBlock(left: base + 3_000, right: base + 4_000), cumulativeAck: base, highData: base + 10_000)
        s.add(SACKBlock(left: base + 1_000, right: base + 2_000), cumulativeAck: base, highData: base + 10_000)
        #expect(s.ranges.count == 2 && s.ranges[0].left == base + 1_000)
        let added = s.add(SACKBlock(left: base + 1_500, right: base + 3_500), cumulativeAck: base, highData: base + 10_000)
        #expect(added == 1_000)
        #expect(s.ranges == [SACKBlock(left: base + 1_000, right: base + 4_000)])
        #expect(s.totalSACKedBytes == 3_000)
    }

    @Test func blocksAreClippedToOutstandingData() {
        var s = SACKScoreboard()
        s.add(SACKBlock(left: base - 100, right: base + 100), cumulativeAck: base, highData: base + 50)
        #expect(s.ranges == [SACKBlock(left: base, right: base + 50)])
    }

    @Test func cumulativeAckTrimsTheBoard() {
        var s = SACKScoreboard()
        s.add(SACKBlock(left: base + 1_000, right: base + 2_000), cumulativeAck: base, highData: base + 9_000)
        s.add(SACKBlock(left: base + 3_000, right: base + 4_000), cumulativeAck: base, highData: base + 9_000)
        s.acknowledge(upTo: base + 3_500)
        #expect(s.ranges == [SACKBlock(left: base + 3_500, right: base + 4_000)])
        s.acknowledge(upTo: base + 5_000)
        #expect(s.isEmpty)
    }

    @Test func isLostNeedsEnoughSACKedDataAbove() {
        var s = SACKScoreboard()
        s.add(SACKBlock(left: base + 1_000, right: base + 3_000), cumulativeAck: base, highData: base + 9_000)
        #expect(!s.isLost(base, duplicateThreshold: 3, maximumSegmentSize: 1_000))
        s.add(SACKBlock(left: base + 3_000, right: base + 3_001), cumulativeAck: base, highData: base + 9_000)
        #expect(s.isLost(base, duplicateThreshold: 3, maximumSegmentSize: 1_000))
        // Three separate small blocks count as three discontiguous SACKed sequences.
        var t = SACKScoreboard()
        for i in 1...3 { t.add(SACKBlock(left: base + i * 100, right: base + i * 100 + 10), cumulativeAck: base, highData: base + 9_000) }
        #expect(t.isLost(base, duplicateThreshold: 3, maximumSegmentSize: 1_000))
        #expect(!t.isLost(base + 150, duplicateThreshold: 3, maximumSegmentSize: 1_000))
    }

    @Test func holesCarryTheSACKedBytesAboveThem() {
        var s = SACKScoreboard()
        s.add(SACKBlock(left: base + 1_000, right: base + 2_000), cumulativeAck: base, highData: base + 5_000)
        s.add(SACKBlock(left: base + 3_000, right: base + 4_000), cumulativeAck: base, highData: base + 5_000)
        let holes = s.holes(from: base, to: base + 5_000)
        #expect(holes.map { [$0.left - base, $0.right - base, $0.sackedAbove, $0.rangesAbove] }
                == [[0, 1_000, 2_000, 2], [2_000, 3_000, 1_000, 1], [4_000, 5_000, 0, 0]])
    }
}

@Suite("Receive reassembly")
struct ReassemblyTests {
    let base = SequenceNumber(UInt32.max - 10)

    @Test func runsMergeAndPopInOrder() {
        var q = ReassemblyQueue()
        q.insert(bytes(10, from: 20)[...], at: base + 20)
        q.insert(bytes(10, from: 40)[...], at: base + 40)
        q.insert(bytes(15, from: 25)[...], at: base + 25) // overlaps one run, touches the other
        #expect(q.runs.count == 1 && q.runs[0].start == base + 20 && q.runs[0].bytes == bytes(30, from: 20))
        #expect(q.popContiguous(at: base + 10) == nil)
        q.insert(bytes(12, from: 8)[...], at: base + 8)
        #expect(q.popContiguous(at: base + 10) == bytes(40, from: 10))
        #expect(q.isEmpty)
    }

    @Test func sackBlocksAreReportedMostRecentFirst() {
        var q = ReassemblyQueue()
        q.insert([1][...], at: base + 10)
        q.insert([1][...], at: base + 30)
        q.insert([1][...], at: base + 20)
        q.insert([1][...], at: base + 31)
        #expect(q.sackBlocks(limit: 2) == [SACKBlock(left: base + 30, right: base + 32), SACKBlock(left: base + 20, right: base + 21)])
    }
}

@Suite("Congestion control: NewReno and CUBIC (RFC 5681, RFC 9438)")
struct CongestionControlTests {
    func ack(_ bytes: Int, at t: Interval, flight: Int = 100_000, srtt: Interval = .milliseconds(100)) -> AcknowledgmentSample {
        AcknowledgmentSample(now: Instant.zero + t, acknowledgedBytes: bytes, bytesInFlight: flight, smoothedRTT: srtt,
                             latestRTT: srtt, minimumRTT: srtt, maximumSegmentSize: 1_000, isCongestionWindowLimited: true)
    }

    @Test func renoSlowStartThenOneSegmentPerWindow() {
        var r = NewReno(maximumSegmentSize: 1_000)
        #expect(r.congestionWindow == 10_000)
        r.onAcknowledgment(ack(2_000, at: .zero))
        #expect(r.congestionWindow == 12_000)
        r.onCongestionEvent(now: .zero, bytesInFlight: 20_000, maximumSegmentSize: 1_000)
        #expect(r.congestionWindow == 10_000 && r.slowStartThreshold == 10_000)
        for _ in 0..<10 { r.onAcknowledgment(ack(1_000, at: .zero)) }
        #expect((10_900...11_000).contains(r.congestionWindow))
        r.onRetransmissionTimeout(now: .zero, bytesInFlight: 8_000, maximumSegmentSize: 1_000)
        #expect(r.congestionWindow == 1_000 && r.slowStartThreshold == 4_000)
    }

    @Test func applicationLimitedSenderDoesNotGrowTheWindow() {
        var r = NewReno(maximumSegmentSize: 1_000)
        var sample = ack(2_000, at: .zero)
        sample.isCongestionWindowLimited = false
        r.onAcknowledgment(sample)
        #expect(r.congestionWindow == 10_000)
    }

    struct HalfIncrease: CoupledIncrease {
        func congestionAvoidanceIncrease(acknowledgedBytes: Int, congestionWindow: Int, maximumSegmentSize: Int) -> Double {
            Double(acknowledgedBytes * maximumSegmentSize) / Double(congestionWindow) / 2
        }
    }

    @Test func couplingHookReplacesRenoIncrease() {
        var r = NewReno(maximumSegmentSize: 1_000)
        r.onCongestionEvent(now: .zero, bytesInFlight: 20_000, maximumSegmentSize: 1_000)
        r.coupling = HalfIncrease()
        r.onAcknowledgment(ack(10_000, at: .zero))
        #expect(r.congestionWindow == 10_500)
    }

    @Test func cubicReducesByBetaAndRegrowsToWmaxAtK() {
        var c = Cubic(maximumSegmentSize: 1_000)
        for _ in 0..<45 { c.onAcknowledgment(ack(2_000, at: .zero)) } // slow start to 100 segments
        #expect(c.congestionWindow == 100_000)
        c.onCongestionEvent(now: .zero, bytesInFlight: 100_000, maximumSegmentSize: 1_000)
        #expect(c.congestionWindow == 70_000 && c.slowStartThreshold == 70_000)
        #expect(c.wMax == 100)
        // K = ∛((100 − 70)/0.4) ≈ 4.22 s; one window of ACKs per 100 ms RTT.
        var t = Interval.zero
        var atK = 0
        while t < .seconds(fractional: 4.22) {
            let w = c.congestionWindow
            for _ in 0..<(w / 1_000) { c.onAcknowledgment(ack(1_000, at: t)) }
            t += .milliseconds(100)
            if t <= .seconds(fractional: 4.22) { atK = c.congestionWindow }
        }
        #expect((95_000...104_000).contains(atK))
        // The plateau: growth slows near W_max (concave region).
        let before = c.congestionWindow
        for _ in 0..<(before / 1_000) { c.onAcknowledgment(ack(1_000, at: t)) }
        #expect(c.congestionWindow - before < 3_000)
    }

    @Test func cubicFastConvergenceLowersWmax() {
        var c = Cubic(maximumSegmentSize: 1_000)
        for _ in 0..<45 { c.onAcknowledgment(ack(2_000, at: .zero)) }
        c.onCongestionEvent(now: .zero, bytesInFlight: 100_000, maximumSegmentSize: 1_000)
        c.onCongestionEvent(now: .zero, bytesInFlight: 70_000, maximumSegmentSize: 1_000)
        // A loss below the previous W_max: W_max = cwnd·(1 + β)/2 = 70·0.85.
        #expect(abs(c.wMax - 59.5) < 0.001)
        #expect(c.congestionWindow == 49_000)
    }
}
