/// An IPv4 address as four bytes in network order (RFC 791).
public struct IPv4Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let length = 4
    public var rawValue: UInt32

    public init(_ rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }
    /// Reads four bytes; `bytes` must hold exactly four.
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 4 else { return nil }
        rawValue = bytes.reduce(0) { $0 << 8 | UInt32($1) }
    }
    /// Parses dotted-quad text such as `198.18.0.1`.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy({ $0.isASCII && $0.isNumber }),
                  let octet = UInt8(part) else { return nil }
            value = value << 8 | UInt32(octet)
        }
        rawValue = value
    }

    public var bytes: [UInt8] {
        [UInt8(truncatingIfNeeded: rawValue >> 24), UInt8(truncatingIfNeeded: rawValue >> 16),
         UInt8(truncatingIfNeeded: rawValue >> 8), UInt8(truncatingIfNeeded: rawValue)]
    }
    public var description: String { bytes.map(String.init).joined(separator: ".") }
    public static func < (a: IPv4Address, b: IPv4Address) -> Bool { a.rawValue < b.rawValue }
}

/// An IPv6 address as sixteen bytes in network order (RFC 8200), printed in
/// the RFC 5952 canonical text form.
public struct IPv6Address: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let length = 16
    public var high: UInt64
    public var low: UInt64

    public init(high: UInt64, low: UInt64) { self.high = high; self.low = low }
    public init?<C: Collection>(bytes: C) where C.Element == UInt8 {
        guard bytes.count == 16 else { return nil }
        let a = Array(bytes)
        high = a[0 ..< 8].reduce(0) { $0 << 8 | UInt64($1) }
        low = a[8 ..< 16].reduce(0) { $0 << 8 | UInt64($1) }
    }
    /// Parses RFC 4291 §2.2 text (with `::`, without an embedded IPv4 tail).
    public init?(_ text: String) {
        let halves = text.ranges(of: "::").count == 0 ? [text]
            : text.split(separator: "::", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard halves.count <= 2, !(halves.count == 2 && halves[1].contains("::")) else { return nil }
        func groups(_ s: String) -> [UInt16]? {
            if s.isEmpty { return [] }
            var out: [UInt16] = []
            for g in s.split(separator: ":", omittingEmptySubsequences: false) {
                guard !g.isEmpty, g.count <= 4, let v = UInt16(g, radix: 16) else { return nil }
                out.append(v)
            }
            return out
        }
        guard let head = groups(halves[0]) else { return nil }
        var all = head
        if halves.count == 2 {
            guard let tail = groups(halves[1]), head.count + tail.count < 8 else { return nil }
            all += Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        }
        guard all.count == 8 else { return nil }
        high = all[0 ..< 4].reduce(0) { $0 << 16 | UInt64($1) }
        low = all[4 ..< 8].reduce(0) { $0 << 16 | UInt64($1) }
    }

    public var bytes: [UInt8] {
        (0 ..< 8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * UInt64($0))) } +
            (0 ..< 8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * UInt64($0))) }
    }
    var groups: [UInt16] {
        (0 ..< 4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * UInt64($0))) } +
            (0 ..< 4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * UInt64($0))) }
    }

    /// RFC 5952 §4: lowercase, no leading zeros, the longest run (of two or
    /// more) of zero groups, the first one on a tie, becomes `::`.
    public var description: String {
        let g = groups
        var bestStart = -1, bestLength = 1, i = 0
        while i < 8 {
            if g[i] == 0 {
                var j = i
                while j < 8 && g[j] == 0 { j += 1 }
                if j - i > bestLength { bestStart = i; bestLength = j - i }
                i = j
            } else { i += 1 }
        }
        func text(_ r: ArraySlice<UInt16>) -> String { r.map { String($0, radix: 16) }.joined(separator: ":") }
        if bestStart < 0 { return text(g[0...]) }
        return text(g[0 ..< bestStart]) + "::" + text(g[(bestStart + bestLength)...])
    }
    public static func < (a: IPv6Address, b: IPv6Address) -> Bool { (a.high, a.low) < (b.high, b.low) }
}

/// Either kind of IP address, as addresses appear in headers and ADD_ADDR.
public enum IPAddress: Hashable, Sendable, CustomStringConvertible {
    case v4(IPv4Address)
    case v6(IPv6Address)

    public init?(_ text: String) {
        if let a = IPv4Address(text) { self = .v4(a) } else if let a = IPv6Address(text) { self = .v6(a) } else { return nil }
    }
    public var bytes: [UInt8] {
        switch self { case let .v4(a): return a.bytes; case let .v6(a): return a.bytes }
    }
    public var description: String {
        switch self { case let .v4(a): return a.description; case let .v6(a): return a.description }
    }
}
