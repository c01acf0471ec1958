import Wire

/// What one subflow's in-order bytes mean at the data level (Linux
/// `subflow.c`, `get_mapping_status`). The TCP engine hands over the subflow
/// stream in order with relative sequence numbers (the first data byte is 1);
/// DSS mappings arrive in options, possibly before, with or after the bytes
/// they cover (§3.3). The mapper pairs them, verifies DSS checksums when they
/// were negotiated (§3.3.1), and yields data-level pieces.
public struct SubflowDataMapper: Sendable {
    public enum Event: Hashable, Sendable {
        /// Bytes of the data sequence, ready for `DataReassembly.receive`.
        case data(DataSequenceNumber, [UInt8])
        /// The peer's DATA_FIN sits at this data sequence number.
        case dataFIN(DataSequenceNumber)
        /// The mapping starting at this data sequence number failed its
        /// checksum (§3.3.1); its bytes were dropped. See `ChecksumFailurePolicy`.
        case checksumFailed(DataSequenceNumber)
    }

    public enum MappingVerdict: Hashable, Sendable {
        case accepted
        /// The same mapping again (a retransmitted segment): harmless.
        case duplicate
        /// Covers subflow bytes already mapped, but differently. RFC 8684 §3.3:
        /// a mapping, once given, must not change; Linux resets the subflow
        /// (MPTCP_MIB_DSSNOMATCH). The caller resets with MP_TCPRST.
        case conflict
        /// The infinite mapping (§3.3.1): from here on subflow bytes map one to
        /// one onto the data sequence, and the connection has fallen back.
        case infinite
    }

    struct Mapping: Hashable {
        var subflowStart: SequenceNumber   // relative
        var length: Int                    // data bytes (DATA_FIN excluded)
        var dataSequenceNumber: DataSequenceNumber
        var checksum: UInt16?
        var dataFIN: Bool
        var subflowEnd: SequenceNumber { subflowStart + length }
    }

    public let checksumsEnabled: Bool
    /// Relative subflow sequence number of the next byte not yet turned into data.
    public private(set) var nextSubflowSequence = SequenceNumber(1)
    /// Set once an infinite mapping (or fallback) anchored the subflow to the data sequence.
    public private(set) var infiniteAnchor: (subflow: SequenceNumber, data: DataSequenceNumber)?
    private var mappings: [Mapping] = []
    /// Subflow bytes from `nextSubflowSequence` on that no mapping has claimed yet.
    private var pending: [UInt8] = []

    public init(checksumsEnabled: Bool) { self.checksumsEnabled = checksumsEnabled }

    /// Bytes received on the subflow that wait for their mapping. A driver
    /// resets the subflow if this stays above zero for long (§3.3: data
    /// without a mapping cannot be delivered).
    public var unmappedBytes: Int { pending.count }
    public var isInfinite: Bool { infiniteAnchor != nil }

    /// A DSS mapping arrived. `reference` is a nearby data sequence number
    /// (the data ACK we would send) to widen a 4-byte DSN (§3.3).
    /// `carriedAt` is the relative subflow sequence number of the segment
    /// that carried the option: an infinite mapping starts there (§3.3.1);
    /// without it, at the next subflow byte not yet turned into data.
    public mutating func receive(mapping raw: DSSMapping, dataFIN: Bool, reference: DataSequenceNumber,
                                 carriedAt: SequenceNumber? = nil, counters: inout MPTCPCounters) -> MappingVerdict {
        let dsn = raw.isEightBytes ? DataSequenceNumber(raw.dataSequenceNumber)
            : DataSequenceNumber.expand(UInt32(truncatingIfNeeded: raw.dataSequenceNumber), near: reference)
        if raw.isInfinite && !dataFIN {
            // §3.3.1: the infinite mapping covers the stream from the segment carrying it on.
            if infiniteAnchor == nil {
                let start = carriedAt.map { max($0, nextSubflowSequence) } ?? nextSubflowSequence
                infiniteAnchor = (start, dsn)
                counters.infiniteMappingsReceived += 1
            }
            return .infinite
        }
        let dataLength = Int(raw.dataLevelLength) - (dataFIN ? 1 : 0)
        if dataLength <= 0 {
            // A DATA_FIN alone (§3.3: subflow sequence 0, data-level length 1):
            // nothing on the subflow to pair with.
            guard dataFIN else { counters.mappingsInvalid += 1; return .conflict }
            let m = Mapping(subflowStart: SequenceNumber(raw.subflowSequenceNumber), length: 0,
                            dataSequenceNumber: dsn, checksum: raw.checksum, dataFIN: true)
            if mappings.contains(m) { return .duplicate }
            mappings.append(m)
            return .accepted
        }
        let m = Mapping(subflowStart: SequenceNumber(raw.subflowSequenceNumber), length: dataLength,
                        dataSequenceNumber: dsn, checksum: raw.checksum, dataFIN: dataFIN)
        if mappings.contains(m) { return .duplicate }
        if m.subflowEnd <= nextSubflowSequence {
            // Covers only bytes already turned into data: a retransmission of an old mapping.
            return .duplicate
        }
        for old in mappings where old.length > 0 {
            let lo = max(old.subflowStart, m.subflowStart), hi = min(old.subflowEnd, m.subflowEnd)
            guard lo < hi else { continue }
            // Overlap: both must put the same subflow byte at the same DSN.
            let oldDSN = old.dataSequenceNumber + (lo - old.subflowStart)
            let newDSN = m.dataSequenceNumber + (lo - m.subflowStart)
            if oldDSN != newDSN { counters.mappingsNotMatching += 1; return .conflict }
        }
        if checksumsEnabled && m.checksum == nil {
            // RFC 8684 §3.3.1: once checksums are negotiated, a DSS mapping
            // without one is a protocol error; the subflow is reset.
            counters.mappingsInvalid += 1
            return .conflict
        }
        mappings.append(m)
        mappings.sort { $0.subflowStart < $1.subflowStart }
        return .accepted
    }

    /// In-order subflow bytes starting at relative sequence `subflowSequence`
    /// (overlap with bytes already handed in is ignored). Returns the data-level
    /// events these bytes (and any mappings waiting for them) complete.
    public mutating func receive(subflowSequence: SequenceNumber, _ bytes: [UInt8],
                                 counters: inout MPTCPCounters) -> [Event] {
        let pendingEnd = nextSubflowSequence + pending.count
        if subflowSequence <= pendingEnd {
            let skip = pendingEnd - subflowSequence
            if skip < bytes.count { pending.append(contentsOf: bytes[skip...]) }
        } else {
            // A gap in an in-order stream is the caller's bug; keep what we can
            // map by restarting from the new position (the gap is lost data).
            pending = bytes
            nextSubflowSequence = subflowSequence
        }
        return drain(counters: &counters)
    }

    /// Events that are ready without new subflow bytes (a DATA_FIN alone).
    public mutating func drain(counters: inout MPTCPCounters) -> [Event] {
        var events: [Event] = []
        // Bare DATA_FINs.
        for m in mappings where m.length == 0 && m.dataFIN {
            events.append(.dataFIN(m.dataSequenceNumber))
        }
        mappings.removeAll { $0.length == 0 }
        if let anchor = infiniteAnchor, nextSubflowSequence >= anchor.subflow {
            if !pending.isEmpty {
                events.append(.data(anchor.data + (nextSubflowSequence - anchor.subflow), pending))
                nextSubflowSequence += pending.count
                pending.removeAll()
            }
            return events
        }
        while !pending.isEmpty {
            // Bytes before an infinite mapping's start keep their own mappings.
            if let anchor = infiniteAnchor, nextSubflowSequence >= anchor.subflow { return events + drain(counters: &counters) }
            // Drop mappings that lie wholly behind us.
            mappings.removeAll { $0.subflowEnd <= nextSubflowSequence }
            guard let m = mappings.first(where: { $0.subflowStart <= nextSubflowSequence && nextSubflowSequence < $0.subflowEnd })
            else { break } // not mapped yet: wait for the mapping
            let offset = nextSubflowSequence - m.subflowStart
            if checksumsEnabled, let checksum = m.checksum {
                // §3.3.1: the checksum covers the whole mapping; hold its bytes until all are here.
                guard offset == 0 else {
                    // Part of this mapping was consumed without verification; impossible
                    // unless mappings changed under us. Treat as failed.
                    counters.checksumFailures += 1
                    events.append(.checksumFailed(m.dataSequenceNumber))
                    let drop = min(pending.count, m.length - offset)
                    pending.removeFirst(drop); nextSubflowSequence += drop
                    continue
                }
                guard pending.count >= m.length else { break }
                let payload = Array(pending[0 ..< m.length])
                pending.removeFirst(m.length)
                nextSubflowSequence += m.length
                let length = UInt16(clamping: m.length + (m.dataFIN ? 1 : 0))
                let verdict = dssChecksum(dataSequenceNumber: m.dataSequenceNumber.rawValue,
                                          relativeSubflowSequenceNumber: m.subflowStart.rawValue,
                                          dataLevelLength: length, checksum: checksum, payload: payload)
                if verdict != 0 {
                    counters.checksumFailures += 1
                    events.append(.checksumFailed(m.dataSequenceNumber))
                    continue
                }
                events.append(.data(m.dataSequenceNumber, payload))
                if m.dataFIN { events.append(.dataFIN(m.dataSequenceNumber + m.length)) }
            } else {
                let count = min(pending.count, m.length - offset)
                events.append(.data(m.dataSequenceNumber + offset, Array(pending[0 ..< count])))
                pending.removeFirst(count)
                nextSubflowSequence += count
                if m.dataFIN && offset + count == m.length { events.append(.dataFIN(m.dataSequenceNumber + m.length)) }
            }
        }
        return events
    }

    /// Fallback to plain TCP (§3.7) after `subflowSequence` mapped to `dataSequenceNumber`:
    /// every later subflow byte is the next data byte.
    public mutating func fallBack(anchoredAt dataSequenceNumber: DataSequenceNumber) {
        if infiniteAnchor == nil { infiniteAnchor = (nextSubflowSequence, dataSequenceNumber) }
    }
}

/// RFC 8684 §3.7: what to do when a DSS checksum fails.
public enum ChecksumFailurePolicy {
    public enum Response: Hashable, Sendable {
        /// Other subflows can carry the data: reset this one (MP_TCPRST with
        /// reason `middleboxInterference`) and let the sender reinject.
        case resetSubflow
        /// The only subflow, and nothing outstanding elsewhere: tell the peer
        /// with MP_FAIL naming the failed mapping's DSN; the peer answers with
        /// an infinite mapping and both fall back to plain TCP on this subflow.
        case sendFailAndFallBack(DataSequenceNumber)
    }

    /// `otherSubflows` counts subflows of the connection other than the one
    /// that failed that are established.
    public static func respond(toFailureAt dataSequenceNumber: DataSequenceNumber, otherSubflows: Int) -> Response {
        otherSubflows > 0 ? .resetSubflow : .sendFailAndFallBack(dataSequenceNumber)
    }
}
