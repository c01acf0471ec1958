import Analysis
import Config
import Core

/// One axis of a sweep's matrix. The order of the cases is the order of
/// expansion (the first varies slowest; seeds vary fastest), and so the order
/// of runs, of shards and of summary columns.
public enum SweepDimension: String, CaseIterable, Hashable, Sendable {
    case route, topology, stack
    case pathManager = "path-manager"
    case scheduler
    case congestionControl = "congestion-control"
    case traffic, rate, size, direction, duration
}

/// A value of one dimension as the sweep file wrote it, with where it was written,
/// so that an executor refusing it can say file:line:column.
public struct SweepValue: Hashable, Sendable, CustomStringConvertible {
    public var text: String
    public var location: SourceLocation
    /// For `route` and `topology`: the file to read (resolved against the sweep file's folder).
    public var path: String?

    public init(text: String, location: SourceLocation, path: String? = nil) {
        self.text = text; self.location = location; self.path = path
    }

    public var description: String { text }
}

/// One point of the matrix: a configuration and a seed.
public struct SweepRun: Hashable, Sendable {
    /// Position in the whole expanded matrix (0-based); decides the shard.
    public var index: Int
    /// The configuration's dimensions present in the sweep, in `SweepDimension` order.
    public var parameters: [(dimension: SweepDimension, value: SweepValue)]
    public var seed: UInt64

    public static func == (a: SweepRun, b: SweepRun) -> Bool {
        a.index == b.index && a.seed == b.seed && a.parameters.map(\.dimension) == b.parameters.map(\.dimension)
            && a.parameters.map(\.value) == b.parameters.map(\.value)
    }

    public func hash(into h: inout Hasher) {
        h.combine(index); h.combine(seed)
        for p in parameters { h.combine(p.dimension); h.combine(p.value) }
    }

    public subscript(_ d: SweepDimension) -> SweepValue? { parameters.first { $0.dimension == d }?.value }

    /// `route=Routes/a.yaml stack=swift …`: the configuration's identity as text (seed excluded).
    public var configurationKey: String { SweepRun.key(parameters.map { ($0.dimension.rawValue, $0.value.text) }) }

    /// A short stable name of the configuration: the same parameters give the same
    /// id in every sweep file, whatever else the matrix holds.
    public var configurationID: String { SweepRun.configurationID(key: configurationKey) }

    /// Stable run id: configuration id and seed, e.g. `c1a2b3c4-s7`.
    public var id: String { "\(configurationID)-s\(seed)" }

    static func key(_ pairs: [(String, String)]) -> String {
        pairs.map { "\($0.0)=\($0.1)" }.joined(separator: " ")
    }

    /// 40 bits of FNV-1a: ten hex digits, no collision to fear in matrices of thousands.
    public static func configurationID(key: String) -> String { "c" + String(hex64(fnv1a64(key)).suffix(10)) }
}

/// A shard `K/N` (1 ≤ K ≤ N): the runs whose matrix index is K−1 modulo N.
/// Interleaving (not contiguous blocks) spreads every configuration over all
/// shards, so shards take about the same time.
public struct Shard: Hashable, Sendable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public static let whole = Shard(index: 1, count: 1)

    public init(index: Int, count: Int) { self.index = index; self.count = count }

    /// Parses `K/N`; the error says what was wrong.
    public static func parse(_ text: String) -> Result<Shard, ShardError> {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let k = Int(parts[0]), let n = Int(parts[1]) else {
            return .failure(ShardError(message: "'\(text)' is not K/N, e.g. 1/4"))
        }
        guard n >= 1 else { return .failure(ShardError(message: "'\(text)': the number of shards must be at least 1")) }
        guard (1...n).contains(k) else { return .failure(ShardError(message: "'\(text)': the shard must be from 1 to \(n)")) }
        return .success(Shard(index: k, count: n))
    }

    public func contains(_ run: SweepRun) -> Bool { run.index % count == index - 1 }

    public var description: String { "\(index)/\(count)" }
}

public struct ShardError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// How much worse than the baseline a metric may get (docs/SWEEPS.md):
/// `relative × |baseline| + absolute`, in the metric's unit of docs/METRICS.md.
public struct Tolerance: Hashable, Sendable, CustomStringConvertible {
    /// Which way is worse for the metric.
    public enum Worse: String, Hashable, Sendable, CaseIterable { case higher, lower, either }

    public var metric: String
    public var relative: Double
    public var absolute: Double
    public var worse: Worse
    /// As written (kept in sweep.json so that `wayside regress` needs no sweep file).
    public var text: String

    public init(metric: String, relative: Double, absolute: Double, worse: Worse, text: String) {
        self.metric = metric; self.relative = relative; self.absolute = absolute; self.worse = worse; self.text = text
    }

    public var description: String { "\(metric): \(text) (worse is \(worse.rawValue))" }

    /// The way a metric gets worse when nobody says otherwise: less is better for
    /// times, losses and retransmitted bytes; more for goodput, survival and
    /// redundancy; counts that merely describe the run may move either way.
    public static func defaultWorse(_ metric: String) -> Worse {
        switch metric {
        case "survived", "goodput_mean", "delivered_bytes", "delivered_ratio", "redundancy": return .lower
        case "flows", "ideal_bytes", "max_subflows", "join_attempts", "handovers": return .either
        default: return .higher
        }
    }

    /// Parses `10%`, `20ms`, `10% + 20ms`, `0` for a metric of `kind`.
    /// Ratios and flags are fractions, so for them `5%` is absolute (0.05).
    public static func parse(_ text: String, metric: String, kind: MetricKind, worse: Worse) -> Result<Tolerance, QuantityError> {
        var relative = 0.0, absolute = 0.0
        let terms = text.split(separator: "+", omittingEmptySubsequences: false).map { String($0).trimmingSpaces() }
        guard !terms.isEmpty, !terms.contains(where: \.isEmpty) else {
            return .failure(QuantityError(text: text, expected: "a tolerance such as 10%, 20ms or 10% + 20ms"))
        }
        for term in terms {
            do throws(QuantityError) {
                if term.hasSuffix("%") && kind != .ratio && kind != .flag {
                    guard let v = Double(term.dropLast().trimmingSpaces()), v.isFinite, v >= 0 else {
                        throw QuantityError(text: term, expected: "a percentage, e.g. 10%")
                    }
                    relative += v / 100
                } else {
                    absolute += try absoluteAmount(term, kind: kind)
                }
            } catch {
                return .failure(error)
            }
        }
        return .success(Tolerance(metric: metric, relative: relative, absolute: absolute, worse: worse, text: text))
    }

    static func absoluteAmount(_ term: String, kind: MetricKind) throws(QuantityError) -> Double {
        if term == "0" { return 0 }
        switch kind {
        case .duration:
            let i = try Quantity.nonNegativeInterval(term)
            return i.milliseconds
        case .rate: return Double(try Bitrate.parse(term).bitsPerSecond)
        case .bytes: return Double(try ByteSize.parse(term))
        case .count:
            guard let n = Int(term), n >= 0 else { throw QuantityError(text: term, expected: "a whole number") }
            return Double(n)
        case .ratio, .flag:
            return try Probability.parse(term).value
        }
    }

    /// How much worse `current` may be than `baseline`.
    public func allowance(baseline: Double) -> Double { relative * abs(baseline) + absolute }

    /// How much worse `current` is than `baseline` (positive: worse), by the metric's direction.
    public func worsening(current: Double, baseline: Double) -> Double {
        switch worse {
        case .higher: return current - baseline
        case .lower: return baseline - current
        case .either: return abs(current - baseline)
        }
    }
}

/// Which per-configuration number a regression compares.
public enum SweepStatistic: String, Hashable, Sendable, CaseIterable {
    case median, mean, min, max

    /// Flags are always compared as the fraction of runs where they held.
    public func of(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        switch self {
        case .mean: return values.reduce(0, +) / Double(values.count)
        case .min: return values.min()
        case .max: return values.max()
        case .median:
            let s = values.sorted()
            return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
        }
    }
}

/// A sweep file (docs/SWEEPS.md), decoded and expanded into runs.
public struct SweepPlan: Sendable {
    public var name: String
    public var file: String
    public var simulate: Bool
    /// The dimensions the file gives, each with its values in file order.
    public var dimensions: [(dimension: SweepDimension, values: [SweepValue])]
    public var seeds: [UInt64]
    /// Per-run thresholds (`[stack:]metric OP value`), checked on every run.
    public var assertions: [(text: String, location: SourceLocation)]
    public var statistic: SweepStatistic
    public var tolerances: [Tolerance]
    /// Every run of the matrix, in expansion order.
    public private(set) var runs: [SweepRun] = []

    public static let keys = ["name", "description", "simulate", "matrix", "seeds", "assert", "regression"]

    /// Checks that every run id is unique (a value written twice in one
    /// dimension would give two runs of the same configuration).
    mutating func expand() {
        var result: [SweepRun] = []
        var current: [(SweepDimension, SweepValue)] = []
        func walk(_ d: Int) {
            if d == dimensions.count {
                for seed in seeds {
                    result.append(SweepRun(index: result.count, parameters: current.map { ($0.0, $0.1) }, seed: seed))
                }
                return
            }
            for v in dimensions[d].values {
                current.append((dimensions[d].dimension, v))
                walk(d + 1)
                current.removeLast()
            }
        }
        walk(0)
        runs = result
    }

    /// The runs of one shard, in matrix order.
    public func runs(in shard: Shard) -> [SweepRun] { runs.filter(shard.contains) }

    /// Identifies the expanded matrix (every run's configuration and seed, and
    /// real or simulated): shards of one sweep carry the same fingerprint, so
    /// `wayside merge` can refuse folders of different sweeps.
    public var fingerprint: String {
        var text = "simulate=\(simulate)\n"
        for r in runs { text += "\(r.configurationKey) seed=\(r.seed)\n" }
        return hex64(fnv1a64(text))
    }

    /// Decodes a sweep file. `fileExists` checks route and topology files (a
    /// parameter so tests need no file system). Every problem is reported at
    /// once, each as file:line:column.
    public static func decode(text: String, file: String, fileExists: (String) -> Bool) throws(ConfigError) -> SweepPlan {
        let doc = try ConfigDocument(text: text, file: file)
        var plan = SweepPlan(name: baseName(file), file: file, simulate: false, dimensions: [], seeds: [1], assertions: [],
                             statistic: .median, tolerances: [])
        guard let root = doc.root.mapping(keys: keys, expected: "a sweep (a mapping with matrix, seeds, …)") else {
            try doc.finish()
            return plan
        }
        let folder = directory(of: file)
        if let v = root["name"], let s = v.identifier(expected: "a sweep name of letters, digits, '-', '_' or '.'") { plan.name = s }
        if let v = root["description"] { _ = v.string(expected: "a description") }
        if let v = root["simulate"], let b = v.bool() { plan.simulate = b }

        if let m = root.required("matrix", expected: "the dimensions to sweep, e.g. route: [...]"),
           let matrix = m.mapping(keys: SweepDimension.allCases.map(\.rawValue), expected: "a mapping of dimensions to lists of values") {
            if matrix.entries.isEmpty { m.report("expected at least one dimension, e.g. route: [Routes/highway-2rsu-30s.yaml]") }
            for d in SweepDimension.allCases {
                guard let v = matrix[d.rawValue] else { continue }
                let items = v.node.sequence != nil ? (v.sequence() ?? []) : [v]
                if items.isEmpty { v.report("expected at least one value for '\(d.rawValue)'") }
                var values: [SweepValue] = []
                for item in items {
                    guard let s = item.string(expected: "a value for '\(d.rawValue)'") else { continue }
                    let text = s.trimmingSpaces()
                    if values.contains(where: { $0.text == text }) {
                        item.report("'\(text)' is already a value of '\(d.rawValue)'; each value once (seeds repeat runs)")
                        continue
                    }
                    var value = SweepValue(text: text, location: item.location)
                    guard check(d, value: item, text: text) else { continue }
                    if d == .route || d == .topology {
                        let folderName = d == .route ? "Routes" : "Topologies"
                        let path = resolve(text, beside: folder, folder: folderName, fileExists: fileExists)
                        if !fileExists(path) {
                            item.report("no \(d.rawValue) file '\(text)' (looked for \(path))")
                            continue
                        }
                        value.path = path
                    }
                    values.append(value)
                }
                plan.dimensions.append((d, values))
            }
            if matrix["route"] == nil, !matrix.entries.isEmpty {
                matrix.value.report("missing key 'route' in 'matrix': expected the route files to drive, e.g. route: [highway-2rsu-30s]")
            }
        }

        if let v = root["seeds"] { plan.seeds = seeds(v) ?? plan.seeds }
        if let v = root["assert"], let list = v.sequence(expected: "a list of thresholds, e.g. 'max_gap < 600ms'") {
            for item in list {
                guard let s = item.string(expected: "a threshold") else { continue }
                do {
                    _ = try Threshold.parse(s, origin: item.location.description)
                    plan.assertions.append((s, item.location))
                } catch { item.report("threshold '\(s)': column \(error.column): \(error.message)") }
            }
        }
        if let v = root["regression"], let r = v.mapping(keys: ["statistic", "metrics"], expected: "statistic and metrics tolerances") {
            if let s = r["statistic"], let st = s.choice(SweepStatistic.self, what: "a statistic") { plan.statistic = st }
            if let ms = r.required("metrics", expected: "tolerances per metric, e.g. max_gap: 10% + 20ms"),
               let metrics = ms.mapping(expected: "tolerances per metric, e.g. max_gap: 10% + 20ms") {
                let names = MetricCatalog.kinds.map(\.name)
                for entry in metrics.entries {
                    guard let kind = MetricCatalog.kind(of: entry.key) else {
                        doc.diagnostics.report("unknown metric '\(entry.key)'\(Suggestion.didYouMean(entry.key, among: names)) (metrics: docs/METRICS.md)",
                                               at: entry.keyLocation)
                        continue
                    }
                    if let t = tolerance(entry.value, metric: entry.key, kind: kind) { plan.tolerances.append(t) }
                }
            }
        }
        try doc.finish()
        plan.expand()
        if plan.runs.isEmpty {
            throw ConfigError(at: root.location, "the matrix expands to no run")
        }
        return plan
    }

    /// The values every executor reads the same way are checked here; stacks,
    /// path managers, schedulers and congestion controls depend on the executor
    /// (real or simulated), which checks them before any run starts.
    static func check(_ d: SweepDimension, value: ConfigValue, text: String) -> Bool {
        switch d {
        case .traffic: return value.choice(among: ["bulk", "cbr", "rr"], what: "a traffic kind") != nil
        case .direction: return value.choice(among: ["down", "up", "both"], what: "a direction") != nil
        case .rate: return value.int(in: 1...1_000_000) != nil
        case .size:
            guard let s = value.byteSize() else { return false }
            if s < 24 || s > 16 << 20 { value.report("message size \(s) B is outside 24 B ... 16 MiB"); return false }
            return true
        case .duration:
            guard let d = value.nonNegativeInterval() else { return false }
            if d == .zero { value.report("expected a positive duration"); return false }
            return true
        case .route, .topology:
            if text.isEmpty || text.contains(" ") { value.reportExpected("a file name without spaces"); return false }
            return true
        case .stack, .pathManager, .scheduler, .congestionControl:
            return value.identifier(expected: "a name of letters, digits, '-', '_' or '.'") != nil
        }
    }

    static func seeds(_ v: ConfigValue) -> [UInt64]? {
        let what = "a list of seeds, e.g. [1, 2, 3], or {from: 1, count: 25}"
        if v.node.sequence != nil {
            guard let items = v.sequence(expected: what) else { return nil }
            var seeds: [UInt64] = []
            for item in items {
                guard let n = item.int(in: 0...Int.max) else { continue }
                if seeds.contains(UInt64(n)) { item.report("seed \(n) is already listed") } else { seeds.append(UInt64(n)) }
            }
            if items.isEmpty { v.report("expected at least one seed") }
            return seeds.isEmpty ? nil : seeds
        }
        guard let m = v.mapping(keys: ["from", "count"], expected: what) else { return nil }
        let from = m["from"].flatMap { $0.int(in: 0...Int.max - 100_000) } ?? 1
        guard let count = m.required("count", expected: "how many seeds")?.int(in: 1...100_000) else { return nil }
        return (0..<count).map { UInt64(from + $0) }
    }

    static func tolerance(_ v: ConfigValue, metric: String, kind: MetricKind) -> Tolerance? {
        var worse = Tolerance.defaultWorse(metric)
        var textValue = v
        if v.node.mapping != nil {
            guard let m = v.mapping(keys: ["tolerance", "worse"], expected: "a tolerance, or {tolerance: 10%, worse: higher}") else { return nil }
            if let w = m["worse"], let c = w.choice(Tolerance.Worse.self, what: "which way is worse") { worse = c }
            guard let t = m.required("tolerance", expected: "e.g. 10% + 20ms") else { return nil }
            textValue = t
        }
        guard let text = textValue.string(expected: "a tolerance such as 10%, 20ms or 10% + 20ms") else { return nil }
        switch Tolerance.parse(text, metric: metric, kind: kind, worse: worse) {
        case .success(let t): return t
        case .failure(let e): textValue.report("tolerance of '\(metric)': \(e.description)"); return nil
        }
    }

    /// Relative route/topology names as `Experiment.load` reads them: a path with
    /// a slash from the sweep file's folder; a bare name from the sweep file's
    /// folder, else `Routes/` or `Topologies/` beside it, else in the working directory.
    static func resolve(_ text: String, beside dir: String, folder: String, fileExists: (String) -> Bool) -> String {
        if text.hasPrefix("/") { return text }
        let base = dir.isEmpty ? "." : dir
        if text.contains("/") {
            let beside = base + "/" + text
            return fileExists(beside) || !fileExists(text) ? normalise(beside) : text
        }
        let name = text.hasSuffix(".yaml") || text.hasSuffix(".yml") ? text : text + ".yaml"
        let sameFolder = normalise(base + "/" + name)
        if fileExists(sameFolder) { return sameFolder }
        let nearby = normalise(base + "/../\(folder)/\(name)")
        if fileExists(nearby) { return nearby }
        return "\(folder)/\(name)"
    }

    /// Removes `.` and `dir/..` pairs from a relative or absolute path.
    static func normalise(_ path: String) -> String {
        var out: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = out.last, last != ".." { out.removeLast(); continue }
            out.append(part)
        }
        let joined = out.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    static func directory(of file: String) -> String {
        guard let slash = file.lastIndex(of: "/") else { return "" }
        return String(file[..<slash])
    }

    static func baseName(_ file: String) -> String {
        var name = file.split(separator: "/").last.map(String.init) ?? file
        for ext in [".yaml", ".yml"] where name.hasSuffix(ext) { name.removeLast(ext.count) }
        return name
    }
}

/// 64-bit FNV-1a: stable across runs, machines and Swift versions (Hasher is seeded per process).
func fnv1a64(_ s: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
    return h
}

func hex64(_ v: UInt64) -> String {
    let digits = Array("0123456789abcdef")
    return String((0..<16).map { digits[Int((v >> (60 - 4 * UInt64($0))) & 0xF)] })
}

extension String {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}

extension Substring {
    func trimmingSpaces() -> String { String(self).trimmingSpaces() }
}
