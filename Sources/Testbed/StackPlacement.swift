import Core
import Netlink

/// One path of a node that runs the Swift stack: the stack's own address S_i
/// lives "behind" the node's veth address A_i (docs/ARCHITECTURE.md, decision 1).
public struct StackPathPlacement: Hashable, Sendable {
    /// The node's veth interface of this path, carrying A_i.
    public var interface: PlannedInterface
    /// The topology link of this path.
    public var link: String
    /// S_i, owned by the Swift stack; a /32 from 198.18.0.0/15 outside every link's subnet.
    public var stackAddress: InetAddress
    /// The routing table `from S_i` looks up: it sends traffic out of `interface` only.
    public var table: UInt32
}

/// Where the Swift stack of one node sits: a TUN device in the node's
/// namespace, and one stack address per path. The node's kernel keeps its veth
/// addresses and forwards between them and the TUN device; it never sees the
/// stack's TCP connections as its own, so it never answers them with RSTs.
public struct StackPlacement: Hashable, Sendable {
    public var node: String
    public var namespace: String
    /// `wt-<run id>` (at most 15 bytes), the same name in every node's namespace.
    public var tunName: String
    /// Chosen by the plan, like the veths' indices (set with TUNSETIFINDEX).
    public var tunIndex: Int32
    /// In the node's link order.
    public var paths: [StackPathPlacement]

    public func path(forLink name: String) -> StackPathPlacement? { paths.first { $0.link == name } }
}

extension TestbedPlan {
    public func stackPlacement(forNode name: String) -> StackPlacement? { stackPlacements.first { $0.node == name } }

    /// The TUN device's name for run `runID`.
    public static func tunName(for runID: RunID) -> String { "wt-\(runID.value)" }

    /// Stack addresses are handed out from the top of 198.18.0.0/15 downwards
    /// (198.19.255.254, .253, …), while link subnets are allocated from the
    /// bottom; any address inside a link's subnet is skipped.
    static func allocateStackAddresses(count: Int, avoiding subnets: [InetPrefix]) throws(PlanError) -> [InetAddress] {
        var result: [InetAddress] = []
        var candidate = InetPrefix.testbedRange.last.value - 1
        let first = InetPrefix.testbedRange.first.value
        while result.count < count {
            guard candidate > first else { throw PlanError(message: "198.18.0.0/15 has no room left for the Swift stack's addresses") }
            let a = InetAddress(candidate)
            if !subnets.contains(where: { $0.contains(a) }) { result.append(a) }
            candidate -= 1
        }
        return result
    }

    /// Adds the Swift stack's placement for `nodes` (end points only): a TUN
    /// device and per path a stack address, a route to it through the TUN
    /// device, a rule `from S_i lookup <table of path i>` whose table leaves by
    /// veth i, and in every other node a route to S_i exactly like its route to
    /// A_i. Only routes inside 198.18.0.0/15 are added.
    mutating func placeSwiftStacks(on names: [String]) throws(PlanError) {
        var nextIndex = (veths.flatMap { [$0.first.index, $0.second.index] }.max() ?? Self.firstInterfaceIndex) + 1
        let subnets = links.compactMap { $0.a.address?.network }
        var unique: [String] = []
        for n in names where !unique.contains(n) { unique.append(n) }
        for name in unique {
            guard let node = node(named: name) else { throw PlanError(message: "no node '\(name)' to run the Swift stack on") }
            guard !node.node.role.forwards else {
                throw PlanError(message: "node '\(name)' is a \(node.node.role.rawValue): only end points run the Swift stack")
            }
            guard !node.interfaces.isEmpty else { throw PlanError(message: "node '\(name)' has no links for the Swift stack") }
            let taken = stackPlacements.flatMap { $0.paths.map { InetPrefix($0.stackAddress, length: 32) } }
            let addresses = try Self.allocateStackAddresses(count: node.interfaces.count, avoiding: subnets + taken)
            let tun = PlannedInterface(node: name, namespace: node.namespace, name: Self.tunName(for: runID), index: nextIndex, address: nil)
            nextIndex += 1
            var paths: [StackPathPlacement] = []
            for (k, own) in node.interfaces.enumerated() {
                guard let a = own.address, let link = links.first(where: { $0.a == own || $0.b == own }) else { continue }
                let peer = link.a == own ? link.b : link.a
                let table = Self.firstPolicyTable + UInt32(k)
                let s = addresses[k]
                paths.append(StackPathPlacement(interface: own, link: link.name, stackAddress: s, table: table))
                let host = InetPrefix(s, length: 32)

                // In the node: S_i through the TUN device; `from S_i` by path i's table.
                routes.append(PlannedRoute(namespace: node.namespace, route: RouteSpec(destination: host, interfaceIndex: tun.index),
                                           interfaceName: tun.name))
                if !node.policyRouted {
                    // A single-link node has no per-source tables yet: the same three routes a multi-homed one has.
                    routes.append(PlannedRoute(namespace: node.namespace, route: RouteSpec(destination: a.network, interfaceIndex: own.index,
                                                                                          source: a.address, table: table), interfaceName: own.name))
                    routes.append(PlannedRoute(namespace: node.namespace, route: RouteSpec(destination: .testbedRange, gateway: peer.address?.address,
                                                                                          interfaceIndex: own.index, table: table), interfaceName: own.name))
                    routes.append(PlannedRoute(namespace: node.namespace, route: RouteSpec(destination: .defaultRoute, kind: .unreachable, table: table),
                                               interfaceName: nil))
                }
                rules.append(PlannedRule(namespace: node.namespace, source: host, table: table, priority: table))

                // Elsewhere: the peer on the link reaches S_i through A_i; every other
                // node copies its main-table route to A_i (longest prefix match).
                for other in nodes where other.name != name {
                    if other.namespace == peer.namespace {
                        routes.append(PlannedRoute(namespace: other.namespace, route: RouteSpec(destination: host, gateway: a.address,
                                                                                               interfaceIndex: peer.index), interfaceName: peer.name))
                        continue
                    }
                    let towardsA = routes.filter { $0.namespace == other.namespace && $0.route.table == 254 && $0.route.destination.contains(a.address) }
                        .max { $0.route.destination.length < $1.route.destination.length }
                    guard let towardsA else { continue }
                    var copy = towardsA
                    copy.route.destination = host
                    routes.append(copy)
                }
            }
            stackPlacements.append(StackPlacement(node: name, namespace: node.namespace, tunName: tun.name, tunIndex: tun.index, paths: paths))
        }
    }
}
