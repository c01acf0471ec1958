import Testing
@testable import Wire

/// Vectors computed independently with Python's hashlib/hmac, and matching
/// what Linux 6.18 put on the wire in samples/kernel-mptcp-two-paths.pcap.
@Suite("MPTCP crypto (RFC 8684 §3.1, §3.2, §3.4.1)")
struct MPTCPCryptoTests {
    static let keyA: UInt64 = 0x72F3_963C_C6BE_999F // client
    static let keyB: UInt64 = 0xDD2B_93D2_1DC0_01AC // server
    static let nonceA: UInt32 = 0x3F0E_BD13
    static let nonceB: UInt32 = 0xF99C_E7F0

    @Test func tokenAndInitialDataSequenceNumber() {
        #expect(MPTCPCrypto.token(key: Self.keyA) == 0xD592_52AD)
        #expect(MPTCPCrypto.token(key: Self.keyB) == 0x5CDE_71E0)
        #expect(MPTCPCrypto.initialDataSequenceNumber(key: Self.keyA) == 0xCBC3_B753_886B_4FDB)
        #expect(MPTCPCrypto.initialDataSequenceNumber(key: Self.keyB) == 0x05E5_6A64_570F_782C)
        #expect(MPTCPCrypto.token(key: 0x0123_4567_89AB_CDEF) == 0x55C5_3F5D)
        #expect(MPTCPCrypto.initialDataSequenceNumber(key: 0x0123_4567_89AB_CDEF) == 0x5707_62CD_38BE_9818)
    }

    @Test func joinHMACs() {
        #expect(MPTCPCrypto.joinSynAckHMAC(senderKey: Self.keyB, receiverKey: Self.keyA,
                                           senderNonce: Self.nonceB, receiverNonce: Self.nonceA) == 0x1A3E_BDEF_34BE_8437)
        #expect(MPTCPCrypto.joinAckHMAC(senderKey: Self.keyA, receiverKey: Self.keyB,
                                        senderNonce: Self.nonceA, receiverNonce: Self.nonceB)
            == hexBytes("43f9ff18c8dc4ea4c21b4dd837fc79523e47d468"))
    }

    @Test func addAddressHMAC() {
        #expect(MPTCPCrypto.addAddressHMAC(senderKey: Self.keyB, receiverKey: Self.keyA, addressID: 1,
                                           address: .v4(IPv4Address(198, 18, 2, 2)), port: nil) == 0xD256_DF99_2C46_26AC)
        #expect(MPTCPCrypto.addAddressHMAC(senderKey: 0x0123_4567_89AB_CDEF, receiverKey: 0xFEDC_BA98_7654_3210, addressID: 7,
                                           address: .v6(IPv6Address("2001:db8::1")!), port: 8080) == 0x8B5E_3CEE_07A1_890E)
    }
}
