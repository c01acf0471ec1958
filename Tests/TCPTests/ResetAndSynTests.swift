import Core
import Testing
import Wire
@testable import TCP

@Suite("TCP RFC 5961 protections and sequence checks")
struct ResetAndSynTests {
    let una = localISS + 1
    let nxt = remoteISS + 1
    var challengeAck: [TCPAction] { sends(outgoing(seq: localISS + 1, ack: remoteISS + 1)) }

    @Test func resetAtRcvNxtResets() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt, flags: .rst), now: at(0)) == [.closed(.reset)])
        #expect(c.state == .closed && c.closeReason == .reset)
    }

    @Test func resetInWindowButNotExactGetsChallengeAck() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt + 100, flags: .rst), now: at(0)) == challengeAck)
        #expect(c.state == .established)
        #expect(c.counters.challengeAcksSent == 1)
    }

    @Test func resetOutOfWindowChangesNothing() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt + 40_000, flags: .rst), now: at(0)).isEmpty)
        #expect(c.handle(incoming(seq: nxt - 1, flags: .rst), now: at(0)).isEmpty)
        #expect(c.state == .established)
    }

    @Test(arguments: [TCPState.finWait1, .finWait2, .closeWait, .closing, .lastAck, .timeWait])
    func resetAtRcvNxtClosesEveryOtherSynchronizedState(state: TCPState) {
        var c = establishedConnection()
        c.state = state
        #expect(c.handle(incoming(seq: nxt, flags: .rst), now: at(0)) == [.closed(.reset)])
    }

    @Test func synInWindowGetsChallengeAck() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt + 10, flags: .syn), now: at(0)) == challengeAck)
        #expect(c.state == .established)
    }

    @Test func synOutOfWindowGetsAckAndChangesNothing() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt + 100_000, flags: .syn), now: at(0)) == challengeAck)
        #expect(c.state == .established && c.rcvNxt == nxt)
    }

    @Test func challengeAcksAreRateLimited() {
        var config = plainConfiguration()
        config.challengeAckLimitPerSecond = 2
        var c = establishedConnection(config)
        var sent = 0
        for i in 0..<5 { sent += segments(c.handle(incoming(seq: nxt + 10 + i, flags: .rst), now: at(i))).count }
        #expect(sent == 2)
        #expect(segments(c.handle(incoming(seq: nxt + 10, flags: .rst), now: at(1000))).count == 1)
    }

    @Test func ackOfUnsentDataIsAnsweredAndDropped() {
        var c = establishedConnection()
        let out = c.handle(incoming(seq: nxt, ack: una + 50, payload: [9]), now: at(0))
        #expect(out == challengeAck)
        #expect(c.receivableBytes == 0)
    }

    @Test func ackFarBelowWindowIsChallenged() {
        var c = establishedConnection()
        let out = c.handle(incoming(seq: nxt, ack: una - 70_000, payload: [9]), now: at(0))
        #expect(out == challengeAck)
        #expect(c.receivableBytes == 0)
    }

    @Test func segmentBeforeWindowGetsAck() {
        var c = establishedConnection()
        _ = c.handle(incoming(seq: nxt, ack: una, payload: bytes(10)), now: at(0))
        let out = c.handle(incoming(seq: nxt, ack: una, payload: bytes(10)), now: at(1))
        #expect(out == sends(outgoing(seq: una, ack: nxt + 10, window: bufferWindow - 10)))
    }

    @Test func segmentWithoutAckIsDropped() {
        var c = establishedConnection()
        #expect(c.handle(incoming(seq: nxt, payload: bytes(10)), now: at(0)).isEmpty)
        #expect(c.receivableBytes == 0)
    }
}

@Suite("TCP timestamps and PAWS (RFC 7323)")
struct TimestampTests {
    func withTimestamps() -> TCPConnection {
        var config = plainConfiguration()
        config.timestamps = true
        var c = establishedConnection(config)
        c.timestampsEnabled = true
        c.tsRecent = 1_000
        c.tsOffset = 0
        return c
    }
    let una = localISS + 1
    let nxt = remoteISS + 1

    @Test func pawsDropsOldTimestampAndAcks() {
        var c = withTimestamps()
        let out = c.handle(incoming(seq: nxt, ack: una, options: [.timestamps(value: 999, echoReply: 0)],
                                    payload: bytes(10)), now: at(50))
        #expect(out == sends(outgoing(seq: una, ack: nxt, options: [.noOperation, .noOperation,
                                                                     .timestamps(value: 50, echoReply: 1_000)])))
        #expect(c.receivableBytes == 0)
        #expect(c.counters.pawsRejected == 1)
    }

    @Test func newerTimestampIsAcceptedAndEchoed() {
        var c = withTimestamps()
        _ = c.handle(incoming(seq: nxt, ack: una, options: [.timestamps(value: 1_001, echoReply: 0)],
                              payload: bytes(10)), now: at(50))
        #expect(c.receivableBytes == 10)
        #expect(c.tsRecent == 1_001)
        let out = c.poll(now: at(90))
        #expect(out == sends(outgoing(seq: una, ack: nxt + 10, window: bufferWindow - 10,
                                      options: [.noOperation, .noOperation, .timestamps(value: 90, echoReply: 1_001)])))
    }

    @Test func timestampWrapIsComparedModulo() {
        var c = withTimestamps()
        c.tsRecent = UInt32.max - 1
        _ = c.handle(incoming(seq: nxt, ack: una, options: [.timestamps(value: 3, echoReply: 0)], payload: [1]), now: at(1))
        #expect(c.receivableBytes == 1)
    }

    @Test func segmentWithoutTimestampIsDropped() {
        var c = withTimestamps()
        #expect(c.handle(incoming(seq: nxt, ack: una, payload: [1]), now: at(1)).isEmpty)
        #expect(c.receivableBytes == 0)
    }

    @Test func resetIsNotSubjectToPaws() {
        var c = withTimestamps()
        #expect(c.handle(incoming(seq: nxt, flags: .rst, options: [.timestamps(value: 5, echoReply: 0)]), now: at(1)) == [.closed(.reset)])
    }

    @Test func rttIsMeasuredFromTheEcho() {
        var c = withTimestamps()
        c.send(bytes(100))
        _ = c.poll(now: at(10))
        c.timedSegment = nil // only the echo can give a sample
        _ = c.handle(incoming(seq: nxt, ack: una + 100, options: [.timestamps(value: 1_002, echoReply: 10)]), now: at(75))
        #expect(c.smoothedRTT == .milliseconds(65))
    }
}
