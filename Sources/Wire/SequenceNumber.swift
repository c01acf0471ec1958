/// A 32-bit TCP sequence number, compared modulo 2^32 (RFC 9293 §3.4): `a < b`
/// when `b` is less than 2^31 ahead of `a`. This is not a total order over
/// all values, but it is one over any window smaller than 2^31, which is all
/// TCP ever compares.
public struct SequenceNumber: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    @inlinable public init(_ rawValue: UInt32) { self.rawValue = rawValue }

    @inlinable public static func < (a: SequenceNumber, b: SequenceNumber) -> Bool {
        Int32(bitPattern: a.rawValue &- b.rawValue) < 0
    }
    @inlinable public static func + (a: SequenceNumber, n: Int) -> SequenceNumber {
        SequenceNumber(a.rawValue &+ UInt32(truncatingIfNeeded: n))
    }
    @inlinable public static func - (a: SequenceNumber, n: Int) -> SequenceNumber {
        SequenceNumber(a.rawValue &- UInt32(truncatingIfNeeded: n))
    }
    /// The signed distance from `b` to `a`.
    @inlinable public static func - (a: SequenceNumber, b: SequenceNumber) -> Int {
        Int(Int32(bitPattern: a.rawValue &- b.rawValue))
    }
    @inlinable public static func += (a: inout SequenceNumber, n: Int) { a = a + n }

    /// Whether `self` lies in `[low, low + length)`, modulo 2^32.
    @inlinable public func isWithin(_ low: SequenceNumber, length: Int) -> Bool {
        let offset = rawValue &- low.rawValue
        return UInt64(offset) < UInt64(max(length, 0))
    }

    public var description: String { String(rawValue) }
}

/// The TCP header's control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
public struct TCPFlags: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    @inlinable public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)

    /// Flags in tcpdump's letters: `S`, `S.`, `P.`, `F.`, `R`.
    public var description: String {
        var s = ""
        if contains(.syn) { s += "S" }
        if contains(.fin) { s += "F" }
        if contains(.rst) { s += "R" }
        if contains(.psh) { s += "P" }
        if contains(.urg) { s += "U" }
        if contains(.ece) { s += "E" }
        if contains(.cwr) { s += "W" }
        if contains(.ack) { s += "." }
        return s.isEmpty ? "none" : s
    }
}
