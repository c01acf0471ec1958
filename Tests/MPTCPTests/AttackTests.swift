import Core
import Testing
import TCP
import Wire
@testable import MPTCP

/// An attacker who knows every subflow's four-tuple and sequence numbers
/// (on path) forges signals; one who only guesses in-window sequence
/// numbers (off path) injects RSTs and SYNs. Nothing changes but counters.
@Suite("MPTCP under simulated attack (virtual time)")
struct AttackTests {
    @Test func established_forgedSignalsAndBlindRSTsAndSYNsOnEverySubflow_onlyCountersChange() {
        var c = MPTCPConfiguration()
        c.pathManager = "fullmesh"
        c.tcp.initialRetransmissionTimeout = .milliseconds(200)
        var net = TwoPathNetwork(client: c, server: c)
        net.serverClosesAfterPeer = true
        let first = DataLevelTests.payload(200_000), second = DataLevelTests.payload(100_000, salt: 5)
        net.client.write(first)
        net.run(until: Instant.zero + .milliseconds(20))
        net.carry(net.client.localAddress(DataLevelTests.secondAddress, now: net.now), toServer: true)
        net.run(until: Instant.zero + .seconds(2))
        #expect(net.received == first)
        let tuples = Set(net.wire.filter { $0.toServer && $0.segment.flags == .ack }.map(\.tuple))
        #expect(tuples.count == 2)
        let before = net.server!.counters
        for tuple in tuples {
            guard let last = net.wire.last(where: { $0.toServer && $0.tuple == tuple })?.segment else { continue }
            let seen = TCPFourTuple(localAddress: tuple.remoteAddress, localPort: tuple.remotePort,
                                    remoteAddress: tuple.localAddress, remotePort: tuple.localPort)
            guard let id = net.server!.subflow(for: seen) else { Issue.record("no server subflow for \(tuple)"); continue }
            let next = last.sequenceNumber + last.payload.count
            let plain = last.options.filter { if case .mptcp = $0 { return false } else { return true } }
            func forged(_ option: MPTCPOption) -> TCPSegment {
                TCPSegment(sourcePort: last.sourcePort, destinationPort: last.destinationPort, sequenceNumber: next,
                           acknowledgmentNumber: last.acknowledgmentNumber, flags: .ack, window: last.window,
                           options: plain + [.mptcp(option)])
            }
            var server = net.server!
            // On path: ADD_ADDR with a wrong HMAC, MP_FASTCLOSE with a wrong key.
            let addAddress = AddAddress(addressID: 9, address: .v4(IPv4Address(198, 18, 9, 9)), truncatedHMAC: 0xDEAD_BEEF)
            _ = server.handle(forged(.addAddress(addAddress)), on: id, now: net.now)
            _ = server.handle(forged(.fastClose(receiverKey: 0x0123_4567_89AB_CDEF)), on: id, now: net.now)
            // Off path: a RST and a SYN in the window but not at RCV.NXT (RFC 5961 §3.2, §4.2).
            for flags: TCPFlags in [.rst, .syn] {
                let blind = TCPSegment(sourcePort: last.sourcePort, destinationPort: last.destinationPort, sequenceNumber: next + 100,
                                       flags: flags, window: 1000, options: flags == .syn ? plain : [])
                let reply = server.handle(blind, on: id, now: net.now)
                let sent = reply.compactMap { if case let .send(s, _) = $0 { return s } else { return nil } }
                #expect(sent.count == 1 && sent.allSatisfy { $0.flags == .ack }, "a challenge ACK and nothing else")
                #expect(!reply.contains { if case .closed = $0 { return true } else { return false } })
            }
            #expect(server.subflow(for: seen) == id, "the subflow survives")
            net.server = server
        }
        let after = net.server!.counters
        #expect(after.addAddressBadHMAC == before.addAddressBadHMAC + 2)
        #expect(after.fastClosesBadKey == before.fastClosesBadKey + 2)
        #expect(after.segmentsRefusedByTCP == before.segmentsRefusedByTCP + 4)
        #expect(after.addAddressesReceived == before.addAddressesReceived + 2)
        #expect(!net.server!.isClosed)
        #expect(net.server!.remoteAddresses[9] == nil)
        // The transfer goes on and ends normally.
        net.client.write(second)
        net.client.close()
        net.carry(net.client.poll(now: net.now), toServer: true)
        net.run(until: Instant.zero + .seconds(8))
        #expect(net.received == first + second)
        #expect(net.closedReasons.contains("DATA_FIN exchanged"))
        #expect(!net.wire.contains { $0.tuple.remoteAddress == [198, 18, 9, 9] || $0.tuple.localAddress == [198, 18, 9, 9] })
    }
}
