import Core
import Wire
@testable import TCP

// smoltcp-style fixtures: a connection is built directly in the state a test
// needs; segments are injected one at a time at a given instant and the
// exact output is compared.

let localPort: UInt16 = 80
let remotePort: UInt16 = 49_500
let localISS = SequenceNumber(10_000)
let remoteISS = SequenceNumber(UInt32.max - 5_000) // the peer's sequence numbers wrap
let testTuple = TCPFourTuple(localAddress: [198, 18, 0, 1], localPort: localPort,
                             remoteAddress: [198, 18, 0, 2], remotePort: remotePort)

func at(_ ms: Int) -> Instant { Instant.zero + .milliseconds(ms) }

/// A plain configuration: no timestamps, no SACK, no scaling, no Nagle, 32 KiB buffers.
func plainConfiguration() -> TCPConfiguration {
    var c = TCPConfiguration()
    c.timestamps = false
    c.selectiveAcknowledgments = false
    c.windowScaling = false
    c.nagle = false
    c.receiveBufferSize = 32_768
    c.sendBufferSize = 65_536
    c.maximumSegmentSize = 1000
    c.congestionControl = .newReno
    return c
}

let bufferWindow: UInt16 = 32_768

/// An ESTABLISHED connection: ISS and IRS acknowledged, peer window 64 KiB, peer MSS 1000.
func establishedConnection(_ configuration: TCPConfiguration = plainConfiguration()) -> TCPConnection {
    var c = TCPConnection(tuple: testTuple, configuration: configuration, isnGenerator: InitialSequenceNumberGenerator(seed: 1))
    c.state = .established
    c.iss = localISS
    c.sndUna = localISS + 1
    c.sndNxt = localISS + 1
    c.sendBufferStart = localISS + 1
    c.highRxt = c.sndUna; c.lostUpTo = c.sndUna; c.recoverFloor = localISS
    c.irs = remoteISS
    c.rcvNxt = remoteISS + 1
    c.rcvAdvertisedRight = c.rcvNxt + min(configuration.receiveBufferSize, 0xFFFF)
    c.lastAckSent = c.rcvNxt
    c.sndWnd = 65_535; c.maxSndWnd = 65_535
    c.sndWl1 = remoteISS; c.sndWl2 = localISS + 1
    c.peerMSS = 1000
    c.sndShift = 0; c.rcvShift = 0
    c.congestion = configuration.congestionControl.make(maximumSegmentSize: c.sendMaximumSegmentSize,
                                                        initialWindowSegments: configuration.initialWindowSegments)
    return c
}

/// A segment from the peer to us.
func incoming(seq: SequenceNumber, ack: SequenceNumber? = nil, flags: TCPFlags = [], window: UInt16 = 65_535,
              options: [TCPOption] = [], payload: [UInt8] = []) -> TCPSegment {
    var f = flags
    if ack != nil { f.insert(.ack) }
    return TCPSegment(sourcePort: remotePort, destinationPort: localPort, sequenceNumber: seq,
                      acknowledgmentNumber: ack ?? SequenceNumber(0), flags: f, window: window,
                      options: options, payload: payload)
}

/// A segment we expect to send.
func outgoing(seq: SequenceNumber, ack: SequenceNumber? = nil, flags: TCPFlags = [], window: UInt16 = bufferWindow,
              options: [TCPOption] = [], payload: [UInt8] = []) -> TCPSegment {
    var f = flags
    if ack != nil { f.insert(.ack) }
    return TCPSegment(sourcePort: localPort, destinationPort: remotePort, sequenceNumber: seq,
                      acknowledgmentNumber: ack ?? SequenceNumber(0), flags: f, window: window,
                      options: options, payload: payload)
}

func sends(_ segments: TCPSegment...) -> [TCPAction] { segments.map { .send($0) } }

func segments(_ actions: [TCPAction]) -> [TCPSegment] {
    actions.compactMap { if case .send(let s) = $0 { return s } else { return nil } }
}

func bytes(_ n: Int, from start: Int = 0) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: (start + $0) * 7 + 3) } }
