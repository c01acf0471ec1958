import Foundation
import Testing
import Netlink
@testable import Testbed

/// The `wayside` binary built beside the test bundle.
let waysideBinary: String = {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wayside").path
}()

struct Outcome {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs wayside to completion.
func wayside(_ arguments: [String]) throws -> Outcome {
    let p = try startWayside(arguments)
    let out = p.out.fileHandleForReading.readDataToEndOfFile()
    let err = p.err.fileHandleForReading.readDataToEndOfFile()
    p.process.waitUntilExit()
    return Outcome(status: p.process.terminationStatus, stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self))
}

func startWayside(_ arguments: [String]) throws -> (process: Process, out: Pipe, err: Pipe) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: waysideBinary)
    p.arguments = arguments
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    return (p, out, err)
}

func temporaryFile(_ name: String, _ text: String) throws -> String {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-test-\(RunID.random())")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    let path = dir.appendingPathComponent(name).path
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

/// A topology file of about `nodes` nodes (the synthetic highway) as YAML.
func largeTopologyYAML(nodes: Int) -> String {
    let t = SyntheticTopology.highway(nodes: nodes)
    var lines = ["nodes:"]
    for n in t.nodes { lines.append("  \(n.name): {role: \(n.role.rawValue)\(n.position.map { ", position: [\($0.x), \($0.y)], radio: {range: 300m}" } ?? "")}") }
    lines.append("links:")
    for l in t.links { lines.append("  - {endpoints: [\(l.a.node), \(l.b.node)]\(l.kind == .radio ? ", rate: 12mbit, delay: 2ms" : "")}") }
    return lines.joined(separator: "\n") + "\n"
}

@Suite("wayside command line: bad input")
struct CommandLineBadInputTests {
    static let cases: [(String, String, String)] = [
        ("unknown key", "nodes: {car: {role: vehicle, rnage: 1}}\nlinks: []\n", ":1:30: unknown key 'rnage'"),
        ("dangling reference", "nodes: {car: {role: vehicle}, r: {role: rsu}}\nlinks:\n  - {endpoints: [car, rr]}\n", ":3:23: no node named 'rr'"),
        ("duplicate link", "nodes: {car: {role: vehicle}, r: {role: rsu}}\nlinks:\n  - {endpoints: [car, r]}\n  - {endpoints: [car, r]}\n", ":4:5: a second link named 'car-r'"),
        ("bad unit", "nodes: {car: {role: vehicle}, r: {role: rsu}}\nlinks:\n  - {endpoints: [car, r], rate: 54mbitz}\n", ":3:33: cannot read '54mbitz'"),
        ("address clash", "nodes: {car: {role: vehicle}, r: {role: rsu}}\nlinks:\n  - {endpoints: [car, r], addresses: [198.18.1.1/24, 198.18.1.1/24]}\n", ":3:5: both ends of link 'car-r' have address 198.18.1.1"),
        ("no radio link", "nodes: {car: {role: vehicle}, h: {role: host}}\nlinks:\n  - {endpoints: [car, h]}\n", ":1:9: vehicle 'car' has no radio link"),
        ("not YAML", "nodes: [\n", ":2:1: not valid YAML"),
    ]

    @Test(arguments: cases.map(\.0))
    func badFileExitsNonZeroWithLocationAndCreatesNothing(kind: String) throws {
        let (_, text, expected) = Self.cases.first { $0.0 == kind }!
        let path = try temporaryFile("bad.yaml", text)
        let runID = uniqueRunID()
        for command in ["plan", "up"] {
            let r = try wayside([command, path, "--run-id", runID.value])
            #expect(r.status == 1, "\(command): \(r.stderr)")
            #expect(r.stderr.contains(path + expected), "\(command): \(r.stderr)")
            #expect(r.stdout.isEmpty)
        }
        #expect(NetworkNamespace.list().filter { $0.hasPrefix(runID.namespacePrefix) }.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: RunRegistry().path(runID.value)))
    }

    @Test func missingFileAndBadFlags() throws {
        let r = try wayside(["up", "/nonexistent/topology.yaml"])
        #expect(r.status == 1)
        #expect(r.stderr.hasPrefix("/nonexistent/topology.yaml: cannot read the file"))
        let f = try wayside(["plan", shippedTopology("highway-2rsu"), "--run-id", "Bad!"])
        #expect(f.status != 0)
        #expect(f.stderr.contains("--run-id"))
        let c = try wayside(["cleanup"])
        #expect(c.status != 0)
        #expect(c.stderr.contains("--run ID or --all"))
    }
}

@Suite("wayside command line: up, exec, down, signals (root, namespaces)", .enabled(if: getuid() == 0))
struct CommandLineRootTests {
    @Test func upExecListDown() throws {
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        let up = try wayside(["up", shippedTopology("highway-2rsu"), "--run-id", runID.value])
        defer { _ = try? wayside(["cleanup", "--run", runID.value]) }
        #expect(up.status == 0, "\(up.stderr)")
        #expect(up.stdout.contains("run \(runID) is up"))
        let exec = try wayside(["exec", "--run", runID.value, "car", "--", "ip", "-br", "addr"])
        #expect(exec.status == 0)
        #expect(exec.stdout.contains("198.18.0.1/30") && exec.stdout.contains("198.18.0.5/30"))
        #expect(try wayside(["exec", "--run", runID.value, "nobody", "--", "true"]).status == 1)
        #expect(try wayside(["ls"]).stdout.contains(runID.value))
        let down = try wayside(["down", "--run", runID.value])
        #expect(down.status == 0)
        #expect(try Leftovers.snapshot(runID) == before)
        #expect(!FileManager.default.fileExists(atPath: RunRegistry().path(runID.value)))
    }

    /// Starts `up` on a large topology and signals it once its first namespace exists.
    func interruptBuild(signal: Int32) throws -> (RunID, Int32, Leftovers) {
        let path = try temporaryFile("large.yaml", largeTopologyYAML(nodes: 200))
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        let p = try startWayside(["up", path, "--run-id", runID.value])
        let deadline = Date().addingTimeInterval(20)
        while NetworkNamespace.list().filter({ $0.hasPrefix(runID.namespacePrefix) }).isEmpty, p.process.isRunning, Date() < deadline {
            usleep(500)
        }
        kill(p.process.processIdentifier, signal)
        p.process.waitUntilExit()
        _ = p.out.fileHandleForReading.readDataToEndOfFile()
        return (runID, p.process.terminationStatus, before)
    }

    @Test func sigintDuringABuildLeavesNothing() throws {
        let (runID, status, before) = try interruptBuild(signal: SIGINT)
        defer { _ = try? wayside(["cleanup", "--run", runID.value]) }
        #expect(status == 128 + SIGINT)
        #expect(try Leftovers.snapshot(runID) == before)
        #expect(!FileManager.default.fileExists(atPath: RunRegistry().path(runID.value)))
    }

    @Test func sigkillThenCleanupLeavesNothing() throws {
        let (runID, _, before) = try interruptBuild(signal: SIGKILL)
        // The killed run left namespaces and its record; cleanup removes exactly those.
        #expect(FileManager.default.fileExists(atPath: RunRegistry().path(runID.value)))
        #expect(!NetworkNamespace.list().filter { $0.hasPrefix(runID.namespacePrefix) }.isEmpty)
        let c = try wayside(["cleanup", "--run", runID.value])
        #expect(c.status == 0, "\(c.stderr)")
        #expect(try Leftovers.snapshot(runID) == before)
        #expect(!FileManager.default.fileExists(atPath: RunRegistry().path(runID.value)))
    }
}
