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

        var sockets: [String: RouteSocket] = [:]
        for name in plan.namespaces {
            try check(cancellation)
            let ns = try NetworkNamespace.create(named: name)
            namespaces[name] = ns
            try ns.writeSysctls(plan.sysctls[name] ?? [])
            let socket = try ns.routeSocket()
            sockets[name] = socket
            try socket.setLink(index: 1, name: "lo", up: true)
        }
        timings.namespaces = lap()

        let host = try RouteSocket()
        for veth in plan.veths {
            try check(cancellation)
            try host.createVeth(VethEnd(name: veth.first.name, namespaceFD: namespaces[veth.first.namespace]!.fd, index: veth.first.index, up: true),
                                VethEnd(name: veth.second.name, namespaceFD: namespaces[veth.second.namespace]!.fd, index: veth.second.index, up: true))
            try sockets[veth.second.namespace]!.setLink(index: veth.second.index, name: veth.second.name, up: true)
        }
        timings.links = lap()

        for link in plan.links {
            try check(cancellation)
            for end in [link.a, link.b] {
                try sockets[end.namespace]!.addAddress(end.address!, interfaceIndex: end.index, interfaceName: end.name)
            }
        }
        for route in plan.routes {
            try check(cancellation)
            try sockets[route.namespace]!.addRoute(route.route)
        }
        for rule in plan.rules {
            try sockets[rule.namespace]!.addRule(from: rule.source, table: rule.table, priority: rule.priority)
        }
        timings.addressesAndRoutes = lap()

        // Wait until every node interface reports UP with carrier: sending
        // before that loses the first packets.
        let deadline = clock.now + upTimeout
        for node in plan.nodes where !node.interfaces.isEmpty {
            let socket = sockets[node.namespace]!
            let wanted = Set(node.interfaces.map(\.name))
            while true {
                try check(cancellation)
                let running = Set(try socket.links().filter(\.isRunning).map(\.name))
                if wanted.isSubset(of: running) { break }
                if clock.now > deadline {
                    throw TestbedError.timeout("interfaces \(wanted.subtracting(running).sorted().joined(separator: ", ")) of '\(node.name)' did not come up")
                }
                usleep(200)
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
