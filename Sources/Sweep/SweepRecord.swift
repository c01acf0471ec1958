import Analysis
import Core

/// What one run of a sweep gave: its configuration, whether it ran, and its
/// run-level metrics (docs/METRICS.md) as numbers in their units.
public struct SweepRecord: Hashable, Sendable {
    public enum Status: String, Hashable, Sendable {
        /// The run completed and was analysed (its thresholds may still have failed).
        case ok
        /// The run could not be completed; `message` says why.
        case failed
    }

    public struct Metric: Hashable, Sendable {
        public var name: String
        public var value: Double
        public var unit: String
        public init(name: String, value: Double, unit: String) { self.name = name; self.value = value; self.unit = unit }
    }

    public var id: String
    public var configurationID: String
    public var index: Int
    public var seed: UInt64
    public var parameters: [(dimension: String, value: String)]
    public var status: Status
    public var message: String?
    public var wallSeconds: Double?
    public var metrics: [Metric]
    /// Per-run thresholds of the sweep file that failed, as `expression: message`.
    public var failedThresholds: [String]

    public init(run: SweepRun, status: Status, message: String? = nil, wallSeconds: Double? = nil,
                metrics: [Metric] = [], failedThresholds: [String] = []) {
        id = run.id; configurationID = run.configurationID; index = run.index; seed = run.seed
        parameters = run.parameters.map { ($0.dimension.rawValue, $0.value.text) }
        self.status = status; self.message = message; self.wallSeconds = wallSeconds
        self.metrics = metrics; self.failedThresholds = failedThresholds
    }

    init(id: String, configurationID: String, index: Int, seed: UInt64, parameters: [(String, String)], status: Status,
         message: String?, wallSeconds: Double?, metrics: [Metric], failedThresholds: [String]) {
        self.id = id; self.configurationID = configurationID; self.index = index; self.seed = seed
        self.parameters = parameters.map { (dimension: $0.0, value: $0.1) }
        self.status = status; self.message = message; self.wallSeconds = wallSeconds
        self.metrics = metrics; self.failedThresholds = failedThresholds
    }

    /// The run-level metrics of one analysed run (a sweep run has one stack, so one `RunResult`).
    public static func metrics(of result: RunResult) -> [Metric] {
        result.metrics.map { Metric(name: $0.name, value: $0.value.number, unit: $0.value.unit) }
    }

    public func metric(_ name: String) -> Double? { metrics.first { $0.name == name }?.value }

    public var configurationKey: String { SweepRun.key(parameters.map { ($0.dimension, $0.value) }) }

    public static func == (a: SweepRecord, b: SweepRecord) -> Bool {
        a.id == b.id && a.index == b.index && a.status == b.status && a.message == b.message && a.metrics == b.metrics
            && a.parameters.map(\.dimension) == b.parameters.map(\.dimension) && a.parameters.map(\.value) == b.parameters.map(\.value)
            && a.wallSeconds == b.wallSeconds && a.failedThresholds == b.failedThresholds
    }

    public func hash(into h: inout Hasher) { h.combine(id); h.combine(index) }
}

/// sweep.json (schema `wayside.sweep`, docs/SWEEPS.md): what a sweep, a shard of
/// it or a merge of shards ran. `wayside merge` and `wayside regress` read it.
public struct SweepManifest: Sendable {
    public static let schema = "wayside.sweep"
    public static let version = 1

    public var name: String
    public var file: String
    public var fingerprint: String
    public var simulate: Bool
    /// Runs in the whole matrix (all shards).
    public var totalRuns: Int
    /// The shards this folder holds (one for a shard; several after a merge).
    public var shards: [Shard]
    public var dimensions: [String]
    public var statistic: SweepStatistic
    public var tolerances: [Tolerance]
    /// In matrix order.
    public var records: [SweepRecord]

    public init(plan: SweepPlan, shard: Shard, records: [SweepRecord]) {
        name = plan.name; file = plan.file; fingerprint = plan.fingerprint; simulate = plan.simulate
        totalRuns = plan.runs.count; shards = [shard]
        dimensions = plan.dimensions.map(\.dimension.rawValue)
        statistic = plan.statistic; tolerances = plan.tolerances
        self.records = records.sorted { $0.index < $1.index }
    }

    public init(name: String, file: String, fingerprint: String, simulate: Bool, totalRuns: Int, shards: [Shard],
                dimensions: [String], statistic: SweepStatistic, tolerances: [Tolerance], records: [SweepRecord]) {
        self.name = name; self.file = file; self.fingerprint = fingerprint; self.simulate = simulate
        self.totalRuns = totalRuns; self.shards = shards; self.dimensions = dimensions
        self.statistic = statistic; self.tolerances = tolerances; self.records = records
    }

    public var json: JSONValue {
        func tol(_ t: Tolerance) -> JSONValue {
            .object([("metric", .string(t.metric)), ("tolerance", .string(t.text)), ("worse", .string(t.worse.rawValue))])
        }
        return .object([
            ("schema", .string(Self.schema)),
            ("version", .int(Int64(Self.version))),
            ("sweep", .string(name)),
            ("file", .string(file)),
            ("fingerprint", .string(fingerprint)),
            ("simulate", .bool(simulate)),
            ("runs_total", .int(Int64(totalRuns))),
            ("shards", .array(shards.map { .string($0.description) })),
            ("dimensions", .array(dimensions.map { .string($0) })),
            ("regression", .object([("statistic", .string(statistic.rawValue)), ("metrics", .array(tolerances.map(tol)))])),
            ("runs", .array(records.map(\.json))),
        ])
    }

    public func render() -> String { json.pretty() + "\n" }

    /// Reads sweep.json; the error names what is missing or wrong.
    public static func parse(_ text: String) -> Result<SweepManifest, ManifestError> {
        let v: JSONValue
        do { v = try JSONValue.parse(text) } catch { return .failure(ManifestError("not JSON: \(error.description)")) }
        guard v["schema"]?.stringValue == schema else { return .failure(ManifestError("not a sweep.json (schema is not '\(schema)')")) }
        guard let version = v["version"]?.int64Value, version == Int64(Self.version) else {
            return .failure(ManifestError("sweep.json version \(v["version"]?.serialized ?? "missing"); this wayside reads version \(Self.version)"))
        }
        guard let name = v["sweep"]?.stringValue, let file = v["file"]?.stringValue, let fingerprint = v["fingerprint"]?.stringValue,
              let simulate = v["simulate"]?.boolValue, let total = v["runs_total"]?.int64Value,
              let shardList = v["shards"]?.arrayValue, let dims = v["dimensions"]?.arrayValue, let runs = v["runs"]?.arrayValue else {
            return .failure(ManifestError("a field of sweep.json is missing or of the wrong type"))
        }
        var shards: [Shard] = []
        for s in shardList {
            guard let t = s.stringValue, case .success(let shard) = Shard.parse(t) else { return .failure(ManifestError("bad shard \(s.serialized)")) }
            shards.append(shard)
        }
        var statistic = SweepStatistic.median
        var tolerances: [Tolerance] = []
        if let r = v["regression"] {
            if let s = r["statistic"]?.stringValue, let st = SweepStatistic(rawValue: s) { statistic = st }
            for t in r["metrics"]?.arrayValue ?? [] {
                guard let metric = t["metric"]?.stringValue, let text = t["tolerance"]?.stringValue,
                      let w = t["worse"]?.stringValue, let worse = Tolerance.Worse(rawValue: w), let kind = MetricCatalog.kind(of: metric),
                      case .success(let tol) = Tolerance.parse(text, metric: metric, kind: kind, worse: worse) else {
                    return .failure(ManifestError("bad tolerance \(t.serialized)"))
                }
                tolerances.append(tol)
            }
        }
        var records: [SweepRecord] = []
        for r in runs {
            guard let rec = SweepRecord(json: r) else { return .failure(ManifestError("bad run entry \(String(r.serialized.prefix(120)))")) }
            records.append(rec)
        }
        return .success(SweepManifest(name: name, file: file, fingerprint: fingerprint, simulate: simulate, totalRuns: Int(total),
                                      shards: shards, dimensions: dims.compactMap(\.stringValue), statistic: statistic,
                                      tolerances: tolerances, records: records))
    }

    /// Combines shards of one sweep. Refuses folders of different sweeps
    /// (fingerprints differ), a shard given twice, and runs present in two folders.
    public static func merge(_ parts: [(origin: String, manifest: SweepManifest)]) -> Result<SweepManifest, ManifestError> {
        guard let first = parts.first else { return .failure(ManifestError("nothing to merge")) }
        var records: [String: (origin: String, record: SweepRecord)] = [:]
        var shards: [(origin: String, shard: Shard)] = []
        for (origin, m) in parts {
            guard m.fingerprint == first.manifest.fingerprint, m.simulate == first.manifest.simulate else {
                return .failure(ManifestError("\(origin) holds sweep '\(m.name)' (\(m.file), fingerprint \(m.fingerprint), \(m.totalRuns) runs\(m.simulate ? ", simulated" : "")), "
                    + "but \(first.origin) holds '\(first.manifest.name)' (\(first.manifest.file), fingerprint \(first.manifest.fingerprint), \(first.manifest.totalRuns) runs\(first.manifest.simulate ? ", simulated" : "")): "
                    + "only shards of one sweep file, expanded the same way, can be merged"))
            }
            for s in m.shards {
                if let prior = shards.first(where: { $0.shard.count != s.count }) {
                    return .failure(ManifestError("\(origin) is shard \(s) but \(prior.origin) is shard \(prior.shard): shards of one merge must split the sweep the same way"))
                }
                if let prior = shards.first(where: { $0.shard == s }) {
                    return .failure(ManifestError("shard \(s) is in both \(prior.origin) and \(origin): merge each shard once"))
                }
                shards.append((origin, s))
            }
            for r in m.records {
                if let prior = records[r.id] {
                    return .failure(ManifestError("run \(r.id) is in both \(prior.origin) and \(origin): the folders overlap"))
                }
                records[r.id] = (origin, r)
            }
        }
        var merged = first.manifest
        merged.shards = shards.map(\.shard).sorted { $0.index < $1.index }
        merged.records = records.values.map(\.record).sorted { $0.index < $1.index }
        return .success(merged)
    }

    /// Shards (of the shard count in use) not present yet; empty when the sweep is whole.
    public var missingShards: [Shard] {
        guard let n = shards.first?.count else { return [] }
        return (1...n).map { Shard(index: $0, count: n) }.filter { !shards.contains($0) }
    }
}

public struct ManifestError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

extension SweepRecord {
    var json: JSONValue {
        .object([
            ("id", .string(id)),
            ("configuration", .string(configurationID)),
            ("index", .int(Int64(index))),
            ("seed", .int(Int64(bitPattern: seed))),
            ("parameters", .object(parameters.map { ($0.dimension, .string($0.value)) })),
            ("status", .string(status.rawValue)),
            ("message", message.map { .string($0) } ?? .null),
            ("wall_s", wallSeconds.map { .double($0) } ?? .null),
            ("metrics", .object(metrics.map { ($0.name, .object([("value", .double($0.value)), ("unit", .string($0.unit))])) })),
            ("failed_thresholds", .array(failedThresholds.map { .string($0) })),
        ])
    }

    init?(json v: JSONValue) {
        guard let id = v["id"]?.stringValue, let conf = v["configuration"]?.stringValue, let index = v["index"]?.int64Value,
              let seed = v["seed"]?.int64Value, let params = v["parameters"]?.objectValue,
              let s = v["status"]?.stringValue, let status = Status(rawValue: s), let metrics = v["metrics"]?.objectValue else { return nil }
        var ps: [(String, String)] = []
        for (k, p) in params { guard let t = p.stringValue else { return nil }; ps.append((k, t)) }
        var ms: [Metric] = []
        for (k, m) in metrics {
            guard let value = m["value"]?.doubleValue, let unit = m["unit"]?.stringValue else { return nil }
            ms.append(Metric(name: k, value: value, unit: unit))
        }
        self.init(id: id, configurationID: conf, index: Int(index), seed: UInt64(bitPattern: seed), parameters: ps, status: status,
                  message: v["message"]?.stringValue, wallSeconds: v["wall_s"]?.doubleValue, metrics: ms,
                  failedThresholds: (v["failed_thresholds"]?.arrayValue ?? []).compactMap(\.stringValue))
    }
}
