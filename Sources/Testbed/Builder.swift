import Foundation
import Netlink

/// Set from a signal handler (or another thread) to stop a build between two
/// steps; the builder then removes what it created and throws `.interrupted`.
public final class BuildCancellation: @unchecked Sendable {
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public func cancel() { lock.lock(); cancelled = true; lock.unlock() }
    public var isCancelled: Bool { lock.lock(); defer { lock.unlock() }; return cancelled }
}

/// What the build's workers share: the first error, and what they created.
final class SharedBuildState: @unchecked Sendable {
    private let lock = NSLock()
    private(set) var error: Error?
    private(set) var namespaces: [String: NetworkNamespace] = [:]
    private(set) var sockets: [String: RouteSocket] = [:]
    func fail(_ e: Error) { lock.lock(); if error == nil { error = e }; lock.unlock() }
    func add(_ ns: NetworkNamespace) { lock.lock(); namespaces[ns.name] = ns; lock.unlock() }
    func add(_ socket: RouteSocket, for name: String) { lock.lock(); sockets[name] = socket; lock.unlock() }
}

/// How long each phase of a build took, for the benchmark.
public struct BuildTimings: Sendable {
    public var namespaces: Duration = .zero
    public var links: Duration = .zero
    public var addressesAndRoutes: Duration = .zero
    public var waitForUp: Duration = .zero
    public var total: Duration { namespaces + links + addressesAndRoutes + waitForUp }
}

/// A testbed that is up. `teardown()` removes all of it; nothing is removed
/// implicitly (a run left up by `wayside up` outlives the process).
public final class TestbedNetwork {
    public let plan: TestbedPlan
    public let registry: RunRegistry
    public private(set) var timings = BuildTimings()
    var namespaces: [String: NetworkNamespace] = [:]

    init(plan: TestbedPlan, registry: RunRegistry) { self.plan = plan; self.registry = registry }

    /// Builds `plan`: records the run, creates its namespaces, links, addresses,
    /// routes and rules through netlink, and returns once every node interface
    /// is up with carrier. On any error or cancellation everything created is
    /// removed before the error is thrown.
    public static func build(_ plan: TestbedPlan, topologyFile: String? = nil, registry: RunRegistry = RunRegistry(),
                             cancellation: BuildCancellation? = nil, upTimeout: Duration = .seconds(10)) throws -> TestbedNetwork {
        let testbed = TestbedNetwork(plan: plan, registry: registry)
        var record = RunRecord(plan: plan, topologyFile: topologyFile, pid: getpid(), state: .building)
        try registry.write(record, exclusive: true)
        do {
            try testbed.create(cancellation: cancellation, upTimeout: upTimeout)
            record.state = .up
            try registry.write(record, exclusive: false)
        } catch {
            try? testbed.teardown()
            if let e = error as? NetlinkError { throw TestbedError.netlink(e) }
            throw error
        }
        testbed.closeNamespaces()
        return testbed
    }

    private func check(_ cancellation: BuildCancellation?) throws {
        if cancellation?.isCancelled == true { throw TestbedError.interrupted }
    }

    private func create(cancellation: BuildCancellation?, upTimeout: Duration) throws {
        let clock = ContinuousClock()
        var start = clock.now
        func lap() -> Duration { let now = clock.now; defer { start = now }; return now - start }

        // Work is split over the namespace thread pool: worker k owns the
        // namespaces at positions k, k+W, …, and only it touches their sockets.
        let workers = NamespaceThread.pool
        let names = plan.namespaces
        let owner = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($0.element, $0.offset % workers.count) })
        let shared = SharedBuildState()
        func parallel(_ body: @escaping (Int) throws -> Void) throws {
            DispatchQueue.concurrentPerform(iterations: workers.count) { k in
                do { try body(k) } catch { shared.fail(error) }
            }
            if let error = shared.error { throw error }
        }
        func check() throws {
            if shared.error != nil { throw TestbedError.interrupted }
            try self.check(cancellation)
        }

        try parallel { k in
            for name in names where owner[name] == k {
                try check()
                let ns = try NetworkNamespace.create(named: name, thread: workers[k])
                shared.add(ns)
                try ns.writeSysctls(self.plan.sysctls[name] ?? [], thread: workers[k])
                let socket = try ns.routeSocket(thread: workers[k])
                shared.add(socket, for: name)
                try socket.setLink(index: 1, name: "lo", up: true)
            }
        }
        namespaces = shared.namespaces
        let sockets = shared.sockets
        timings.namespaces = lap()

        // Veth pairs are made from the host namespace with both ends placed by
        // descriptor, by the worker that owns the second end's namespace, which
        // brings that end up at once. Bringing ends up one by one, rather than
        // all at the end, matters: the kernel's linkwatch handles at most 100
        // carrier changes per pass and defers the rest by up to a second, so a
        // burst of hundreds of them makes "UP" take seconds.
        let veths = plan.veths
        try parallel { k in
            let host = try RouteSocket()
            for veth in veths where owner[veth.second.namespace] == k {
                try check()
                try host.createVeth(VethEnd(name: veth.first.name, namespaceFD: self.namespaces[veth.first.namespace]!.fd, index: veth.first.index, up: true),
                                    VethEnd(name: veth.second.name, namespaceFD: self.namespaces[veth.second.namespace]!.fd, index: veth.second.index, up: true))
                try sockets[veth.second.namespace]!.setLink(index: veth.second.index, name: veth.second.name, up: true)
            }
        }
        // The Swift stack's TUN devices, persistent so that routes can point at
        // them now; the stack attaches to them by name when it starts.
        let placements = plan.stackPlacements
        try parallel { k in
            for p in placements where owner[p.namespace] == k {
                try check()
                let name = p.tunName, index = p.tunIndex, namespace = p.namespace
                try self.namespaces[namespace]!.run(thread: workers[k]) {
                    try TunDevice.createPersistent(name: name, index: index, namespace: namespace)
                }
                try sockets[namespace]!.setLink(index: index, name: name, up: true)
            }
        }
        timings.links = lap()

        // Per namespace, by its owner: addresses, routes, rules.
        var work: [String: (addresses: [PlannedInterface], routes: [PlannedRoute], rules: [PlannedRule])] = [:]
        for l in plan.links { for e in [l.a, l.b] { work[e.namespace, default: ([], [], [])].addresses.append(e) } }
        for r in plan.routes { work[r.namespace, default: ([], [], [])].routes.append(r) }
        for r in plan.rules { work[r.namespace, default: ([], [], [])].rules.append(r) }
        try parallel { k in
            for name in names where owner[name] == k {
                guard let w = work[name] else { continue }
                let socket = sockets[name]!
                try check()
                for i in w.addresses { try socket.addAddress(i.address!, interfaceIndex: i.index, interfaceName: i.name) }
                for r in w.routes { try socket.addRoute(r.route) }
                for r in w.rules { try socket.addRule(from: r.source, table: r.table, priority: r.priority) }
            }
        }
        timings.addressesAndRoutes = lap()

        // Wait until every node interface reports UP with carrier: sending
        // before that loses the first packets.
        let deadline = clock.now + upTimeout
        let nodes = plan.nodes
        try parallel { k in
            for node in nodes where owner[node.namespace] == k && !node.interfaces.isEmpty {
                let socket = sockets[node.namespace]!
                let wanted = Set(node.interfaces.map(\.name))
                while true {
                    try check()
                    let running = Set(try socket.links().filter(\.isRunning).map(\.name))
                    if wanted.isSubset(of: running) { break }
                    if clock.now > deadline {
                        throw TestbedError.timeout("interfaces \(wanted.subtracting(running).sorted().joined(separator: ", ")) of '\(node.name)' did not come up")
                    }
                    usleep(200)
                }
            }
        }
        timings.waitForUp = lap()
    }

    private func closeNamespaces() {
        for ns in namespaces.values { ns.close() }
        namespaces.removeAll()
    }

    /// Removes every namespace of the run (and with them every interface,
    /// address, route and rule) and its record.
    public func teardown() throws {
        closeNamespaces()
        try TestbedNetwork.remove(namespaces: plan.namespaces, runID: plan.runID.value, registry: registry)
    }

    /// Removes a run's namespaces and then its record; the record stays if a
    /// namespace could not be removed, so that a later cleanup can retry.
    static func remove(namespaces: [String], runID: String, registry: RunRegistry) throws {
        var errors: [NetlinkError] = []
        for name in namespaces {
            do { try NetworkNamespace.delete(named: name) } catch let e as NetlinkError { errors.append(e) }
        }
        guard errors.isEmpty else { throw TestbedError.teardown(errors) }
        registry.remove(runID)
    }

    /// `wayside down` / `wayside cleanup --run`: removes what a recorded run created.
    public static func remove(runID: String, registry: RunRegistry = RunRegistry()) throws {
        let record = try registry.read(runID)
        try remove(namespaces: record.namespaces, runID: record.runID, registry: registry)
    }
}
