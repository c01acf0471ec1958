import Core
import Testing
import Wire
@testable import TCP

// One test per (state, event): the connection is built in the state, one
// segment arrives at a given instant, and the complete output is compared.

@Suite("TCP state machine: CLOSED and LISTEN")
struct ClosedAndListenTests {
    @Test func closedAnswersSynWithResetAck() {
        var c = TCPConnection(tuple: testTuple, configuration: plainConfiguration(), isnGenerator: .init(seed: 1))
        let out = c.handle(incoming(seq: remoteISS, flags: .syn), now: at(0))
        #expect(out == sends(outgoing(seq: SequenceNumber(0), ack: remoteISS + 1, flags: .rst, window: 0)))
    }

    @Test func closedAnswersAckWithResetAtAckNumber() {
        var c = TCPConnection(tuple: testTuple, configuration: plainConfiguration(), isnGenerator: .init(seed: 1))
        let out = c.handle(incoming(seq: remoteISS, ack: SequenceNumber(1234), payload: [1, 2]), now: at(0))
        #expect(out == sends(outgoing(seq: SequenceNumber(1234), flags: .rst, window: 0)))
    }

    @Test func closedDropsReset() {
        var c = TCPConnection(tuple: testTuple, configuration: plainConfiguration(), isnGenerator: .init(seed: 1))
        #expect(c.handle(incoming(seq: remoteISS, flags: .rst), now: at(0)).isEmpty)
    }

    func listening() -> TCPConnection {
        var c = TCPConnection(tuple: testTuple, configuration: plainConfiguration(), isnGenerator: .init(seed: 1))
        c.listen()
        return c
    }

    @Test func listenSynGetsSynAckAndEntersSynReceived() {
        var c = listening()
        let out = c.handle(incoming(seq: remoteISS, flags: .syn, options: [.maximumSegmentSize(1200)]), now: at(5))
        let iss = InitialSequenceNumberGenerator(seed: 1).initialSequenceNumber(for: testTuple, at: at(5))
        #expect(c.state == .synReceived)
        #expect(out == sends(outgoing(seq: iss, ack: remoteISS + 1, flags: .syn, options: [.maximumSegmentSize(1000)])))
        #expect(c.peerMSS == 1200)
        #expect(c.nextDeadline == at(1005))
    }

    @Test func listenIgnoresReset() {
        var c = listening()
        #expect(c.handle(incoming(seq: remoteISS, flags: .rst), now: at(0)).isEmpty)
        #expect(c.state == .listen)
    }

    @Test func listenAnswersAckWithReset() {
        var c = listening()
        let out = c.handle(incoming(seq: remoteISS, ack: SequenceNumber(77)), now: at(0))
        #expect(out == sends(outgoing(seq: SequenceNumber(77), flags: .rst, window: 0)))
        #expect(c.state == .listen)
    }

    @Test func listenDropsPlainData() {
        var c = listening()
        #expect(c.handle(incoming(seq: remoteISS, payload: [1]), now: at(0)).isEmpty)
        #expect(c.state == .listen)
    }

    @Test func listenCloseGoesToClosed() {
        var c = listening()
        c.close()
        #expect(c.state == .closed)
    }
}

@Suite("TCP state machine: SYN-SENT")
struct SynSentTests {
    func synSent(_ config: TCPConfiguration = plainConfiguration()) -> (TCPConnection, SequenceNumber, [TCPAction]) {
        var c = TCPConnection(tuple: testTuple, configuration: config, isnGenerator: .init(seed: 1))
        let out = c.connect(now: at(0))
        return (c, c.iss, out)
    }

    @Test func connectSendsSyn() {
        let (c, iss, out) = synSent()
        #expect(c.state == .synSent)
        #expect(iss == InitialSequenceNumberGenerator(seed: 1).initialSequenceNumber(for: testTuple, at: at(0)))
        #expect(out == sends(outgoing(seq: iss, flags: .syn, options: [.maximumSegmentSize(1000)])))
        #expect(c.nextDeadline == at(1000))
    }

    @Test func connectOffersEveryOptionInLinuxLayout() {
        var config = TCPConfiguration()
        config.receiveBufferSize = 262_144
        let (c, iss, out) = synSent(config)
        let tsval = UInt32(0) &+ c.tsOffset
        #expect(out == sends(outgoing(seq: iss, flags: .syn, window: 65_535, options: [
            .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: tsval, echoReply: 0),
            .noOperation, .windowScale(3)])))
    }

    @Test func synAckEstablishesAndIsAcknowledged() {
        var (c, iss, _) = synSent()
        let out = c.handle(incoming(seq: remoteISS, ack: iss + 1, flags: .syn, window: 20_000,
                                    options: [.maximumSegmentSize(900)]), now: at(30))
        #expect(c.state == .established)
        #expect(out == sends(outgoing(seq: iss + 1, ack: remoteISS + 1)))
        #expect(c.sendWindow == 20_000)
        #expect(c.smoothedRTT == .milliseconds(30))
        #expect(c.nextDeadline == .distantFuture)
    }

    @Test func synAckNegotiatesScalingTimestampsAndSACK() {
        var config = TCPConfiguration()
        config.receiveBufferSize = 262_144
        var (c, iss, _) = synSent(config)
        let out = c.handle(incoming(seq: remoteISS, ack: iss + 1, flags: .syn, window: 29_200, options: [
            .maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 4242, echoReply: c.tsOffset),
            .noOperation, .windowScale(7)]), now: at(20))
        #expect(c.state == .established)
        #expect(c.timestampsEnabled && c.sackEnabled && c.windowScaleNegotiated)
        #expect(c.sndShift == 7 && c.rcvShift == 3)
        #expect(c.sendMaximumSegmentSize == 1448)
        // The ACK carries timestamps echoing the peer's TSval and a scaled window.
        #expect(out == sends(outgoing(seq: iss + 1, ack: remoteISS + 1, window: UInt16(262_144 >> 3), options: [
            .noOperation, .noOperation, .timestamps(value: 20 &+ c.tsOffset, echoReply: 4242)])))
    }

    @Test func synAckWithoutWindowScaleDisablesScalingBothWays() {
        var config = TCPConfiguration()
        config.receiveBufferSize = 262_144
        var (c, iss, _) = synSent(config)
        _ = c.handle(incoming(seq: remoteISS, ack: iss + 1, flags: .syn, options: [.maximumSegmentSize(1460)]), now: at(20))
        #expect(c.sndShift == 0 && c.rcvShift == 0 && !c.timestampsEnabled && !c.sackEnabled)
    }

    @Test func badAckGetsResetAndStateStays() {
        var (c, iss, _) = synSent()
        let out = c.handle(incoming(seq: remoteISS, ack: iss, flags: .syn), now: at(10))
        #expect(out == sends(outgoing(seq: iss, flags: .rst, window: 0)))
        #expect(c.state == .synSent)
    }

    @Test func resetWithAcceptableAckRefusesConnection() {
        var (c, iss, _) = synSent()
        let out = c.handle(incoming(seq: SequenceNumber(0), ack: iss + 1, flags: .rst), now: at(10))
        #expect(out == [.closed(.refused)])
        #expect(c.state == .closed)
    }

    @Test func resetWithoutAckIsIgnored() {
        var (c, _, _) = synSent()
        #expect(c.handle(incoming(seq: remoteISS, flags: .rst), now: at(10)).isEmpty)
        #expect(c.state == .synSent)
    }

    @Test func resetWithBadAckIsIgnored() {
        var (c, iss, _) = synSent()
        #expect(c.handle(incoming(seq: remoteISS, ack: iss + 5, flags: .rst), now: at(10)).isEmpty)
        #expect(c.state == .synSent)
    }

    @Test func simultaneousOpen() {
        var (c, iss, _) = synSent()
        let out = c.handle(incoming(seq: remoteISS, flags: .syn, options: [.maximumSegmentSize(1000)]), now: at(10))
        #expect(c.state == .synReceived)
        #expect(out == sends(outgoing(seq: iss, ack: remoteISS + 1, flags: .syn, options: [.maximumSegmentSize(1000)])))
        let out2 = c.handle(incoming(seq: remoteISS + 1, ack: iss + 1), now: at(20))
        #expect(out2.isEmpty)
        #expect(c.state == .established)
    }

    @Test func synIsRetransmittedWithBackoffThenTimesOut() {
        var (c, iss, _) = synSent()
        var deadlines: [Instant] = []
        var retransmitted = 0
        var last: [TCPAction] = []
        while c.state == .synSent {
            let t = c.nextDeadline
            deadlines.append(t)
            last = c.poll(now: t)
            if last == sends(outgoing(seq: iss, flags: .syn, options: [.maximumSegmentSize(1000)])) { retransmitted += 1 }
        }
        #expect(retransmitted == 6)
        // The seventh interval is capped at the 60 s maximum RTO (RFC 6298 §2.5).
        #expect(deadlines == [1, 3, 7, 15, 31, 63, 123].map { at($0 * 1000) })
        #expect(last == [.closed(.timedOut)])
    }

    @Test func closeInSynSentGoesToClosed() {
        var (c, _, _) = synSent()
        c.close()
        #expect(c.state == .closed)
        #expect(c.poll(now: at(5000)).isEmpty)
    }
}

@Suite("TCP state machine: SYN-RECEIVED")
struct SynReceivedTests {
    func synReceived() -> (TCPConnection, SequenceNumber) {
        var c = TCPConnection(tuple: testTuple, configuration: plainConfiguration(), isnGenerator: .init(seed: 1))
        c.listen()
        _ = c.handle(incoming(seq: remoteISS, flags: .syn, options: [.maximumSegmentSize(1000)]), now: at(0))
        return (c, c.iss)
    }

    @Test func ackEstablishes() {
        var (c, iss) = synReceived()
        let out = c.handle(incoming(seq: remoteISS + 1, ack: iss + 1, window: 5_000), now: at(40))
        #expect(out.isEmpty)
        #expect(c.state == .established)
        #expect(c.sendWindow == 5_000)
        #expect(c.smoothedRTT == .milliseconds(40))
    }

    @Test func badAckGetsReset() {
        var (c, iss) = synReceived()
        let out = c.handle(incoming(seq: remoteISS + 1, ack: iss + 9), now: at(40))
        #expect(out == sends(outgoing(seq: iss + 9, flags: .rst, window: 0)))
        #expect(c.state == .synReceived)
    }

    @Test func resetReturnsToListen() {
        var (c, _) = synReceived()
        let out = c.handle(incoming(seq: remoteISS + 1, flags: .rst), now: at(40))
        #expect(out.isEmpty)
        #expect(c.state == .listen)
    }

    @Test func resetOutOfWindowChangesNothing() {
        var (c, _) = synReceived()
        let out = c.handle(incoming(seq: remoteISS + 100_000, flags: .rst), now: at(40))
        #expect(out.isEmpty)
        #expect(c.state == .synReceived)
    }

    @Test func retransmittedSynGetsSynAckAgain() {
        var (c, iss) = synReceived()
        let out = c.handle(incoming(seq: remoteISS, flags: .syn, options: [.maximumSegmentSize(1000)]), now: at(300))
        #expect(out == sends(outgoing(seq: iss, ack: remoteISS + 1, flags: .syn, options: [.maximumSegmentSize(1000)])))
    }

    @Test func synAckIsRetransmittedOnTimeout() {
        var (c, iss) = synReceived()
        #expect(c.poll(now: at(999)).isEmpty)
        let out = c.poll(now: at(1000))
        #expect(out == sends(outgoing(seq: iss, ack: remoteISS + 1, flags: .syn, options: [.maximumSegmentSize(1000)])))
        #expect(c.nextDeadline == at(3000))
    }

    @Test func closeBeforeEstablishedSendsFinOnceEstablished() {
        var (c, iss) = synReceived()
        c.close()
        let out = c.handle(incoming(seq: remoteISS + 1, ack: iss + 1), now: at(40))
        #expect(c.state == .finWait1)
        #expect(out == sends(outgoing(seq: iss + 1, ack: remoteISS + 1, flags: .fin)))
    }
}

@Suite("TCP state machine: closing states")
struct ClosingTests {
    let una = localISS + 1
    let nxt = remoteISS + 1

    @Test func establishedFinGoesToCloseWait() {
        var c = establishedConnection()
        let out = c.handle(incoming(seq: nxt, ack: una, flags: .fin), now: at(0))
        #expect(c.state == .closeWait)
        #expect(out == sends(outgoing(seq: una, ack: nxt + 1, window: bufferWindow - 1)))
        #expect(c.isReceiveFinished)
    }

    @Test func establishedCloseSendsFin() {
        var c = establishedConnection()
        c.close()
        #expect(c.state == .finWait1)
        let out = c.poll(now: at(0))
        #expect(out == sends(outgoing(seq: una, ack: nxt, flags: .fin)))
        #expect(c.nextDeadline == at(1000))
    }

    @Test func finRidesOnTheLastDataSegment() {
        var c = establishedConnection()
        c.send(bytes(300))
        c.close()
        let out = c.poll(now: at(0))
        #expect(out == sends(outgoing(seq: una, ack: nxt, flags: [.fin, .psh], payload: bytes(300))))
    }

    @Test func finWait1AckOfFinGoesToFinWait2() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        let out = c.handle(incoming(seq: nxt, ack: una + 1), now: at(10))
        #expect(out.isEmpty)
        #expect(c.state == .finWait2)
        #expect(c.nextDeadline == .distantFuture)
    }

    @Test func finWait1FinWithoutAckGoesToClosing() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        let out = c.handle(incoming(seq: nxt, ack: una, flags: .fin), now: at(10))
        #expect(c.state == .closing)
        #expect(out == sends(outgoing(seq: una + 1, ack: nxt + 1, window: bufferWindow - 1)))
        let out2 = c.handle(incoming(seq: nxt + 1, ack: una + 1), now: at(20))
        #expect(out2.isEmpty)
        #expect(c.state == .timeWait)
        #expect(c.nextDeadline == at(20 + 60_000))
    }

    @Test func finWait1FinAndAckGoesToTimeWait() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        let out = c.handle(incoming(seq: nxt, ack: una + 1, flags: .fin), now: at(10))
        #expect(c.state == .timeWait)
        #expect(out == sends(outgoing(seq: una + 1, ack: nxt + 1, window: bufferWindow - 1)))
    }

    @Test func finWait2FinGoesToTimeWaitThenClosed() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        _ = c.handle(incoming(seq: nxt, ack: una + 1), now: at(10))
        let out = c.handle(incoming(seq: nxt, ack: una + 1, flags: .fin), now: at(20))
        #expect(c.state == .timeWait)
        #expect(out == sends(outgoing(seq: una + 1, ack: nxt + 1, window: bufferWindow - 1)))
        #expect(c.poll(now: at(60_019)).isEmpty)
        #expect(c.poll(now: at(60_020)) == [.closed(.normal)])
        #expect(c.state == .closed)
    }

    @Test func finWait2StillReceivesData() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        _ = c.handle(incoming(seq: nxt, ack: una + 1), now: at(10))
        _ = c.handle(incoming(seq: nxt, ack: una + 1, payload: bytes(10)), now: at(20))
        #expect(c.receive() == bytes(10))
    }

    @Test func timeWaitAcknowledgesRetransmittedFinAndRestartsTimer() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        _ = c.handle(incoming(seq: nxt, ack: una + 1, flags: .fin), now: at(10))
        let out = c.handle(incoming(seq: nxt, ack: una + 1, flags: .fin), now: at(5_000))
        #expect(out == sends(outgoing(seq: una + 1, ack: nxt + 1, window: bufferWindow - 1)))
        #expect(c.state == .timeWait)
        #expect(c.nextDeadline == at(65_000))
    }

    @Test func closeWaitCloseSendsFinThenLastAckCloses() {
        var c = establishedConnection()
        _ = c.handle(incoming(seq: nxt, ack: una, flags: .fin), now: at(0))
        c.close()
        #expect(c.state == .lastAck)
        let out = c.poll(now: at(1))
        #expect(out == sends(outgoing(seq: una, ack: nxt + 1, flags: .fin, window: bufferWindow - 1)))
        let out2 = c.handle(incoming(seq: nxt + 1, ack: una + 1), now: at(10))
        #expect(out2 == [.closed(.normal)])
        #expect(c.state == .closed)
    }

    @Test func lostFinIsRetransmitted() {
        var c = establishedConnection()
        c.close(); _ = c.poll(now: at(0))
        let out = c.poll(now: at(1000))
        #expect(out == sends(outgoing(seq: una, ack: nxt, flags: .fin)))
        #expect(c.counters.retransmissions == 1)
    }

    @Test func abortSendsResetAndCloses() {
        var c = establishedConnection()
        c.send(bytes(100)); _ = c.poll(now: at(0))
        let out = c.abort(now: at(1))
        #expect(out == sends(outgoing(seq: una + 100, flags: .rst, window: 0)) + [.closed(.aborted)])
        #expect(c.state == .closed)
        #expect(c.nextDeadline == .distantFuture)
    }

    @Test func outOfOrderFinTakesEffectWhenTheGapFills() {
        var c = establishedConnection()
        let early = c.handle(incoming(seq: nxt + 5, ack: una, flags: .fin, payload: bytes(5, from: 5)), now: at(0))
        #expect(segments(early).map(\.acknowledgmentNumber) == [nxt])
        #expect(c.state == .established)
        let out = c.handle(incoming(seq: nxt, ack: una, payload: bytes(5)), now: at(1))
        #expect(c.state == .closeWait)
        #expect(segments(out).map(\.acknowledgmentNumber) == [nxt + 11])
        #expect(c.receive() == bytes(10))
    }
}
