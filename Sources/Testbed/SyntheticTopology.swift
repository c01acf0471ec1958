import Core

/// Topologies of a chosen size for benchmarks and scale tests: a highway with
/// roadside units every 500 m, each wired to one core router in front of a
/// server, and vehicles each with radio links to two neighbouring units.
public enum SyntheticTopology {
    /// About `nodes` nodes (at least 5): a fifth of them roadside units, a core
    /// router, a server, the rest vehicles.
    public static func highway(nodes: Int) -> Topology {
        let total = max(nodes, 5)
        let units = max(2, total / 5)
        let vehicles = total - units - 2
        var list: [TopologyNode] = []
        var links: [TopologyLink] = []
        for v in 0..<vehicles { list.append(TopologyNode(name: "car\(v + 1)", role: .vehicle)) }
        for u in 0..<units {
            list.append(TopologyNode(name: "rsu\(u + 1)", role: .rsu, position: Position(x: Double(500 * u), y: 0),
                                     radio: RadioParameters(model: .disk(range: 300), technology: "802.11p")))
        }
        list.append(TopologyNode(name: "core", role: .router))
        list.append(TopologyNode(name: "server", role: .server))
        let radio = LinkParameters(delay: .milliseconds(2), rate: .mbit(12), queuePackets: 100)
        for v in 0..<vehicles {
            for u in [v % units, (v + 1) % units] {
                links.append(TopologyLink(name: "car\(v + 1)-rsu\(u + 1)", kind: .radio, a: LinkEnd(node: "car\(v + 1)"),
                                          b: LinkEnd(node: "rsu\(u + 1)"), aToB: radio, bToA: radio))
            }
        }
        for u in 0..<units {
            links.append(TopologyLink(name: "rsu\(u + 1)-core", kind: .wired, a: LinkEnd(node: "rsu\(u + 1)"), b: LinkEnd(node: "core")))
        }
        links.append(TopologyLink(name: "core-server", kind: .wired, a: LinkEnd(node: "core"), b: LinkEnd(node: "server")))
        return Topology(name: "synthetic-highway-\(total)", nodes: list, links: links)
    }
}
