import Core
import Wire

/// MP_TCPRST reason codes (RFC 8684 §3.6).
public enum ResetReason: UInt8, Hashable, Sendable, CaseIterable {
    case unspecified = 0x00
    case mptcpError = 0x01
    case lackOfResources = 0x02
    case administrativelyProhibited = 0x03
    case tooMuchOutstandingData = 0x04
    case unacceptablePerformance = 0x05
    case middleboxInterference = 0x06

    /// The option to put on the RST. `transient` is the T flag: the condition
    /// may go away, so the peer may try this path again later.
    public func option(transient: Bool = false) -> MPTCPOption {
        .reset(flags: transient ? 0x01 : 0x00, reason: rawValue)
    }
}

/// Why a connection stopped using MPTCP and went on as plain TCP (§3.7).
public enum FallbackReason: String, Hashable, Sendable {
    /// The SYN/ACK carried no MP_CAPABLE: the peer or a middlebox does not speak MPTCP.
    case noCapableOnSYNACK = "no MP_CAPABLE on SYN/ACK"
    /// The SYN carried none, or a version or algorithm we do not support.
    case peerNotCapable = "peer not MP_CAPABLE"
    /// The third ACK came without MP_CAPABLE (or with a key that is not ours).
    case noCapableOnACK = "no MP_CAPABLE on ACK"
    /// Data arrived without a DSS mapping before any mapping had: options stripped.
    case mappingStripped = "options stripped on data"
    /// A DSS checksum failed on the only subflow (MP_FAIL, infinite mapping).
    case checksumFailure = "DSS checksum failure"
}

/// The MP_CAPABLE handshake of RFC 8684 §3.1 (version 1, HMAC-SHA256) for
/// one side of the initial subflow, over options only: the TCP engine feeds
/// in what arrived and asks what to add to what it sends.
///
/// Active opener:  SYN [MP_CAPABLE] → SYN/ACK [MP_CAPABLE key-B] → ACK [MP_CAPABLE key-A key-B],
/// then MP_CAPABLE on the first data (with its data-level length) and on
/// every pure ACK until a DSS from B shows that B has the keys.
/// Passive opener: answers a SYN with its key and becomes established on the
/// first ACK or data that echoes both keys.
public struct CapableHandshake: Sendable {
    public enum Role: Hashable, Sendable { case active, passive }

    public enum State: Hashable, Sendable {
        case idle
        /// Active: SYN with MP_CAPABLE sent.
        case synSent
        /// Passive: SYN/ACK with our key sent; waiting for the third ACK.
        case synReceived
        /// Active: keys exchanged; MP_CAPABLE goes on our segments until a DSS arrives.
        case awaitingPeerDSS
        case established
        case fallenBack(FallbackReason)
    }

    public struct Configuration: Hashable, Sendable {
        /// Ask for DSS checksums (the A flag). Linux's default is off.
        public var requestChecksums: Bool
        /// How long the active side waits for a DSS before sending the MP_CAPABLE ACK again.
        public var thirdACKRetransmissionInterval: Interval
        public init(requestChecksums: Bool = false, thirdACKRetransmissionInterval: Interval = .milliseconds(200)) {
            self.requestChecksums = requestChecksums
            self.thirdACKRetransmissionInterval = thirdACKRetransmissionInterval
        }
    }

    public let role: Role
    public let configuration: Configuration
    public let localKey: UInt64
    public private(set) var remoteKey: UInt64?
    public private(set) var state: State = .idle
    /// Negotiated: either side asked for DSS checksums (§3.1, the A flag).
    public private(set) var checksumsRequired: Bool
    /// When the MP_CAPABLE ACK goes out again (active, until a DSS arrives).
    public private(set) var nextDeadline: Instant = .distantFuture
    private var firstDataSent = false

    public init(role: Role, localKey: UInt64, configuration: Configuration = Configuration()) {
        self.role = role; self.localKey = localKey; self.configuration = configuration
        checksumsRequired = configuration.requestChecksums
    }

    public var keys: ConnectionKeys? { remoteKey.map { ConnectionKeys(localKey: localKey, remoteKey: $0) } }
    public var isMultipath: Bool {
        switch state { case .awaitingPeerDSS, .established: return true; default: return false }
    }
    public var fallbackReason: FallbackReason? { if case let .fallenBack(r) = state { return r } else { return nil } }

    private var flags: UInt8 {
        MPCapable.Flag.hmacSHA256 | (configuration.requestChecksums ? MPCapable.Flag.checksumRequired : 0)
    }

    private static func capable(in options: [MPTCPOption]) -> MPCapable? {
        for case let .capable(c) in options { return c }
        return nil
    }

    // MARK: active opener

    /// The option for the SYN (and its retransmissions): version 1, no key (§3.1).
    public mutating func synOption(counters: inout MPTCPCounters) -> MPTCPOption {
        precondition(role == .active)
        if state == .idle { state = .synSent }
        counters.capableSYNsSent += 1
        return .capable(MPCapable(version: 1, flags: flags))
    }

    /// The SYN/ACK arrived with these MPTCP options.
    public mutating func receivedSYNACK(_ options: [MPTCPOption], now: Instant, counters: inout MPTCPCounters) {
        guard role == .active, state == .synSent else { counters.unexpectedOptions += 1; return }
        // §3.7: no MP_CAPABLE on the SYN/ACK means the path or the peer does not do MPTCP.
        guard let c = Self.capable(in: options), c.version == 1, c.usesHMACSHA256, let key = c.senderKey else {
            state = .fallenBack(.noCapableOnSYNACK)
            counters.fallbackNoCapableOnSYNACK += 1
            return
        }
        remoteKey = key
        checksumsRequired = configuration.requestChecksums || c.checksumRequired
        state = .awaitingPeerDSS
        nextDeadline = now + configuration.thirdACKRetransmissionInterval
    }

    /// The MP_CAPABLE to put on an outgoing segment of the initial subflow
    /// while the peer has not shown it has our key: the 20-byte third-ACK form
    /// on pure ACKs; on the first data segment the 22/24-byte form with the
    /// data-level length (and checksum) of `firstData`, which then needs no DSS.
    public mutating func optionForOutgoing(firstData: DataChunk?, now: Instant) -> MPTCPOption? {
        guard role == .active, state == .awaitingPeerDSS, let remoteKey else { return nil }
        var c = MPCapable(version: 1, flags: flags, senderKey: localKey, receiverKey: remoteKey)
        // The caller passes `firstData` only for a segment starting at
        // subflow sequence 1: a retransmission of the first data carries
        // its length again, or it would go out unmapped (§3.1).
        if let firstData, !firstData.bytes.isEmpty {
            firstDataSent = true
            c.dataLevelLength = UInt16(clamping: firstData.dataLevelLength)
            if checksumsRequired { c.checksum = firstData.mapping(subflowSequence: 1, checksums: true).checksum }
        }
        nextDeadline = now + configuration.thirdACKRetransmissionInterval
        return .capable(c)
    }

    /// Whether the retransmission deadline passed: the driver then sends a
    /// pure ACK carrying `optionForOutgoing(firstData: nil, now:)`.
    public mutating func thirdACKRetransmissionDue(now: Instant, counters: inout MPTCPCounters) -> Bool {
        guard role == .active, state == .awaitingPeerDSS, now >= nextDeadline else { return false }
        counters.capableThirdACKRetransmissions += 1
        return true
    }

    // MARK: passive opener

    /// A SYN arrived. Returns the option for the SYN/ACK, or nil to go on as plain TCP.
    public mutating func receivedSYN(_ options: [MPTCPOption], counters: inout MPTCPCounters) -> MPTCPOption? {
        precondition(role == .passive)
        guard let c = Self.capable(in: options) else {
            state = .fallenBack(.peerNotCapable)
            return nil
        }
        counters.capableSYNsReceived += 1
        // §3.1: a v1 SYN carries no key; version 0 (RFC 6824, key on the SYN) is
        // not spoken here, so it gets plain TCP. A higher version is answered
        // with ours. Without the H flag no common HMAC exists.
        guard c.version >= 1, c.senderKey == nil || c.version > 1, c.usesHMACSHA256 else {
            state = .fallenBack(.peerNotCapable)
            return nil
        }
        checksumsRequired = configuration.requestChecksums || c.checksumRequired
        state = .synReceived
        return .capable(MPCapable(version: 1, flags: flags, senderKey: localKey))
    }

    /// The first ACK (or data) after our SYN/ACK arrived with these options.
    public mutating func receivedThirdACK(_ options: [MPTCPOption], counters: inout MPTCPCounters) {
        guard role == .passive, state == .synReceived else { return }
        guard let c = Self.capable(in: options), let senderKey = c.senderKey, c.receiverKey == localKey else {
            // §3.7: the ACK lost its MP_CAPABLE (or echoes another key): plain TCP.
            state = .fallenBack(.noCapableOnACK)
            counters.fallbackNoCapableOnACK += 1
            return
        }
        remoteKey = senderKey
        checksumsRequired = checksumsRequired || c.checksumRequired
        state = .established
        counters.capableEstablished += 1
    }

    // MARK: both

    /// Options of a segment that arrived after the handshake. A DSS from the
    /// peer completes the active side (§3.1: it proves the peer has our key).
    /// `hasPayload`: a segment with data but neither DSS nor MP_CAPABLE before
    /// any mapping was ever seen means a middlebox strips options, so the
    /// connection falls back (§3.7) — only the first such segment decides.
    public mutating func receivedSegment(_ options: [MPTCPOption], hasPayload: Bool, counters: inout MPTCPCounters) {
        let hasDSS = options.contains { if case .dss = $0 { return true } else { return false } }
        let hasMapping = options.contains {
            if case let .dss(d) = $0 { return d.mapping != nil }
            if case let .capable(c) = $0 { return c.dataLevelLength != nil }
            return false
        }
        switch state {
        case .awaitingPeerDSS:
            if hasDSS {
                state = .established
                nextDeadline = .distantFuture
                counters.capableEstablished += 1
            } else if hasPayload {
                state = .fallenBack(.mappingStripped)
                counters.fallbackNoMappingOnData += 1
                nextDeadline = .distantFuture
            }
        case .established:
            if hasPayload && !hasMapping && !mappingSeen {
                state = .fallenBack(.mappingStripped)
                counters.fallbackNoMappingOnData += 1
            }
        default: break
        }
        if hasMapping { mappingSeen = true }
    }
    private var mappingSeen = false

    /// A DSS checksum failed on the only subflow and the peer agreed to fall back (§3.7).
    public mutating func fallBackAfterChecksumFailure(counters: inout MPTCPCounters) {
        state = .fallenBack(.checksumFailure)
        nextDeadline = .distantFuture
        counters.fallbackInfiniteMapping += 1
    }
}
