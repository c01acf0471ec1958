/// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit pseudorandom
/// function. RFC 6528 §3 asks for a keyed hash of the connection's
/// four-tuple when generating initial sequence numbers; SipHash is built for
/// exactly that kind of short input.
public struct SipHash24: Sendable {
    public let k0: UInt64
    public let k1: UInt64

    /// A 128-bit key as two little-endian words (`k0` from key bytes 0–7).
    public init(k0: UInt64, k1: UInt64) { self.k0 = k0; self.k1 = k1 }

    /// A key from 16 bytes; shorter input is zero-padded, longer input is cut.
    public init(key: [UInt8]) {
        func word(_ at: Int) -> UInt64 {
            var w: UInt64 = 0
            for i in 0..<8 where at + i < key.count { w |= UInt64(key[at + i]) << (8 * UInt64(i)) }
            return w
        }
        self.init(k0: word(0), k1: word(8))
    }

    @inline(__always) private static func rotl(_ x: UInt64, _ b: UInt64) -> UInt64 { (x << b) | (x >> (64 - b)) }

    @inline(__always) private static func round(_ v0: inout UInt64, _ v1: inout UInt64, _ v2: inout UInt64, _ v3: inout UInt64) {
        v0 &+= v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32)
        v2 &+= v3; v3 = rotl(v3, 16); v3 ^= v2
        v0 &+= v3; v3 = rotl(v3, 21); v3 ^= v0
        v2 &+= v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32)
    }

    public func hash(_ message: [UInt8]) -> UInt64 {
        var v0: UInt64 = 0x736f_6d65_7073_6575 ^ k0
        var v1: UInt64 = 0x646f_7261_6e64_6f6d ^ k1
        var v2: UInt64 = 0x6c79_6765_6e65_7261 ^ k0
        var v3: UInt64 = 0x7465_6462_7974_6573 ^ k1
        let fullWords = message.count / 8
        for w in 0..<fullWords {
            var m: UInt64 = 0
            for i in 0..<8 { m |= UInt64(message[w * 8 + i]) << (8 * UInt64(i)) }
            v3 ^= m
            Self.round(&v0, &v1, &v2, &v3); Self.round(&v0, &v1, &v2, &v3)
            v0 ^= m
        }
        // Last block: the remaining bytes, with the message length in the top byte.
        var last = UInt64(truncatingIfNeeded: message.count) << 56
        for i in 0..<(message.count % 8) { last |= UInt64(message[fullWords * 8 + i]) << (8 * UInt64(i)) }
        v3 ^= last
        Self.round(&v0, &v1, &v2, &v3); Self.round(&v0, &v1, &v2, &v3)
        v0 ^= last
        v2 ^= 0xff
        for _ in 0..<4 { Self.round(&v0, &v1, &v2, &v3) }
        return v0 ^ v1 ^ v2 ^ v3
    }
}
