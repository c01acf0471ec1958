import Testing
import Foundation
import Core
import Analysis
@testable import Traffic

/// Root, namespaces: CBR over kernel sockets between two namespaces joined by
/// two veth pairs, with a silent outage on path 1, then the logs analysed.
///
/// ```
///   car (ns …-car)                          server (ns …-srv)
///   198.18.<p>.1  v1<id> ──── path p1 ───── w1<id>  198.18.<p>.2   ← silent drop (nftables) for `outage`
///   198.18.<q>.1  v2<id> ──── path p2 ───── w2<id>  198.18.<q>.2
/// ```
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct KernelTrafficRootTests {
    static var wayside: URL {
        // Tests/TrafficTests/ThisFile.swift → package root → .build/debug/wayside
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent(".build/debug/wayside")
    }

    @discardableResult
    static func sh(_ args: [String], check: Bool = true) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        if check && p.terminationStatus != 0 {
            throw TestFailure("\(args.joined(separator: " ")) exited \(p.terminationStatus): \(text)")
        }
        return text
    }

    struct TestFailure: Error, CustomStringConvertible { var description: String; init(_ d: String) { description = d } }

    /// Builds the two namespaces (rp_filter off so the server accepts path 2 arriving for its path-1 address), runs sink and cbr with an outage on path 1, returns the analysed run.
    func runCBR(socket: SocketKind) throws -> (RunResult, outage: (Instant, Instant)) {
        let id = String(UInt32.random(in: 0..<0xFFFF_FFFF), radix: 36)
        let car = "ws\(id)-car", srv = "ws\(id)-srv"
        let p = 100 + Int.random(in: 0..<70) * 2, q = p + 1
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ws-traffic-\(id)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var processes: [Process] = []
        defer {
            for proc in processes where proc.isRunning { kill(proc.processIdentifier, SIGKILL); proc.waitUntilExit() }
            _ = try? Self.sh(["ip", "netns", "del", car], check: false)
            _ = try? Self.sh(["ip", "netns", "del", srv], check: false)
            if ProcessInfo.processInfo.environment["WS_KEEP_LOGS"] == nil { try? FileManager.default.removeItem(at: dir) }
            else { print("logs kept in \(dir.path)") }
        }
        try Self.sh(["ip", "netns", "add", car])
        try Self.sh(["ip", "netns", "add", srv])
        for (n, net) in [(1, p), (2, q)] {
            let v = "v\(n)\(id)", w = "w\(n)\(id)"
            try Self.sh(["ip", "link", "add", v, "netns", car, "type", "veth", "peer", "name", w, "netns", srv])
            try Self.sh(["ip", "-n", car, "addr", "add", "198.18.\(net).1/24", "dev", v])
            try Self.sh(["ip", "-n", srv, "addr", "add", "198.18.\(net).2/24", "dev", w])
            try Self.sh(["ip", "-n", car, "link", "set", v, "up"])
            try Self.sh(["ip", "-n", srv, "link", "set", w, "up"])
        }
        // The server reaches the car's second address only through path 2.
        if socket == .kernelMPTCP {
            try Self.sh(["ip", "netns", "exec", car, "ip", "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2"])
            try Self.sh(["ip", "netns", "exec", srv, "ip", "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2"])
            try Self.sh(["ip", "netns", "exec", car, "ip", "mptcp", "endpoint", "add", "198.18.\(q).1", "dev", "v2\(id)", "subflow"])
            // Source routing: a subflow from the path-2 address reaches the server's path-1 address through path 2.
            try Self.sh(["ip", "-n", car, "rule", "add", "from", "198.18.\(q).1", "table", "102"])
            try Self.sh(["ip", "-n", car, "route", "add", "198.18.\(p).2/32", "via", "198.18.\(q).2", "dev", "v2\(id)", "table", "102"])
        }
        // Wait for all four ends to report UP: kernel MPTCP sends its one join at
        // once and never retries one that was lost (docs BASELINES, finding 1).
        for n in 1...2 {
            for (ns, dev) in [(car, "v\(n)\(id)"), (srv, "w\(n)\(id)")] {
                var up = false
                for _ in 0..<100 where !up {
                    // Until the kernel's link watcher has run, the device keeps the noop qdisc and drops what is sent.
                    let show = try Self.sh(["ip", "-n", ns, "link", "show", dev])
                    up = show.contains("state UP") && !show.contains("qdisc noop")
                    if !up { usleep(20_000) }
                }
                #expect(up, "\(dev) in \(ns) did not come up")
            }
        }

        let clock = RunClock(epoch: RunClock.monotonicNanoseconds())
        let stack = socket.rawValue
        // What an emulator would log: both paths covered from the start; p1 goes dark below.
        let emulator = try EventLogWriter(path: dir.appendingPathComponent("emulator.jsonl").path, source: .link("p1"),
                                          clock: clock, run: id, stack: stack)
        let emulator2 = try EventLogWriter(path: dir.appendingPathComponent("emulator-p2.jsonl").path, source: .link("p2"),
                                           clock: clock, run: id, stack: stack)
        emulator.log(.coverage(covered: true, loss: .silent, rate: nil), at: .zero)
        emulator2.log(.coverage(covered: true, loss: .silent, rate: nil), at: .zero)
        emulator2.close()

        let server = Process()
        server.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        server.arguments = ["ip", "netns", "exec", srv, Self.wayside.path, "node", "--app", "sink",
                            "--listen", "198.18.\(p).2:5201", "--socket", stack, "--log", dir.appendingPathComponent("server.jsonl").path,
                            "--node", "server", "--conn", "cbr0", "--run", id, "--epoch", String(clock.epoch),
                            "--path", "198.18.\(p).1=p1", "--path", "198.18.\(q).1=p2"]
        try server.run()
        processes.append(server)
        // Start the client once the sink listens, so that the first attempt is the connection.
        var listening = false
        for _ in 0..<250 where !listening {
            listening = !(try Self.sh(["ip", "netns", "exec", srv, "ss", "-Hltn", "sport = :5201"])).isEmpty
            if !listening { usleep(20_000) }
        }
        #expect(listening, "the sink did not start listening")
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["ip", "netns", "exec", car, Self.wayside.path, "node", "--app", "cbr", "--rate", "200", "--size", "1000",
                            "--duration", "3s", "--connect", "198.18.\(p).2:5201", "--bind", "198.18.\(p).1",
                            "--socket", stack, "--log", dir.appendingPathComponent("car.jsonl").path,
                            "--node", "car", "--conn", "cbr0", "--run", id, "--epoch", String(clock.epoch),
                            "--path", "198.18.\(p).1=p1", "--path", "198.18.\(q).1=p2"]
        try client.run()
        processes.append(client)

        // Silent outage of path 1 from 0.8 s for one second: drop everything to and from the car's path-1 address.
        // The drop starts somewhere inside the first nft call and ends inside the second: the log
        // gets the outer bounds, the assertions the inner ones.
        clock.sleep(until: Instant(nanoseconds: 800_000_000))
        let table = "ws\(id)"
        let outageLogged = clock.now()
        try Self.sh(["ip", "netns", "exec", srv, "nft", "add table inet \(table); "
                     + "add chain inet \(table) in { type filter hook input priority 0 ; } ; "
                     + "add chain inet \(table) out { type filter hook output priority 0 ; } ; "
                     + "add rule inet \(table) in ip saddr 198.18.\(p).1 drop ; "
                     + "add rule inet \(table) out ip daddr 198.18.\(p).1 drop"])
        let outageStart = clock.now()
        emulator.log(.coverage(covered: false, loss: .silent, rate: nil), at: outageLogged)
        clock.sleep(until: outageStart + .seconds(1))
        let outageEnd = clock.now()
        try Self.sh(["ip", "netns", "exec", srv, "nft", "delete table inet \(table)"])
        emulator.log(.coverage(covered: true, loss: .silent, rate: nil))

        client.waitUntilExit()
        // The sink ends when the car closes; give it time to read the rest, then stop it.
        let deadline = Date().addingTimeInterval(8)
        while server.isRunning && Date() < deadline { usleep(50_000) }
        if server.isRunning { kill(server.processIdentifier, SIGTERM); server.waitUntilExit() }
        emulator.log(.runEnd)
        emulator.close()
        #expect(client.terminationStatus == 0)
        #expect(server.terminationStatus == 0)

        // Analyse what the processes wrote, through the same path as `wayside analyze`.
        var logs: [EventLogFile] = []
        for name in ["car.jsonl", "server.jsonl", "emulator.jsonl", "emulator-p2.jsonl"] {
            let text = try String(contentsOf: dir.appendingPathComponent(name), encoding: .utf8)
            logs.append(EventLogFile.parse(text: text, file: name))
        }
        #expect(logs.allSatisfy { $0.problems.isEmpty }, "\(logs.flatMap(\.problems))")
        let groups = EventLogFile.groupIntoRuns(logs)
        #expect(groups.count == 1)
        return (RunAnalysis.analyze(logs: groups[0]), (outageStart, outageEnd))
    }

    func report(_ r: RunResult, _ outage: (Instant, Instant)) {
        let f = r.flows.first
        print("[\(r.stack)] outage \(outage.0)–\(outage.1): max_gap \(f.map { formatDuration($0.maxGap) } ?? "-"), "
              + "delivered \(f?.messagesDelivered ?? 0)/\(f?.messagesSent ?? 0) messages, subflows \(f?.maxSubflows ?? 0), "
              + "moved after \(f?.handovers.first { !$0.covered }?.trafficMovedAfter.map(formatDuration) ?? "never"), "
              + "p99 latency \(f?.latency.map { formatDuration($0.p99) } ?? "-")")
    }

    @Test func cbrOverKernelTCPStallsThroughTheOutageAndDeliversEverything() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.wayside.path) else {
            Issue.record("\(Self.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let (r, outage) = try runCBR(socket: .kernelTCP)
        report(r, outage)
        let f = try #require(r.flows.first)
        #expect(r.flows.count == 1)
        #expect(f.receiver == "server" && f.sender == "car" && f.app == "cbr")
        #expect(f.mptcp == false)
        #expect(f.messagesSent == 600)
        #expect(f.messagesDelivered == 600 && f.messagesLost == 0)
        #expect(f.deliveredBytes == 600_000)
        #expect(f.endedCleanly && f.survived)
        // Plain TCP has only path 1: nothing arrives while it is dark.
        #expect(f.maxGap >= (outage.1 - outage.0) * 0.9)
        #expect(f.maxSubflows == 1)
        #expect(f.subflows.first?.path == "p1")
        let loss = try #require(f.handovers.first { !$0.covered })
        #expect(loss.gap == f.maxGap)
    }

    @Test func cbrOverKernelMPTCPUsesTheSecondPath() throws {
        guard FileManager.default.isExecutableFile(atPath: Self.wayside.path) else {
            Issue.record("\(Self.wayside.path) is missing: run `swift build --build-tests` first")
            return
        }
        let (r, outage) = try runCBR(socket: .kernelMPTCP)
        report(r, outage)
        let f = try #require(r.flows.first)
        #expect(f.mptcp == true)
        #expect(f.messagesSent == 600)
        #expect(f.messagesDelivered == 600 && f.messagesLost == 0)
        #expect(f.endedCleanly && f.survived)
        // The endpoint on path 2 joined a second subflow, and each is named by its path.
        #expect(f.maxSubflows == 2)
        #expect(f.subflows.first?.path == "p1")
        #expect(Set(f.subflows.compactMap(\.path)) == ["p1", "p2"])
        // p1 and p2 covered at 0 is their initial state (no handover); p1 is lost at the outage and back after it.
        #expect(f.handovers.map(\.link) == ["p1", "p1"])
        #expect(f.handovers.map(\.covered) == [false, true])
        // Both paths were offered all the time but the outage, so the run had redundancy.
        #expect(f.redundancyTime > .zero)
        // Over overlapping coverage MPTCP should not stall for the whole outage: traffic moves to p2
        // (BASELINES.md measured 206–424 ms for this path manager; the outage lasts 1 s). That is
        // Linux's behaviour, not Wayside's, and on a loaded 2-core machine it sometimes keeps the
        // dead subflow in RTO backoff past the outage: recorded (the figure is printed), not required.
        let loss = try #require(f.handovers.first { !$0.covered })
        withKnownIssue("Linux MPTCP sometimes keeps a silently dead subflow past the outage (BASELINES.md)", isIntermittent: true) {
            #expect(f.maxGap < outage.1 - outage.0)
            #expect(loss.trafficMovedAfter.map { $0 < outage.1 - outage.0 } == true)
        }
    }
}
