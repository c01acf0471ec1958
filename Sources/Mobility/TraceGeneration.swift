import Core
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Synthetic cellular capacity as a Mahimahi trace, so that shipped routes do
/// not depend on measurements we may not redistribute. The capacity wanders
/// around `mean` as a log-normal AR(1) process (correlated over
/// `correlationTime`), and drops into fades (a two-state Markov chain with mean
/// stay times `meanTimeBetweenFades` and `meanFadeLength`) during which it is
/// `fadeDepth` of its value. Deterministic by seed.
public struct CellularTraceModel: Hashable, Sendable {
    public var mean: Bitrate
    /// Standard deviation of the capacity's logarithm (natural log).
    public var logSigma: Double
    public var correlationTime: Interval
    public var meanTimeBetweenFades: Interval
    public var meanFadeLength: Interval
    /// Fraction of capacity left in a fade (0 ... 1).
    public var fadeDepth: Double
    /// The process is advanced in steps of this length.
    public var slot: Interval

    public init(mean: Bitrate, logSigma: Double = 0.35, correlationTime: Interval = .seconds(2),
                meanTimeBetweenFades: Interval = .seconds(30), meanFadeLength: Interval = .milliseconds(1500),
                fadeDepth: Double = 0.1, slot: Interval = .milliseconds(10)) {
        self.mean = mean; self.logSigma = logSigma; self.correlationTime = correlationTime
        self.meanTimeBetweenFades = meanTimeBetweenFades; self.meanFadeLength = meanFadeLength
        self.fadeDepth = fadeDepth; self.slot = slot
    }

    /// The trace text: one line per 1500-byte delivery opportunity (milliseconds),
    /// ending with a line at `duration`, which is the period Mahimahi repeats with.
    public func mahimahiTrace(duration: Interval, seed: UInt64, stream: String = "cellular") -> String {
        precondition(duration >= .milliseconds(1) && slot > .zero)
        var random = SeededRandom(seed: seed, stream: "trace/" + stream)
        let dt = slot.seconds
        let rho = correlationTime > .zero ? exp(-dt / correlationTime.seconds) : 0
        // Mean of a log-normal is exp(mu + sigma²/2): centre it on `mean`.
        let mu = log(Double(mean.bitsPerSecond)) - logSigma * logSigma / 2
        var x = random.normal(mean: 0, standardDeviation: logSigma)
        var fading = false
        let enterFade = meanTimeBetweenFades > .zero ? dt / meanTimeBetweenFades.seconds : 0
        let leaveFade = meanFadeLength > .zero ? dt / meanFadeLength.seconds : 1
        var credit = 0.0 // bytes the link could have sent but has not yet
        var lines: [Int64] = []
        var t = Interval.zero
        while t < duration {
            var rate = exp(mu + x)
            if fading { rate *= fadeDepth }
            credit += rate * dt / 8
            let ms = t.nanoseconds / 1_000_000
            while credit >= Double(MahimahiCapacity.packetBytes) {
                credit -= Double(MahimahiCapacity.packetBytes)
                lines.append(ms)
            }
            x = rho * x + (1 - rho * rho).squareRoot() * random.normal(mean: 0, standardDeviation: logSigma)
            fading = fading ? !random.chance(leaveFade) : random.chance(enterFade)
            t += slot
        }
        let end = duration.nanoseconds / 1_000_000
        // Times are whole milliseconds; the line at `end` closes the period.
        lines.removeAll { $0 >= end }
        lines.append(end)
        var text = ""
        text.reserveCapacity(lines.count * 6)
        for l in lines { text += String(l); text += "\n" }
        return text
    }
}

/// Writes a trajectory as a GPX 1.1 track around a geographic origin, with
/// optional seeded GPS noise, so that a drive can be shipped as the kind of
/// trace a logger records (and the GPX importer is exercised end to end).
public struct GPXWriter {
    public var origin: GeoCoordinate
    /// Standard deviation of the horizontal position error, metres (0: none).
    public var noise: Double
    /// Seconds since the Unix epoch of the first point.
    public var startTime: Int64

    public init(origin: GeoCoordinate, noise: Double = 0, startTime: Int64 = 1_714_564_800) {
        self.origin = origin; self.noise = noise; self.startTime = startTime
    }

    public func gpx(_ trajectory: Trajectory, every interval: Interval, seed: UInt64, name: String) -> String {
        let projection = LocalProjection(origin: origin)
        var random = SeededRandom(seed: seed, stream: "gps-noise")
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<gpx version=\"1.1\" creator=\"wayside route gpx\" xmlns=\"http://www.topografix.com/GPX/1/1\">\n"
        out += "  <trk><name>\(CoverageDiagram.escape(name))</name><trkseg>\n"
        var t = trajectory.start
        while true {
            var p = trajectory.position(at: t)
            if noise > 0 {
                p.x += random.normal(mean: 0, standardDeviation: noise)
                p.y += random.normal(mean: 0, standardDeviation: noise)
            }
            // Inverse of the local projection (the same radii of curvature).
            let lat = origin.latitude + p.y / projection.northRadius * 180 / .pi
            let lon = origin.longitude + p.x / projection.eastRadius * 180 / .pi
            let seconds = startTime * 1000 + (t - trajectory.start).nanoseconds / 1_000_000
            out += "    <trkpt lat=\"\(formatDecimal(lat, digits: 7))\" lon=\"\(formatDecimal(lon, digits: 7))\"><time>\(ISO8601.format(milliseconds: seconds))</time></trkpt>\n"
            if t >= trajectory.end { break }
            t = min(t + interval, trajectory.end)
        }
        out += "  </trkseg></trk>\n</gpx>\n"
        return out
    }
}

extension ISO8601 {
    /// `2024-05-01T12:00:00.250Z` for milliseconds since the Unix epoch (UTC).
    static func format(milliseconds: Int64) -> String {
        let ms = Int(((milliseconds % 1000) + 1000) % 1000)
        var secs = (milliseconds - Int64(ms)) / 1000
        let daySeconds = Int(((secs % 86_400) + 86_400) % 86_400)
        secs -= Int64(daySeconds)
        let days = Int(secs / 86_400)
        // Civil date from days since the epoch (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ v: Int) -> String { v < 10 ? "0\(v)" : "\(v)" }
        var msText = String(ms)
        while msText.count < 3 { msText = "0" + msText }
        return "\(year)-\(two(month))-\(two(day))T\(two(daySeconds / 3600)):\(two(daySeconds / 60 % 60)):\(two(daySeconds % 60)).\(msText)Z"
    }
}
