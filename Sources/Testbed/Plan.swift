import Core
import Netlink

/// A short identifier every namespace and file of one run carries, so that
/// parallel runs never collide and `wayside cleanup` finds exactly one run's
/// leftovers: 1 to 12 characters of `a-z` and `0-9`.
public struct RunID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let value: String

    public init?(_ text: String) {
        guard (1...12).contains(text.count), text.allSatisfy({ ("a"..."z").contains($0) || ("0"..."9").contains($0) }) else { return nil }
        value = text
    }

    /// Six random characters (36^6 ≈ 2·10^9 possibilities).
    public static func random() -> RunID {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        return RunID(String((0..<6).map { _ in alphabet.randomElement()! }))!
    }

    public var description: String { value }

    /// Prefix of every namespace of the run.
    public var namespacePrefix: String { "ws-\(value)-" }
    public func namespace(forNode node: String) -> String { "ws-\(value)-\(node)" }
    /// Node names cannot start with '-', so this never equals a node's namespace.
    public var emulatorNamespace: String { "ws-\(value)--emu" }
}

/// One interface the plan creates.
public struct PlannedInterface: Hashable, Sendable {
    /// The node it belongs to, or nil for the emulator's side of a link.
    public var node: String?
    public var namespace: String
    public var name: String
    /// Chosen by the plan (the namespaces are new); unique over the whole run.
    public var index: Int32
    public var address: InetPrefix?
}

/// Where the emulator attaches to a link that goes through it: link a—b is
/// built as veth a—`aSide` and veth `bSide`—b, both emulator ends in `namespace`;
/// the emulator moves a→b frames from `aSide` to `bSide` and back.
public struct EmulatorAttachment: Hashable, Sendable {
    public var namespace: String
    /// Faces endpoint a: frames a sends arrive here.
    public var aSide: PlannedInterface
    /// Faces endpoint b.
    public var bSide: PlannedInterface
}

public struct PlannedLink: Hashable, Sendable {
    public var link: TopologyLink
    public var name: String { link.name }
    /// The interfaces at the two nodes.
    public var a: PlannedInterface
    public var b: PlannedInterface
    public var emulator: EmulatorAttachment?
}

/// A veth pair to create: `first` may be created up, `second` is brought up after.
public struct PlannedVeth: Hashable, Sendable {
    public var first: PlannedInterface
    public var second: PlannedInterface
}

public struct PlannedRoute: Hashable, Sendable {
    public var namespace: String
    public var route: RouteSpec
    /// The outgoing interface's name, for printing.
    public var interfaceName: String?
}

public struct PlannedRule: Hashable, Sendable {
    public var namespace: String
    public var source: InetPrefix
    public var table: UInt32
    public var priority: UInt32
}

public struct PlannedNode: Hashable, Sendable {
    public var node: TopologyNode
    public var name: String { node.name }
    public var namespace: String
    public var interfaces: [PlannedInterface]
    /// True when the node has several links and each of its addresses has its own table.
    public var policyRouted: Bool
}

/// Why a topology cannot be planned (beyond what validation already catches).
public struct PlanError: Error, Hashable, Sendable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Everything a run creates, computed from a topology without touching the
/// system: printable (`wayside plan`), executable (`TestbedBuilder`), and
/// renderable as the equivalent `ip` commands (the benchmark's baseline).
public struct TestbedPlan: Hashable, Sendable {
    public var runID: RunID
    public var topology: Topology
    public var nodes: [PlannedNode]
    public var links: [PlannedLink]
    /// The run's emulator namespace, if any link goes through the emulator.
    public var emulatorNamespace: String?
    public var veths: [PlannedVeth]
    public var routes: [PlannedRoute]
    public var rules: [PlannedRule]
    /// Nodes that run the Swift stack: their TUN devices and stack addresses
    /// (their routes and rules are in `routes` and `rules`).
    public var stackPlacements: [StackPlacement] = []
    /// Per namespace, `/proc/sys` keys and values.
    public var sysctls: [String: [(String, String)]] {
        var result: [String: [(String, String)]] = [:]
        for n in nodes { result[n.namespace] = Self.nodeSysctls }
        if let e = emulatorNamespace { result[e] = Self.emulatorSysctls }
        return result
    }

    /// Every namespace, nodes in file order then the emulator's.
    public var namespaces: [String] { nodes.map(\.namespace) + (emulatorNamespace.map { [$0] } ?? []) }

    /// Nodes forward between their links (routers, RSUs; the Swift stack's TUN
    /// device on end points) and accept traffic whatever interface it arrives on
    /// (multi-homed hosts receive replies on the path they chose). IPv6 is off:
    /// Wayside routes IPv4 only and IPv6 autoconfiguration would add traffic.
    static let nodeSysctls: [(String, String)] = [
        ("net/ipv4/ip_forward", "1"),
        ("net/ipv4/conf/all/rp_filter", "0"),
        ("net/ipv4/conf/default/rp_filter", "0"),
        ("net/ipv6/conf/all/disable_ipv6", "1"),
        ("net/ipv6/conf/default/disable_ipv6", "1"),
    ]
    /// The emulator moves frames itself; its namespace routes nothing.
    static let emulatorSysctls: [(String, String)] = [
        ("net/ipv4/ip_forward", "0"),
        ("net/ipv6/conf/all/disable_ipv6", "1"),
        ("net/ipv6/conf/default/disable_ipv6", "1"),
    ]

    /// First interface index the plan gives out in a namespace (lo is 1; the
    /// kernel may add fallback tunnel devices at 2, 3, …).
    static let firstInterfaceIndex: Int32 = 100
    /// Per-source routing tables and their rules' priorities start here.
    static let firstPolicyTable: UInt32 = 100

    public func node(named name: String) -> PlannedNode? { nodes.first { $0.name == name } }
    public func link(named name: String) -> PlannedLink? { links.first { $0.name == name } }
}

extension TestbedPlan {
    /// Plans a topology for run `runID`. `emulation` overrides the topology's own
    /// mode. `swiftStackNodes` run the Swift stack and get its placement
    /// (`StackPlacement`); the topology's `stack:` keys do not decide it, since
    /// one topology serves runs of every stack.
    public init(topology: Topology, runID: RunID, emulation: EmulationMode? = nil, swiftStackNodes: [String] = []) throws(PlanError) {
        let mode = emulation ?? topology.emulation
        self.runID = runID
        self.topology = topology

        // Addresses: explicit ones as written; the rest a /30 each, in link
        // order, from 198.18.0.0/15, skipping anything an explicit subnet overlaps.
        let explicit = topology.links.compactMap { $0.a.address?.network }
        var nextSubnet: UInt32 = InetPrefix.testbedRange.address.value
        let end = InetPrefix.testbedRange.last.value
        func allocate() throws(PlanError) -> InetPrefix {
            while nextSubnet < end {
                let candidate = InetPrefix(InetAddress(nextSubnet), length: 30)
                nextSubnet += 4
                if !explicit.contains(where: { $0.overlaps(candidate) }) { return candidate }
            }
            throw PlanError(message: "198.18.0.0/15 has no room left for another /30: too many links")
        }

        // Indices are per namespace, but one counter runs over the whole run so
        // that the two ends of a veth never share a number: the kernel treats a
        // carrier change as urgent only on a device whose index differs from
        // its peer's (`linkwatch_urgent_event`); otherwise the change waits for
        // linkwatch's once-a-second batch and "up" takes up to a second.
        var nextIndex = Self.firstInterfaceIndex
        func index(in namespace: String) -> Int32 {
            defer { nextIndex += 1 }
            return nextIndex
        }
        // Default interface names per node: eth0, eth1, … skipping names the file gives.
        var usedNames: [String: Set<String>] = [:]
        for l in topology.links {
            for e in [l.a, l.b] { if let n = e.interface { usedNames[e.node, default: []].insert(n) } }
        }
        var nextEth: [String: Int] = [:]
        func interfaceName(_ end: LinkEnd) -> String {
            if let n = end.interface { return n }
            while true {
                let k = nextEth[end.node, default: 0]
                nextEth[end.node] = k + 1
                let candidate = "eth\(k)"
                if !usedNames[end.node, default: []].contains(candidate) {
                    usedNames[end.node, default: []].insert(candidate)
                    return candidate
                }
            }
        }

        let emulatorNamespace = runID.emulatorNamespace
        var links: [PlannedLink] = []
        var veths: [PlannedVeth] = []
        var interfacesByNode: [String: [PlannedInterface]] = [:]
        for (i, l) in topology.links.enumerated() {
            let (addressA, addressB): (InetPrefix, InetPrefix)
            if let a = l.a.address, let b = l.b.address {
                (addressA, addressB) = (a, b)
            } else {
                let subnet = try allocate()
                addressA = InetPrefix(InetAddress(subnet.address.value + 1), length: 30)
                addressB = InetPrefix(InetAddress(subnet.address.value + 2), length: 30)
            }
            let nsA = runID.namespace(forNode: l.a.node), nsB = runID.namespace(forNode: l.b.node)
            let a = PlannedInterface(node: l.a.node, namespace: nsA, name: interfaceName(l.a), index: index(in: nsA), address: addressA)
            let b = PlannedInterface(node: l.b.node, namespace: nsB, name: interfaceName(l.b), index: index(in: nsB), address: addressB)
            interfacesByNode[l.a.node, default: []].append(a)
            interfacesByNode[l.b.node, default: []].append(b)
            var attachment: EmulatorAttachment?
            if mode == .userspace && l.needsEmulation {
                let aSide = PlannedInterface(node: nil, namespace: emulatorNamespace, name: "e\(i)a", index: index(in: emulatorNamespace))
                let bSide = PlannedInterface(node: nil, namespace: emulatorNamespace, name: "e\(i)b", index: index(in: emulatorNamespace))
                attachment = EmulatorAttachment(namespace: emulatorNamespace, aSide: aSide, bSide: bSide)
                // The node ends are created up; the emulator's ends are brought up
                // after, so the nodes see carrier only once both halves exist.
                veths.append(PlannedVeth(first: a, second: aSide))
                veths.append(PlannedVeth(first: b, second: bSide))
            } else {
                veths.append(PlannedVeth(first: a, second: b))
            }
            links.append(PlannedLink(link: l, a: a, b: b, emulator: attachment))
        }

        let nodes = topology.nodes.map { n in
            PlannedNode(node: n, namespace: runID.namespace(forNode: n.name), interfaces: interfacesByNode[n.name] ?? [],
                        policyRouted: !n.role.forwards && (interfacesByNode[n.name]?.count ?? 0) > 1)
        }
        self.nodes = nodes
        self.links = links
        self.veths = veths
        self.emulatorNamespace = links.contains { $0.emulator != nil } ? emulatorNamespace : nil
        (routes, rules) = RoutingPlan(topology: topology, nodes: nodes, links: links).compute()
        try placeSwiftStacks(on: swiftStackNodes)
    }
}

/// Shortest-path routing over the planned links.
struct RoutingPlan {
    let topology: Topology
    let nodes: [PlannedNode]
    let links: [PlannedLink]

    /// For each node, its links as (planned link, own interface, peer interface), in file order.
    func adjacency() -> [String: [(link: PlannedLink, own: PlannedInterface, peer: PlannedInterface)]] {
        var result: [String: [(link: PlannedLink, own: PlannedInterface, peer: PlannedInterface)]] = [:]
        for l in links {
            result[l.a.node!, default: []].append((l, l.a, l.b))
            result[l.b.node!, default: []].append((l, l.b, l.a))
        }
        return result
    }

    /// Breadth-first search from `source`, expanding only through forwarding
    /// nodes (end points never carry others' traffic). Returns, for every node
    /// reached, its distance and the first hop (own interface, peer interface).
    func shortestPaths(from source: String, adjacency: [String: [(link: PlannedLink, own: PlannedInterface, peer: PlannedInterface)]],
                       forwards: [String: Bool]) -> [String: (distance: Int, own: PlannedInterface, peer: PlannedInterface)] {
        var result: [String: (distance: Int, own: PlannedInterface, peer: PlannedInterface)] = [:]
        var frontier: [String] = []
        for hop in adjacency[source] ?? [] where result[hop.peer.node!] == nil && hop.peer.node != source {
            result[hop.peer.node!] = (1, hop.own, hop.peer)
            frontier.append(hop.peer.node!)
        }
        var distance = 1
        while !frontier.isEmpty {
            distance += 1
            var next: [String] = []
            for n in frontier where forwards[n] == true {
                for hop in adjacency[n] ?? [] {
                    let m = hop.peer.node!
                    if m == source || result[m] != nil { continue }
                    let first = result[n]!
                    result[m] = (distance, first.own, first.peer)
                    next.append(m)
                }
            }
            frontier = next
        }
        return result
    }

    func compute() -> ([PlannedRoute], [PlannedRule]) {
        let adjacency = adjacency()
        let forwards = Dictionary(uniqueKeysWithValues: topology.nodes.map { ($0.name, $0.role.forwards) })
        var routes: [PlannedRoute] = []
        var rules: [PlannedRule] = []
        let range = InetPrefix.testbedRange

        for node in nodes {
            let ns = node.namespace
            let hops = adjacency[node.name] ?? []
            if hops.isEmpty { continue }
            func route(_ destination: InetPrefix, own: PlannedInterface, peer: PlannedInterface, table: UInt32 = 254) -> PlannedRoute {
                PlannedRoute(namespace: ns, route: RouteSpec(destination: destination, gateway: peer.address?.address,
                                                             interfaceIndex: own.index, table: table), interfaceName: own.name)
            }

            // Main table: per destination subnet, the first hop of a shortest path,
            // towards the subnet's forwarding end if it has one (an end point
            // would have to forward to reach its peer's address).
            let paths = shortestPaths(from: node.name, adjacency: adjacency, forwards: forwards)
            var chosen: [(InetPrefix, (own: PlannedInterface, peer: PlannedInterface)?)] = []
            for l in links {
                guard let subnet = l.a.address?.network else { continue }
                if l.a.node == node.name || l.b.node == node.name { continue } // directly connected
                let ends = [l.a.node!, l.b.node!].filter { paths[$0] != nil }
                let preferred = ends.filter { forwards[$0] == true }
                let candidates = preferred.isEmpty ? ends : preferred
                let best = candidates.min { paths[$0]!.distance < paths[$1]!.distance }
                chosen.append((subnet, best.map { (paths[$0]!.own, paths[$0]!.peer) }))
            }
            // Summarise: the most common first hop carries 198.18.0.0/15; only
            // subnets reached another way get their own route.
            var counts: [Int32: Int] = [:]
            for (_, hop) in chosen { if let hop { counts[hop.own.index, default: 0] += 1 } }
            let summaryIndex = counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key
                ?? (hops.count == 1 ? hops[0].own.index : nil)
            var explicitDestinations = Set<InetPrefix>()
            for r in topology.routes where r.node == node.name {
                guard let hop = hops.first(where: { $0.peer.node == r.via }) else { continue }
                routes.append(route(r.destination, own: hop.own, peer: hop.peer))
                explicitDestinations.insert(r.destination)
            }
            if let summaryIndex, let hop = hops.first(where: { $0.own.index == summaryIndex }) {
                if !explicitDestinations.contains(range) { routes.append(route(range, own: hop.own, peer: hop.peer)) }
                for (subnet, h) in chosen where !explicitDestinations.contains(subnet) {
                    if let h {
                        if h.own.index != summaryIndex { routes.append(route(subnet, own: h.own, peer: h.peer)) }
                    } else {
                        routes.append(PlannedRoute(namespace: ns, route: RouteSpec(destination: subnet, kind: .unreachable), interfaceName: nil))
                    }
                }
            }

            // Several links on an end point: each address gets its own table, so
            // traffic from it leaves by its own interface, and `unreachable
            // default` so it never leaks out of another one when its link is down.
            if node.policyRouted {
                for (k, hop) in hops.enumerated() {
                    guard let own = hop.own.address else { continue }
                    let table = TestbedPlan.firstPolicyTable + UInt32(k)
                    routes.append(PlannedRoute(namespace: ns, route: RouteSpec(destination: own.network, interfaceIndex: hop.own.index,
                                                                               source: own.address, table: table), interfaceName: hop.own.name))
                    routes.append(route(range, own: hop.own, peer: hop.peer, table: table))
                    routes.append(PlannedRoute(namespace: ns, route: RouteSpec(destination: .defaultRoute, kind: .unreachable, table: table), interfaceName: nil))
                    rules.append(PlannedRule(namespace: ns, source: InetPrefix(own.address, length: 32), table: table, priority: table))
                }
            }
        }
        return (routes, rules)
    }
}
