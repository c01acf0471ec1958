import Core

/// Knobs of the analysis; their values are recorded in results.json.
public struct AnalysisOptions: Hashable, Sendable {
    /// An interval without new in-order bytes longer than this is a stall
    /// (docs/METRICS.md, "stall"). For CBR the threshold used is at least
    /// twice the message interval, so a slow stream is not one long stall.
    public var stallThreshold: Interval
    /// Width of the goodput series' bins.
    public var goodputBin: Interval

    public init(stallThreshold: Interval = .milliseconds(100), goodputBin: Interval = .milliseconds(100)) {
        self.stallThreshold = stallThreshold; self.goodputBin = goodputBin
    }
}

/// A span of coverage on one link, from the emulator's `coverage` events.
public struct CoverageBand: Hashable, Sendable {
    public var link: String
    public var start: Instant
    /// `nil`: covered until the end of the run.
    public var end: Instant?
    public var rate: Bitrate?
}

/// One coverage change and what it did to one flow (docs/METRICS.md, "per handover").
public struct HandoverResult: Hashable, Sendable {
    public var time: Instant
    public var link: String
    /// `true`: the link gained coverage (a path arrived); `false`: it lost coverage.
    public var covered: Bool
    public var loss: CoverageLoss
    /// The longest inter-delivery interval overlapping this change's window; nil when the flow was not running then.
    public var gap: Interval?
    public var gapStart: Instant?
    public var gapEnd: Instant?
    /// Arrivals only: time until a subflow on this link was established; nil if none was before the link was lost again or the flow ended.
    public var subflowUsableAfter: Interval?
    /// Arrivals only: a subflow on this link stayed established through the outage (so `subflowUsableAfter` is zero).
    public var subflowPersisted: Bool
    /// Losses only: time until in-order delivery resumed (docs/METRICS.md); nil if it never did.
    public var trafficMovedAfter: Interval?
    /// The flow was running while this change was in effect (an arrival whose coverage
    /// overlaps the flow, a loss within it): only these count in the run's metrics.
    public var duringFlow: Bool = false
}

/// A subflow's life as one node saw it, for the timeline plot.
public struct SubflowSpan: Hashable, Sendable {
    public var subflow: Int
    public var path: String?
    public var start: Instant
    public var end: Instant?
    public var endState: SubflowState?
}

public struct GoodputSample: Hashable, Sendable {
    public var start: Instant
    public var bitsPerSecond: Double
}

public struct SubflowCountSample: Hashable, Sendable {
    public var time: Instant
    public var established: Int
    public var usable: Int
}

/// A stretch without new in-order bytes longer than the stall threshold.
public struct DeliveryGap: Hashable, Sendable {
    public var start: Instant
    public var end: Instant
    public var length: Interval { end - start }
}

public struct LatencySummary: Hashable, Sendable {
    public var count: Int
    public var p50: Interval
    public var p90: Interval
    public var p99: Interval
    public var p999: Interval
    public var max: Interval
    public var mean: Interval

    /// Nearest-rank percentiles of `samples` (docs/METRICS.md); nil when empty.
    public init?(samples: [Interval]) {
        guard !samples.isEmpty else { return nil }
        let s = samples.sorted()
        // Integer per-mille so that 99.9 % of 1000 is exactly rank 999.
        func rank(perMille p: Int) -> Interval {
            let r = (p * s.count + 999) / 1000
            return s[min(s.count, Swift.max(1, r)) - 1]
        }
        count = s.count
        p50 = rank(perMille: 500); p90 = rank(perMille: 900); p99 = rank(perMille: 990); p999 = rank(perMille: 999)
        max = s[s.count - 1]
        var sum: Double = 0
        for x in s { sum += Double(x.nanoseconds) }
        mean = Interval(nanoseconds: Int64((sum / Double(s.count)).rounded()))
    }
}

/// Everything measured about one flow: one connection label as received by one node.
public struct FlowResult: Hashable, Sendable {
    public var conn: String
    public var receiver: String
    public var sender: String?
    public var app: String?
    /// Whether MPTCP was in use, as the receiver's `conn.state` reported.
    public var mptcp: Bool?
    public var start: Instant
    public var end: Instant
    /// The flow ended with an orderly close (the receiver saw the end of the stream).
    public var endedCleanly: Bool
    public var failure: String?
    public var deliveredBytes: Int64
    public var firstDelivery: Instant?
    public var lastDelivery: Instant?
    public var maxGap: Interval
    public var maxGapStart: Instant?
    public var stalls: [DeliveryGap]
    public var stallTime: Interval
    public var stallThreshold: Interval
    public var survived: Bool
    public var goodput: [GoodputSample]
    public var goodputMean: Double
    public var offered: Bitrate?
    public var idealBytes: Int64?
    public var messagesSent: Int?
    public var messagesDelivered: Int
    public var messagesLost: Int?
    public var latency: LatencySummary?
    public var reinjectedBytes: Int64
    public var joinAttempts: Int
    /// The node whose subflow events describe this flow's subflows.
    public var subflowObserver: String?
    public var subflows: [SubflowSpan]
    public var subflowCounts: [SubflowCountSample]
    public var redundancyTime: Interval
    public var maxSubflows: Int
    public var handovers: [HandoverResult]
}

/// A flow's summary and the run's, as named values: what thresholds test and
/// the comparison table shows. Names are listed in docs/METRICS.md.
public enum MetricValue: Hashable, Sendable, CustomStringConvertible {
    case duration(Interval)
    case rate(Double)
    case bytes(Int64)
    case count(Int)
    case ratio(Double)
    case flag(Bool)

    public var description: String {
        switch self {
        case .duration(let d): return formatDuration(d)
        case .rate(let r): return formatRate(r)
        case .bytes(let b): return "\(b) B"
        case .count(let c): return String(c)
        case .ratio(let r): return formatFixed(r * 100, digits: 1) + "%"
        case .flag(let b): return String(b)
        }
    }

    /// The value as a number in the unit of docs/METRICS.md (ms, bit/s, bytes, count, fraction, 0/1).
    public var number: Double {
        switch self {
        case .duration(let d): return d.milliseconds
        case .rate(let r): return r
        case .bytes(let b): return Double(b)
        case .count(let c): return Double(c)
        case .ratio(let r): return r
        case .flag(let b): return b ? 1 : 0
        }
    }
}

/// All results of one run of one stack.
public struct RunResult: Hashable, Sendable {
    public var stack: String
    public var run: String
    public var attributes: [String: String]
    public var duration: Instant
    public var coverage: [CoverageBand]
    public var flows: [FlowResult]
    public var options: AnalysisOptions
    /// Lines of the logs that could not be read.
    public var problems: [LogProblem]
    public var files: [String]

    /// Run-level metrics: the worst flow for gaps, stalls, survival, latency and
    /// redundancy; sums for bytes and goodput (docs/METRICS.md). A metric that
    /// could not be measured is absent.
    public var metrics: [(name: String, value: MetricValue)] {
        var m: [(String, MetricValue)] = []
        let flows = self.flows
        guard !flows.isEmpty else { return [("survived", .flag(false)), ("flows", .count(0))] }
        m.append(("flows", .count(flows.count)))
        m.append(("survived", .flag(flows.allSatisfy(\.survived))))
        m.append(("max_gap", .duration(flows.map(\.maxGap).max()!)))
        m.append(("total_stall", .duration(flows.map(\.stallTime).max()!)))
        m.append(("goodput_mean", .rate(flows.map(\.goodputMean).reduce(0, +))))
        let delivered = flows.map(\.deliveredBytes).reduce(0, +)
        m.append(("delivered_bytes", .bytes(delivered)))
        if flows.allSatisfy({ $0.idealBytes != nil }) {
            let ideal = flows.compactMap(\.idealBytes).reduce(0, +)
            m.append(("ideal_bytes", .bytes(ideal)))
            if ideal > 0 { m.append(("delivered_ratio", .ratio(Double(delivered) / Double(ideal)))) }
        }
        m.append(("redundancy", .duration(flows.map(\.redundancyTime).min()!)))
        m.append(("reinjected_bytes", .bytes(flows.map(\.reinjectedBytes).reduce(0, +))))
        m.append(("max_subflows", .count(flows.map(\.maxSubflows).max()!)))
        m.append(("join_attempts", .count(flows.map(\.joinAttempts).reduce(0, +))))
        let handovers = flows.flatMap(\.handovers)
        m.append(("handovers", .count(flows.map { $0.handovers.count }.max()!)))
        let gaps = handovers.compactMap(\.gap)
        if let g = gaps.max() { m.append(("max_handover_gap", .duration(g))) }
        let arrivals = handovers.filter { $0.covered && $0.duringFlow }
        if !arrivals.isEmpty, arrivals.allSatisfy({ $0.subflowUsableAfter != nil }) {
            m.append(("max_join_latency", .duration(arrivals.compactMap(\.subflowUsableAfter).max()!)))
        }
        let losses = handovers.filter { !$0.covered && $0.duringFlow }
        if !losses.isEmpty, losses.allSatisfy({ $0.trafficMovedAfter != nil }) {
            m.append(("max_move_latency", .duration(losses.compactMap(\.trafficMovedAfter).max()!)))
        }
        let lats = flows.compactMap(\.latency)
        if !lats.isEmpty {
            m.append(("latency_p50", .duration(lats.map(\.p50).max()!)))
            m.append(("latency_p90", .duration(lats.map(\.p90).max()!)))
            m.append(("latency_p99", .duration(lats.map(\.p99).max()!)))
            m.append(("latency_p999", .duration(lats.map(\.p999).max()!)))
            m.append(("latency_max", .duration(lats.map(\.max).max()!)))
        }
        let lost = flows.compactMap(\.messagesLost)
        if !lost.isEmpty { m.append(("messages_lost", .count(lost.reduce(0, +)))) }
        return m
    }

    public func metric(_ name: String) -> MetricValue? { metrics.first { $0.name == name }?.value }
}

// MARK: - Computing

public enum RunAnalysis {
    /// Analyses the logs of one run of one stack. Events from all files are
    /// merged in time order (stable, so each file's order is kept at equal times).
    public static func analyze(logs: [EventLogFile], options: AnalysisOptions = AnalysisOptions()) -> RunResult {
        let merged = logs.flatMap(\.events).enumerated().sorted { a, b in
            a.element.time != b.element.time ? a.element.time < b.element.time : a.offset < b.offset
        }.map(\.element)
        var attributes: [String: String] = [:]
        for log in logs { attributes.merge(log.attributes) { old, _ in old } }
        let stack = logs.compactMap(\.stack).first ?? "unknown"
        let run = logs.map(\.run).first { !$0.isEmpty } ?? ""
        var result = analyze(events: merged, options: options, stack: stack, run: run)
        result.attributes = attributes
        result.problems = logs.flatMap(\.problems)
        result.files = logs.map(\.file)
        return result
    }

    /// Analyses events already in time order.
    public static func analyze(events: [LogEvent], options: AnalysisOptions = AnalysisOptions(),
                               stack: String = "unknown", run: String = "") -> RunResult {
        let runEnd = events.compactMap { e -> Instant? in if case .runEnd = e.body { return e.time }; return nil }.max()
            ?? events.map(\.time).max() ?? .zero
        let coverage = CoverageHistory(events: events, runEnd: runEnd)

        // A flow is one connection label at one receiving node.
        var flowKeys: [FlowKey] = []
        var seen = Set<FlowKey>()
        for e in events {
            guard case .node(let node) = e.source else { continue }
            var conn: String?
            switch e.body {
            case .appStart(let c, _, let role, _) where role != .sender: conn = c
            case .appDelivered(let m): conn = m.conn
            case .bytesDelivered(let c, _, _): conn = c
            default: break
            }
            if let conn, seen.insert(FlowKey(conn: conn, node: node)).inserted {
                flowKeys.append(FlowKey(conn: conn, node: node))
            }
        }
        let flows = flowKeys.map { analyzeFlow($0, events: events, coverage: coverage, runEnd: runEnd, options: options) }
        return RunResult(stack: stack, run: run, attributes: [:], duration: runEnd, coverage: coverage.bands,
                         flows: flows, options: options, problems: [], files: [])
    }

    struct FlowKey: Hashable { var conn: String; var node: String }

    static func conn(of body: EventBody) -> String? {
        switch body {
        case .appStart(let c, _, _, _), .appStop(let c, _), .bytesDelivered(let c, _, _),
             .connectionState(let c, _, _, _), .joinAttempt(let c, _, _, _, _), .reinjection(let c, _, _, _),
             .subflowProgress(let c, _, _, _, _):
            return c
        case .appSent(let m), .appDelivered(let m): return m.conn
        case .subflowState(let s): return s.conn
        default: return nil
        }
    }

    static func analyzeFlow(_ key: FlowKey, events all: [LogEvent], coverage: CoverageHistory,
                            runEnd: Instant, options: AnalysisOptions) -> FlowResult {
        let events = all.filter { conn(of: $0.body) == key.conn }
        let atReceiver = events.filter { $0.source == .node(key.node) }

        // Who sends, what it offers, when it ran.
        var sender: String?
        var app: String?
        var receiverApp: String?
        var offered: Bitrate?
        var senderStart: Instant?
        var senderStop: Instant?
        var flowStart: Instant?
        for e in events {
            guard case .node(let node) = e.source else { continue }
            switch e.body {
            case let .appStart(_, a, role, off):
                flowStart = flowStart ?? e.time
                if node == key.node { receiverApp = receiverApp ?? a }
                if node != key.node && role != .receiver {
                    sender = sender ?? node; app = app ?? a
                    offered = offered ?? off; senderStart = senderStart ?? e.time
                }
            case .appStop where node != key.node && node == sender:
                senderStop = senderStop ?? e.time
            case .appSent where node != key.node:
                sender = sender ?? node
            default: break
            }
        }

        app = app ?? receiverApp

        // In-order deliveries at the receiver: bytes.delivered if it writes them, else whole messages.
        let useBytes = atReceiver.contains { if case .bytesDelivered = $0.body { return true }; return false }
        var deliveries: [(time: Instant, bytes: Int64)] = []
        var latencies: [Interval] = []
        var deliveredSeqs = Set<UInt64>()
        for e in atReceiver {
            switch e.body {
            case .bytesDelivered(_, let b, _) where useBytes && b > 0:
                deliveries.append((e.time, b))
            case .appDelivered(let m):
                if !useBytes { deliveries.append((e.time, Int64(m.size))) }
                latencies.append(e.time - m.sentAt)
                deliveredSeqs.insert(m.sequence)
            default: break
            }
        }
        let delivered = deliveries.reduce(Int64(0)) { $0 + $1.bytes }
        flowStart = flowStart ?? deliveries.first?.time ?? .zero

        // How the flow ended.
        var endedCleanly = false
        var cleanEnd: Instant?
        var failure: String?
        var mptcp: Bool?
        for e in events {
            guard case let .connectionState(_, state, mp, reason) = e.body else { continue }
            if e.source == .node(key.node), let mp { mptcp = mp }
            switch state {
            case .failed, .reset:
                if failure == nil {
                    failure = "\(state.rawValue) at \(formatSeconds(e.time)) (\(e.source.name)\(reason.map { ": \($0)" } ?? ""))"
                }
            case .finished, .closed:
                if e.source == .node(key.node), failure == nil, cleanEnd == nil { cleanEnd = e.time; endedCleanly = true }
            default: break
            }
        }
        if failure != nil { endedCleanly = false; cleanEnd = nil }
        // When the connection began: its first conn.state at any node (connecting or later).
        let connectionStart = events.first { if case .connectionState = $0.body { return true }; return false }?.time
        // After an orderly end nothing was left to deliver, so the silence between the
        // last bytes and the FIN is not a gap: such a flow ends at its last delivery.
        let end = cleanEnd.map { deliveries.last?.time ?? $0 } ?? max(runEnd, deliveries.last?.time ?? .zero)

        // Inter-delivery intervals over [first delivery, end]; before any delivery, from the flow's start.
        var points = deliveries.map(\.time)
        if points.isEmpty { points = [flowStart!] }
        if end > points.last! { points.append(end) }
        // One delivery that is also the flow's end leaves no interval at all: everything
        // arrived at one instant, so the flow was silent from its start until then.
        if points.count == 1, points[0] > flowStart! { points.insert(flowStart!, at: 0) }
        var maxGap = Interval.zero
        var maxGapStart: Instant?
        var stalls: [DeliveryGap] = []
        var threshold = options.stallThreshold
        if let offered, offered.bitsPerSecond > 0, let size = atReceiver.lazy.compactMap({ e -> Int? in
            if case .appDelivered(let m) = e.body { return m.size }; return nil
        }).first {
            threshold = max(threshold, offered.transmissionTime(bytes: size) * Int64(2))
        }
        for k in points.indices.dropLast() {
            let gap = points[k + 1] - points[k]
            if gap > maxGap { maxGap = gap; maxGapStart = points[k] }
            if gap > threshold { stalls.append(DeliveryGap(start: points[k], end: points[k + 1])) }
        }
        let stallTime = stalls.reduce(Interval.zero) { $0 + $1.length }

        // Goodput series over the whole run, so that flows and stacks line up.
        let bin = options.goodputBin.nanoseconds > 0 ? options.goodputBin : .milliseconds(100)
        let binCount = Int(max(1, (runEnd.nanoseconds + bin.nanoseconds - 1) / bin.nanoseconds))
        var binBytes = [Int64](repeating: 0, count: binCount)
        for d in deliveries {
            let b = Int(min(Int64(binCount - 1), max(0, d.time.nanoseconds / bin.nanoseconds)))
            binBytes[b] += d.bytes
        }
        let goodput = binBytes.enumerated().map { i, b in
            GoodputSample(start: Instant(nanoseconds: Int64(i) * bin.nanoseconds), bitsPerSecond: Double(b) * 8 / bin.seconds)
        }
        let activeTime = end - flowStart!
        let goodputMean = activeTime > .zero ? Double(delivered) * 8 / activeTime.seconds : 0

        // Ideal: what the offered load and the covered links' capacity allowed.
        let idealStart = senderStart ?? flowStart!
        let idealEnd = min(senderStop ?? runEnd, runEnd)
        let idealBits = coverage.idealBits(from: idealStart, to: idealEnd, offered: offered)
        let idealBytes = idealBits.map { Int64(($0 / 8).rounded()) }

        // Messages.
        var sentSeqs = Set<UInt64>()
        var sawSent = false
        for e in events where e.source != .node(key.node) {
            if case .appSent(let m) = e.body { sentSeqs.insert(m.sequence); sawSent = true }
        }
        let lost = sawSent ? sentSeqs.subtracting(deliveredSeqs).count : nil

        var reinjected: Int64 = 0
        var joins = 0
        for e in events {
            switch e.body {
            case .reinjection(_, let b, _, _): reinjected += b
            case .joinAttempt: joins += 1
            default: break
            }
        }

        // Subflows as one node saw them: the receiver's view if it logs subflows, else the sender's.
        let subflowEvents = { (node: String) in
            events.compactMap { e -> (Instant, SubflowChange)? in
                if e.source == .node(node), case .subflowState(let s) = e.body { return (e.time, s) }
                return nil
            }
        }
        var observer: String? = key.node
        var changes = subflowEvents(key.node)
        if changes.isEmpty, let sender {
            changes = subflowEvents(sender); observer = sender
        }
        if changes.isEmpty { observer = nil }
        var spans: [SubflowSpan] = []
        var open: [Int: Int] = [:] // subflow id -> index in spans
        for (t, s) in changes {
            switch s.state {
            case .established:
                if open[s.subflow] == nil {
                    open[s.subflow] = spans.count
                    spans.append(SubflowSpan(subflow: s.subflow, path: s.path, start: t, end: nil, endState: nil))
                }
            case .closed, .failed:
                if let i = open.removeValue(forKey: s.subflow) { spans[i].end = t; spans[i].endState = s.state }
            }
        }
        let counts = subflowCounts(spans: spans, coverage: coverage, runEnd: runEnd)
        var redundancy = Interval.zero
        for (k, c) in counts.enumerated() where c.usable >= 2 {
            let next = k + 1 < counts.count ? counts[k + 1].time : end
            let until = min(next, end)
            if until > c.time { redundancy += until - c.time }
        }

        // When each path's subflows moved bytes (any node): a counter above its previous value.
        var advances: [(time: Instant, path: String)] = []
        var lastCounters: [String: (Int64, Int64)] = [:]
        for e in events {
            guard case let .subflowProgress(_, sf, path, acked, received) = e.body, let path else { continue }
            let key = "\(e.source.name)/\(sf)"
            let now = (acked ?? 0, received ?? 0)
            let before = lastCounters[key] ?? (0, 0)
            if now.0 > before.0 || now.1 > before.1 { advances.append((e.time, path)) }
            lastCounters[key] = now
        }

        // Survival (docs/METRICS.md): no failure, delivered something, and either an
        // orderly end or a delivery after the last coverage change has settled. Frames
        // already in flight when coverage changed can still arrive for a moment, so a
        // delivery counts only once the stall threshold has passed since the change —
        // unless the run ended sooner than that.
        let lastChange = coverage.changes.last?.time ?? .zero
        let settled = min(lastChange + options.stallThreshold, end)
        let carriedOn = deliveries.last.map { $0.time > settled || (settled == end && $0.time > lastChange) } ?? false
        let survived = failure == nil && delivered > 0 && (endedCleanly || carriedOn)

        // Per handover.
        var handovers: [HandoverResult] = []
        let changes2 = coverage.changes
        for (i, c) in changes2.enumerated() {
            let windowEnd = i + 1 < changes2.count ? changes2[i + 1].time : runEnd
            var h = HandoverResult(time: c.time, link: c.link, covered: c.covered, loss: c.loss, gap: nil, gapStart: nil,
                                   gapEnd: nil, subflowUsableAfter: nil, subflowPersisted: false, trafficMovedAfter: nil)
            if !deliveries.isEmpty, c.time < end || (c.time == end && windowEnd == end) {
                // Longest interval (p_k, p_k+1) overlapping [T, windowEnd).
                // Points are sorted: start at the first interval ending after T (binary search)
                // and stop at the first starting at or after the window's end.
                var best: (Instant, Instant)?
                var lo = 0, hi = points.count - 1
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if points[mid + 1] > c.time { hi = mid } else { lo = mid + 1 }
                }
                let limit = max(windowEnd, c.time + .nanoseconds(1))
                var k = lo
                while k + 1 < points.count, points[k] < limit {
                    let a = points[k], b = points[k + 1]
                    if b > c.time, best == nil || b - a > best!.1 - best!.0 { best = (a, b) }
                    k += 1
                }
                if let (a, b) = best {
                    h.gap = b - a; h.gapStart = a; h.gapEnd = b
                    if !c.covered {
                        let resumedAt: Instant? = b - a > threshold
                            ? (b <= deliveries.last!.time ? b : nil)
                            : deliveries.first(where: { $0.time > c.time })?.time
                        h.trafficMovedAfter = resumedAt.map { max(.zero, $0 - c.time) }
                    }
                }
            }
            if c.covered {
                let lostAgain = coverage.nextLoss(of: c.link, after: c.time) ?? runEnd
                h.duringFlow = c.time < end && lostAgain > flowStart!
                if spans.contains(where: { $0.path == c.link && $0.start <= c.time && ($0.end.map { $0 > c.time } ?? true) }) {
                    // A subflow that stayed established through the outage is usable once it moves
                    // bytes again, when the logs say (subflow.progress); otherwise at once.
                    h.subflowPersisted = true
                    if lastCounters.isEmpty {
                        h.subflowUsableAfter = .zero
                    } else if let a = advances.first(where: { $0.path == c.link && $0.time >= c.time && $0.time <= lostAgain }) {
                        h.subflowUsableAfter = a.time - c.time
                    }
                } else if let s = spans.first(where: { $0.path == c.link && $0.start >= c.time && $0.start <= lostAgain }) {
                    // A path that was there before the connection began is measured from the
                    // connection's start: that is connection setup, not processes starting up.
                    h.subflowUsableAfter = s.start - max(c.time, connectionStart ?? flowStart!)
                }
            }
            if !c.covered { h.duringFlow = c.time >= flowStart! && c.time < end }
            handovers.append(h)
        }

        return FlowResult(
            conn: key.conn, receiver: key.node, sender: sender, app: app, mptcp: mptcp, start: flowStart!, end: end,
            endedCleanly: endedCleanly, failure: failure, deliveredBytes: delivered,
            firstDelivery: deliveries.first?.time, lastDelivery: deliveries.last?.time,
            maxGap: maxGap, maxGapStart: maxGapStart, stalls: stalls, stallTime: stallTime, stallThreshold: threshold,
            survived: survived, goodput: goodput, goodputMean: goodputMean, offered: offered, idealBytes: idealBytes,
            messagesSent: sawSent ? sentSeqs.count : nil, messagesDelivered: deliveredSeqs.count, messagesLost: lost,
            latency: LatencySummary(samples: latencies), reinjectedBytes: reinjected, joinAttempts: joins,
            subflowObserver: observer, subflows: spans, subflowCounts: counts, redundancyTime: redundancy,
            maxSubflows: counts.map(\.established).max() ?? 0, handovers: handovers)
    }

    /// Step series of established and usable subflows: a sample at every change.
    static func subflowCounts(spans: [SubflowSpan], coverage: CoverageHistory, runEnd: Instant) -> [SubflowCountSample] {
        var times = Set<Instant>([.zero])
        for s in spans { times.insert(s.start); if let e = s.end { times.insert(e) } }
        for c in coverage.changes { times.insert(c.time) }
        var samples: [SubflowCountSample] = []
        for t in times.sorted() where t <= runEnd {
            let live = spans.filter { $0.start <= t && ($0.end.map { $0 > t } ?? true) }
            let usable = live.filter { s in s.path.map { coverage.isCovered($0, at: t) } ?? true }
            let sample = SubflowCountSample(time: t, established: live.count, usable: usable.count)
            if let last = samples.last, last.established == sample.established, last.usable == sample.usable { continue }
            samples.append(sample)
        }
        return samples
    }
}

/// Coverage of every link over the run, from `coverage` and `link.params` events
/// (docs/METRICS.md, "coverage change"): every link is covered from the run's
/// start until a `coverage` event says otherwise; events at t ≤ 0 set a link's
/// initial state (the emulator writes each vehicle link's state at the run's
/// start) and are not changes.
struct CoverageHistory {
    struct Change { var time: Instant; var link: String; var covered: Bool; var loss: CoverageLoss }
    /// Changes of state only (a repeated "covered" is not a change), in time order.
    var changes: [Change] = []
    /// Each link's state at the run's start, where a `coverage` event at t ≤ 0 gave it.
    var initial: [String: Bool] = [:]
    var bands: [CoverageBand] = []
    /// Rate of each link over time: (from, rate).
    var rates: [String: [(Instant, Bitrate?)]] = [:]
    /// Every link with at least one `coverage` event, in order of its first one.
    var links: [String] = []

    init(events: [LogEvent], runEnd: Instant) {
        var state: [String: Bool] = [:]
        var seen = Set<String>()
        for e in events {
            guard case .link(let link) = e.source else { continue }
            switch e.body {
            case let .coverage(covered, loss, rate):
                if let rate { rates[link, default: []].append((e.time, rate)) }
                if seen.insert(link).inserted { links.append(link) }
                if e.time <= .zero {
                    initial[link] = covered; state[link] = covered
                    continue
                }
                // Links start covered: a first event saying "covered" is no change.
                guard state[link] ?? true != covered else { continue }
                state[link] = covered
                changes.append(Change(time: e.time, link: link, covered: covered, loss: loss))
            case .linkParameters(let rate, _, _):
                if let rate { rates[link, default: []].append((e.time, rate)) }
            default: break
            }
        }
        // Bands: from the run's start for links covered then, and from each arrival.
        var openBand: [String: Int] = [:]
        for link in links where initial[link] ?? true {
            openBand[link] = bands.count
            bands.append(CoverageBand(link: link, start: .zero, end: nil, rate: currentRate(link, at: .zero)))
        }
        for c in changes {
            if c.covered {
                openBand[c.link] = bands.count
                bands.append(CoverageBand(link: c.link, start: c.time, end: nil, rate: currentRate(c.link, at: c.time)))
            } else if let i = openBand.removeValue(forKey: c.link) {
                bands[i].end = c.time
            }
        }
    }

    func currentRate(_ link: String, at t: Instant) -> Bitrate? {
        rates[link]?.last(where: { $0.0 <= t })?.1
    }

    /// A link with no coverage events is covered all the time; one with events
    /// is in its initial state (covered unless an event at t ≤ 0 said otherwise)
    /// until its first change.
    func isCovered(_ link: String, at t: Instant) -> Bool {
        changes.last(where: { $0.link == link && $0.time <= t })?.covered ?? initial[link] ?? true
    }

    func nextLoss(of link: String, after t: Instant) -> Instant? {
        changes.first { $0.link == link && !$0.covered && $0.time > t }?.time
    }

    /// ∫ min(offered, Σ rate of covered links) dt over [from, to), in bits; a
    /// covered link with no known rate is unlimited. nil when both are unlimited.
    func idealBits(from: Instant, to: Instant, offered: Bitrate?) -> Double? {
        guard to > from else { return 0 }
        var cuts = Set<Instant>([from, to])
        for c in changes where c.time > from && c.time < to { cuts.insert(c.time) }
        for (_, r) in rates { for (t, _) in r where t > from && t < to { cuts.insert(t) } }
        let sorted = cuts.sorted()
        var bits = 0.0
        for k in sorted.indices.dropLast() {
            let a = sorted[k], b = sorted[k + 1]
            var capacity: Double? = 0 // nil = unlimited
            if links.isEmpty { capacity = nil }
            for link in links where isCovered(link, at: a) {
                guard let r = currentRate(link, at: a) else { capacity = nil; break }
                capacity = capacity.map { $0 + Double(r.bitsPerSecond) }
            }
            let rate: Double
            switch (capacity, offered) {
            case (nil, nil): return nil
            case let (c?, nil): rate = c
            case let (nil, o?): rate = Double(o.bitsPerSecond)
            case let (c?, o?): rate = min(c, Double(o.bitsPerSecond))
            }
            bits += rate * (b - a).seconds
        }
        return bits
    }
}

// MARK: - Formatting shared by results, CSV and the report

func formatFixed(_ v: Double, digits: Int) -> String { TextFormatting.fixed(v, digits: digits) ?? "-" }

public func formatDuration(_ d: Interval) -> String {
    let ms = d.milliseconds
    if ms.magnitude >= 10_000 { return formatFixed(d.seconds, digits: 2) + " s" }
    if ms.magnitude >= 100 { return formatFixed(ms, digits: 0) + " ms" }
    return formatFixed(ms, digits: 1) + " ms"
}

public func formatRate(_ bps: Double) -> String {
    if bps >= 1e9 { return formatFixed(bps / 1e9, digits: 2) + " Gbit/s" }
    if bps >= 1e6 { return formatFixed(bps / 1e6, digits: 2) + " Mbit/s" }
    if bps >= 1e3 { return formatFixed(bps / 1e3, digits: 1) + " kbit/s" }
    return formatFixed(bps, digits: 0) + " bit/s"
}

func formatSeconds(_ t: Instant) -> String { formatFixed(t.seconds, digits: 3) + " s" }
