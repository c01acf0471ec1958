import Core

/// Why a drive trace or capacity trace could not be read, at which line
/// (1-based) and column of the trace's own text.
public struct TraceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String
    public init(line: Int, column: Int = 1, message: String) {
        self.line = line; self.column = column; self.message = message
    }
    /// Ready to follow "file:".
    public var description: String { "\(line):\(column): \(message)" }
}

/// A timed position read from a trace, before it becomes a `Trajectory`.
public struct TracePoint: Hashable, Sendable {
    /// Seconds on the trace's own clock (GPX: since the Unix epoch).
    public var time: Double?
    public var position: Point
    /// The line of the trace this point came from.
    public var line: Int
}

/// Turns timed points into a trajectory starting at zero. Points at the same
/// time as the previous one are dropped (GPS loggers repeat fixes); points that
/// go back in time are an error at their line.
func trajectory(from points: [TracePoint], what: String) throws(TraceError) -> Trajectory {
    guard let first = points.first else { throw TraceError(line: 1, message: "no \(what) in the trace") }
    guard let t0 = first.time else { throw TraceError(line: first.line, message: "\(what) has no time") }
    var knots: [Trajectory.Knot] = []
    var last: Interval? = nil
    for p in points {
        guard let t = p.time else { throw TraceError(line: p.line, message: "\(what) has no time") }
        // Beyond this an offset would not fit in an Interval's nanoseconds.
        guard (t - t0).magnitude <= Trajectory.longestDrive.seconds else {
            throw TraceError(line: p.line, message: "\(formatDecimal(t - t0, digits: 3)) s from the first point: a trace may span at most \(Trajectory.longestDrive)")
        }
        let at = Interval.seconds(fractional: t - t0)
        if let l = last {
            if at == l { continue }
            guard at > l else { throw TraceError(line: p.line, message: "time goes backwards (\(at) after \(l) from the first point)") }
        }
        knots.append(.init(at: at, position: p.position))
        last = at
    }
    do { return try Trajectory(knots: knots) } catch {
        throw TraceError(line: error.index.map { points[min($0, points.count - 1)].line } ?? first.line, message: error.message)
    }
}

/// GPX 1.1 tracks (`<trk><trkseg><trkpt lat lon><time>`): every track point of
/// every segment in document order, projected to local metres around `origin`
/// (or around the first point). Points without `<time>` get one from `speed`
/// (metres per second along the track) when it is given.
public enum GPXImporter {
    public static func points(_ text: String) throws(TraceError) -> [(GeoCoordinate, time: Double?, line: Int)] {
        var scanner = XMLScanner(text)
        var result: [(GeoCoordinate, time: Double?, line: Int)] = []
        var inPoint = false
        var inTime = false
        var timeText = ""
        var timeLine = 0, timeColumn = 0
        var rootChecked = false
        while let e = try scanner.next() {
            switch e.event {
            case let .start(name, attributes):
                let local = name.split(separator: ":").last.map(String.init) ?? name
                if !rootChecked {
                    guard local == "gpx" else { throw TraceError(line: e.line, column: e.column, message: "expected a <gpx> document, found <\(name)>") }
                    rootChecked = true
                }
                if local == "trkpt" {
                    func coordinate(_ key: String, _ range: ClosedRange<Double>) throws(TraceError) -> Double {
                        guard let raw = attributes[key] else {
                            throw TraceError(line: e.line, column: e.column, message: "<trkpt> without '\(key)'")
                        }
                        guard let v = Double(raw), range.contains(v) else {
                            throw TraceError(line: e.line, column: e.column, message: "'\(key)=\"\(raw)\"' is not a \(key == "lat" ? "latitude (-90...90)" : "longitude (-180...180)")")
                        }
                        return v
                    }
                    let lat = try coordinate("lat", -90...90), lon = try coordinate("lon", -180...180)
                    result.append((GeoCoordinate(latitude: lat, longitude: lon), nil, e.line))
                    inPoint = true
                } else if local == "time" && inPoint {
                    inTime = true; timeText = ""; timeLine = e.line; timeColumn = e.column
                }
            case let .text(t):
                if inTime { timeText += t }
            case let .end(name):
                let local = name.split(separator: ":").last.map(String.init) ?? name
                if local == "trkpt" { inPoint = false }
                if local == "time" && inTime {
                    inTime = false
                    guard let seconds = ISO8601.seconds(timeText.trimmingSpaces()) else {
                        throw TraceError(line: timeLine, column: timeColumn, message: "'\(timeText)' is not an ISO 8601 time such as 2024-05-01T12:00:00Z")
                    }
                    result[result.count - 1].time = seconds
                }
            }
        }
        return result
    }

    public static func trajectory(_ text: String, origin: GeoCoordinate? = nil, speed: Double? = nil) throws(TraceError) -> Trajectory {
        let raw = try points(text)
        guard let first = raw.first else { throw TraceError(line: 1, message: "no <trkpt> in the GPX file") }
        let projection = LocalProjection(origin: origin ?? first.0)
        var points = raw.map { TracePoint(time: $0.time, position: projection.project($0.0), line: $0.line) }
        if let v = speed {
            // Untimed points: time from distance along the track.
            var t = 0.0
            for k in points.indices {
                if k > 0 { t += points[k - 1].position.distance(to: points[k].position) / v }
                if raw[k].time == nil { points[k].time = t } else {
                    throw TraceError(line: points[k].line, message: "a GPX track with <time> cannot also take a speed from the route")
                }
            }
        }
        return try Mobility.trajectory(from: points, what: "<trkpt>")
    }
}

/// SUMO floating-car data (`sumo --fcd-output`): `<timestep time>` elements
/// holding `<vehicle id x y>`; the positions of one vehicle, in SUMO's network
/// metres.
public enum FCDImporter {
    public static func trajectory(_ text: String, vehicle id: String) throws(TraceError) -> Trajectory {
        var scanner = XMLScanner(text)
        var time: Double? = nil
        var points: [TracePoint] = []
        var seen: [String] = []
        var rootChecked = false
        while let e = try scanner.next() {
            guard case let .start(name, attributes) = e.event else {
                if case .end(name: "timestep") = e.event { time = nil }
                continue
            }
            if !rootChecked {
                guard name == "fcd-export" else { throw TraceError(line: e.line, column: e.column, message: "expected an <fcd-export> document, found <\(name)>") }
                rootChecked = true
            }
            if name == "timestep" {
                guard let raw = attributes["time"], let t = Double(raw), t.isFinite else {
                    throw TraceError(line: e.line, column: e.column, message: "<timestep> needs a numeric 'time' in seconds")
                }
                time = t
            } else if name == "vehicle" || name == "person" || name == "container" {
                guard let vid = attributes["id"] else { throw TraceError(line: e.line, column: e.column, message: "<\(name)> without 'id'") }
                if seen.count < 50, !seen.contains(vid) { seen.append(vid) }
                guard vid == id else { continue }
                guard let t = time else { throw TraceError(line: e.line, column: e.column, message: "<\(name)> outside a <timestep>") }
                func coordinate(_ key: String) throws(TraceError) -> Double {
                    guard let raw = attributes[key], let v = Double(raw), v.isFinite else {
                        throw TraceError(line: e.line, column: e.column, message: "<\(name) id=\"\(vid)\"> needs a numeric '\(key)' in metres")
                    }
                    return v
                }
                points.append(TracePoint(time: t, position: Point(x: try coordinate("x"), y: try coordinate("y")), line: e.line))
            }
        }
        guard !points.isEmpty else {
            let known = seen.isEmpty ? "the trace has no vehicles" : "vehicles in the trace: \(seen.prefix(10).joined(separator: ", "))"
            throw TraceError(line: 1, message: "no vehicle '\(id)' in the FCD trace (\(known))")
        }
        return try Mobility.trajectory(from: points, what: "vehicle '\(id)'")
    }
}

/// Comma-separated `t,x,y` (seconds, metres, metres), one point a line. An
/// optional header line `t,x,y`, blank lines and `#` comments are allowed.
public enum CSVImporter {
    public static func trajectory(_ text: String) throws(TraceError) -> Trajectory {
        var points: [TracePoint] = []
        for (n, rawLine) in text.traceLines.enumerated() {
            let lineNumber = n + 1
            var line = Substring(rawLine)
            if line.last == "\r" { line.removeLast() }
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingSpaces() }
            if points.isEmpty, fields.map({ $0.lowercased() }) == ["t", "x", "y"] { continue }
            guard fields.count == 3 else {
                throw TraceError(line: lineNumber, message: "expected three fields t,x,y, found \(fields.count)")
            }
            var values: [Double] = []
            var column = 1
            for (k, f) in fields.enumerated() {
                guard let v = Double(f), v.isFinite else {
                    throw TraceError(line: lineNumber, column: column, message: "'\(f)' is not a number (\(["t in seconds", "x in metres", "y in metres"][k]))")
                }
                values.append(v)
                column += line.split(separator: ",", omittingEmptySubsequences: false)[k].count + 1
            }
            points.append(TracePoint(time: values[0], position: Point(x: values[1], y: values[2]), line: lineNumber))
        }
        return try Mobility.trajectory(from: points, what: "point")
    }
}

/// A Mahimahi packet-delivery trace: one line per 1500-byte delivery
/// opportunity, the millisecond at which it occurs, non-decreasing; the trace
/// repeats with a period of its last timestamp.
public struct MahimahiCapacity: Hashable, Sendable {
    public static let packetBytes = 1500
    /// About 11.6 days: keeps every time computation well inside 64-bit nanoseconds.
    public static let longestPeriodMilliseconds = 1_000_000_000
    public let opportunities: [Int]

    public init(_ text: String) throws(TraceError) {
        var out: [Int] = []
        for (n, rawLine) in text.traceLines.enumerated() {
            let s = rawLine.trimmingSpaces()
            if s.isEmpty { continue }
            guard let ms = Int(s), ms >= 0 else {
                throw TraceError(line: n + 1, message: "'\(s)' is not a whole number of milliseconds")
            }
            guard ms <= MahimahiCapacity.longestPeriodMilliseconds else {
                throw TraceError(line: n + 1, message: "\(ms) ms is beyond the longest trace period of \(MahimahiCapacity.longestPeriodMilliseconds) ms")
            }
            if let last = out.last, ms < last {
                throw TraceError(line: n + 1, message: "\(ms) ms comes before the previous line's \(last) ms")
            }
            out.append(ms)
        }
        guard let last = out.last else { throw TraceError(line: 1, message: "the Mahimahi trace has no delivery opportunities") }
        guard last > 0 else { throw TraceError(line: out.count, message: "the trace must end after 0 ms: its last timestamp is its period") }
        opportunities = out
    }

    /// Period after which the trace repeats.
    public var period: Interval { .milliseconds(opportunities[opportunities.count - 1]) }

    /// The capacity in each window of `window` from 0 to `duration`, repeating
    /// the trace: bits of all opportunities in the window over its length.
    public func capacity(window: Interval, duration: Interval) -> [(at: Interval, rate: Bitrate)] {
        precondition(window > .zero)
        let periodMs = Int64(opportunities[opportunities.count - 1])
        var result: [(Interval, Bitrate)] = []
        var start = Interval.zero
        while start < duration {
            let end = min(start + window, duration)
            // Opportunities in [start, end) across repetitions.
            let count = opportunitiesBefore(ns: end.nanoseconds, periodMs: periodMs) - opportunitiesBefore(ns: start.nanoseconds, periodMs: periodMs)
            // In floating point: a dense trace over a long window would overflow integers.
            let bits = Double(count) * Double(MahimahiCapacity.packetBytes * 8)
            let bps = bits * 1e9 / Double(max((end - start).nanoseconds, 1))
            let rate = Bitrate(bitsPerSecond: Int64(min(bps, 1e15).rounded()))
            result.append((start, rate))
            start = end
        }
        return result
    }

    /// Number of opportunities strictly before `ns` on the repeating trace,
    /// where repetition c delivers at c·period + each line's time (so a line
    /// equal to the period coincides with the next repetition's start).
    private func opportunitiesBefore(ns: Int64, periodMs: Int64) -> Int {
        let periodNs = periodMs * 1_000_000
        let k = ns / periodNs
        let rest = ns - k * periodNs
        let n = opportunities.count
        // Earlier repetitions count whole, except that lines at the period of the
        // last one land exactly at k·period, which is not before `ns` when rest is 0.
        var count = Int(k) * n
        if rest == 0 && k >= 1 { count -= opportunities.reversed().prefix { Int64($0) == periodMs }.count }
        var lo = 0, hi = n // first line with time·1e6 >= rest
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int64(opportunities[mid]) * 1_000_000 < rest { lo = mid + 1 } else { hi = mid }
        }
        return count + lo
    }
}

/// ISO 8601 / RFC 3339 timestamps as GPX writes them.
enum ISO8601 {
    /// Seconds since 1970-01-01T00:00:00Z for `YYYY-MM-DDThh:mm:ss[.fff][Z|±hh:mm]`
    /// (no zone means UTC, as GPX requires).
    static func seconds(_ s: String) -> Double? {
        let c = Array(s.utf8)
        func digits(_ from: Int, _ count: Int) -> Int? {
            guard from + count <= c.count else { return nil }
            var v = 0
            for k in from..<(from + count) {
                guard c[k] >= 0x30, c[k] <= 0x39 else { return nil }
                v = v * 10 + Int(c[k] - 0x30)
            }
            return v
        }
        guard c.count >= 19, c[4] == UInt8(ascii: "-"), c[7] == UInt8(ascii: "-"),
              c[10] == UInt8(ascii: "T") || c[10] == UInt8(ascii: " "),
              c[13] == UInt8(ascii: ":"), c[16] == UInt8(ascii: ":"),
              let year = digits(0, 4), let month = digits(5, 2), let day = digits(8, 2),
              let hour = digits(11, 2), let minute = digits(14, 2), let second = digits(17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        var k = 19
        var fraction = 0.0
        if k < c.count, c[k] == UInt8(ascii: ".") {
            k += 1
            var scale = 0.1
            let s0 = k
            while k < c.count, c[k] >= 0x30, c[k] <= 0x39 { fraction += Double(c[k] - 0x30) * scale; scale /= 10; k += 1 }
            guard k > s0 else { return nil }
        }
        var offset = 0
        if k < c.count {
            if c[k] == UInt8(ascii: "Z") { k += 1 }
            else if c[k] == UInt8(ascii: "+") || c[k] == UInt8(ascii: "-") {
                guard let oh = digits(k + 1, 2), k + 3 < c.count, c[k + 3] == UInt8(ascii: ":"), let om = digits(k + 4, 2) else { return nil }
                offset = (oh * 60 + om) * 60 * (c[k] == UInt8(ascii: "-") ? -1 : 1)
                k += 6
            } else { return nil }
        }
        guard k == c.count else { return nil }
        // Days from the civil date (proleptic Gregorian), after Howard Hinnant's algorithm.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second - offset) + fraction
    }
}

extension String {
    /// Lines split at LF or CRLF ("\r\n" is one Character in Swift, so a split
    /// at "\n" alone would miss it).
    var traceLines: [Substring] {
        split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" || f == "\n" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" || l == "\n" { s.removeLast() }
        return String(s)
    }
}
