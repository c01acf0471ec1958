import Analysis
import Core

/// A self-contained report.html: inline CSS and SVG, no scripts, no external
/// resources, so it opens from a results folder or a CI artifact as it is.
/// The markup is also well-formed XML (every element closed, text escaped),
/// which the tests check.
public enum HTMLReport {
    public static func render(runs: [RunResult], checks: [ThresholdCheck] = [], title: String = "Wayside run") -> String {
        let palette = LinkPalette(links: runs.flatMap { $0.coverage.map(\.link) } + runs.flatMap { $0.flows.flatMap { $0.subflows.compactMap(\.path) } })
        let duration = runs.map(\.duration).max() ?? .zero
        let peak = runs.flatMap { $0.flows.flatMap { $0.goodput.map(\.bitsPerSecond) } }.max() ?? 0
        var h = """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
        <head>
        <meta charset="utf-8" />
        <title>\(xmlEscape(title))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
        th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
        th:first-child, td:first-child { text-align: left; }
        .fail { color: #b00; font-weight: bold; }
        .pass { color: #070; }
        svg { display: block; margin: 0.5em 0 1em; }
        svg text { font-size: 11px; fill: #333; }
        .note { color: #666; font-size: 0.9em; }
        </style>
        </head>
        <body>
        <h1>\(xmlEscape(title))</h1>

        """
        h += "<p class=\"note\">Metrics as defined in docs/METRICS.md; computed from the event logs alone.</p>\n"
        h += comparisonTable(runs)
        if !checks.isEmpty { h += thresholdTable(checks) }
        for run in runs {
            h += "<h2 id=\"run-\(anchor(label(run, among: runs)))\">\(xmlEscape(label(run, among: runs)))</h2>\n"
            if !run.attributes.isEmpty {
                h += "<p class=\"note\">" + run.attributes.keys.sorted().map { "\(xmlEscape($0)): \(xmlEscape(run.attributes[$0]!))" }.joined(separator: " · ") + "</p>\n"
            }
            for flow in run.flows {
                h += "<h3>flow \(xmlEscape(flow.conn)) → \(xmlEscape(flow.receiver))\(flow.app.map { " (\(xmlEscape($0)))" } ?? "")</h3>\n"
                if let f = flow.failure { h += "<p class=\"fail\">connection \(xmlEscape(f))</p>\n" }
                h += GoodputPlot(run: run, flow: flow, duration: duration, peak: peak, palette: palette).svg
                h += SubflowTimeline(run: run, flow: flow, duration: duration, palette: palette).svg
                h += handoverTable(flow)
            }
            if run.flows.isEmpty { h += "<p class=\"fail\">no flow found in the logs</p>\n" }
            if !run.problems.isEmpty {
                h += "<details><summary>\(run.problems.count) unreadable log line(s)</summary><pre>"
                h += run.problems.prefix(50).map { xmlEscape($0.description) }.joined(separator: "\n")
                h += "</pre></details>\n"
            }
        }
        h += "</body>\n</html>\n"
        return h
    }

    /// A column or section name for each run: its stack, with the run id when a stack appears twice.
    static func label(_ run: RunResult, among runs: [RunResult]) -> String {
        runs.filter { $0.stack == run.stack }.count > 1 ? "\(run.stack) (\(run.run))" : run.stack
    }

    static func comparisonTable(_ runs: [RunResult]) -> String {
        var names: [String] = []
        for r in runs { for m in r.metrics where !names.contains(m.name) { names.append(m.name) } }
        var t = "<h2>Comparison</h2>\n<table>\n<tr><th>metric</th>"
        for r in runs { t += "<th><a href=\"#run-\(anchor(label(r, among: runs)))\">\(xmlEscape(label(r, among: runs)))</a></th>" }
        t += "</tr>\n"
        for n in names {
            t += "<tr><td>\(xmlEscape(n))</td>"
            for r in runs {
                let v = r.metric(n)
                let cls = n == "survived" ? (v == .flag(true) ? " class=\"pass\"" : " class=\"fail\"") : ""
                t += "<td\(cls)>\(xmlEscape(v?.description ?? "–"))</td>"
            }
            t += "</tr>\n"
        }
        return t + "</table>\n"
    }

    static func thresholdTable(_ checks: [ThresholdCheck]) -> String {
        var t = "<h2>Thresholds</h2>\n<table>\n<tr><th>threshold</th><th>stack</th><th>result</th><th>detail</th></tr>\n"
        for c in checks {
            t += "<tr><td>\(xmlEscape(c.threshold.expression))</td><td>\(xmlEscape(c.stack))</td>"
            t += c.passed ? "<td class=\"pass\">pass</td>" : "<td class=\"fail\">FAIL</td>"
            t += "<td>\(xmlEscape(c.message))</td></tr>\n"
        }
        return t + "</table>\n"
    }

    static func handoverTable(_ flow: FlowResult) -> String {
        guard !flow.handovers.isEmpty else { return "" }
        func d(_ i: Interval?) -> String { i.map(formatDuration) ?? "–" }
        var t = "<table>\n<tr><th>t (s)</th><th>link</th><th>change</th><th>gap</th><th>subflow usable after</th><th>traffic moved after</th></tr>\n"
        for h in flow.handovers {
            t += "<tr><td>\(formatNumber(h.time.seconds, digits: 3))</td><td>\(xmlEscape(h.link))</td>"
            t += "<td>\(h.covered ? "arrival" : "loss (\(h.loss.rawValue))")</td><td>\(d(h.gap))</td>"
            let usable = h.subflowUsableAfter.map(formatDuration) ?? "never"
            t += "<td>\(h.covered ? usable + (h.subflowPersisted ? " (kept)" : "") : "")</td>"
            t += "<td>\(h.covered ? "" : (h.trafficMovedAfter.map(formatDuration) ?? "never"))</td></tr>\n"
        }
        return t + "</table>\n"
    }
}

/// An id attribute value: letters, digits and '-' only.
func anchor(_ s: String) -> String {
    String(s.unicodeScalars.map { c -> Character in
        (c.properties.isAlphabetic && c.isASCII) || ("0"..."9").contains(c) || c == "-" ? Character(c) : "-"
    })
}

/// One colour per link, in order of first appearance.
struct LinkPalette {
    static let colours = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    var order: [String] = []

    init(links: [String]) {
        for l in links where !order.contains(l) { order.append(l) }
    }

    func colour(_ link: String?) -> String {
        guard let link, let i = order.firstIndex(of: link) else { return "#7f7f7f" }
        return LinkPalette.colours[i % LinkPalette.colours.count]
    }
}

/// Geometry shared by the plots: a time axis from 0 to the run's end.
struct TimeAxis {
    var left = 70.0, width = 820.0
    var duration: Double

    func x(_ t: Instant) -> Double { left + width * min(1, max(0, t.seconds / max(duration, 1e-9))) }

    /// Ticks at a round step giving 5–12 labels.
    func ticks() -> [Double] {
        let steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]
        let step = steps.first { duration / $0 <= 12 } ?? 3600
        return stride(from: 0.0, through: duration + 1e-9, by: step).map { $0 }
    }

    func svgTicks(top: Double, bottom: Double) -> String {
        var s = ""
        for t in ticks() {
            let x = left + width * t / max(duration, 1e-9)
            s += "<line x1=\"\(f(x))\" y1=\"\(f(top))\" x2=\"\(f(x))\" y2=\"\(f(bottom))\" stroke=\"#eee\" />"
            s += "<text x=\"\(f(x))\" y=\"\(f(bottom + 14))\" text-anchor=\"middle\">\(formatNumber(t, digits: t == t.rounded() ? 0 : 1))</text>\n"
        }
        s += "<text x=\"\(f(left + width))\" y=\"\(f(bottom + 28))\" text-anchor=\"end\">time (s)</text>\n"
        return s
    }
}

/// Goodput over time over coloured coverage bands, with stalls marked.
struct GoodputPlot {
    var run: RunResult
    var flow: FlowResult
    var duration: Instant
    var peak: Double
    var palette: LinkPalette

    var svg: String {
        let links = LinkPalette(links: run.coverage.map(\.link)).order
        let axis = TimeAxis(duration: duration.seconds)
        let top = 20.0, plotHeight = 180.0
        let bottom = top + plotHeight
        let laneTop = bottom + 36
        let laneHeight = 14.0
        let height = laneTop + Double(links.count) * (laneHeight + 4) + 10
        let yMax = niceCeiling(max(peak, 1))
        func y(_ bps: Double) -> Double { bottom - plotHeight * min(1, bps / yMax) }

        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"goodput\" width=\"920\" height=\"\(f(height))\" viewBox=\"0 0 920 \(f(height))\">\n"
        s += "<title>goodput of \(xmlEscape(flow.conn)) (\(xmlEscape(run.stack))) over coverage</title>\n"
        // Coverage: translucent bands behind the plot, and one lane per link below the axis.
        for b in run.coverage {
            let x0 = axis.x(b.start), x1 = axis.x(b.end ?? duration)
            let c = palette.colour(b.link)
            s += "<rect x=\"\(f(x0))\" y=\"\(f(top))\" width=\"\(f(max(0.5, x1 - x0)))\" height=\"\(f(plotHeight))\" fill=\"\(c)\" fill-opacity=\"0.10\" />\n"
            let lane = Double(links.firstIndex(of: b.link) ?? 0)
            s += "<rect x=\"\(f(x0))\" y=\"\(f(laneTop + lane * (laneHeight + 4)))\" width=\"\(f(max(0.5, x1 - x0)))\" height=\"\(f(laneHeight))\" fill=\"\(c)\" fill-opacity=\"0.7\"><title>\(xmlEscape(b.link)) covered \(formatNumber(b.start.seconds, digits: 2))–\(formatNumber((b.end ?? duration).seconds, digits: 2)) s</title></rect>\n"
        }
        for (i, l) in links.enumerated() {
            s += "<text x=\"\(f(axis.left - 6))\" y=\"\(f(laneTop + Double(i) * (laneHeight + 4) + laneHeight - 3))\" text-anchor=\"end\">\(xmlEscape(l))</text>\n"
        }
        s += axis.svgTicks(top: top, bottom: bottom)
        // Y axis.
        for k in 0...4 {
            let v = yMax * Double(k) / 4
            s += "<line x1=\"\(f(axis.left))\" y1=\"\(f(y(v)))\" x2=\"\(f(axis.left + axis.width))\" y2=\"\(f(y(v)))\" stroke=\"#eee\" />"
            s += "<text x=\"\(f(axis.left - 6))\" y=\"\(f(y(v) + 4))\" text-anchor=\"end\">\(xmlEscape(formatRate(v).replacingSuffix()))</text>\n"
        }
        s += "<text x=\"4\" y=\"12\">goodput</text>\n"
        // Stalls: red bands with their length.
        for g in flow.stalls {
            let x0 = axis.x(g.start), x1 = axis.x(g.end)
            s += "<rect class=\"gap\" x=\"\(f(x0))\" y=\"\(f(top))\" width=\"\(f(max(1, x1 - x0)))\" height=\"\(f(plotHeight))\" fill=\"#d62728\" fill-opacity=\"0.25\"><title>no delivery for \(xmlEscape(formatDuration(g.length)))</title></rect>\n"
            s += "<text x=\"\(f((x0 + x1) / 2))\" y=\"\(f(top - 4))\" text-anchor=\"middle\" fill=\"#d62728\">\(xmlEscape(formatDuration(g.length)))</text>\n"
        }
        // Goodput as steps.
        if !flow.goodput.isEmpty {
            var points: [String] = []
            let bin = run.options.goodputBin
            for g in flow.goodput {
                points.append("\(f(axis.x(g.start))),\(f(y(g.bitsPerSecond)))")
                points.append("\(f(axis.x(g.start + bin))),\(f(y(g.bitsPerSecond)))")
            }
            s += "<polyline fill=\"none\" stroke=\"#222\" stroke-width=\"1.2\" points=\"\(points.joined(separator: " "))\" />\n"
        }
        s += "<rect x=\"\(f(axis.left))\" y=\"\(f(top))\" width=\"\(f(axis.width))\" height=\"\(f(plotHeight))\" fill=\"none\" stroke=\"#999\" />\n"
        s += "</svg>\n"
        return s
    }
}

/// One row per subflow, a bar while it was established, coloured by its path.
struct SubflowTimeline {
    var run: RunResult
    var flow: FlowResult
    var duration: Instant
    var palette: LinkPalette

    var svg: String {
        let axis = TimeAxis(duration: duration.seconds)
        let rows = flow.subflows
        let rowHeight = 16.0, top = 20.0
        let bottom = top + max(1, Double(rows.count)) * (rowHeight + 4)
        let height = bottom + 34
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"subflows\" width=\"920\" height=\"\(f(height))\" viewBox=\"0 0 920 \(f(height))\">\n"
        s += "<title>subflows of \(xmlEscape(flow.conn)) (\(xmlEscape(run.stack)))</title>\n"
        s += "<text x=\"4\" y=\"12\">subflows\(flow.subflowObserver.map { " (as \(xmlEscape($0)) saw them)" } ?? "")</text>\n"
        s += axis.svgTicks(top: top, bottom: bottom)
        if rows.isEmpty {
            s += "<text x=\"\(f(axis.left + 6))\" y=\"\(f(top + 12))\">no subflow events in the logs</text>\n"
        }
        for (i, sf) in rows.enumerated() {
            let y = top + Double(i) * (rowHeight + 4)
            let x0 = axis.x(sf.start), x1 = axis.x(sf.end ?? duration)
            let c = palette.colour(sf.path)
            s += "<text x=\"\(f(axis.left - 6))\" y=\"\(f(y + rowHeight - 4))\" text-anchor=\"end\">#\(sf.subflow) \(xmlEscape(sf.path ?? "?"))</text>\n"
            s += "<rect x=\"\(f(x0))\" y=\"\(f(y))\" width=\"\(f(max(1, x1 - x0)))\" height=\"\(f(rowHeight))\" fill=\"\(c)\" fill-opacity=\"0.8\"><title>subflow \(sf.subflow) on \(xmlEscape(sf.path ?? "unknown path")): \(formatNumber(sf.start.seconds, digits: 3))–\(sf.end.map { formatNumber($0.seconds, digits: 3) } ?? "end") s\(sf.endState.map { ", \($0.rawValue)" } ?? "")</title></rect>\n"
            if sf.endState == .failed {
                s += "<text x=\"\(f(x1 + 3))\" y=\"\(f(y + rowHeight - 4))\" fill=\"#d62728\">✕ failed</text>\n"
            }
        }
        for g in flow.stalls {
            let x0 = axis.x(g.start), x1 = axis.x(g.end)
            s += "<rect class=\"gap\" x=\"\(f(x0))\" y=\"\(f(top))\" width=\"\(f(max(1, x1 - x0)))\" height=\"\(f(bottom - top))\" fill=\"#d62728\" fill-opacity=\"0.15\" />\n"
        }
        s += "</svg>\n"
        return s
    }
}

/// 1, 2, 5 × 10^k at or above v.
func niceCeiling(_ v: Double) -> Double {
    var p = 1.0
    while p * 10 <= v { p *= 10 }
    while p > v && p > 1e-9 { p /= 10 }
    for m in [1.0, 2, 5, 10] where m * p >= v { return m * p }
    return 10 * p
}

/// Coordinates with two decimals: enough for a 920-pixel plot, short in the file.
func f(_ v: Double) -> String { formatNumber(v, digits: 2) }

func formatNumber(_ v: Double, digits: Int) -> String { TextFormatting.fixed(v, digits: digits, trimmingZeros: true) ?? "0" }

extension String {
    /// "5.00 Mbit/s" reads better on an axis as "5 Mbit/s".
    func replacingSuffix() -> String {
        guard let space = firstIndex(of: " ") else { return self }
        var number = String(self[..<space])
        if number.contains(".") {
            while number.hasSuffix("0") { number.removeLast() }
            if number.hasSuffix(".") { number.removeLast() }
        }
        return number + self[space...]
    }
}

/// The comparison as plain text for the terminal: one column per stack.
public enum SummaryTable {
    public static let rows = ["survived", "max_gap", "total_stall", "goodput_mean", "delivered_ratio", "redundancy",
                              "max_join_latency", "max_move_latency", "latency_p99", "messages_lost", "reinjected_bytes",
                              "max_subflows"]

    public static func render(_ runs: [RunResult]) -> String {
        var table: [[String]] = [["metric"] + runs.map { HTMLReport.label($0, among: runs) }]
        for name in rows where runs.contains(where: { $0.metric(name) != nil }) {
            table.append([name] + runs.map { $0.metric(name)?.description ?? "–" })
        }
        let widths = (0..<table[0].count).map { col in table.map { $0[col].count }.max() ?? 0 }
        return table.map { row in
            row.enumerated().map { col, cell in
                let pad = String(repeating: " ", count: widths[col] - cell.count)
                return col == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }
}
