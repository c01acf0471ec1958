import Core
import LinkModel
import MPTCP
import Simulation
import TCP
import Wire

/// Linux's `simult_flows.sh` in the simulator (issue 4, item 3): one MPTCP
/// connection moves `bytes` over two paths of given rates and one-way delays
/// (both directions shaped, as the script's netem on both ends does) and must
/// finish within the ideal aggregate time + 10% + 450 ms.
///
/// ```
///   client 198.18.1.1 ── path-1 (rate1, delay1) ──┐
///                                                  router ── backbone ── server 198.18.0.2:80
///   client 198.18.2.1 ── path-2 (rate2, delay2) ──┘
/// ```
public struct AggregationScenario: Sendable {
    public var rates: (Bitrate, Bitrate) = (.mbit(10), .mbit(10))
    public var delays: (Interval, Interval) = (.zero, .zero)
    public var bytes = 16 << 20
    public var pathManager = "fullmesh"
    public var scheduler = Schedulers.defaultName
    /// netem's default queue limit.
    public var queuePackets = 1_000
    public var limit = Instant.zero + .seconds(60)
    /// The connection-level receive buffer (RFC 8684 §3.3.4), which bounds
    /// what both subflows have in flight together. 1 MiB is about twice the
    /// largest aggregate bandwidth-delay product here (40 Mbit/s × 100 ms =
    /// 500 kB) and less than one path's queue; with 4 MiB, slow start
    /// overflows the 1000-packet queues (the engine has no HyStart yet) and
    /// the bursts of loss cost more than the bound's slack. Linux autotunes
    /// the same buffer from the measured rate.
    public var connectionReceiveBuffer = 1 << 20
    public var seed: UInt64 = 1

    static let clientAddresses = [NodeAddress(198, 18, 1, 1), NodeAddress(198, 18, 2, 1)]
    static let serverAddress = NodeAddress(198, 18, 0, 2)

    public init() {}

    /// The transfer at the sum of the two rates (bits counted as the rates are, 10⁶ per Mbit).
    public var idealTime: Interval {
        .seconds(fractional: Double(bytes) * 8 / Double(rates.0.bitsPerSecond + rates.1.bitsPerSecond))
    }

    /// `simult_flows.sh`'s bound: ideal + 10% + 450 ms.
    public var bound: Interval { .seconds(fractional: idealTime.seconds * 1.1) + .milliseconds(450) }

    public func run() -> AggregationResult {
        var configuration = MPTCPConfiguration()
        configuration.pathManager = pathManager
        configuration.scheduler = scheduler
        configuration.tcp.sendBufferSize = 4 << 20
        configuration.tcp.receiveBufferSize = 4 << 20
        configuration.receiveBuffer = connectionReceiveBuffer
        var network = Network(seed: seed, logsEvents: false)
        var client = MPTCPHost(addresses: Self.clientAddresses, configuration: configuration, seed: seed)
        client.addConnection(localPort: 40_000, remote: Self.serverAddress, remotePort: 80,
                             application: .bulkSender(bytes: bytes, start: .zero))
        var server = MPTCPHost(addresses: [Self.serverAddress], configuration: configuration, seed: seed &+ 1)
        server.listen(port: 80)
        // Names and addresses are unique by construction, so building cannot fail.
        let clientID = try! network.addHost("client", client)
        let serverID = try! network.addHost("server", server)
        let router = try! network.addRouter("router")
        var paths: [LinkID] = []
        for (i, (rate, delay)) in [(rates.0, delays.0), (rates.1, delays.1)].enumerated() {
            paths.append(try! network.connect(clientID, Self.clientAddresses[i], router, nil, name: "path-\(i + 1)",
                                 parameters: LinkParameters(delay: delay, rate: rate, queuePackets: queuePackets)))
        }
        try! network.connect(router, nil, serverID, Self.serverAddress, name: "backbone")
        var finished: Instant?
        while network.now < limit && finished == nil {
            network.run(until: min(limit, network.now + .milliseconds(100)))
            finished = network.host(serverID, as: MPTCPHost.self)?.endpoints.first?.finishedAt
        }
        let c = network.host(clientID, as: MPTCPHost.self)!
        let s = network.host(serverID, as: MPTCPHost.self)!
        var result = AggregationResult(scenario: self, sender: c.endpoints[0], receiver: s.endpoints.first)
        result.bytesPerPath = paths.map { network.counters($0, .aToB).bytesDelivered }
        return result
    }
}

public struct AggregationResult {
    public var scenario: AggregationScenario
    public var sender: MPTCPEndpoint
    public var receiver: MPTCPEndpoint?
    /// IP bytes each path delivered towards the server (data, headers, retransmissions).
    public var bytesPerPath: [Int] = []

    /// From the start to the last byte (and the DATA_FIN) read at the server.
    public var completionTime: Interval? { receiver?.finishedAt.map { $0 - Instant.zero } }
    public var isIntact: Bool { receiver?.digest != nil && receiver?.digest == sender.digest }
    public var withinBound: Bool { completionTime.map { $0 <= scenario.bound } ?? false }
    /// The sender's counters (joins, stale events, reinjections).
    public var counters: MPTCPCounters? { sender.connection?.counters }
}
