import Config
import Core
import Netlink

extension Topology {
    /// Reads, decodes and validates a topology file. Throws a `ConfigError`
    /// listing every problem (`file:line:column: message`); nothing is built
    /// from a file that has any.
    public static func load(contentsOf path: String) throws(ConfigError) -> Topology {
        let document = try ConfigDocument(contentsOf: path)
        return try decode(document, defaultName: fileStem(path))
    }

    /// Decodes and validates topology YAML given as text; `file` names it in messages.
    public static func parse(text: String, file: String = "<topology>") throws(ConfigError) -> Topology {
        try decode(ConfigDocument(text: text, file: file), defaultName: fileStem(file))
    }

    public static func decode(_ document: ConfigDocument, defaultName: String) throws(ConfigError) -> Topology {
        var decoder = TopologyDecoder(diagnostics: document.diagnostics)
        let topology = decoder.decode(document.root, defaultName: defaultName)
        try document.finish()
        guard let topology else {
            // Unreachable in practice: every nil path reports a problem first.
            throw ConfigError(at: document.root.location, "expected a topology")
        }
        return topology
    }

    static func fileStem(_ path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? path
        for ext in [".yaml", ".yml"] where base.hasSuffix(ext) { base.removeLast(ext.count) }
        return base
    }
}

/// Longest node name: keeps namespace names (`ws-<run id>-<node>`) readable.
let maximumNodeNameLength = 32
/// Linux's IFNAMSIZ less the terminating NUL.
public let maximumInterfaceNameLength = 15

struct TopologyDecoder {
    let diagnostics: ConfigDiagnostics

    static let topKeys = ["name", "description", "emulation", "nodes", "links", "routes"]
    static let nodeKeys = ["role", "position", "radio", "stack"]
    static let radioKeys = ["technology", "range", "path-loss"]
    static let pathLossKeys = ["tx-power", "reference-loss", "reference-distance", "exponent", "shadowing", "associate", "disassociate"]
    static let directionKeys = ["rate", "delay", "jitter", "loss", "queue"]
    static let linkKeys = ["name", "endpoints", "kind", "interfaces", "addresses", "always-on", "emulate", "a-to-b", "b-to-a"] + directionKeys
    static let routeKeys = ["node", "to", "via"]

    mutating func decode(_ root: ConfigValue, defaultName: String) -> Topology? {
        guard let top = root.mapping(keys: Self.topKeys, expected: "a topology (a mapping with 'nodes' and 'links')") else { return nil }
        let name = top["name"]?.identifier() ?? defaultName
        let description = top["description"]?.string()
        let emulation = top["emulation"]?.choice(EmulationMode.self, what: "an emulation mode") ?? .userspace

        var nodes: [TopologyNode] = []
        if let nodesValue = top.required("nodes", expected: "a mapping from node names to nodes"),
           let nodeMap = nodesValue.mapping(expected: "a mapping from node names to nodes") {
            if nodeMap.entries.isEmpty { nodesValue.report("expected at least one node, found none") }
            for entry in nodeMap.entries {
                if let node = decodeNode(entry) { nodes.append(node) }
            }
        }
        let known = Set(nodes.map(\.name))
        // Names that failed to decode still count as defined, so that links to
        // them do not add a second, misleading "unknown node" problem.
        let written = Set((top["nodes"]?.node.mapping?.keys.compactMap(\.string)) ?? [])

        var links: [TopologyLink] = []
        var brokenEndpoints = Set<String>()
        if let linksValue = top.required("links", expected: "a list of links"), let items = linksValue.sequence(expected: "a list of links") {
            for (index, item) in items.enumerated() {
                if let link = decodeLink(item, index: index, nodes: nodes, written: written) {
                    links.append(link)
                } else {
                    // Its nodes may lack a link only because this one is broken:
                    // say nothing more about them.
                    brokenEndpoints.formUnion(item.node.mapping?["endpoints"]?.array().compactMap(\.string) ?? [])
                }
            }
        }

        var routes: [ExplicitRoute] = []
        if let items = top["routes"]?.sequence(expected: "a list of routes") {
            for item in items {
                if let r = decodeRoute(item, known: known, written: written) { routes.append(r) }
            }
        }

        let topology = Topology(name: name, description: description, nodes: nodes, links: links, routes: routes, emulation: emulation)
        TopologyValidation(diagnostics: diagnostics, topology: topology, root: root, nodesOfBrokenLinks: brokenEndpoints).run()
        return topology
    }

    // MARK: Nodes

    func decodeNode(_ entry: ConfigMapping.Entry) -> TopologyNode? {
        let nameValue = ConfigValue(node: .init(entry.key), location: entry.keyLocation, path: entry.key, diagnostics: diagnostics)
        let name = nameValue.identifier(expected: "a node name of letters, digits, '-', '_' or '.'", maxLength: maximumNodeNameLength)
        guard let m = entry.value.mapping(keys: Self.nodeKeys, expected: "a node (a mapping with 'role')") else { return nil }
        let role = m.required("role", expected: "the node's role (\(Suggestion.list(NodeRole.allCases.map(\.rawValue))))")?
            .choice(NodeRole.self, what: "a role")
        let position = m["position"].flatMap(decodePosition)
        let radio = m["radio"].flatMap(decodeRadio)
        let stack = m["stack"]?.choice(StackKind.self, what: "a stack")
        guard let name, let role else { return nil }

        if let p = m["position"], role == .vehicle {
            diagnostics.report("a vehicle has no fixed position: its positions come from the route; expected 'position' only on roadside units and other fixed nodes", at: p.location)
        }
        if let r = m["radio"], role != .rsu {
            diagnostics.report("only a roadside unit (role 'rsu') has a radio; '\(name)' is a \(role.rawValue)", at: r.location)
        }
        if role == .rsu, position != nil, m["radio"] == nil {
            m.value.report("roadside unit '\(name)' has a position but no radio: expected 'radio' with 'range' or 'path-loss'")
        }
        if let s = m["stack"], role.forwards {
            diagnostics.report("a \(role.rawValue) forwards traffic and runs no stack; expected 'stack' only on vehicles, servers and hosts", at: s.location)
        }
        return TopologyNode(name: name, role: role, position: position, radio: radio, stack: stack, location: entry.keyLocation)
    }

    func decodePosition(_ v: ConfigValue) -> Position? {
        let what = "a position in metres: [x, y] or {x: .., y: ..}"
        switch v.node {
        case .sequence:
            guard let items = v.sequence(expected: what) else { return nil }
            guard items.count == 2 else { v.reportExpected(what); return nil }
            guard let x = items[0].metres(), let y = items[1].metres() else { return nil }
            return Position(x: x, y: y)
        case .mapping:
            guard let m = v.mapping(keys: ["x", "y"], expected: what) else { return nil }
            let x = m.required("x", expected: "metres")?.metres()
            let y = m.required("y", expected: "metres")?.metres()
            guard let x, let y else { return nil }
            return Position(x: x, y: y)
        default:
            v.reportExpected(what)
            return nil
        }
    }

    func decodeRadio(_ v: ConfigValue) -> RadioParameters? {
        guard let m = v.mapping(keys: Self.radioKeys, expected: "a radio (a mapping with 'range' or 'path-loss')") else { return nil }
        let technology = m["technology"]?.string()
        guard m.exclusive(["range", "path-loss"]) else { return nil }
        if let r = m["range"] {
            guard let range = r.metres() else { return nil }
            guard range > 0 else { r.reportExpected("a range above 0 m"); return nil }
            return RadioParameters(model: .disk(range: range), technology: technology)
        }
        if let p = m["path-loss"] {
            guard let model = decodePathLoss(p) else { return nil }
            return RadioParameters(model: .logDistance(model), technology: technology)
        }
        m.value.report("missing the radio model: expected 'range' (a disk, e.g. 300m) or 'path-loss' (log-distance)")
        return nil
    }

    func decodePathLoss(_ v: ConfigValue) -> LogDistancePathLoss? {
        guard let m = v.mapping(keys: Self.pathLossKeys, expected: "a log-distance path-loss model") else { return nil }
        let tx = m.required("tx-power", expected: "transmit power in dBm")?.double(in: -50...60, expected: "a transmit power in dBm from -50 to 60")
        let ref = m.required("reference-loss", expected: "path loss in dB at the reference distance")?.double(in: 0...200, expected: "a loss in dB from 0 to 200")
        let refDistance: Double? = m["reference-distance"].map { $0.metres() } ?? 1
        let exponent = m.required("exponent", expected: "the path-loss exponent, e.g. 2.7")?.double(in: 1...8, expected: "a path-loss exponent from 1 to 8")
        let sigma = m.required("shadowing", expected: "the shadowing standard deviation in dB (0 for none)")?.double(in: 0...30, expected: "a standard deviation in dB from 0 to 30")
        let associate = m.required("associate", expected: "the received power in dBm at which a vehicle associates")?.double(in: -150...0, expected: "a power in dBm from -150 to 0")
        let disassociateValue = m["disassociate"]
        let disassociate: Double? = disassociateValue.map { $0.double(in: -150...0, expected: "a power in dBm from -150 to 0") } ?? associate
        guard let tx, let ref, let refDistance, let exponent, let sigma, let associate, let disassociate else { return nil }
        if refDistance <= 0 { m["reference-distance"]?.reportExpected("a reference distance above 0 m"); return nil }
        if disassociate > associate, let d = disassociateValue {
            d.report("expected 'disassociate' at or below 'associate' (\(Quantity.trimmed(associate)) dBm) so that association has hysteresis, found \(Quantity.trimmed(disassociate))")
            return nil
        }
        return LogDistancePathLoss(txPowerDBm: tx, referenceLossDB: ref, referenceDistance: refDistance, exponent: exponent,
                                   shadowingSigmaDB: sigma, associateDBm: associate, disassociateDBm: disassociate)
    }

    // MARK: Links

    func decodeLink(_ v: ConfigValue, index: Int, nodes: [TopologyNode], written: Set<String>) -> TopologyLink? {
        guard let m = v.mapping(keys: Self.linkKeys, expected: "a link (a mapping with 'endpoints')") else { return nil }
        let known = nodes.map(\.name)
        var endpointNames: [String]?
        if let e = m.required("endpoints", expected: "the two nodes the link joins, e.g. [car, rsu1]"),
           let items = e.sequence(expected: "the two nodes the link joins, e.g. [car, rsu1]") {
            if items.count != 2 {
                e.report("expected exactly two endpoints, found \(items.count)")
            } else {
                let names = items.map { item -> String? in
                    guard let n = item.string(expected: "a node name") else { return nil }
                    if !written.contains(n) {
                        item.report("no node named '\(n)'\(Suggestion.didYouMean(n, among: known)) (expected one of the nodes under 'nodes')")
                        return nil
                    }
                    return n
                }
                if let a = names[0], let b = names[1] {
                    if a == b { e.report("a link joins two different nodes, found '\(a)' twice") } else { endpointNames = [a, b] }
                }
            }
        }
        let kind = m["kind"]?.choice(LinkKind.self, what: "a link kind")
        let linkName = m["name"]?.identifier(expected: "a link name of letters, digits, '-', '_' or '.'")

        var interfaces: [String?] = [nil, nil]
        if let i = m["interfaces"], let items = i.sequence(expected: "two interface names, one per endpoint") {
            if items.count != 2 { i.report("expected two interface names, one per endpoint, found \(items.count)") } else {
                interfaces = items.map { item in
                    guard let s = item.string(expected: "an interface name") else { return nil }
                    guard isValidInterfaceName(s) else {
                        item.report("expected an interface name of 1 to \(maximumInterfaceNameLength) characters without '/', ':' or spaces, found '\(s)'")
                        return nil
                    }
                    return s
                }
            }
        }
        var addresses: [InetPrefix?] = [nil, nil]
        if let a = m["addresses"], let items = a.sequence(expected: "two addresses with prefix length, one per endpoint") {
            if items.count != 2 { a.report("expected two addresses with prefix length, one per endpoint, found \(items.count)") } else {
                addresses = items.map(decodeInterfaceAddress)
            }
        }
        let alwaysOn = m["always-on"]?.bool() ?? false
        let emulate = m["emulate"]?.bool()

        let both = decodeDirection(m)
        let aToB = m["a-to-b"].flatMap { $0.mapping(keys: Self.directionKeys, expected: "parameters for the a-to-b direction") }.map(decodeDirection)
        let bToA = m["b-to-a"].flatMap { $0.mapping(keys: Self.directionKeys, expected: "parameters for the b-to-a direction") }.map(decodeDirection)

        guard let endpointNames else { return nil }
        let nodeA = nodes.first { $0.name == endpointNames[0] }, nodeB = nodes.first { $0.name == endpointNames[1] }
        // The kind defaults from the roles: a vehicle meets a roadside unit over radio.
        let roles = Set([nodeA?.role, nodeB?.role].compactMap { $0 })
        let resolvedKind = kind ?? (roles == [.vehicle, .rsu] ? .radio : .wired)
        if resolvedKind == .radio, let ra = nodeA?.role, let rb = nodeB?.role, Set([ra, rb]) != [.vehicle, .rsu] {
            (m["kind"] ?? m.value).report("a radio link joins a vehicle and a roadside unit, found a \(ra.rawValue) and a \(rb.rawValue); expected 'kind: wired' or other endpoints")
        }
        if alwaysOn, resolvedKind != .radio, let a = m["always-on"] {
            a.report("'always-on' applies to radio links; a wired link is always on")
        }
        if (addresses[0] == nil) != (addresses[1] == nil) { m["addresses"]?.report("expected both addresses or neither") }

        return TopologyLink(
            name: linkName ?? "\(endpointNames[0])-\(endpointNames[1])",
            kind: resolvedKind,
            a: LinkEnd(node: endpointNames[0], interface: interfaces[0], address: addresses[0]),
            b: LinkEnd(node: endpointNames[1], interface: interfaces[1], address: addresses[1]),
            aToB: both.updated(by: aToB ?? LinkParameters()),
            bToA: both.updated(by: bToA ?? LinkParameters()),
            alwaysOn: alwaysOn, emulate: emulate,
            location: m["name"]?.location ?? m.location)
    }

    func decodeDirection(_ m: ConfigMapping) -> LinkParameters {
        var p = LinkParameters()
        p.rate = m["rate"]?.bitrate()
        if let r = p.rate, r.bitsPerSecond == 0 { m["rate"]?.reportExpected("a rate above 0"); p.rate = nil }
        p.delay = m["delay"]?.nonNegativeInterval()
        p.jitter = m["jitter"]?.nonNegativeInterval()
        p.loss = m["loss"]?.probability()
        if let q = m["queue"], let text = q.string(expected: "a queue limit: packets (e.g. 100) or bytes (e.g. 64KiB)") {
            if let packets = Int(text) {
                if packets > 0 { p.queuePackets = packets } else { q.reportExpected("a queue limit above 0 packets") }
            } else if let bytes = q.byteSize() {
                if bytes > 0 { p.queueBytes = bytes } else { q.reportExpected("a queue limit above 0 bytes") }
            }
        }
        return p
    }

    func decodeInterfaceAddress(_ v: ConfigValue) -> InetPrefix? {
        let what = "an address with prefix length in 198.18.0.0/15, e.g. 198.18.4.1/30"
        guard let s = v.string(expected: what) else { return nil }
        guard let p = InetPrefix(s) else { v.reportExpected(what); return nil }
        guard InetPrefix.testbedRange.covers(p.network), p.length >= 15 else {
            v.report("\(s) is outside 198.18.0.0/15; Wayside only uses the benchmarking range, so that no traffic can leave the machine")
            return nil
        }
        guard p.length <= 30 || p.length == 31 else { v.reportExpected("a prefix length of at most 31 (two hosts need room), found /\(p.length)"); return nil }
        if p.length <= 30, p.address == p.first || p.address == p.last {
            v.report("\(s) is the \(p.address == p.first ? "network" : "broadcast") address of \(p.network); expected a host address")
            return nil
        }
        return p
    }

    // MARK: Routes

    func decodeRoute(_ v: ConfigValue, known: Set<String>, written: Set<String>) -> ExplicitRoute? {
        guard let m = v.mapping(keys: Self.routeKeys, expected: "a route: {node: .., to: .., via: ..}") else { return nil }
        func nodeName(_ key: String) -> String? {
            guard let value = m.required(key, expected: "a node name"), let n = value.string(expected: "a node name") else { return nil }
            guard written.contains(n) else {
                value.report("no node named '\(n)'\(Suggestion.didYouMean(n, among: Array(known).sorted())) (expected one of the nodes under 'nodes')")
                return nil
            }
            return n
        }
        let node = nodeName("node")
        let via = nodeName("via")
        var destination: InetPrefix?
        if let t = m.required("to", expected: "a destination network in 198.18.0.0/15"), let s = t.string(expected: "a destination network") {
            if let p = InetPrefix(s), p.isNetwork {
                if InetPrefix.testbedRange.covers(p) { destination = p } else {
                    t.report("\(s) is outside 198.18.0.0/15; expected a destination inside the benchmarking range (no route ever leads out of the machine)")
                }
            } else {
                t.reportExpected("a destination network with prefix length and no host bits, e.g. 198.18.4.0/24")
            }
        }
        guard let node, let via, let destination else { return nil }
        return ExplicitRoute(node: node, destination: destination, via: via, location: m.location)
    }
}

func isValidInterfaceName(_ s: String) -> Bool {
    !s.isEmpty && s.utf8.count <= maximumInterfaceNameLength && s != "." && s != ".."
        && !s.contains { $0 == "/" || $0 == ":" || $0.isWhitespace } && s.allSatisfy(\.isASCII)
}
