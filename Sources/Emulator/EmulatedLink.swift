import Core
import LinkModel
import Testbed

/// One Ethernet frame as the emulator carries it: its bytes, as read from the
/// emulator-side veth end. A link model counts the whole frame (header
/// included, no preamble or FCS) against the rate.
public struct Frame: LinkPacket, Sendable {
    public var bytes: [UInt8]
    public init(_ bytes: [UInt8]) { self.bytes = bytes }
    public var byteCount: Int { bytes.count }
}

/// An interface, by name and index, in a namespace.
public struct InterfaceRef: Hashable, Sendable {
    public var namespace: String
    public var name: String
    public var index: Int32
    public init(namespace: String, name: String, index: Int32) {
        self.namespace = namespace; self.name = name; self.index = index
    }
    init(_ p: PlannedInterface) { self.init(namespace: p.namespace, name: p.name, index: p.index) }
}

/// A link the emulator carries: the two emulator-side veth ends (in the run's
/// emulator namespace), the node-side ends they face, and the link's
/// parameters per direction as the topology gives them.
public struct EmulatedLink: Hashable, Sendable {
    public var name: String
    /// Faces endpoint a: frames a sends arrive here, b→a frames leave here.
    public var aSide: InterfaceRef
    /// Faces endpoint b.
    public var bSide: InterfaceRef
    /// The nodes' own interfaces on the link.
    public var aNode: InterfaceRef
    public var bNode: InterfaceRef
    public var aToB: LinkParameters
    public var bToA: LinkParameters
    /// Radio links that are not `always-on` still start covered: a route's
    /// timeline takes coverage away (the mobility helper emits a `down` at 0 s
    /// for units out of range).
    public var options: PipelineOptions

    public init(name: String, aSide: InterfaceRef, bSide: InterfaceRef, aNode: InterfaceRef, bNode: InterfaceRef,
                aToB: LinkParameters, bToA: LinkParameters, options: PipelineOptions = PipelineOptions()) {
        self.name = name; self.aSide = aSide; self.bSide = bSide; self.aNode = aNode; self.bNode = bNode
        self.aToB = aToB; self.bToA = bToA; self.options = options
    }

    /// The link as a testbed plan built it; nil when it does not go through the emulator.
    public init?(_ planned: PlannedLink) {
        guard let e = planned.emulator else { return nil }
        self.init(name: planned.name, aSide: InterfaceRef(e.aSide), bSide: InterfaceRef(e.bSide),
                  aNode: InterfaceRef(planned.a), bNode: InterfaceRef(planned.b),
                  aToB: planned.link.aToB, bToA: planned.link.bToA)
    }

    public var emulatorNamespace: String { aSide.namespace }
}

extension TestbedPlan {
    /// Every link of the plan that goes through the emulator, in file order.
    public var emulatedLinks: [EmulatedLink] { links.compactMap(EmulatedLink.init) }
}

/// A timeline step as the event loop applied it: when it was due and when the
/// loop had applied it (for a `carrier` change, once netlink had set the
/// emulator-side ends down or up).
public struct AppliedChange: Sendable {
    public var link: String
    public var direction: LinkDirection
    public var step: LinkStep
    public var scheduled: Instant
    public var applied: Instant
    /// How late the change was applied.
    public var lateness: Interval { applied - scheduled }
}

/// Counts per link direction.
public struct DirectionCounters: Sendable, Hashable {
    public var received = 0
    public var receivedBytes = 0
    public var sent = 0
    public var sentBytes = 0
    public var dropped: [DropReason: Int] = [:]
    /// Frames the kernel refused to send (interface down, buffer full).
    public var sendFailures = 0
    public init() {}
}
