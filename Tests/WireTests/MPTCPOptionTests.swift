import Testing
@testable import Wire

@Suite("MPTCP options (RFC 8684 §3)")
struct MPTCPOptionTests {
    static let clientKey: UInt64 = 0x72F3_963C_C6BE_999F
    static let serverKey: UInt64 = 0xDD2B_93D2_1DC0_01AC

    /// (option, bytes) pairs. The first ones are byte for byte what Linux
    /// 6.18 sent in samples/kernel-mptcp-two-paths.pcap; the rest cover the
    /// forms Linux did not send there.
    static let table: [(MPTCPOption, String)] = [
        (.capable(MPCapable(version: 1, flags: 0x01)), "1e04 0101"),
        (.capable(MPCapable(version: 1, flags: 0x81, senderKey: serverKey)), "1e0c 0181 dd2b93d21dc001ac"),
        (.capable(MPCapable(version: 1, flags: 0x81, senderKey: clientKey, receiverKey: serverKey)),
         "1e14 0181 72f3963cc6be999f dd2b93d21dc001ac"),
        (.capable(MPCapable(version: 1, flags: 0x81, senderKey: clientKey, receiverKey: serverKey,
                            dataLevelLength: 31328, checksum: 0xDEF3)),
         "1e18 0181 72f3963cc6be999f dd2b93d21dc001ac 7a60 def3"),
        (.capable(MPCapable(version: 1, flags: 0x01, senderKey: clientKey, receiverKey: serverKey, dataLevelLength: 100)),
         "1e16 0101 72f3963cc6be999f dd2b93d21dc001ac 0064"),
        (.capable(MPCapable(version: 0, flags: 0x81, senderKey: clientKey)), "1e0c 0081 72f3963cc6be999f"),
        (.join(.syn(backup: false, addressID: 1, receiverToken: 0x5CDE_71E0, senderNonce: 0x3F0E_BD13)),
         "1e0c 1001 5cde71e0 3f0ebd13"),
        (.join(.syn(backup: true, addressID: 9, receiverToken: 1, senderNonce: 2)), "1e0c 1109 00000001 00000002"),
        (.join(.synAck(backup: false, addressID: 1, truncatedHMAC: 0x1A3E_BDEF_34BE_8437, senderNonce: 0xF99C_E7F0)),
         "1e10 1001 1a3ebdef34be8437 f99ce7f0"),
        (.join(.ack(hmac: hexBytes("43f9ff18c8dc4ea4c21b4dd837fc79523e47d468"))),
         "1e18 1000 43f9ff18c8dc4ea4c21b4dd837fc79523e47d468"),
        (.dss(DataSequenceSignal(dataACK: 14_682_780_779_556_851_676)), "1e0c 2003 cbc3b753886b4fdc"),
        (.dss(DataSequenceSignal(dataACK: 0x570F_782D, dataACKIsEightBytes: false,
                                 mapping: DSSMapping(dataSequenceNumber: 0xCBC3_B753_886B_4FDC, subflowSequenceNumber: 1,
                                                     dataLevelLength: 31328, checksum: 0xDEF3))),
         "1e18 200d 570f782d cbc3b753886b4fdc 00000001 7a60 def3"),
        (.dss(DataSequenceSignal(dataACK: 0x570F_782D, dataACKIsEightBytes: false,
                                 mapping: DSSMapping(dataSequenceNumber: 0xCBC3_B753_886F_5D1C, subflowSequenceNumber: 0,
                                                     dataLevelLength: 1, checksum: 0x975B),
                                 dataFIN: true)),
         "1e18 201d 570f782d cbc3b753886f5d1c 00000000 0001 975b"),
        (.dss(DataSequenceSignal(mapping: DSSMapping(dataSequenceNumber: 0xAABB_CCDD, isEightBytes: false,
                                                     subflowSequenceNumber: 0x1000, dataLevelLength: 1400))),
         "1e0e 2004 aabbccdd 00001000 0578"),
        (.dss(DataSequenceSignal(dataACK: 0x0102_0304_0506_0708,
                                 mapping: DSSMapping(dataSequenceNumber: 0x1122_3344_5566_7788, subflowSequenceNumber: 5,
                                                     dataLevelLength: 0))),
         "1e1a 200f 0102030405060708 1122334455667788 00000005 0000"),
        (.dss(DataSequenceSignal(dataACK: 7, dataACKIsEightBytes: false)), "1e08 2001 00000007"),
        (.addAddress(AddAddress(addressID: 1, address: .v4(IPv4Address(198, 18, 2, 2)), truncatedHMAC: 0xD256_DF99_2C46_26AC)),
         "1e10 3001 c6120202 d256df992c4626ac"),
        (.addAddress(AddAddress(echo: true, addressID: 1, address: .v4(IPv4Address(198, 18, 2, 2)))), "1e08 3101 c6120202"),
        (.addAddress(AddAddress(addressID: 2, address: .v4(IPv4Address(198, 18, 3, 1)), port: 8080, truncatedHMAC: 1)),
         "1e12 3002 c6120301 1f90 0000000000000001"),
        (.addAddress(AddAddress(echo: true, addressID: 2, address: .v4(IPv4Address(198, 18, 3, 1)), port: 8080)),
         "1e0a 3102 c6120301 1f90"),
        (.addAddress(AddAddress(addressID: 7, address: .v6(IPv6Address("2001:db8::1")!), truncatedHMAC: 0x8B5E_3CEE_07A1_890E)),
         "1e1c 3007 20010db8000000000000000000000001 8b5e3cee07a1890e"),
        (.addAddress(AddAddress(addressID: 7, address: .v6(IPv6Address("2001:db8::1")!), port: 443, truncatedHMAC: 2)),
         "1e1e 3007 20010db8000000000000000000000001 01bb 0000000000000002"),
        (.addAddress(AddAddress(echo: true, addressID: 7, address: .v6(IPv6Address("2001:db8::1")!))),
         "1e14 3107 20010db8000000000000000000000001"),
        (.addAddress(AddAddress(echo: true, addressID: 7, address: .v6(IPv6Address("2001:db8::1")!), port: 443)),
         "1e16 3107 20010db8000000000000000000000001 01bb"),
        (.removeAddress(addressIDs: [3]), "1e04 4003"),
        (.removeAddress(addressIDs: [1, 2, 250]), "1e06 4001 02fa"),
        (.priority(backup: true, addressID: nil), "1e03 51"),
        (.priority(backup: false, addressID: nil), "1e03 50"),
        (.priority(backup: true, addressID: 4), "1e04 5104"),
        (.fail(dataSequenceNumber: 0x0102_0304_0506_0708), "1e0c 6000 0102030405060708"),
        (.fastClose(receiverKey: serverKey), "1e0c 7000 dd2b93d21dc001ac"),
        (.reset(flags: 0x1, reason: 3), "1e04 8103"),
        (.reset(flags: 0x0, reason: 0), "1e04 8000"),
        (.unknown(subtype: 0xF, data: [0xF0, 1, 2, 3]), "1e06 f0010203"),
        (.unknown(subtype: 0x9, data: [0x9A, 0xBC]), "1e04 9abc"),
    ]

    @Test(arguments: table.indices)
    func optionBothWays(_ i: Int) throws {
        let (option, text) = Self.table[i]
        let bytes = hexBytes(text)
        // bytes -> fields, through the general TCP option reader.
        let (parsed, length) = try TCPOption.parseOne(bytes[...])
        #expect(parsed == .mptcp(option))
        #expect(length == bytes.count)
        // fields -> bytes, into a poisoned buffer with guard bytes either side.
        var buffer = poisoned(bytes.count + 2)
        #expect(TCPOption.mptcp(option).emit(into: &buffer, at: 1) == bytes.count + 1)
        #expect(Array(buffer[1 ... bytes.count]) == bytes)
        #expect(buffer.first == 0xA5 && buffer.last == 0xA5)
        #expect(option.encodedLength == bytes.count)
    }

    @Test func subtypeNamesAndFlags() throws {
        guard case let .mptcp(.capable(c)) = try TCPOption.parseOne(hexBytes("1e0c 0181 dd2b93d21dc001ac")[...]).0 else {
            Issue.record("not MP_CAPABLE"); return
        }
        #expect(c.checksumRequired && c.usesHMACSHA256 && !c.noMoreSubflows)
        #expect(MPTCPOption.reset(flags: 1, reason: 2).name == "MP_TCPRST")
        #expect(MPTCPOption.unknown(subtype: 0xF, data: [0xF0]).name == "MP_EXPERIMENTAL")
    }

    /// Impossible lengths for each subtype, with the message the reader gives.
    @Test(arguments: [
        ("1e05 0101 00", "malformed MP_CAPABLE: length 5, expected 4, 12, 20, 22 or 24"),
        ("1e10 0181 dd2b93d21dc001ac 00000000", "malformed MP_CAPABLE: length 16, expected 4, 12, 20, 22 or 24"),
        ("1e0d 1001 5cde71e0 3f0ebd13 00", "malformed MP_JOIN: length 13, expected 12 (SYN), 16 (SYN/ACK) or 24 (ACK)"),
        ("1e08 2005 00000001", "malformed DSS: length 8 does not match flags 0x5 (expected 18 or 20)"),
        ("1e0a 2001 00000007 0000", "malformed DSS: length 10 does not match flags 0x1 (expected 8)"),
        ("1e09 3001 c6120202 00", "malformed ADD_ADDR: length 9 with echo=0, expected 16, 18, 28 or 30"),
        ("1e10 3101 c6120202 d256df992c4626ac", "malformed ADD_ADDR: length 16 with echo=1, expected 8, 10, 20 or 22"),
        ("1e03 40", "malformed REMOVE_ADDR: length 3, needs at least one address id (4)"),
        ("1e05 5000 00", "malformed MP_PRIO: length 5, expected one of [3, 4]"),
        ("1e0b 6000 01020304050607", "malformed MP_FAIL: length 11, expected one of [12]"),
        ("1e0d 7000 0102030405060708 09", "malformed MP_FASTCLOSE: length 13, expected one of [12]"),
        ("1e03 81", "malformed MP_TCPRST: length 3, expected one of [4]"),
    ])
    func rejectsImpossibleLengths(_ text: String, _ message: String) {
        do {
            _ = try TCPOption.parseOne(hexBytes(text)[...])
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)" == message)
        }
    }

    @Test(arguments: table.indices)
    func rejectsEveryTruncation(_ i: Int) {
        // The option's length byte stays, the bytes run out: always an error, never a trap.
        let bytes = hexBytes(Self.table[i].1)
        for cut in 0 ..< bytes.count {
            #expect(throws: WireError.self) { try TCPOption.parseOne(bytes[..<cut]) }
        }
    }

    @Test func mptcpOptionTooShortForSubtype() {
        #expect(throws: WireError.malformed(what: "TCP option kind 30", reason: "length 1 is below 2")) {
            try TCPOption.parseOne(hexBytes("1e01")[...])
        }
        #expect(throws: WireError.truncated(what: "MPTCP option", needed: 3, available: 2)) {
            try TCPOption.parseOne(hexBytes("1e02")[...])
        }
    }

    @Test func segmentWithDSSRoundTrips() throws {
        // Third ACK with data and a DSS of the kernel capture, re-emitted whole.
        let segment = TCPSegment(sourcePort: 51372, destinationPort: 5000, sequenceNumber: SequenceNumber(0xAE6B_41D6),
                                 acknowledgmentNumber: SequenceNumber(0x883A_7CFD), flags: [.psh, .ack], window: 63,
                                 options: [.noOperation, .noOperation, .timestamps(value: 0xBE45_731B, echoReply: 0xDEC0_3E34),
                                           .mptcp(Self.table[11].0)])
        let expected = hexBytes("""
            c8ac1388ae6b41d6883a7cfde018003f00000000
            0101080abe45731bdec03e341e18200d570f782dcbc3b753886b4fdc000000017a60def3
            """)
        var buffer = poisoned(expected.count)
        segment.emit(into: &buffer)
        #expect(buffer == expected)
        #expect(try TCPSegment.parse(expected) == segment)
    }
}
