import Core
import Testing
import Wire
@testable import TCP

@Suite("TCP sending and receiving in ESTABLISHED")
struct DataPathTests {
    let una = localISS + 1
    let nxt = remoteISS + 1

    @Test func queuedDataGoesOutInMSSSegments() {
        var c = establishedConnection()
        #expect(c.send(bytes(2_500)) == 2_500)
        let out = c.poll(now: at(0))
        #expect(out == sends(
            outgoing(seq: una, ack: nxt, payload: bytes(1_000)),
            outgoing(seq: una + 1_000, ack: nxt, payload: bytes(1_000, from: 1_000)),
            outgoing(seq: una + 2_000, ack: nxt, flags: .psh, payload: bytes(500, from: 2_000))))
        #expect(c.bytesInFlight == 2_500)
        #expect(c.nextDeadline == at(1_000))
    }

    @Test func sendIsBoundedByTheSendBuffer() {
        var c = establishedConnection()
        #expect(c.send(bytes(100_000)) == 65_536)
        #expect(c.sendBufferSpace == 0)
    }

    @Test func initialWindowLimitsTheFirstFlight() {
        var c = establishedConnection()
        c.send(bytes(20_000))
        #expect(segments(c.poll(now: at(0))).count == 10) // RFC 6928: ten segments
    }

    @Test func peerWindowLimitsSending() {
        var c = establishedConnection()
        _ = c.handle(incoming(seq: nxt, ack: una, window: 1_500), now: at(0))
        c.send(bytes(5_000))
        let out = segments(c.poll(now: at(1)))
        // One full segment; the 500 bytes left in the window would be a silly
        // window, so the sender waits (RFC 9293 §3.8.6.2.1).
        #expect(out.map(\.payload.count) == [1_000])
    }

    @Test func scaledPeerWindow() {
        var c = establishedConnection()
        c.sndShift = 2
        _ = c.handle(incoming(seq: nxt, ack: una, window: 1_000), now: at(0))
        #expect(c.sendWindow == 4_000)
    }

    @Test func inOrderSegmentIsAcknowledgedAfterTheDelayedAckTimeout() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt, ack: una, payload: bytes(500)), now: at(0)).isEmpty)
        #expect(c.nextDeadline == at(40))
        #expect(c.poll(now: at(39)).isEmpty)
        #expect(c.poll(now: at(40)) == sends(outgoing(seq: una, ack: nxt + 500, window: bufferWindow - 500)))
        #expect(c.receive() == bytes(500))
    }

    @Test func everySecondSegmentIsAcknowledgedAtOnce() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt, ack: una, payload: bytes(1_000)), now: at(0)).isEmpty)
        let out = c.handle(incoming(seq: nxt + 1_000, ack: una, payload: bytes(1_000, from: 1_000)), now: at(1))
        #expect(out == sends(outgoing(seq: una, ack: nxt + 2_000, window: bufferWindow - 2_000)))
        #expect(c.nextDeadline == .distantFuture)
    }

    @Test func outOfOrderSegmentGetsImmediateDuplicateAckWithSACK() {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        var c = establishedConnection(config)
        c.sackEnabled = true
        let out = c.handle(incoming(seq: nxt + 1_000, ack: una, payload: bytes(1_000, from: 1_000)), now: at(0))
        #expect(out == sends(outgoing(seq: una, ack: nxt, options: [
            .noOperation, .noOperation, .sack([SACKBlock(left: nxt + 1_000, right: nxt + 2_000)])])))
        // The most recent block comes first (RFC 2018 §4).
        let out2 = c.handle(incoming(seq: nxt + 3_000, ack: una, payload: bytes(500, from: 3_000)), now: at(1))
        #expect(out2 == sends(outgoing(seq: una, ack: nxt, options: [.noOperation, .noOperation, .sack([
            SACKBlock(left: nxt + 3_000, right: nxt + 3_500), SACKBlock(left: nxt + 1_000, right: nxt + 2_000)])])))
        // Filling the first gap is acknowledged at once, still reporting the other block.
        let out3 = c.handle(incoming(seq: nxt, ack: una, payload: bytes(1_000)), now: at(2))
        #expect(out3 == sends(outgoing(seq: una, ack: nxt + 2_000, window: bufferWindow - 2_000, options: [
            .noOperation, .noOperation, .sack([SACKBlock(left: nxt + 3_000, right: nxt + 3_500)])])))
        #expect(c.receive() == bytes(2_000))
        #expect(c.counters.sackBlocksSent == 4)
    }

    @Test func advertisedWindowFollowsTheFreeReceiveBuffer() {
        var config = plainConfiguration()
        config.receiveBufferSize = 2_000
        var c = establishedConnection(config)
        _ = c.handle(incoming(seq: nxt, ack: una, payload: bytes(1_000)), now: at(0))
        let full = c.handle(incoming(seq: nxt + 1_000, ack: una, payload: bytes(1_000, from: 1_000)), now: at(1))
        #expect(full == sends(outgoing(seq: una, ack: nxt + 2_000, window: 0)))
        // Data beyond a zero window is refused with an ACK.
        let refused = c.handle(incoming(seq: nxt + 2_000, ack: una, payload: [1]), now: at(2))
        #expect(refused == sends(outgoing(seq: una, ack: nxt + 2_000, window: 0)))
        // Reading opens the window; the update goes out unasked.
        #expect(c.receive(maximum: 2_000) == bytes(2_000))
        #expect(c.poll(now: at(3)) == sends(outgoing(seq: una, ack: nxt + 2_000, window: 2_000)))
        #expect(c.poll(now: at(4)).isEmpty)
    }

    @Test func segmentLargerThanTheWindowIsTrimmed() {
        var config = plainConfiguration()
        config.receiveBufferSize = 2_000
        var c = establishedConnection(config)
        _ = c.handle(incoming(seq: nxt, ack: una, payload: bytes(3_000)), now: at(0))
        #expect(c.receive() == bytes(2_000))
    }

    @Test func smallReadDoesNotAnnounceASillyWindow() {
        var c = establishedConnection()
        _ = c.handle(incoming(seq: nxt, ack: una, payload: bytes(1_000)), now: at(0))
        _ = c.handle(incoming(seq: nxt + 1_000, ack: una, payload: bytes(1_000, from: 1_000)), now: at(1))
        _ = c.receive(maximum: 100)
        #expect(c.poll(now: at(2)).isEmpty)
    }

    @Test func nagleHoldsSmallSegmentsWhileDataIsUnacknowledged() {
        var config = plainConfiguration()
        config.nagle = true
        var c = establishedConnection(config)
        c.send(bytes(500))
        #expect(segments(c.poll(now: at(0))).map(\.payload.count) == [500])
        c.send(bytes(300, from: 500))
        #expect(c.poll(now: at(1)).isEmpty)
        let out = c.handle(incoming(seq: nxt, ack: una + 500), now: at(20))
        #expect(out == sends(outgoing(seq: una + 500, ack: nxt, flags: .psh, payload: bytes(300, from: 500))))
    }

    @Test func zeroWindowIsProbedByThePersistTimer() {
        var c = establishedConnection()
        _ = c.handle(incoming(seq: nxt, ack: una, window: 0), now: at(0))
        c.send(bytes(100))
        #expect(c.poll(now: at(0)).isEmpty)
        #expect(c.nextDeadline == at(1_000))
        let probe = c.poll(now: at(1_000))
        #expect(probe == sends(outgoing(seq: una - 1, ack: nxt)))
        #expect(c.counters.zeroWindowProbesSent == 1)
        #expect(c.nextDeadline == at(3_000)) // the persist interval backs off
        // The window opens: the data goes out and the persist timer stops.
        let out = c.handle(incoming(seq: nxt, ack: una, window: 1_000), now: at(1_100))
        #expect(out == sends(outgoing(seq: una, ack: nxt, flags: .psh, payload: bytes(100))))
        #expect(c.nextDeadline == at(2_100))
    }

    @Test func keepaliveProbesAnIdlePeerThenGivesUp() {
        var config = plainConfiguration()
        config.keepalive = KeepaliveSettings(idle: .seconds(10), interval: .seconds(1), probes: 2)
        var c = establishedConnection(config)
        c.keepaliveDeadline = at(10_000)
        let probe = sends(outgoing(seq: una - 1, ack: nxt))
        #expect(c.poll(now: at(10_000)) == probe)
        #expect(c.poll(now: at(11_000)) == probe)
        #expect(c.poll(now: at(12_000)) == [.closed(.timedOut)])
        #expect(c.counters.keepalivesSent == 2)
    }

    @Test func keepaliveAnswerResetsTheIdleTimer() {
        var config = plainConfiguration()
        config.keepalive = KeepaliveSettings(idle: .seconds(10), interval: .seconds(1), probes: 2)
        var c = establishedConnection(config)
        c.keepaliveDeadline = at(10_000)
        _ = c.poll(now: at(10_000))
        _ = c.handle(incoming(seq: nxt, ack: una), now: at(10_050))
        #expect(c.nextDeadline == at(20_050))
    }
}

@Suite("TCP retransmission timer (RFC 6298) and Karn's rule")
struct RetransmissionTests {
    let una = localISS + 1
    let nxt = remoteISS + 1

    @Test func validSampleSetsSRTTAndRTO() {
        var c = establishedConnection()
        c.send(bytes(1_000)); _ = c.poll(now: at(0))
        _ = c.handle(incoming(seq: nxt, ack: una + 1_000), now: at(100))
        #expect(c.smoothedRTT == .milliseconds(100))
        #expect(c.retransmissionTimeout == .milliseconds(300)) // SRTT + 4·(R/2)
        #expect(c.nextDeadline == .distantFuture)
    }

    @Test func rtoRetransmitsWithExponentialBackoff() {
        var c = establishedConnection()
        c.send(bytes(1_000)); _ = c.poll(now: at(0))
        let again = sends(outgoing(seq: una, ack: nxt, flags: .psh, payload: bytes(1_000)))
        #expect(c.poll(now: at(999)).isEmpty)
        #expect(c.poll(now: at(1_000)) == again)
        #expect(c.nextDeadline == at(3_000))
        #expect(c.poll(now: at(3_000)) == again)
        #expect(c.nextDeadline == at(7_000))
        #expect(c.counters.retransmissionTimeouts == 2)
        #expect(c.counters.retransmissions == 2)
        #expect(c.congestionWindow == 1_000)
        #expect(c.slowStartThreshold == 2_000)
    }

    @Test func karnNoSampleFromARetransmittedSegmentAndBackoffIsKept() {
        var c = establishedConnection()
        c.send(bytes(2_000)); _ = c.poll(now: at(0))
        _ = c.poll(now: at(1_000))
        _ = c.poll(now: at(3_000))
        let out = c.handle(incoming(seq: nxt, ack: una + 1_000), now: at(3_500))
        #expect(c.smoothedRTT == nil)
        #expect(c.retransmissionTimeout == .seconds(4))
        // The ACK restarts the timer (RFC 6298 §5.3) with the backed-off value,
        // and slow start sends the next (lost) segment again.
        #expect(out == sends(outgoing(seq: una + 1_000, ack: nxt, flags: .psh, payload: bytes(1_000, from: 1_000))))
        #expect(c.nextDeadline == at(7_500))
    }

    @Test func freshSampleAfterBackoffEndsIt() {
        var c = establishedConnection()
        c.send(bytes(1_000)); _ = c.poll(now: at(0))
        _ = c.poll(now: at(1_000))
        _ = c.handle(incoming(seq: nxt, ack: una + 1_000), now: at(1_050))
        c.send(bytes(500)); _ = c.poll(now: at(2_000))
        _ = c.handle(incoming(seq: nxt, ack: una + 1_500), now: at(2_080))
        #expect(c.smoothedRTT == .milliseconds(80))
        #expect(c.retransmissionTimeout == .milliseconds(240))
    }

    @Test func connectionTimesOutAfterTooManyRetransmissions() {
        var config = plainConfiguration()
        config.maximumRetransmissions = 3
        var c = establishedConnection(config)
        c.send(bytes(100)); _ = c.poll(now: at(0))
        var times: [Instant] = []
        var last: [TCPAction] = []
        while c.state != .closed {
            let t = c.nextDeadline
            times.append(t)
            last = c.poll(now: t)
        }
        #expect(times == [1, 3, 7, 15].map { at($0 * 1_000) })
        #expect(last == [.closed(.timedOut)])
    }

    @Test func estimatorFollowsRFC6298() {
        var e = RetransmissionTimeoutEstimator(initial: .seconds(1), minimum: .milliseconds(200), maximum: .seconds(60))
        #expect(e.timeout == .seconds(1))
        e.addSample(.milliseconds(400))
        #expect(e.smoothedRTT == .milliseconds(400) && e.rttVariance == .milliseconds(200))
        #expect(e.timeout == .milliseconds(1_200))
        e.addSample(.milliseconds(200))
        // RTTVAR = 3/4·200 + 1/4·|400−200| = 200; SRTT = 7/8·400 + 1/8·200 = 375.
        #expect(e.smoothedRTT == .milliseconds(375) && e.rttVariance == .milliseconds(200))
        e.backOff(); e.backOff()
        #expect(e.timeout == .milliseconds(1_175 * 4))
        for _ in 0..<10 { e.backOff() }
        #expect(e.timeout == .seconds(60))
    }
}

@Suite("TCP loss recovery: NewReno (RFC 6582) and SACK (RFC 6675)")
struct LossRecoveryTests {
    let una = localISS + 1
    let nxt = remoteISS + 1

    func dupAck(_ c: inout TCPConnection, sack: [SACKBlock] = [], at t: Int) -> [TCPAction] {
        c.handle(incoming(seq: nxt, ack: una, options: sack.isEmpty ? [] : [.sack(sack)]), now: at(t))
    }

    @Test func threeDuplicateAcksTriggerFastRetransmit() {
        var c = establishedConnection()
        c.send(bytes(5_000)); _ = c.poll(now: at(0))
        #expect(dupAck(&c, at: 10).isEmpty)
        #expect(dupAck(&c, at: 11).isEmpty)
        let out = dupAck(&c, at: 12)
        #expect(out == sends(outgoing(seq: una, ack: nxt, payload: bytes(1_000))))
        #expect(c.isInRecovery)
        #expect(c.counters.fastRecoveries == 1 && c.counters.duplicateAcksReceived == 3)
        #expect(c.slowStartThreshold == 2_500 && c.congestionWindow == 2_500)
    }

    @Test func partialAckRetransmitsTheNextHoleAndFullAckEndsRecovery() {
        var c = establishedConnection()
        c.send(bytes(5_000)); _ = c.poll(now: at(0))
        for t in 10...12 { _ = dupAck(&c, at: t) }
        let partial = c.handle(incoming(seq: nxt, ack: una + 1_000), now: at(30))
        #expect(partial == sends(outgoing(seq: una + 1_000, ack: nxt, payload: bytes(1_000, from: 1_000))))
        #expect(c.isInRecovery)
        let full = c.handle(incoming(seq: nxt, ack: una + 5_000), now: at(50))
        #expect(full.isEmpty)
        #expect(!c.isInRecovery)
        #expect(c.congestionWindow == 2_500)
        #expect(c.counters.fastRecoveries == 1)
    }

    @Test func windowUpdateIsNotADuplicateAck() {
        var c = establishedConnection()
        c.send(bytes(5_000)); _ = c.poll(now: at(0))
        for (i, w) in [60_000, 50_000, 40_000].enumerated() {
            _ = c.handle(incoming(seq: nxt, ack: una, window: UInt16(w)), now: at(10 + i))
        }
        #expect(!c.isInRecovery)
    }

    func sackConnection() -> TCPConnection {
        var config = plainConfiguration()
        config.selectiveAcknowledgments = true
        var c = establishedConnection(config)
        c.sackEnabled = true
        return c
    }

    @Test func sackScoreboardDecidesWhenLossIsDeclared() {
        var c = sackConnection()
        c.send(bytes(5_000)); _ = c.poll(now: at(0))
        #expect(dupAck(&c, sack: [SACKBlock(left: una + 1_000, right: una + 2_000)], at: 10).isEmpty)
        #expect(dupAck(&c, sack: [SACKBlock(left: una + 1_000, right: una + 3_000)], at: 11).isEmpty)
        let out = dupAck(&c, sack: [SACKBlock(left: una + 1_000, right: una + 4_000)], at: 12)
        #expect(out == sends(outgoing(seq: una, ack: nxt, payload: bytes(1_000))))
        #expect(c.sackScoreboard.ranges == [SACKBlock(left: una + 1_000, right: una + 4_000)])
        #expect(c.counters.sackBlocksReceived == 3)
        // pipe = the retransmission + the un-SACKed tail.
        #expect(c.bytesInFlight == 2_000)
    }

    @Test func sackRecoveryRetransmitsEveryLostHole() {
        var c = sackConnection()
        c.send(bytes(10_000)); _ = c.poll(now: at(0))
        let blocks = [SACKBlock(left: una + 1_000, right: una + 2_000), SACKBlock(left: una + 3_000, right: una + 10_000)]
        let out = dupAck(&c, sack: blocks, at: 10)
        #expect(out == sends(outgoing(seq: una, ack: nxt, payload: bytes(1_000)),
                             outgoing(seq: una + 2_000, ack: nxt, payload: bytes(1_000, from: 2_000))))
        #expect(c.congestionWindow == 5_000)
        let done = c.handle(incoming(seq: nxt, ack: una + 10_000), now: at(40))
        #expect(done.isEmpty)
        #expect(!c.isInRecovery && c.sackScoreboard.isEmpty)
    }

    @Test func sackBlocksOutsideTheOutstandingDataAreIgnored() {
        var c = sackConnection()
        c.send(bytes(2_000)); _ = c.poll(now: at(0))
        _ = dupAck(&c, sack: [SACKBlock(left: una + 5_000, right: una + 6_000), SACKBlock(left: una - 500, right: una)], at: 5)
        #expect(c.sackScoreboard.isEmpty)
    }

    @Test func rtoForgetsSACKInformation() {
        var c = sackConnection()
        c.send(bytes(3_000)); _ = c.poll(now: at(0))
        _ = dupAck(&c, sack: [SACKBlock(left: una + 1_000, right: una + 2_000)], at: 5)
        let out = c.poll(now: at(1_000))
        #expect(out == sends(outgoing(seq: una, ack: nxt, payload: bytes(1_000))))
        #expect(c.sackScoreboard.isEmpty) // RFC 2018 §8
    }
}
