/// A pcap link-layer header type (tcpdump.org "LINKTYPE_" values).
public struct PcapLinkType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    public static let ethernet = PcapLinkType(rawValue: 1)
    /// LINKTYPE_RAW: the packet starts with an IPv4 or IPv6 header.
    public static let raw = PcapLinkType(rawValue: 101)
    /// DLT_RAW as some systems number it in files.
    public static let rawAlternative = PcapLinkType(rawValue: 12)
    public static let linuxSLL = PcapLinkType(rawValue: 113)
    public static let linuxSLL2 = PcapLinkType(rawValue: 276)
    public static let ipv4 = PcapLinkType(rawValue: 228)
    public static let ipv6 = PcapLinkType(rawValue: 229)

    public var description: String {
        switch self {
        case .ethernet: return "Ethernet"
        case .raw, .rawAlternative: return "raw IP"
        case .linuxSLL: return "Linux cooked (SLL)"
        case .linuxSLL2: return "Linux cooked v2 (SLL2)"
        case .ipv4: return "raw IPv4"
        case .ipv6: return "raw IPv6"
        default: return "link type \(rawValue)"
        }
    }
}

/// One captured packet of a classic pcap file.
public struct PcapRecord: Hashable, Sendable {
    /// Capture time in nanoseconds since the Unix epoch.
    public var timestamp: UInt64
    /// The packet's length on the wire; `data` may be shorter (snap length).
    public var originalLength: Int
    public var data: [UInt8]

    public init(timestamp: UInt64, originalLength: Int? = nil, data: [UInt8]) {
        self.timestamp = timestamp; self.originalLength = originalLength ?? data.count; self.data = data
    }
}

/// The 24-byte global header of a classic pcap file.
public struct PcapHeader: Hashable, Sendable {
    public enum Field {
        public static let magic = 0
        public static let versionMajor = 4
        public static let versionMinor = 6
        public static let thisZone = 8
        public static let sigFigs = 12
        public static let snapLength = 16
        public static let linkType = 20
    }
    public static let length = 24
    public static let recordHeaderLength = 16
    static let microsecondMagic: UInt32 = 0xA1B2_C3D4
    static let nanosecondMagic: UInt32 = 0xA1B2_3C4D
    static let pcapngMagic: UInt32 = 0x0A0D_0D0A

    public var linkType: PcapLinkType
    public var snapLength: UInt32
    /// Whether record timestamps count nanoseconds (else microseconds).
    public var nanosecond: Bool
    /// Whether the file's integers are big-endian.
    public var bigEndian: Bool

    public init(linkType: PcapLinkType, snapLength: UInt32 = 262_144, nanosecond: Bool = true, bigEndian: Bool = false) {
        self.linkType = linkType; self.snapLength = snapLength; self.nanosecond = nanosecond; self.bigEndian = bigEndian
    }
}

/// Reads a classic pcap file (both byte orders, micro- and nanosecond
/// timestamps) from memory. Errors name the byte offset that was wrong.
public struct PcapReader: Sequence, IteratorProtocol {
    public let header: PcapHeader
    let bytes: [UInt8]
    var offset = PcapHeader.length
    var failed = false
    /// Set when iteration stopped at a broken record; `next()` then returns nil.
    public private(set) var error: WireError?

    public init(bytes: [UInt8]) throws {
        let slice = bytes[...]
        guard slice.count >= 4 else {
            throw WireError.malformed(what: "pcap file", reason: "only \(slice.count) bytes; a pcap file starts with a 24-byte header")
        }
        let magicBE = slice.u32(0)
        let magicLE = magicBE.byteSwapped
        if magicBE == PcapHeader.pcapngMagic {
            throw WireError.unsupported(what: "capture format", reason: "this is a pcapng file; write classic pcap instead (tshark -F pcap, or editcap -F pcap in.pcapng out.pcap)")
        }
        let bigEndian: Bool, nanosecond: Bool
        switch (magicBE, magicLE) {
        case (PcapHeader.microsecondMagic, _): bigEndian = true; nanosecond = false
        case (PcapHeader.nanosecondMagic, _): bigEndian = true; nanosecond = true
        case (_, PcapHeader.microsecondMagic): bigEndian = false; nanosecond = false
        case (_, PcapHeader.nanosecondMagic): bigEndian = false; nanosecond = true
        default:
            throw WireError.malformed(what: "pcap file", reason: "magic number 0x\(String(magicBE, radix: 16)) is not a pcap magic (a1b2c3d4 or a1b23c4d, either byte order)")
        }
        try require(slice, PcapHeader.length, "pcap file header")
        func read32(_ o: Int) -> UInt32 { bigEndian ? slice.u32(o) : slice.u32(o).byteSwapped }
        func read16(_ o: Int) -> UInt16 { bigEndian ? slice.u16(o) : slice.u16(o).byteSwapped }
        let major = read16(PcapHeader.Field.versionMajor)
        guard major == 2 else {
            throw WireError.unsupported(what: "pcap file", reason: "version \(major).\(read16(PcapHeader.Field.versionMinor)), only 2.x is read")
        }
        // The upper bits of the link-type field may carry an FCS length; the type is the low 16 bits.
        header = PcapHeader(linkType: PcapLinkType(rawValue: read32(PcapHeader.Field.linkType) & 0xFFFF),
                            snapLength: read32(PcapHeader.Field.snapLength), nanosecond: nanosecond, bigEndian: bigEndian)
        self.bytes = bytes
    }

    /// The next record, or nil at the end (or after an error, kept in `error`).
    public mutating func next() -> PcapRecord? {
        guard !failed, offset < bytes.count else { return nil }
        do { return try nextRecord() } catch let e as WireError {
            failed = true; error = e; return nil
        } catch { failed = true; return nil }
    }

    /// Like `next()`, but throws on a broken record.
    public mutating func nextRecord() throws -> PcapRecord? {
        guard offset < bytes.count else { return nil }
        let slice = bytes[offset...]
        guard slice.count >= PcapHeader.recordHeaderLength else {
            throw WireError.truncated(what: "pcap record header at byte \(offset)", needed: PcapHeader.recordHeaderLength, available: slice.count)
        }
        let be = header.bigEndian
        func read32(_ o: Int) -> UInt32 { be ? slice.u32(o) : slice.u32(o).byteSwapped }
        let seconds = UInt64(read32(0)), fraction = UInt64(read32(4))
        let captured = Int(read32(8)), original = Int(read32(12))
        let limit = Swift.max(Int(header.snapLength), 262_144)
        guard captured <= limit else {
            throw WireError.malformed(what: "pcap record at byte \(offset)", reason: "captured length \(captured) exceeds the snap length \(header.snapLength)")
        }
        guard slice.count >= PcapHeader.recordHeaderLength + captured else {
            throw WireError.truncated(what: "pcap record data at byte \(offset)", needed: PcapHeader.recordHeaderLength + captured, available: slice.count)
        }
        let data = slice.bytes(PcapHeader.recordHeaderLength, captured)
        offset += PcapHeader.recordHeaderLength + captured
        let timestamp = seconds &* 1_000_000_000 &+ (header.nanosecond ? fraction : fraction &* 1000)
        return PcapRecord(timestamp: timestamp, originalLength: Swift.max(original, captured), data: data)
    }

    /// All records; throws at the first broken one.
    public static func records(_ bytes: [UInt8]) throws -> (PcapHeader, [PcapRecord]) {
        var reader = try PcapReader(bytes: bytes)
        var out: [PcapRecord] = []
        while let r = try reader.nextRecord() { out.append(r) }
        return (reader.header, out)
    }
}

/// Builds a classic pcap file in memory.
public struct PcapWriter {
    public let header: PcapHeader
    public private(set) var bytes: [UInt8]

    public init(header: PcapHeader) {
        self.header = header
        bytes = []
        bytes.reserveCapacity(4096)
        append32(header.nanosecond ? PcapHeader.nanosecondMagic : PcapHeader.microsecondMagic)
        append16(2); append16(4)
        append32(0); append32(0)
        append32(header.snapLength)
        append32(header.linkType.rawValue)
    }

    /// Appends a record; data beyond the snap length is cut off, as a capture would.
    public mutating func append(_ record: PcapRecord) {
        let captured = min(record.data.count, Int(header.snapLength))
        let seconds = record.timestamp / 1_000_000_000, nanos = record.timestamp % 1_000_000_000
        append32(UInt32(truncatingIfNeeded: seconds))
        append32(UInt32(header.nanosecond ? nanos : nanos / 1000))
        append32(UInt32(captured))
        append32(UInt32(truncatingIfNeeded: max(record.originalLength, captured)))
        bytes.append(contentsOf: record.data.prefix(captured))
    }

    private mutating func append32(_ v: UInt32) {
        let w = header.bigEndian ? v : v.byteSwapped
        bytes.append(contentsOf: [UInt8(w >> 24), UInt8(truncatingIfNeeded: w >> 16), UInt8(truncatingIfNeeded: w >> 8), UInt8(truncatingIfNeeded: w)])
    }
    private mutating func append16(_ v: UInt16) {
        let w = header.bigEndian ? v : v.byteSwapped
        bytes.append(contentsOf: [UInt8(w >> 8), UInt8(truncatingIfNeeded: w)])
    }
}

/// Link-layer framing of captured packets: finds the network-layer packet.
public enum LinkLayer {
    public enum EtherType {
        public static let ipv4: UInt16 = 0x0800
        public static let ipv6: UInt16 = 0x86DD
        public static let vlan: UInt16 = 0x8100
        public static let qinq: UInt16 = 0x88A8
    }
    public enum SLL {
        public static let length = 16
        public static let packetType = 0
        public static let proto = 14
    }
    public enum SLL2 {
        public static let length = 20
        public static let proto = 0
        public static let interfaceIndex = 4
        public static let packetType = 10
    }
    public static let ethernetHeaderLength = 14
    public static let ethernetTypeOffset = 12

    /// The network-layer bytes of a frame and their EtherType.
    public static func networkPacket(of frame: ArraySlice<UInt8>, linkType: PcapLinkType) throws -> (etherType: UInt16, packet: ArraySlice<UInt8>) {
        switch linkType {
        case .ethernet:
            try require(frame, ethernetHeaderLength, "Ethernet header")
            var typeOffset = ethernetTypeOffset
            var type = frame.u16(typeOffset)
            // IEEE 802.1Q / 802.1ad tags: 4 bytes each before the real EtherType.
            while type == EtherType.vlan || type == EtherType.qinq {
                typeOffset += 4
                try require(frame, typeOffset + 2, "Ethernet VLAN tag")
                type = frame.u16(typeOffset)
            }
            return (type, frame.dropFirst(typeOffset + 2))
        case .raw, .rawAlternative, .ipv4, .ipv6:
            guard let first = frame.first else { throw WireError.truncated(what: "raw IP packet", needed: 1, available: 0) }
            switch first >> 4 {
            case 4: return (EtherType.ipv4, frame)
            case 6: return (EtherType.ipv6, frame)
            default: throw WireError.malformed(what: "raw IP packet", reason: "IP version \(first >> 4)")
            }
        case .linuxSLL:
            try require(frame, SLL.length, "Linux cooked (SLL) header")
            return (frame.u16(SLL.proto), frame.dropFirst(SLL.length))
        case .linuxSLL2:
            try require(frame, SLL2.length, "Linux cooked v2 (SLL2) header")
            return (frame.u16(SLL2.proto), frame.dropFirst(SLL2.length))
        default:
            throw WireError.unsupported(what: "pcap link type", reason: "\(linkType.rawValue); Wayside reads Ethernet (1), raw IP (101), Linux SLL (113) and SLL2 (276)")
        }
    }
}
