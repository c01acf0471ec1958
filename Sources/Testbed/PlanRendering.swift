import Core
import Netlink

extension TestbedPlan {
    /// The plan as text: what `wayside plan FILE` prints.
    public func render() -> String {
        var out: [String] = []
        out.append("run \(runID): topology '\(topology.name)', \(nodes.count) nodes, \(links.count) links, \(namespaces.count) namespaces")
        out.append("")
        out.append("nodes:")
        for n in nodes {
            out.append("  \(n.name) (\(n.node.role.rawValue)\(n.node.stack.map { ", stack \($0.rawValue)" } ?? "")) in namespace \(n.namespace)\(n.policyRouted ? ", policy routing per source address" : "")")
            for i in n.interfaces { out.append("    \(i.name) \(i.address?.description ?? "")") }
            if let p = stackPlacement(forNode: n.name) {
                out.append("    \(p.tunName) (TUN, Swift stack): " + p.paths.map { "\($0.stackAddress) behind \($0.interface.name)" }.joined(separator: ", "))
            }
        }
        out.append("")
        out.append("links:")
        for l in links {
            var line = "  \(l.name) [\(l.link.kind.rawValue)\(l.link.alwaysOn ? ", always on" : "")]: \(l.a.node!):\(l.a.name) \(l.a.address!) — \(l.b.node!):\(l.b.name) \(l.b.address!)"
            if let e = l.emulator { line += "  via emulator \(e.namespace) \(e.aSide.name)/\(e.bSide.name)" }
            out.append(line)
            for (d, p) in [("a-to-b", l.link.aToB), ("b-to-a", l.link.bToA)] where p != .init() {
                out.append("      \(d): \(Self.describe(p))")
            }
        }
        out.append("")
        out.append("routes and rules:")
        for n in nodes {
            let rs = routes.filter { $0.namespace == n.namespace }
            let us = rules.filter { $0.namespace == n.namespace }
            if rs.isEmpty && us.isEmpty { continue }
            out.append("  \(n.name):")
            for r in rs { out.append("    \(Self.describe(r))") }
            for u in us { out.append("    rule from \(u.source) lookup \(u.table) priority \(u.priority)") }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func describe(_ p: LinkParameters) -> String {
        var parts: [String] = []
        if let r = p.rate { parts.append("rate \(r)") }
        if let d = p.delay { parts.append("delay \(d)") }
        if let j = p.jitter { parts.append("jitter \(j)") }
        if let l = p.loss { parts.append("loss \(l)") }
        if let q = p.queuePackets { parts.append("queue \(q) packets") }
        if let q = p.queueBytes { parts.append("queue \(q) bytes") }
        return parts.joined(separator: ", ")
    }

    static func describe(_ r: PlannedRoute) -> String {
        let s = r.route
        var text = s.kind == .unreachable ? "unreachable " : ""
        text += s.destination.length == 0 ? "default" : s.destination.description
        if let g = s.gateway { text += " via \(g)" }
        if let i = r.interfaceName { text += " dev \(i)" }
        if s.gateway == nil && s.kind == .unicast { text += " scope link" }
        if let src = s.source { text += " src \(src)" }
        if s.table != 254 { text += " table \(s.table)" }
        return text
    }

    /// The same plan as a shell script of `ip` commands, one process per
    /// object the way Mininet-style tools build networks: the benchmark's
    /// baseline. `teardown` gives the matching deletion script.
    public func shellScript() -> String {
        var out = ["#!/bin/sh", "# Built from Wayside's plan for run \(runID) (topology \(topology.name)).", "set -e"]
        for ns in namespaces { out.append("ip netns add \(ns)") }
        for (ns, values) in sysctls.sorted(by: { $0.key < $1.key }) {
            for (k, v) in values { out.append("ip netns exec \(ns) sysctl -qw \(k.replacingOccurrences(of: "/", with: "."))=\(v)") }
        }
        for n in nodes { out.append("ip -n \(n.namespace) link set lo up") }
        for v in veths {
            out.append("ip link add \(v.first.name) netns \(v.first.namespace) type veth peer name \(v.second.name) netns \(v.second.namespace)")
            out.append("ip -n \(v.first.namespace) link set \(v.first.name) up")
            out.append("ip -n \(v.second.namespace) link set \(v.second.name) up")
        }
        for l in links {
            for i in [l.a, l.b] { out.append("ip -n \(i.namespace) addr add \(i.address!) dev \(i.name)") }
        }
        for p in stackPlacements {
            out.append("ip -n \(p.namespace) tuntap add dev \(p.tunName) mode tun")
            out.append("ip -n \(p.namespace) link set \(p.tunName) up")
        }
        for r in routes {
            var cmd = "ip -n \(r.namespace) route add " + Self.describe(r)
            if r.route.table != 254 { cmd = cmd.replacingOccurrences(of: " table \(r.route.table)", with: "") + " table \(r.route.table)" }
            out.append(cmd)
        }
        for u in rules { out.append("ip -n \(u.namespace) rule add from \(u.source) lookup \(u.table) priority \(u.priority)") }
        return out.joined(separator: "\n") + "\n"
    }

    public func teardownScript() -> String {
        (["#!/bin/sh"] + namespaces.map { "ip netns del \($0)" }).joined(separator: "\n") + "\n"
    }
}

extension String {
    func replacingOccurrences(of target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
