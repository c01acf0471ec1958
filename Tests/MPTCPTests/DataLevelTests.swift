import Core
import Testing
import TCP
import Wire
@testable import MPTCP

/// Fallback, the connection-level window, DATA_FIN retransmission, MP_FAIL
/// and segment boundaries at mapping ends, end to end in virtual time on
/// `TwoPathNetwork`.
@Suite("MPTCP data level: fallback, window, DATA_FIN, MP_FAIL (virtual time)")
struct DataLevelTests {
    static func payload(_ n: Int, salt: Int = 0) -> [UInt8] {
        (0 ..< n).map { UInt8(truncatingIfNeeded: ($0 &+ salt) &* 31 &+ $0 >> 8) }
    }

    func configuration(pathManager: String = "fullmesh") -> MPTCPConfiguration {
        var c = MPTCPConfiguration()
        c.pathManager = pathManager
        c.tcp.initialRetransmissionTimeout = .milliseconds(200)
        c.tcp.minimumRetransmissionTimeout = .milliseconds(200)
        return c
    }

    static let secondAddress = PathEvent.localAddressUp(AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 1))), backup: false)

    static func dataFIN(_ segment: TCPSegment) -> Bool {
        MPTCPOptionReader.options(of: segment).contains { if case let .dss(d) = $0 { return d.dataFIN } else { return false } }
    }

    // MARK: Fallback (§3.7)

    @Test func fallenBack_optionsStripped_dataFlowsBothWaysAndBothSidesClose() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        net.stripping.insert(TwoPathNetwork.vehicle0)
        net.serverClosesAfterPeer = true
        let up = Self.payload(60_000), down = Self.payload(40_000, salt: 7)
        net.client.write(up)
        net.client.close()
        var serverWrote = false
        net.run(until: Instant.zero + .seconds(10)) { net in
            if !serverWrote, var s = net.server {
                s.write(down)
                net.server = s
                serverWrote = true
            }
        }
        #expect(net.client.fallbackReason == .noCapableOnSYNACK)
        #expect(net.server?.fallbackReason == .noCapableOnACK)
        #expect(net.received == up)
        #expect(net.clientReceived == down)
        #expect(net.client.isClosed && net.server?.isClosed == true)
        #expect(net.closedReasons.contains("DATA_FIN exchanged"))
        #expect(net.serverClosedReasons.contains("DATA_FIN exchanged"))
    }

    @Test func listening_plainTCPSYN_acceptedAsFallbackAndDataFlowsBothWays() {
        let clientTuple = TCPFourTuple(localAddress: [198, 18, 1, 1], localPort: 40_000, remoteAddress: [198, 18, 0, 2], remotePort: 80)
        let serverTuple = TCPFourTuple(localAddress: [198, 18, 0, 2], localPort: 80, remoteAddress: [198, 18, 1, 1], remotePort: 40_000)
        var tcpConfiguration = TCPConfiguration()
        tcpConfiguration.minimumRetransmissionTimeout = .milliseconds(200)
        var client = TCPConnection(tuple: clientTuple, configuration: tcpConfiguration, isnGenerator: InitialSequenceNumberGenerator(seed: 5))
        var now = Instant.zero
        let syn = client.connect(now: now).compactMap { if case let .send(s) = $0 { return s } else { return nil } }
        #expect(syn.count == 1)
        // An MP_CAPABLE listener refuses to treat it as MPTCP…
        #expect(MPTCPConnection.accept(syn: syn[0], tuple: serverTuple, configuration: configuration(), seed: 9, now: now) == nil)
        // …and runs it as plain TCP instead.
        guard var (server, toClient) = MPTCPConnection.acceptPlainTCP(syn: syn[0], tuple: serverTuple, configuration: configuration(),
                                                                     seed: 9, now: now) else {
            Issue.record("plain SYN not accepted"); return
        }
        #expect(server.counters.fallbackPassive == 1)
        let up = Self.payload(120_000), down = Self.payload(90_000, salt: 3)
        client.send(up)
        server.write(down)
        var toServer: [TCPSegment] = []
        var fromServer: [UInt8] = [], atServer: [UInt8] = []
        var serverClosed = false
        var clientClosed = false
        for _ in 0 ..< 20_000 {
            // The client closes once established (closing in SYN-SENT would abort).
            if !clientClosed && client.state == .established { client.close(); clientClosed = true }
            for case let .send(seg, _) in toClient {
                #expect(!seg.options.contains { if case .mptcp = $0 { return true } else { return false } }, "no MPTCP option in fallback")
                toServer += client.handle(seg, now: now).compactMap { if case let .send(s) = $0 { return s } else { return nil } }
            }
            toClient = []
            fromServer += client.receive()
            for seg in toServer { toClient += server.handle(seg, on: SubflowID(0), now: now)}
            toServer = []
            atServer += server.read()
            if server.peerClosed && !serverClosed { server.close(); serverClosed = true }
            toClient += server.poll(now: now)
            toServer += client.poll(now: now).compactMap { if case let .send(s) = $0 { return s } else { return nil } }
            if toClient.isEmpty && toServer.isEmpty {
                let next = min(client.nextDeadline, server.nextDeadline)
                if next == .distantFuture { break }
                now = max(now + .microseconds(1), next)
                toClient += server.poll(now: now)
                toServer += client.poll(now: now).compactMap { if case let .send(s) = $0 { return s } else { return nil } }
            }
            if server.isClosed && client.state == .closed { break }
        }
        #expect(atServer == up)
        #expect(fromServer == down)
        #expect(server.fallbackReason == .peerNotCapable)
        #expect(server.isClosed)
    }

    // MARK: Connection-level receive window (§3.3.4)

    @Test func twoSubflows_slowReader_windowThrottlesSenderWithoutLosingBytes() {
        var serverConfiguration = configuration()
        serverConfiguration.receiveBuffer = 64 << 10
        var net = TwoPathNetwork(client: configuration(), server: serverConfiguration)
        net.slowReadInterval = .milliseconds(20)
        net.slowReadBytes = 16 << 10 // 800 KiB/s, far below two 5 ms paths
        net.serverClosesAfterPeer = true
        let data = Self.payload(1_200_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(Self.secondAddress, now: net.now), toServer: true)
        var largestBuffered = 0
        var sawZeroRoom = false
        net.run(until: Instant.zero + .seconds(8)) { net in
            guard let s = net.server, let r = s.reassembly else { return }
            largestBuffered = max(largestBuffered, r.readableBytes + r.outOfOrderBytes)
            if r.window == 0 { sawZeroRoom = true }
        }
        #expect(net.received == data)
        #expect(largestBuffered <= 64 << 10)
        #expect(sawZeroRoom, "the reader is slow enough to fill the window")
        #expect(net.server?.counters.dataBeyondWindowBytes == 0)
        #expect(net.client.counters.joinsEstablished == 1)
        // Both subflows carried data.
        let dataTuples = Set(net.wire.filter { $0.toServer && !$0.segment.payload.isEmpty }.map(\.tuple.localAddress))
        #expect(dataTuples.count == 2)
        #expect(net.closedReasons.contains("DATA_FIN exchanged"))
    }

    @Test func zeroConnectionWindow_windowUpdateLost_dataLevelProbeReopensTransfer() {
        var serverConfiguration = configuration()
        serverConfiguration.receiveBuffer = 32 << 10
        var net = TwoPathNetwork(client: configuration(), server: serverConfiguration)
        net.slowReadInterval = .milliseconds(300)
        net.slowReadBytes = 32 << 10
        let data = Self.payload(100_000)
        net.client.write(data)
        net.client.close()
        // The window fills at once; the update after the read at 300 ms is lost.
        var clock = Instant.zero
        net.drop = { _, toServer in !toServer && clock >= Instant.zero + .milliseconds(250) && clock < Instant.zero + .milliseconds(350) }
        net.run(until: Instant.zero + .seconds(10)) { net in clock = net.now }
        #expect(net.received == data)
        #expect(net.client.counters.dataWindowProbes >= 1)
        #expect(net.server?.counters.dataBeyondWindowBytes == 0)
    }

    // MARK: DATA_FIN (§3.3.3)

    @Test func dataFINAlone_lostOnce_sentAgainByItsTimerAndBothSidesClose() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        net.serverClosesAfterPeer = true
        let data = Self.payload(10_000)
        net.client.write(data)
        net.run(until: Instant.zero + .milliseconds(300))
        #expect(net.received == data)
        var dropped = 0
        net.drop = { segment, toServer in
            guard toServer, segment.payload.isEmpty, DataLevelTests.dataFIN(segment), dropped == 0 else { return false }
            dropped += 1
            return true
        }
        net.client.close()
        net.carry(net.client.poll(now: net.now), toServer: true)
        net.run(until: Instant.zero + .seconds(5))
        #expect(dropped == 1)
        #expect(net.client.counters.dataFINRetransmissions >= 1)
        #expect(net.server?.peerClosed == true)
        #expect(net.closedReasons.contains("DATA_FIN exchanged"))
        #expect(net.serverClosedReasons.contains("DATA_FIN exchanged"))
    }

    @Test func dataFINSent_itsSubflowDiesSilently_finArrivesOnTheOtherAndBothSidesClose() {
        var net = TwoPathNetwork(client: configuration(), server: configuration())
        net.serverClosesAfterPeer = true
        net.delay[TwoPathNetwork.vehicle1] = .milliseconds(15) // min-RTT prefers path 0
        let data = Self.payload(30_000)
        net.client.write(data)
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(Self.secondAddress, now: net.now), toServer: true)
        net.run(until: Instant.zero + .milliseconds(500))
        #expect(net.received == data)
        #expect(net.client.counters.joinsEstablished == 1)
        // Roadside unit 1 goes silent just as the DATA_FIN leaves on it.
        net.cut.insert(TwoPathNetwork.vehicle0)
        net.client.close()
        net.carry(net.client.poll(now: net.now), toServer: true)
        net.run(until: Instant.zero + .seconds(10))
        #expect(net.server?.peerClosed == true)
        #expect(net.closedReasons.contains("DATA_FIN exchanged"))
        #expect(net.serverClosedReasons.contains("DATA_FIN exchanged"))
    }

    // MARK: DSS checksum failure, MP_FAIL, infinite mapping (§3.7)

    @Test func checksumFailure_onlySubflow_mpFailThenInfiniteMappingAndEveryByteArrives() {
        var config = configuration()
        config.requestChecksums = true
        var net = TwoPathNetwork(client: config, server: config)
        net.serverClosesAfterPeer = true
        var seen = 0
        net.rewrite = { segment, toServer in
            guard toServer, !segment.payload.isEmpty else { return }
            seen += 1
            if seen == 20 { segment.payload[segment.payload.count / 2] ^= 0x5A }
        }
        let data = Self.payload(300_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .seconds(10))
        #expect(seen > 20)
        #expect(net.server?.counters.checksumFailures == 1)
        #expect(net.server?.counters.mpFailsSent == 1)
        #expect(net.client.counters.mpFailsReceived == 1)
        #expect(net.client.counters.infiniteMappingsSent >= 1)
        #expect(net.server?.counters.infiniteMappingsReceived == 1)
        #expect(net.client.fallbackReason == .checksumFailure)
        #expect(net.server?.fallbackReason == .checksumFailure)
        #expect(net.received == data)
        #expect(net.closedReasons.contains("DATA_FIN exchanged"))
    }

    @Test func checksumFailure_otherSubflowAlive_subflowResetWithMPFailAndDataReinjected() {
        var config = configuration()
        config.requestChecksums = true
        var net = TwoPathNetwork(client: config, server: config)
        var seen = 0
        net.rewrite = { segment, toServer in
            // The first data on the joined subflow (its source port is not the initial one).
            guard toServer, !segment.payload.isEmpty, segment.sourcePort != 40_000 else { return }
            seen += 1
            if seen == 2 { segment.payload[10] ^= 0xFF }
        }
        let data = Self.payload(1_000_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(Self.secondAddress, now: net.now), toServer: true)
        net.run(until: Instant.zero + .seconds(10))
        #expect(seen >= 2)
        #expect(net.server?.counters.checksumFailureResets == 1)
        #expect(net.server?.counters.mpFailsSent == 1)
        // The RST said why (MP_TCPRST, §3.6) and carried MP_FAIL.
        let resets = net.wire.filter { !$0.toServer && $0.segment.flags.contains(.rst) }.map { MPTCPOptionReader.options(of: $0.segment) }
        #expect(resets.contains { $0.contains(.reset(flags: 0, reason: ResetReason.middleboxInterference.rawValue))
            && $0.contains { if case .fail = $0 { return true } else { return false } } })
        #expect(net.client.counters.resetsReceived >= 1)
        #expect(net.client.fallbackReason == nil)
        #expect(net.received == data)
    }

    // MARK: Segments end at mapping ends (§3.3)

    @Test func retransmission_acrossTwoMappings_splitSoEachSegmentCarriesItsOwnMapping() {
        var config = configuration()
        // Keep the subflow (no stale verdict, no rejoin): TCP's own RTO resends.
        config.staleDetector = StaleDetector(suspectAfterRTTs: 1000, staleAfterSilenceRTTs: 1000, staleAfterRTOs: 100)
        var net = TwoPathNetwork(client: config, server: configuration())
        net.run(until: Instant.zero + .milliseconds(30))
        // Two chunks whose boundary falls inside what one MSS would cover.
        let first = Self.payload(1000), second = Self.payload(500, salt: 9)
        var losing = true
        net.drop = { segment, toServer in losing && toServer && !segment.payload.isEmpty }
        net.client.write(first)
        net.carry(net.client.poll(now: net.now), toServer: true)
        net.client.write(second)
        net.carry(net.client.poll(now: net.now), toServer: true)
        net.run(until: Instant.zero + .milliseconds(100))
        losing = false
        net.run(until: Instant.zero + .seconds(3))
        #expect(net.received == first + second)
        // The first data byte is relative sequence 1.
        guard let firstData = net.wire.first(where: { $0.toServer && !$0.segment.payload.isEmpty })?.segment.sequenceNumber else {
            Issue.record("no data"); return
        }
        let synSequence = firstData - 1
        var dataSegments = 0
        for (segment, _, toServer) in net.wire where toServer && !segment.payload.isEmpty {
            dataSegments += 1
            let relative = segment.sequenceNumber.rawValue &- synSequence.rawValue
            var covered: (start: UInt32, length: Int)?
            for option in MPTCPOptionReader.options(of: segment) {
                if case let .dss(d) = option, let m = d.mapping { covered = (m.subflowSequenceNumber, Int(m.dataLevelLength) - (d.dataFIN ? 1 : 0)) }
                if case let .capable(c) = option, let length = c.dataLevelLength { covered = (1, Int(length)) }
            }
            guard let covered else { Issue.record("data segment without a mapping at \(relative)"); continue }
            #expect(covered.start <= relative && relative &+ UInt32(segment.payload.count) <= covered.start &+ UInt32(covered.length),
                    "segment [\(relative), +\(segment.payload.count)) outside its mapping [\(covered.start), +\(covered.length))")
        }
        #expect(dataSegments >= 4, "two first transmissions and at least two retransmissions")
        #expect(Set(net.wire.filter { $0.toServer }.map(\.tuple)).count == 1, "one subflow: TCP itself retransmitted")
    }

    // MARK: ADD_ADDR from the passive side (§3.4.1)

    @Test func serverAnnouncesSecondAddress_clientJoinsToItAndBothSubflowsCarryData() {
        var serverConfiguration = configuration()
        let extra = AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 0, 3)))
        serverConfiguration.announcedAddresses = [extra]
        var net = TwoPathNetwork(client: configuration(), server: serverConfiguration)
        let data = Self.payload(800_000)
        net.client.write(data)
        net.client.close()
        net.run(until: Instant.zero + .seconds(8))
        #expect(net.received == data)
        #expect(net.server?.counters.addAddressesSent == 1)
        #expect(net.client.counters.addAddressesReceived == 1)
        #expect(net.server?.counters.addAddressEchoesReceived == 1)
        #expect(net.server?.counters.joinsEstablished == 1)
        #expect(net.wire.contains { $0.toServer && $0.tuple.remoteAddress == [198, 18, 0, 3] && !$0.segment.payload.isEmpty })
    }
}
