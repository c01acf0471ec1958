import ArgumentParser
import Core
import Foundation
import MPTCP
import Netlink
import Stack
import Testbed
import Traffic
#if canImport(Glibc)
import Glibc
#endif

/// `wayside bench stack` (issue 5, item 5): bulk throughput of one connection
/// over one veth pair with no emulation, Swift↔Swift, Swift→kernel,
/// kernel→Swift and kernel↔kernel in the same run, with ratios to the kernel;
/// CPU seconds per GB of this process (the Swift stack's loop and the
/// applications; kernel work done in this process's syscalls included);
/// and the stack's resident memory with 1 and 100 concurrent connections.
struct BenchStackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stack",
        abstract: "Bulk throughput of the Swift stack against Linux kernel MPTCP over veth, CPU per GB, memory per connection (root).",
        discussion: "Builds two namespaces joined by one veth pair (198.18.0.0/15 only), places the Swift stack on both, and removes them at the end."
    )

    @Option(help: ArgumentHelp("Bytes per transfer.", valueName: "SIZE"))
    var bytes: String = "256MiB"

    @Option(help: "Concurrent connections for the memory figure.")
    var connections: Int = 100

    func run() throws {
        guard getuid() == 0 else { throw ValidationError("wayside bench stack builds namespaces: run it as root") }
        let size: Int
        do throws(QuantityError) { size = try ByteSize.parse(bytes) } catch { throw ValidationError("--bytes: \(error.description)") }
        guard size >= 1 << 20 else { throw ValidationError("--bytes: at least 1 MiB") }
        guard (1...1000).contains(connections) else { throw ValidationError("--connections: 1 ... 1000") }
        signal(SIGPIPE, SIG_IGN)

        let topology = Topology(name: "bench-stack", nodes: [TopologyNode(name: "a", role: .host), TopologyNode(name: "b", role: .server)],
                                links: [TopologyLink(name: "a-b", kind: .wired, a: LinkEnd(node: "a"), b: LinkEnd(node: "b"))])
        let plan = try TestbedPlan(topology: topology, runID: RunID("bs" + RunID.random().value)!, emulation: EmulationMode.none,
                                   swiftStackNodes: ["a", "b"])
        let testbed = try TestbedNetwork.build(plan)
        var stacks: [SwiftStack] = []
        defer {
            for s in stacks { s.stop(grace: .seconds(1)) }
            try? testbed.teardown()
        }
        func place(_ node: String, seed: UInt64) throws -> SwiftStack {
            let p = plan.stackPlacement(forNode: node)!
            let s = SwiftStack(configuration: StackConfiguration(
                tunName: p.tunName, paths: p.paths.map { StackPath(address: Self.bytes($0.stackAddress), interface: $0.interface.name) },
                seed: seed, nodeName: node))
            try s.start(namespace: p.namespace)
            stacks.append(s)
            return s
        }
        let rssBefore = Self.residentBytes()
        let a = try place("a", seed: 1), b = try place("b", seed: 2)
        let rssStarted = Self.residentBytes()
        let stackA = plan.stackPlacement(forNode: "a")!.paths[0].stackAddress
        let stackB = plan.stackPlacement(forNode: "b")!.paths[0].stackAddress
        let vethA = plan.node(named: "a")!.interfaces[0].address!.address
        let vethB = plan.node(named: "b")!.interfaces[0].address!.address
        let nsA = try NetworkNamespace.open(named: plan.node(named: "a")!.namespace)
        let nsB = try NetworkNamespace.open(named: plan.node(named: "b")!.namespace)

        // Memory first, before any transfer grows the heap: connections between the two stacks of this process, established and idle.
        let rssOne: Int, rssMany: Int
        do {
            let listener = try b.listen(port: 7000)
            var sockets: [StackSocket] = []
            func open(_ n: Int) throws {
                while sockets.count < n {
                    sockets.append(try a.connectBlocking(to: Self.bytes(stackB), port: 7000))
                    sockets.append(try listener.acceptBlocking())
                }
            }
            try open(2)
            rssOne = Self.residentBytes()
            try open(2 * connections)
            rssMany = Self.residentBytes()
            for s in sockets { s.abort() }
            listener.close()
        }
        enum End { case swift(SwiftStack, InetAddress), kernel(NetworkNamespace, InetAddress) }
        let payload = [UInt8](repeating: 0x5a, count: 256 * 1024)
        var port: UInt16 = 6000
        func transfer(_ from: End, _ to: End) throws -> (seconds: Double, cpu: Double) {
            port += 1
            let p = port
            let listener: any StreamListener
            let target: InetAddress
            switch to {
            case let .swift(s, address): listener = try StackTransport(stack: s).listen(on: SocketAddress(host: "0.0.0.0", port: p)); target = address
            case let .kernel(ns, address):
                listener = try ns.run { try KernelSocket.listen(.kernelMPTCP, on: SocketAddress(host: "0.0.0.0", port: p)) }
                target = address
            }
            defer { listener.close() }
            let receiver = ReceiverThread(listener: listener)
            let remote = SocketAddress(host: target.description, port: p)
            let sender: any StreamConnection
            switch from {
            case let .swift(s, _):
                sender = try StackTransport(stack: s).connect(to: remote, from: nil, retryUntil: RunClock.monotonicNanoseconds() + 5_000_000_000, shouldStop: { false })
            case let .kernel(ns, address):
                let local = SocketAddress(host: address.description, port: 0)
                sender = try ns.run(thread: Self.connectThread) {
                    try KernelSocket.connect(.kernelMPTCP, to: remote, from: local, retryUntil: RunClock.monotonicNanoseconds() + 5_000_000_000, shouldStop: { false })
                }
            }
            defer { sender.close() }
            let cpu0 = Self.cpuSeconds(), t0 = RunClock.monotonicNanoseconds()
            var sent = 0
            try payload.withUnsafeBytes { raw in
                while sent < size {
                    let n = min(raw.count, size - sent)
                    try sender.writeAll(UnsafeRawBufferPointer(rebasing: raw[0..<n]))
                    sent += n
                }
            }
            sender.shutdown(.write)
            let received = try receiver.wait()
            let seconds = Double(RunClock.monotonicNanoseconds() - t0) / 1e9, cpu = Self.cpuSeconds() - cpu0
            guard received == size else { throw ValidationError("transfer \(from) → \(to): received \(received) of \(size) bytes") }
            return (seconds, cpu)
        }

        let cases: [(String, End, End)] = [
            ("kernel → kernel", .kernel(nsA, vethA), .kernel(nsB, vethB)),
            ("swift → swift", .swift(a, stackA), .swift(b, stackB)),
            ("swift → kernel", .swift(a, stackA), .kernel(nsB, vethB)),
            ("kernel → swift", .kernel(nsA, vethA), .swift(b, stackB)),
        ]
        print("wayside bench stack: \(ByteCount.text(Int64(size))) per transfer, one MPTCP connection over one veth pair, no emulation (\(Self.buildKind) build)")
        var rows: [[String]] = [["pair", "throughput", "vs kernel", "CPU s per GB (this process)"]]
        var kernelRate = 0.0
        for (name, from, to) in cases {
            let r = try transfer(from, to)
            let rate = Double(size) * 8 / r.seconds
            if name == "kernel → kernel" { kernelRate = rate }
            rows.append([name, String(format: "%.0f Mbit/s", rate / 1e6), kernelRate > 0 ? String(format: "%.2f", rate / kernelRate) : "–",
                         String(format: "%.2f", r.cpu / (Double(size) / 1e9))])
        }
        print(Self.table(rows))

        let perConnection = Double(rssMany - rssOne) / Double(max(1, connections - 1)) / 2
        print(Self.table([
            ["resident memory (this process)", "bytes"],
            ["before the stacks", ByteCount.text(Int64(rssBefore))],
            ["two stacks started", ByteCount.text(Int64(rssStarted))],
            ["1 connection (both ends)", ByteCount.text(Int64(rssOne))],
            ["\(connections) connections (both ends)", ByteCount.text(Int64(rssMany))],
            ["per connection end", ByteCount.text(Int64(perConnection))],
        ]))
        print("Goal (issue 5): at least 1 Gbit/s on one connection; CPU is of this process (both stacks, both applications), so the Swift rows count two stack ends.")
    }

    /// Kernel connects happen on their own namespace thread, which must live as long as the process.
    static let connectThread = NamespaceThread()

    #if DEBUG
    static let buildKind = "debug"
    #else
    static let buildKind = "release"
    #endif

    static func bytes(_ a: InetAddress) -> [UInt8] { [UInt8(a.value >> 24), UInt8(a.value >> 16 & 0xff), UInt8(a.value >> 8 & 0xff), UInt8(a.value & 0xff)] }

    /// User + system CPU seconds of this process.
    static func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec) + Double(u.ru_utime.tv_usec) / 1e6 + Double(u.ru_stime.tv_sec) + Double(u.ru_stime.tv_usec) / 1e6
    }

    /// VmRSS of this process.
    static func residentBytes() -> Int {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
        for line in text.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) * 1024
        }
        return 0
    }

    static func table(_ rows: [[String]]) -> String {
        var widths = [Int](repeating: 0, count: rows.map(\.count).max() ?? 0)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in r.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ") }
            .joined(separator: "\n")
    }
}

/// Accepts one connection and reads it to its end on a thread of its own.
final class ReceiverThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<Int, Error> = .success(0)

    init(listener: any StreamListener) {
        let t = Thread { [self] in
            result = Result {
                let c = try listener.acceptConnection()
                defer { c.close() }
                var total = 0
                var buffer = [UInt8](repeating: 0, count: 1 << 18)
                while true {
                    let n = try buffer.withUnsafeMutableBytes { try c.read(into: $0) }
                    if n == 0 { return total }
                    total += n
                }
            }
            done.signal()
        }
        t.start()
    }

    func wait() throws -> Int { done.wait(); return try result.get() }
}
