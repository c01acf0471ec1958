import Core
import Testing
import Wire
@testable import MPTCP

/// MP_CAPABLE, MP_JOIN, ADD_ADDR and friends as option exchanges between two
/// state machines, named `state_event_result` (RFC 8684 §3.1–§3.6).
@Suite("MPTCP handshakes and signals (RFC 8684 §3.1-§3.6)")
struct HandshakeTests {
    static let clientKey: UInt64 = 0x72F3_963C_C6BE_999F
    static let serverKey: UInt64 = 0xDD2B_93D2_1DC0_01AC
    static let t0 = Instant.zero

    func connected() -> (CapableHandshake, CapableHandshake, MPTCPCounters) {
        var counters = MPTCPCounters()
        var client = CapableHandshake(role: .active, localKey: Self.clientKey)
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        let syn = client.synOption(counters: &counters)
        let synAck = server.receivedSYN([syn], counters: &counters)!
        client.receivedSYNACK([synAck], now: Self.t0, counters: &counters)
        let third = client.optionForOutgoing(firstData: nil, now: Self.t0)!
        server.receivedThirdACK([third], counters: &counters)
        return (client, server, counters)
    }

    // MARK: MP_CAPABLE

    @Test func capable_idle_synCarriesVersion1WithoutKey() {
        var counters = MPTCPCounters()
        var client = CapableHandshake(role: .active, localKey: Self.clientKey)
        #expect(client.synOption(counters: &counters) == .capable(MPCapable(version: 1, flags: 0x01)))
        #expect(client.state == .synSent && counters.capableSYNsSent == 1)
    }

    @Test func capable_fullExchange_bothSidesAgreeOnKeysTokensIDSNs() {
        let (client, server, counters) = connected()
        #expect(client.state == .awaitingPeerDSS)
        #expect(server.state == .established)
        #expect(client.keys!.localToken == server.keys!.remoteToken)
        #expect(client.keys!.localIDSN == server.keys!.remoteIDSN)
        #expect(server.keys!.localIDSN == client.keys!.remoteIDSN)
        #expect(counters.capableEstablished == 1)
    }

    @Test func capable_synSent_synAckWithoutCapable_fallsBack() {
        var counters = MPTCPCounters()
        var client = CapableHandshake(role: .active, localKey: Self.clientKey)
        _ = client.synOption(counters: &counters)
        client.receivedSYNACK([], now: Self.t0, counters: &counters)
        #expect(client.state == .fallenBack(.noCapableOnSYNACK))
        #expect(counters.fallbackNoCapableOnSYNACK == 1)
        #expect(client.optionForOutgoing(firstData: nil, now: Self.t0) == nil)
    }

    @Test func capable_listen_synWithoutCapable_answersPlainTCP() {
        var counters = MPTCPCounters()
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        #expect(server.receivedSYN([], counters: &counters) == nil)
        #expect(server.state == .fallenBack(.peerNotCapable))
    }

    @Test func capable_listen_version0SYN_answersPlainTCP() {
        var counters = MPTCPCounters()
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        #expect(server.receivedSYN([.capable(MPCapable(version: 0, flags: 0x81, senderKey: 1))], counters: &counters) == nil)
    }

    @Test func capable_listen_checksumRequested_bothSidesUseChecksums() {
        var counters = MPTCPCounters()
        var client = CapableHandshake(role: .active, localKey: Self.clientKey, configuration: .init(requestChecksums: true))
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        let synAck = server.receivedSYN([client.synOption(counters: &counters)], counters: &counters)!
        client.receivedSYNACK([synAck], now: Self.t0, counters: &counters)
        #expect(server.checksumsRequired && client.checksumsRequired)
    }

    @Test func capable_synReceived_ackWithoutCapable_fallsBack() {
        var counters = MPTCPCounters()
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        _ = server.receivedSYN([.capable(MPCapable())], counters: &counters)
        server.receivedThirdACK([], counters: &counters)
        #expect(server.state == .fallenBack(.noCapableOnACK))
        #expect(counters.fallbackNoCapableOnACK == 1)
    }

    @Test func capable_synReceived_ackEchoingWrongKey_fallsBack() {
        var counters = MPTCPCounters()
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        _ = server.receivedSYN([.capable(MPCapable())], counters: &counters)
        server.receivedThirdACK([.capable(MPCapable(senderKey: Self.clientKey, receiverKey: 12345))], counters: &counters)
        #expect(server.state == .fallenBack(.noCapableOnACK))
    }

    @Test func capable_synReceived_thirdACKLostFirstDataCarriesKeys_establishes() {
        var counters = MPTCPCounters()
        var client = CapableHandshake(role: .active, localKey: Self.clientKey)
        var server = CapableHandshake(role: .passive, localKey: Self.serverKey)
        let synAck = server.receivedSYN([client.synOption(counters: &counters)], counters: &counters)!
        client.receivedSYNACK([synAck], now: Self.t0, counters: &counters)
        _ = client.optionForOutgoing(firstData: nil, now: Self.t0) // the pure third ACK, lost
        let data = DataChunk(dataSequenceNumber: client.keys!.localIDSN + 1, bytes: [1, 2, 3])
        let withData = client.optionForOutgoing(firstData: data, now: Self.t0)!
        guard case let .capable(c) = withData else { Issue.record("not MP_CAPABLE"); return }
        #expect(c.encodedLength == 22 && c.dataLevelLength == 3)
        server.receivedThirdACK([withData], counters: &counters)
        #expect(server.state == .established)
    }

    @Test func capable_awaitingPeerDSS_noDSSInTime_thirdACKRepeated() {
        var (client, _, counters) = connected()
        #expect(!client.thirdACKRetransmissionDue(now: Self.t0 + .milliseconds(100), counters: &counters))
        #expect(client.thirdACKRetransmissionDue(now: Self.t0 + .milliseconds(200), counters: &counters))
        #expect(counters.capableThirdACKRetransmissions == 1)
        #expect(client.optionForOutgoing(firstData: nil, now: Self.t0 + .milliseconds(200)) != nil)
        #expect(client.nextDeadline == Self.t0 + .milliseconds(400))
    }

    @Test func capable_awaitingPeerDSS_dssArrives_establishesAndStopsSendingCapable() {
        var (client, _, counters) = connected()
        client.receivedSegment([.dss(DataSequenceSignal(dataACK: 1))], hasPayload: false, counters: &counters)
        #expect(client.state == .established)
        #expect(client.optionForOutgoing(firstData: nil, now: Self.t0) == nil)
        #expect(client.nextDeadline == .distantFuture)
    }

    @Test func capable_awaitingPeerDSS_dataWithoutDSS_fallsBackOptionsStripped() {
        var (client, _, counters) = connected()
        client.receivedSegment([], hasPayload: true, counters: &counters)
        #expect(client.state == .fallenBack(.mappingStripped))
        #expect(counters.fallbackNoMappingOnData == 1)
    }

    @Test func capable_established_firstDataWithoutMapping_fallsBack() {
        var (_, server, counters) = connected()
        server.receivedSegment([], hasPayload: true, counters: &counters)
        #expect(server.state == .fallenBack(.mappingStripped))
    }

    @Test func capable_established_dataWithoutMappingAfterMappings_doesNotFallBack() {
        var (_, server, counters) = connected()
        let dss = DataSequenceSignal(dataACK: 1, mapping: DSSMapping(dataSequenceNumber: 1, subflowSequenceNumber: 1, dataLevelLength: 2000))
        server.receivedSegment([.dss(dss)], hasPayload: true, counters: &counters)
        server.receivedSegment([], hasPayload: true, counters: &counters) // second segment of the same mapping
        #expect(server.state == .established)
    }

    // MARK: MP_JOIN

    func keysPair() -> (ConnectionKeys, ConnectionKeys) {
        (ConnectionKeys(localKey: Self.clientKey, remoteKey: Self.serverKey),
         ConnectionKeys(localKey: Self.serverKey, remoteKey: Self.clientKey))
    }

    @Test func join_fullExchange_dataOnlyAfterFourthACK() throws {
        let (a, b) = keysPair()
        var counters = MPTCPCounters()
        var initiator = JoinInitiator(keys: a, localAddressID: 1, backup: false, nonce: 0x3F0E_BD13)
        guard case let .join(syn) = initiator.synOption(counters: &counters) else { Issue.record("no join"); return }
        var responder = try JoinResponder.accept(syn, localAddressID: 0, nonce: 0xF99C_E7F0,
                                                 keysForToken: { $0 == b.localToken ? b : nil }, counters: &counters).get()
        let third = initiator.receivedSYNACK([responder.synAckOption], now: Self.t0, counters: &counters)
        #expect(third != nil && initiator.state == .awaitingFourthACK && !initiator.canSendData)
        responder.receivedThirdACK([third!], counters: &counters)
        #expect(responder.canSendData)
        initiator.receivedFourthACK(counters: &counters)
        #expect(initiator.canSendData)
        #expect(counters.joinsEstablished == 2)
    }

    @Test func join_listen_unknownToken_rejectedWithResetAndCounted() {
        var counters = MPTCPCounters()
        let result = JoinResponder.accept(.syn(backup: false, addressID: 1, receiverToken: 0xDEAD_BEEF, senderNonce: 1),
                                          localAddressID: 0, nonce: 2, keysForToken: { _ in nil }, counters: &counters)
        guard case let .failure(rejection) = result else { Issue.record("accepted"); return }
        #expect(rejection.resetOption == .reset(flags: 0, reason: ResetReason.mptcpError.rawValue))
        #expect(counters.joinRejectedUnknownToken == 1)
    }

    @Test func join_synSent_forgedSynAckHMAC_rejectedAndCounted() {
        let (a, _) = keysPair()
        var counters = MPTCPCounters()
        var initiator = JoinInitiator(keys: a, localAddressID: 1, backup: false, nonce: 7)
        _ = initiator.synOption(counters: &counters)
        let forged = MPTCPOption.join(.synAck(backup: false, addressID: 0, truncatedHMAC: 0x0102_0304_0506_0708, senderNonce: 9))
        #expect(initiator.receivedSYNACK([forged], now: Self.t0, counters: &counters) == nil)
        #expect(counters.joinRejectedBadSYNACKHMAC == 1)
        guard case .rejected = initiator.state else { Issue.record("not rejected"); return }
        #expect(!initiator.canSendData)
    }

    @Test func join_synReceived_forgedThirdACKHMAC_rejectedAndCounted() throws {
        let (_, b) = keysPair()
        var counters = MPTCPCounters()
        var responder = try JoinResponder.accept(.syn(backup: false, addressID: 1, receiverToken: b.localToken, senderNonce: 1),
                                                 localAddressID: 0, nonce: 2, keysForToken: { _ in b }, counters: &counters).get()
        responder.receivedThirdACK([.join(.ack(hmac: [UInt8](repeating: 0xAB, count: 20)))], counters: &counters)
        #expect(!responder.canSendData)
        #expect(counters.joinRejectedBadACKHMAC == 1)
        #expect(responder.state == .rejected(JoinRejection(reason: .administrativelyProhibited, why: "bad HMAC on MP_JOIN ACK")))
    }

    @Test func join_awaitingFourthACK_thirdACKRepeatedUntilAcknowledged() {
        let (a, b) = keysPair()
        var counters = MPTCPCounters()
        var initiator = JoinInitiator(keys: a, localAddressID: 1, backup: true, nonce: 5)
        guard case let .join(syn) = initiator.synOption(counters: &counters),
              let responder = try? JoinResponder.accept(syn, localAddressID: 0, nonce: 6, keysForToken: { _ in b },
                                                        counters: &counters).get() else { Issue.record("setup"); return }
        #expect(responder.remoteBackup)
        _ = initiator.receivedSYNACK([responder.synAckOption], now: Self.t0, counters: &counters)
        #expect(initiator.thirdACKRetransmissionDue(now: Self.t0 + .milliseconds(200), counters: &counters))
        #expect(!initiator.thirdACKRetransmissionDue(now: Self.t0 + .milliseconds(300), counters: &counters))
        initiator.receivedFourthACK(counters: &counters)
        #expect(!initiator.thirdACKRetransmissionDue(now: Self.t0 + .seconds(5), counters: &counters))
        #expect(counters.joinThirdACKRetransmissions == 1)
    }

    @Test func tokenTable_newKey_neverReusesATokenInUse() {
        var table = TokenTable<Int>()
        var random = SeededRandom(seed: 1)
        let key = table.newKey(using: &random)
        let first = table.insert(token: MPTCPCrypto.token(key: key), for: 1)
        let second = table.insert(token: MPTCPCrypto.token(key: key), for: 2)
        #expect(first && !second)
        #expect(table.connection(for: MPTCPCrypto.token(key: key)) == 1)
        let other = table.newKey(using: &random)
        #expect(MPTCPCrypto.token(key: other) != MPTCPCrypto.token(key: key))
        table.remove(token: MPTCPCrypto.token(key: key))
        #expect(table.count == 0)
    }

    // MARK: ADD_ADDR, REMOVE_ADDR, MP_PRIO, MP_FASTCLOSE, MP_TCPRST

    static let rsu2 = AnnouncedAddress(id: 2, address: .v4(IPv4Address(198, 18, 2, 2)))

    @Test func addAddress_announced_peerVerifiesEchoesAndSenderStopsRepeating() {
        let (a, b) = keysPair()
        var counters = MPTCPCounters()
        var sender = AddressSignals(keys: a), receiver = AddressSignals(keys: b)
        sender.announce(Self.rsu2, now: Self.t0, counters: &counters)
        let sent = sender.takeQueued(room: 40)
        #expect(sent.count == 1)
        #expect(receiver.received(sent, counters: &counters) == [.peerAddressAdded(Self.rsu2)])
        let echo = receiver.takeQueued(room: 40)
        #expect(echo == [.addAddress(AddAddress(echo: true, addressID: 2, address: Self.rsu2.address))])
        _ = sender.received(echo, counters: &counters)
        #expect(sender.unechoed.isEmpty && sender.nextDeadline == .distantFuture)
    }

    @Test func addAddress_notEchoed_repeatedThenGivenUp() {
        let (a, _) = keysPair()
        var counters = MPTCPCounters()
        var sender = AddressSignals(keys: a, configuration: .init(retransmissionInterval: .milliseconds(100), maximumRetransmissions: 2))
        sender.announce(Self.rsu2, now: Self.t0, counters: &counters)
        _ = sender.takeQueued(room: 40)
        for ms in [100, 200, 300] { sender.advance(now: Self.t0 + .milliseconds(ms), counters: &counters) }
        #expect(sender.takeQueued(room: 40).count == 2)
        #expect(counters.addAddressRetransmissions == 2)
        #expect(sender.unechoed.isEmpty)
    }

    @Test func addAddress_forgedHMAC_ignoredAndCounted() {
        let (_, b) = keysPair()
        var counters = MPTCPCounters()
        var receiver = AddressSignals(keys: b)
        let forged = MPTCPOption.addAddress(AddAddress(addressID: 3, address: .v4(IPv4Address(198, 18, 9, 9)), truncatedHMAC: 42))
        #expect(receiver.received([forged], counters: &counters).isEmpty)
        #expect(receiver.takeQueued(room: 40).isEmpty) // no echo either
        #expect(counters.addAddressBadHMAC == 1 && receiver.peerAddresses.isEmpty)
    }

    @Test func addAddress_hmacMatchesLinuxCapture() {
        // ADD_ADDR from samples/kernel-mptcp-two-paths.pcap, sent by the server (key dd2b...).
        let b = ConnectionKeys(localKey: Self.serverKey, remoteKey: Self.clientKey)
        let signals = AddressSignals(keys: b)
        #expect(signals.addAddressOption(AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 2))))
            == .addAddress(AddAddress(addressID: 1, address: .v4(IPv4Address(198, 18, 2, 2)), truncatedHMAC: 0xD256_DF99_2C46_26AC)))
    }

    @Test func removeAddress_received_peerAddressForgotten() {
        let (a, b) = keysPair()
        var counters = MPTCPCounters()
        var sender = AddressSignals(keys: a), receiver = AddressSignals(keys: b)
        sender.announce(Self.rsu2, now: Self.t0, counters: &counters)
        _ = receiver.received(sender.takeQueued(room: 40), counters: &counters)
        sender.withdraw(ids: [2], counters: &counters)
        #expect(receiver.received(sender.takeQueued(room: 40), counters: &counters) == [.peerAddressRemoved(id: 2)])
        #expect(receiver.peerAddresses.isEmpty)
    }

    @Test func fastClose_rightKey_closes_wrongKey_ignoredAndCounted() {
        let (a, b) = keysPair()
        var counters = MPTCPCounters()
        let sender = AddressSignals(keys: a)
        var receiver = AddressSignals(keys: b)
        #expect(receiver.received([sender.fastCloseOption(counters: &counters)], counters: &counters) == [.fastClose])
        #expect(receiver.received([.fastClose(receiverKey: 1)], counters: &counters).isEmpty)
        #expect(counters.fastClosesBadKey == 1 && counters.fastClosesReceived == 1)
    }

    @Test func priorityAndReset_received_reportedToPathManager() {
        let (_, b) = keysPair()
        var counters = MPTCPCounters()
        var receiver = AddressSignals(keys: b)
        #expect(receiver.received([.priority(backup: true, addressID: nil),
                                   ResetReason.middleboxInterference.option(transient: true)], counters: &counters)
            == [.peerPriorityChanged(backup: true), .peerReset(reason: .middleboxInterference, transient: true)])
    }

    @Test func optionReader_malformedMPTCPOption_skippedAndCounted() {
        var counters = MPTCPCounters()
        // NOP, a DSS claiming a mapping but 4 bytes short, then a valid MP_PRIO, then garbage length.
        let raw: [UInt8] = [0x01, 30, 8, 0x20, 0x04, 0, 0, 0, 0, 30, 3, 0x51, 30, 200]
        let options = MPTCPOptionReader.options(inRawOptions: raw[...], counters: &counters)
        #expect(options == [.priority(backup: true, addressID: nil)])
        #expect(counters.malformedOptions == 2)
    }
}
