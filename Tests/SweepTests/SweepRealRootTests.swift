import Foundation
import Testing
@testable import Sweep
@testable import wayside

/// `wayside sweep` with real runs (root): two stacks on a short break-before-make
/// drive, both at once (`--jobs 2`), each in its own namespaces; nothing is left.
@Suite(.enabled(if: getuid() == 0, "needs root to build network namespaces"))
struct SweepRealRootTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let wayside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("wayside")

    /// rsu1 covers 0–3 s, nothing 3–4 s, rsu2 from 4 s; 7 s in all.
    static let route = """
    description: break-before-make, a 1 s outage
    topology: highway-2rsu
    duration: 7s
    events:
      - {at: 0s, link: car-rsu2, coverage: down, loss: silent}
      - {at: 3s, link: car-rsu1, coverage: down, loss: silent}
      - {at: 4s, link: car-rsu2, coverage: up}

    """

    func namespaces() -> Set<String> {
        Set((try? FileManager.default.contentsOfDirectory(atPath: "/run/netns")) ?? [])
    }

    @Test func twoStacksRunInParallelEachInItsOwnNamespaces() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-sweep-real-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(Self.route.utf8).write(to: dir.appendingPathComponent("outage.yaml"))
        let sweep = """
        name: real-outage
        matrix:
          route: [outage.yaml]
          topology: [\(Self.repository.appendingPathComponent("Topologies/highway-2rsu.yaml").path)]
          stack: [kernel-mptcp, kernel-tcp]
          rate: [200]
        assert:
          - "max_gap > 500ms"

        """
        try Data(sweep.utf8).write(to: dir.appendingPathComponent("s.yaml"))
        let before = namespaces()
        let p = Process()
        p.executableURL = Self.wayside
        p.arguments = ["sweep", dir.appendingPathComponent("s.yaml").path, "--jobs", "2", "--output", dir.appendingPathComponent("out").path]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        #expect(p.terminationStatus == 0, "\(output)")
        let manifest = try readManifest(dir.appendingPathComponent("out").path)
        #expect(manifest.records.count == 2)
        #expect(manifest.records.allSatisfy { $0.status == .ok }, "\(manifest.records.map { $0.message ?? "" })")
        // Both lived through the 1 s outage with a gap of at least its length.
        for r in manifest.records { #expect((r.metric("max_gap") ?? 0) >= 900, "\(r.id): \(r.metrics)") }
        // Run ids (so namespaces) differ: each run's configuration.txt names its own.
        let ids = try manifest.records.map { r -> String in
            let stack = r.parameters.first { $0.dimension == "stack" }!.value
            let text = try String(contentsOf: dir.appendingPathComponent("out/runs/\(r.id)/\(stack)/configuration.txt"), encoding: .utf8)
            return String(text.split(separator: " ")[1])
        }
        #expect(Set(ids).count == 2)
        #expect(output.contains("2 runs in"))
        // Nothing of either run is left (other tests may have namespaces of their own meanwhile).
        for id in ids { #expect(namespaces().filter { $0.contains(id) }.isEmpty) }
        _ = before
        let csv = try String(contentsOf: dir.appendingPathComponent("out/summary.csv"), encoding: .utf8)
        #expect(csv.split(separator: "\n").count == 3)
    }
}
