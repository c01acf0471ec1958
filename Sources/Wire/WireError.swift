/// Why bytes could not be read as a header or option. Every case names the
/// structure that was being read, so a decoder can print exactly what was wrong.
public enum WireError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the structure needs.
    case truncated(what: String, needed: Int, available: Int)
    /// A field holds a value the format does not allow.
    case malformed(what: String, reason: String)
    /// Well-formed, but a format or version Wayside does not read.
    case unsupported(what: String, reason: String)

    public var description: String {
        switch self {
        case let .truncated(what, needed, available):
            return "\(what) truncated: needs \(needed) bytes, only \(available) present"
        case let .malformed(what, reason):
            return "malformed \(what): \(reason)"
        case let .unsupported(what, reason):
            return "unsupported \(what): \(reason)"
        }
    }
}

// Big-endian field access. Views check their length once, so these only run
// on offsets the view has already proven to be in range.
extension ArraySlice where Element == UInt8 {
    @inlinable func u8(_ offset: Int) -> UInt8 { self[startIndex + offset] }
    @inlinable func u16(_ offset: Int) -> UInt16 {
        let i = startIndex + offset
        return UInt16(self[i]) << 8 | UInt16(self[i + 1])
    }
    @inlinable func u32(_ offset: Int) -> UInt32 {
        let i = startIndex + offset
        return UInt32(self[i]) << 24 | UInt32(self[i + 1]) << 16 | UInt32(self[i + 2]) << 8 | UInt32(self[i + 3])
    }
    @inlinable func u64(_ offset: Int) -> UInt64 {
        UInt64(u32(offset)) << 32 | UInt64(u32(offset + 4))
    }
    @inlinable func bytes(_ offset: Int, _ count: Int) -> [UInt8] {
        let i = startIndex + offset
        return Array(self[i ..< i + count])
    }
}

extension Array where Element == UInt8 {
    @inlinable mutating func put8(_ value: UInt8, at offset: Int) { self[offset] = value }
    @inlinable mutating func put16(_ value: UInt16, at offset: Int) {
        self[offset] = UInt8(truncatingIfNeeded: value >> 8)
        self[offset + 1] = UInt8(truncatingIfNeeded: value)
    }
    @inlinable mutating func put32(_ value: UInt32, at offset: Int) {
        put16(UInt16(truncatingIfNeeded: value >> 16), at: offset)
        put16(UInt16(truncatingIfNeeded: value), at: offset + 2)
    }
    @inlinable mutating func put64(_ value: UInt64, at offset: Int) {
        put32(UInt32(truncatingIfNeeded: value >> 32), at: offset)
        put32(UInt32(truncatingIfNeeded: value), at: offset + 4)
    }
    @inlinable mutating func putBytes<C: Collection>(_ bytes: C, at offset: Int) where C.Element == UInt8 {
        var i = offset
        for b in bytes { self[i] = b; i += 1 }
    }
}

/// Throws `truncated` unless `bytes` holds at least `needed` bytes.
@inlinable func require(_ bytes: ArraySlice<UInt8>, _ needed: Int, _ what: String) throws {
    if bytes.count < needed { throw WireError.truncated(what: what, needed: needed, available: bytes.count) }
}

/// Hex of a byte string, for messages and decoding output.
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    let digits: [Character] = Array("0123456789abcdef")
    var s = ""
    s.reserveCapacity(bytes.count * 2)
    for b in bytes { s.append(digits[Int(b >> 4)]); s.append(digits[Int(b & 0xF)]) }
    return s
}
