import Core
import Testing
import TCP
import Wire
@testable import MPTCP

/// A vehicle with two addresses (one per roadside unit) and a server, joined
/// by one link per vehicle address with a fixed one-way delay; a path can
/// be cut silently (black hole) or have its MPTCP options stripped. Virtual
/// time jumps from event to event.
///
///   vehicle 198.18.1.1 (id 0) ──path 0── ┐
///                                         ├── server 198.18.0.2:80
///   vehicle 198.18.2.1 (id 1) ──path 1── ┘
struct TwoPathNetwork {
    struct InFlight { var arrival: Instant; var order: Int; var toServer: Bool; var segment: TCPSegment; var tuple: TCPFourTuple }

    static let vehicle0: [UInt8] = [198, 18, 1, 1], vehicle1: [UInt8] = [198, 18, 2, 1], server: [UInt8] = [198, 18, 0, 2]

    var client: MPTCPConnection
    var server: MPTCPConnection?
    var now = Instant.zero
    var delay: [[UInt8]: Interval] = [vehicle0: .milliseconds(5), vehicle1: .milliseconds(5)]
    /// Paths (by vehicle address) that drop everything.
    var cut: Set<[UInt8]> = []
    /// Paths whose middlebox strips MPTCP options.
    var stripping: Set<[UInt8]> = []
    var serverConfiguration: MPTCPConfiguration
    private var inFlight: [InFlight] = []
    private var order = 0
    var closedReasons: [String] = []
    var received: [UInt8] = []
    var largestGap = Interval.zero
    var lastArrival: Instant?
    /// Constant bit rate from the vehicle: `cbrBytes` every `cbrInterval` until `cbrEnd`.
    var cbrInterval: Interval?
    var cbrBytes = 1024
    var cbrEnd = Instant.distantFuture
    var cbrNext = Instant.zero
    /// Local address events to fire at given times.
    var schedule: [(at: Instant, event: PathEvent, address: [UInt8])] = []
    /// Drops a segment when it returns true (`toServer` says which way).
    var drop: ((TCPSegment, _ toServer: Bool) -> Bool)?
    /// Changes a segment on its way (a middlebox rewriting payload, say).
    var rewrite: ((inout TCPSegment, _ toServer: Bool) -> Void)?
    /// The server reads by itself at every arrival unless a slow reader is set:
    /// then it reads `slowReadBytes` every `slowReadInterval`.
    var slowReadInterval: Interval?
    var slowReadBytes = 0
    var nextSlowRead = Instant.zero
    /// The server closes once it has read the peer's DATA_FIN.
    var serverClosesAfterPeer = false
    /// Bytes the client read from the server.
    var clientReceived: [UInt8] = []
    /// Every segment put on the wire, in order, with its direction.
    var wire: [(segment: TCPSegment, tuple: TCPFourTuple, toServer: Bool)] = []
    /// Why the server's connection ended (`MPTCPAction.closed`).
    var serverClosedReasons: [String] = []

    init(client configuration: MPTCPConfiguration, server serverConfiguration: MPTCPConfiguration) {
        let tuple = TCPFourTuple(localAddress: Self.vehicle0, localPort: 40_000, remoteAddress: Self.server, remotePort: 80)
        let (c, actions) = MPTCPConnection.connect(tuple: tuple, configuration: configuration, seed: 11, now: .zero)
        client = c
        self.serverConfiguration = serverConfiguration
        carry(actions, toServer: true)
    }

    mutating func carry(_ actions: [MPTCPAction], toServer: Bool) {
        for action in actions {
            switch action {
            case let .send(segment, tuple):
                let vehicleAddress = toServer ? tuple.localAddress : tuple.remoteAddress
                if cut.contains(vehicleAddress) { continue }
                var segment = segment
                wire.append((segment, tuple, toServer))
                if drop?(segment, toServer) == true { continue }
                rewrite?(&segment, toServer)
                if stripping.contains(vehicleAddress) {
                    segment.options.removeAll { if case .mptcp = $0 { return true } else { return false } }
                }
                order += 1
                inFlight.append(InFlight(arrival: now + (delay[vehicleAddress] ?? .milliseconds(5)), order: order,
                                         toServer: toServer, segment: segment, tuple: tuple))
            case let .closed(reason):
                if toServer { closedReasons.append(reason) } else { serverClosedReasons.append(reason) }
            }
        }
    }

    mutating func deliver(_ f: InFlight) {
        // The receiving host sees the tuple mirrored.
        let seen = TCPFourTuple(localAddress: f.tuple.remoteAddress, localPort: f.tuple.remotePort,
                                remoteAddress: f.tuple.localAddress, remotePort: f.tuple.localPort)
        if f.toServer {
            if var s = server {
                if let id = s.subflow(for: seen) {
                    carry(s.handle(f.segment, on: id, now: now), toServer: false)
                } else if f.segment.flags == .syn {
                    carry(s.acceptJoin(syn: f.segment, tuple: seen, now: now), toServer: false)
                }
                server = s
            } else if f.segment.flags == .syn,
                      let (s, actions) = MPTCPConnection.accept(syn: f.segment, tuple: seen, configuration: serverConfiguration,
                                                                seed: 12, now: now) {
                server = s
                carry(actions, toServer: false)
            }
            if var s = server, slowReadInterval == nil {
                let bytes = s.read()
                if !bytes.isEmpty {
                    if let last = lastArrival { largestGap = max(largestGap, now - last) }
                    lastArrival = now
                    received += bytes
                }
                server = s
            }
            if serverClosesAfterPeer, var s = server, s.peerClosed, s.readableBytes == 0 {
                s.close()
                server = s
            }
        } else if let id = client.subflow(for: seen) {
            carry(client.handle(f.segment, on: id, now: now), toServer: true)
            clientReceived += client.read()
        }
    }

    /// Runs until `until` (virtual time), calling `tick` at every event with the time.
    mutating func run(until end: Instant, tick: (inout TwoPathNetwork) -> Void = { _ in }) {
        var steps = 0
        while now < end && steps < 2_000_000 {
            steps += 1
            tick(&self)
            if let cbrInterval, now >= cbrNext, now < cbrEnd {
                client.write([UInt8](repeating: UInt8(truncatingIfNeeded: now.nanoseconds / 1_000_000), count: cbrBytes))
                cbrNext = now + cbrInterval
                carry(client.poll(now: now), toServer: true)
            }
            while let first = schedule.first, first.at <= now {
                schedule.removeFirst()
                carry(client.localAddress(first.event, address: first.address, now: now), toServer: true)
            }
            if let interval = slowReadInterval, now >= nextSlowRead, var s = server {
                received += s.read(maximum: slowReadBytes)
                nextSlowRead = now + interval
                if serverClosesAfterPeer, s.peerClosed, s.readableBytes == 0 { s.close() }
                carry(s.poll(now: now), toServer: false)
                server = s
            }
            var next = min(end, client.nextDeadline)
            if slowReadInterval != nil, server != nil { next = min(next, nextSlowRead) }
            if cbrInterval != nil, cbrNext < cbrEnd { next = min(next, cbrNext) }
            if let first = schedule.first { next = min(next, first.at) }
            if let s = server { next = min(next, s.nextDeadline) }
            if let f = inFlight.min(by: { ($0.arrival, $0.order) < ($1.arrival, $1.order) }) { next = min(next, f.arrival) }
            // Never spin in place on a deadline that already passed.
            now = max(now + .microseconds(1), next)
            while let i = inFlight.indices.min(by: { (inFlight[$0].arrival, inFlight[$0].order) < (inFlight[$1].arrival, inFlight[$1].order) }),
                  inFlight[i].arrival <= now {
                let f = inFlight.remove(at: i)
                // A black hole also swallows what was already on its way.
                let vehicleAddress = f.toServer ? f.tuple.localAddress : f.tuple.remoteAddress
                if !cut.contains(vehicleAddress) { deliver(f) }
            }
            carry(client.poll(now: now), toServer: true)
            if var s = server { carry(s.poll(now: now), toServer: false); server = s }
        }
    }
}

@Suite("MPTCP connection over TCP subflows (virtual time)")
struct ConnectionTests {
    static func payload(_ n: Int) -> [UInt8] { (0 ..< n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ $0 >> 8) } }

    func configuration(pathManager: String = "fullmesh", scheduler: String = "min-rtt") -> MPTCPConfiguration {
        var c = MPTCPConfiguration()
        c.pathManager = pathManager
        c.scheduler = scheduler
        c.tcp.initialRetransmissionTimeout = .milliseconds(200)
        c.tcp.minimumRetransmissionTimeout = .milliseconds(200)
        return c
    }

    @Test func capable_handshakeThenTransfer_deliversEveryByteInOrder() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        let data = Self.payload(100_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .seconds(5))
        #expect(net.received == data)
        #expect(net.client.keys != nil && net.client.keys == net.server.map { ConnectionKeys(localKey: $0.keys!.remoteKey, remoteKey: $0.keys!.localKey) })
        #expect(net.server?.peerClosed == true)
        #expect(net.client.fallbackReason == nil)
    }

    @Test func fullmesh_secondAddressUp_joinsOnceWithoutFalseStaleAndTransferCompletes() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        let data = Self.payload(300_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(30))
        let actions = net.client.localAddress(.localAddressUp(AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 1))), backup: false),
                                              now: net.now)
        net.carry(actions, toServer: true)
        net.run(until: Instant.zero + .seconds(10))
        #expect(net.received == data)
        #expect(net.client.counters.joinSYNsSent >= 1)
        #expect(net.server?.counters.joinsEstablished == 1)
        #expect(net.client.counters.joinsEstablished == 1)
        #expect(net.client.counters.staleEvents == 0)
    }

    @Test func pathDiesMidTransfer_dataIsReinjectedAndEveryByteArrives() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        let data = Self.payload(1_500_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(.localAddressUp(AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 1))), backup: false),
                                          now: net.now), toServer: true)
        net.run(until: Instant.zero + .milliseconds(50))
        #expect(net.received.count < data.count)
        // Roadside unit 1 goes silent (black hole) mid-transfer.
        net.cut.insert(TwoPathNetwork.vehicle0)
        net.run(until: Instant.zero + .seconds(20))
        #expect(net.received == data)
        #expect(net.client.counters.staleEvents >= 1)
        #expect(net.client.counters.reinjections >= 1, "\(net.client.counters)")
    }

    @Test func bothPathsDead5s_connectionSurvivesAndResumes() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        let data = Self.payload(1_500_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(.localAddressUp(AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 1))), backup: false),
                                          now: net.now), toServer: true)
        net.run(until: Instant.zero + .milliseconds(50))
        net.cut = [TwoPathNetwork.vehicle0, TwoPathNetwork.vehicle1]
        net.run(until: Instant.zero + .milliseconds(5050))
        #expect(net.received.count < data.count)
        net.cut = []
        net.run(until: Instant.zero + .seconds(40))
        #expect(net.received == data)
        #expect(!net.closedReasons.contains { $0.hasPrefix("no subflow") })
        #expect(net.client.counters.outagesStarted >= 1)
    }

    @Test func middleboxStripsOptions_fallsBackToTCPAndTransferCompletes() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        net.stripping.insert(TwoPathNetwork.vehicle0)
        let data = Self.payload(50_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .seconds(5))
        #expect(net.client.fallbackReason == .noCapableOnSYNACK)
        #expect(net.server?.fallbackReason == .noCapableOnACK)
        #expect(net.received == data)
    }

    @Test func established_forgedJoinWithUnknownToken_answeredWithRSTAndCountedOnly() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        let data = Self.payload(100_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(15))
        // An attacker at 198.18.9.9 tries to join with a guessed token.
        let forged = TCPSegment(sourcePort: 666, destinationPort: 80, sequenceNumber: SequenceNumber(1), flags: .syn, window: 1000,
                                options: [.mptcp(.join(.syn(backup: false, addressID: 7, receiverToken: 0x1234_5678, senderNonce: 1)))])
        let attackerTuple = TCPFourTuple(localAddress: TwoPathNetwork.server, localPort: 80, remoteAddress: [198, 18, 9, 9], remotePort: 666)
        var server = net.server!
        let reply = server.acceptJoin(syn: forged, tuple: attackerTuple, now: net.now)
        net.server = server
        #expect(reply.count == 1)
        if case let .send(rst, _)? = reply.first { #expect(rst.flags.contains(.rst)) }
        #expect(server.counters.joinRejectedUnknownToken == (server.token == 0x1234_5678 ? 0 : 1))
        net.run(until: Instant.zero + .seconds(5))
        #expect(net.received == data)
        #expect(net.server?.counters.joinsEstablished == 0)
    }

    // Issue 4, item 5 (handover, CBR, largest delivery gap) runs on the simulator's
    // seeded links: Tests/MPTCPSimulationTests/HandoverTests.swift.

    @Test(arguments: [CoupledAlgorithm.lia, .olia, .balia])
    func coupled_twoSubflows_increaseInstalledOnBothAndTransferCompletes(_ algorithm: CoupledAlgorithm) {
        var config = configuration()
        config.coupledCongestionControl = algorithm
        var net = TwoPathNetwork(client: config, server: configuration())
        let data = Self.payload(1_000_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(.localAddressUp(AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 1))), backup: false),
                                          now: net.now), toServer: true)
        net.run(until: Instant.zero + .milliseconds(80))
        #expect(net.client.isCoupled(SubflowID(0)) && net.client.isCoupled(SubflowID(1)))
        net.run(until: Instant.zero + .seconds(10))
        #expect(net.received == data)
    }
}
