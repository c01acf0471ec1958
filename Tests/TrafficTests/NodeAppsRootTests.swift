import Testing
import Foundation
import Core
import Analysis
@testable import Traffic

/// Root, one namespace: bulk→sink and rr→echo over the namespace's loopback
/// (198.18.<n>.1 on `lo`), through `wayside node` processes, then the logs analysed
/// by `wayside analyze` itself.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct NodeAppsRootTests {
    typealias T = KernelTrafficRootTests

    func withNamespace(_ body: (String, String, URL) throws -> Void) throws {
        guard FileManager.default.isExecutableFile(atPath: T.wayside.path) else {
            Issue.record("\(T.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let id = String(UInt32.random(in: 0..<0xFFFF_FFFF), radix: 36)
        let ns = "ws\(id)-apps"
        let address = "198.18.\(Int.random(in: 200..<250)).1"
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ws-apps-\(id)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer {
            _ = try? T.sh(["ip", "netns", "del", ns], check: false)
            try? FileManager.default.removeItem(at: dir)
        }
        try T.sh(["ip", "netns", "add", ns])
        try T.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
        try T.sh(["ip", "-n", ns, "addr", "add", "\(address)/32", "dev", "lo"])
        try body(ns, address, dir)
    }

    func node(_ ns: String, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["ip", "netns", "exec", ns, T.wayside.path, "node"] + args
        try p.run()
        return p
    }

    func waitListening(_ ns: String, port: Int) throws {
        for _ in 0..<250 {
            if !(try T.sh(["ip", "netns", "exec", ns, "ss", "-Hltn", "sport = :\(port)"])).isEmpty { return }
            usleep(20_000)
        }
        Issue.record("nothing listens on port \(port)")
    }

    @Test(arguments: [SocketKind.kernelTCP, .kernelMPTCP])
    func bulkIntoSinkIsCountedInBytes(socket: SocketKind) throws {
        try withNamespace { ns, address, dir in
            let epoch = String(RunClock.monotonicNanoseconds())
            let common = ["--socket", socket.rawValue, "--conn", "bulk0", "--epoch", epoch, "--run", "apps"]
            let sink = try node(ns, ["--app", "sink", "--listen", "\(address):6000", "--node", "server",
                                     "--log", dir.appendingPathComponent("server.jsonl").path] + common)
            defer { if sink.isRunning { kill(sink.processIdentifier, SIGKILL) } }
            try waitListening(ns, port: 6000)
            let bulk = try node(ns, ["--app", "bulk", "--connect", "\(address):6000", "--duration", "500ms", "--node", "car",
                                     "--log", dir.appendingPathComponent("car.jsonl").path] + common)
            bulk.waitUntilExit()
            sink.waitUntilExit()
            #expect(bulk.terminationStatus == 0 && sink.terminationStatus == 0)

            // `wayside analyze` recomputes everything and applies thresholds; one is made to fail.
            let junit = dir.appendingPathComponent("junit.xml")
            let analyze = Process()
            analyze.executableURL = T.wayside
            analyze.arguments = ["analyze", dir.path, "--quiet", "--assert", "survived == true",
                                 "--assert", "delivered_bytes > 1MB", "--assert", "max_subflows > 5", "--junit", junit.path]
            try analyze.run()
            analyze.waitUntilExit()
            #expect(analyze.terminationStatus == 1)
            let doc = try JSONValue.parse(String(contentsOf: dir.appendingPathComponent("results.json"), encoding: .utf8))
            let run = try #require(doc["runs"]?.arrayValue?.first)
            #expect(run["stack"] == .string(socket.rawValue))
            let flow = try #require(run["flows"]?.arrayValue?.first)
            #expect(flow["app"] == .string("bulk"))
            #expect(flow["ended_cleanly"] == .bool(true))
            #expect(flow["messages_delivered"] == .int(0))
            #expect((flow["delivered_bytes"]?.int64Value ?? 0) > 1_000_000)
            #expect(doc["thresholds"]?.arrayValue?.map { $0["passed"] } == [.bool(true), .bool(true), .bool(false)])
            let xml = try String(contentsOf: junit, encoding: .utf8)
            #expect(xml.contains("failures=\"1\""))
            for name in ["report.html", "goodput.csv", "subflows.csv", "handovers.csv", "coverage.csv", "summary.csv"] {
                #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent(name).path), "\(name)")
            }
            // The sender's byte count matches what the sink logged as its running total.
            let server = EventLogFile.parse(text: try String(contentsOf: dir.appendingPathComponent("server.jsonl"), encoding: .utf8), file: "server.jsonl")
            let totals = server.events.compactMap { e -> Int64? in if case let .bytesDelivered(_, _, t) = e.body { return t }; return nil }
            #expect(totals.last == flow["delivered_bytes"]?.int64Value)
            #expect(totals == totals.sorted())
            // Reads are coalesced over at most 1 ms, so half a second of bulk over a
            // loopback is many events, not one at the end (the max_gap = 0 of issue 10).
            #expect(totals.count >= 10, "\(totals.count) bytes.delivered events")
            #expect((flow["max_gap_ms"]?.doubleValue ?? 0) > 0)
        }
    }

    @Test func requestResponseThroughEchoMeasuresRoundTrips() throws {
        try withNamespace { ns, address, dir in
            let epoch = String(RunClock.monotonicNanoseconds())
            let common = ["--socket", "kernel-mptcp", "--conn", "rr0", "--epoch", epoch]
            let echo = try node(ns, ["--app", "echo", "--listen", "\(address):6001", "--node", "server",
                                     "--log", dir.appendingPathComponent("server.jsonl").path] + common)
            defer { if echo.isRunning { kill(echo.processIdentifier, SIGKILL) } }
            try waitListening(ns, port: 6001)
            let rr = try node(ns, ["--app", "rr", "--rate", "100", "--size", "200", "--connect", "\(address):6001",
                                   "--duration", "500ms", "--node", "car", "--log", dir.appendingPathComponent("car.jsonl").path] + common)
            rr.waitUntilExit()
            echo.waitUntilExit()
            #expect(rr.terminationStatus == 0 && echo.terminationStatus == 0)
            var logs: [EventLogFile] = []
            for name in ["car.jsonl", "server.jsonl"] {
                logs.append(EventLogFile.parse(text: try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8), file: name))
            }
            let r = RunAnalysis.analyze(logs: logs)
            // Both ends receive: the echo gets the requests, the client the answers.
            #expect(Set(r.flows.map(\.receiver)) == ["car", "server"])
            let client = try #require(r.flows.first { $0.receiver == "car" })
            #expect(client.messagesDelivered == 50)
            #expect(client.latency?.count == 50)
            #expect(client.survived)
        }
    }

    @Test func sigtermStopsASinkThatNeverGotAConnection() throws {
        try withNamespace { ns, address, dir in
            let log = dir.appendingPathComponent("sink.jsonl")
            let sink = try node(ns, ["--app", "sink", "--listen", "\(address):6002", "--node", "server", "--log", log.path])
            try waitListening(ns, port: 6002)
            kill(sink.processIdentifier, SIGTERM)
            sink.waitUntilExit()
            #expect(sink.terminationStatus == 0)
            let parsed = EventLogFile.parse(text: try String(contentsOf: log, encoding: .utf8), file: "sink.jsonl")
            #expect(parsed.problems.isEmpty)
            #expect(parsed.events.last?.body == .appStop(conn: "flow0", reason: "stopped before a connection"))
        }
    }

    @Test func interfaceChangesOfTheNamespaceAreLogged() throws {
        try withNamespace { ns, address, dir in
            let log = dir.appendingPathComponent("sink.jsonl")
            let sink = try node(ns, ["--app", "sink", "--listen", "\(address):6004", "--socket", "kernel-tcp", "--node", "server", "--log", log.path])
            defer { if sink.isRunning { kill(sink.processIdentifier, SIGKILL) } }
            try waitListening(ns, port: 6004)
            usleep(300_000) // the monitor has read the namespace's interfaces
            let extra = address.split(separator: ".").prefix(3).joined(separator: ".") + ".9/32"
            // A veth pair inside the namespace: its carrier follows the peer, as the emulator's `carrier` loss does.
            for step in [["link", "add", "wsv0", "type", "veth", "peer", "name", "wsv1"], ["addr", "add", extra, "dev", "wsv0"],
                         ["link", "set", "wsv1", "up"], ["link", "set", "wsv0", "up"], ["link", "set", "wsv1", "down"],
                         ["link", "set", "wsv0", "down"], ["addr", "del", extra, "dev", "wsv0"]] {
                try T.sh(["ip", "-n", ns] + step)
                usleep(100_000)
            }
            usleep(300_000)
            kill(sink.processIdentifier, SIGTERM)
            sink.waitUntilExit()
            let parsed = EventLogFile.parse(text: try String(contentsOf: log, encoding: .utf8), file: "sink.jsonl")
            #expect(parsed.problems.isEmpty)
            let seen = parsed.events.compactMap { e -> String? in
                guard case let .interface(name, change, address) = e.body, name == "wsv0",
                      address.map({ !$0.contains(":") }) ?? true else { return nil } // IPv6 link-local comes and goes too
                return change.rawValue + (address.map { " " + $0 } ?? "")
            }
            #expect(seen == ["address-added \(extra)", "link-up", "carrier-up", "carrier-down", "link-down", "address-removed \(extra)"])
            // lo, up and addressed before the node started, is its initial state: nothing logged.
            #expect(!parsed.events.contains { if case .interface("lo", _, _) = $0.body { return true }; return false })
        }
    }

    @Test func sigtermEndsACBRSenderWithAnOrderlyClose() throws {
        try withNamespace { ns, address, dir in
            let epoch = String(RunClock.monotonicNanoseconds())
            let common = ["--socket", "kernel-mptcp", "--conn", "cbr1", "--epoch", epoch]
            let sink = try node(ns, ["--app", "sink", "--listen", "\(address):6003", "--node", "server",
                                     "--log", dir.appendingPathComponent("server.jsonl").path] + common)
            defer { if sink.isRunning { kill(sink.processIdentifier, SIGKILL) } }
            try waitListening(ns, port: 6003)
            // No --duration: it sends until told to stop.
            let cbr = try node(ns, ["--app", "cbr", "--rate", "500", "--size", "100", "--connect", "\(address):6003",
                                    "--node", "car", "--log", dir.appendingPathComponent("car.jsonl").path] + common)
            defer { if cbr.isRunning { kill(cbr.processIdentifier, SIGKILL) } }
            usleep(500_000)
            kill(cbr.processIdentifier, SIGTERM)
            cbr.waitUntilExit()
            sink.waitUntilExit()
            #expect(cbr.terminationStatus == 0 && sink.terminationStatus == 0)
            var logs: [EventLogFile] = []
            for name in ["car.jsonl", "server.jsonl"] {
                logs.append(EventLogFile.parse(text: try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8), file: name))
            }
            #expect(logs.allSatisfy { $0.problems.isEmpty })
            #expect(logs[0].events.last?.body == .appStop(conn: "cbr1", reason: "signal"))
            #expect(logs[0].events.contains { $0.body == .connectionState(conn: "cbr1", state: .closed, mptcp: nil, reason: nil) })
            let f = try #require(RunAnalysis.analyze(logs: logs).flows.first)
            // The sink read to the end of the stream (DATA_FIN) and got every message sent.
            #expect(f.endedCleanly)
            #expect((f.messagesSent ?? 0) > 100)
            #expect(f.messagesLost == 0)
        }
    }
}
