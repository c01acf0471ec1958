/// Counters of one Multipath TCP connection (or a sum over many), in the
/// spirit of Linux's `MPTcpExt` MIB (`nstat -asz | grep MPTcpExt`). Every
/// decision that rejects, ignores or degrades something increments one, so
/// tests and reports can assert on what happened without reading logs.
public struct MPTCPCounters: Hashable, Sendable {
    // MP_CAPABLE (RFC 8684 §3.1)
    /// SYNs sent with MP_CAPABLE (Linux: MPCapableActive).
    public var capableSYNsSent = 0
    /// SYNs received with MP_CAPABLE (Linux: MPCapableSYNRX).
    public var capableSYNsReceived = 0
    /// Connections whose MP_CAPABLE handshake completed.
    public var capableEstablished = 0
    /// MP_CAPABLE third ACKs (or first data with MP_CAPABLE) sent again because
    /// no DSS had arrived from the peer yet.
    public var capableThirdACKRetransmissions = 0

    // Fallback to plain TCP (RFC 8684 §3.7)
    /// The peer's SYN/ACK carried no MP_CAPABLE (Linux: MPCapableFallbackSYNACK).
    public var fallbackNoCapableOnSYNACK = 0
    /// The passive side saw an ACK or data without MP_CAPABLE/DSS (Linux: MPCapableFallbackACK).
    public var fallbackNoCapableOnACK = 0
    /// The first data after the handshake came without a DSS mapping (options stripped).
    public var fallbackNoMappingOnData = 0
    /// Fallback after a DSS checksum failure with a single subflow (infinite mapping).
    public var fallbackInfiniteMapping = 0

    // MP_JOIN (RFC 8684 §3.2)
    public var joinSYNsSent = 0
    public var joinSYNsReceived = 0
    public var joinSYNACKsReceived = 0
    public var joinACKsReceived = 0
    /// Subflows that completed a join (both sides count their own).
    public var joinsEstablished = 0
    /// MP_JOIN SYN with a token no connection owns (Linux: MPJoinNoTokenFound).
    public var joinRejectedUnknownToken = 0
    /// MP_JOIN SYN/ACK whose truncated HMAC did not match (Linux: MPJoinSynAckHMacFailure).
    public var joinRejectedBadSYNACKHMAC = 0
    /// MP_JOIN third ACK whose HMAC did not match (Linux: MPJoinAckHMacFailure).
    public var joinRejectedBadACKHMAC = 0
    /// Joins refused because the connection has no room for another subflow.
    public var joinRejectedLimit = 0
    /// Join attempts given up (no SYN/ACK in time) and started afresh.
    public var joinAttemptsAbandoned = 0
    /// MP_JOIN third ACKs sent again because the fourth ACK had not arrived.
    public var joinThirdACKRetransmissions = 0

    // Data sequence (RFC 8684 §3.3)
    /// DSS checksums that did not verify (Linux: DataCsumErr).
    public var checksumFailures = 0
    /// Mappings that contradict an earlier mapping for the same subflow bytes (Linux: DSSNotMatching).
    public var mappingsNotMatching = 0
    /// Mappings whose data-level range lies outside what the connection can accept.
    public var mappingsInvalid = 0
    /// Bytes that arrived at the data level again (duplicates across subflows; harmless).
    public var duplicateDataBytes = 0
    /// Bytes dropped because they lay beyond the connection-level receive window (§3.3.5).
    public var dataBeyondWindowBytes = 0
    /// Data ACKs ignored because they acknowledged data never sent.
    public var dataACKsInvalid = 0
    public var dataFINsReceived = 0
    public var dataFINsSent = 0
    public var mpFailsSent = 0
    public var mpFailsReceived = 0
    public var infiniteMappingsSent = 0
    public var infiniteMappingsReceived = 0

    // Reinjection and subflow health
    /// Reinjections of data outstanding on a failed or stale subflow (Linux: MPTCPRetrans).
    public var reinjections = 0
    public var reinjectedBytes = 0
    /// Subflows marked stale (no progress for the configured time).
    public var staleEvents = 0
    /// Stale subflows that made progress again.
    public var staleRecoveries = 0
    public var subflowsFailed = 0

    // Addresses (RFC 8684 §3.4)
    public var addAddressesSent = 0
    public var addAddressRetransmissions = 0
    public var addAddressesReceived = 0
    public var addAddressEchoesReceived = 0
    /// ADD_ADDR whose HMAC did not verify: ignored (Linux: AddAddrDrop, MPTCP_MIB_ADDADDRDROP).
    public var addAddressBadHMAC = 0
    public var removeAddressesSent = 0
    public var removeAddressesReceived = 0
    public var priorityChangesSent = 0
    public var priorityChangesReceived = 0

    // Closing (RFC 8684 §3.5, §3.6)
    public var fastClosesSent = 0
    public var fastClosesReceived = 0
    /// MP_FASTCLOSE with a key that is not ours: ignored.
    public var fastClosesBadKey = 0
    public var resetsSent = 0
    public var resetsReceived = 0

    // Robustness
    /// MPTCP options that failed to parse (counted, never trapped).
    public var malformedOptions = 0
    /// Options that were well formed but not acceptable in the state they arrived in.
    public var unexpectedOptions = 0
    /// Segments TCP refused (out of window, inexact RST, SYN, PAWS…): their MPTCP options were ignored.
    public var segmentsRefusedByTCP = 0
    /// Subflows reset after a DSS checksum failure with others left (§3.7).
    public var checksumFailureResets = 0
    /// Plain TCP SYNs accepted by a listener that then ran plain TCP (§3.7, passive fallback).
    public var fallbackPassive = 0
    /// Times the data level had to probe a closed connection-level window (§3.3.4).
    public var dataWindowProbes = 0
    /// DATA_FINs sent again by their own timer (§3.3.3).
    public var dataFINRetransmissions = 0
    /// Periods with no usable subflow at all (make-after-break) that began.
    public var outagesStarted = 0
    /// Connections closed because no subflow returned within the outage timeout.
    public var outageTimeouts = 0

    public init() {}

    /// Adds every counter of `other` (per-subflow counters into the connection's).
    public mutating func add(_ other: MPTCPCounters) {
        capableSYNsSent += other.capableSYNsSent
        capableSYNsReceived += other.capableSYNsReceived
        capableEstablished += other.capableEstablished
        capableThirdACKRetransmissions += other.capableThirdACKRetransmissions
        fallbackNoCapableOnSYNACK += other.fallbackNoCapableOnSYNACK
        fallbackNoCapableOnACK += other.fallbackNoCapableOnACK
        fallbackNoMappingOnData += other.fallbackNoMappingOnData
        fallbackInfiniteMapping += other.fallbackInfiniteMapping
        joinSYNsSent += other.joinSYNsSent
        joinSYNsReceived += other.joinSYNsReceived
        joinSYNACKsReceived += other.joinSYNACKsReceived
        joinACKsReceived += other.joinACKsReceived
        joinsEstablished += other.joinsEstablished
        joinRejectedUnknownToken += other.joinRejectedUnknownToken
        joinRejectedBadSYNACKHMAC += other.joinRejectedBadSYNACKHMAC
        joinRejectedBadACKHMAC += other.joinRejectedBadACKHMAC
        joinRejectedLimit += other.joinRejectedLimit
        joinAttemptsAbandoned += other.joinAttemptsAbandoned
        joinThirdACKRetransmissions += other.joinThirdACKRetransmissions
        checksumFailures += other.checksumFailures
        mappingsNotMatching += other.mappingsNotMatching
        mappingsInvalid += other.mappingsInvalid
        duplicateDataBytes += other.duplicateDataBytes
        dataBeyondWindowBytes += other.dataBeyondWindowBytes
        dataACKsInvalid += other.dataACKsInvalid
        dataFINsReceived += other.dataFINsReceived
        dataFINsSent += other.dataFINsSent
        mpFailsSent += other.mpFailsSent
        mpFailsReceived += other.mpFailsReceived
        infiniteMappingsSent += other.infiniteMappingsSent
        infiniteMappingsReceived += other.infiniteMappingsReceived
        reinjections += other.reinjections
        reinjectedBytes += other.reinjectedBytes
        staleEvents += other.staleEvents
        staleRecoveries += other.staleRecoveries
        subflowsFailed += other.subflowsFailed
        addAddressesSent += other.addAddressesSent
        addAddressRetransmissions += other.addAddressRetransmissions
        addAddressesReceived += other.addAddressesReceived
        addAddressEchoesReceived += other.addAddressEchoesReceived
        addAddressBadHMAC += other.addAddressBadHMAC
        removeAddressesSent += other.removeAddressesSent
        removeAddressesReceived += other.removeAddressesReceived
        priorityChangesSent += other.priorityChangesSent
        priorityChangesReceived += other.priorityChangesReceived
        fastClosesSent += other.fastClosesSent
        fastClosesReceived += other.fastClosesReceived
        fastClosesBadKey += other.fastClosesBadKey
        resetsSent += other.resetsSent
        resetsReceived += other.resetsReceived
        malformedOptions += other.malformedOptions
        unexpectedOptions += other.unexpectedOptions
        outagesStarted += other.outagesStarted
        outageTimeouts += other.outageTimeouts
        segmentsRefusedByTCP += other.segmentsRefusedByTCP
        checksumFailureResets += other.checksumFailureResets
        fallbackPassive += other.fallbackPassive
        dataWindowProbes += other.dataWindowProbes
        dataFINRetransmissions += other.dataFINRetransmissions
    }

}
