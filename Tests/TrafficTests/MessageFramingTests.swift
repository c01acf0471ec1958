import Testing
import Core
@testable import Traffic

@Suite struct MessageFramingTests {
    @Test func headerLayoutIsBigEndianAtFixedOffsets() {
        let bytes = MessageFraming.encode(MessageHeader(sequence: 0x0102_0304_0506_0708, sentAt: Instant(nanoseconds: 0x1122_3344), size: 32))
        #expect(bytes.count == 32)
        #expect(Array(bytes[0..<4]) == [0x57, 0x53, 0x47, 0x31])
        #expect(Array(bytes[4..<8]) == [0, 0, 0, 32])
        #expect(Array(bytes[8..<16]) == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(Array(bytes[16..<24]) == [0, 0, 0, 0, 0x11, 0x22, 0x33, 0x44])
        #expect(bytes[24...].allSatisfy { $0 == 0 })
        // Sizes below the header are raised to it.
        #expect(MessageFraming.encode(MessageHeader(sequence: 0, sentAt: .zero, size: 3)).count == 24)
    }

    @Test func messagesSurviveAnySplitOfTheStream() throws {
        var stream: [UInt8] = []
        let sent = (0..<50).map { MessageHeader(sequence: UInt64($0), sentAt: Instant(nanoseconds: Int64($0) * 1_000_000), size: 24 + $0 * 37) }
        for m in sent { MessageFraming.append(m, to: &stream) }
        var r = SeededRandom(seed: 5)
        for _ in 0..<20 {
            var reassembler = MessageReassembler()
            var got: [MessageHeader] = []
            var i = 0
            while i < stream.count {
                let n = min(stream.count - i, 1 + Int(r.next() % 200))
                got += try reassembler.append(Array(stream[i..<(i + n)]))
                i += n
            }
            #expect(got == sent)
            #expect(reassembler.atMessageBoundary)
            #expect(reassembler.streamOffset == Int64(stream.count))
        }
    }

    @Test func badHeadersAreErrorsThatStick() throws {
        var reassembler = MessageReassembler()
        var stream = MessageFraming.encode(MessageHeader(sequence: 1, sentAt: .zero, size: 30))
        stream += [0x57, 0x53, 0x47, 0x30] + [UInt8](repeating: 0, count: 20)
        do {
            _ = try reassembler.append(stream)
            Issue.record("accepted a bad magic")
        } catch {
            #expect(error.description == "at stream byte 30: no message header (bad magic)")
        }
        #expect(throws: FramingError.self) { try reassembler.append([1, 2, 3]) }

        var tooSmall = MessageFraming.encode(MessageHeader(sequence: 1, sentAt: .zero, size: 24))
        tooSmall[7] = 10
        var r2 = MessageReassembler()
        #expect(throws: FramingError(streamOffset: 0, message: "message size 10 outside 24 ... 16777216")) { try r2.append(tooSmall) }
    }

    @Test func randomStreamsNeverTrap() {
        var r = SeededRandom(seed: 8)
        for _ in 0..<2_000 {
            var reassembler = MessageReassembler()
            var bytes = MessageFraming.encode(MessageHeader(sequence: r.next(), sentAt: Instant(nanoseconds: Int64(bitPattern: r.next())), size: 24))
            for _ in 0..<Int(r.next() % 64) { bytes.append(UInt8(truncatingIfNeeded: r.next())) }
            if r.chance(0.5) { bytes[Int(r.next() % UInt64(bytes.count))] ^= 0xFF }
            _ = try? reassembler.append(bytes)
        }
    }

    @Test func streamKindIsDecidedByTheFirstFourBytes() {
        #expect(MessageFraming.isFramed(prefix: [0x57, 0x53]) == nil)
        #expect(MessageFraming.isFramed(prefix: [0x57, 0x53, 0x47, 0x31, 0]) == true)
        #expect(MessageFraming.isFramed(prefix: [0, 0, 0, 0]) == false)
    }

    @Test func addressesOutsideTheTestRangeAreRefused() throws {
        #expect(try SocketAddress.parse("198.18.0.1:5000") == SocketAddress(host: "198.18.0.1", port: 5000))
        #expect(try SocketAddress.parse("198.19.255.254:1").port == 1)
        for bad in ["8.8.8.8:53", "198.20.0.1:5000", "198.18.0.1", "198.18.0.256:1", "host:80", "198.18.0.1:70000"] {
            #expect(throws: AddressError.self) { try SocketAddress.parse(bad) }
        }
    }
}
