import Analysis
import Core

/// One metric's values across runs, one row per group (a sweep configuration):
/// a box from the first to the third quartile with the median marked, whiskers
/// to the extremes, and every run as a dot (a strip plot), so that a handful of
/// seeds is shown as it is rather than summarised away. Inline SVG for
/// self-contained pages (the sweep summary).
public struct DistributionPlot {
    public struct Group {
        public var label: String
        public var values: [Double]
        /// Runs of the group that did not measure the metric (or failed).
        public var missing: Int
        public init(label: String, values: [Double], missing: Int = 0) {
            self.label = label; self.values = values; self.missing = missing
        }
    }

    public var title: String
    public var unit: String
    public var groups: [Group]

    public init(title: String, unit: String, groups: [Group]) {
        self.title = title; self.unit = unit; self.groups = groups
    }

    /// Quartiles by linear interpolation between order statistics.
    public static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    public var svg: String {
        let all = groups.flatMap(\.values)
        let lo = min(0, all.min() ?? 0)
        // All zeros (a flag never set, nothing lost) still gets a 0…1 axis.
        let top = all.max() ?? 0
        let hi = top > 0 ? niceCeiling(top) : 1
        let left = 260.0, width = 600.0, rowHeight = 22.0, plotTop = 24.0
        let bottom = plotTop + Double(max(groups.count, 1)) * rowHeight
        let height = bottom + 34
        func x(_ v: Double) -> Double { left + width * (v - lo) / max(hi - lo, 1e-12) }

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"distribution\" width=\"920\" height=\"\(f(height))\" viewBox=\"0 0 920 \(f(height))\">\n"
        s += "<title>\(xmlEscape(title)) per configuration</title>\n"
        s += "<text x=\"4\" y=\"14\">\(xmlEscape(title))\(unit.isEmpty ? "" : " (\(xmlEscape(unit)))")</text>\n"
        for k in 0...5 {
            let v = lo + (hi - lo) * Double(k) / 5
            s += "<line x1=\"\(f(x(v)))\" y1=\"\(f(plotTop))\" x2=\"\(f(x(v)))\" y2=\"\(f(bottom))\" stroke=\"#eee\" />"
            s += "<text x=\"\(f(x(v)))\" y=\"\(f(bottom + 14))\" text-anchor=\"middle\">\(formatNumber(v, digits: 3))</text>\n"
        }
        for (i, g) in groups.enumerated() {
            let yMid = plotTop + Double(i) * rowHeight + rowHeight / 2
            let note = g.missing > 0 ? " (\(g.missing) unmeasured)" : ""
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(yMid + 4))\" text-anchor=\"end\">\(xmlEscape(g.label))\(xmlEscape(note))</text>\n"
            let sorted = g.values.sorted()
            guard !sorted.isEmpty else { continue }
            let q1 = Self.quantile(sorted, 0.25), med = Self.quantile(sorted, 0.5), q3 = Self.quantile(sorted, 0.75)
            s += "<line x1=\"\(f(x(sorted.first!)))\" y1=\"\(f(yMid))\" x2=\"\(f(x(sorted.last!)))\" y2=\"\(f(yMid))\" stroke=\"#999\" />\n"
            s += "<rect x=\"\(f(x(q1)))\" y=\"\(f(yMid - 7))\" width=\"\(f(max(1, x(q3) - x(q1))))\" height=\"14\" fill=\"#1f77b4\" fill-opacity=\"0.2\" stroke=\"#1f77b4\">"
            s += "<title>\(xmlEscape(g.label)): n \(sorted.count), min \(formatNumber(sorted.first!, digits: 3)), q1 \(formatNumber(q1, digits: 3)), median \(formatNumber(med, digits: 3)), q3 \(formatNumber(q3, digits: 3)), max \(formatNumber(sorted.last!, digits: 3))</title></rect>\n"
            s += "<line class=\"median\" x1=\"\(f(x(med)))\" y1=\"\(f(yMid - 8))\" x2=\"\(f(x(med)))\" y2=\"\(f(yMid + 8))\" stroke=\"#d62728\" stroke-width=\"2\" />\n"
            for (k, v) in g.values.enumerated() {
                // A small fixed vertical spread keeps equal values visible as several dots.
                let jitter = Double(k % 5 - 2) * 2
                s += "<circle cx=\"\(f(x(v)))\" cy=\"\(f(yMid + jitter))\" r=\"2.2\" fill=\"#222\" fill-opacity=\"0.6\" />"
            }
            s += "\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(plotTop))\" width=\"\(f(width))\" height=\"\(f(bottom - plotTop))\" fill=\"none\" stroke=\"#999\" />\n"
        s += "</svg>\n"
        return s
    }
}
