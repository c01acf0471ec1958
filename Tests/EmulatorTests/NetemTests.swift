import Core
import Foundation
import Netlink
import Testbed
import Testing
@testable import Emulator

let netemHere = getuid() == 0 && NetemSupport.probe().available

/// Runs inside a kernel that has sch_netem (the guest that
/// `NetemGuestRootTests` boots); skipped elsewhere.
@Suite("netem backend where the kernel has sch_netem (root)", .enabled(if: netemHere), .serialized)
struct NetemBackendRootTests {
    @Test func delayAndRateAsConfigured() throws {
        let pair = try EmulatedPair(link: "delay: 20ms", backend: .netem)
        defer { pair.close() }
        try pair.warmUp()
        let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 6001, count: 1000, interval: .milliseconds(2))
        let errors = run.received.map { abs($0.oneWay.milliseconds - 20) }
        print("netem delay 20ms: \(run.received.count)/\(run.sent), |error| p50 \(percentile(errors, 0.5)) ms, p99 \(percentile(errors, 0.99)) ms")
        #expect(run.received.count == run.sent)
        #expect(percentile(errors, 0.99) <= 0.5)

        let rated = try EmulatedPair(link: "rate: 10mbit", backend: .netem)
        defer { rated.close() }
        try rated.warmUp()
        let progress = try Probe.bulk(from: rated.a, to: rated.b, port: 6002, duration: .seconds(4))
        let measured = try #require(frameRate(progress, from: .seconds(1), to: .milliseconds(3900)))
        print("netem rate 10mbit: \(measured / 1e6) Mbit/s (\((measured / 1e7 - 1) * 100)%)")
        #expect(abs(measured / 1e7 - 1) <= 0.03)
    }

    @Test func coverageChangesInPlace() throws {
        let pair = try EmulatedPair(link: "delay: 1ms", timeline: [
            TimelineEvent(at: .milliseconds(600), link: "a-b", change: .coverage(false, loss: .silent)),
            TimelineEvent(at: .milliseconds(1000), link: "a-b", change: .coverage(true, loss: .silent)),
        ], backend: .netem)
        defer { pair.close() }
        try pair.warmUp()
        let before = try qdiscs(pair)
        let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 6003, count: 1200, interval: .milliseconds(1), size: 100)
        let after = try qdiscs(pair)
        let origin = pair.emulator.origin
        let arrived = Set(run.received.map(\.sequence))
        var inGapArrived = 0, outsideLost = 0
        for (seq, sent) in run.sendTimes.enumerated() where sent != .distantFuture {
            let t = sent - origin
            if t > .milliseconds(610) && t < .milliseconds(990) { if arrived.contains(seq) { inGapArrived += 1 } }
            else if t > .milliseconds(1010) || (t > .milliseconds(200) && t < .milliseconds(590)) { if !arrived.contains(seq) { outsideLost += 1 } }
        }
        let late = pair.emulator.appliedChanges.map(\.lateness.milliseconds)
        print("netem coverage: \(late.count) changes, lateness \(late) ms; arrived in gap \(inGapArrived), lost outside \(outsideLost); qdiscs \(before) -> \(after)")
        #expect(inGapArrived == 0 && outsideLost == 0)
        #expect(pair.emulator.appliedChanges.count == 4)
        // The same qdiscs (kind and handle) before and after: changed, not re-added.
        #expect(before == after && before.count == 4)
    }

    /// The same scenario through both backends gives the same delay and rate.
    @Test func backendsAgree() throws {
        var results: [(delay: Double, rate: Double)] = []
        for backend in [EmulatorBackend.userspace, .netem] {
            let pair = try EmulatedPair(link: "delay: 20ms, rate: 10mbit", backend: backend)
            defer { pair.close() }
            try pair.warmUp()
            let run = try Probe.datagrams(from: pair.a, to: pair.b, port: 6004, count: 300, interval: .milliseconds(5), size: 200)
            let progress = try Probe.bulk(from: pair.a, to: pair.b, port: 6005, duration: .seconds(4))
            results.append((percentile(run.received.map(\.oneWay.milliseconds), 0.5),
                            try #require(frameRate(progress, from: .seconds(1), to: .milliseconds(3900)))))
        }
        print("userspace vs netem: median delay \(results[0].delay) / \(results[1].delay) ms, rate \(results[0].rate / 1e6) / \(results[1].rate / 1e6) Mbit/s")
        #expect(abs(results[0].delay - results[1].delay) <= 0.5)
        #expect(abs(results[0].rate / results[1].rate - 1) <= 0.03)
    }

    /// `tc qdisc show` lines (kind and handle) on the emulator-side ends.
    func qdiscs(_ pair: EmulatedPair) throws -> [String] {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/tc")
        p.arguments = ["-n", pair.plan.emulatorNamespace!, "qdisc", "show"]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return out.split(separator: "\n").filter { $0.contains("tbf") || $0.contains("netem") }
            .map { $0.split(separator: " ").prefix(5).joined(separator: " ") }
    }
}

/// Boots Debian's stock kernel (which has sch_netem as a module) under qemu
/// with virtme-ng, sharing this filesystem, and runs the netem suite above
/// inside it with this very test binary. Takes minutes under software
/// emulation, so it runs with `make test-netem` (WAYSIDE_NETEM_GUEST=1).
@Suite("netem backend in a Debian guest kernel (root, virtme-ng)",
       .enabled(if: getuid() == 0 && NetemGuest.available && ProcessInfo.processInfo.environment["WAYSIDE_NETEM_GUEST"] == "1"))
struct NetemGuestRootTests {
    @Test func netemSuitePassesInTheGuest() throws {
        let (status, output) = try NetemGuest.run(filter: "NetemBackendRootTests")
        print(output.split(separator: "\n").filter { $0.contains("netem") || $0.contains("✘") || $0.contains("userspace vs") }.joined(separator: "\n"))
        #expect(status == 0, "guest run failed:\n\(output.suffix(4000))")
        #expect(output.contains("passed"))
    }
}

enum NetemGuest {
    static var vng: String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
        return (path + ["/usr/local/bin", "/usr/bin"]).map { $0 + "/vng" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }
    /// The newest Debian kernel image with sch_netem among its modules.
    static var kernel: String? {
        let images = ((try? FileManager.default.contentsOfDirectory(atPath: "/boot")) ?? []).filter { $0.hasPrefix("vmlinuz-") }.sorted()
        return images.last { name in
            let release = String(name.dropFirst("vmlinuz-".count))
            return ((try? String(contentsOfFile: "/lib/modules/\(release)/modules.dep", encoding: .utf8))?.contains("sch_netem.ko")) ?? false
        }.map { "/boot/" + $0 }
    }
    static var available: Bool { vng != nil && kernel != nil && ProcessInfo.processInfo.environment["WAYSIDE_IN_GUEST"] == nil }

    static func run(filter: String) throws -> (Int32, String) {
        let binary = CommandLine.arguments[0]
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("netem-guest-\(UUID().uuidString).sh").path
        defer { try? FileManager.default.removeItem(atPath: script) }
        try """
        #!/bin/sh
        modprobe sch_netem && modprobe sch_tbf && modprobe bridge && modprobe veth || exit 3
        export WAYSIDE_IN_GUEST=1
        exec '\(binary)' --testing-library swift-testing --filter '\(filter)'
        """.write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o755)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: vng!)
        p.arguments = ["--force-9p", "--disable-kvm", "--memory", "2G", "--run", kernel!, "--exec", script]
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = pipe
        try p.run()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        return (p.terminationStatus, out)
    }
}
