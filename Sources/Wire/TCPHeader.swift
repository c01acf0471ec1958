/// A checked view of a TCP header (RFC 9293 §3.1). After `init(checking:)`
/// the fixed header and the options (per the data offset) are known to be
/// present; the options themselves are checked when parsed.
public struct TCPHeaderView {
    public enum Field {
        public static let sourcePort = 0
        public static let destinationPort = 2
        public static let sequenceNumber = 4
        public static let acknowledgmentNumber = 8
        public static let dataOffset = 12
        public static let flags = 13
        public static let window = 14
        public static let checksum = 16
        public static let urgentPointer = 18
        public static let options = 20
    }
    public static let minimumLength = 20
    public static let maximumLength = 60

    public let bytes: ArraySlice<UInt8>

    public init(checking bytes: ArraySlice<UInt8>) throws {
        try require(bytes, Self.minimumLength, "TCP header")
        let headerLength = Int(bytes.u8(Field.dataOffset) >> 4) * 4
        guard headerLength >= Self.minimumLength else {
            throw WireError.malformed(what: "TCP header", reason: "data offset \(headerLength / 4) words is below the minimum of 5")
        }
        try require(bytes, headerLength, "TCP header with options")
        self.bytes = bytes
    }

    public var headerLength: Int { Int(bytes.u8(Field.dataOffset) >> 4) * 4 }
    public var sourcePort: UInt16 { bytes.u16(Field.sourcePort) }
    public var destinationPort: UInt16 { bytes.u16(Field.destinationPort) }
    public var sequenceNumber: SequenceNumber { SequenceNumber(bytes.u32(Field.sequenceNumber)) }
    public var acknowledgmentNumber: SequenceNumber { SequenceNumber(bytes.u32(Field.acknowledgmentNumber)) }
    public var flags: TCPFlags { TCPFlags(rawValue: bytes.u8(Field.flags)) }
    public var window: UInt16 { bytes.u16(Field.window) }
    public var checksum: UInt16 { bytes.u16(Field.checksum) }
    public var urgentPointer: UInt16 { bytes.u16(Field.urgentPointer) }
    public var optionBytes: ArraySlice<UInt8> {
        bytes[(bytes.startIndex + Field.options) ..< (bytes.startIndex + headerLength)]
    }
    public var payload: ArraySlice<UInt8> { bytes[(bytes.startIndex + headerLength)...] }
}

extension TCPSegment {
    /// Header length in bytes: 20 plus the options padded to a multiple of four.
    public var headerLength: Int {
        let optionLength = TCPOption.encodedLength(options)
        return TCPHeaderView.minimumLength + (optionLength + 3) / 4 * 4
    }
    /// Header plus payload.
    public var encodedLength: Int { headerLength + payload.count }

    /// Reads a segment (header, options, payload) from bytes that hold exactly
    /// the segment, as an IP packet's payload does.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws -> TCPSegment {
        let view = try TCPHeaderView(checking: bytes)
        return TCPSegment(sourcePort: view.sourcePort, destinationPort: view.destinationPort,
                          sequenceNumber: view.sequenceNumber, acknowledgmentNumber: view.acknowledgmentNumber,
                          flags: view.flags, window: view.window, urgentPointer: view.urgentPointer,
                          options: try TCPOption.parseList(view.optionBytes), payload: Array(view.payload))
    }
    public static func parse(_ bytes: [UInt8]) throws -> TCPSegment { try parse(bytes[...]) }

    /// Writes header and payload at `offset` with the checksum field set from
    /// `pseudoHeaderSum` (see `pseudoHeaderSum(source:destination:proto:length:)`);
    /// with `nil` the checksum field is left zero. Precondition: the options
    /// fit in 40 bytes and the buffer has room for `encodedLength` bytes.
    public func emit(into buffer: inout [UInt8], at offset: Int = 0, pseudoHeaderSum: UInt32? = nil) {
        typealias F = TCPHeaderView.Field
        let headerLength = self.headerLength
        precondition(headerLength <= TCPHeaderView.maximumLength, "TCP options exceed 40 bytes")
        precondition(buffer.count >= offset + headerLength + payload.count, "buffer too small for the TCP segment")
        buffer.put16(sourcePort, at: offset + F.sourcePort)
        buffer.put16(destinationPort, at: offset + F.destinationPort)
        buffer.put32(sequenceNumber.rawValue, at: offset + F.sequenceNumber)
        buffer.put32(acknowledgmentNumber.rawValue, at: offset + F.acknowledgmentNumber)
        buffer.put8(UInt8(headerLength / 4) << 4, at: offset + F.dataOffset)
        buffer.put8(flags.rawValue, at: offset + F.flags)
        buffer.put16(window, at: offset + F.window)
        buffer.put16(0, at: offset + F.checksum)
        buffer.put16(urgentPointer, at: offset + F.urgentPointer)
        var at = offset + F.options
        for option in options { at = option.emit(into: &buffer, at: at) }
        // Pad with end-of-list bytes (zero) to the data offset (RFC 9293 §3.1).
        while at < offset + headerLength { buffer[at] = 0; at += 1 }
        buffer.putBytes(payload, at: offset + headerLength)
        if let pseudoHeaderSum {
            let sum = internetChecksum(buffer[offset ..< offset + headerLength + payload.count], initial: pseudoHeaderSum)
            buffer.put16(sum, at: offset + F.checksum)
        }
    }

    /// The encoded segment with its checksum computed for these addresses.
    public func bytes(source: IPAddress, destination: IPAddress) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: encodedLength)
        emit(into: &out, pseudoHeaderSum: pseudoHeaderSum(source: source, destination: destination,
                                                          proto: IPProtocol.tcp, length: encodedLength))
        return out
    }
}

extension TCPOption {
    public enum Kind {
        public static let endOfList: UInt8 = 0
        public static let noOperation: UInt8 = 1
        public static let maximumSegmentSize: UInt8 = 2
        public static let windowScale: UInt8 = 3
        public static let sackPermitted: UInt8 = 4
        public static let sack: UInt8 = 5
        public static let timestamps: UInt8 = 8
        public static let mptcp: UInt8 = 30
    }

    /// Bytes this option takes on the wire.
    public var encodedLength: Int {
        switch self {
        case .endOfList, .noOperation: return 1
        case .maximumSegmentSize: return 4
        case .windowScale: return 3
        case .sackPermitted: return 2
        case let .sack(blocks): return 2 + 8 * blocks.count
        case .timestamps: return 10
        case let .mptcp(option): return option.encodedLength
        case let .unknown(_, data): return 2 + data.count
        }
    }

    public static func encodedLength(_ options: [TCPOption]) -> Int {
        options.reduce(0) { $0 + $1.encodedLength }
    }

    /// Reads the option list of a TCP header. Parsing stops at end-of-list;
    /// what follows it is padding.
    public static func parseList(_ bytes: ArraySlice<UInt8>) throws -> [TCPOption] {
        var options: [TCPOption] = []
        var rest = bytes
        while let kind = rest.first {
            if kind == Kind.endOfList { options.append(.endOfList); break }
            if kind == Kind.noOperation { options.append(.noOperation); rest = rest.dropFirst(); continue }
            let (option, length) = try parseOne(rest)
            options.append(option)
            rest = rest.dropFirst(length)
        }
        return options
    }

    /// Reads the option at the start of `bytes`, returning it and its length.
    public static func parseOne(_ bytes: ArraySlice<UInt8>) throws -> (TCPOption, Int) {
        guard let kind = bytes.first else { throw WireError.truncated(what: "TCP option", needed: 1, available: 0) }
        if kind == Kind.endOfList { return (.endOfList, 1) }
        if kind == Kind.noOperation { return (.noOperation, 1) }
        let what = "TCP option kind \(kind)"
        try require(bytes, 2, what)
        let length = Int(bytes.u8(1))
        guard length >= 2 else { throw WireError.malformed(what: what, reason: "length \(length) is below 2") }
        try require(bytes, length, what)
        let option = bytes.prefix(length)
        func expect(_ expected: Int, _ name: String) throws {
            guard length == expected else {
                throw WireError.malformed(what: "TCP option \(name)", reason: "length \(length), expected \(expected)")
            }
        }
        switch kind {
        case Kind.maximumSegmentSize:
            try expect(4, "MSS")
            return (.maximumSegmentSize(option.u16(2)), length)
        case Kind.windowScale:
            try expect(3, "window scale")
            return (.windowScale(option.u8(2)), length)
        case Kind.sackPermitted:
            try expect(2, "SACK-permitted")
            return (.sackPermitted, length)
        case Kind.sack:
            // RFC 2018 §3: 8 bytes per block; at most 4 fit in 40 option bytes.
            guard length >= 10, (length - 2) % 8 == 0 else {
                throw WireError.malformed(what: "TCP option SACK", reason: "length \(length) is not 2 + 8 per block")
            }
            let blocks = stride(from: 2, to: length, by: 8).map {
                SACKBlock(left: SequenceNumber(option.u32($0)), right: SequenceNumber(option.u32($0 + 4)))
            }
            return (.sack(blocks), length)
        case Kind.timestamps:
            try expect(10, "timestamps")
            return (.timestamps(value: option.u32(2), echoReply: option.u32(6)), length)
        case Kind.mptcp:
            return (.mptcp(try MPTCPOption.parse(option)), length)
        default:
            return (.unknown(kind: kind, data: option.bytes(2, length - 2)), length)
        }
    }

    /// Writes the option at `offset` and returns the offset after it.
    @discardableResult
    public func emit(into buffer: inout [UInt8], at offset: Int) -> Int {
        switch self {
        case .endOfList: buffer[offset] = Kind.endOfList
        case .noOperation: buffer[offset] = Kind.noOperation
        case let .maximumSegmentSize(mss):
            buffer[offset] = Kind.maximumSegmentSize; buffer[offset + 1] = 4
            buffer.put16(mss, at: offset + 2)
        case let .windowScale(shift):
            buffer[offset] = Kind.windowScale; buffer[offset + 1] = 3; buffer[offset + 2] = shift
        case .sackPermitted:
            buffer[offset] = Kind.sackPermitted; buffer[offset + 1] = 2
        case let .sack(blocks):
            buffer[offset] = Kind.sack; buffer[offset + 1] = UInt8(truncatingIfNeeded: 2 + 8 * blocks.count)
            for (i, block) in blocks.enumerated() {
                buffer.put32(block.left.rawValue, at: offset + 2 + 8 * i)
                buffer.put32(block.right.rawValue, at: offset + 6 + 8 * i)
            }
        case let .timestamps(value, echoReply):
            buffer[offset] = Kind.timestamps; buffer[offset + 1] = 10
            buffer.put32(value, at: offset + 2); buffer.put32(echoReply, at: offset + 6)
        case let .mptcp(option):
            option.emit(into: &buffer, at: offset)
        case let .unknown(kind, data):
            buffer[offset] = kind; buffer[offset + 1] = UInt8(truncatingIfNeeded: 2 + data.count)
            buffer.putBytes(data, at: offset + 2)
        }
        return offset + encodedLength
    }

    /// The option alone, as bytes.
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: encodedLength)
        emit(into: &out, at: 0)
        return out
    }
}
