import Core

extension CoverageTimeline {
    /// When `link` has coverage, as intervals in [0, duration]. A link starts
    /// covered (a link is up until a timeline says otherwise); a direction-only
    /// change counts as losing coverage while either direction is down.
    public func coveredIntervals(of link: String) -> [(start: Interval, end: Interval)] {
        var aUp = true, bUp = true
        var result: [(Interval, Interval)] = []
        var since: Interval? = .zero
        for e in events(for: link) {
            guard case let .coverage(up, _) = e.change else { continue }
            if e.direction.includes(.aToB) && e.direction != .bToA { aUp = up }
            if e.direction.includes(.bToA) && e.direction != .aToB { bUp = up }
            let now = aUp && bUp
            if now, since == nil { since = e.at }
            if !now, let s = since {
                if e.at > s { result.append((s, e.at)) }
                since = nil
            }
        }
        if let s = since, duration > s { result.append((s, duration)) }
        return result
    }

    /// Times when none of `links` has coverage (gaps between roadside units).
    public func gaps(across links: [String]) -> [(start: Interval, end: Interval)] {
        var covered = links.flatMap { coveredIntervals(of: $0) }.sorted { $0.start < $1.start }
        var result: [(Interval, Interval)] = []
        var t = Interval.zero
        covered.append((duration, duration))
        for c in covered {
            if c.start > t { result.append((t, min(c.start, duration))) }
            t = max(t, c.end)
        }
        return result.filter { $0.1 > $0.0 }
    }
}

/// Seconds with millisecond precision: `28.800s`.
public func formatSeconds(_ i: Interval) -> String {
    let ms = (Double(i.nanoseconds) / 1e6).rounded()
    let v = Int64(ms)
    let sign = v < 0 ? "-" : ""
    var frac = String(abs(v) % 1000)
    while frac.count < 3 { frac = "0" + frac }
    return "\(sign)\(abs(v) / 1000).\(frac)s"
}

extension LinkParameters {
    /// `rate 12mbit loss 0.5% delay 20ms`, only the fields set.
    public var summary: String {
        var parts: [String] = []
        if let r = rate { parts.append("rate \(r)") }
        if let l = loss { parts.append("loss \(l)") }
        if let d = delay { parts.append("delay \(d)") }
        if let j = jitter { parts.append("jitter \(j)") }
        if let q = queuePackets { parts.append("queue \(q)p") }
        if let q = queueBytes { parts.append("queue \(q)B") }
        return parts.joined(separator: " ")
    }
}

extension LinkChange {
    public var summary: String {
        switch self {
        case let .coverage(up, loss): return up ? "coverage up" : "coverage down (\(loss.rawValue))"
        case let .set(p): return "set \(p.summary)"
        case let .ramp(p, over): return "ramp \(p.summary) over \(over)"
        }
    }
}

/// `wayside route show`'s table: every event, then coverage per link and the gaps.
public struct TimelineTable {
    public var coverage: DriveCoverage
    public var heading: String

    public init(coverage: DriveCoverage, heading: String) { self.coverage = coverage; self.heading = heading }

    func pad(_ s: String, _ n: Int, right: Bool = false) -> String {
        s.count >= n ? s : (right ? String(repeating: " ", count: n - s.count) + s : s + String(repeating: " ", count: n - s.count))
    }

    public var text: String {
        let timeline = coverage.timeline
        var out = heading + "\n"
        let linkWidth = max(4, timeline.links.map(\.count).max() ?? 0)
        out += "\(pad("time", 11, right: true))  \(pad("link", linkWidth))  \(pad("dir", 6))  change\n"
        for e in timeline.events {
            out += "\(pad(formatSeconds(e.at), 11, right: true))  \(pad(e.link, linkWidth))  \(pad(e.direction.rawValue, 6))  \(e.change.summary)\n"
        }
        out += "\ncoverage (\(formatSeconds(timeline.duration)) in all):\n"
        for link in timeline.links {
            let intervals = timeline.coveredIntervals(of: link)
            let total = intervals.reduce(Interval.zero) { $0 + ($1.end - $1.start) }
            let share = timeline.duration > .zero ? 100 * total.seconds / timeline.duration.seconds : 0
            let spans = intervals.prefix(6).map { "\(formatSeconds($0.start))–\(formatSeconds($0.end))" }.joined(separator: ", ")
                + (intervals.count > 6 ? ", … (\(intervals.count) spans)" : "")
            out += "  \(pad(link, linkWidth))  \(pad(formatDecimal(share, digits: 1) + "%", 6, right: true))  \(spans.isEmpty ? "never" : spans)\n"
        }
        let radioLinks = coverage.sites.map(\.link)
        if !radioLinks.isEmpty {
            let gaps = timeline.gaps(across: radioLinks)
            let total = gaps.reduce(Interval.zero) { $0 + ($1.end - $1.start) }
            out += "gaps without a roadside unit: \(gaps.count), \(formatSeconds(total)) in all"
            if let longest = gaps.max(by: { ($0.end - $0.start) < ($1.end - $1.start) }) {
                out += "; longest \(formatSeconds(longest.end - longest.start)) from \(formatSeconds(longest.start))"
            }
            out += "\n"
        }
        return out
    }
}
