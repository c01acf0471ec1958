import Foundation
import Testing
@testable import wayside

/// `wayside run` end to end (root): short hand-written drives on highway-2rsu
/// with kernel-mptcp and kernel-tcp, checked against what each timeline implies.
/// The two experiments run at once (each stack build has its own random run id).
@Suite(.enabled(if: getuid() == 0, "needs root to build network namespaces"))
struct RunCommandRootTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let wayside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wayside")

    /// rsu1 covers 0–4 s, nothing covers 4–5.5 s, rsu2 from 5.5 s; 9 s in all.
    static let breakBeforeMake = """
    description: break-before-make, a 1.5 s outage
    topology: highway-2rsu
    duration: 9s
    events:
      - {at: 0s, link: car-rsu2, coverage: down, loss: silent}
      - {at: 4s, link: car-rsu1, coverage: down, loss: silent}
      - {at: 5.5s, link: car-rsu2, coverage: up}

    """

    /// rsu1 covers 0–5 s, rsu2 all along: overlapping coverage when rsu1 is
    /// lost; 12 s in all (kernel MPTCP leaves a silently dead subflow in about
    /// 0.5–1 s on an idle machine, later on a loaded one). (rsu2 covers from the start because kernel MPTCP's
    /// in-kernel path manager never retries a join that failed while a unit was
    /// out of range — ARP gives up — see BASELINES.md.)
    static let makeBeforeBreak = """
    description: make-before-break, rsu2 covers while rsu1 is lost
    topology: highway-2rsu
    duration: 12s
    events:
      - {at: 5s, link: car-rsu1, coverage: down, loss: silent}

    """

    struct Outcome { var status: Int32; var output: String; var results: [String: Any]?; var folder: URL? }

    /// Starts `wayside run` on a route written to a temporary folder.
    func start(_ route: String, name: String, dir: URL, extra: [String] = []) throws -> (Process, Pipe) {
        let routeFile = dir.appendingPathComponent("\(name).yaml")
        try Data(route.utf8).write(to: routeFile)
        let p = Process()
        p.executableURL = Self.wayside
        p.arguments = ["run", "--route", routeFile.path, "--topology", Self.repository.appendingPathComponent("Topologies/highway-2rsu.yaml").path,
                       "--stack", "kernel-mptcp", "--stack", "kernel-tcp", "--results", dir.appendingPathComponent("results-\(name)").path] + extra
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        return (p, pipe)
    }

    func finish(_ started: (Process, Pipe), name: String, dir: URL) throws -> Outcome {
        let data = started.1.fileHandleForReading.readDataToEndOfFile()
        started.0.waitUntilExit()
        let base = dir.appendingPathComponent("results-\(name)")
        let folder = (try? FileManager.default.contentsOfDirectory(at: base, includingPropertiesForKeys: nil))?.first
        var results: [String: Any]?
        if let folder, let json = try? Data(contentsOf: folder.appendingPathComponent("results.json")) {
            results = try JSONSerialization.jsonObject(with: json) as? [String: Any]
        }
        return Outcome(status: started.0.terminationStatus, output: String(decoding: data, as: UTF8.self), results: results, folder: folder)
    }

    /// The first flow of a stack's run in results.json.
    func flow(_ results: [String: Any]?, stack: String) -> [String: Any]? {
        let runs = results?["runs"] as? [[String: Any]] ?? []
        return (runs.first { $0["stack"] as? String == stack }?["flows"] as? [[String: Any]])?.first
    }

    func namespacesOf(_ output: String) -> [String] {
        // "kernel-mptcp: run abc123 building …" names each stack's run id.
        output.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(separator: " ")
            guard words.count > 2, words[1] == "run", words[0].hasSuffix(":") else { return nil }
            return "ws-\(words[2])-"
        }
    }

    /// Issue 10 with the Swift stack: the embedded highway drive, cut short,
    /// runs the Swift stack in both end points' `wayside node` processes over
    /// the testbed's placement; its policies are recorded and nothing is left.
    @Test func swiftStackRunsTheDefaultDrive() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.wayside.path) else {
            Issue.record("\(Self.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-run-test-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let p = Process()
        p.executableURL = Self.wayside
        p.arguments = ["run", "--stack", "swift", "--duration", "6s", "--scheduler", "min-rtt", "--swift-path-manager", "fullmesh",
                       "--results", dir.appendingPathComponent("results-swift").path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let o = try finish((p, pipe), name: "swift", dir: dir)
        #expect(o.status == 0, "\(o.output)")
        let runs = o.results?["runs"] as? [[String: Any]] ?? []
        let run = try #require(runs.first { $0["stack"] as? String == "swift" }, "\(o.output)")
        let attributes = run["attributes"] as? [String: String] ?? [:]
        #expect(attributes["scheduler"] == "min-rtt" && attributes["path_manager"] == "fullmesh", "\(attributes)")
        let f = try #require(flow(o.results, stack: "swift"))
        #expect((f["messages_delivered"] as? Int ?? 0) > 100, "\(f)")
        #expect(f["mptcp"] as? Bool == true, "\(f)")
        let left = (try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? []
        for prefix in namespacesOf(o.output) { #expect(!left.contains { $0.hasPrefix(prefix) }) }
    }

    @Test func kernelStacksThroughTwoHandovers() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.wayside.path) else {
            Issue.record("\(Self.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-run-test-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let junit = dir.appendingPathComponent("junit.xml")

        let bbm = try start(Self.breakBeforeMake, name: "bbm", dir: dir,
                            extra: ["--assert", "kernel-tcp:survived == true", "--junit", junit.path])
        let mbb = try start(Self.makeBeforeBreak, name: "mbb", dir: dir, extra: ["--assert", "kernel-tcp:total_stall >= 4000ms"])
        let b = try finish(bbm, name: "bbm", dir: dir)
        let m = try finish(mbb, name: "mbb", dir: dir)

        // Break-before-make: plain TCP loses its only path at 4 s for good (its
        // address is rsu1's): it stalls at least the 1.5 s outage — in fact until
        // the end — and does not survive; the threshold saying it survives fails.
        #expect(b.status == 1, "a failed threshold exits 1: \(b.output)")
        let tcp = flow(b.results, stack: "kernel-tcp")
        #expect((tcp?["stall_time_ms"] as? Double ?? 0) >= 1500, "\(String(describing: tcp))")
        #expect((tcp?["max_gap_ms"] as? Double ?? 0) >= 4500)
        #expect(tcp?["survived"] as? Bool == false)
        // rsu2 out of range at 0 s is its initial state: the handovers are rsu1's loss and rsu2's arrival.
        #expect((tcp?["handovers"] as? [Any])?.count == 2, "\(String(describing: tcp?["handovers"]))")
        #expect((try? String(contentsOf: junit, encoding: .utf8))?.contains("<failure") == true)
        let mptcpOutage = flow(b.results, stack: "kernel-mptcp")
        #expect((mptcpOutage?["max_gap_ms"] as? Double ?? 0) >= 1500, "no stack delivers while nothing covers the vehicle")

        // Make-before-break: a passing threshold exits 0; MPTCP has its second
        // subflow on rsu2 before rsu1 goes; TCP stalls from 5 s to the end.
        #expect(m.status == 0, "\(m.output)")
        let mptcp = flow(m.results, stack: "kernel-mptcp")
        #expect((mptcp?["max_subflows"] as? Int ?? 0) >= 2, "\(String(describing: mptcp))")
        // rsu2 never gets a coverage change and is covered the whole run: both subflows are
        // usable until rsu1 goes at 5 s (issue 10: this was 0), and that loss is the one handover.
        #expect((mptcp?["redundancy_ms"] as? Double ?? 0) > 1000, "\(String(describing: mptcp))")
        #expect((mptcp?["handovers"] as? [Any])?.count == 1)
        // Whether Linux then moves the CBR stream off the silently dead subflow
        // within seconds is the kernel's behaviour, not ours, and it varies from
        // run to run here: 0.4–0.6 s in most runs, no move at all for 8 s in
        // others (the dead subflow stays ESTABLISHED in RTO backoff; see
        // BASELINES.md, point 3). Recorded, not required.
        withKnownIssue("Linux MPTCP sometimes keeps a silently dead subflow for seconds (BASELINES.md)", isIntermittent: true) {
            #expect(mptcp?["survived"] as? Bool == true, "\(String(describing: mptcp))")
            #expect((mptcp?["max_gap_ms"] as? Double ?? .infinity) < 4000, "well below plain TCP's 7 s")
        }
        // Plain TCP's address is rsu1's: from 5 s to the end (7 s) nothing arrives.
        let tcpOverlap = flow(m.results, stack: "kernel-tcp")
        #expect((tcpOverlap?["stall_time_ms"] as? Double ?? 0) >= 6500, "\(String(describing: tcpOverlap))")

        // Results folders hold every log, results, CSV and the report; the MPTCP configuration is recorded.
        for o in [b, m] {
            let folder = try #require(o.folder)
            for f in ["results.json", "report.html", "goodput.csv", "handovers.csv", "kernel-mptcp/configuration.txt",
                      "kernel-mptcp/link-car-rsu1.jsonl", "kernel-tcp/car-dl0.jsonl", "kernel-tcp/server-dl0.jsonl"] {
                #expect(FileManager.default.fileExists(atPath: folder.appendingPathComponent(f).path), "\(f) missing")
            }
            let config = try String(contentsOf: folder.appendingPathComponent("kernel-mptcp/configuration.txt"), encoding: .utf8)
            #expect(config.contains("mptcp endpoint add") && config.contains("signal"))
            // Nothing left behind: no namespace of either stack's build.
            let left = try FileManager.default.contentsOfDirectory(atPath: "/run/netns")
            for prefix in namespacesOf(o.output) { #expect(!left.contains { $0.hasPrefix(prefix) }, "\(prefix)* left in /run/netns") }
            #expect(namespacesOf(o.output).count == 2)
        }
    }
}

/// `wayside run`'s flag and file checks: each bad input names its flag or
/// file:line:column, exits non-zero and builds nothing (these need no root).
struct RunCommandValidationTests {
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = RunCommandRootTests.wayside
        p.arguments = ["run"] + arguments
        let pipe = Pipe()
        p.standardError = pipe
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }

    @Test(arguments: [
        (["--traffic", "video"], "--traffic: 'video'"),
        (["--rate", "0"], "--rate: 0"),
        (["--size", "10"], "--size: 10"),
        (["--size", "ten"], "--size:"),
        (["--direction", "sideways"], "--direction: 'sideways'"),
        (["--stack", "quic"], "--stack: 'quic'"),
        (["--path-manager", "ndiffports"], "--path-manager: 'ndiffports'"),
        (["--stack", "swift", "--scheduler", "fastest"], "--scheduler: 'fastest'"),
        (["--stack", "swift", "--congestion-control", "bbr"], "--congestion-control: 'bbr'"),
        (["--stack", "swift", "--swift-path-manager", "ndiffports"], "--swift-path-manager: 'ndiffports'"),
        (["--duration", "0s"], "--duration:"),
        (["--assert", "max_gap <"], "--assert"),
        (["--traffic", "rr", "--direction", "down"], "--direction: rr"),
        (["--route", "/nonexistent/route.yaml"], "/nonexistent/route.yaml: no such file"),
    ])
    func badFlagsNameTheFlag(arguments: [String], message: String) throws {
        let r = try run(arguments)
        #expect(r.status != 0)
        #expect(r.output.contains(message), "\(r.output)")
    }

    @Test func badExperimentFileGivesFileLineColumn() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-run-\(UInt32.random(in: 0...UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("bad.yaml")
        try Data("route: highway-80-gaps\ntrafic: cbr\nstacks: [kernel-tcp, sctp]\nrate: -5\n".utf8).write(to: file)
        let r = try run([file.path])
        #expect(r.status != 0)
        #expect(r.output.contains("\(file.path):2:1: unknown key 'trafic'"), "\(r.output)")
        #expect(r.output.contains("\(file.path):3:22:") && r.output.contains("sctp"))
        #expect(r.output.contains("\(file.path):4:7:"))
    }

    @Test func embeddedDefaultMatchesTheShippedFiles() throws {
        let root = RunCommandRootTests.repository
        #expect(try String(contentsOf: root.appendingPathComponent("Topologies/highway-2rsu.yaml"), encoding: .utf8) == DefaultExperiment.topology)
        #expect(try String(contentsOf: root.appendingPathComponent("Routes/highway-2rsu-30s.yaml"), encoding: .utf8) == DefaultExperiment.route)
    }
}
