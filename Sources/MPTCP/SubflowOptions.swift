import Core
import TCP
import Wire

/// The MPTCP side of one subflow, installed as the TCP engine's option
/// extension (Linux `options.c`: parse, decide, emit). It writes the
/// handshake options, a DSS (data ACK and the mapping of the payload) on
/// every segment, and queued signals; it records what arrives for the
/// connection level to act on. It never changes what TCP does: sequence
/// checks and RFC 5961 protections stay the engine's.
public struct SubflowOptions: TCPOptionExtension {
    public enum Handshake: Sendable {
        case capable(CapableHandshake)
        case joinInitiator(JoinInitiator)
        case joinResponder(JoinResponder)
    }

    /// One segment that arrived, as the connection level needs it.
    public struct Arrival: Sendable {
        public var options: [MPTCPOption]
        public var flags: TCPFlags
        public var hasPayload: Bool
        /// The TCP-level window field, scaled by the connection level if needed.
        public var window: UInt16
        /// Relative subflow sequence number of the segment (first data byte is 1).
        public var subflowSequence = SequenceNumber(0)
    }

    public var handshake: Handshake
    public var checksums = false
    /// The data ACK to put in every DSS; nil until the data level exists.
    public var dataACK: DataSequenceNumber?
    /// The clock of the current engine call (the engine does not pass one to extensions).
    public var now: Instant = .zero
    /// The option for our SYN/ACK (passive MP_CAPABLE), decided when the SYN arrived.
    public var synAckOption: MPTCPOption?
    /// The subflow fell back to plain TCP: no more MPTCP options.
    public var fallenBack = false
    public private(set) var localISN: SequenceNumber?
    public private(set) var remoteISN: SequenceNumber?
    /// Options to send on the next segment (ADD_ADDR, echoes, MP_PRIO, REMOVE_ADDR, MP_FAIL…).
    public var signals: [MPTCPOption] = []
    /// Segments that arrived since the connection level last looked.
    public var arrivals: [Arrival] = []
    public var counters = MPTCPCounters()
    /// Outgoing mappings: the chunk whose first byte is at relative subflow sequence `start`.
    private(set) var mappings: [(start: SequenceNumber, chunk: DataChunk)] = []
    /// A DATA_FIN with no data, to ride on the next segment.
    public var bareDataFIN: DataChunk?
    /// The connection-level receive window to advertise (§3.3.4), relative
    /// to `dataACK`; nil leaves the engine's own window.
    public var connectionWindow: Int?
    /// After a fallback caused by a checksum failure (§3.7): the infinite
    /// mapping naming where our stream becomes plain TCP. It rides on every
    /// segment that starts at `start` (relative) until `confirmed`.
    public var infiniteMapping: (start: SequenceNumber, dataSequenceNumber: DataSequenceNumber)?
    public var infiniteMappingConfirmed = false
    /// A segment arrived and the engine has not (yet) accepted it.
    private var unjudged = false

    public init(handshake: Handshake) { self.handshake = handshake }

    /// DSS with an 8-byte data ACK, an 8-byte DSN and a checksum: 28 bytes.
    public var reservedOptionBytes: Int { fallenBack && !sendsInfiniteMapping ? 0 : 28 }

    var sendsInfiniteMapping: Bool { infiniteMapping != nil && !infiniteMappingConfirmed }

    public var receiveWindowLimit: Int? { connectionWindow }

    /// Segments end where a mapping ends, so no segment (a retransmission
    /// above all) carries bytes of two mappings under one DSS (§3.3).
    public func payloadLimit(at sequence: SequenceNumber) -> Int? {
        guard let localISN, !fallenBack else { return nil }
        let relative = SequenceNumber(sequence.rawValue &- localISN.rawValue)
        guard let m = mappings.first(where: { !$0.chunk.bytes.isEmpty && $0.start <= relative && relative < $0.start + $0.chunk.bytes.count })
        else { return nil }
        return (m.start + m.chunk.bytes.count) - relative
    }

    /// A pure ACK after the handshake carries a DSS with the 8-byte data ACK
    /// alone (12 bytes), which leaves a SACK block room beside timestamps;
    /// a bare DATA_FIN or handshake option still needs the full reservation.
    public var reservedOptionBytesWithoutPayload: Int {
        if fallenBack { return 0 }
        guard bareDataFIN == nil, signals.isEmpty else { return reservedOptionBytes }
        switch handshake {
        case let .capable(c) where c.isMultipath && c.state != .awaitingPeerDSS: return 12
        case let .joinInitiator(j) where j.state == .established: return 12
        case let .joinResponder(j) where j.state == .established: return 12
        default: return reservedOptionBytes
        }
    }

    /// The connection level gave this subflow `chunk`, written at relative sequence `start`.
    public mutating func map(_ chunk: DataChunk, at start: SequenceNumber) {
        mappings.append((start, chunk))
    }

    /// Forget mappings wholly acknowledged at the subflow level (relative `acked`).
    public mutating func pruneMappings(below acked: SequenceNumber) {
        mappings.removeAll { $0.start + $0.chunk.bytes.count <= acked && !$0.chunk.bytes.isEmpty }
    }

    /// A retransmission starting at `sequence` stops at the end of the chunk
    /// it starts in, so that it carries that chunk's mapping and no byte of
    /// the next one (RFC 8684 §3.3.1: a mapping covers contiguous bytes of
    /// one segment run; a byte whose mapping never arrives is lost for good
    /// once the subflow has acknowledged it).
    public func retransmissionPayloadLimit(startingAt sequence: SequenceNumber) -> Int? {
        let relative = SequenceNumber(sequence.rawValue &- (localISN?.rawValue ?? 0))
        guard let m = mappings.first(where: { $0.start <= relative && relative < $0.start + $0.chunk.bytes.count }) else { return nil }
        return m.start + m.chunk.bytes.count - relative
    }

    public var canSendData: Bool {
        switch handshake {
        case let .capable(c): return c.isMultipath || c.fallbackReason != nil
        case let .joinInitiator(j): return j.canSendData
        case let .joinResponder(j): return j.canSendData
        }
    }

    public mutating func options(for segment: TCPSegment, purpose: TCPSegmentPurpose, room: Int, state: TCPState) -> [TCPOption] {
        if purpose == .syn || purpose == .synAck { localISN = segment.sequenceNumber }
        if segment.flags.contains(.rst) { return [] }
        if fallenBack {
            // §3.7: after MP_FAIL the stream goes on unmapped from here; the
            // infinite mapping (length 0, subflow sequence 0, checksum 0) says so.
            guard let infinite = infiniteMapping, !infiniteMappingConfirmed else { return [] }
            let relative = SequenceNumber(segment.sequenceNumber.rawValue &- (localISN?.rawValue ?? 0))
            if relative < infinite.start {
                // Bytes written before the fallback keep their own mappings.
                guard !segment.payload.isEmpty,
                      let first = mappings.first(where: { $0.start <= relative && relative < $0.start + max($0.chunk.bytes.count, 1) })
                else { return [] }
                let dss = DataSequenceSignal(dataACK: dataACK?.rawValue,
                                             mapping: first.chunk.mapping(subflowSequence: first.start.rawValue, checksums: checksums),
                                             dataFIN: first.chunk.dataFIN)
                return [.mptcp(.dss(dss))]
            }
            guard relative == infinite.start else { return [] }
            counters.infiniteMappingsSent += 1
            let mapping = DSSMapping(dataSequenceNumber: infinite.dataSequenceNumber.rawValue, subflowSequenceNumber: 0,
                                     dataLevelLength: 0, checksum: checksums ? 0 : nil)
            return [.mptcp(.dss(DataSequenceSignal(dataACK: dataACK?.rawValue, mapping: mapping)))]
        }
        var out: [MPTCPOption] = []
        var left = room
        func add(_ option: MPTCPOption) -> Bool {
            guard option.encodedLength <= left else { return false }
            out.append(option); left -= option.encodedLength
            return true
        }
        switch (purpose, handshake) {
        case (.syn, var .capable(c)):
            _ = add(c.synOption(counters: &counters)); handshake = .capable(c)
            return out.map { .mptcp($0) }
        case (.syn, var .joinInitiator(j)):
            _ = add(j.synOption(counters: &counters)); handshake = .joinInitiator(j)
            return out.map { .mptcp($0) }
        case (.synAck, .capable):
            if let synAckOption { _ = add(synAckOption) }
            return out.map { .mptcp($0) }
        case (.synAck, let .joinResponder(j)):
            _ = add(j.synAckOption)
            return out.map { .mptcp($0) }
        default: break
        }
        let relative = SequenceNumber(segment.sequenceNumber.rawValue &- (localISN?.rawValue ?? 0))
        let firstChunk = mappings.first { $0.start <= relative && relative < $0.start + max($0.chunk.bytes.count, 1) }
        var mappingSent = false
        if case var .capable(c) = handshake, c.state == .awaitingPeerDSS {
            // §3.1: the MP_CAPABLE ACK form until the peer's DSS; on the first data, the data form.
            // The data form maps its bytes at IDSN + 1: only for the connection's
            // first byte. A join may have carried that already; then a DSS maps them.
            if !segment.payload.isEmpty, relative == SequenceNumber(1), let first = firstChunk,
               let keys = c.keys, first.chunk.dataSequenceNumber == keys.localIDSN + 1 {
                if let option = c.optionForOutgoing(firstData: first.chunk, now: now), add(option) { mappingSent = true }
            } else if segment.payload.isEmpty, let option = c.optionForOutgoing(firstData: nil, now: now) {
                _ = add(option)
            }
            handshake = .capable(c)
        }
        if case let .joinInitiator(j) = handshake, j.state == .awaitingFourthACK, segment.payload.isEmpty,
           let third = j.thirdACKOption {
            _ = add(third)
        }
        let handshakeDone: Bool
        switch handshake {
        case let .capable(c): handshakeDone = c.isMultipath
        case let .joinInitiator(j): handshakeDone = j.state == .established || j.state == .awaitingFourthACK
        case let .joinResponder(j): handshakeDone = j.state == .established
        }
        if handshakeDone {
            var mapping: DSSMapping?
            var dataFIN = false
            if !segment.payload.isEmpty, !mappingSent, let first = firstChunk {
                mapping = first.chunk.mapping(subflowSequence: first.start.rawValue, checksums: checksums)
                dataFIN = first.chunk.dataFIN
            } else if segment.payload.isEmpty, let fin = bareDataFIN {
                mapping = fin.mapping(subflowSequence: 0, checksums: checksums)
                dataFIN = true
                counters.dataFINsSent += 1
            }
            let dss = DataSequenceSignal(dataACK: dataACK?.rawValue, mapping: mapping, dataFIN: dataFIN)
            if (dss.dataACK != nil || dss.mapping != nil) && add(.dss(dss)) && dataFIN && segment.payload.isEmpty {
                bareDataFIN = nil
            }
        }
        var rest: [MPTCPOption] = []
        for signal in signals where !add(signal) { rest.append(signal) }
        signals = rest
        return out.map { .mptcp($0) }
    }

    public mutating func received(_ segment: TCPSegment, state: TCPState) {
        let options = MPTCPOptionReader.options(of: segment)
        if segment.flags.contains(.syn) && state.isSynchronized {
            // RFC 5961 §4.2: a SYN on a synchronized subflow changes nothing.
            settleRefused()
            unjudged = true
            return
        }
        if segment.flags.contains(.syn) {
            remoteISN = segment.sequenceNumber
            if segment.flags.contains(.ack) {
                switch handshake {
                case var .capable(c):
                    c.receivedSYNACK(options, now: now, counters: &counters)
                    fallenBack = c.fallbackReason != nil
                    handshake = .capable(c)
                case var .joinInitiator(j):
                    _ = j.receivedSYNACK(options, now: now, counters: &counters)
                    handshake = .joinInitiator(j)
                case .joinResponder: break
                }
            }
            return
        }
        settleRefused()
        unjudged = true
    }

    /// Counts a segment the engine refused (blind injection, RFC 5961): its
    /// options were never looked at. Called after each engine call.
    public mutating func settleRefused() {
        if unjudged { counters.segmentsRefusedByTCP += 1 }
        unjudged = false
    }

    /// The engine accepted the segment (RFC 5961 checks passed): only now do
    /// its MPTCP options count.
    public mutating func accepted(_ segment: TCPSegment, state: TCPState) {
        guard !segment.flags.contains(.syn) else { return }
        unjudged = false
        let options = MPTCPOptionReader.options(of: segment)
        let relative = SequenceNumber(segment.sequenceNumber.rawValue &- (remoteISN?.rawValue ?? 0))
        // After a handshake fallback the peer sends no options worth reading.
        // After MP_FAIL (an infinite mapping of ours exists) the peer keeps
        // mapping until its own infinite mapping, so arrivals still count.
        guard !fallenBack || infiniteMapping != nil else { return }
        if fallenBack {
            arrivals.append(Arrival(options: options, flags: segment.flags, hasPayload: !segment.payload.isEmpty,
                                    window: segment.window, subflowSequence: relative))
            return
        }
        switch handshake {
        case var .capable(c):
            if c.role == .passive && c.state == .synReceived && segment.flags.contains(.ack) {
                c.receivedThirdACK(options, counters: &counters)
            } else {
                c.receivedSegment(options, hasPayload: !segment.payload.isEmpty, counters: &counters)
            }
            if c.fallbackReason != nil { fallenBack = true }
            handshake = .capable(c)
        case var .joinInitiator(j):
            // §3.2: any ACK from B after our third ACK is the fourth ACK.
            if j.state == .awaitingFourthACK && segment.flags.contains(.ack) { j.receivedFourthACK(counters: &counters) }
            handshake = .joinInitiator(j)
        case var .joinResponder(j):
            if j.state == .synReceived && segment.flags.contains(.ack) { j.receivedThirdACK(options, counters: &counters) }
            handshake = .joinResponder(j)
        }
        arrivals.append(Arrival(options: options, flags: segment.flags, hasPayload: !segment.payload.isEmpty,
                                window: segment.window, subflowSequence: relative))
    }

    /// A join that must be refused (bad HMAC, no MP_JOIN): the RST's MP_TCPRST.
    public var rejection: JoinRejection? {
        switch handshake {
        case let .joinInitiator(j): if case let .rejected(r) = j.state { return r }
        case let .joinResponder(j): if case let .rejected(r) = j.state { return r }
        case .capable: break
        }
        return nil
    }
}
