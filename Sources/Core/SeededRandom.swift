/// A deterministic random number generator (xoshiro256**, seeded through
/// SplitMix64). Every random choice in models, the simulator and mobility
/// comes from one of these, so the same seed gives the same run.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var s0, s1, s2, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitmix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitmix(&sm); s1 = splitmix(&sm); s2 = splitmix(&sm); s3 = splitmix(&sm)
    }

    /// An independent stream derived from this seed and a label, so that adding
    /// a consumer of randomness in one model does not shift the draws of another.
    public init(seed: UInt64, stream label: String) {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325 // FNV-1a
        for b in label.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01B3 }
        self.init(seed: seed ^ h)
    }

    @inlinable static func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public mutating func next() -> UInt64 {
        let result = SeededRandom.rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = SeededRandom.rotl(s3, 45)
        return result
    }

    /// Uniform in [0, 1) with 53 bits of precision.
    public mutating func unit() -> Double { Double(next() >> 11) * 0x1.0p-53 }

    /// True with probability `p`.
    public mutating func chance(_ p: Double) -> Bool { p > 0 && unit() < p }

    /// A standard normal draw (Box–Muller).
    public mutating func normal(mean: Double = 0, standardDeviation: Double = 1) -> Double {
        var u1 = unit()
        while u1 <= .leastNonzeroMagnitude { u1 = unit() }
        let u2 = unit()
        let r = (-2 * log(u1)).squareRoot()
        return mean + standardDeviation * r * cos(2 * .pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
