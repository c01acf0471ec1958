/// A TCP option as a value (RFC 9293 §3.2, RFC 7323, RFC 2018, RFC 8684).
/// Options Wayside does not know are kept byte for byte so that re-emitting a
/// parsed segment reproduces it exactly.
public enum TCPOption: Hashable, Sendable {
    case endOfList
    case noOperation
    case maximumSegmentSize(UInt16)
    case windowScale(UInt8)
    case sackPermitted
    /// SACK blocks as (left edge, right edge) pairs (RFC 2018 §3).
    case sack([SACKBlock])
    /// RFC 7323 §3: TSval, TSecr.
    case timestamps(value: UInt32, echoReply: UInt32)
    /// Multipath TCP, kind 30 (RFC 8684 §3), one case per subtype.
    case mptcp(MPTCPOption)
    /// Any other kind, with its data (the bytes after kind and length).
    case unknown(kind: UInt8, data: [UInt8])
}

public struct SACKBlock: Hashable, Sendable {
    public var left: SequenceNumber
    public var right: SequenceNumber
    public init(left: SequenceNumber, right: SequenceNumber) { self.left = left; self.right = right }
}

/// One TCP segment as a value: the header fields, its options in order, and its payload.
/// `window` is the raw 16-bit field; scaling is the connection's business.
public struct TCPSegment: Hashable, Sendable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: SequenceNumber
    public var acknowledgmentNumber: SequenceNumber
    public var flags: TCPFlags
    public var window: UInt16
    public var urgentPointer: UInt16
    public var options: [TCPOption]
    public var payload: [UInt8]

    public init(sourcePort: UInt16, destinationPort: UInt16,
                sequenceNumber: SequenceNumber, acknowledgmentNumber: SequenceNumber = SequenceNumber(0),
                flags: TCPFlags, window: UInt16, urgentPointer: UInt16 = 0,
                options: [TCPOption] = [], payload: [UInt8] = []) {
        self.sourcePort = sourcePort; self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber; self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags; self.window = window; self.urgentPointer = urgentPointer
        self.options = options; self.payload = payload
    }

    /// Sequence space the segment occupies: payload plus one for SYN and one for FIN.
    public var sequenceLength: Int {
        payload.count + (flags.contains(.syn) ? 1 : 0) + (flags.contains(.fin) ? 1 : 0)
    }
}
