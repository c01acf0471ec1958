import ArgumentParser
import Foundation
import Netlink
import Testbed

/// Build + teardown time of Wayside's netlink executor against a shell script
/// of `ip` commands building the same plan (one process per object, as
/// Mininet-style tools do), in the same run, on the same machine.
struct TestbedBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "testbed",
        abstract: "Benchmark building and tearing down topologies of 10, 50 and 200 nodes: netlink vs ip commands.")

    @Option(parsing: .upToNextOption, help: "Topology sizes in nodes.")
    var sizes: [Int] = [10, 50, 200]

    @Option(help: "Repetitions of the netlink build per size (the median is reported).")
    var repetitions = 3

    @Option(help: "Emulation mode of the plans: userspace (two veth pairs per emulated link) or none.")
    var emulation: String = "userspace"

    func run() throws {
        guard getuid() == 0 else { throw fail("the benchmark builds namespaces and needs root") }
        guard let mode = EmulationMode(rawValue: emulation) else { throw fail("--emulation: expected userspace or none") }
        print("Testbed build + teardown: netlink (libnl, this process) vs ip commands (sh script), median of \(repetitions) netlink runs, 1 ip run")
        print("topology: synthetic highway (a fifth RSUs, each vehicle on two RSUs, core router, server), emulation \(mode.rawValue)")
        print("")
        let header = ["nodes", "links", "veths", "routes", "netlink up", "netlink down", "ip up", "ip down", "ratio up", "ratio total", "netlink: ns / links / addr+routes / wait"]
        print(header.joined(separator: " | "))
        print(header.map { String(repeating: "-", count: $0.count) }.joined(separator: " | "))
        for size in sizes {
            let topology = SyntheticTopology.highway(nodes: size)
            var ups: [Double] = [], downs: [Double] = []
            var timings: [BuildTimings] = []
            for _ in 0..<repetitions {
                let plan = try TestbedPlan(topology: topology, runID: RunID("b" + RunID.random().value)!, emulation: mode)
                let clock = ContinuousClock()
                let t0 = clock.now
                let testbed = try TestbedNetwork.build(plan)
                let t1 = clock.now
                try testbed.teardown()
                let t2 = clock.now
                ups.append(seconds(t1 - t0)); downs.append(seconds(t2 - t1))
                timings.append(testbed.timings)
            }
            let plan = try TestbedPlan(topology: topology, runID: RunID("b" + RunID.random().value)!, emulation: mode)
            let (ipUp, ipDown) = try runScripts(plan)
            let k = median(Array(ups.indices), by: ups)
            let up = ups[k], down = downs[k], t = timings[k]
            let parts = [t.namespaces, t.links, t.addressesAndRoutes, t.waitForUp].map { format(seconds($0)) }.joined(separator: " / ")
            print([String(plan.nodes.count), String(plan.links.count), String(plan.veths.count), String(plan.routes.count + plan.rules.count),
                   format(up), format(down), format(ipUp), format(ipDown),
                   String(format: "%.1f×", ipUp / up), String(format: "%.1f×", (ipUp + ipDown) / (up + down)), parts].joined(separator: " | "))
        }
        print("")
        print("goal: at least 10× faster than ip, and 200 nodes up in under 2 s")
    }

    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18 }
    func format(_ s: Double) -> String { s < 1 ? String(format: "%.0f ms", s * 1000) : String(format: "%.2f s", s) }
    func median(_ indices: [Int], by values: [Double]) -> Int { indices.sorted { values[$0] < values[$1] }[indices.count / 2] }

    /// Runs the plan's ip script and its teardown; the teardown runs even if the build fails.
    func runScripts(_ plan: TestbedPlan) throws -> (Double, Double) {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-bench-\(plan.runID)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let up = dir.appendingPathComponent("up.sh"), down = dir.appendingPathComponent("down.sh")
        try plan.shellScript().write(to: up, atomically: true, encoding: .utf8)
        try plan.teardownScript().write(to: down, atomically: true, encoding: .utf8)
        let clock = ContinuousClock()
        let t0 = clock.now
        let upStatus = try sh(up.path)
        let t1 = clock.now
        _ = try sh(down.path)
        let t2 = clock.now
        for ns in plan.namespaces { try? NetworkNamespace.delete(named: ns) }
        guard upStatus == 0 else { throw fail("the ip script for \(plan.nodes.count) nodes failed (status \(upStatus))") }
        return (seconds(t1 - t0), seconds(t2 - t1))
    }

    func sh(_ path: String) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sh")
        p.arguments = [path]
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        return p.terminationStatus
    }
}
