import Core
import Testing
import Wire
@testable import TCP

/// An option writer like MPTCP's: it tags every segment with a kind-253
/// (RFC 6994 experimental) option and records what arrives.
struct TaggingExtension: TCPOptionExtension {
    var reservedOptionBytes: Int { 8 }
    var seen: [TCPOption] = []
    var purposes: [TCPSegmentPurpose] = []
    var rooms: [Int] = []

    mutating func options(for segment: TCPSegment, purpose: TCPSegmentPurpose, room: Int, state: TCPState) -> [TCPOption] {
        purposes.append(purpose)
        rooms.append(room)
        return [.unknown(kind: 253, data: [0xAB, 0xCD, UInt8(segment.payload.count & 0xff), 0, 0, 0])]
    }

    mutating func received(_ segment: TCPSegment, state: TCPState) {
        seen += segment.options.filter { if case .unknown = $0 { return true } else { return false } }
    }
}

@Suite("TCP hooks for MPTCP")
struct ExtensionTests {
    let una = localISS + 1
    let nxt = remoteISS + 1

    @Test func extensionAddsOptionsAndReservesRoom() {
        var c = establishedConnection()
        c.optionExtension = TaggingExtension()
        c.send(bytes(1_500))
        let out = segments(c.poll(now: at(0)))
        // MSS 1000 less the 8 reserved bytes: 992 bytes per segment.
        #expect(out.map(\.payload.count) == [992, 508])
        let first: [TCPOption] = [.unknown(kind: 253, data: [0xAB, 0xCD, UInt8(992 & 0xff), 0, 0, 0])]
        let second: [TCPOption] = [.unknown(kind: 253, data: [0xAB, 0xCD, UInt8(508 & 0xff), 0, 0, 0])]
        #expect(out.map(\.options) == [first, second])
        let ext = c.optionExtension as! TaggingExtension
        #expect(ext.purposes == [.data, .data])
        #expect(ext.rooms == [40, 40])
    }

    @Test func extensionSeesIncomingOptions() {
        var c = establishedConnection()
        c.optionExtension = TaggingExtension()
        _ = c.handle(incoming(seq: nxt, ack: una, options: [.unknown(kind: 30, data: [0x20, 1])], payload: [1]), now: at(0))
        let ext = c.optionExtension as! TaggingExtension
        #expect(ext.seen == [.unknown(kind: 30, data: [0x20, 1])])
    }

    @Test func pureAcksAndRetransmissionsAreTaggedToo() {
        var c = establishedConnection()
        c.optionExtension = TaggingExtension()
        c.send(bytes(100)); _ = c.poll(now: at(0))
        _ = c.poll(now: at(1_000))
        _ = c.handle(incoming(seq: nxt, ack: una + 100, payload: bytes(1_000)), now: at(1_010))
        _ = c.poll(now: at(1_050))
        let ext = c.optionExtension as! TaggingExtension
        #expect(ext.purposes == [.data, .retransmission, .acknowledgment])
    }

    @Test func installedCongestionControlSurvivesTheHandshake() {
        var c = TCPConnection(tuple: testTuple, configuration: plainConfiguration(), isnGenerator: .init(seed: 1))
        var reno = NewReno(maximumSegmentSize: 1_000, initialWindowSegments: 3)
        reno.coupling = nil
        c.installCongestionControl(reno)
        _ = c.connect(now: at(0))
        _ = c.handle(incoming(seq: remoteISS, ack: c.iss + 1, flags: .syn, options: [.maximumSegmentSize(1_000)]), now: at(10))
        #expect(c.state == .established)
        #expect(c.congestionWindow == 3_000)
    }
}

@Suite("TCP engine under arbitrary input")
struct RobustnessTests {
    /// Random segments, near and far from the connection's sequence space, in
    /// every state: the engine must never trap and its invariants must hold.
    @Test(arguments: TCPState.allCases)
    func randomSegmentsNeverBreakTheEngine(state: TCPState) {
        var random = SeededRandom(seed: 42, stream: state.rawValue)
        for round in 0..<60 {
            var config = plainConfiguration()
            config.selectiveAcknowledgments = true
            config.timestamps = round % 2 == 0
            var c = establishedConnection(config)
            c.sackEnabled = true
            c.timestampsEnabled = config.timestamps
            c.send(bytes(5_000))
            _ = c.poll(now: at(0))
            c.state = state
            if state == .listen { c.passiveOpen = true }
            var now = at(1)
            for _ in 0..<30 {
                func nearby(_ base: SequenceNumber) -> SequenceNumber {
                    random.chance(0.7) ? base + Int(random.next() % 12_000) - 4_000 : SequenceNumber(UInt32(truncatingIfNeeded: random.next()))
                }
                let flags = TCPFlags(rawValue: UInt8(truncatingIfNeeded: random.next()) & 0x1f)
                var options: [TCPOption] = []
                if random.chance(0.3) {
                    options.append(.sack((0..<Int(random.next() % 5)).map { _ in
                        SACKBlock(left: nearby(c.sndUna), right: nearby(c.sndUna)) }))
                }
                if random.chance(0.5) {
                    options.append(.timestamps(value: UInt32(truncatingIfNeeded: random.next()), echoReply: UInt32(truncatingIfNeeded: random.next())))
                }
                if random.chance(0.1) { options += [.windowScale(UInt8(truncatingIfNeeded: random.next())), .maximumSegmentSize(UInt16(truncatingIfNeeded: random.next()))] }
                let seg = incoming(seq: nearby(c.rcvNxt), ack: random.chance(0.8) ? nearby(c.sndUna) : nil, flags: flags,
                                   window: UInt16(truncatingIfNeeded: random.next()), options: options,
                                   payload: bytes(Int(random.next() % 1_500)))
                now += .milliseconds(Int(random.next() % 300))
                _ = c.handle(seg, now: now)
                if random.chance(0.3) { now = max(now, min(c.nextDeadline, now + .seconds(5))); _ = c.poll(now: now) }
                if random.chance(0.2) { _ = c.receive() }
                // Invariants: nothing acknowledged beyond what was sent; the scoreboard stays inside it.
                #expect(!(c.sndNxt < c.sndUna))
                if let high = c.sackScoreboard.highestSACKed { #expect(!(c.sndNxt < high)) }
                #expect(c.bytesInFlight >= 0)
            }
        }
    }
}
