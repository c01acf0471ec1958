import Analysis
import Core
import Foundation
import MPTCP
import Netlink
import Testing
import Traffic
@testable import Stack

/// Two namespaces joined by two veth pairs, laid out as docs/ARCHITECTURE.md
/// decision 1 says: each kernel keeps the veth addresses and forwards; each
/// Swift stack owns addresses behind its TUN device; policy routing sends each
/// of the client stack's addresses out of its own veth.
///
///   client ns: tun (stack 198.18.10.1, 198.18.11.1)  a0 198.18.1.1/24  a1 198.18.2.1/24
///   server ns: tun (stack 198.18.20.1)               b0 198.18.1.2/24  b1 198.18.2.2/24
final class TwoNamespaces {
    let tag: String
    let client: NetworkNamespace
    let server: NetworkNamespace
    static let clientPaths: [[UInt8]] = [[198, 18, 10, 1], [198, 18, 11, 1]]
    static let serverStack: [UInt8] = [198, 18, 20, 1]
    static let serverKernel = "198.18.1.2"
    static let clientKernel = "198.18.1.1"

    init() throws {
        tag = "wsk-\(String(UInt32.random(in: 0 ... UInt32.max), radix: 36))"
        client = try NetworkNamespace.create(named: "\(tag)-c")
        do {
            server = try NetworkNamespace.create(named: "\(tag)-s")
        } catch {
            try? NetworkNamespace.delete(named: "\(tag)-c")
            throw error
        }
        do { try build() } catch { remove(); throw error }
    }

    func build() throws {
        let sysctls = [("net/ipv4/ip_forward", "1"), ("net/ipv4/conf/all/rp_filter", "0"), ("net/ipv4/conf/default/rp_filter", "0")]
        try client.writeSysctls(sysctls)
        try server.writeSysctls(sysctls)
        let host = try RouteSocket()
        try host.createVeth(VethEnd(name: "a0", namespaceFD: client.fd, index: 10), VethEnd(name: "b0", namespaceFD: server.fd, index: 10, up: false))
        try host.createVeth(VethEnd(name: "a1", namespaceFD: client.fd, index: 11), VethEnd(name: "b1", namespaceFD: server.fd, index: 11, up: false))
        let c = try client.routeSocket(), s = try server.routeSocket()
        try s.setLink(index: 10, name: "b0", up: true)
        try s.setLink(index: 11, name: "b1", up: true)
        try c.addAddress(InetPrefix("198.18.1.1/24")!, interfaceIndex: 10, interfaceName: "a0")
        try c.addAddress(InetPrefix("198.18.2.1/24")!, interfaceIndex: 11, interfaceName: "a1")
        try s.addAddress(InetPrefix("198.18.1.2/24")!, interfaceIndex: 10, interfaceName: "b0")
        try s.addAddress(InetPrefix("198.18.2.2/24")!, interfaceIndex: 11, interfaceName: "b1")
        // Client: each stack address leaves by its own veth.
        try c.addRoute(RouteSpec(destination: InetPrefix("198.18.0.0/15")!, gateway: InetAddress("198.18.1.2"), interfaceIndex: 10, table: 100))
        try c.addRoute(RouteSpec(destination: InetPrefix("198.18.0.0/15")!, gateway: InetAddress("198.18.2.2"), interfaceIndex: 11, table: 101))
        try c.addRule(from: InetPrefix("198.18.10.1/32")!, table: 100, priority: 100)
        try c.addRule(from: InetPrefix("198.18.11.1/32")!, table: 101, priority: 101)
        // The client kernel's own sockets reach the server stack over a0.
        try c.addRoute(RouteSpec(destination: InetPrefix("198.18.20.1/32")!, gateway: InetAddress("198.18.1.2"), interfaceIndex: 10))
        // Server: the client stack's addresses are behind the matching veth.
        try s.addRoute(RouteSpec(destination: InetPrefix("198.18.10.1/32")!, gateway: InetAddress("198.18.1.1"), interfaceIndex: 10))
        try s.addRoute(RouteSpec(destination: InetPrefix("198.18.11.1/32")!, gateway: InetAddress("198.18.2.1"), interfaceIndex: 11))
        try waitRunning(c, "a0"); try waitRunning(c, "a1"); try waitRunning(s, "b0"); try waitRunning(s, "b1")
    }

    /// Routes the stack's own addresses to its TUN device (after `start`).
    func routeToTUN(_ stack: SwiftStack, in ns: NetworkNamespace, addresses: [[UInt8]]) throws {
        let r = try ns.routeSocket()
        for a in addresses {
            try r.addRoute(RouteSpec(destination: InetPrefix(InetAddress(a[0], a[1], a[2], a[3]), length: 32), interfaceIndex: stack.tunIndex))
        }
        try waitRunning(r, stack.tunName, carrierOnly: true)
    }

    func remove() {
        try? NetworkNamespace.delete(named: "\(tag)-c")
        try? NetworkNamespace.delete(named: "\(tag)-s")
    }

    func clientStack(paths: Int = 1, log: EventLogWriter? = nil) -> SwiftStack {
        let p = (0 ..< paths).map { StackPath(address: Self.clientPaths[$0], interface: "a\($0)") }
        var config = StackConfiguration(tunName: "wst0", paths: p, seed: 3, eventLog: log, nodeName: "car")
        config.mtu = 1500
        return SwiftStack(configuration: config)
    }

    func serverStack() -> SwiftStack {
        SwiftStack(configuration: StackConfiguration(tunName: "wst0", paths: [StackPath(address: Self.serverStack, interface: "b0")],
                                                     seed: 5, nodeName: "server"))
    }
}

func waitRunning(_ r: RouteSocket, _ name: String, carrierOnly: Bool = false) throws {
    let end = Date().addingTimeInterval(5)
    while Date() < end {
        let s = try r.state(ofLink: name)
        if carrierOnly ? s.up : s.isRunning { return }
        usleep(10_000)
    }
    throw StackError.connectionFailed("\(name) did not come up")
}

/// Runs blocking work on a thread of its own, so no concurrency thread blocks.
func onThread<T>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { (k: CheckedContinuation<T, Error>) in
        let t = Thread { k.resume(with: Result { try body() }) }
        t.start()
    }
}


/// Reads a StackSocket to its end.
func drain(_ socket: StackSocket) async throws -> [UInt8] {
    var out: [UInt8] = []
    while true {
        let chunk = try await socket.read(maximum: 1 << 20)
        if chunk.isEmpty { return out }
        out += chunk
    }
}

func writeChunked(_ socket: StackSocket, _ data: [UInt8]) async throws {
    var i = 0
    while i < data.count {
        let n = min(256 * 1024, data.count - i)
        try await socket.write(Array(data[i ..< i + n]))
        i += n
    }
}

@Suite("Stack: Swift stack on TUN devices in namespaces (Root)", .enabled(if: getuid() == 0), .serialized)
struct StackRootTests {
    @Test(.timeLimit(.minutes(1))) func swiftToSwiftTransferAndCleanClose() async throws {
        let net = try TwoNamespaces()
        defer { net.remove() }
        let server = net.serverStack()
        try server.start(namespace: net.server.name)
        defer { server.stop(grace: .seconds(1)) }
        try net.routeToTUN(server, in: net.server, addresses: [TwoNamespaces.serverStack])
        let client = net.clientStack()
        try client.start(namespace: net.client.name)
        defer { client.stop(grace: .seconds(1)) }
        try net.routeToTUN(client, in: net.client, addresses: TwoNamespaces.clientPaths)

        let listener = try server.listen(port: 5201)
        let data = payload(4 << 20, seed: 21)
        async let accepted = listener.accept()
        let started = Date()
        let socket = try await client.connect(to: TwoNamespaces.serverStack, port: 5201)
        let peer = try await accepted
        async let received = drain(peer)
        try await writeChunked(socket, data)
        socket.shutdownWrite()
        let got = try await received
        let seconds = Date().timeIntervalSince(started)
        peer.close()
        #expect(got.count == data.count)
        #expect(sha(got) == sha(data))
        print("Swift↔Swift over veth: \(data.count >> 20) MiB in \(String(format: "%.2f", seconds)) s = \(String(format: "%.0f", Double(data.count) * 8 / seconds / 1e6)) Mbit/s")
        // Both ends see DATA_FIN exchanged.
        try await waitFor { client.info(socket.id)?.state == .closed && server.info(peer.id)?.state == .closed }
        #expect(client.info(socket.id)?.mptcp == true)
        #expect(client.info(socket.id)?.reason == "DATA_FIN exchanged")
        #expect(server.info(peer.id)?.reason == "DATA_FIN exchanged")
    }

    @Test(.timeLimit(.minutes(1))) func secondSubflowJoinsOverTheOtherVeth() async throws {
        let net = try TwoNamespaces()
        defer { net.remove() }
        let server = net.serverStack()
        try server.start(namespace: net.server.name)
        defer { server.stop(grace: .seconds(1)) }
        try net.routeToTUN(server, in: net.server, addresses: [TwoNamespaces.serverStack])
        let logPath = NSTemporaryDirectory() + "\(net.tag)-car.jsonl"
        defer { unlink(logPath) }
        let log = try EventLogWriter(path: logPath, source: .node("car"), clock: RunClock(epoch: RunClock.monotonicNanoseconds()),
                                     run: net.tag, stack: "swift")
        let client = net.clientStack(paths: 2, log: log)
        try client.start(namespace: net.client.name)
        defer { client.stop(grace: .seconds(1)) }
        try net.routeToTUN(client, in: net.client, addresses: TwoNamespaces.clientPaths)

        let listener = try server.listen(port: 5201)
        let data = payload(8 << 20, seed: 22)
        async let accepted = listener.accept()
        let socket = try await client.connect(to: TwoNamespaces.serverStack, port: 5201, label: "dl0")
        let peer = try await accepted
        async let received = drain(peer)
        try await writeChunked(socket, data)
        try await waitFor { (client.info(socket.id)?.subflows.filter { $0.established }.count ?? 0) >= 2 }
        socket.shutdownWrite()
        let got = try await received
        peer.close()
        #expect(sha(got) == sha(data))
        let info = try #require(client.info(socket.id))
        #expect(info.subflows.contains { $0.path == "a1" && $0.established && $0.local.hasPrefix("198.18.11.1:") })
        try await waitFor { client.info(socket.id)?.state == .closed }
        client.stop(grace: .seconds(1))
        let text = try String(contentsOfFile: logPath, encoding: .utf8)
        let parsed = EventLogFile.parse(text: text, file: logPath)
        let kinds = parsed.events.map(\.body)
        #expect(kinds.contains { if case .joinAttempt("dl0", let sub, "a1", _, _) = $0 { return (sub ?? 0) > 0 }; return false })
        #expect(kinds.contains { if case .subflowState(let s) = $0 { return s.subflow > 0 && s.state == .established && s.path == "a1" }; return false })
        #expect(kinds.contains { if case .connectionState("dl0", .established, true, _) = $0 { return true }; return false })
    }

    @Test(.timeLimit(.minutes(1))) func swiftClientToKernelPlainTCPServer() async throws {
        let net = try TwoNamespaces()
        defer { net.remove() }
        let kernelServer = try net.server.run { try KernelSocket.listen(.kernelTCP, on: SocketAddress(host: TwoNamespaces.serverKernel, port: 5301)) }
        defer { kernelServer.close() }
        let client = net.clientStack()
        try client.start(namespace: net.client.name)
        defer { client.stop(grace: .seconds(1)) }
        try net.routeToTUN(client, in: net.client, addresses: TwoNamespaces.clientPaths)

        let up = payload(4 << 20, seed: 23)
        let down = payload(3 << 20, seed: 24)
        // The kernel side: read everything, then answer with `down` and close.
        let kernelSide = Task.detached { try await onThread { () -> [UInt8] in
            let c = try kernelServer.accept()
            defer { c.close() }
            var got: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try c.read(into: $0) }
                if n == 0 { break }
                got += buffer[0 ..< n]
            }
            try c.writeAll(down)
            c.shutdown(Int32(SHUT_WR))
            return got
        } }
        let socket = try await client.connect(to: [198, 18, 1, 2], port: 5301)
        try await writeChunked(socket, up)
        socket.shutdownWrite()
        let back = try await drain(socket)
        let got = try await kernelSide.value
        #expect(sha(got) == sha(up))
        #expect(sha(back) == sha(down))
        let info = try #require(client.info(socket.id))
        #expect(!info.mptcp)
        #expect(info.fallbackReason == FallbackReason.noCapableOnSYNACK.rawValue)
        try await waitFor { client.info(socket.id)?.state == .closed }
    }

    @Test(.timeLimit(.minutes(1))) func kernelPlainTCPClientToSwiftServer() async throws {
        let net = try TwoNamespaces()
        defer { net.remove() }
        let server = net.serverStack()
        try server.start(namespace: net.server.name)
        defer { server.stop(grace: .seconds(1)) }
        try net.routeToTUN(server, in: net.server, addresses: [TwoNamespaces.serverStack])
        let listener = try server.listen(port: 5201)

        let up = payload(4 << 20, seed: 25)
        let clientNS = net.client
        let kernelSide = Task.detached { try await onThread { () -> [UInt8] in
            let s = try clientNS.run {
                try KernelSocket.connect(.kernelTCP, to: SocketAddress(host: "198.18.20.1", port: 5201), from: nil,
                                         retryUntil: RunClock.monotonicNanoseconds() + 5_000_000_000, shouldStop: { false })
            }
            defer { s.close() }
            try s.writeAll(up)
            s.shutdown(Int32(SHUT_WR))
            var got: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while true {
                let n = try buffer.withUnsafeMutableBytes { try s.read(into: $0) }
                if n == 0 { break }
                got += buffer[0 ..< n]
            }
            return got
        } }
        let peer = try await listener.accept()
        let got = try await drain(peer)
        try await peer.write(Array(sha(got)))
        peer.close()
        let echoed = try await kernelSide.value
        #expect(sha(got) == sha(up))
        #expect(echoed == sha(up))
        let info = try #require(server.info(peer.id))
        #expect(!info.mptcp)
        try await waitFor { server.info(peer.id)?.state == .closed }
    }
}

/// Polls `condition` every 10 ms for up to `seconds`.
func waitFor(seconds: Double = 10, _ condition: () -> Bool) async throws {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return }
        try await Task.sleep(nanoseconds: 10_000_000)
    }
    #expect(condition(), "condition not met within \(seconds) s")
}
