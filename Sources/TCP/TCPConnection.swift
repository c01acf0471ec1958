import Core
import Wire

/// One TCP connection (RFC 9293) as a pure, clock-injected state machine.
///
/// Inputs are `handle(_:now:)` for a segment that arrived, `poll(now:)` when
/// `nextDeadline` has passed or the application queued data or read some,
/// and the user calls of RFC 9293 §3.9.1 (`connect`, `listen`, `send`,
/// `receive`, `close`, `abort`). Outputs are the returned `TCPAction`s.
public struct TCPConnection: Sendable {
    public internal(set) var state: TCPState = .closed
    public let configuration: TCPConfiguration
    public internal(set) var tuple: TCPFourTuple
    let isnGenerator: InitialSequenceNumberGenerator
    /// Whether this connection came from LISTEN (RFC 9293 §3.10.7.4: a RST in
    /// SYN-RECEIVED then returns it to LISTEN).
    var passiveOpen = false
    let listeningTuple: TCPFourTuple

    // MARK: Send sequence space (RFC 9293 §3.3.1)
    var iss = SequenceNumber(0)
    var sndUna = SequenceNumber(0)
    /// The highest sequence number sent plus one ("SND.MAX"); retransmissions
    /// never move it back.
    var sndNxt = SequenceNumber(0)
    var sndWnd = 0
    var sndWl1 = SequenceNumber(0)
    var sndWl2 = SequenceNumber(0)
    var maxSndWnd = 0
    var sndShift: UInt8 = 0
    var rcvShift: UInt8 = 0
    var windowScaleNegotiated = false
    var sendBuffer = ByteQueue()
    /// Sequence number of `sendBuffer`'s first byte.
    var sendBufferStart = SequenceNumber(0)
    /// The user called `close`: a FIN follows the queued data.
    var finQueued = false
    var finSent = false

    // MARK: Receive sequence space
    var irs = SequenceNumber(0)
    var rcvNxt = SequenceNumber(0)
    /// The right edge of the window we advertised; never moved left (RFC 9293 §3.8.6.2.2).
    var rcvAdvertisedRight = SequenceNumber(0)
    var receiveQueue = ByteQueue()
    var reassembly = ReassemblyQueue()
    /// Sequence number of the peer's FIN once seen, while data before it is missing.
    var remoteFinSequence: SequenceNumber?
    var remoteFinReceived = false

    // MARK: Negotiated options
    /// The peer's MSS (RFC 9293 §3.7.1: 536 when it sent none).
    var peerMSS = 536
    var timestampsEnabled = false
    var sackEnabled = false
    var tsRecent: UInt32 = 0
    var tsRecentTime = Instant.zero
    var lastAckSent = SequenceNumber(0)
    var tsOffset: UInt32 = 0

    // MARK: Retransmission and recovery
    var rtt: RetransmissionTimeoutEstimator
    var rtoDeadline: Instant?
    var consecutiveTimeouts = 0
    var handshakeRetransmissions = 0
    /// One segment timed for an RTT sample (RFC 6298 §3, Karn's rule).
    var timedSegment: (end: SequenceNumber, sentAt: Instant)?
    var scoreboard = SACKScoreboard()
    /// RFC 6675 HighRxt: the highest sequence number retransmitted.
    var highRxt = SequenceNumber(0)
    /// Everything below this is lost (marked by an RTO, or by NewReno's fast retransmit).
    var lostUpTo = SequenceNumber(0)
    var inRecovery = false
    /// RFC 6675 RecoveryPoint / RFC 6582 `recover`.
    var recoveryPoint = SequenceNumber(0)
    /// RFC 6582 §3.2 step 1: fast retransmit only once the ACK covers more than this.
    var recoverFloor = SequenceNumber(0)
    var duplicateAcks = 0
    /// Without SACK, each duplicate ACK stands for one segment that left the
    /// network; counted as if SACKed so the pipe estimate works alike.
    var renoSACKedSegments = 0
    var forceRetransmission = false
    var congestionWindowLimited = false
    public var congestion: any CongestionControl

    // MARK: Acknowledgments and timers
    var ackNow = false
    var delayedAckDeadline: Instant?
    var segmentsSinceAck = 0
    var persistDeadline: Instant?
    var persistBackoff = 0
    var overrideSenderSWS = false
    var keepaliveDeadline: Instant?
    var keepaliveProbes = 0
    var timeWaitDeadline: Instant?
    var challengeAckWindowStart = Instant.zero
    var challengeAcksInWindow = 0

    public internal(set) var counters = TCPCounters()
    public internal(set) var closeReason: TCPCloseReason?
    /// MPTCP's hook for options in and out.
    public var optionExtension: (any TCPOptionExtension)?

    public init(tuple: TCPFourTuple, configuration: TCPConfiguration = TCPConfiguration(),
                isnGenerator: InitialSequenceNumberGenerator) {
        self.tuple = tuple
        self.listeningTuple = tuple
        self.configuration = configuration
        self.isnGenerator = isnGenerator
        self.rtt = RetransmissionTimeoutEstimator(
            initial: configuration.initialRetransmissionTimeout,
            minimum: configuration.minimumRetransmissionTimeout,
            maximum: configuration.maximumRetransmissionTimeout)
        self.congestion = configuration.congestionControl.make(
            maximumSegmentSize: configuration.maximumSegmentSize,
            initialWindowSegments: configuration.initialWindowSegments)
        self.rcvShift = configuration.receiveWindowShift
    }

    // MARK: Readable state

    public var bytesInFlight: Int { state.isSynchronized || state == .synReceived ? pipe() : 0 }
    public var smoothedRTT: Interval? { rtt.smoothedRTT }
    public var retransmissionTimeout: Interval { rtt.timeout }
    public var congestionWindow: Int { congestion.congestionWindow }
    public var slowStartThreshold: Int { congestion.slowStartThreshold }
    public var isInRecovery: Bool { inRecovery }
    /// The peer's window in bytes (scaled).
    public var sendWindow: Int { sndWnd }
    /// Bytes the application may still queue with `send`.
    public var sendBufferSpace: Int { max(0, configuration.sendBufferSize - sendBuffer.count) }
    /// Bytes queued but not yet acknowledged by the peer.
    public var unacknowledgedBytes: Int { sendBuffer.count }
    /// Bytes waiting for `receive`.
    public var receivableBytes: Int { receiveQueue.count }
    /// Whether the peer has sent its FIN and everything before it was read.
    public var isReceiveFinished: Bool { remoteFinReceived && receiveQueue.isEmpty }
    /// The payload bytes a full segment carries in the current configuration.
    public var sendMaximumSegmentSize: Int { max(1, min(peerMSS, configuration.maximumSegmentSize) - (timestampsEnabled ? 12 : 0)) }
    public var sackScoreboard: SACKScoreboard { scoreboard }

    /// The earliest instant at which `poll` has work to do.
    public var nextDeadline: Instant {
        var d = Instant.distantFuture
        for t in [rtoDeadline, persistDeadline, delayedAckDeadline, keepaliveDeadline, timeWaitDeadline] {
            if let t, t < d { d = t }
        }
        return d
    }

    // MARK: User calls (RFC 9293 §3.10.1–§3.10.6)

    /// Active OPEN: sends a SYN.
    public mutating func connect(now: Instant) -> [TCPAction] {
        guard state == .closed || state == .listen else { return [] }
        passiveOpen = false
        iss = isnGenerator.initialSequenceNumber(for: tuple, at: now)
        tsOffset = isnGenerator.timestampOffset(for: tuple)
        sndUna = iss; sndNxt = iss + 1
        sendBufferStart = iss + 1
        highRxt = sndUna; lostUpTo = sndUna; recoverFloor = iss
        state = .synSent
        var actions: [TCPAction] = []
        sendSYN(now: now, into: &actions)
        timedSegment = (sndNxt, now)
        return actions
    }

    /// Passive OPEN.
    public mutating func listen() {
        guard state == .closed else { return }
        passiveOpen = true
        state = .listen
    }

    /// Queues bytes for sending; returns how many were accepted (bounded by the
    /// free send buffer). Call `poll` to transmit.
    @discardableResult
    public mutating func send<C: Collection>(_ bytes: C) -> Int where C.Element == UInt8 {
        switch state {
        case .synSent, .synReceived, .established, .closeWait: break
        default: return 0
        }
        guard !finQueued else { return 0 }
        let n = min(bytes.count, sendBufferSpace)
        sendBuffer.append(contentsOf: bytes.prefix(n))
        return n
    }

    /// Takes up to `maximum` received bytes. Call `poll` afterwards: reading
    /// may open the window enough to announce it.
    public mutating func receive(maximum: Int = .max) -> [UInt8] {
        let out = receiveQueue.popFirst(maximum)
        counters.bytesDelivered += out.count
        return out
    }

    /// CLOSE (RFC 9293 §3.10.4): no more data will be sent; the FIN follows
    /// the queued data. Call `poll` to transmit it.
    public mutating func close() {
        switch state {
        case .listen, .synSent:
            var ignored: [TCPAction] = []
            enterClosed(.normal, into: &ignored)
        case .synReceived, .established:
            finQueued = true
            if state == .established { state = .finWait1 }
        case .closeWait:
            finQueued = true
            state = .lastAck
        default:
            break
        }
    }

    /// ABORT (RFC 9293 §3.10.5): a RST to the peer when synchronized, then CLOSED.
    public mutating func abort(now: Instant) -> [TCPAction] {
        var actions: [TCPAction] = []
        switch state {
        case .synReceived, .established, .finWait1, .finWait2, .closeWait:
            let rst = TCPSegment(sourcePort: tuple.localPort, destinationPort: tuple.remotePort,
                                 sequenceNumber: sndNxt, flags: .rst, window: 0)
            counters.resetsSent += 1
            counters.segmentsSent += 1
            actions.append(.send(rst))
        default:
            break
        }
        if state != .closed { enterClosed(.aborted, into: &actions) }
        return actions
    }

    /// Handles expired timers and sends what can be sent.
    public mutating func poll(now: Instant) -> [TCPAction] {
        var actions: [TCPAction] = []
        runTimers(now: now, into: &actions)
        output(now: now, into: &actions)
        return actions
    }

    // MARK: Transitions

    mutating func enterClosed(_ reason: TCPCloseReason, into actions: inout [TCPAction]) {
        state = .closed
        closeReason = reason
        rtoDeadline = nil; persistDeadline = nil; delayedAckDeadline = nil
        keepaliveDeadline = nil; timeWaitDeadline = nil
        ackNow = false
        actions.append(.closed(reason))
    }

    mutating func enterTimeWait(now: Instant) {
        state = .timeWait
        rtoDeadline = nil; persistDeadline = nil; keepaliveDeadline = nil
        timeWaitDeadline = now + configuration.timeWaitDuration
    }

    /// RFC 9293 §3.10.7.4: a passive connection reset in SYN-RECEIVED goes back to LISTEN.
    mutating func returnToListen() {
        var fresh = TCPConnection(tuple: listeningTuple, configuration: configuration, isnGenerator: isnGenerator)
        fresh.counters = counters
        fresh.optionExtension = optionExtension
        fresh.listen()
        self = fresh
    }
}
