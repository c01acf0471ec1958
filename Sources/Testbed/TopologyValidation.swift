import Config
import Netlink

/// Checks across a whole topology (names, references, addresses), reported
/// into the same diagnostics as the decoding problems.
struct TopologyValidation {
    let diagnostics: ConfigDiagnostics
    let topology: Topology
    let root: ConfigValue
    /// Nodes named by links that did not decode (already reported).
    var nodesOfBrokenLinks: Set<String> = []

    func report(_ message: String, at location: SourceLocation?) {
        diagnostics.report(message, at: location ?? root.location)
    }

    func run() {
        // Duplicate link names: timelines name links, so a name must mean one link.
        var firstByName: [String: TopologyLink] = [:]
        for link in topology.links {
            if let first = firstByName[link.name] {
                let line = first.location.map { " (line \($0.line))" } ?? ""
                report("a second link named '\(link.name)'\(line); expected unique link names: give one of them 'name:'", at: link.location)
            } else {
                firstByName[link.name] = link
            }
        }

        // Every vehicle needs a radio link, or it never connects to anything.
        for node in topology.nodes where node.role == .vehicle && !nodesOfBrokenLinks.contains(node.name) {
            if !topology.links(of: node.name).contains(where: { $0.kind == .radio }) {
                report("vehicle '\(node.name)' has no radio link; expected at least one link of kind 'radio' to a roadside unit", at: node.location)
            }
        }

        // Interface names are unique within a node.
        for node in topology.nodes {
            var seen: [String: TopologyLink] = [:]
            for link in topology.links(of: node.name) {
                for end in [link.a, link.b] where end.node == node.name {
                    guard let name = end.interface else { continue }
                    if let other = seen[name], other.name != link.name || link.a.node == link.b.node {
                        report("interface '\(name)' of '\(node.name)' is already used by link '\(other.name)'; expected a different name", at: link.location)
                    } else {
                        seen[name] = link
                    }
                }
            }
        }

        // Explicit addresses: both ends in one subnet, no clash with any other link.
        var subnets: [(InetPrefix, TopologyLink)] = []
        var addresses: [InetAddress: TopologyLink] = [:]
        for link in topology.links {
            guard let a = link.a.address, let b = link.b.address else { continue }
            if a.network != b.network {
                report("addresses \(a) and \(b) of link '\(link.name)' are in different subnets; expected both ends in one subnet", at: link.location)
                continue
            }
            if a.address == b.address {
                report("both ends of link '\(link.name)' have address \(a.address); expected two different addresses", at: link.location)
                continue
            }
            for address in [a.address, b.address] {
                if let other = addresses[address] {
                    report("address \(address) of link '\(link.name)' is already used by link '\(other.name)'", at: link.location)
                }
                addresses[address] = link
            }
            if let (subnet, other) = subnets.first(where: { $0.0.overlaps(a.network) }) {
                report("subnet \(a.network) of link '\(link.name)' overlaps \(subnet) of link '\(other.name)'; expected one subnet per link", at: link.location)
            }
            subnets.append((a.network, link))
        }

        // Explicit routes go to a neighbour.
        for route in topology.routes {
            let neighbours = topology.links(of: route.node).compactMap { $0.peer(of: route.node)?.node }
            if !neighbours.contains(route.via) {
                report("'\(route.via)' is not a neighbour of '\(route.node)'; expected one of \(Suggestion.list(neighbours))", at: route.location)
            }
        }
    }
}
