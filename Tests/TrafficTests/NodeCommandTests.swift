import Testing
import Foundation

/// `wayside node` and `wayside analyze` refuse bad flags with a message naming the flag,
/// exit non-zero, and create nothing (no namespace, no root needed).
@Suite struct NodeCommandTests {
    func run(_ args: [String]) throws -> (status: Int32, output: String) {
        let p = Process()
        p.executableURL = KernelTrafficRootTests.wayside
        p.arguments = args
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test(arguments: [
        (["--app", "cbr", "--connect", "8.8.8.8:53"], "--connect: cannot read '8.8.8.8:53': expected an address in 198.18.0.0/15, the testbed's range"),
        (["--app", "cbr"], "--app cbr sends: give --connect ADDR:PORT"),
        (["--app", "sink", "--listen", "198.18.0.1:1", "--connect", "198.18.0.2:1"], "--connect and --bind are for senders, not --app sink"),
        (["--app", "ftp", "--connect", "198.18.0.1:1"], "--app: 'ftp' is not one of bulk, cbr, rr, sink, echo"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--socket", "swift"], "--socket swift: give --tun NAME"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--socket", "swift", "--tun", "wt-x"], "--socket swift: give at least one --stack-address"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--socket", "swift", "--tun", "wt-x", "--stack-address", "10.0.0.1=eth0"], "expected an address in 198.18.0.0/15"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--socket", "swift", "--tun", "wt-x", "--stack-address", "198.19.255.254=eth0", "--scheduler", "fastest"], "--scheduler: 'fastest'"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--tun", "wt-x"], "--tun is for --socket swift, not --socket kernel-mptcp"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--size", "10"], "--size: 10 is outside 24 B ... 16 MiB"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--duration", "5"], "--duration: cannot read '5': expected a duration with a unit"),
        (["--app", "cbr", "--connect", "198.18.0.1:1", "--path", "rsu1"], "--path: cannot read 'rsu1': expected ADDR=LINK"),
    ])
    func badNodeFlagsNameTheFlag(args: [String], message: String) throws {
        guard FileManager.default.isExecutableFile(atPath: KernelTrafficRootTests.wayside.path) else {
            Issue.record("\(KernelTrafficRootTests.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("ws-node-\(UUID().uuidString).jsonl")
        let (status, output) = try run(["node", "--log", log.path] + args)
        #expect(status != 0)
        #expect(output.contains(message), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: log.path), "a refused command left its log behind")
    }

    @Test func analyzeRefusesAFolderWithoutLogsAndABadThreshold() throws {
        guard FileManager.default.isExecutableFile(atPath: KernelTrafficRootTests.wayside.path) else {
            Issue.record("\(KernelTrafficRootTests.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ws-analyze-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let empty = try run(["analyze", dir.path])
        #expect(empty.status != 0)
        #expect(empty.output.contains("no event logs (*.jsonl) found"))
        let bad = try run(["analyze", dir.path, "--assert", "max_gap < 600"])
        #expect(bad.status != 0)
        #expect(bad.output.contains("--assert 'max_gap < 600': column 11:"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
    }
}
