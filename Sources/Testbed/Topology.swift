import Config
import Core
import Netlink

/// A V2I network as a user describes it in `Topologies/*.yaml` (schema:
/// docs/TOPOLOGY.md). Values only; `Topology.load` decodes and validates a
/// file, `TestbedPlan` turns a topology into namespaces, links and routes.
public struct Topology: Hashable, Sendable {
    public var name: String
    public var description: String?
    public var nodes: [TopologyNode]
    public var links: [TopologyLink]
    public var routes: [ExplicitRoute]
    /// Whether links are split through the userspace link emulator (default)
    /// or built as plain veth pairs.
    public var emulation: EmulationMode

    public init(name: String, description: String? = nil, nodes: [TopologyNode], links: [TopologyLink],
                routes: [ExplicitRoute] = [], emulation: EmulationMode = .userspace) {
        self.name = name; self.description = description; self.nodes = nodes; self.links = links
        self.routes = routes; self.emulation = emulation
    }

    public func node(named name: String) -> TopologyNode? { nodes.first { $0.name == name } }
    public func link(named name: String) -> TopologyLink? { links.first { $0.name == name } }
    /// Links with `node` at either end, in file order.
    public func links(of node: String) -> [TopologyLink] { links.filter { $0.a.node == node || $0.b.node == node } }
    /// The roadside units, in file order (with or without a position).
    public var roadsideUnits: [TopologyNode] { nodes.filter { $0.role == .rsu } }
    public var vehicles: [TopologyNode] { nodes.filter { $0.role == .vehicle } }
}

public enum NodeRole: String, Hashable, Sendable, CaseIterable {
    case vehicle, rsu, router, server, host

    /// Roadside units and routers forward traffic between their links; vehicles,
    /// servers and hosts are end points and never carry others' traffic.
    public var forwards: Bool { self == .rsu || self == .router }
}

/// Which transport a node runs in an experiment.
public enum StackKind: String, Hashable, Sendable, CaseIterable {
    case swift
    case kernelMPTCP = "kernel-mptcp"
    case kernelTCP = "kernel-tcp"
}

/// A position on the ground, in metres, in the topology's own frame.
public struct Position: Hashable, Sendable, CustomStringConvertible {
    public var x: Double
    public var y: Double
    public init(x: Double, y: Double) { self.x = x; self.y = y }
    public func distance(to p: Position) -> Double { ((x - p.x) * (x - p.x) + (y - p.y) * (y - p.y)).squareRoot() }
    public var description: String { "(\(Quantity.trimmed(x)), \(Quantity.trimmed(y)))" }
}

public struct TopologyNode: Hashable, Sendable {
    public var name: String
    public var role: NodeRole
    /// Where a roadside unit stands; nil for nodes that do not move or radiate.
    public var position: Position?
    /// A roadside unit's radio; nil for nodes without one.
    public var radio: RadioParameters?
    /// The stack this node runs; nil leaves the choice to the experiment.
    public var stack: StackKind?
    /// Where the node is defined, for messages about it.
    public var location: SourceLocation?

    public init(name: String, role: NodeRole, position: Position? = nil, radio: RadioParameters? = nil,
                stack: StackKind? = nil, location: SourceLocation? = nil) {
        self.name = name; self.role = role; self.position = position; self.radio = radio
        self.stack = stack; self.location = location
    }
}

/// A roadside unit's radio as the mobility model sees it.
public struct RadioParameters: Hashable, Sendable {
    public var model: RadioModel
    /// Radio technology, for reports (e.g. `802.11p`, `cellular`).
    public var technology: String?
    public init(model: RadioModel, technology: String? = nil) { self.model = model; self.technology = technology }
}

public enum RadioModel: Hashable, Sendable {
    /// Coverage is a disk: inside `range` metres the vehicle is associated.
    case disk(range: Double)
    /// Received power from log-distance path loss with log-normal shadowing.
    case logDistance(LogDistancePathLoss)
}

/// Received power at distance d (metres):
/// `txPower - referenceLoss - 10 * exponent * log10(d / referenceDistance) + X`,
/// X ~ N(0, shadowingSigma²) in dB. A vehicle associates when the received power
/// rises to `associate` and leaves when it falls below `disassociate`
/// (`disassociate <= associate`; the difference is the hysteresis).
public struct LogDistancePathLoss: Hashable, Sendable {
    public var txPowerDBm: Double
    public var referenceLossDB: Double
    public var referenceDistance: Double
    public var exponent: Double
    public var shadowingSigmaDB: Double
    public var associateDBm: Double
    public var disassociateDBm: Double

    public init(txPowerDBm: Double, referenceLossDB: Double, referenceDistance: Double = 1, exponent: Double,
                shadowingSigmaDB: Double, associateDBm: Double, disassociateDBm: Double) {
        self.txPowerDBm = txPowerDBm; self.referenceLossDB = referenceLossDB
        self.referenceDistance = referenceDistance; self.exponent = exponent
        self.shadowingSigmaDB = shadowingSigmaDB; self.associateDBm = associateDBm
        self.disassociateDBm = disassociateDBm
    }

    /// Median received power (no shadowing) at `distance` metres.
    public func medianReceivedPower(at distance: Double) -> Double {
        let d = max(distance, referenceDistance)
        return txPowerDBm - referenceLossDB - 10 * exponent * log10(d / referenceDistance)
    }
}

public enum LinkKind: String, Hashable, Sendable, CaseIterable {
    /// Vehicle to roadside unit: comes and goes with coverage.
    case radio
    /// Backhaul: always there.
    case wired
}

/// Whether a topology's links go through the userspace emulator.
public enum EmulationMode: String, Hashable, Sendable, CaseIterable {
    /// Plain veth pairs: no impairment, no coverage changes.
    case none
    /// Links that need it (radio links, links with parameters) are split
    /// through the run's emulator namespace.
    case userspace
}

/// One end of a link.
public struct LinkEnd: Hashable, Sendable {
    public var node: String
    /// Interface name in the node's namespace; nil picks `eth<n>`.
    public var interface: String?
    /// Address with prefix length; nil assigns one from 198.18.0.0/15.
    public var address: InetPrefix?
    public init(node: String, interface: String? = nil, address: InetPrefix? = nil) {
        self.node = node; self.interface = interface; self.address = address
    }
}

public struct TopologyLink: Hashable, Sendable {
    /// Unique; `name:` in the file or `<a>-<b>`. Timelines refer to links by it.
    public var name: String
    public var kind: LinkKind
    /// The first endpoint written; `a-to-b` is the direction away from it.
    public var a: LinkEnd
    public var b: LinkEnd
    public var aToB: LinkParameters
    public var bToA: LinkParameters
    /// A radio link whose coverage does not depend on where the vehicle is
    /// (e.g. a cellular backup path): present from the start of every run.
    public var alwaysOn: Bool
    /// Force this link through the emulator (`true`) or not (`false`); nil
    /// decides from the kind and parameters.
    public var emulate: Bool?
    public var location: SourceLocation?

    public init(name: String, kind: LinkKind, a: LinkEnd, b: LinkEnd, aToB: LinkParameters = LinkParameters(),
                bToA: LinkParameters = LinkParameters(), alwaysOn: Bool = false, emulate: Bool? = nil,
                location: SourceLocation? = nil) {
        self.name = name; self.kind = kind; self.a = a; self.b = b; self.aToB = aToB; self.bToA = bToA
        self.alwaysOn = alwaysOn; self.emulate = emulate; self.location = location
    }

    public func parameters(_ direction: LinkDirection) -> LinkParameters {
        direction == .bToA ? bToA : aToB
    }

    /// The other end of the link from `node`.
    public func peer(of node: String) -> LinkEnd? { a.node == node ? b : b.node == node ? a : nil }

    /// True when the link needs the emulator: radio links (coverage comes and
    /// goes) and links with any impairment.
    public var needsEmulation: Bool {
        if let emulate { return emulate }
        return kind == .radio || aToB != LinkParameters() || bToA != LinkParameters()
    }
}

/// A route the user writes; it takes precedence over the computed one for the
/// same destination.
public struct ExplicitRoute: Hashable, Sendable {
    public var node: String
    public var destination: InetPrefix
    /// A neighbouring node the traffic goes to.
    public var via: String
    public var location: SourceLocation?
    public init(node: String, destination: InetPrefix, via: String, location: SourceLocation? = nil) {
        self.node = node; self.destination = destination; self.via = via; self.location = location
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
