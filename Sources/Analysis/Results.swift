import Core

/// results.json (docs/RESULTS.md) and the CSV time series beside it.
public enum ResultsFormat {
    public static let schema = "wayside.results"
    /// Bumped when a field changes meaning or disappears; additions keep it.
    public static let version = 1
}

extension MetricValue {
    /// The unit `number` is in.
    public var unit: String {
        switch self {
        case .duration: return "ms"
        case .rate: return "bit/s"
        case .bytes: return "B"
        case .count: return "count"
        case .ratio: return "fraction"
        case .flag: return "bool"
        }
    }

    var json: JSONValue {
        switch self {
        case .flag(let b): return .bool(b)
        case .bytes(let b): return .int(b)
        case .count(let c): return .int(Int64(c))
        default: return .double(number)
        }
    }
}

private func seconds(_ t: Instant?) -> JSONValue { t.map { .double($0.seconds) } ?? .null }
private func millis(_ d: Interval?) -> JSONValue { d.map { .double($0.milliseconds) } ?? .null }
private func str(_ s: String?) -> JSONValue { s.map { .string($0) } ?? .null }

extension RunResult {
    public var json: JSONValue {
        .object([
            ("stack", .string(stack)),
            ("run", .string(run)),
            ("attributes", .object(attributes.keys.sorted().map { ($0, .string(attributes[$0]!)) })),
            ("duration_s", .double(duration.seconds)),
            ("metrics", .object(metrics.map { m in
                (m.name, .object([("value", m.value.json), ("unit", .string(m.value.unit)), ("text", .string(m.value.description))]))
            })),
            ("coverage", .array(coverage.map { b in
                .object([("link", .string(b.link)), ("start_s", seconds(b.start)), ("end_s", seconds(b.end)),
                         ("rate_bps", b.rate.map { .int($0.bitsPerSecond) } ?? .null)])
            })),
            ("flows", .array(flows.map(\.json))),
            ("files", .array(files.map { .string($0) })),
            ("problems", .array(problems.map { .string($0.description) })),
        ])
    }
}

extension FlowResult {
    public var json: JSONValue {
        var f: [(String, JSONValue)] = []
        f.append(("conn", .string(conn))); f.append(("receiver", .string(receiver)))
        f.append(("sender", str(sender))); f.append(("app", str(app)))
        f.append(("mptcp", mptcp.map { .bool($0) } ?? .null))
        f.append(("start_s", seconds(start))); f.append(("end_s", seconds(end)))
        f.append(("ended_cleanly", .bool(endedCleanly)))
        f.append(("failure", str(failure))); f.append(("survived", .bool(survived)))
        f.append(("delivered_bytes", .int(deliveredBytes)))
        f.append(("ideal_bytes", idealBytes.map { .int($0) } ?? .null))
        f.append(("offered_bps", offered.map { .int($0.bitsPerSecond) } ?? .null))
        f.append(("first_delivery_s", seconds(firstDelivery))); f.append(("last_delivery_s", seconds(lastDelivery)))
        f.append(("max_gap_ms", millis(maxGap))); f.append(("max_gap_start_s", seconds(maxGapStart)))
        f.append(("stall_threshold_ms", millis(stallThreshold))); f.append(("stall_time_ms", millis(stallTime)))
        let stallList: [JSONValue] = stalls.map { .object([("start_s", seconds($0.start)), ("end_s", seconds($0.end))]) }
        f.append(("stalls", .array(stallList)))
        f.append(("goodput_mean_bps", .double(goodputMean)))
        f.append(("messages_sent", messagesSent.map { .int(Int64($0)) } ?? .null))
        f.append(("messages_delivered", .int(Int64(messagesDelivered))))
        f.append(("messages_lost", messagesLost.map { .int(Int64($0)) } ?? .null))
        if let l = latency {
            let lat: [(String, JSONValue)] = [("count", .int(Int64(l.count))), ("p50", millis(l.p50)), ("p90", millis(l.p90)),
                                              ("p99", millis(l.p99)), ("p999", millis(l.p999)), ("max", millis(l.max)),
                                              ("mean", millis(l.mean))]
            f.append(("latency_ms", .object(lat)))
        } else {
            f.append(("latency_ms", .null))
        }
        f.append(("reinjected_bytes", .int(reinjectedBytes))); f.append(("join_attempts", .int(Int64(joinAttempts))))
        f.append(("redundancy_ms", millis(redundancyTime))); f.append(("max_subflows", .int(Int64(maxSubflows))))
        f.append(("subflow_observer", str(subflowObserver)))
        var spans: [JSONValue] = []
        for s in subflows {
            var o: [(String, JSONValue)] = [("subflow", .int(Int64(s.subflow))), ("path", str(s.path))]
            o.append(("start_s", seconds(s.start))); o.append(("end_s", seconds(s.end)))
            o.append(("end_state", str(s.endState?.rawValue)))
            spans.append(.object(o))
        }
        f.append(("subflows", .array(spans)))
        var hs: [JSONValue] = []
        for h in handovers {
            var o: [(String, JSONValue)] = [("t_s", seconds(h.time)), ("link", .string(h.link))]
            o.append(("covered", .bool(h.covered))); o.append(("loss", .string(h.loss.rawValue)))
            o.append(("gap_ms", millis(h.gap))); o.append(("gap_start_s", seconds(h.gapStart)))
            o.append(("gap_end_s", seconds(h.gapEnd)))
            o.append(("subflow_usable_after_ms", millis(h.subflowUsableAfter)))
            o.append(("subflow_persisted", .bool(h.subflowPersisted)))
            o.append(("traffic_moved_after_ms", millis(h.trafficMovedAfter)))
            hs.append(.object(o))
        }
        f.append(("handovers", .array(hs)))
        return .object(f)
    }
}

extension ThresholdCheck {
    public var json: JSONValue {
        .object([("expression", .string(threshold.expression)), ("stack", .string(stack)), ("passed", .bool(passed)),
                 ("actual", actual?.json ?? .null), ("message", .string(message))])
    }
}

public enum ResultsDocument {
    /// The whole results.json text.
    public static func render(runs: [RunResult], checks: [ThresholdCheck], options: AnalysisOptions) -> String {
        JSONValue.object([
            ("schema", .string(ResultsFormat.schema)),
            ("version", .int(Int64(ResultsFormat.version))),
            ("log_version", .int(Int64(EventLogFormat.version))),
            ("analysis", .object([("stall_threshold_ms", millis(options.stallThreshold)),
                                  ("goodput_bin_ms", millis(options.goodputBin))])),
            ("runs", .array(runs.map(\.json))),
            ("thresholds", .array(checks.map(\.json))),
        ]).pretty() + "\n"
    }

    /// CSV files by name: goodput.csv, subflows.csv, handovers.csv, coverage.csv, summary.csv.
    public static func csv(runs: [RunResult]) -> [(name: String, text: String)] {
        func field(_ s: String) -> String {
            s.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" })
                ? "\"" + s.split(separator: "\"", omittingEmptySubsequences: false).joined(separator: "\"\"") + "\"" : s
        }
        func t(_ i: Instant?) -> String { i.map { formatFixed($0.seconds, digits: 6) } ?? "" }
        func ms(_ d: Interval?) -> String { d.map { formatFixed($0.milliseconds, digits: 3) } ?? "" }

        var goodput = "stack,conn,receiver,t_s,goodput_bps\n"
        var subflows = "stack,conn,receiver,t_s,established,usable\n"
        var handovers = "stack,conn,receiver,t_s,link,event,loss,gap_ms,subflow_usable_after_ms,traffic_moved_after_ms\n"
        var coverage = "stack,link,start_s,end_s,rate_bps\n"
        var summary = "stack,metric,value,unit\n"
        for r in runs {
            let s = field(r.stack)
            for f in r.flows {
                let prefix = "\(s),\(field(f.conn)),\(field(f.receiver))"
                for g in f.goodput { goodput += "\(prefix),\(t(g.start)),\(formatFixed(g.bitsPerSecond, digits: 0))\n" }
                for c in f.subflowCounts { subflows += "\(prefix),\(t(c.time)),\(c.established),\(c.usable)\n" }
                for h in f.handovers {
                    handovers += "\(prefix),\(t(h.time)),\(field(h.link)),\(h.covered ? "arrival" : "loss"),\(h.loss.rawValue),"
                        + "\(ms(h.gap)),\(ms(h.subflowUsableAfter)),\(ms(h.trafficMovedAfter))\n"
                }
            }
            for b in r.coverage {
                coverage += "\(s),\(field(b.link)),\(t(b.start)),\(t(b.end ?? r.duration)),\(b.rate.map { String($0.bitsPerSecond) } ?? "")\n"
            }
            for m in r.metrics {
                let v: String
                switch m.value {
                case .flag(let b): v = String(b)
                case .bytes(let b): v = String(b)
                case .count(let c): v = String(c)
                case .ratio(let x): v = formatFixed(x, digits: 6)
                default: v = formatFixed(m.value.number, digits: 3)
                }
                summary += "\(s),\(m.name),\(v),\(m.value.unit)\n"
            }
        }
        return [("goodput.csv", goodput), ("subflows.csv", subflows), ("handovers.csv", handovers),
                ("coverage.csv", coverage), ("summary.csv", summary)]
    }
}
