/// A 64-bit MPTCP data sequence number (RFC 8684 §3.3). Ordered modulo 2^64
/// like `SequenceNumber`: the initial data sequence number is random, so the
/// space can wrap.
public struct DataSequenceNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt64

    @inlinable public init(_ rawValue: UInt64) { self.rawValue = rawValue }

    @inlinable public static func < (a: DataSequenceNumber, b: DataSequenceNumber) -> Bool {
        Int64(bitPattern: a.rawValue &- b.rawValue) < 0
    }
    @inlinable public static func + (a: DataSequenceNumber, n: Int) -> DataSequenceNumber {
        DataSequenceNumber(a.rawValue &+ UInt64(bitPattern: Int64(n)))
    }
    @inlinable public static func - (a: DataSequenceNumber, n: Int) -> DataSequenceNumber {
        DataSequenceNumber(a.rawValue &- UInt64(bitPattern: Int64(n)))
    }
    /// The signed distance from `b` to `a`.
    @inlinable public static func - (a: DataSequenceNumber, b: DataSequenceNumber) -> Int64 {
        Int64(bitPattern: a.rawValue &- b.rawValue)
    }
    @inlinable public static func += (a: inout DataSequenceNumber, n: Int) { a = a + n }

    /// The low 32 bits, as a DSS option with 4-byte fields carries them.
    @inlinable public var low32: UInt32 { UInt32(truncatingIfNeeded: rawValue) }

    /// RFC 8684 §3.3: a 4-byte data sequence number or data ACK carries only
    /// the low 32 bits; the receiver rebuilds the full value from one it
    /// already knows. This picks the 64-bit value with those low bits that
    /// lies closest to `reference` (within 2^31 either way), so it crosses a
    /// 2^32 boundary in both directions.
    @inlinable public static func expand(_ low: UInt32, near reference: DataSequenceNumber) -> DataSequenceNumber {
        let delta = Int32(bitPattern: low &- UInt32(truncatingIfNeeded: reference.rawValue))
        return DataSequenceNumber(reference.rawValue &+ UInt64(bitPattern: Int64(delta)))
    }

    public var description: String { String(rawValue) }
}
