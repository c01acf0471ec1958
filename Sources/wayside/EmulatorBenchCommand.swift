import ArgumentParser
import Core
import Emulator
import Foundation
import Testbed

/// `wayside bench emulator`: how fast and how precisely the userspace
/// emulator forwards on one link between two namespaces, driven by kernel UDP.
struct EmulatorBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "emulator",
        abstract: "Benchmark the userspace link emulator: forwarding rate (one link and ten at once) and delay error.",
        discussion: "Needs root. Builds hosts joined by emulated links (run id prefix 'b'), and removes them afterwards.")

    @Option(help: "Datagrams per measurement.")
    var count = 100_000

    func run() throws {
        guard getuid() == 0 else { throw fail("the emulator benchmark builds namespaces and needs root") }
        print("userspace emulator (one event loop), kernel UDP from a to b on each link (one sender and one receiver thread per link)")
        print("forwarded: frames the emulator sent on per second; received: datagrams the receiving socket got per second")
        print("measurement                       | offered pps | forwarded pps | received pps | Gbit/s (forwarded frames) | delay error p50 | p99")
        print("----------------------------------|-------------|---------------|--------------|---------------------------|-----------------|------")
        var maxPPS: [Int: Double] = [:]
        for size in [64, 1472] {
            let r = try measure(link: "", size: size, count: count, interval: .zero)
            maxPPS[size] = r.forwarded
            row("max rate, \(size)-byte UDP payload", r)
        }
        for size in [64, 1472] {
            row("ten links at once, \(size)-byte UDP", try measureTen(size: size, count: max(1000, count / 10)))
        }
        for share in [0.5, 0.9] {
            let pps = maxPPS[1472]! * share
            let interval = Interval(nanoseconds: Int64(1e9 / pps))
            let r = try measure(link: "delay: 20ms", size: 1472, count: min(count, Int(pps * 3)), interval: interval, expected: .milliseconds(20))
            row("delay 20ms at \(Int(share * 100))% of max (1472 B)", r)
        }
        print("")
        print("rate accuracy, kernel TCP for 4 s (frame rate from goodput)")
        print("configured | userspace emulator      | kernel tbf (same probe)")
        print("-----------|-------------------------|------------------------")
        for megabits in [10, 100] {
            let u = try tcpRate(megabits: megabits, tbf: false), k = try tcpRate(megabits: megabits, tbf: true)
            func cell(_ v: Double) -> String { String(format: "%8.3f Mbit/s (%+.2f%%)", v / 1e6, (v / (Double(megabits) * 1e6) - 1) * 100) }
            print(String(format: "%5d mbit | ", megabits) + cell(u).padding(toLength: 25, withPad: " ", startingAt: 0) + "| " + cell(k))
        }
    }

    /// TCP goodput over one link, as frame bits per second (1448-byte
    /// segments in 1514-byte frames), between 1 s and 3.9 s of a 4 s transfer.
    func tcpRate(megabits: Int, tbf: Bool) throws -> Double {
        let yaml = """
        nodes:
          a: {role: host}
          b: {role: host}
        links:
          - {endpoints: [a, b], emulate: \(!tbf)\(tbf ? "" : ", rate: \(megabits)mbit")}
        """
        let topology = try Topology.parse(text: yaml, file: "bench-rate.yaml")
        let plan = try TestbedPlan(topology: topology, runID: RunID("b" + RunID.random().value)!)
        let testbed = try TestbedNetwork.build(plan)
        defer { try? testbed.teardown() }
        let l = plan.links[0]
        var emulator: UserspaceEmulator?
        if tbf {
            // The kernel's token bucket on a's side of a plain veth pair, with
            // a bucket of 4 ms at the rate and about 1000 frames of queue (as the emulator's default).
            let bucket = max(3028, megabits * 1_000_000 / 8 / 250)
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/tc")
            p.arguments = ["-n", l.a.namespace, "qdisc", "add", "dev", l.a.name, "root", "tbf", "rate", "\(megabits)mbit",
                           "burst", "\(bucket)", "limit", "\(1000 * 1514)"]
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw fail("tc could not add a tbf qdisc") }
        } else {
            emulator = UserspaceEmulator(links: plan.emulatedLinks)
            try emulator!.start()
        }
        defer { emulator?.stop() }
        let a = Probe.Endpoint(namespace: l.a.namespace, address: l.a.address!.address)
        let b = Probe.Endpoint(namespace: l.b.namespace, address: l.b.address!.address)
        _ = try Probe.datagrams(from: a, to: b, port: 9, count: 5, interval: .milliseconds(10), size: 64, linger: .milliseconds(100))
        let progress = try Probe.bulk(from: a, to: b, port: 7002, duration: .seconds(4))
        guard let first = progress.first,
              let s = progress.last(where: { $0.at <= first.at + .seconds(1) }),
              let e = progress.last(where: { $0.at <= first.at + .milliseconds(3900) }), e.at > s.at else { return .nan }
        return Double(e.bytes - s.bytes) * 8 * 1514 / 1448 / (e.at - s.at).seconds
    }

    struct Result { var offered: Double; var forwarded: Double; var received: Double; var gbps: Double; var p50: Double?; var p99: Double? }

    final class ProbeResult: @unchecked Sendable { var run: Swift.Result<Probe.DatagramRun, Error>? }

    func row(_ name: String, _ r: Result) {
        func ms(_ v: Double?) -> String { v.map { String(format: "%.3f ms", $0) } ?? "—" }
        print(name.padding(toLength: 34, withPad: " ", startingAt: 0) + "| "
              + String(format: "%11.0f | %13.0f | %12.0f | %25.3f | ", r.offered, r.forwarded, r.received, r.gbps)
              + ms(r.p50).padding(toLength: 15, withPad: " ", startingAt: 0) + " | " + ms(r.p99))
    }

    /// Ten pairs of hosts, each joined by its own emulated link, all through one
    /// emulator; every link's sender goes as fast as it can at the same time.
    /// Forwarded: frames out of the emulator on all links per second, from the senders' start to the last.
    func measureTen(size: Int, count: Int) throws -> Result {
        let n = 10
        let yaml = "nodes:\n" + (0..<n).map { "  a\($0): {role: host}\n  b\($0): {role: host}\n" }.joined()
            + "links:\n" + (0..<n).map { "  - {endpoints: [a\($0), b\($0)], emulate: true}\n" }.joined()
        let topology = try Topology.parse(text: yaml, file: "bench-ten.yaml")
        let plan = try TestbedPlan(topology: topology, runID: RunID("b" + RunID.random().value)!)
        let testbed = try TestbedNetwork.build(plan)
        defer { try? testbed.teardown() }
        let emulator = UserspaceEmulator(links: plan.emulatedLinks)
        try emulator.start()
        defer { emulator.stop() }
        let ends = plan.links.map { l in
            (name: l.name, a: Probe.Endpoint(namespace: l.a.namespace, address: l.a.address!.address),
             b: Probe.Endpoint(namespace: l.b.namespace, address: l.b.address!.address))
        }
        for e in ends {
            _ = try Probe.datagrams(from: e.a, to: e.b, port: 9, count: 5, interval: .milliseconds(10), size: 64, linger: .milliseconds(100))
        }
        func forwarded() -> Int { ends.reduce(0) { $0 + emulator.counters(link: $1.name, direction: .aToB).sent } }
        let before = forwarded()
        let start = UserspaceEmulator.now()
        let results = (0..<n).map { _ in ProbeResult() }
        let done = DispatchSemaphore(value: 0)
        for (k, e) in ends.enumerated() {
            Thread {
                results[k].run = Swift.Result { try Probe.datagrams(from: e.a, to: e.b, port: 7001, count: count, interval: .zero, size: size) }
                done.signal()
            }.start()
        }
        // Aggregates over the whole run: frames forwarded on all links from the senders' start
        // to the last the counters saw, and likewise datagrams sent and received on all links.
        var last = (at: start, sent: before)
        var finished = 0
        while finished < n {
            if done.wait(timeout: .now() + .milliseconds(2)) == .success { finished += 1 }
            let c = forwarded()
            if c != last.sent { last = (UserspaceEmulator.now(), c) }
        }
        let runs = try results.map { try $0.run!.get() }
        let pps = last.at > start ? Double(last.sent - before) / (last.at - start).seconds : 0
        func rate(_ times: [Instant]) -> Double {
            times.count > 1 ? Double(times.count - 1) / (times.max()! - times.min()!).seconds : 0
        }
        let offered = rate(runs.flatMap { $0.sendTimes.filter { $0 != .distantFuture } })
        let received = rate(runs.flatMap { $0.received.map { $0.sent + $0.oneWay } })
        return Result(offered: offered, forwarded: pps, received: received, gbps: pps * Double(size + 42) * 8 / 1e9, p50: nil, p99: nil)
    }

    func measure(link: String, size: Int, count: Int, interval: Interval, expected: Interval? = nil) throws -> Result {
        let yaml = """
        nodes:
          a: {role: host}
          b: {role: host}
        links:
          - {endpoints: [a, b], emulate: true\(link.isEmpty ? "" : ", " + link)}
        """
        let topology = try Topology.parse(text: yaml, file: "bench-pair.yaml")
        let plan = try TestbedPlan(topology: topology, runID: RunID("b" + RunID.random().value)!)
        let testbed = try TestbedNetwork.build(plan)
        defer { try? testbed.teardown() }
        let emulator = UserspaceEmulator(links: plan.emulatedLinks)
        try emulator.start()
        defer { emulator.stop() }
        let l = plan.links[0]
        let a = Probe.Endpoint(namespace: l.a.namespace, address: l.a.address!.address)
        let b = Probe.Endpoint(namespace: l.b.namespace, address: l.b.address!.address)
        _ = try Probe.datagrams(from: a, to: b, port: 9, count: 5, interval: .milliseconds(10), size: 64, linger: .milliseconds(100))
        // The emulator's own output rate, from its counters while the probe
        // runs (the probe's receiver is a single thread and may fall behind).
        let before = emulator.counters(link: l.name, direction: .aToB).sent
        let start = UserspaceEmulator.now()
        let result = ProbeResult()
        let done = DispatchSemaphore(value: 0)
        Thread {
            result.run = Swift.Result { try Probe.datagrams(from: a, to: b, port: 7001, count: count, interval: interval, size: size) }
            done.signal()
        }.start()
        var last = (at: start, sent: before)
        while done.wait(timeout: .now() + .milliseconds(2)) == .timedOut {
            let c = emulator.counters(link: l.name, direction: .aToB).sent
            if c != last.sent { last = (UserspaceEmulator.now(), c) }
        }
        let run = try result.run!.get()
        let emulatorPPS = last.at > start ? Double(last.sent - before) / (last.at - start).seconds : 0
        let sent = run.sendTimes.filter { $0 != .distantFuture }
        let offered = sent.count > 1 ? Double(sent.count - 1) / (sent.max()! - sent.min()!).seconds : 0
        let arrivals = run.received.map { $0.sent + $0.oneWay }
        let span = arrivals.count > 1 ? (arrivals.max()! - arrivals.min()!).seconds : 0
        let received = span > 0 ? Double(arrivals.count - 1) / span : 0
        let pps = emulatorPPS
        // Frames: UDP payload + 8 UDP + 20 IPv4 + 14 Ethernet.
        let gbps = pps * Double(size + 42) * 8 / 1e9
        var p50: Double?, p99: Double?
        if let expected {
            let errors = run.received.map { abs(($0.oneWay - expected).milliseconds) }.sorted()
            if !errors.isEmpty {
                p50 = errors[errors.count / 2]
                p99 = errors[min(errors.count - 1, Int(Double(errors.count) * 0.99))]
            }
        }
        return Result(offered: offered, forwarded: pps, received: received, gbps: gbps, p50: p50, p99: p99)
    }
}
