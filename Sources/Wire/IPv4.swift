/// IP protocol numbers Wayside reads (IANA "Assigned Internet Protocol Numbers").
public enum IPProtocol {
    public static let tcp: UInt8 = 6
    public static let udp: UInt8 = 17
    public static let icmpv6: UInt8 = 58
}

/// A checked view of an IPv4 header (RFC 791 §3.1). `init(checking:)` proves
/// the header, its options and its total length are all inside the bytes; the
/// accessors cannot fail afterwards.
public struct IPv4HeaderView {
    public enum Field {
        public static let versionIHL = 0
        public static let dscpECN = 1
        public static let totalLength = 2
        public static let identification = 4
        public static let flagsFragment = 6
        public static let ttl = 8
        public static let proto = 9
        public static let checksum = 10
        public static let source = 12
        public static let destination = 16
        public static let options = 20
    }
    public static let minimumLength = 20

    public let bytes: ArraySlice<UInt8>

    public init(checking bytes: ArraySlice<UInt8>) throws {
        try require(bytes, Self.minimumLength, "IPv4 header")
        let version = bytes.u8(Field.versionIHL) >> 4
        guard version == 4 else { throw WireError.malformed(what: "IPv4 header", reason: "version \(version), expected 4") }
        let headerLength = Int(bytes.u8(Field.versionIHL) & 0x0F) * 4
        guard headerLength >= Self.minimumLength else {
            throw WireError.malformed(what: "IPv4 header", reason: "header length \(headerLength) is below 20")
        }
        try require(bytes, headerLength, "IPv4 header with options")
        let total = Int(bytes.u16(Field.totalLength))
        guard total >= headerLength else {
            throw WireError.malformed(what: "IPv4 header", reason: "total length \(total) is shorter than the header (\(headerLength))")
        }
        self.bytes = bytes
    }

    public var headerLength: Int { Int(bytes.u8(Field.versionIHL) & 0x0F) * 4 }
    public var dscp: UInt8 { bytes.u8(Field.dscpECN) >> 2 }
    public var ecn: UInt8 { bytes.u8(Field.dscpECN) & 0x03 }
    public var totalLength: Int { Int(bytes.u16(Field.totalLength)) }
    public var identification: UInt16 { bytes.u16(Field.identification) }
    public var dontFragment: Bool { bytes.u8(Field.flagsFragment) & 0x40 != 0 }
    public var moreFragments: Bool { bytes.u8(Field.flagsFragment) & 0x20 != 0 }
    public var fragmentOffset: UInt16 { bytes.u16(Field.flagsFragment) & 0x1FFF }
    public var ttl: UInt8 { bytes.u8(Field.ttl) }
    public var proto: UInt8 { bytes.u8(Field.proto) }
    public var checksum: UInt16 { bytes.u16(Field.checksum) }
    public var source: IPv4Address { IPv4Address(bytes.u32(Field.source)) }
    public var destination: IPv4Address { IPv4Address(bytes.u32(Field.destination)) }
    public var options: ArraySlice<UInt8> { bytes[(bytes.startIndex + Field.options) ..< (bytes.startIndex + headerLength)] }
    /// The payload as the total length says; a capture cut short by its snap
    /// length yields what is there.
    public var payload: ArraySlice<UInt8> {
        let start = bytes.startIndex + headerLength
        let end = min(bytes.startIndex + totalLength, bytes.endIndex)
        return bytes[start ..< max(start, end)]
    }
    /// Whether the captured bytes hold the whole packet.
    public var isComplete: Bool { bytes.count >= totalLength }
    /// RFC 1071: the one's-complement sum over a correct header is all ones.
    public var checksumIsValid: Bool { internetChecksum(bytes.prefix(headerLength)) == 0 }
}

/// An IPv4 header as a value. `emit` writes a header of `headerLength` bytes
/// (20 plus the options) with a correct checksum.
public struct IPv4Header: Hashable, Sendable {
    public var dscp: UInt8
    public var ecn: UInt8
    /// Header plus payload, in bytes.
    public var totalLength: UInt16
    public var identification: UInt16
    public var dontFragment: Bool
    public var moreFragments: Bool
    public var fragmentOffset: UInt16
    public var ttl: UInt8
    public var proto: UInt8
    public var source: IPv4Address
    public var destination: IPv4Address
    /// Option bytes, already padded to a multiple of four by the sender.
    public var options: [UInt8]

    public init(source: IPv4Address, destination: IPv4Address, proto: UInt8, payloadLength: Int,
                ttl: UInt8 = 64, identification: UInt16 = 0, dontFragment: Bool = true,
                dscp: UInt8 = 0, ecn: UInt8 = 0) {
        self.source = source; self.destination = destination; self.proto = proto
        self.totalLength = UInt16(truncatingIfNeeded: IPv4HeaderView.minimumLength + payloadLength)
        self.ttl = ttl; self.identification = identification; self.dontFragment = dontFragment
        self.moreFragments = false; self.fragmentOffset = 0; self.dscp = dscp; self.ecn = ecn
        self.options = []
    }

    public var headerLength: Int { IPv4HeaderView.minimumLength + options.count }

    public static func parse(_ view: IPv4HeaderView) throws -> IPv4Header {
        var h = IPv4Header(source: view.source, destination: view.destination, proto: view.proto, payloadLength: 0,
                           ttl: view.ttl, identification: view.identification, dontFragment: view.dontFragment,
                           dscp: view.dscp, ecn: view.ecn)
        h.totalLength = UInt16(view.totalLength)
        h.moreFragments = view.moreFragments
        h.fragmentOffset = view.fragmentOffset
        h.options = Array(view.options)
        return h
    }

    public static func parse(_ bytes: ArraySlice<UInt8>) throws -> IPv4Header {
        try parse(IPv4HeaderView(checking: bytes))
    }

    /// Writes the header at `offset`; the buffer must have room for `headerLength` bytes.
    public func emit(into buffer: inout [UInt8], at offset: Int = 0) {
        typealias F = IPv4HeaderView.Field
        precondition(options.count % 4 == 0 && options.count <= 40, "IPv4 options must be padded to 4 bytes, at most 40")
        precondition(buffer.count >= offset + headerLength, "buffer too small for the IPv4 header")
        buffer.put8(0x40 | UInt8(headerLength / 4), at: offset + F.versionIHL)
        buffer.put8(dscp << 2 | (ecn & 0x03), at: offset + F.dscpECN)
        buffer.put16(totalLength, at: offset + F.totalLength)
        buffer.put16(identification, at: offset + F.identification)
        let flags: UInt16 = (dontFragment ? 0x4000 : 0) | (moreFragments ? 0x2000 : 0)
        buffer.put16(flags | (fragmentOffset & 0x1FFF), at: offset + F.flagsFragment)
        buffer.put8(ttl, at: offset + F.ttl)
        buffer.put8(proto, at: offset + F.proto)
        buffer.put16(0, at: offset + F.checksum)
        buffer.put32(source.rawValue, at: offset + F.source)
        buffer.put32(destination.rawValue, at: offset + F.destination)
        buffer.putBytes(options, at: offset + F.options)
        let sum = internetChecksum(buffer[offset ..< offset + headerLength])
        buffer.put16(sum, at: offset + F.checksum)
    }
}
