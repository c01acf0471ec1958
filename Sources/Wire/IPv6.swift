/// A checked view of the IPv6 fixed header (RFC 8200 §3). Extension headers
/// are walked by `IPPacket`, not here.
public struct IPv6HeaderView {
    public enum Field {
        public static let versionClassFlow = 0
        public static let payloadLength = 4
        public static let nextHeader = 6
        public static let hopLimit = 7
        public static let source = 8
        public static let destination = 24
    }
    public static let length = 40

    public let bytes: ArraySlice<UInt8>

    public init(checking bytes: ArraySlice<UInt8>) throws {
        try require(bytes, Self.length, "IPv6 header")
        let version = bytes.u8(Field.versionClassFlow) >> 4
        guard version == 6 else { throw WireError.malformed(what: "IPv6 header", reason: "version \(version), expected 6") }
        self.bytes = bytes
    }

    public var trafficClass: UInt8 { UInt8(truncatingIfNeeded: bytes.u32(Field.versionClassFlow) >> 20) }
    public var flowLabel: UInt32 { bytes.u32(Field.versionClassFlow) & 0xFFFFF }
    public var payloadLength: Int { Int(bytes.u16(Field.payloadLength)) }
    public var nextHeader: UInt8 { bytes.u8(Field.nextHeader) }
    public var hopLimit: UInt8 { bytes.u8(Field.hopLimit) }
    public var source: IPv6Address { IPv6Address(high: bytes.u64(Field.source), low: bytes.u64(Field.source + 8)) }
    public var destination: IPv6Address { IPv6Address(high: bytes.u64(Field.destination), low: bytes.u64(Field.destination + 8)) }
    /// The payload as the payload length says, cut to what was captured.
    public var payload: ArraySlice<UInt8> {
        let start = bytes.startIndex + Self.length
        return bytes[start ..< min(start + payloadLength, bytes.endIndex)]
    }
    public var isComplete: Bool { bytes.count >= Self.length + payloadLength }
}

/// The IPv6 fixed header as a value.
public struct IPv6Header: Hashable, Sendable {
    public var trafficClass: UInt8
    public var flowLabel: UInt32
    public var payloadLength: UInt16
    public var nextHeader: UInt8
    public var hopLimit: UInt8
    public var source: IPv6Address
    public var destination: IPv6Address

    public init(source: IPv6Address, destination: IPv6Address, nextHeader: UInt8, payloadLength: Int,
                hopLimit: UInt8 = 64, trafficClass: UInt8 = 0, flowLabel: UInt32 = 0) {
        self.source = source; self.destination = destination; self.nextHeader = nextHeader
        self.payloadLength = UInt16(truncatingIfNeeded: payloadLength); self.hopLimit = hopLimit
        self.trafficClass = trafficClass; self.flowLabel = flowLabel & 0xFFFFF
    }

    public static func parse(_ view: IPv6HeaderView) -> IPv6Header {
        IPv6Header(source: view.source, destination: view.destination, nextHeader: view.nextHeader,
                   payloadLength: view.payloadLength, hopLimit: view.hopLimit,
                   trafficClass: view.trafficClass, flowLabel: view.flowLabel)
    }
    public static func parse(_ bytes: ArraySlice<UInt8>) throws -> IPv6Header {
        parse(try IPv6HeaderView(checking: bytes))
    }

    public func emit(into buffer: inout [UInt8], at offset: Int = 0) {
        typealias F = IPv6HeaderView.Field
        precondition(buffer.count >= offset + IPv6HeaderView.length, "buffer too small for the IPv6 header")
        buffer.put32(6 << 28 | UInt32(trafficClass) << 20 | (flowLabel & 0xFFFFF), at: offset + F.versionClassFlow)
        buffer.put16(payloadLength, at: offset + F.payloadLength)
        buffer.put8(nextHeader, at: offset + F.nextHeader)
        buffer.put8(hopLimit, at: offset + F.hopLimit)
        buffer.putBytes(source.bytes, at: offset + F.source)
        buffer.putBytes(destination.bytes, at: offset + F.destination)
    }
}
