import Testing
@testable import Wire

@Suite("IPv4 and IPv6 headers")
struct IPTests {
    // The SYN's IPv4 header from the kernel capture (checksum as sent).
    static let v4Bytes = hexBytes("4500 0040 5f73 4000 4006 4d1d c612 0101 c612 0102")

    @Test func deconstructsIPv4() throws {
        let view = try IPv4HeaderView(checking: Self.v4Bytes[...])
        #expect(view.headerLength == 20)
        #expect(view.totalLength == 64)
        #expect(view.identification == 0x5F73)
        #expect(view.dontFragment && !view.moreFragments && view.fragmentOffset == 0)
        #expect(view.ttl == 64)
        #expect(view.proto == IPProtocol.tcp)
        #expect(view.source == IPv4Address(198, 18, 1, 1))
        #expect(view.destination == IPv4Address(198, 18, 1, 2))
        #expect(view.checksumIsValid)
        #expect(!view.isComplete) // only the header is here
    }

    @Test func constructsIPv4WithChecksum() throws {
        var header = IPv4Header(source: IPv4Address(198, 18, 1, 1), destination: IPv4Address(198, 18, 1, 2),
                                proto: IPProtocol.tcp, payloadLength: 44, identification: 0x5F73)
        var buffer = poisoned(20)
        header.emit(into: &buffer)
        #expect(buffer == Self.v4Bytes)
        #expect(try IPv4Header.parse(buffer[...]) == header)
        header.options = [1, 1, 1, 0] // NOP NOP NOP EOL
        var longer = poisoned(24)
        header.emit(into: &longer)
        #expect(longer[0] == 0x46)
        #expect(try IPv4HeaderView(checking: longer[...]).checksumIsValid)
        #expect(try IPv4Header.parse(longer[...]).options == [1, 1, 1, 0])
    }

    @Test func rejectsBadIPv4() {
        #expect(throws: WireError.truncated(what: "IPv4 header", needed: 20, available: 19)) {
            try IPv4HeaderView(checking: Self.v4Bytes[..<19])
        }
        var wrongVersion = Self.v4Bytes; wrongVersion[0] = 0x55
        #expect(throws: WireError.malformed(what: "IPv4 header", reason: "version 5, expected 4")) {
            try IPv4HeaderView(checking: wrongVersion[...])
        }
        var shortIHL = Self.v4Bytes; shortIHL[0] = 0x44
        #expect(throws: WireError.malformed(what: "IPv4 header", reason: "header length 16 is below 20")) {
            try IPv4HeaderView(checking: shortIHL[...])
        }
        var longIHL = Self.v4Bytes; longIHL[0] = 0x4F
        #expect(throws: WireError.truncated(what: "IPv4 header with options", needed: 60, available: 20)) {
            try IPv4HeaderView(checking: longIHL[...])
        }
        var smallTotal = Self.v4Bytes; smallTotal[2] = 0; smallTotal[3] = 19
        #expect(throws: WireError.malformed(what: "IPv4 header", reason: "total length 19 is shorter than the header (20)")) {
            try IPv4HeaderView(checking: smallTotal[...])
        }
    }

    static let v6Bytes = hexBytes("""
        6a12 3456 0018 063f
        2001 0db8 0000 0000 0000 0000 0000 0001
        2001 0db8 0000 0000 0000 0000 0000 0002
        """)

    @Test func deconstructsAndConstructsIPv6() throws {
        let view = try IPv6HeaderView(checking: Self.v6Bytes[...])
        #expect(view.trafficClass == 0xA1)
        #expect(view.flowLabel == 0x23456)
        #expect(view.payloadLength == 24)
        #expect(view.nextHeader == IPProtocol.tcp)
        #expect(view.hopLimit == 63)
        #expect(view.source == IPv6Address("2001:db8::1"))
        #expect(view.destination.description == "2001:db8::2")
        let header = IPv6Header.parse(view)
        var buffer = poisoned(40)
        header.emit(into: &buffer)
        #expect(buffer == Self.v6Bytes)
    }

    @Test func rejectsBadIPv6() {
        #expect(throws: WireError.truncated(what: "IPv6 header", needed: 40, available: 39)) {
            try IPv6HeaderView(checking: Self.v6Bytes[..<39])
        }
        var v = Self.v6Bytes; v[0] = 0x4A
        #expect(throws: WireError.malformed(what: "IPv6 header", reason: "version 4, expected 6")) {
            try IPv6HeaderView(checking: v[...])
        }
    }

    @Test(arguments: [
        ("::", "::"), ("::1", "::1"), ("2001:db8::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"),
        ("fe80:0:0:0:1:2:3:4", "fe80::1:2:3:4"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"),
        ("1:0:2:3:4:5:6:7", "1:0:2:3:4:5:6:7"),
    ])
    func ipv6TextIsCanonical(_ input: String, _ canonical: String) throws {
        let address = try #require(IPv6Address(input))
        #expect(address.description == canonical)
        #expect(IPv6Address(bytes: address.bytes) == address)
    }

    @Test(arguments: ["1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", "1:2:3:4:5:6:7", ""])
    func rejectsBadIPv6Text(_ text: String) { #expect(IPv6Address(text) == nil) }

    @Test func ipv4Text() {
        #expect(IPv4Address("198.18.0.1") == IPv4Address(198, 18, 0, 1))
        #expect(IPv4Address(198, 18, 0, 1).description == "198.18.0.1")
        for bad in ["198.18.0", "198.18.0.256", "a.b.c.d", "1..2.3", "1.2.3.4.5", "+1.2.3.4"] { #expect(IPv4Address(bad) == nil) }
        #expect(IPAddress("::1") == .v6(IPv6Address(high: 0, low: 1)))
    }

    @Test func wholePacketRoundTripsBothFamilies() throws {
        let segment = TCPSegment(sourcePort: 40000, destinationPort: 5000, sequenceNumber: SequenceNumber(1),
                                 acknowledgmentNumber: SequenceNumber(2), flags: [.ack, .psh], window: 512,
                                 options: [.noOperation, .noOperation, .timestamps(value: 1, echoReply: 2),
                                           .mptcp(.dss(DataSequenceSignal(dataACK: 9)))],
                                 payload: Array(0 ..< 77))
        let v4 = IPPacket(header: .v4(IPv4Header(source: IPv4Address(198, 18, 0, 1), destination: IPv4Address(198, 18, 0, 2),
                                                 proto: IPProtocol.tcp, payloadLength: 0)), tcp: segment)
        let v6 = IPPacket(header: .v6(IPv6Header(source: IPv6Address("2001:db8::a")!, destination: IPv6Address("2001:db8::b")!,
                                                 nextHeader: IPProtocol.tcp, payloadLength: 0)), tcp: segment)
        for packet in [v4, v6] {
            let bytes = packet.bytes()
            let parsed = try IPPacket.parse(bytes)
            #expect(parsed.tcp == segment)
            #expect(parsed.tcpChecksumValid == true)
            #expect(parsed.isComplete)
            #expect(parsed.transportLength == segment.encodedLength)
            var corrupted = bytes
            corrupted[corrupted.count - 1] ^= 0xFF
            #expect(try IPPacket.parse(corrupted).tcpChecksumValid == false)
        }
    }

    @Test func ipv6ExtensionHeadersAreWalked() throws {
        let segment = TCPSegment(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(3), flags: [.syn], window: 4)
        let tcp = segment.bytes(source: .v6(IPv6Address("::1")!), destination: .v6(IPv6Address("::2")!))
        // Hop-by-hop (8 bytes, PadN) then TCP.
        let hopByHop: [UInt8] = [IPProtocol.tcp, 0, 1, 4, 0, 0, 0, 0]
        var header = poisoned(40)
        IPv6Header(source: IPv6Address("::1")!, destination: IPv6Address("::2")!, nextHeader: 0,
                   payloadLength: hopByHop.count + tcp.count).emit(into: &header)
        let parsed = try IPPacket.parse(header + hopByHop + tcp)
        #expect(parsed.proto == IPProtocol.tcp)
        #expect(parsed.tcp == segment)
        #expect(parsed.tcpChecksumValid == true)
    }
}

@Suite("Checksums and data sequence numbers")
struct ChecksumTests {
    @Test func rfc1071Example() {
        // RFC 1071 §3: the sum of 0001 f203 f4f5 f6f7 is ddf2 (one's complement 220d).
        #expect(internetChecksum(hexBytes("0001f203f4f5f6f7")) == 0x220D)
        #expect(internetChecksum([UInt8]()) == 0xFFFF)
        // An odd length pads with a zero byte.
        #expect(internetChecksum([0x01]) == ~UInt16(0x0100))
    }

    @Test func tcpChecksumOverIPv6PseudoHeader() {
        let segment = TCPSegment(sourcePort: 80, destinationPort: 1234, sequenceNumber: SequenceNumber(5), flags: [.ack],
                                 window: 100, payload: [0x41, 0x42, 0x43])
        let src = IPv6Address("2001:db8::1")!, dst = IPv6Address("2001:db8::2")!
        let bytes = segment.bytes(source: .v6(src), destination: .v6(dst))
        #expect(tcpChecksum(segment: bytes, source: src, destination: dst) == 0)
        // Independently: sum the pseudo-header as bytes (RFC 8200 §8.1 layout).
        var pseudo = src.bytes + dst.bytes
        pseudo += [0, 0, 0, UInt8(bytes.count), 0, 0, 0, IPProtocol.tcp]
        #expect(internetChecksum(pseudo + bytes) == 0)
    }

    @Test func dssChecksumFromKernelCapture() throws {
        // Frame 16 of the sample: a 2504-byte mapping carried in one segment.
        // The payload is 2504 bytes of "x" (the test client's data).
        let payload = [UInt8](repeating: UInt8(ascii: "x"), count: 2504)
        let dsn: UInt64 = 14_682_780_779_556_914_332
        #expect(dssChecksum(dataSequenceNumber: dsn, relativeSubflowSequenceNumber: 62657, dataLevelLength: 2504,
                            payload: payload) == 0x8428)
        #expect(dssChecksum(dataSequenceNumber: dsn, relativeSubflowSequenceNumber: 62657, dataLevelLength: 2504,
                            checksum: 0x8428, payload: payload) == 0)
    }

    @Test func expandsDataSequenceNumbers() {
        let ref = DataSequenceNumber(0x0000_0001_FFFF_FF00)
        #expect(DataSequenceNumber.expand(0xFFFF_FF80, near: ref) == DataSequenceNumber(0x0000_0001_FFFF_FF80))
        // Crosses forward into the next 2^32 block…
        #expect(DataSequenceNumber.expand(0x0000_0010, near: ref) == DataSequenceNumber(0x0000_0002_0000_0010))
        // …and backward into the previous one.
        let early = DataSequenceNumber(0x0000_0002_0000_0010)
        #expect(DataSequenceNumber.expand(0xFFFF_FFF0, near: early) == DataSequenceNumber(0x0000_0001_FFFF_FFF0))
        // Wraps the whole 64-bit space.
        #expect(DataSequenceNumber.expand(5, near: DataSequenceNumber(UInt64.max - 2)) == DataSequenceNumber(5))
        #expect(DataSequenceNumber(UInt64.max) < DataSequenceNumber(3))
        #expect(DataSequenceNumber(3) - DataSequenceNumber(UInt64.max) == 4)
        #expect(DataSequenceNumber(10).low32 == 10)
    }
}
