import Core
import Wire

/// The connection states of RFC 9293 §3.3.2.
public enum TCPState: String, Sendable, CaseIterable, CustomStringConvertible {
    case closed = "CLOSED", listen = "LISTEN", synSent = "SYN-SENT", synReceived = "SYN-RECEIVED"
    case established = "ESTABLISHED", finWait1 = "FIN-WAIT-1", finWait2 = "FIN-WAIT-2"
    case closeWait = "CLOSE-WAIT", closing = "CLOSING", lastAck = "LAST-ACK", timeWait = "TIME-WAIT"

    public var description: String { rawValue }

    /// States in which both initial sequence numbers are known (RFC 9293 §3.10.7.4).
    public var isSynchronized: Bool {
        switch self {
        case .closed, .listen, .synSent, .synReceived: return false
        default: return true
        }
    }
}

/// Why a connection reached CLOSED.
public enum TCPCloseReason: String, Sendable, Hashable {
    /// Both sides closed and the last FIN was acknowledged (or TIME-WAIT ended).
    case normal
    /// The peer reset the connection.
    case reset
    /// Retransmissions (or keepalives) went unanswered for too long (RFC 9293 §3.8.3, R2).
    case timedOut
    /// The local user aborted.
    case aborted
    /// The peer refused the connection (RST in SYN-SENT).
    case refused
}

/// What a connection asks its driver to do.
public enum TCPAction: Hashable, Sendable {
    case send(TCPSegment)
    case closed(TCPCloseReason)
}

/// Why a segment is being built, for an `TCPOptionExtension`.
public enum TCPSegmentPurpose: Hashable, Sendable {
    case syn, synAck, data, retransmission, acknowledgment, windowProbe, keepalive
}

/// The hook MPTCP rides on (RFC 8684 §3): it sees every option that arrives on
/// the connection and may add options to every segment that leaves it. The
/// engine reserves `reservedOptionBytes` in data segments for these options.
public protocol TCPOptionExtension: Sendable {
    /// Bytes of option space to keep free in data segments.
    var reservedOptionBytes: Int { get }
    /// Options to append to `segment` (already complete but for these), at
    /// most `room` bytes of them.
    mutating func options(for segment: TCPSegment, purpose: TCPSegmentPurpose, room: Int, state: TCPState) -> [TCPOption]
    /// Called with every segment that reaches the connection, before it is processed.
    mutating func received(_ segment: TCPSegment, state: TCPState)
    /// Called once a segment of a synchronized connection passed every
    /// acceptance check (sequence window, RFC 5961 RST/SYN/ACK rules, PAWS),
    /// just before its ACK and data are processed. Options that change state
    /// should wait for this, so blind segments change nothing.
    mutating func accepted(_ segment: TCPSegment, state: TCPState)
    /// The largest window to advertise (bytes, relative to RCV.NXT), or nil
    /// for the engine's own. MPTCP puts its connection-level window here
    /// (RFC 8684 §3.3.4). The field never exceeds the engine's own window.
    var receiveWindowLimit: Int? { get }
    /// The most payload a segment starting at `sequence` may carry, or nil
    /// for no limit: MPTCP ends segments where a DSS mapping ends.
    func payloadLimit(at sequence: SequenceNumber) -> Int?
    /// The most payload a retransmitted segment starting at `sequence` may
    /// carry, or nil for no limit beyond the MSS. MPTCP answers with the end
    /// of the DSS mapping that `sequence` lies in: a segment carries one
    /// mapping, so a retransmission must not run into the next one (RFC 8684
    /// §3.3.1; Linux keeps skbs of different mappings from being collapsed).
    func retransmissionPayloadLimit(startingAt sequence: SequenceNumber) -> Int?
    /// Option bytes to keep free on a segment without payload, when that is
    /// less than `reservedOptionBytes` (MPTCP: a DSS with only a data ACK),
    /// so that pure ACKs keep room for SACK blocks.
    var reservedOptionBytesWithoutPayload: Int { get }
}

extension TCPOptionExtension {
    public mutating func accepted(_ segment: TCPSegment, state: TCPState) {}
    public var receiveWindowLimit: Int? { nil }
    public func payloadLimit(at sequence: SequenceNumber) -> Int? { nil }
    public var reservedOptionBytesWithoutPayload: Int { reservedOptionBytes }
    public func retransmissionPayloadLimit(startingAt sequence: SequenceNumber) -> Int? { nil }
}

/// What happened on a connection, readable at any time.
public struct TCPCounters: Sendable, Hashable {
    public var segmentsSent = 0
    public var segmentsReceived = 0
    /// Payload bytes sent for the first time.
    public var bytesSent = 0
    public var bytesRetransmitted = 0
    /// Segments sent again (fast retransmit, SACK recovery, RTO, SYN retries).
    public var retransmissions = 0
    public var retransmissionTimeouts = 0
    public var fastRecoveries = 0
    public var sackBlocksReceived = 0
    public var sackBlocksSent = 0
    public var duplicateAcksReceived = 0
    public var outOfOrderSegmentsReceived = 0
    public var pawsRejected = 0
    public var challengeAcksSent = 0
    public var resetsSent = 0
    public var resetsReceived = 0
    public var zeroWindowProbesSent = 0
    public var keepalivesSent = 0
    /// Bytes handed to the application by `receive`.
    public var bytesDelivered = 0
    public init() {}
}

/// Byte length of an option on the wire (RFC 9293 §3.2); used to fit options
/// in the 40 bytes a header allows.
func wireLength(of option: TCPOption) -> Int {
    switch option {
    case .endOfList, .noOperation: return 1
    case .maximumSegmentSize: return 4
    case .windowScale: return 3
    case .sackPermitted: return 2
    case .sack(let blocks): return 2 + 8 * blocks.count
    case .timestamps: return 10
    case .unknown(_, let data): return 2 + data.count
    default: return 0 // options the engine itself never emits (MPTCP) are measured by their extension
    }
}

/// RFC 9293 §3.1: at most 40 bytes of options.
let maximumOptionBytes = 40
