import Core
import Wire

/// What ends a join attempt: the RST to send and the reason it carries.
public struct JoinRejection: Error, Hashable, Sendable {
    public var reason: ResetReason
    public var why: String
    public var resetOption: MPTCPOption { reason.option() }
}

/// The initiating side of MP_JOIN (RFC 8684 §3.2), host A:
/// SYN [MP_JOIN token-B, R-A] → SYN/ACK [MP_JOIN HMAC-B(64), R-B] →
/// ACK [MP_JOIN HMAC-A(160)] → the fourth ACK from B. A checks B's HMAC and
/// sends no data until the fourth ACK confirms B accepted the third (§3.2);
/// it repeats the third ACK until then.
public struct JoinInitiator: Sendable {
    public enum State: Hashable, Sendable {
        case idle, synSent, awaitingFourthACK, established
        case rejected(JoinRejection)
    }

    public let keys: ConnectionKeys
    public let localAddressID: UInt8
    public let backup: Bool
    public let localNonce: UInt32
    public private(set) var remoteNonce: UInt32?
    public private(set) var remoteAddressID: UInt8?
    /// The peer asked for this subflow to be a backup in its SYN/ACK.
    public private(set) var remoteBackup = false
    public private(set) var state: State = .idle
    public private(set) var nextDeadline: Instant = .distantFuture
    public let thirdACKRetransmissionInterval: Interval

    public init(keys: ConnectionKeys, localAddressID: UInt8, backup: Bool, nonce: UInt32,
                thirdACKRetransmissionInterval: Interval = .milliseconds(200)) {
        self.keys = keys; self.localAddressID = localAddressID; self.backup = backup; localNonce = nonce
        self.thirdACKRetransmissionInterval = thirdACKRetransmissionInterval
    }

    /// Data may go out on this subflow (§3.2: only after the fourth ACK).
    public var canSendData: Bool { state == .established }

    public mutating func synOption(counters: inout MPTCPCounters) -> MPTCPOption {
        if state == .idle { state = .synSent }
        counters.joinSYNsSent += 1
        return .join(.syn(backup: backup, addressID: localAddressID, receiverToken: keys.remoteToken, senderNonce: localNonce))
    }

    /// The SYN/ACK arrived. Returns the third ACK's option, or nil when the
    /// join is rejected (then `state` holds the RST to send).
    public mutating func receivedSYNACK(_ options: [MPTCPOption], now: Instant, counters: inout MPTCPCounters) -> MPTCPOption? {
        guard state == .synSent else { counters.unexpectedOptions += 1; return nil }
        counters.joinSYNACKsReceived += 1
        var synAck: (Bool, UInt8, UInt64, UInt32)?
        for case let .join(.synAck(b, id, mac, nonce)) in options { synAck = (b, id, mac, nonce) }
        guard let (b, id, mac, nonce) = synAck else {
            // §3.2: a SYN/ACK without MP_JOIN cannot be a subflow of this connection.
            state = .rejected(JoinRejection(reason: .mptcpError, why: "SYN/ACK without MP_JOIN"))
            return nil
        }
        // §3.2: B's HMAC is HMAC(Key-B || Key-A, R-B || R-A), leftmost 64 bits.
        let expected = MPTCPCrypto.joinSynAckHMAC(senderKey: keys.remoteKey, receiverKey: keys.localKey,
                                                  senderNonce: nonce, receiverNonce: localNonce)
        guard mac == expected else {
            counters.joinRejectedBadSYNACKHMAC += 1
            state = .rejected(JoinRejection(reason: .administrativelyProhibited, why: "bad HMAC on MP_JOIN SYN/ACK"))
            return nil
        }
        remoteNonce = nonce; remoteAddressID = id; remoteBackup = b
        state = .awaitingFourthACK
        nextDeadline = now + thirdACKRetransmissionInterval
        return thirdACKOption
    }

    /// The third ACK's option (for the first send and for repeats).
    public var thirdACKOption: MPTCPOption? {
        guard let remoteNonce else { return nil }
        return .join(.ack(hmac: MPTCPCrypto.joinAckHMAC(senderKey: keys.localKey, receiverKey: keys.remoteKey,
                                                        senderNonce: localNonce, receiverNonce: remoteNonce)))
    }

    /// B acknowledged the third ACK (the subflow's ACK covers it): the fourth ACK.
    public mutating func receivedFourthACK(counters: inout MPTCPCounters) {
        guard state == .awaitingFourthACK else { return }
        state = .established
        nextDeadline = .distantFuture
        counters.joinsEstablished += 1
    }

    /// Whether the third ACK must go out again now (no fourth ACK yet).
    public mutating func thirdACKRetransmissionDue(now: Instant, counters: inout MPTCPCounters) -> Bool {
        guard state == .awaitingFourthACK, now >= nextDeadline else { return false }
        nextDeadline = now + thirdACKRetransmissionInterval
        counters.joinThirdACKRetransmissions += 1
        return true
    }
}

/// The responding side of MP_JOIN (§3.2), host B. Created from the SYN by
/// `accept`, which looks the token up; checks A's HMAC on the third ACK.
public struct JoinResponder: Sendable {
    public enum State: Hashable, Sendable {
        case synReceived, established
        case rejected(JoinRejection)
    }

    public let keys: ConnectionKeys
    public let localAddressID: UInt8
    public let localNonce: UInt32
    public let remoteNonce: UInt32
    public let remoteAddressID: UInt8
    /// A asked for this subflow to be a backup (the B flag of its SYN).
    public let remoteBackup: Bool
    public let backup: Bool
    public private(set) var state: State = .synReceived

    /// A SYN with MP_JOIN arrived. `keysForToken` finds the connection that owns
    /// a token (a `TokenTable` lookup). An unknown token is rejected with a RST
    /// and counted (§3.2: "the receiver MUST respond with a TCP RST").
    public static func accept(_ syn: MPJoin, localAddressID: UInt8, backup: Bool = false, nonce: UInt32,
                              keysForToken: (UInt32) -> ConnectionKeys?,
                              counters: inout MPTCPCounters) -> Result<JoinResponder, JoinRejection> {
        counters.joinSYNsReceived += 1
        guard case let .syn(remoteBackup, remoteID, token, remoteNonce) = syn else {
            counters.unexpectedOptions += 1
            return .failure(JoinRejection(reason: .mptcpError, why: "MP_JOIN on a SYN is not the SYN form"))
        }
        guard let keys = keysForToken(token) else {
            counters.joinRejectedUnknownToken += 1
            return .failure(JoinRejection(reason: .mptcpError, why: "MP_JOIN for unknown token \(token)"))
        }
        return .success(JoinResponder(keys: keys, localAddressID: localAddressID, localNonce: nonce,
                                      remoteNonce: remoteNonce, remoteAddressID: remoteID,
                                      remoteBackup: remoteBackup, backup: backup))
    }

    private init(keys: ConnectionKeys, localAddressID: UInt8, localNonce: UInt32, remoteNonce: UInt32,
                 remoteAddressID: UInt8, remoteBackup: Bool, backup: Bool) {
        self.keys = keys; self.localAddressID = localAddressID; self.localNonce = localNonce
        self.remoteNonce = remoteNonce; self.remoteAddressID = remoteAddressID; self.remoteBackup = remoteBackup
        self.backup = backup
    }

    /// The SYN/ACK's option: the leftmost 64 bits of HMAC(Key-B || Key-A, R-B || R-A).
    public var synAckOption: MPTCPOption {
        .join(.synAck(backup: backup, addressID: localAddressID,
                      truncatedHMAC: MPTCPCrypto.joinSynAckHMAC(senderKey: keys.localKey, receiverKey: keys.remoteKey,
                                                                 senderNonce: localNonce, receiverNonce: remoteNonce),
                      senderNonce: localNonce))
    }

    /// Data may go out once A proved it knows the keys (after the third ACK;
    /// our ACK of it is the fourth).
    public var canSendData: Bool { state == .established }

    /// The third ACK arrived with these options.
    public mutating func receivedThirdACK(_ options: [MPTCPOption], counters: inout MPTCPCounters) {
        guard state == .synReceived else { return }
        counters.joinACKsReceived += 1
        var mac: [UInt8]?
        for case let .join(.ack(h)) in options { mac = h }
        // §3.2: A's HMAC is HMAC(Key-A || Key-B, R-A || R-B), leftmost 160 bits;
        // if it does not match, the subflow MUST be closed with a RST.
        let expected = MPTCPCrypto.joinAckHMAC(senderKey: keys.remoteKey, receiverKey: keys.localKey,
                                               senderNonce: remoteNonce, receiverNonce: localNonce)
        guard let mac, mac == expected else {
            counters.joinRejectedBadACKHMAC += 1
            state = .rejected(JoinRejection(reason: .administrativelyProhibited,
                                            why: mac == nil ? "third ACK without MP_JOIN" : "bad HMAC on MP_JOIN ACK"))
            return
        }
        state = .established
        counters.joinsEstablished += 1
    }
}
