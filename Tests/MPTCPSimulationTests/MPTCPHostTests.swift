import Core
import MPTCP
import MPTCPSimulation
import Simulation
import Testing
import Wire

@Suite("MPTCPHost routing of segments (virtual time)")
struct MPTCPHostTests {
    static let server = NodeAddress(198, 18, 0, 2), attacker = NodeAddress(198, 18, 9, 9)

    func listeningHost() -> MPTCPHost {
        var host = MPTCPHost(addresses: [Self.server], configuration: MPTCPConfiguration(), seed: 3)
        host.listen(port: 80)
        return host
    }

    @Test func listeningMPTCPOnly_plainSYNWithoutCapable_refusedWithRSTAndCounted() {
        var host = listeningHost()
        host.acceptsPlainTCP = false
        let syn = TCPSegment(sourcePort: 5_000, destinationPort: 80, sequenceNumber: SequenceNumber(7), flags: .syn, window: 1000)
        host.receive(.tcp(syn, from: Self.attacker, to: Self.server), on: 0, now: .zero)
        let out = host.takeOutgoing(now: .zero)
        #expect(host.plainSYNsRefused == 1)
        #expect(host.endpoints.isEmpty)
        #expect(out.count == 1)
        if case .tcp(let rst)? = out.first?.payload { #expect(rst.flags.contains(.rst)) }
        #expect(out.first?.destination == Self.attacker)
    }

    @Test func noConnection_joinSYNWithUnknownToken_answeredWithRSTOnly() {
        var host = listeningHost()
        let join = TCPSegment(sourcePort: 666, destinationPort: 80, sequenceNumber: SequenceNumber(1), flags: .syn, window: 1000,
                              options: [.mptcp(.join(.syn(backup: false, addressID: 7, receiverToken: 0x1234_5678, senderNonce: 1)))])
        host.receive(.tcp(join, from: Self.attacker, to: Self.server), on: 0, now: .zero)
        let out = host.takeOutgoing(now: .zero)
        #expect(host.endpoints.isEmpty)
        #expect(host.segmentsWithoutConnection == 0)
        #expect(out.count == 1)
        if case .tcp(let rst)? = out.first?.payload { #expect(rst.flags.contains(.rst)) }
    }

    @Test func listening_capableSYN_acceptedAndAnsweredWithSYNACK() {
        var host = listeningHost()
        let syn = TCPSegment(sourcePort: 5_000, destinationPort: 80, sequenceNumber: SequenceNumber(7), flags: .syn, window: 1000,
                             options: [.mptcp(.capable(MPCapable(version: 1, flags: 0x01)))])
        host.receive(.tcp(syn, from: Self.attacker, to: Self.server), on: 0, now: .zero)
        let out = host.takeOutgoing(now: .zero)
        #expect(host.endpoints.count == 1)
        if case .tcp(let synAck)? = out.first?.payload { #expect(synAck.flags == [.syn, .ack]) } else { Issue.record("no SYN/ACK") }
    }
}
