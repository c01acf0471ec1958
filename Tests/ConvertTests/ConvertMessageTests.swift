import Testing
@testable import Convert

/// Byte vectors laid out by hand from RFC 8803 §4 (fixed header: Version,
/// Total Length in words, 16 unassigned bits; TLV: Type, Length in words, Value).
@Suite struct ConvertMessageTests {
    /// Connect to 198.18.3.2:8080 with no TCP options: 1 + 5 words.
    static let connectV4: [UInt8] = [
        1, 6, 0, 0,                                   // version 1, 6 words, unassigned
        10, 5, 0x1F, 0x90,                            // Connect, 5 words, port 8080
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF,     // ::ffff:
        198, 18, 3, 2,                                // 198.18.3.2
    ]

    @Test func connectToAnIPv4DestinationEncodesAsTheRFCLaysItOut() throws {
        let d = ConvertDestination(ipv4: 0xC612_0302, port: 8080)
        let m = ConvertMessage([.connect(d, tcpOptions: [])])
        #expect(m.encode() == Self.connectV4)
        #expect(d.description == "198.18.3.2:8080")
        guard case let .message(back, consumed) = try ConvertMessage.decode(Self.connectV4[...]) else {
            Issue.record("not decoded"); return
        }
        #expect(consumed == 24)
        #expect(back == m)
        #expect(try back.destination().0.ipv4 == 0xC612_0302)
    }

    @Test func connectWithTCPOptionsAndAnIPv6Destination() throws {
        let v6: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1]
        let d = try #require(ConvertDestination(ipv6: v6, port: 443))
        // MSS 1460 (kind 2, length 4) and SACK permitted (4, 2) + 2 bytes of padding.
        let m = ConvertMessage([.connect(d, tcpOptions: [2, 4, 0x05, 0xB4, 4, 2])])
        let bytes = try #require(m.encode())
        #expect(bytes == [1, 8, 0, 0, 10, 7, 0x01, 0xBB] + v6 + [2, 4, 0x05, 0xB4, 4, 2, 0, 0])
        guard case let .message(back, _) = try ConvertMessage.decode(bytes[...]) else { Issue.record("not decoded"); return }
        let (dest, options) = try back.destination()
        #expect(dest.ipv4 == nil && dest.port == 443)
        #expect(dest.description == "[2001:db8:0:0:0:0:0:1]:443")
        #expect(options == [2, 4, 0x05, 0xB4, 4, 2, 0, 0])
    }

    @Test func errorAndInfoAndCookieAndSupportedExtensions() throws {
        let m = ConvertMessage([.info, .supportedTCPExtensions([2, 4, 8, 30]), .cookie([9, 9, 9, 9]), .error(.connectionReset, value: 0)])
        let bytes = try #require(m.encode())
        #expect(bytes == [1, 7, 0, 0,
                          1, 1, 0, 0,
                          21, 2, 0, 0, 2, 4, 8, 30,
                          22, 2, 0, 0, 9, 9, 9, 9,
                          30, 1, 96, 0])
        guard case let .message(back, consumed) = try ConvertMessage.decode(bytes[...]) else { Issue.record("not decoded"); return }
        #expect(consumed == bytes.count && back == m)
        #expect(back.error?.0 == .connectionReset)
        #expect(ConvertErrorCode(code: 97) == .destinationUnreachable && ConvertErrorCode.destinationUnreachable.code == 97)
        for code in [0, 1, 2, 3, 32, 33, 64, 65, 96, 97, 200] as [UInt8] { #expect(ConvertErrorCode(code: code).code == code) }
    }

    @Test func aHeaderOnlyMessageIsOneWord() throws {
        #expect(ConvertMessage().encode() == [1, 1, 0, 0])
        #expect(try ConvertMessage.decode([1, 1, 0, 0][...]) == .message(ConvertMessage(), consumed: 4))
    }

    @Test func dataAfterTheMessageIsLeftForTheApplication() throws {
        let stream = Self.connectV4 + Array("GET / HTTP/1.0\r\n\r\n".utf8)
        guard case let .message(_, consumed) = try ConvertMessage.decode(stream[...]) else { Issue.record("not decoded"); return }
        #expect(Array(stream[consumed...]) == Array("GET / HTTP/1.0\r\n\r\n".utf8))
        // The same from a slice that does not start at index 0.
        let shifted = ([7, 7] + stream)[2...]
        guard case let .message(m, c2) = try ConvertMessage.decode(shifted) else { Issue.record("not decoded"); return }
        #expect(c2 == consumed)
        #expect(try m.destination().0.port == 8080)
    }

    @Test func partialInputAsksForTheRest() throws {
        #expect(try ConvertMessage.decode([][...]) == .needBytes(4))
        #expect(try ConvertMessage.decode([1, 6][...]) == .needBytes(4))
        #expect(try ConvertMessage.decode(Self.connectV4[..<10]) == .needBytes(24))
        #expect(try ConvertMessage.decode(Self.connectV4[..<23]) == .needBytes(24))
    }

    @Test func malformedMessagesGiveTypedErrors() {
        func fails(_ bytes: [UInt8], _ expected: ConvertDecodeError) {
            #expect(throws: expected) { try ConvertMessage.decode(bytes[...]) }
        }
        fails([2, 1, 0, 0], .unsupportedVersion(2))
        fails([1, 0, 0, 0], .totalLengthTooShort(words: 0))
        fails([1, 2, 0, 0, 10, 0, 0, 0], .zeroLengthTLV(type: 10, offset: 4))
        fails([1, 2, 0, 0, 10, 5, 0, 0], .tlvOverrunsMessage(type: 10, offset: 4, words: 5, remainingWords: 1))
        fails([1, 2, 0, 0, 10, 1, 0, 0], .badTLVLength(type: 10, offset: 4, words: 1, reason: "a Connect TLV is at least 5 words"))
        fails([1, 3, 0, 0, 30, 2, 0, 0, 0, 0, 0, 0], .badTLVLength(type: 30, offset: 4, words: 2, reason: "an Error TLV is one word"))
        fails([1, 3, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0], .badTLVLength(type: 1, offset: 4, words: 2, reason: "an Info TLV is one word"))
        fails([1, 2, 0, 0, 22, 1, 0, 0], .badTLVLength(type: 22, offset: 4, words: 1, reason: "a Cookie TLV carries at least one word of cookie"))
        // A Connect TLV with more than 40 bytes of TCP options: oversized.
        let oversized: [UInt8] = [1, 17, 0, 0, 10, 16] + [UInt8](repeating: 0, count: 62)
        fails(oversized, .badTLVLength(type: 10, offset: 4, words: 16, reason: "more than 40 bytes of TCP options"))
        #expect(ConvertDecodeError.unsupportedVersion(2).errorCode == .unsupportedVersion)
        #expect(ConvertDecodeError.missingConnect.errorCode == .malformedMessage)
    }

    @Test func aClientMessageNeedsExactlyOneConnect() {
        #expect(throws: ConvertDecodeError.missingConnect) { try ConvertMessage([.info]).destination() }
        let d = ConvertDestination(ipv4: 0xC612_0001, port: 1)
        #expect(throws: ConvertDecodeError.duplicateConnect) {
            try ConvertMessage([.connect(d, tcpOptions: []), .connect(d, tcpOptions: [])]).destination()
        }
    }

    @Test func unknownTLVsAreKeptAndTooLargeMessagesAreNotEncoded() throws {
        let bytes: [UInt8] = [1, 2, 0, 0, 200, 1, 0xAB, 0xCD]
        #expect(try ConvertMessage.decode(bytes[...]) == .message(ConvertMessage([.unknown(type: 200, body: [0xAB, 0xCD])]), consumed: 8))
        #expect(ConvertMessage([.cookie([UInt8](repeating: 1, count: 1020))]).encode() == nil)
        #expect(ConvertMessage([.cookie([UInt8](repeating: 1, count: 1012))]).encode()?.count == 1020)
    }

    /// Every byte string up to 12 bytes long over a small alphabet decodes or
    /// fails with a typed error, and what decodes encodes back to a message that
    /// decodes the same (the fuzz target checks the same on arbitrary input).
    @Test func exhaustiveShortInputsNeverTrap() throws {
        let alphabet: [UInt8] = [0, 1, 2, 3, 5, 10, 30, 255]
        var count = 0
        func visit(_ prefix: [UInt8]) {
            count += 1
            if case let .message(m, _)? = try? ConvertMessage.decode(prefix[...]) {
                let again = m.encode()!
                #expect((try? ConvertMessage.decode(again[...])) == .message(m, consumed: again.count))
            }
            guard prefix.count < 9 else { return }
            for b in alphabet { visit(prefix + [b]) }
        }
        visit([1, 3, 0, 0])
        visit([1, 2, 0, 0])
        #expect(count > 10_000)
    }
}
