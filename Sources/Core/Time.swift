/// A point on a monotonic clock, in nanoseconds since an arbitrary origin.
///
/// Pure code never reads a clock: drivers pass `now` in. In the simulator the
/// origin is the start of the run; on a real host it is the driver's first
/// reading of `CLOCK_MONOTONIC`.
public struct Instant: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    @inlinable public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Instant(nanoseconds: 0)
    /// Later than any instant a run reaches: "no deadline".
    public static let distantFuture = Instant(nanoseconds: .max)

    @inlinable public static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    @inlinable public static func + (a: Instant, d: Interval) -> Instant {
        let (sum, overflow) = a.nanoseconds.addingReportingOverflow(d.nanoseconds)
        return overflow ? (d.nanoseconds > 0 ? .distantFuture : Instant(nanoseconds: .min)) : Instant(nanoseconds: sum)
    }
    @inlinable public static func - (a: Instant, d: Interval) -> Instant { a + Interval(nanoseconds: -d.nanoseconds) }
    @inlinable public static func - (a: Instant, b: Instant) -> Interval { Interval(nanoseconds: a.nanoseconds &- b.nanoseconds) }
    @inlinable public static func += (a: inout Instant, d: Interval) { a = a + d }

    /// Seconds since the origin, for reports and logs.
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String { self == .distantFuture ? "never" : Interval(nanoseconds: nanoseconds).description }
}

/// A signed length of time in nanoseconds.
public struct Interval: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    @inlinable public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static let zero = Interval(nanoseconds: 0)

    @inlinable public static func nanoseconds(_ n: Int) -> Interval { Interval(nanoseconds: Int64(n)) }
    @inlinable public static func microseconds(_ n: Int) -> Interval { Interval(nanoseconds: Int64(n) * 1_000) }
    @inlinable public static func milliseconds(_ n: Int) -> Interval { Interval(nanoseconds: Int64(n) * 1_000_000) }
    @inlinable public static func seconds(_ n: Int) -> Interval { Interval(nanoseconds: Int64(n) * 1_000_000_000) }
    /// Rounded to the nearest nanosecond.
    @inlinable public static func seconds(fractional s: Double) -> Interval { Interval(nanoseconds: Int64((s * 1e9).rounded())) }

    @inlinable public static func < (a: Interval, b: Interval) -> Bool { a.nanoseconds < b.nanoseconds }
    @inlinable public static func + (a: Interval, b: Interval) -> Interval { Interval(nanoseconds: a.nanoseconds + b.nanoseconds) }
    @inlinable public static func - (a: Interval, b: Interval) -> Interval { Interval(nanoseconds: a.nanoseconds - b.nanoseconds) }
    @inlinable public static func * (a: Interval, k: Int64) -> Interval { Interval(nanoseconds: a.nanoseconds * k) }
    @inlinable public static func * (a: Interval, k: Double) -> Interval { Interval(nanoseconds: Int64((Double(a.nanoseconds) * k).rounded())) }
    @inlinable public static func / (a: Interval, k: Int64) -> Interval { Interval(nanoseconds: a.nanoseconds / k) }
    @inlinable public static prefix func - (a: Interval) -> Interval { Interval(nanoseconds: -a.nanoseconds) }
    @inlinable public static func += (a: inout Interval, b: Interval) { a = a + b }
    @inlinable public static func -= (a: inout Interval, b: Interval) { a = a - b }

    public var seconds: Double { Double(nanoseconds) / 1e9 }
    public var milliseconds: Double { Double(nanoseconds) / 1e6 }
    public var microseconds: Double { Double(nanoseconds) / 1e3 }

    /// The shortest exact rendering in the units a user writes: `20ms`, `1.5s`, `250us`.
    public var description: String {
        let n = nanoseconds
        if n == 0 { return "0s" }
        for (unit, scale) in [("s", Int64(1_000_000_000)), ("ms", 1_000_000), ("us", 1_000)] where n % scale == 0 {
            return "\(n / scale)\(unit)"
        }
        if abs(n) >= 1_000_000_000 { return "\(Quantity.trimmed(Double(n) / 1e9))s" }
        if abs(n) >= 1_000_000 { return "\(Quantity.trimmed(Double(n) / 1e6))ms" }
        if abs(n) >= 1_000 { return "\(Quantity.trimmed(Double(n) / 1e3))us" }
        return "\(n)ns"
    }
}
