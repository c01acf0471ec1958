import Testing
@testable import Wire

@Suite("TCP header and options")
struct TCPHeaderTests {
    // A SYN from the kernel capture in samples/: MSS, SACK-permitted,
    // timestamps, NOP, window scale and MP_CAPABLE, 44-byte header.
    static let synBytes = hexBytes("""
        c8ac 1388 ae6b 2605 0000 0000 b002 faf0 0000 0000
        0204 05b4 0402 080a be45 731a 0000 0000 0103 030a 1e04 0101
        """)
    static let synSegment = TCPSegment(
        sourcePort: 51372, destinationPort: 5000, sequenceNumber: SequenceNumber(2_926_257_669),
        flags: [.syn], window: 64240,
        options: [.maximumSegmentSize(1460), .sackPermitted, .timestamps(value: 3_192_222_490, echoReply: 0),
                  .noOperation, .windowScale(10),
                  .mptcp(.capable(MPCapable(version: 1, flags: MPCapable.Flag.hmacSHA256)))])

    @Test func deconstructsHeaderFields() throws {
        let view = try TCPHeaderView(checking: Self.synBytes[...])
        #expect(view.sourcePort == 51372)
        #expect(view.destinationPort == 5000)
        #expect(view.sequenceNumber == SequenceNumber(2_926_257_669))
        #expect(view.acknowledgmentNumber == SequenceNumber(0))
        #expect(view.headerLength == 44)
        #expect(view.flags == [.syn])
        #expect(view.window == 64240)
        #expect(view.urgentPointer == 0)
        #expect(view.payload.isEmpty)
        #expect(try TCPSegment.parse(Self.synBytes) == Self.synSegment)
    }

    @Test func constructsIntoPoisonedBuffer() {
        var buffer = poisoned(44)
        Self.synSegment.emit(into: &buffer)
        #expect(buffer == Self.synBytes)
    }

    @Test func emitsAtOffsetWithPayloadAndChecksum() throws {
        var segment = Self.synSegment
        segment.flags = [.psh, .ack]
        segment.acknowledgmentNumber = SequenceNumber(7)
        segment.payload = [1, 2, 3]
        let src = IPv4Address(198, 18, 1, 1), dst = IPv4Address(198, 18, 1, 2)
        var buffer = poisoned(4 + segment.encodedLength + 4)
        let sum = pseudoHeaderSum(source: src, destination: dst, proto: IPProtocol.tcp, length: segment.encodedLength)
        segment.emit(into: &buffer, at: 4, pseudoHeaderSum: sum)
        #expect(buffer.prefix(4).allSatisfy { $0 == 0xA5 })
        #expect(buffer.suffix(4).allSatisfy { $0 == 0xA5 })
        let body = buffer[4 ..< 4 + segment.encodedLength]
        #expect(tcpChecksum(segment: body, source: src, destination: dst) == 0)
        #expect(try TCPSegment.parse(body) == segment)
    }

    @Test func padsOptionsToFourBytes() throws {
        let segment = TCPSegment(sourcePort: 1, destinationPort: 2, sequenceNumber: SequenceNumber(3),
                                 flags: [.syn], window: 4, options: [.windowScale(7)])
        #expect(segment.headerLength == 24)
        var buffer = poisoned(24)
        segment.emit(into: &buffer)
        #expect(Array(buffer[20...]) == [3, 3, 7, 0])
        // The zero padding reads back as end-of-list.
        #expect(try TCPSegment.parse(buffer).options == [.windowScale(7), .endOfList])
    }

    @Test func rejectsTruncatedHeader() {
        #expect(throws: WireError.truncated(what: "TCP header", needed: 20, available: 19)) {
            try TCPSegment.parse(Array(Self.synBytes.prefix(19)))
        }
        #expect(throws: WireError.truncated(what: "TCP header with options", needed: 44, available: 43)) {
            try TCPSegment.parse(Array(Self.synBytes.prefix(43)))
        }
    }

    @Test func rejectsImpossibleDataOffset() {
        var bytes = Self.synBytes
        bytes[12] = 0x40 // 4 words: below the 20-byte minimum
        #expect(throws: WireError.malformed(what: "TCP header", reason: "data offset 4 words is below the minimum of 5")) {
            try TCPSegment.parse(bytes)
        }
    }

    /// (option, bytes) pairs, each checked both ways.
    static let optionTable: [(TCPOption, String)] = [
        (.endOfList, "00"),
        (.noOperation, "01"),
        (.maximumSegmentSize(1460), "020405b4"),
        (.windowScale(14), "03030e"),
        (.sackPermitted, "0402"),
        (.sack([SACKBlock(left: SequenceNumber(1), right: SequenceNumber(0xFFFF_FFFF))]), "050a 00000001 ffffffff"),
        (.sack([SACKBlock(left: SequenceNumber(10), right: SequenceNumber(20)),
                SACKBlock(left: SequenceNumber(30), right: SequenceNumber(40)),
                SACKBlock(left: SequenceNumber(50), right: SequenceNumber(60))]),
         "051a 0000000a 00000014 0000001e 00000028 00000032 0000003c"),
        (.timestamps(value: 0x0102_0304, echoReply: 0xA0B0_C0D0), "080a 01020304 a0b0c0d0"),
        (.unknown(kind: 254, data: [0xF9, 0x89, 0x01]), "fe05 f98901"),
        (.unknown(kind: 28, data: [0x00, 0x10]), "1c04 0010"),
        (.unknown(kind: 99, data: []), "6302"),
    ]

    @Test(arguments: optionTable.indices)
    func optionBothWays(_ i: Int) throws {
        let (option, text) = Self.optionTable[i]
        let bytes = hexBytes(text)
        let (parsed, length) = try TCPOption.parseOne(bytes[...])
        #expect(parsed == option)
        #expect(length == bytes.count)
        var buffer = poisoned(bytes.count)
        #expect(option.emit(into: &buffer, at: 0) == bytes.count)
        #expect(buffer == bytes)
        #expect(option.encodedLength == bytes.count)
    }

    @Test(arguments: [
        ("0205 05b4 00", "malformed TCP option MSS: length 5, expected 4"),
        ("0302", "malformed TCP option window scale: length 2, expected 3"),
        ("0403 00", "malformed TCP option SACK-permitted: length 3, expected 2"),
        ("0509 0000000100000002 00", "malformed TCP option SACK: length 9 is not 2 + 8 per block"),
        ("0502", "malformed TCP option SACK: length 2 is not 2 + 8 per block"),
        ("0809 0102030405060708 00", "malformed TCP option timestamps: length 9, expected 10"),
        ("fe01", "malformed TCP option kind 254: length 1 is below 2"),
        ("fe00", "malformed TCP option kind 254: length 0 is below 2"),
    ])
    func rejectsImpossibleOptionLengths(_ text: String, _ message: String) {
        do {
            _ = try TCPOption.parseList(hexBytes(text)[...])
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test(arguments: ["02", "0204 05", "080a 01020304", "fe", "1e0c 10"])
    func rejectsTruncatedOptions(_ text: String) {
        #expect(throws: WireError.self) { try TCPOption.parseList(hexBytes(text)[...]) }
    }

    @Test func stopsAtEndOfList() throws {
        #expect(try TCPOption.parseList(hexBytes("0101 00 ffff")[...]) == [.noOperation, .noOperation, .endOfList])
    }

    @Test func sequenceNumbersWrap() {
        #expect(SequenceNumber(0xFFFF_FFF0) < SequenceNumber(5))
        #expect(SequenceNumber(5) - SequenceNumber(0xFFFF_FFF0) == 21)
        #expect(SequenceNumber(0xFFFF_FFFF) + 1 == SequenceNumber(0))
    }
}
