import Core
import LinkModel
import MPTCP
import Simulation
import TCP
import Wire

/// How the two roadside units' coverage meets at the handover.
public enum CoveragePattern: Hashable, Sendable, CustomStringConvertible {
    /// The second unit appears `overlap` before the first is lost (make-before-break coverage).
    case overlap(Interval)
    /// Nothing covers the vehicle for `gap` between the two units (break-before-make coverage).
    case gap(Interval)

    public var description: String {
        switch self {
        case .overlap(let d): return "overlap \(d)"
        case .gap(let d): return "gap \(d)"
        }
    }
}

/// Issue 4, item 5: a vehicle streams CBR (1000 messages/s of 1 KiB) to a
/// server over MPTCP while it hands over from one roadside unit to the next,
/// on seeded simulator links.
///
/// ```
///   vehicle 198.18.1.1 ── rsu-1 (4 ms) ──┐
///                                         router ── backbone (1 ms) ── server 198.18.0.2:80
///   vehicle 198.18.2.1 ── rsu-2 (4 ms) ──┘
/// ```
/// Each path's RTT is 10 ms. The second unit's link has no coverage
/// (carrier down) until it appears; the first unit's link loses coverage at
/// `cutAt`, silently (a black hole the vehicle only notices by stale
/// detection) or with carrier loss (the radio disassociates).
public struct HandoverScenario: Sendable {
    public var pathManager = PathManagers.defaultName
    public var scheduler = Schedulers.defaultName
    public var coverage = CoveragePattern.overlap(.seconds(1))
    public var cut = CoverageLoss.silent
    public var cutAt = Instant.zero + .seconds(5)
    public var messageBytes = 1024
    public var messageInterval = Interval.milliseconds(1)
    public var trafficEnd = Instant.zero + .seconds(8)
    public var runEnd = Instant.zero + .seconds(9)
    /// Gaps before this (handshake, slow start) are not the handover's.
    public var measureFrom = Instant.zero + .seconds(2)
    public var rate: Bitrate? = .mbit(100)
    public var seed: UInt64 = 1

    public static let vehicleAddresses = [NodeAddress(198, 18, 1, 1), NodeAddress(198, 18, 2, 1)]
    public static let serverAddress = NodeAddress(198, 18, 0, 2)
    public static let roundTripTime = Interval.milliseconds(10)

    public init() {}

    /// When the second roadside unit appears.
    public var secondUnitAt: Instant {
        switch coverage {
        case .overlap(let d): return cutAt - d
        case .gap(let d): return cutAt + d
        }
    }

    /// Issue 4's bound on the largest delivery gap: one RTT above the message
    /// spacing with overlapping coverage; the coverage gap + 2 RTT + 10 ms without.
    public var gapBound: Interval {
        switch coverage {
        case .overlap: return Self.roundTripTime + messageInterval
        case .gap(let d): return d + Self.roundTripTime * Int64(2) + .milliseconds(10)
        }
    }

    public func configuration(pathManager: String, scheduler: String) -> MPTCPConfiguration {
        var c = MPTCPConfiguration()
        c.pathManager = pathManager
        c.scheduler = scheduler
        c.tcp.initialRetransmissionTimeout = .milliseconds(200)
        c.tcp.minimumRetransmissionTimeout = .milliseconds(200)
        return c
    }

    public func run() -> HandoverResult {
        var network = Network(seed: seed, logsEvents: false)
        var vehicle = MPTCPHost(addresses: Self.vehicleAddresses,
                                configuration: configuration(pathManager: pathManager, scheduler: scheduler), seed: seed)
        vehicle.addConnection(localPort: 40_000, remote: Self.serverAddress, remotePort: 80,
                              application: .constantBitRate(messageBytes: messageBytes, interval: messageInterval,
                                                            start: .zero, end: trafficEnd))
        var server = MPTCPHost(addresses: [Self.serverAddress],
                               configuration: configuration(pathManager: pathManager, scheduler: scheduler), seed: seed &+ 1)
        server.listen(port: 80)
        // Names and addresses are unique by construction, so building cannot fail.
        let vehicleID = try! network.addHost("vehicle", vehicle)
        let serverID = try! network.addHost("server", server)
        let router = try! network.addRouter("router")
        let access = LinkParameters(delay: .milliseconds(4), rate: rate, queuePackets: 1_000)
        try! network.connect(vehicleID, Self.vehicleAddresses[0], router, nil, name: "rsu-1", parameters: access)
        try! network.connect(vehicleID, Self.vehicleAddresses[1], router, nil, name: "rsu-2", parameters: access)
        try! network.connect(router, nil, serverID, Self.serverAddress, name: "backbone",
                             parameters: LinkParameters(delay: .milliseconds(1), rate: rate, queuePackets: 1_000))
        let appear = secondUnitAt - Instant.zero, lose = cutAt - Instant.zero
        let timeline = CoverageTimeline(events: [
            TimelineEvent(at: .zero, link: "rsu-2", change: .coverage(false, loss: .carrier)),
            TimelineEvent(at: appear, link: "rsu-2", change: .coverage(true, loss: .carrier)),
            TimelineEvent(at: lose, link: "rsu-1", change: .coverage(false, loss: cut)),
        ], duration: runEnd - Instant.zero)
        try! network.apply(timeline)
        network.run(until: runEnd)
        let v = network.host(vehicleID, as: MPTCPHost.self)!
        let s = network.host(serverID, as: MPTCPHost.self)!
        return HandoverResult(scenario: self, sender: v.endpoints[0], receiver: s.endpoints.first)
    }
}

public struct HandoverResult {
    public var scenario: HandoverScenario
    public var sender: MPTCPEndpoint
    public var receiver: MPTCPEndpoint?

    public var messagesSent: Int { sender.messageWrites.count }
    public var messagesDelivered: Int { (receiver?.bytesRead ?? 0) / scenario.messageBytes }
    /// The longest time between two deliveries at the server after `measureFrom`.
    public var largestGap: Interval { receiver?.largestDeliveryGap(from: scenario.measureFrom) ?? .seconds(1_000_000) }
    public var isIntact: Bool { receiver?.digest != nil && receiver?.digest == sender.digest }
    /// The connection lived through the handover: every message arrived intact and neither end gave up.
    public var survived: Bool {
        isIntact && messagesDelivered == messagesSent && !sender.gaveUp && receiver?.gaveUp == false
    }
    public var withinBound: Bool { largestGap <= scenario.gapBound }
    public var counters: MPTCPCounters? { sender.connection?.counters }
}

extension MPTCPEndpoint {
    /// Whether the connection ended other than by an orderly DATA_FIN exchange
    /// (outage timeout, MP_FASTCLOSE).
    public var gaveUp: Bool { closedReasons.contains { $0.hasPrefix("no subflow") || $0 == "MP_FASTCLOSE" } }
}
