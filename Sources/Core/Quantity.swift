/// Quantities a user writes in topology, route and experiment files
/// (`54mbit`, `20ms`, `0.5%`, `64KiB`), parsed exactly, with an error that says
/// what was expected. Units follow `tc`'s conventions: `kbit`/`mbit`/`gbit` are
/// powers of 1000 bits per second, `KiB`/`MiB` powers of 1024 bytes, `KB`/`MB`
/// powers of 1000 bytes.

/// Why a quantity did not parse; `message` is ready to follow "file:line:col: ".
public struct QuantityError: Error, Equatable, Sendable, CustomStringConvertible {
    public var text: String
    public var expected: String
    public init(text: String, expected: String) { self.text = text; self.expected = expected }
    public var description: String { "cannot read '\(text)': expected \(expected)" }
}

public enum Quantity {
    /// Splits "12.5ms" into (12.5, "ms"). Accepts an optional space before the unit.
    static func split(_ text: String) -> (Double, String)? {
        let t = text.trimmingWhitespace()
        var numberEnd = t.startIndex
        var seenDigit = false
        var seenDot = false
        var seenExp = false
        var i = t.startIndex
        if i < t.endIndex, t[i] == "+" || t[i] == "-" { i = t.index(after: i) }
        while i < t.endIndex {
            let c = t[i]
            if c.isASCII && c.isNumber { seenDigit = true }
            else if c == "." && !seenDot && !seenExp { seenDot = true }
            else if (c == "e" || c == "E") && seenDigit && !seenExp {
                // Only an exponent if a digit follows (so "5e" is not a number).
                let next = t.index(after: i)
                guard next < t.endIndex, t[next].isNumber || ((t[next] == "-" || t[next] == "+") && t.index(after: next) < t.endIndex && t[t.index(after: next)].isNumber) else { break }
                seenExp = true
                i = t[next].isNumber ? i : next
            } else { break }
            i = t.index(after: i)
            numberEnd = i
        }
        guard seenDigit, let value = Double(t[t.startIndex..<numberEnd]), value.isFinite else { return nil }
        let unit = t[numberEnd...].trimmingWhitespace()
        return (value, unit)
    }

    /// "12.50" -> "12.5", "3.0" -> "3".
    public static func trimmed(_ v: Double) -> String {
        var s = String(format: v)
        if s.contains(".") {
            while s.hasSuffix("0") { s.removeLast() }
            if s.hasSuffix(".") { s.removeLast() }
        }
        return s
    }

    /// A duration: `20ms`, `1.5s`, `250us`, `100ns`, `2min`. A bare number is an error:
    /// the unit must be explicit.
    public static func interval(_ text: String) throws(QuantityError) -> Interval {
        let expected = "a duration with a unit (ns, us, ms, s, min, h), e.g. 20ms"
        guard let (v, unit) = split(text) else { throw QuantityError(text: text, expected: expected) }
        let scale: Double
        switch unit {
        case "ns": scale = 1
        case "us", "µs": scale = 1e3
        case "ms": scale = 1e6
        case "s", "sec": scale = 1e9
        case "min": scale = 60e9
        case "h": scale = 3600e9
        default: throw QuantityError(text: text, expected: expected)
        }
        let ns = v * scale
        guard ns.magnitude < 9.2e18 else { throw QuantityError(text: text, expected: expected) }
        return Interval(nanoseconds: Int64(ns.rounded()))
    }

    /// A non-negative duration.
    public static func nonNegativeInterval(_ text: String) throws(QuantityError) -> Interval {
        let d = try interval(text)
        guard d >= .zero else { throw QuantityError(text: text, expected: "a duration that is not negative") }
        return d
    }
}

/// A link rate in bits per second.
public struct Bitrate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bitsPerSecond: Int64
    @inlinable public init(bitsPerSecond: Int64) { self.bitsPerSecond = bitsPerSecond }
    public static func kbit(_ v: Double) -> Bitrate { Bitrate(bitsPerSecond: Int64((v * 1e3).rounded())) }
    public static func mbit(_ v: Double) -> Bitrate { Bitrate(bitsPerSecond: Int64((v * 1e6).rounded())) }
    public static func gbit(_ v: Double) -> Bitrate { Bitrate(bitsPerSecond: Int64((v * 1e9).rounded())) }
    @inlinable public static func < (a: Bitrate, b: Bitrate) -> Bool { a.bitsPerSecond < b.bitsPerSecond }

    /// Time to serialise `bytes` at this rate, rounded up to the nanosecond.
    @inlinable public func transmissionTime(bytes: Int) -> Interval {
        precondition(bitsPerSecond > 0, "transmission time at a zero rate")
        let bits = Int64(bytes) * 8
        // (bits * 1e9) / rate, without overflow for any realistic size.
        let q = bits.multipliedFullWidth(by: 1_000_000_000)
        let (quotient, remainder) = bitsPerSecond.dividingFullWidth(q)
        return Interval(nanoseconds: remainder == 0 ? quotient : quotient + 1)
    }

    /// `54mbit`, `3kbit`, `1gbit`, `500bit`, also `Mbps`/`Mbit/s` spellings.
    public static func parse(_ text: String) throws(QuantityError) -> Bitrate {
        let expected = "a rate with a unit (bit, kbit, mbit, gbit; or bps, kbps, Mbps, Gbps), e.g. 54mbit"
        guard let (v, rawUnit) = Quantity.split(text), v >= 0 else { throw QuantityError(text: text, expected: expected) }
        let unit = rawUnit.lowercased().replacingOccurrences(of: "/s", with: "ps")
        let scale: Double
        switch unit {
        case "bit", "bps", "bitps": scale = 1
        case "kbit", "kbps", "kbitps": scale = 1e3
        case "mbit", "mbps", "mbitps": scale = 1e6
        case "gbit", "gbps", "gbitps": scale = 1e9
        default: throw QuantityError(text: text, expected: expected)
        }
        let bps = v * scale
        guard bps < 1e15 else { throw QuantityError(text: text, expected: "a rate below 1 Pbit/s") }
        return Bitrate(bitsPerSecond: Int64(bps.rounded()))
    }

    public var description: String {
        let b = bitsPerSecond
        if b >= 1_000_000_000 && b % 1_000_000 == 0 { return "\(Quantity.trimmed(Double(b) / 1e9))gbit" }
        if b >= 1_000_000 && b % 1_000 == 0 { return "\(Quantity.trimmed(Double(b) / 1e6))mbit" }
        if b >= 1_000 { return "\(Quantity.trimmed(Double(b) / 1e3))kbit" }
        return "\(b)bit"
    }
}

/// A probability in [0, 1], written as `0.5%` or `0.005`.
public struct Probability: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: Double
    public init(_ value: Double) { precondition((0...1).contains(value)); self.value = value }
    public static let zero = Probability(0)
    public static func < (a: Probability, b: Probability) -> Bool { a.value < b.value }

    public static func parse(_ text: String) throws(QuantityError) -> Probability {
        let expected = "a probability as a percentage (0.5%) or a fraction from 0 to 1 (0.005)"
        guard let (v, unit) = Quantity.split(text) else { throw QuantityError(text: text, expected: expected) }
        let p: Double
        switch unit {
        case "%": p = v / 100
        case "": p = v
        default: throw QuantityError(text: text, expected: expected)
        }
        guard (0...1).contains(p) else { throw QuantityError(text: text, expected: expected) }
        return Probability(p)
    }

    public var description: String { "\(Quantity.trimmed(value * 100))%" }
}

/// A size in bytes: `1500`, `1500B`, `64KiB`, `1MB`.
public enum ByteSize {
    public static func parse(_ text: String) throws(QuantityError) -> Int {
        let expected = "a size in bytes (B, KB, KiB, MB, MiB, GB, GiB), e.g. 64KiB"
        guard let (v, unit) = Quantity.split(text), v >= 0 else { throw QuantityError(text: text, expected: expected) }
        let scale: Double
        switch unit {
        case "", "B", "b": scale = 1
        case "KB", "kB", "k", "K": scale = 1e3
        case "KiB": scale = 1024
        case "MB", "M": scale = 1e6
        case "MiB": scale = 1024 * 1024
        case "GB", "G": scale = 1e9
        case "GiB": scale = 1024 * 1024 * 1024
        default: throw QuantityError(text: text, expected: expected)
        }
        let bytes = v * scale
        guard bytes < 1e15, bytes == bytes.rounded() else { throw QuantityError(text: text, expected: "a whole number of bytes") }
        return Int(bytes)
    }
}

extension StringProtocol {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}

extension String {
    /// A decimal rendering of a Double with up to 6 fractional digits, without Foundation.
    init(format value: Double) {
        if value == value.rounded(), value.magnitude < 1e15 {
            self = String(Int64(value))
            return
        }
        let scaled = (value * 1e6).rounded()
        let negative = scaled < 0
        let m = Int64(scaled.magnitude)
        var frac = String(m % 1_000_000)
        while frac.count < 6 { frac = "0" + frac }
        self = (negative ? "-" : "") + "\(m / 1_000_000).\(frac)"
    }

    func replacingOccurrences(of target: String, with replacement: String) -> String {
        guard !target.isEmpty else { return self }
        var result = ""
        var rest = Substring(self)
        while let r = rest.range(of: target) {
            result += rest[rest.startIndex..<r.lowerBound]
            result += replacement
            rest = rest[r.upperBound...]
        }
        return result + rest
    }
}

extension Substring {
    func range(of target: String) -> Range<Index>? {
        var i = startIndex
        while i < endIndex {
            if self[i...].hasPrefix(target) { return i..<index(i, offsetBy: target.count) }
            i = index(after: i)
        }
        return nil
    }
}
