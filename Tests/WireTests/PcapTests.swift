import Testing
@testable import Wire

@Suite("pcap reader and writer")
struct PcapTests {
    static let packet: [UInt8] = IPPacket(
        header: .v4(IPv4Header(source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2),
                               proto: IPProtocol.tcp, payloadLength: 0)),
        tcp: TCPSegment(sourcePort: 1000, destinationPort: 2000, sequenceNumber: SequenceNumber(1), flags: [.syn], window: 100,
                        options: [.mptcp(.capable(MPCapable()))])).bytes()

    @Test(arguments: [(false, false), (false, true), (true, false), (true, true)])
    func roundTripsBothByteOrdersAndResolutions(_ bigEndian: Bool, _ nanosecond: Bool) throws {
        var writer = PcapWriter(header: PcapHeader(linkType: .raw, snapLength: 65535, nanosecond: nanosecond, bigEndian: bigEndian))
        let records = [PcapRecord(timestamp: 1_700_000_000_123_456_789, data: Self.packet),
                       PcapRecord(timestamp: 1_700_000_001_000_000_000, originalLength: 1500, data: [0x45, 0])]
        for r in records { writer.append(r) }
        let magic = Array(writer.bytes.prefix(4))
        #expect(magic == (bigEndian ? [0xA1, 0xB2] : (nanosecond ? [0x4D, 0x3C] : [0xD4, 0xC3])) + (bigEndian ? (nanosecond ? [0x3C, 0x4D] : [0xC3, 0xD4]) : [0xB2, 0xA1]))
        let (header, read) = try PcapReader.records(writer.bytes)
        #expect(header.linkType == .raw && header.bigEndian == bigEndian && header.nanosecond == nanosecond)
        #expect(read.count == 2)
        #expect(read[0].data == Self.packet)
        #expect(read[0].timestamp == (nanosecond ? 1_700_000_000_123_456_789 : 1_700_000_000_123_456_000))
        #expect(read[1].originalLength == 1500 && read[1].data == [0x45, 0])
    }

    @Test func decodesEveryLinkType() throws {
        let ethernet = [UInt8](repeating: 2, count: 12) + [0x08, 0x00]
        let vlan = [UInt8](repeating: 2, count: 12) + [0x81, 0x00, 0x00, 0x05, 0x08, 0x00]
        let sll: [UInt8] = [0, 4, 0, 1, 0, 6] + [UInt8](repeating: 0, count: 8) + [0x08, 0x00]
        let sll2: [UInt8] = [0x08, 0x00, 0, 0, 0, 0, 0, 3, 0, 1, 4, 6] + [UInt8](repeating: 0, count: 8)
        for (linkType, prefix) in [(PcapLinkType.ethernet, ethernet), (.ethernet, vlan), (.linuxSLL, sll), (.linuxSLL2, sll2),
                                   (.raw, []), (.ipv4, [])] {
            let frame = DecodedFrame.decode(PcapRecord(timestamp: 0, data: prefix + Self.packet), index: 1, linkType: linkType)
            #expect(frame.error == nil, "\(linkType)")
            #expect(frame.packet?.tcp?.options == [.mptcp(.capable(MPCapable()))], "\(linkType)")
        }
        let unknown = DecodedFrame.decode(PcapRecord(timestamp: 0, data: Self.packet), index: 1, linkType: PcapLinkType(rawValue: 147))
        #expect(unknown.error == .unsupported(what: "pcap link type", reason: "147; Wayside reads Ethernet (1), raw IP (101), Linux SLL (113) and SLL2 (276)"))
        let short = DecodedFrame.decode(PcapRecord(timestamp: 0, data: [0, 1, 2]), index: 1, linkType: .linuxSLL2)
        #expect(short.error == .truncated(what: "Linux cooked v2 (SLL2) header", needed: 20, available: 3))
    }

    @Test func rejectsFilesThatAreNotPcap() {
        #expect(throws: WireError.malformed(what: "pcap file", reason: "magic number 0x68656c6c is not a pcap magic (a1b2c3d4 or a1b23c4d, either byte order)")) {
            try PcapReader(bytes: Array("hello, world, this is text".utf8))
        }
        do {
            _ = try PcapReader(bytes: [0x0A, 0x0D, 0x0D, 0x0A, 0x1C, 0, 0, 0])
            Issue.record("accepted pcapng")
        } catch {
            #expect("\(error)".contains("pcapng"))
        }
        #expect(throws: WireError.self) { try PcapReader(bytes: [0xD4, 0xC3]) }
        #expect(throws: WireError.truncated(what: "pcap file header", needed: 24, available: 8)) {
            try PcapReader(bytes: [0xD4, 0xC3, 0xB2, 0xA1, 2, 0, 4, 0])
        }
    }

    @Test func reportsTruncatedRecords() throws {
        var writer = PcapWriter(header: PcapHeader(linkType: .raw))
        writer.append(PcapRecord(timestamp: 0, data: Self.packet))
        let cut = Array(writer.bytes.dropLast(3))
        var reader = try PcapReader(bytes: cut)
        #expect(throws: WireError.truncated(what: "pcap record data at byte 24", needed: 16 + Self.packet.count,
                                            available: 13 + Self.packet.count)) { try reader.nextRecord() }
        var iterating = try PcapReader(bytes: cut)
        #expect(iterating.next() == nil)
        #expect(iterating.error != nil)
    }

    @Test func decodeLineAndJSON() throws {
        let frame = DecodedFrame.decode(PcapRecord(timestamp: 1_500_000, data: Self.packet), index: 3, linkType: .raw)
        #expect(frame.line(origin: 0) == "3 0.001500 198.18.0.1:1000 > 198.18.0.2:2000 [S] seq 1 win 100 len 0 <MP_CAPABLE v1 flags=H>")
        let json = frame.json(origin: 0).serialized
        #expect(json.contains(#""options":[{"kind":"mptcp","subtype":"MP_CAPABLE","subtype_value":0,"version":1,"flags":1}]"#))
        #expect(json.hasPrefix(#"{"index":3,"time":0.001500,"#))
    }
}
