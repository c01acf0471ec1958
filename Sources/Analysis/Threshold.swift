import Core

/// What kind of value a metric is, which decides how a threshold's right-hand side is read.
public enum MetricKind: String, Hashable, Sendable {
    case duration, rate, bytes, count, ratio, flag

    var expected: String {
        switch self {
        case .duration: return "a duration with a unit, e.g. 600ms"
        case .rate: return "a rate with a unit, e.g. 5mbit"
        case .bytes: return "a size, e.g. 64KiB or 1500"
        case .count: return "a whole number"
        case .ratio: return "a fraction or a percentage, e.g. 0.9 or 90%"
        case .flag: return "true or false"
        }
    }
}

/// Every metric a threshold may name (docs/METRICS.md has the definitions).
public enum MetricCatalog {
    public static let kinds: [(name: String, kind: MetricKind)] = [
        ("flows", .count), ("survived", .flag), ("max_gap", .duration), ("total_stall", .duration),
        ("goodput_mean", .rate), ("delivered_bytes", .bytes), ("ideal_bytes", .bytes), ("delivered_ratio", .ratio),
        ("redundancy", .duration), ("reinjected_bytes", .bytes), ("max_subflows", .count),
        ("join_attempts", .count), ("handovers", .count), ("max_handover_gap", .duration),
        ("max_join_latency", .duration), ("max_move_latency", .duration),
        ("latency_p50", .duration), ("latency_p90", .duration), ("latency_p99", .duration),
        ("latency_p999", .duration), ("latency_max", .duration), ("messages_lost", .count),
    ]

    public static func kind(of name: String) -> MetricKind? { kinds.first { $0.name == name }?.kind }
}

public enum ComparisonOperator: String, Hashable, Sendable, CaseIterable {
    case lessOrEqual = "<=", greaterOrEqual = ">=", equal = "==", notEqual = "!=", less = "<", greater = ">"

    func holds(_ order: Int) -> Bool { // order: -1, 0, 1 = actual compared with the limit
        switch self {
        case .less: return order < 0
        case .lessOrEqual: return order <= 0
        case .greater: return order > 0
        case .greaterOrEqual: return order >= 0
        case .equal: return order == 0
        case .notEqual: return order != 0
        }
    }
}

/// A threshold that did not parse: names where it came from (the flag or file:line),
/// the expression, and the column in it.
public struct ThresholdError: Error, Equatable, Sendable, CustomStringConvertible {
    public var origin: String
    public var expression: String
    public var column: Int
    public var message: String

    public var description: String { "\(origin) '\(expression)': column \(column): \(message)" }
}

/// `[stack:]metric OP value`, e.g. `max_gap < 600ms`, `kernel-tcp:survived == false`.
public struct Threshold: Hashable, Sendable, CustomStringConvertible {
    public var expression: String
    /// Only runs of this stack are checked; nil means every run.
    public var stack: String?
    public var metric: String
    public var op: ComparisonOperator
    public var limit: MetricValue

    public var description: String { expression }

    /// `origin` says where the expression came from (`--assert`, `experiment.yaml:14`) for the error.
    public static func parse(_ text: String, origin: String = "--assert") throws(ThresholdError) -> Threshold {
        let chars = Array(text)
        var i = 0
        func fail(_ column: Int, _ message: String) -> ThresholdError {
            ThresholdError(origin: origin, expression: text, column: column, message: message)
        }
        func skipSpaces() { while i < chars.count, chars[i] == " " || chars[i] == "\t" { i += 1 } }
        func isNameChar(_ c: Character) -> Bool { c.isLetter || c.isNumber || c == "_" || c == "-" || c == "." }

        skipSpaces()
        let nameStart = i
        while i < chars.count, isNameChar(chars[i]) { i += 1 }
        guard i > nameStart else { throw fail(nameStart + 1, "expected a metric name, e.g. max_gap") }
        var stack: String?
        var metricStart = nameStart
        var metric = String(chars[nameStart..<i])
        if i < chars.count, chars[i] == ":" {
            stack = metric
            i += 1
            metricStart = i
            while i < chars.count, isNameChar(chars[i]) { i += 1 }
            guard i > metricStart else { throw fail(metricStart + 1, "expected a metric name after '\(stack!):'") }
            metric = String(chars[metricStart..<i])
        }
        guard let kind = MetricCatalog.kind(of: metric) else {
            let suggestion = closest(metric, among: MetricCatalog.kinds.map(\.name))
            throw fail(metricStart + 1, "unknown metric '\(metric)'" + (suggestion.map { "; did you mean '\($0)'?" } ?? "")
                       + " (known: \(MetricCatalog.kinds.map(\.name).joined(separator: ", ")))")
        }
        skipSpaces()
        let opStart = i
        var op: ComparisonOperator?
        for candidate in ComparisonOperator.allCases {
            let s = Array(candidate.rawValue)
            if i + s.count <= chars.count, Array(chars[i..<(i + s.count)]) == s { op = candidate; i += s.count; break }
        }
        guard let op else { throw fail(opStart + 1, "expected a comparison (<, <=, >, >=, ==, !=) after '\(metric)'") }
        if kind == .flag, op != .equal, op != .notEqual {
            throw fail(opStart + 1, "'\(metric)' is true or false: compare it with == or !=")
        }
        skipSpaces()
        let valueStart = i
        let valueText = String(chars[valueStart...]).trimmingCharacters()
        guard !valueText.isEmpty else { throw fail(valueStart + 1, "expected \(kind.expected)") }
        let limit: MetricValue
        do throws(QuantityError) {
            switch kind {
            case .duration: limit = .duration(try Quantity.interval(valueText))
            case .rate: limit = .rate(Double(try Bitrate.parse(valueText).bitsPerSecond))
            case .bytes: limit = .bytes(Int64(try ByteSize.parse(valueText)))
            case .ratio: limit = .ratio(try Probability.parse(valueText).value)
            case .count:
                guard let n = Int(valueText), n >= 0 else { throw QuantityError(text: valueText, expected: kind.expected) }
                limit = .count(n)
            case .flag:
                switch valueText {
                case "true": limit = .flag(true)
                case "false": limit = .flag(false)
                default: throw QuantityError(text: valueText, expected: kind.expected)
                }
            }
        } catch {
            throw fail(valueStart + 1, "'\(metric)' is \(kind == .flag ? "a flag" : "a \(kind.rawValue)"): \(error.description)")
        }
        return Threshold(expression: text.trimmingCharacters(), stack: stack, metric: metric, op: op, limit: limit)
    }

    /// -1, 0 or 1 as `a` is below, at or above `b`; nil when the kinds differ.
    static func compare(_ a: MetricValue, _ b: MetricValue) -> Int? {
        func order<T: Comparable>(_ x: T, _ y: T) -> Int { x < y ? -1 : (x == y ? 0 : 1) }
        switch (a, b) {
        case let (.duration(x), .duration(y)): return order(x, y)
        case let (.rate(x), .rate(y)): return order(x, y)
        case let (.bytes(x), .bytes(y)): return order(x, y)
        case let (.count(x), .count(y)): return order(x, y)
        case let (.ratio(x), .ratio(y)): return order(x, y)
        case let (.flag(x), .flag(y)): return x == y ? 0 : (x ? 1 : -1)
        default: return nil
        }
    }

    public func check(_ run: RunResult) -> ThresholdCheck {
        guard let actual = run.metric(metric) else {
            return ThresholdCheck(threshold: self, stack: run.stack, actual: nil, passed: false,
                                  message: "\(metric) was not measured in this run")
        }
        guard let order = Threshold.compare(actual, limit) else {
            return ThresholdCheck(threshold: self, stack: run.stack, actual: actual, passed: false,
                                  message: "\(metric) is not comparable with \(limit)")
        }
        let passed = op.holds(order)
        return ThresholdCheck(threshold: self, stack: run.stack, actual: actual, passed: passed,
                              message: "\(metric) = \(actual)" + (passed ? "" : ", expected \(op.rawValue) \(limit)"))
    }

    /// Checks every run this threshold applies to. A threshold that names a stack
    /// with no run fails, so a typo in a stack name is not a silent pass.
    public static func evaluate(_ thresholds: [Threshold], against runs: [RunResult]) -> [ThresholdCheck] {
        var checks: [ThresholdCheck] = []
        for t in thresholds {
            let applicable = runs.filter { t.stack == nil || $0.stack == t.stack }
            if applicable.isEmpty {
                checks.append(ThresholdCheck(threshold: t, stack: t.stack ?? "-", actual: nil, passed: false,
                                             message: "no run of stack '\(t.stack ?? "-")' (runs: \(runs.map(\.stack).joined(separator: ", ")))"))
            }
            for r in applicable { checks.append(t.check(r)) }
        }
        return checks
    }
}

public struct ThresholdCheck: Hashable, Sendable {
    public var threshold: Threshold
    public var stack: String
    public var actual: MetricValue?
    public var passed: Bool
    public var message: String
}

extension ThresholdCheck {
    /// JUnit XML as CI systems read it: one testsuite, one testcase per check.
    public static func junitXML(_ checks: [ThresholdCheck], suite: String = "wayside thresholds") -> String {
        let failures = checks.filter { !$0.passed }.count
        var x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        x += "<testsuites tests=\"\(checks.count)\" failures=\"\(failures)\">\n"
        x += "  <testsuite name=\"\(xmlEscape(suite))\" tests=\"\(checks.count)\" failures=\"\(failures)\" errors=\"0\">\n"
        for c in checks {
            x += "    <testcase classname=\"\(xmlEscape(c.stack))\" name=\"\(xmlEscape(c.threshold.expression))\""
            if c.passed {
                x += "><system-out>\(xmlEscape(c.message))</system-out></testcase>\n"
            } else {
                x += ">\n      <failure message=\"\(xmlEscape(c.message))\" type=\"threshold\">\(xmlEscape(c.message))</failure>\n    </testcase>\n"
            }
        }
        x += "  </testsuite>\n</testsuites>\n"
        return x
    }
}

/// Escapes text for XML and HTML content and attribute values.
public func xmlEscape(_ s: String) -> String {
    var out = ""
    out.reserveCapacity(s.utf8.count)
    for c in s.unicodeScalars {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default:
            // XML 1.0 forbids most control characters even escaped; drop them.
            if c.value < 0x20 && c != "\n" && c != "\t" && c != "\r" { continue }
            out.unicodeScalars.append(c)
        }
    }
    return out
}

/// The candidate within edit distance 2 of `word`, for "did you mean".
func closest(_ word: String, among candidates: [String]) -> String? {
    func distance(_ a: [Character], _ b: [Character]) -> Int {
        var prev = Array(0...b.count)
        for (i, ca) in a.enumerated() {
            var cur = [i + 1] + [Int](repeating: 0, count: b.count)
            for (j, cb) in b.enumerated() {
                cur[j + 1] = min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (ca == cb ? 0 : 1))
            }
            prev = cur
        }
        return prev[b.count]
    }
    let w = Array(word)
    let best = candidates.map { ($0, distance(w, Array($0))) }.min { $0.1 < $1.1 }
    return best.flatMap { $0.1 <= 2 ? $0.0 : nil }
}

extension String {
    func trimmingCharacters() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
