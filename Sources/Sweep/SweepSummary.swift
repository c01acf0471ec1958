import Analysis
import Core
import Report

/// One configuration's runs folded together: per metric the statistic over
/// the runs that measured it. What a baseline stores and a regression compares.
public struct ConfigurationSummary: Hashable, Sendable {
    public struct Value: Hashable, Sendable {
        public var value: Double
        public var unit: String
        /// Runs that measured the metric.
        public var measured: Int
        public var min: Double
        public var max: Double
    }

    public var id: String
    public var key: String
    public var parameters: [String]
    public var runs: Int
    public var failed: Int
    /// By metric name, in `MetricCatalog` order.
    public var metrics: [(name: String, value: Value)]

    public static func == (a: ConfigurationSummary, b: ConfigurationSummary) -> Bool {
        a.id == b.id && a.key == b.key && a.runs == b.runs && a.failed == b.failed
            && a.metrics.map(\.name) == b.metrics.map(\.name) && a.metrics.map(\.value) == b.metrics.map(\.value)
    }

    public func hash(into h: inout Hasher) { h.combine(id) }

    public func metric(_ name: String) -> Value? { metrics.first { $0.name == name }?.value }

    /// Groups records by configuration (in matrix order) and folds each metric
    /// with `statistic`; flags are folded as the fraction of runs where they held.
    public static func summarize(_ records: [SweepRecord], statistic: SweepStatistic) -> [ConfigurationSummary] {
        var order: [String] = []
        var groups: [String: [SweepRecord]] = [:]
        for r in records.sorted(by: { $0.index < $1.index }) {
            let key = r.configurationKey
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(r)
        }
        return order.map { key in
            let rs = groups[key]!
            let ok = rs.filter { $0.status == .ok }
            var metrics: [(String, Value)] = []
            for name in metricNames(in: ok) {
                let values = ok.compactMap { $0.metric(name) }
                let unit = ok.lazy.compactMap { $0.metrics.first { $0.name == name }?.unit }.first ?? ""
                let folded = MetricCatalog.kind(of: name) == .flag ? SweepStatistic.mean.of(values) : statistic.of(values)
                guard let v = folded else { continue }
                metrics.append((name, Value(value: v, unit: unit, measured: values.count, min: values.min()!, max: values.max()!)))
            }
            return ConfigurationSummary(id: rs[0].configurationID, key: key, parameters: rs[0].parameters.map { "\($0.dimension)=\($0.value)" },
                                        runs: rs.count, failed: rs.count - ok.count, metrics: metrics)
        }
    }
}

/// Metric names present in any record, catalogue order first, then others by name.
func metricNames(in records: [SweepRecord]) -> [String] {
    var present = Set<String>()
    for r in records { for m in r.metrics { present.insert(m.name) } }
    let known = MetricCatalog.kinds.map(\.name).filter(present.contains)
    return known + present.subtracting(known).sorted()
}

/// summary.csv and summary.html of a sweep folder (docs/SWEEPS.md).
public enum SweepSummary {
    /// One row per run: id, configuration, seed, each dimension, status, wall
    /// time, then every metric (durations `_ms`, rates `_bps`); empty when unmeasured.
    public static func csv(_ manifest: SweepManifest) -> String {
        let names = metricNames(in: manifest.records)
        func column(_ name: String) -> String {
            switch MetricCatalog.kind(of: name) {
            case .duration?: return name + "_ms"
            case .rate?: return name + "_bps"
            default: return name
            }
        }
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : s
        }
        var out = (["run", "configuration", "seed"] + manifest.dimensions + ["status", "wall_s"] + names.map(column))
            .joined(separator: ",") + "\n"
        for r in manifest.records {
            var row = [r.id, r.configurationID, String(r.seed)]
            for d in manifest.dimensions { row.append(field(r.parameters.first { $0.dimension == d }?.value ?? "")) }
            row.append(r.status.rawValue)
            row.append(r.wallSeconds.map { formatFixed($0, digits: 3) } ?? "")
            for n in names {
                guard let v = r.metric(n) else { row.append(""); continue }
                switch MetricCatalog.kind(of: n) {
                case .bytes?, .count?, .flag?: row.append(formatFixed(v, digits: 0))
                case .ratio?: row.append(formatFixed(v, digits: 6))
                default: row.append(formatFixed(v, digits: 3))
                }
            }
            out += row.joined(separator: ",") + "\n"
        }
        return out
    }

    /// The configurations' parameters that differ between configurations, as a
    /// short label (a dimension with one value says nothing in a row label).
    static func labels(_ summaries: [ConfigurationSummary], dimensions: [String], records: [SweepRecord]) -> [String: String] {
        var values: [String: Set<String>] = [:]
        for r in records { for p in r.parameters { values[p.dimension, default: []].insert(p.value) } }
        let varying = dimensions.filter { (values[$0]?.count ?? 0) > 1 }
        var out: [String: String] = [:]
        for s in summaries {
            let pairs = s.parameters.compactMap { p -> String? in
                let parts = p.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2, varying.contains(parts[0]) else { return nil }
                return parts[1].split(separator: "/").last.map(String.init)
            }
            out[s.key] = pairs.isEmpty ? s.id : pairs.joined(separator: " · ")
        }
        return out
    }

    /// A self-contained page: the sweep, a table of configurations with each
    /// metric's statistic, failed runs, and one distribution plot per metric.
    public static func html(_ manifest: SweepManifest, regression: RegressionReport? = nil) -> String {
        let summaries = ConfigurationSummary.summarize(manifest.records, statistic: manifest.statistic)
        let labels = labels(summaries, dimensions: manifest.dimensions, records: manifest.records)
        let names = metricNames(in: manifest.records)
        let failed = manifest.records.filter { $0.status == .failed }
        var h = """
        <!DOCTYPE html>
        <html xmlns="http://www.w3.org/1999/xhtml" lang="en">
        <head>
        <meta charset="utf-8" />
        <title>Wayside sweep \(xmlEscape(manifest.name))</title>
        <style>
        body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
        table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
        th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; white-space: nowrap; }
        th:first-child, td:first-child { text-align: left; }
        .fail { color: #b00; font-weight: bold; }
        .pass { color: #070; }
        svg { display: block; margin: 0.5em 0 1em; }
        svg text { font-size: 11px; fill: #333; }
        .note { color: #666; font-size: 0.9em; }
        </style>
        </head>
        <body>
        <h1>Wayside sweep \(xmlEscape(manifest.name))</h1>

        """
        let shardText = manifest.shards.count == 1 && manifest.shards[0] == .whole ? "" : ", shards \(manifest.shards.map(\.description).joined(separator: ", "))"
        h += "<p class=\"note\">\(xmlEscape(manifest.file)) · \(manifest.simulate ? "simulated" : "real") · \(manifest.records.count) of \(manifest.totalRuns) runs\(xmlEscape(shardText)) · "
        h += "fingerprint \(xmlEscape(manifest.fingerprint)) · statistic: \(manifest.statistic.rawValue) (flags: fraction of runs). Metrics as in docs/METRICS.md.</p>\n"
        if let regression {
            h += "<h2>Regression against \(xmlEscape(regression.baselineName))</h2>\n"
            h += regression.passed ? "<p class=\"pass\">no metric regressed beyond its tolerance</p>\n"
                : "<p class=\"fail\">\(regression.failures.count) check(s) failed</p>\n"
            h += "<pre>\(xmlEscape(regression.diff))</pre>\n"
        }
        // The table keeps to the metrics that say how a handover went (and those
        // with a tolerance); every metric has its plot below and its CSV column.
        let tabled = names.filter { n in SummaryTable.rows.contains(n) || manifest.tolerances.contains { $0.metric == n } }
        h += "<h2>Configurations</h2>\n<table>\n<tr><th>configuration</th><th>runs</th><th>failed</th>"
        for n in tabled { h += "<th>\(xmlEscape(n))</th>" }
        h += "</tr>\n"
        for s in summaries {
            h += "<tr><td><span title=\"\(xmlEscape(s.parameters.joined(separator: " ")))\">\(xmlEscape(labels[s.key] ?? s.id))</span> <span class=\"note\">\(xmlEscape(s.id))</span></td><td>\(s.runs)</td>"
            h += "<td\(s.failed > 0 ? " class=\"fail\"" : "")>\(s.failed)</td>"
            for n in tabled { h += "<td>\(s.metric(n).map { xmlEscape(display($0.value, metric: n)) } ?? "–")</td>" }
            h += "</tr>\n"
        }
        h += "</table>\n"
        if !failed.isEmpty {
            h += "<h2 class=\"fail\">Failed runs</h2>\n<table>\n<tr><th>run</th><th>why</th></tr>\n"
            for r in failed { h += "<tr><td>\(xmlEscape(r.id))</td><td>\(xmlEscape(r.message ?? ""))</td></tr>\n" }
            h += "</table>\n"
        }
        let thresholdFailures = manifest.records.filter { !$0.failedThresholds.isEmpty }
        if !thresholdFailures.isEmpty {
            h += "<h2 class=\"fail\">Runs failing the sweep's thresholds</h2>\n<table>\n<tr><th>run</th><th>thresholds</th></tr>\n"
            for r in thresholdFailures { h += "<tr><td>\(xmlEscape(r.id))</td><td>\(xmlEscape(r.failedThresholds.joined(separator: "; ")))</td></tr>\n" }
            h += "</table>\n"
        }
        h += "<p class=\"note\">Parameters of each configuration:</p>\n<ul class=\"note\">\n"
        for s in summaries { h += "<li>\(xmlEscape(s.id)): \(xmlEscape(s.parameters.joined(separator: " ")))</li>\n" }
        h += "</ul>\n"
        h += "<h2>Distributions</h2>\n"
        for n in names {
            var groups: [DistributionPlot.Group] = []
            var unit = ""
            for s in summaries {
                let rs = manifest.records.filter { $0.configurationKey == s.key }
                // Rates read better in Mbit/s.
                let scale = MetricCatalog.kind(of: n) == .rate ? 1e-6 : 1
                let values = rs.compactMap { $0.metric(n) }.map { $0 * scale }
                if unit.isEmpty { unit = rs.lazy.compactMap { $0.metrics.first { $0.name == n }?.unit }.first ?? "" }
                if scale != 1 { unit = "Mbit/s" }
                groups.append(DistributionPlot.Group(label: labels[s.key] ?? s.id, values: values, missing: rs.count - values.count))
            }
            h += DistributionPlot(title: n, unit: unit, groups: groups).svg
        }
        h += "</body>\n</html>\n"
        return h
    }

    /// A value in its metric's unit for tables: `412.5 ms`, `8.01 Mbit/s`, `0.92`.
    public static func display(_ v: Double, metric: String) -> String {
        switch MetricCatalog.kind(of: metric) {
        case .duration?: return formatFixed(v, digits: 1) + " ms"
        case .rate?: return formatFixed(v / 1e6, digits: 2) + " Mbit/s"
        case .bytes?: return formatFixed(v, digits: 0) + " B"
        case .count?: return v == v.rounded() ? formatFixed(v, digits: 0) : formatFixed(v, digits: 1)
        case .ratio?, .flag?: return formatFixed(v, digits: 3)
        case nil: return formatFixed(v, digits: 3)
        }
    }
}

/// Fixed decimals for CSV and tables (Core's formatter; "-" for a value it cannot print).
func formatFixed(_ v: Double, digits: Int) -> String { TextFormatting.fixed(v, digits: digits) ?? "-" }
