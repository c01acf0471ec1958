import Core

/// Where the vehicle is over time: positions at instants ("knots"), joined by
/// straight segments at constant speed. Waypoint drives, GPX tracks, SUMO FCD
/// and CSV traces all become one of these.
public struct Trajectory: Hashable, Sendable {
    public struct Knot: Hashable, Sendable {
        /// Offset from the start of the drive.
        public var at: Interval
        public var position: Point
        public init(at: Interval, position: Point) { self.at = at; self.position = position }
    }

    /// Strictly increasing in time, at least one.
    public let knots: [Knot]

    /// Knots must be in strictly increasing time order; the first is moved to
    /// time zero by the importers, not here (a trajectory may start later).
    public init(knots: [Knot]) throws(TrajectoryError) {
        guard !knots.isEmpty else { throw TrajectoryError(index: nil, message: "a trajectory needs at least one position") }
        for i in 1..<max(knots.count, 1) where knots[i].at <= knots[i - 1].at {
            throw TrajectoryError(index: i, message: "time \(knots[i].at) is not after the previous point's \(knots[i - 1].at)")
        }
        for (i, k) in knots.enumerated() where !(k.position.x.isFinite && k.position.y.isFinite) {
            throw TrajectoryError(index: i, message: "position is not a finite number")
        }
        self.knots = knots
    }

    /// The longest drive Wayside models (a year): times stay far from the
    /// limits of an `Interval`, so arithmetic on them cannot overflow.
    public static let longestDrive = Interval.seconds(366 * 86_400)

    public var start: Interval { knots[0].at }
    public var end: Interval { knots[knots.count - 1].at }

    /// Before the first knot the vehicle waits at it; after the last it stays there.
    public func position(at t: Interval) -> Point {
        let i = segmentIndex(at: t)
        if i < 0 { return knots[0].position }
        if i >= knots.count - 1 { return knots[knots.count - 1].position }
        let a = knots[i], b = knots[i + 1]
        let f = Double((t - a.at).nanoseconds) / Double((b.at - a.at).nanoseconds)
        return a.position.interpolated(to: b.position, fraction: f)
    }

    /// Speed in metres per second on the segment that contains `t` (0 outside).
    public func speed(at t: Interval) -> Double {
        let i = segmentIndex(at: t)
        guard i >= 0, i < knots.count - 1 else { return 0 }
        let a = knots[i], b = knots[i + 1]
        return a.position.distance(to: b.position) / (b.at - a.at).seconds
    }

    /// Total path length in metres.
    public var length: Double {
        zip(knots, knots.dropFirst()).reduce(0) { $0 + $1.0.position.distance(to: $1.1.position) }
    }

    /// Index `i` of the segment knots[i]...knots[i+1] holding `t`; -1 before the start,
    /// `count - 1` at or after the end.
    func segmentIndex(at t: Interval) -> Int {
        if t < knots[0].at { return -1 }
        if t >= knots[knots.count - 1].at { return knots.count - 1 }
        var lo = 0, hi = knots.count - 1 // knots[lo].at <= t < knots[hi].at
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if knots[mid].at <= t { lo = mid } else { hi = mid }
        }
        return lo
    }

    /// The same path shifted so that its first knot is at time zero.
    public func startingAtZero() -> Trajectory {
        let s = start
        // Shifting keeps the order, so this cannot fail.
        return try! Trajectory(knots: knots.map { Knot(at: $0.at - s, position: $0.position) })
    }
}

/// A trajectory that cannot be built; `index` is the waypoint or trace point at fault.
public struct TrajectoryError: Error, Hashable, Sendable, CustomStringConvertible {
    public var index: Int?
    public var message: String
    public init(index: Int?, message: String) { self.index = index; self.message = message }
    public var description: String { index.map { "point \($0 + 1): \(message)" } ?? message }
}

/// A point of a hand-written drive: where, and either how fast to leave it or
/// when to arrive at it, and how long to stop there.
public struct Waypoint: Hashable, Sendable {
    public var position: Point
    /// Speed in metres per second on the segment that leaves this waypoint;
    /// when absent the previous segment's speed carries on.
    public var speed: Double?
    /// When the vehicle arrives here, from the start of the drive. On the first
    /// waypoint it is the start time (zero if absent).
    public var arrival: Interval?
    /// How long the vehicle stands here before it goes on.
    public var stop: Interval

    public init(_ position: Point, speed: Double? = nil, arrival: Interval? = nil, stop: Interval = .zero) {
        self.position = position; self.speed = speed; self.arrival = arrival; self.stop = stop
    }
}

extension Trajectory {
    /// Straight segments between waypoints. A segment takes its duration from the
    /// next waypoint's `arrival`, or else from its length and the speed in force.
    public init(waypoints: [Waypoint]) throws(TrajectoryError) {
        guard let first = waypoints.first else {
            throw TrajectoryError(index: nil, message: "a drive needs at least one waypoint")
        }
        var t = first.arrival ?? .zero
        var knots = [Knot(at: t, position: first.position)]
        var speed: Double? = nil
        func tooLong(_ index: Int) -> TrajectoryError {
            TrajectoryError(index: index, message: "the drive would last beyond \(Trajectory.longestDrive)")
        }
        guard t <= Trajectory.longestDrive else { throw tooLong(0) }
        func leave(_ w: Waypoint, index: Int) throws(TrajectoryError) {
            if w.stop < .zero { throw TrajectoryError(index: index, message: "a stop cannot be negative") }
            guard w.stop <= Trajectory.longestDrive - t else { throw tooLong(index) }
            if let s = w.speed {
                guard s.isFinite, s > 0 else { throw TrajectoryError(index: index, message: "speed must be above zero") }
                speed = s
            }
            if w.stop > .zero {
                t += w.stop
                knots.append(Knot(at: t, position: w.position))
            }
        }
        try leave(first, index: 0)
        for i in 1..<max(waypoints.count, 1) {
            let w = waypoints[i]
            let from = waypoints[i - 1].position
            let d = from.distance(to: w.position)
            let arrival: Interval
            if let a = w.arrival {
                guard a <= Trajectory.longestDrive else { throw tooLong(i) }
                guard a > t else {
                    throw TrajectoryError(index: i, message: "arrival at \(a) is not after leaving the previous waypoint at \(t)")
                }
                arrival = a
            } else {
                guard let s = speed else {
                    throw TrajectoryError(index: i, message: "no speed to get here: give the previous waypoint a speed or this one an arrival time")
                }
                guard d > 0 else {
                    throw TrajectoryError(index: i, message: "same position as the previous waypoint: use `stop` to wait")
                }
                let seconds = d / s
                guard seconds.isFinite, seconds <= (Trajectory.longestDrive - t).seconds else { throw tooLong(i) }
                arrival = t + .seconds(fractional: seconds)
                guard arrival > t else { throw TrajectoryError(index: i, message: "segment too short to take any time") }
            }
            t = arrival
            knots.append(Knot(at: t, position: w.position))
            try leave(w, index: i)
        }
        do { try self.init(knots: knots) } catch { throw TrajectoryError(index: nil, message: error.message) }
    }
}

/// Speeds as users write them: `80km/h`, `22m/s`, `50mph`.
public enum Speed {
    public static func parse(_ text: String) throws(QuantityError) -> Double {
        let expected = "a speed with a unit (km/h, m/s, mph), e.g. 80km/h"
        var t = Substring(text)
        while t.first == " " { t.removeFirst() }
        while t.last == " " { t.removeLast() }
        let units: [(String, Double)] = [("km/h", 1 / 3.6), ("kmh", 1 / 3.6), ("kph", 1 / 3.6), ("m/s", 1), ("mph", 0.447_04)]
        for (unit, scale) in units where t.hasSuffix(unit) {
            var number = t.dropLast(unit.count)
            while number.last == " " { number.removeLast() }
            guard let v = Double(number), v.isFinite, v > 0 else { throw QuantityError(text: text, expected: "a speed above zero, e.g. 80km/h") }
            return v * scale
        }
        throw QuantityError(text: text, expected: expected)
    }
}
