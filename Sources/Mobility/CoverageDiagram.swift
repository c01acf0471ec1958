import Core

/// An SVG drawing of a drive: the distance from the vehicle to each roadside
/// unit over time (top), and one band per link showing when it has coverage,
/// with its rate as a step line where the timeline sets one (bottom).
public struct CoverageDiagram {
    public var coverage: DriveCoverage
    public var title: String

    public init(coverage: DriveCoverage, title: String) { self.coverage = coverage; self.title = title }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]
    let width = 960.0
    let left = 70.0, right = 20.0, top = 40.0
    let plotHeight = 240.0
    let bandHeight = 26.0, bandGap = 6.0

    func n(_ v: Double) -> String { formatDecimal(v, digits: 1) }

    static func escape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(c)
            }
        }
        return out
    }

    /// A "nice" tick step for a span: 1, 2 or 5 times a power of ten.
    static func tickStep(span: Double, ticks: Double) -> Double {
        guard span > 0 else { return 1 }
        let raw = span / ticks
        var p = 1.0
        while p * 10 <= raw { p *= 10 }
        while p > raw { p /= 10 }
        for m in [1.0, 2, 5, 10] where p * m >= raw { return p * m }
        return p * 10
    }

    public var svg: String {
        let timeline = coverage.timeline
        let links = timeline.links
        let duration = max(timeline.duration.seconds, 1e-3)
        let plotWidth = width - left - right
        let bandsTop = top + plotHeight + 50
        let height = bandsTop + Double(links.count) * (bandHeight + bandGap) + 40
        func x(_ t: Double) -> Double { left + plotWidth * t / duration }

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(n(width))\" height=\"\(n(height))\" viewBox=\"0 0 \(n(width)) \(n(height))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        s += "<text x=\"\(n(left))\" y=\"20\" font-size=\"14\">\(Self.escape(title))</text>\n"

        // Distance panel.
        let allDistances = coverage.samples.values.flatMap { $0.map(\.distance) }
        let maxDistance = max(allDistances.max() ?? 1, 1)
        // Beyond a few ranges the curve says nothing; clip the axis there.
        let ranges = coverage.sites.map { site -> Double in
            switch site.radio {
            case let .disk(r): return r.range
            case let .logDistance(r): return r.distance(atReceivedPowerDBm: r.associateDBm ?? r.rates.entries[0].sensitivityDBm)
            }
        }
        let axisMax = min(maxDistance, max(3 * (ranges.max() ?? maxDistance), 100))
        func y(_ d: Double) -> Double { top + plotHeight * (1 - min(d, axisMax) / axisMax) }
        s += "<g stroke=\"#ddd\" stroke-width=\"1\">\n"
        let dStep = Self.tickStep(span: axisMax, ticks: 5)
        var d = 0.0
        var labels = ""
        while d <= axisMax + 1e-9 {
            s += "<line x1=\"\(n(left))\" y1=\"\(n(y(d)))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(y(d)))\"/>\n"
            labels += "<text x=\"\(n(left - 6))\" y=\"\(n(y(d) + 4))\" text-anchor=\"end\">\(formatDecimal(d, digits: 0)) m</text>\n"
            d += dStep
        }
        let tStep = Self.tickStep(span: duration, ticks: 10)
        var t = 0.0
        var timeLabels = ""
        while t <= duration + 1e-9 {
            s += "<line x1=\"\(n(x(t)))\" y1=\"\(n(top))\" x2=\"\(n(x(t)))\" y2=\"\(n(top + plotHeight))\"/>\n"
            timeLabels += "<text x=\"\(n(x(t)))\" y=\"\(n(top + plotHeight + 16))\" text-anchor=\"middle\">\(formatDecimal(t, digits: 1)) s</text>\n"
            t += tStep
        }
        s += "</g>\n" + labels + timeLabels
        s += "<text x=\"\(n(left))\" y=\"\(n(top - 6))\">distance to each roadside unit (dashed: range or association distance)</text>\n"
        for (k, site) in coverage.sites.enumerated() {
            let colour = Self.palette[k % Self.palette.count]
            let samples = coverage.samples[site.name] ?? []
            // At most ~2 points per pixel column keeps long drives small.
            let stride = max(1, samples.count / Int(plotWidth * 2))
            var points: [String] = []
            for (i, sample) in samples.enumerated() where i % stride == 0 || i == samples.count - 1 {
                points.append("\(n(x(sample.at.seconds))),\(n(y(sample.distance)))")
            }
            if !points.isEmpty {
                s += "<polyline fill=\"none\" stroke=\"\(colour)\" stroke-width=\"1.5\" points=\"\(points.joined(separator: " "))\"/>\n"
            }
            if ranges[k] <= axisMax {
                s += "<line x1=\"\(n(left))\" y1=\"\(n(y(ranges[k])))\" x2=\"\(n(left + plotWidth))\" y2=\"\(n(y(ranges[k])))\" stroke=\"\(colour)\" stroke-dasharray=\"4 4\" stroke-width=\"1\"/>\n"
            }
            s += "<text x=\"\(n(left + 8 + Double(k) * 110))\" y=\"\(n(top + 14))\" fill=\"\(colour)\">\(Self.escape(site.name))</text>\n"
        }
        s += "<rect x=\"\(n(left))\" y=\"\(n(top))\" width=\"\(n(plotWidth))\" height=\"\(n(plotHeight))\" fill=\"none\" stroke=\"#333\"/>\n"

        // Coverage bands.
        s += "<text x=\"\(n(left))\" y=\"\(n(bandsTop - 8))\">coverage per link (filled: covered; line: rate)</text>\n"
        for (k, link) in links.enumerated() {
            let rowTop = bandsTop + Double(k) * (bandHeight + bandGap)
            let siteIndex = coverage.sites.firstIndex { $0.link == link }
            let colour = siteIndex.map { Self.palette[$0 % Self.palette.count] } ?? "#555"
            s += "<text x=\"\(n(left - 6))\" y=\"\(n(rowTop + bandHeight / 2 + 4))\" text-anchor=\"end\">\(Self.escape(link))</text>\n"
            s += "<rect x=\"\(n(left))\" y=\"\(n(rowTop))\" width=\"\(n(plotWidth))\" height=\"\(n(bandHeight))\" fill=\"#f4f4f4\" stroke=\"#ccc\"/>\n"
            for span in timeline.coveredIntervals(of: link) {
                let x0 = x(span.start.seconds), x1 = x(span.end.seconds)
                s += "<rect x=\"\(n(x0))\" y=\"\(n(rowTop))\" width=\"\(n(max(x1 - x0, 0.5)))\" height=\"\(n(bandHeight))\" fill=\"\(colour)\" fill-opacity=\"0.35\"><title>\(Self.escape(link)) \(formatSeconds(span.start))–\(formatSeconds(span.end))</title></rect>\n"
            }
            // Rate steps per direction while covered, scaled to the row's highest rate;
            // one line when every change applies to both directions.
            let events = timeline.events(for: link)
            let perDirection = events.contains { e in
                if case .set(let p) = e.change, p.rate != nil { return e.direction != .both } else { return false }
            }
            let directions: [LinkDirection] = perDirection ? [.aToB, .bToA] : [.both]
            var series: [(LinkDirection, [(Double, Double)])] = []
            for d in directions {
                var steps: [(Double, Double)] = []
                for e in events where e.direction.includes(d) {
                    if case let .set(p) = e.change, let r = p.rate { steps.append((e.at.seconds, Double(r.bitsPerSecond))) }
                }
                if !steps.isEmpty { series.append((d, steps)) }
            }
            let covered = timeline.coveredIntervals(of: link).map { ($0.start.seconds, $0.end.seconds) }
            if let peak = series.flatMap({ $0.1.map(\.1) }).max(), peak > 0 {
                for (d, steps) in series {
                    var path = ""
                    var penAt: (Double, Double)? = nil // where the last piece ended (x, y)
                    for (i, st) in steps.enumerated() {
                        let next = i + 1 < steps.count ? steps[i + 1].0 : duration
                        let yv = rowTop + bandHeight - 2 - (bandHeight - 4) * st.1 / peak
                        for (c0, c1) in covered {
                            let a = max(st.0, c0), b = min(next, c1)
                            guard b > a else { continue }
                            if let pen = penAt, abs(pen.0 - x(a)) < 1e-9 {
                                path += " V\(n(yv)) H\(n(x(b)))"
                            } else {
                                path += " M\(n(x(a))) \(n(yv)) H\(n(x(b)))"
                            }
                            penAt = (x(b), yv)
                        }
                    }
                    guard !path.isEmpty else { continue }
                    let style = d == .bToA ? "stroke=\"#666\" stroke-dasharray=\"3 2\"" : "stroke=\"#222\""
                    s += "<path fill=\"none\" \(style) stroke-width=\"1\" d=\"\(path.dropFirst())\"><title>\(Self.escape(link)) rate \(d.rawValue)</title></path>\n"
                }
                let legend = perDirection ? "rate a-to-b (solid), b-to-a (dashed); max " : "max "
                s += "<text x=\"\(n(left + plotWidth - 4))\" y=\"\(n(rowTop + 10))\" text-anchor=\"end\" font-size=\"9\">\(legend)\(Bitrate(bitsPerSecond: Int64(peak)))</text>\n"
            }
        }
        s += "</svg>\n"
        return s
    }
}
