/// The network header of a packet: IPv4 or IPv6.
public enum IPHeader: Hashable, Sendable {
    case v4(IPv4Header)
    case v6(IPv6Header)

    public var source: IPAddress {
        switch self { case let .v4(h): return .v4(h.source); case let .v6(h): return .v6(h.source) }
    }
    public var destination: IPAddress {
        switch self { case let .v4(h): return .v4(h.destination); case let .v6(h): return .v6(h.destination) }
    }
    public var version: Int { if case .v4 = self { return 4 } else { return 6 } }
}

/// A whole IP packet as read off a TUN device or out of a capture: the IP
/// header, and either the TCP segment it carries or its other payload.
public struct IPPacket: Hashable, Sendable {
    public var header: IPHeader
    /// The transport protocol number (after IPv6 extension headers).
    public var proto: UInt8
    public var tcp: TCPSegment?
    /// The transport payload when it is not TCP (or a non-first fragment).
    public var otherPayload: [UInt8]
    /// Bytes of transport data the IP header announces; with a snap length
    /// this can exceed what was captured.
    public var transportLength: Int
    /// The TCP header length as the data offset gave it.
    public var tcpHeaderLength: Int
    /// Whether every byte the IP header announces was present.
    public var isComplete: Bool
    /// The TCP checksum verdict, when the packet was complete: true if right.
    public var tcpChecksumValid: Bool?

    public init(header: IPHeader, tcp: TCPSegment) {
        self.header = header; self.proto = IPProtocol.tcp; self.tcp = tcp; self.otherPayload = []
        self.transportLength = tcp.encodedLength; self.tcpHeaderLength = tcp.headerLength
        self.isComplete = true; self.tcpChecksumValid = true
    }

    enum IPv6NextHeader {
        static let hopByHop: UInt8 = 0
        static let routing: UInt8 = 43
        static let fragment: UInt8 = 44
        static let destinationOptions: UInt8 = 60
    }

    /// Parses an IPv4 or IPv6 packet (chosen by the version nibble) and, if it
    /// carries TCP, the segment. Never traps on any input.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws -> IPPacket {
        guard let first = bytes.first else { throw WireError.truncated(what: "IP packet", needed: 1, available: 0) }
        switch first >> 4 {
        case 4:
            let view = try IPv4HeaderView(checking: bytes)
            let header = try IPv4Header.parse(view)
            let payload = view.payload
            // Only the first fragment starts with the TCP header.
            let isFirstFragment = view.fragmentOffset == 0
            return try finish(header: .v4(header), proto: view.proto, payload: payload,
                              transportLength: view.totalLength - view.headerLength,
                              complete: view.isComplete && !view.moreFragments && isFirstFragment,
                              transportPresent: isFirstFragment)
        case 6:
            let view = try IPv6HeaderView(checking: bytes)
            var next = view.nextHeader
            var payload = view.payload
            var announced = view.payloadLength
            // RFC 8200 §4: walk the extension headers to the upper layer.
            walk: while true {
                switch next {
                case IPv6NextHeader.hopByHop, IPv6NextHeader.routing, IPv6NextHeader.destinationOptions:
                    try require(payload, 2, "IPv6 extension header \(next)")
                    let length = (Int(payload.u8(1)) + 1) * 8
                    try require(payload, length, "IPv6 extension header \(next)")
                    next = payload.u8(0); payload = payload.dropFirst(length); announced -= length
                case IPv6NextHeader.fragment:
                    try require(payload, 8, "IPv6 fragment header")
                    let offset = payload.u16(2) >> 3
                    let more = payload.u16(2) & 1 != 0
                    next = payload.u8(0); payload = payload.dropFirst(8); announced -= 8
                    if offset != 0 || more {
                        return try finish(header: .v6(IPv6Header.parse(view)), proto: next, payload: payload,
                                          transportLength: max(announced, 0), complete: false, transportPresent: offset == 0)
                    }
                default: break walk
                }
            }
            return try finish(header: .v6(IPv6Header.parse(view)), proto: next, payload: payload,
                              transportLength: max(announced, 0), complete: view.isComplete, transportPresent: true)
        default:
            throw WireError.malformed(what: "IP packet", reason: "version \(first >> 4), expected 4 or 6")
        }
    }

    static func finish(header: IPHeader, proto: UInt8, payload: ArraySlice<UInt8>, transportLength: Int,
                       complete: Bool, transportPresent: Bool) throws -> IPPacket {
        var packet = IPPacket(header: header, proto: proto, transportLength: transportLength, isComplete: complete)
        guard proto == IPProtocol.tcp, transportPresent else {
            packet.otherPayload = Array(payload)
            return packet
        }
        packet.tcp = try TCPSegment.parse(payload)
        packet.tcpHeaderLength = Int(payload.u8(TCPHeaderView.Field.dataOffset) >> 4) * 4
        if complete, let sum = pseudoHeaderSum(source: header.source, destination: header.destination,
                                               proto: IPProtocol.tcp, length: payload.count) {
            packet.tcpChecksumValid = internetChecksum(payload, initial: sum) == 0
        }
        return packet
    }

    init(header: IPHeader, proto: UInt8, transportLength: Int, isComplete: Bool) {
        self.header = header; self.proto = proto; self.tcp = nil; self.otherPayload = []
        self.transportLength = transportLength; self.tcpHeaderLength = 0
        self.isComplete = isComplete; self.tcpChecksumValid = nil
    }

    public static func parse(_ bytes: [UInt8]) throws -> IPPacket { try parse(bytes[...]) }

    /// Encodes the packet with correct lengths and checksums (IPv4 header
    /// checksum, TCP checksum over the pseudo-header).
    public func bytes() -> [UInt8] {
        let transport: [UInt8] = tcp.map { $0.bytes(source: header.source, destination: header.destination) } ?? otherPayload
        switch header {
        case var .v4(h):
            h.proto = proto
            h.totalLength = UInt16(truncatingIfNeeded: h.headerLength + transport.count)
            var out = [UInt8](repeating: 0, count: h.headerLength + transport.count)
            h.emit(into: &out)
            out.putBytes(transport, at: h.headerLength)
            return out
        case var .v6(h):
            h.nextHeader = proto
            h.payloadLength = UInt16(truncatingIfNeeded: transport.count)
            var out = [UInt8](repeating: 0, count: IPv6HeaderView.length + transport.count)
            h.emit(into: &out)
            out.putBytes(transport, at: IPv6HeaderView.length)
            return out
        }
    }
}

/// One captured frame decoded as far as it goes. Decoding never throws: what
/// could not be read is kept in `error`, with everything read before it.
public struct DecodedFrame: Sendable {
    public var index: Int
    public var timestamp: UInt64
    public var capturedLength: Int
    public var originalLength: Int
    public var etherType: UInt16?
    public var packet: IPPacket?
    public var error: WireError?

    public static func decode(_ record: PcapRecord, index: Int, linkType: PcapLinkType) -> DecodedFrame {
        var frame = DecodedFrame(index: index, timestamp: record.timestamp, capturedLength: record.data.count,
                                 originalLength: record.originalLength, etherType: nil, packet: nil, error: nil)
        do {
            let (etherType, bytes) = try LinkLayer.networkPacket(of: record.data[...], linkType: linkType)
            frame.etherType = etherType
            guard etherType == LinkLayer.EtherType.ipv4 || etherType == LinkLayer.EtherType.ipv6 else { return frame }
            frame.packet = try IPPacket.parse(bytes)
        } catch let e as WireError {
            frame.error = e
        } catch {
            frame.error = .malformed(what: "frame", reason: "\(error)")
        }
        return frame
    }
}
