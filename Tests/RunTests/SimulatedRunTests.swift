import Analysis
import Core
import Foundation
import Testing
@testable import wayside

/// `wayside run --simulate` (issue 8): the Swift stack in virtual time writes
/// a real run's results folder, byte for byte the same for one seed, with
/// metrics that match what the coverage timeline implies. No root needed.
struct SimulatedRunTests {
    /// rsu2 appears at 2 s, rsu1 is lost (silently) at 3.5 s: 1.5 s of overlap; 5 s in all.
    /// (rsu1's coverage at 0 s is explicit: analysis counts a link whose first
    /// coverage event is a loss as uncovered before it.)
    static let overlap = """
    description: make-before-break, 1.5 s of overlap
    topology: highway-2rsu
    duration: 5s
    events:
      - {at: 0s, link: car-rsu1, coverage: up}
      - {at: 0s, link: car-rsu2, coverage: down, loss: silent}
      - {at: 2s, link: car-rsu2, coverage: up}
      - {at: 3.5s, link: car-rsu1, coverage: down, loss: silent}

    """

    /// rsu1 is lost at 2 s, rsu2 appears at 3.5 s: a 1.5 s coverage gap; 6 s in all.
    static let gap = """
    description: break-before-make, a 1.5 s gap
    topology: highway-2rsu
    duration: 6s
    events:
      - {at: 0s, link: car-rsu2, coverage: down, loss: carrier}
      - {at: 2s, link: car-rsu1, coverage: down, loss: carrier}
      - {at: 3.5s, link: car-rsu2, coverage: up}

    """

    /// highway-2rsu with 1% loss on both radio links: randomness the seed decides.
    static var lossyTopology: String {
        DefaultExperiment.topology.replacingOccurrences(of: "    queue: 100\n", with: "    queue: 100\n    loss: 1%\n")
    }

    static func experiment(route: String, topology: String = DefaultExperiment.topology, traffic: Experiment.Traffic = .cbr) -> Experiment {
        var e = Experiment(topology: Experiment.Source(name: "highway-2rsu (test)", text: topology),
                           route: Experiment.Source(name: "test route", text: route))
        e.traffic = traffic
        e.stacks = [.swift]
        return e
    }

    static func temporaryFolder() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("wayside-sim-\(UInt64.random(in: 0...UInt64.max))")
    }

    /// Every file below `dir`, by path relative to it.
    static func contents(of dir: URL) throws -> [String: Data] {
        var out: [String: Data] = [:]
        let base = dir.standardizedFileURL.path
        guard let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: [.isRegularFileKey]) else { return out }
        for case let url as URL in e where (try url.resourceValues(forKeys: [.isRegularFileKey])).isRegularFile == true {
            out[String(url.standardizedFileURL.path.dropFirst(base.count + 1))] = try Data(contentsOf: url)
        }
        return out
    }

    func metric(_ run: RunResult, _ name: String) -> Double? { run.metric(name)?.number }

    @Test func sameSeedGivesIdenticalFoldersAndOtherSeedsDiffer() throws {
        let e = Self.experiment(route: Self.overlap, topology: Self.lossyTopology)
        let dirs = (0..<3).map { _ in Self.temporaryFolder() }
        defer { for d in dirs { try? FileManager.default.removeItem(at: d) } }
        _ = try SimulatedRun.run(experiment: e, seed: 7, outputDirectory: dirs[0])
        _ = try SimulatedRun.run(experiment: e, seed: 7, outputDirectory: dirs[1])
        _ = try SimulatedRun.run(experiment: e, seed: 8, outputDirectory: dirs[2])
        let a = try Self.contents(of: dirs[0]), b = try Self.contents(of: dirs[1]), c = try Self.contents(of: dirs[2])
        #expect(a.keys.sorted() == b.keys.sorted())
        #expect(a.keys.contains("results.json") && a.keys.contains("report.html") && a.keys.contains("swift/car-dl0.jsonl")
                && a.keys.contains("swift/link-car-rsu1.jsonl") && a.keys.contains("goodput.csv"), "\(a.keys.sorted())")
        for (name, data) in a { #expect(b[name] == data, "\(name) differs between two runs with seed 7") }
        // Another seed: other losses, so other delivery times in the logs and other metrics.
        #expect(a["swift/car-dl0.jsonl"] != c["swift/car-dl0.jsonl"])
        #expect(a["results.json"] != c["results.json"])
    }

    @Test func logsHaveTheRealRunsShape() throws {
        let dir = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try SimulatedRun.run(experiment: Self.experiment(route: Self.overlap), seed: 1, outputDirectory: dir)
        let text = try String(contentsOf: dir.appendingPathComponent("swift/car-dl0.jsonl"), encoding: .utf8)
        let log = EventLogFile.parse(text: text, file: "car-dl0.jsonl")
        #expect(log.problems.isEmpty, "\(log.problems)")
        #expect(log.stack == "swift")
        #expect(log.attributes["simulated"] == "true")
        let kinds = Set(log.events.map(\.body.kind))
        for k in ["app.start", "app.delivered", "conn.state", "subflow.state", "subflow.join", "subflow.progress", "app.stop"] {
            #expect(kinds.contains(k), "car-dl0.jsonl has no \(k)")
        }
        let server = try String(contentsOf: dir.appendingPathComponent("swift/server-dl0.jsonl"), encoding: .utf8)
        #expect(server.contains("\"kind\":\"app.sent\""))
        let link = try String(contentsOf: dir.appendingPathComponent("swift/link-car-rsu2.jsonl"), encoding: .utf8)
        #expect(link.contains("\"kind\":\"coverage\"") && link.contains("\"kind\":\"run.end\""))
        #expect(r.runs.count == 1 && r.runs[0].stack == "swift")
        // The CBR stream's messages arrive, but for those still queued or in flight at the end.
        let flow = try #require(r.runs.first?.flows.first)
        let sent = try #require(flow.messagesSent), delivered = try #require(flow.messagesDelivered)
        #expect(sent > 4_500)
        #expect(Double(delivered) > 0.95 * Double(sent), "\(delivered) of \(sent) delivered")
    }

    /// Overlapping coverage: the stack joins rsu2 while rsu1 still covers,
    /// so losing rsu1 costs no more than stale detection (a few RTTs): the
    /// largest gap stays far below the 1.5 s the overlap lasts, nothing stalls
    /// for long, and two subflows were usable at once.
    @Test func overlapCoverageGivesSmallGaps() throws {
        let dir = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try SimulatedRun.run(experiment: Self.experiment(route: Self.overlap), seed: 1, outputDirectory: dir)
        let run = try #require(r.runs.first)
        let maxGap = try #require(metric(run, "max_gap"))
        #expect(maxGap < 400, "max_gap \(maxGap) ms")
        #expect(metric(run, "survived") == 1)
        #expect((metric(run, "max_subflows") ?? 0) >= 2)
        #expect((metric(run, "redundancy") ?? 0) > 1000, "two subflows usable for most of the 1.5 s overlap")
    }

    /// A 1.5 s coverage gap: nothing can be delivered while no unit covers
    /// the vehicle, so the receiver stalls for at least the gap; delivery
    /// resumes on rsu2 (the connection survives).
    @Test func coverageGapStallsAtLeastTheGap() throws {
        let dir = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try SimulatedRun.run(experiment: Self.experiment(route: Self.gap), seed: 1, outputDirectory: dir)
        let run = try #require(r.runs.first)
        let maxGap = try #require(metric(run, "max_gap"))
        let stall = try #require(metric(run, "total_stall"))
        #expect(maxGap >= 1_500, "max_gap \(maxGap) ms")
        #expect(stall >= 1_500, "total_stall \(stall) ms")
        // Not much more than the gap: rsu2's join is retried every 50 ms and the first data follows it.
        #expect(maxGap < 2_500, "max_gap \(maxGap) ms")
        #expect(metric(run, "survived") == 1)
    }

    @Test func bulkTrafficDeliversBytes() throws {
        let dir = Self.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try SimulatedRun.run(experiment: Self.experiment(route: Self.overlap, traffic: .bulk), seed: 1, outputDirectory: dir)
        let run = try #require(r.runs.first)
        // 12 Mbit/s radio links for 5 s: several MB, not more than both links could carry.
        let delivered = try #require(metric(run, "delivered_bytes"))
        #expect(delivered > 3_000_000 && delivered < 5.0 * 24e6 / 8, "delivered \(delivered) B")
    }

    @Test func rrIsRefusedClearly() throws {
        let dir = Self.temporaryFolder()
        var e = Self.experiment(route: Self.overlap, traffic: .rr)
        e.direction = .up
        #expect(throws: RunFailure.self) { _ = try SimulatedRun.run(experiment: e, seed: 1, outputDirectory: dir) }
        #expect(!FileManager.default.fileExists(atPath: dir.path), "nothing is left behind")
    }
}

/// The command line's side of `--simulate` (no root).
struct SimulatedRunCommandTests {
    @Test func kernelStacksCannotBeSimulated() throws {
        let r = try RunCommandValidationTests().run(["--simulate", "--stack", "kernel-mptcp"])
        #expect(r.status != 0)
        #expect(r.output.contains("--stack kernel-mptcp") && r.output.contains("cannot be simulated"), "\(r.output)")
    }

    /// Two processes (each with its own hashing seed, so any output that
    /// followed a dictionary's order would differ) write identical folders.
    @Test func twoProcessesWriteIdenticalFolders() throws {
        let dirs = [SimulatedRunTests.temporaryFolder(), SimulatedRunTests.temporaryFolder()]
        defer { for d in dirs { try? FileManager.default.removeItem(at: d) } }
        for d in dirs {
            let r = try RunCommandValidationTests().run(["--simulate", "--duration", "2s", "--seed", "5", "--quiet", "--results", d.path])
            #expect(r.status == 0, "\(r.output)")
        }
        let folders = try dirs.map { try FileManager.default.contentsOfDirectory(at: $0, includingPropertiesForKeys: nil) }
        try #require(folders.allSatisfy { $0.count == 1 })
        let a = try SimulatedRunTests.contents(of: folders[0][0]), b = try SimulatedRunTests.contents(of: folders[1][0])
        #expect(!a.isEmpty && a.keys.sorted() == b.keys.sorted())
        for (name, data) in a { #expect(b[name] == data, "\(name) differs between two processes") }
    }

    @Test func defaultStacksSimulateSwiftOnlyAndSaySo() throws {
        let dir = SimulatedRunTests.temporaryFolder()
        defer { try? FileManager.default.removeItem(at: dir) }
        let r = try RunCommandValidationTests().run(["--simulate", "--duration", "3s", "--results", dir.path])
        #expect(r.status == 0, "\(r.output)")
        #expect(r.output.contains("Swift stack only"), "\(r.output)")
        #expect(r.output.contains("report: "), "\(r.output)")
    }
}
