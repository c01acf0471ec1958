import Foundation
import Testing
import Netlink
@testable import Testbed

func uniqueRunID() -> RunID { RunID("t" + RunID.random().value)! }

/// Everything of ours that could be left behind: namespaces named after the
/// run, and host interfaces with names a plan gives (other work on the machine
/// may add and remove its own host interfaces meanwhile; those are not compared).
struct Leftovers: Equatable {
    var namespaces: [String]
    var hostLinks: [String]
    static func snapshot(_ runID: RunID) throws -> Leftovers {
        Leftovers(namespaces: NetworkNamespace.list().filter { $0.hasPrefix(runID.namespacePrefix) },
                  hostLinks: try RouteSocket().links().map(\.name).filter(couldBeOurs).sorted())
    }

    /// `eth<n>`, `e<n>a`/`e<n>b`, and the explicit names of the shipped topologies.
    static func couldBeOurs(_ name: String) -> Bool {
        func digits(_ s: Substring) -> Bool { !s.isEmpty && s.allSatisfy(\.isNumber) }
        if name.hasPrefix("eth"), digits(name.dropFirst(3)) { return true }
        if name.hasPrefix("e"), name.hasSuffix("a") || name.hasSuffix("b"), digits(name.dropFirst().dropLast()) { return true }
        return ["dsrc0", "dsrc1", "lte0", "car"].contains(name)
    }
}

/// A TCP listener on every address of a namespace (bound to the namespace it is opened in).
func listen(in namespace: String, port: UInt16) throws -> Int32 {
    let ns = try NetworkNamespace.open(named: namespace)
    return try ns.run {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0, Glibc.listen(fd, 512) == 0 else { throw NetlinkError(operation: "listen", subject: namespace, errno: errno, reason: "") }
        return fd
    }
}

/// A kernel TCP connect from `source` in `namespace` to `destination`: true if the handshake completes.
func tcpConnects(in namespace: String, from source: InetAddress, to destination: InetAddress, port: UInt16) throws -> Bool {
    let ns = try NetworkNamespace.open(named: namespace)
    return try ns.run {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var timeout = timeval(tv_sec: 2, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var local = sockaddr_in(), remote = sockaddr_in()
        local.sin_family = sa_family_t(AF_INET); local.sin_addr.s_addr = source.networkOrder
        remote.sin_family = sa_family_t(AF_INET); remote.sin_addr.s_addr = destination.networkOrder; remote.sin_port = port.bigEndian
        let size = socklen_t(MemoryLayout<sockaddr_in>.size)
        guard withUnsafePointer(to: &local, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, size) } }) == 0 else { return false }
        return withUnsafePointer(to: &remote, { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, size) } }) == 0
    }
}

/// The interface the kernel would send from `source` to `destination` (`ip route get`).
func outgoingInterface(in namespace: String, from source: InetAddress, to destination: InetAddress) throws -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    p.arguments = ["-n", namespace, "-o", "route", "get", destination.description, "from", source.description]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let words = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
    guard let i = words.firstIndex(of: "dev"), i + 1 < words.count else { return nil }
    return String(words[i + 1])
}

/// Builds real namespaces: needs root. Each test uses its own random run id and
/// tears down in a defer, so tests may run in parallel with each other and with other work.
@Suite("Testbed build and teardown (root, namespaces)", .enabled(if: getuid() == 0))
struct BuildTests {
    let registry = RunRegistry(directory: "/run/wayside-test")

    @Test(arguments: ["highway-2rsu", "cellular-backup", "urban-grid", "highway-rsu-500m"])
    func everyNodeReachesEveryNodeAndEachSourceLeavesByItsOwnInterface(name: String) throws {
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology(name)), runID: runID)
        let testbed = try TestbedNetwork.build(plan, registry: registry)
        var tornDown = false
        defer { if !tornDown { try? testbed.teardown() } }

        #expect(NetworkNamespace.list().filter { $0.hasPrefix(runID.namespacePrefix) }.sorted() == plan.namespaces.sorted())
        #expect(try registry.read(runID.value).state == .up)

        // A userspace emulator is not part of this module: stand in for it by
        // bridging each emulated link's two emulator-side ends in the kernel.
        try bridgeEmulatedLinks(plan)

        let port: UInt16 = 5001
        var listeners: [Int32] = []
        defer { listeners.forEach { close($0) } }
        for n in plan.nodes { listeners.append(try listen(in: n.namespace, port: port)) }
        var attempts = 0
        for src in plan.nodes {
            for srcInterface in src.interfaces {
                for dst in plan.nodes where dst.name != src.name {
                    for dstInterface in dst.interfaces {
                        attempts += 1
                        let ok = try tcpConnects(in: src.namespace, from: srcInterface.address!.address, to: dstInterface.address!.address, port: port)
                        #expect(ok, "\(src.name) \(srcInterface.address!) -> \(dst.name) \(dstInterface.address!)")
                    }
                }
            }
        }
        #expect(attempts > 50)

        // Policy routing: every address of the vehicle leaves by its own interface.
        let car = try #require(plan.node(named: "car"))
        let server = try #require(plan.node(named: "server")?.interfaces.first?.address?.address)
        for i in car.interfaces {
            #expect(try outgoingInterface(in: car.namespace, from: i.address!.address, to: server) == i.name)
        }

        try testbed.teardown()
        tornDown = true
        #expect(try Leftovers.snapshot(runID) == before)
        #expect(throws: TestbedError.self) { try registry.read(runID.value) }
    }

    @Test func denseTopologyBuildsAndEveryVehicleAddressReachesTheServers() throws {
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("dense")), runID: runID)
        let testbed = try TestbedNetwork.build(plan, registry: registry)
        var tornDown = false
        defer { if !tornDown { try? testbed.teardown() } }
        try bridgeEmulatedLinks(plan)
        var listeners: [Int32] = []
        defer { listeners.forEach { close($0) } }
        let servers = plan.nodes.filter { $0.node.role == .server }
        for s in servers { listeners.append(try listen(in: s.namespace, port: 5003)) }
        for car in plan.nodes where car.node.role == .vehicle {
            #expect(car.interfaces.count == 10)
            for i in car.interfaces {
                for s in servers {
                    #expect(try tcpConnects(in: car.namespace, from: i.address!.address, to: s.interfaces[0].address!.address, port: 5003),
                            "\(car.name) \(i.address!) -> \(s.name)")
                }
            }
        }
        try testbed.teardown()
        tornDown = true
        #expect(try Leftovers.snapshot(runID) == before)
    }

    /// BASELINES.md's gotcha: `link set down` deletes the routes through the
    /// interface; without `unreachable default` in its table, that address's
    /// traffic would leak out of the other interface.
    @Test func aDownInterfacesAddressDoesNotLeakOutOfTheOtherOne() throws {
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: uniqueRunID(), emulation: EmulationMode.none)
        let testbed = try TestbedNetwork.build(plan, registry: registry)
        defer { try? testbed.teardown() }
        let car = try #require(plan.node(named: "car"))
        let server = try #require(plan.node(named: "server"))
        let serverAddress = server.interfaces[0].address!.address
        let fd = try listen(in: server.namespace, port: 5004)
        defer { close(fd) }
        let (first, second) = (car.interfaces[0], car.interfaces[1])
        #expect(try tcpConnects(in: car.namespace, from: first.address!.address, to: serverAddress, port: 5004))

        try NetworkNamespace.open(named: car.namespace).routeSocket().setLink(named: first.name, up: false)
        #expect(try outgoingInterface(in: car.namespace, from: first.address!.address, to: serverAddress) == nil)
        #expect(try !tcpConnects(in: car.namespace, from: first.address!.address, to: serverAddress, port: 5004))
        #expect(try outgoingInterface(in: car.namespace, from: second.address!.address, to: serverAddress) == second.name)
        #expect(try tcpConnects(in: car.namespace, from: second.address!.address, to: serverAddress, port: 5004))
    }

    @Test func eightParallelBuildsOfOneTopologyDoNotCollide() throws {
        let topology = try Topology.load(contentsOf: shippedTopology("highway-2rsu"))
        let ids = (0..<8).map { _ in uniqueRunID() }
        let results = ParallelResults(count: ids.count)
        DispatchQueue.concurrentPerform(iterations: ids.count) { k in
            results.set(k, Result {
                let plan = try TestbedPlan(topology: topology, runID: ids[k])
                let testbed = try TestbedNetwork.build(plan, registry: registry)
                defer { try? testbed.teardown() }
                // Each run's vehicle reaches its own server (through the kernel bridge stand-in).
                try bridgeEmulatedLinks(plan)
                let fd = try listen(in: plan.node(named: "server")!.namespace, port: 5002)
                defer { close(fd) }
                let car = plan.node(named: "car")!
                return try tcpConnects(in: car.namespace, from: car.interfaces[0].address!.address,
                                       to: plan.node(named: "server")!.interfaces[0].address!.address, port: 5002)
            })
        }
        for (k, r) in results.values.enumerated() {
            switch r {
            case .success(let ok): #expect(ok == true, "run \(ids[k])")
            case .failure(let e): Issue.record("run \(ids[k]): \(e)")
            case nil: Issue.record("run \(ids[k]) did not finish")
            }
        }
        for id in ids { #expect(NetworkNamespace.list().filter { $0.hasPrefix(id.namespacePrefix) }.isEmpty) }
    }

    @Test func aFailedBuildRemovesWhatItCreated() throws {
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        var plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: runID)
        // Two routes to the same place: the second add fails with EEXIST midway through the build.
        plan.routes.append(plan.routes[0])
        #expect(throws: TestbedError.self) { _ = try TestbedNetwork.build(plan, registry: registry) }
        #expect(try Leftovers.snapshot(runID) == before)
        #expect(throws: TestbedError.self) { try registry.read(runID.value) }
    }

    @Test func aCancelledBuildRemovesWhatItCreated() throws {
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: runID)
        let cancellation = BuildCancellation()
        cancellation.cancel()
        #expect(throws: TestbedError.self) { _ = try TestbedNetwork.build(plan, registry: registry, cancellation: cancellation) }
        #expect(try Leftovers.snapshot(runID) == before)
    }

    @Test func aTakenRunIDIsRefusedWithoutTouchingTheRun() throws {
        let runID = uniqueRunID()
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: runID, emulation: EmulationMode.none)
        let testbed = try TestbedNetwork.build(plan, registry: registry)
        defer { try? testbed.teardown() }
        #expect(throws: TestbedError.self) { _ = try TestbedNetwork.build(plan, registry: registry) }
        #expect(NetworkNamespace.list().filter { $0.hasPrefix(runID.namespacePrefix) }.count == plan.namespaces.count)
    }

    @Test func carrierFollowsTheEmulatorSideEnd() throws {
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: uniqueRunID())
        let testbed = try TestbedNetwork.build(plan, registry: registry)
        defer { try? testbed.teardown() }
        let link = try #require(plan.link(named: "car-rsu1"))
        let emulator = try NetworkNamespace.open(named: link.emulator!.namespace).routeSocket()
        let car = try NetworkNamespace.open(named: link.a.namespace).routeSocket()
        #expect(try car.state(ofLink: link.a.name).isRunning)
        try emulator.setLink(named: link.emulator!.aSide.name, up: false)
        try waitFor { try !car.state(ofLink: link.a.name).carrier }
        try emulator.setLink(named: link.emulator!.aSide.name, up: true)
        try waitFor { try car.state(ofLink: link.a.name).isRunning }
    }
}

func waitFor(timeout: Double = 5, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        if Date() > deadline { Issue.record("condition not met within \(timeout) s"); return }
        usleep(1000)
    }
}

final class ParallelResults: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var values: [Result<Bool, Error>?]
    init(count: Int) { values = Array(repeating: nil, count: count) }
    func set(_ k: Int, _ r: Result<Bool, Error>) { lock.lock(); values[k] = r; lock.unlock() }
}

/// Joins each emulated link's two emulator-side ends with a kernel bridge, so
/// that tests of this module can pass traffic without the userspace emulator.
func bridgeEmulatedLinks(_ plan: TestbedPlan) throws {
    guard let ns = plan.emulatorNamespace else { return }
    for l in plan.links {
        guard let e = l.emulator else { continue }
        let bridge = "br\(l.a.index)-\(e.aSide.index)"
        for args in [["link", "add", bridge, "type", "bridge"], ["link", "set", e.aSide.name, "master", bridge],
                     ["link", "set", e.bSide.name, "master", bridge], ["link", "set", bridge, "up"]] {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            p.arguments = ["-n", ns] + args
            try p.run()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else { throw TestbedError.record("ip \(args.joined(separator: " "))", reason: "failed in \(ns)") }
        }
    }
}
