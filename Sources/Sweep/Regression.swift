import Analysis
import Config
import Core

/// A stored baseline (schema `wayside.sweep-baseline`, docs/SWEEPS.md): per
/// configuration, per metric, the statistic over its seeds. `wayside sweep
/// --write-baseline FILE` writes it; `--baseline FILE` and `wayside regress` read it.
public struct SweepBaseline: Sendable {
    public static let schema = "wayside.sweep-baseline"
    public static let version = 1

    public var name: String
    public var fingerprint: String
    public var statistic: SweepStatistic
    public var configurations: [ConfigurationSummary]

    public init(manifest: SweepManifest) {
        name = manifest.name
        fingerprint = manifest.fingerprint
        statistic = manifest.statistic
        configurations = ConfigurationSummary.summarize(manifest.records, statistic: manifest.statistic)
    }

    public init(name: String, fingerprint: String, statistic: SweepStatistic, configurations: [ConfigurationSummary]) {
        self.name = name; self.fingerprint = fingerprint; self.statistic = statistic; self.configurations = configurations
    }

    public func render() -> String {
        JSONValue.object([
            ("schema", .string(Self.schema)),
            ("version", .int(Int64(Self.version))),
            ("sweep", .string(name)),
            ("fingerprint", .string(fingerprint)),
            ("statistic", .string(statistic.rawValue)),
            ("configurations", .array(configurations.map { c in
                .object([
                    ("configuration", .string(c.id)),
                    ("parameters", .array(c.parameters.map { .string($0) })),
                    ("runs", .int(Int64(c.runs))),
                    ("failed", .int(Int64(c.failed))),
                    ("metrics", .object(c.metrics.map { m in
                        (m.name, .object([("value", .double(m.value.value)), ("unit", .string(m.value.unit)),
                                          ("measured", .int(Int64(m.value.measured))),
                                          ("min", .double(m.value.min)), ("max", .double(m.value.max))]))
                    })),
                ])
            })),
        ]).pretty() + "\n"
    }

    public static func parse(_ text: String) -> Result<SweepBaseline, ManifestError> {
        let v: JSONValue
        do { v = try JSONValue.parse(text) } catch { return .failure(ManifestError("not JSON: \(error.description)")) }
        guard v["schema"]?.stringValue == schema else { return .failure(ManifestError("not a sweep baseline (schema is not '\(schema)')")) }
        guard v["version"]?.int64Value == Int64(version) else {
            return .failure(ManifestError("baseline version \(v["version"]?.serialized ?? "missing"); this wayside reads version \(version)"))
        }
        guard let name = v["sweep"]?.stringValue, let fp = v["fingerprint"]?.stringValue,
              let st = v["statistic"]?.stringValue, let statistic = SweepStatistic(rawValue: st),
              let confs = v["configurations"]?.arrayValue else {
            return .failure(ManifestError("a field of the baseline is missing or of the wrong type"))
        }
        var out: [ConfigurationSummary] = []
        for c in confs {
            guard let id = c["configuration"]?.stringValue, let params = c["parameters"]?.arrayValue?.compactMap(\.stringValue),
                  let runs = c["runs"]?.int64Value, let failed = c["failed"]?.int64Value, let ms = c["metrics"]?.objectValue else {
                return .failure(ManifestError("bad configuration entry \(String(c.serialized.prefix(120)))"))
            }
            var metrics: [(String, ConfigurationSummary.Value)] = []
            for (name, m) in ms {
                guard let value = m["value"]?.doubleValue, let unit = m["unit"]?.stringValue, let measured = m["measured"]?.int64Value,
                      let lo = m["min"]?.doubleValue, let hi = m["max"]?.doubleValue else {
                    return .failure(ManifestError("bad metric '\(name)' of configuration \(id)"))
                }
                metrics.append((name, .init(value: value, unit: unit, measured: Int(measured), min: lo, max: hi)))
            }
            let key = params.joined(separator: " ")
            out.append(ConfigurationSummary(id: id, key: key, parameters: params, runs: Int(runs), failed: Int(failed), metrics: metrics))
        }
        return .success(SweepBaseline(name: name, fingerprint: fp, statistic: statistic, configurations: out))
    }
}

/// `dimension=current:baseline`: compare the runs whose `dimension` is
/// `current` with the baseline's configuration where it was `baseline` — to ask
/// whether the check would catch a change of default (a worse scheduler, a
/// coverage gap where there was overlap).
public struct Substitution: Hashable, Sendable, CustomStringConvertible {
    public var dimension: String
    public var current: String
    public var baseline: String

    public static func parse(_ text: String) -> Result<Substitution, ShardError> {
        guard let eq = text.firstIndex(of: "="), let colon = text[eq...].firstIndex(of: ":") else {
            return .failure(ShardError(message: "'\(text)' is not DIMENSION=CURRENT:BASELINE, e.g. scheduler=round-robin:min-rtt"))
        }
        let d = String(text[..<eq]), c = String(text[text.index(after: eq)..<colon]), b = String(text[text.index(after: colon)...])
        guard SweepDimension(rawValue: d) != nil else {
            let names = SweepDimension.allCases.map(\.rawValue)
            return .failure(ShardError(message: "'\(text)': unknown dimension '\(d)'" + (closestName(d, among: names).map { "; did you mean '\($0)'?" } ?? "")))
        }
        guard !c.isEmpty, !b.isEmpty else { return .failure(ShardError(message: "'\(text)': both values are needed")) }
        return .success(Substitution(dimension: d, current: c, baseline: b))
    }

    public var description: String { "\(dimension)=\(current):\(baseline)" }
}

/// One metric of one configuration against the baseline.
public struct RegressionCheck: Hashable, Sendable {
    public var configuration: String
    public var label: String
    public var metric: String
    public var baseline: Double?
    public var current: Double?
    public var allowance: Double
    public var worsening: Double
    public var passed: Bool
    public var message: String
    /// The tolerance as written in the sweep file (empty for the check of failed runs).
    public var tolerance: String = ""
}

/// The outcome of comparing a sweep with a baseline.
public struct RegressionReport: Sendable {
    public var baselineName: String
    public var checks: [RegressionCheck]
    /// Notes that are not failures: configurations only on one side.
    public var notes: [String]

    public var failures: [RegressionCheck] { checks.filter { !$0.passed } }
    public var passed: Bool { failures.isEmpty && !checks.isEmpty }

    /// Compares each configuration of `current` with the baseline's of the same
    /// parameters (after `substitutions`), for every metric with a tolerance.
    /// A configuration with failed runs fails; a metric measured in fewer runs
    /// than in the baseline fails (e.g. a join that never happened).
    public static func compare(current: SweepManifest, baseline: SweepBaseline, tolerances: [Tolerance],
                               substitutions: [Substitution] = []) -> RegressionReport {
        let summaries = ConfigurationSummary.summarize(current.records, statistic: baseline.statistic)
        var byKey: [String: ConfigurationSummary] = [:]
        for b in baseline.configurations { byKey[b.key] = b }
        var checks: [RegressionCheck] = []
        var notes: [String] = []
        var matched = Set<String>()
        for s in summaries {
            let params = s.parameters.map { p -> String in
                for sub in substitutions where p == "\(sub.dimension)=\(sub.current)" { return "\(sub.dimension)=\(sub.baseline)" }
                return p
            }
            let key = params.joined(separator: " ")
            let label = s.key == key ? s.key : "\(s.key) (as \(key))"
            guard let base = byKey[key] else {
                notes.append("new configuration, no baseline: \(label)")
                continue
            }
            matched.insert(key)
            if s.failed > 0 {
                checks.append(RegressionCheck(configuration: s.id, label: label, metric: "runs", baseline: Double(base.failed), current: Double(s.failed),
                                              allowance: 0, worsening: Double(s.failed), passed: false,
                                              message: "\(s.failed) of \(s.runs) runs failed"))
            }
            for t in tolerances {
                let bv = base.metric(t.metric), cv = s.metric(t.metric)
                switch (bv, cv) {
                case (nil, nil):
                    continue
                case (nil, let c?):
                    notes.append("\(label): \(t.metric) = \(SweepSummary.display(c.value, metric: t.metric)) has no baseline value")
                    continue
                case (let b?, nil):
                    checks.append(RegressionCheck(configuration: s.id, label: label, metric: t.metric, baseline: b.value, current: nil,
                                                  allowance: t.allowance(baseline: b.value), worsening: .infinity, passed: false,
                                                  message: "not measured in any run (baseline: \(SweepSummary.display(b.value, metric: t.metric)) in \(b.measured) runs)",
                                                  tolerance: t.text))
                case (let b?, let c?):
                    let allowance = t.allowance(baseline: b.value)
                    let worsening = t.worsening(current: c.value, baseline: b.value)
                    // A small slack absorbs printing round-off of the stored baseline.
                    var passed = worsening <= allowance + 1e-9 * max(1, abs(b.value))
                    let bFraction = Double(b.measured) / Double(max(1, base.runs - base.failed))
                    let cFraction = Double(c.measured) / Double(max(1, s.runs - s.failed))
                    var message = "\(SweepSummary.display(c.value, metric: t.metric)) vs baseline \(SweepSummary.display(b.value, metric: t.metric))"
                    message += " (worse by \(SweepSummary.display(max(0, worsening), metric: t.metric)), allowed \(SweepSummary.display(allowance, metric: t.metric)): \(t.text))"
                    if cFraction + 1e-9 < bFraction {
                        passed = false
                        message += "; measured in \(c.measured) of \(s.runs - s.failed) runs, baseline \(b.measured) of \(base.runs - base.failed)"
                    }
                    checks.append(RegressionCheck(configuration: s.id, label: label, metric: t.metric, baseline: b.value, current: c.value,
                                                  allowance: allowance, worsening: worsening, passed: passed, message: message,
                                                  tolerance: t.text))
                }
            }
        }
        for b in baseline.configurations where !matched.contains(b.key) {
            notes.append("in the baseline but not in this sweep: \(b.key)")
        }
        if checks.isEmpty { notes.append("no configuration of this sweep has a baseline: nothing was compared") }
        return RegressionReport(baselineName: baseline.name, checks: checks, notes: notes)
    }

    /// A readable diff: failures first (`-` baseline, `+` now), then a count of
    /// what held, then notes.
    public var diff: String {
        var out = ""
        let grouped = Dictionary(grouping: failures, by: \.label)
        for label in failures.map(\.label).reduce(into: [String](), { if !$0.contains($1) { $0.append($1) } }) {
            out += "REGRESSED \(label)\n"
            for c in grouped[label]! {
                guard let b = c.baseline, let now = c.current, c.metric != "runs", c.message.contains("worse by") else {
                    out += "  ! \(c.metric): \(c.message)\n"
                    continue
                }
                out += "  - \(c.metric) \(SweepSummary.display(b, metric: c.metric))\n"
                out += "  + \(c.metric) \(SweepSummary.display(now, metric: c.metric))"
                out += "    worse by \(SweepSummary.display(max(0, c.worsening), metric: c.metric)), allowed \(SweepSummary.display(c.allowance, metric: c.metric)) (\(c.tolerance))"
                // A fraction of runs that measured the metric fell: say so after the numbers.
                if let note = c.message.range(of: "; measured in") { out += String(c.message[note.lowerBound...]) }
                out += "\n"
            }
        }
        let held = checks.count - failures.count
        out += "\(held) of \(checks.count) checks within tolerance"
        out += Set(checks.map(\.configuration)).count > 0 ? " over \(Set(checks.map(\.configuration)).count) configuration(s)\n" : "\n"
        for n in notes { out += "note: \(n)\n" }
        return out
    }
}

func closestName(_ word: String, among names: [String]) -> String? { Suggestion.closest(to: word, among: names) }

/// JUnit XML for a sweep: a testsuite of runs (a run fails when it could not
/// complete or broke one of the sweep's thresholds) and, with a baseline, a
/// testsuite of regression checks (one testcase per configuration and metric).
public enum SweepJUnit {
    public static func xml(manifest: SweepManifest, regression: RegressionReport?) -> String {
        let runFailures = manifest.records.filter { $0.status == .failed || !$0.failedThresholds.isEmpty }.count
        let checks = regression?.checks ?? []
        let regressionFailures = regression?.failures.count ?? 0
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites tests=\"\(manifest.records.count + checks.count)\" failures=\"\(runFailures + regressionFailures)\">\n"
        x += "  <testsuite name=\"wayside sweep \(xmlEscape(manifest.name)) runs\" tests=\"\(manifest.records.count)\" failures=\"\(runFailures)\" errors=\"0\">\n"
        for r in manifest.records {
            x += "    <testcase classname=\"\(xmlEscape(r.configurationKey))\" name=\"\(xmlEscape(r.id))\""
            if let t = r.wallSeconds { x += " time=\"\(formatFixed(t, digits: 3))\"" }
            let why = r.status == .failed ? (r.message ?? "failed") : r.failedThresholds.joined(separator: "; ")
            if r.status == .ok && r.failedThresholds.isEmpty {
                x += " />\n"
            } else {
                x += ">\n      <failure message=\"\(xmlEscape(why))\" type=\"\(r.status == .failed ? "run" : "threshold")\">\(xmlEscape(why))</failure>\n    </testcase>\n"
            }
        }
        x += "  </testsuite>\n"
        if let regression {
            x += "  <testsuite name=\"wayside sweep \(xmlEscape(manifest.name)) regression against \(xmlEscape(regression.baselineName))\" tests=\"\(checks.count)\" failures=\"\(regressionFailures)\" errors=\"0\">\n"
            for c in checks {
                x += "    <testcase classname=\"\(xmlEscape(c.label))\" name=\"\(xmlEscape(c.metric))\""
                if c.passed {
                    x += "><system-out>\(xmlEscape(c.message))</system-out></testcase>\n"
                } else {
                    x += ">\n      <failure message=\"\(xmlEscape(c.message))\" type=\"regression\">\(xmlEscape(c.message))</failure>\n    </testcase>\n"
                }
            }
            x += "  </testsuite>\n"
        }
        x += "</testsuites>\n"
        return x
    }
}
