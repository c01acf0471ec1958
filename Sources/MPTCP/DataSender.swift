import Wire

/// A subflow of one MPTCP connection, as the connection level names it.
public struct SubflowID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: Int
    public init(_ rawValue: Int) { self.rawValue = rawValue }
    public static func < (a: SubflowID, b: SubflowID) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "subflow \(rawValue)" }
}

/// A piece of the data sequence handed to one subflow: `bytes` starting at
/// `dataSequenceNumber`, optionally followed by the DATA_FIN, which occupies
/// one data sequence number of its own (RFC 8684 §3.3.3).
public struct DataChunk: Hashable, Sendable {
    public var dataSequenceNumber: DataSequenceNumber
    public var bytes: [UInt8]
    public var dataFIN: Bool
    /// The chunk was sent before on a subflow that failed or went stale.
    public var isReinjection: Bool

    public init(dataSequenceNumber: DataSequenceNumber, bytes: [UInt8], dataFIN: Bool = false, isReinjection: Bool = false) {
        self.dataSequenceNumber = dataSequenceNumber; self.bytes = bytes; self.dataFIN = dataFIN
        self.isReinjection = isReinjection
    }

    /// Data-level length as DSS carries it: the DATA_FIN counts as one octet (§3.3).
    public var dataLevelLength: Int { bytes.count + (dataFIN ? 1 : 0) }
    public var end: DataSequenceNumber { dataSequenceNumber + dataLevelLength }

    /// The DSS mapping for this chunk when its first byte goes out at relative
    /// subflow sequence `subflowSequence` (first data byte of a subflow is 1).
    /// RFC 8684 §3.3: a DATA_FIN without data is mapped at subflow sequence 0.
    /// With `checksums` the DSS checksum of §3.3.1 is filled in.
    public func mapping(subflowSequence: UInt32, checksums: Bool) -> DSSMapping {
        let subflowSequence = bytes.isEmpty ? 0 : subflowSequence
        let length = UInt16(clamping: dataLevelLength)
        var checksum: UInt16?
        if checksums {
            checksum = dssChecksum(dataSequenceNumber: dataSequenceNumber.rawValue,
                                   relativeSubflowSequenceNumber: subflowSequence,
                                   dataLevelLength: length, payload: bytes)
        }
        return DSSMapping(dataSequenceNumber: dataSequenceNumber.rawValue, subflowSequenceNumber: subflowSequence,
                          dataLevelLength: length, checksum: checksum)
    }
}

/// The send side of the connection-level data sequence (Linux
/// `net/mptcp/protocol.c`): the application's bytes get data sequence
/// numbers from IDSN + 1 on; chunks go out on subflows; data ACKs release
/// them; what was outstanding on a subflow that failed is reinjected on
/// another. Data is kept until it is acknowledged at the data level, never
/// merely at the subflow level (§3.3.2: subflow ACKs say nothing about
/// delivery to the application).
public struct DataSender: Sendable {
    public struct Outcome: Hashable, Sendable {
        /// Bytes (DATA_FIN included) newly acknowledged at the data level.
        public var newlyAcknowledged = 0
        public var dataFINAcknowledged = false
    }

    /// The oldest data sequence number not yet acknowledged at the data level.
    public private(set) var unacknowledged: DataSequenceNumber
    /// The next data sequence number never sent before.
    public private(set) var nextNew: DataSequenceNumber
    /// The largest right edge of the peer's connection-level receive window
    /// (§3.3.5: data ACK plus the window of the segment carrying it).
    public private(set) var peerWindowRightEdge: DataSequenceNumber
    /// Where the DATA_FIN sits once the application closed.
    public private(set) var dataFINSequenceNumber: DataSequenceNumber?
    public private(set) var dataFINAcknowledged = false

    /// Bytes from `unacknowledged` on; `storage[head...]` is the live part.
    private var storage: [UInt8] = []
    private var head = 0
    /// Which subflow carries which unacknowledged range, for reinjection.
    private var outstanding: [(start: DataSequenceNumber, end: DataSequenceNumber, subflow: SubflowID)] = []
    /// Ranges to send again on another subflow.
    private var reinjectQueue: [(start: DataSequenceNumber, end: DataSequenceNumber)] = []

    /// `initialDataSequenceNumber` is the local IDSN; the first byte is IDSN + 1.
    /// The peer's window is unknown until its first data ACK; `initialPeerWindow`
    /// is what may be sent before (the window of the SYN/ACK).
    /// The data sequence number of the first byte (IDSN + 1).
    public let firstDataSequenceNumber: DataSequenceNumber

    public init(initialDataSequenceNumber idsn: DataSequenceNumber, initialPeerWindow: Int = 65_535) {
        firstDataSequenceNumber = idsn + 1
        unacknowledged = idsn + 1
        nextNew = idsn + 1
        peerWindowRightEdge = idsn + 1 + initialPeerWindow
    }

    /// Bytes written and not yet acknowledged at the data level.
    public var bufferedBytes: Int { storage.count - head }
    /// The end of what the application wrote (the DATA_FIN's position once closed).
    public var writtenEnd: DataSequenceNumber { unacknowledged + bufferedBytes }
    /// Bytes written but never sent.
    public var unsentBytes: Int { Int(writtenEnd - nextNew) }
    /// Data sequence numbers sent and not acknowledged (DATA_FIN included).
    public var bytesInFlight: Int { Int(nextNew - unacknowledged) }
    public var hasReinjectionPending: Bool { !reinjectQueue.isEmpty }
    /// Whether anything is waiting to go out: new data, a DATA_FIN or reinjections.
    public var hasDataToSend: Bool {
        hasReinjectionPending || unsentBytes > 0 || (dataFINSequenceNumber != nil && nextNew == writtenEnd && !dataFINSent)
    }
    private var dataFINSent: Bool { dataFINSequenceNumber.map { nextNew > $0 } ?? false }

    /// Appends application bytes. Writing after `close()` is a programming error of the caller.
    public mutating func write(_ bytes: [UInt8]) {
        precondition(dataFINSequenceNumber == nil, "write after close")
        storage.append(contentsOf: bytes)
    }

    /// The application has nothing more to send: a DATA_FIN follows the written bytes.
    public mutating func close() {
        if dataFINSequenceNumber == nil { dataFINSequenceNumber = writtenEnd }
    }

    /// The bytes of `[start, start + count)`; they must still be buffered.
    public func bytes(from start: DataSequenceNumber, count: Int) -> [UInt8] {
        let offset = Int(start - unacknowledged)
        precondition(offset >= 0 && offset + count <= bufferedBytes, "range not buffered")
        return Array(storage[head + offset ..< head + offset + count])
    }

    /// The next chunk for `subflow`, at most `maximumLength` bytes of data:
    /// reinjections first, then new data within the peer's window, with the
    /// DATA_FIN attached when the last byte goes (or alone when no data is left).
    public mutating func nextChunk(for subflow: SubflowID, maximumLength: Int) -> DataChunk? {
        guard maximumLength > 0 else { return nil }
        while let range = reinjectQueue.first {
            reinjectQueue.removeFirst()
            let start = max(range.start, unacknowledged)
            guard start < range.end else { continue } // acknowledged meanwhile
            let dataEnd = min(range.end, writtenEnd)
            let count = min(maximumLength, max(0, Int(dataEnd - start)))
            let finIncluded = dataFINSequenceNumber.map { start + count == $0 && range.end > $0 } ?? false
            if count == 0 && !finIncluded { continue }
            if start + count + (finIncluded ? 1 : 0) < range.end {
                reinjectQueue.insert((start + count, range.end), at: 0)
            }
            let chunk = DataChunk(dataSequenceNumber: start, bytes: bytes(from: start, count: count),
                                  dataFIN: finIncluded, isReinjection: true)
            record(chunk, on: subflow)
            return chunk
        }
        let window = Int(peerWindowRightEdge - nextNew)
        let count = min(maximumLength, unsentBytes, max(0, window))
        let finIncluded = dataFINSequenceNumber.map { nextNew + count == $0 } ?? false
        guard count > 0 || (finIncluded && !dataFINSent) else { return nil }
        let chunk = DataChunk(dataSequenceNumber: nextNew, bytes: bytes(from: nextNew, count: count), dataFIN: finIncluded)
        nextNew = chunk.end
        record(chunk, on: subflow)
        return chunk
    }

    /// Records that `chunk` (already handed out) is also carried by `subflow`,
    /// as the redundant scheduler does.
    public mutating func record(_ chunk: DataChunk, on subflow: SubflowID) {
        guard chunk.end > unacknowledged else { return }
        outstanding.append((max(chunk.dataSequenceNumber, unacknowledged), chunk.end, subflow))
    }

    /// A data ACK arrived (§3.3.2), with the connection-level receive window
    /// of the segment that carried it (§3.3.5), already scaled.
    public mutating func acknowledge(_ dataACK: DataSequenceNumber, window: Int?, counters: inout MPTCPCounters) -> Outcome {
        var outcome = Outcome()
        // A data ACK for data never sent is ignored, as RFC 9293 §3.10.7.4 does
        // for subflow ACKs; it must not release buffered data.
        guard dataACK <= nextNew else { counters.dataACKsInvalid += 1; return outcome }
        if let window, dataACK >= unacknowledged {
            // §3.3.5: the window is relative to the data ACK; the right edge
            // never moves left, so keep the largest seen.
            let edge = dataACK + max(0, window)
            if edge > peerWindowRightEdge { peerWindowRightEdge = edge }
        }
        guard dataACK > unacknowledged else { return outcome }
        let advance = Int(dataACK - unacknowledged)
        outcome.newlyAcknowledged = advance
        let dataAdvance = min(advance, bufferedBytes)
        head += dataAdvance
        unacknowledged = dataACK
        if head > 4096 && head * 2 > storage.count { storage.removeFirst(head); head = 0 }
        outstanding.removeAll { $0.end <= dataACK }
        if let fin = dataFINSequenceNumber, dataACK > fin, !dataFINAcknowledged {
            dataFINAcknowledged = true
            outcome.dataFINAcknowledged = true
        }
        return outcome
    }

    /// `subflow` failed or went stale: everything it carries that the data
    /// level has not acknowledged is queued to go out on another subflow.
    /// Returns the bytes queued (the data-level length, DATA_FIN included).
    @discardableResult
    public mutating func reinjectOutstanding(on subflow: SubflowID, counters: inout MPTCPCounters) -> Int {
        var queued = 0
        let ranges = outstanding.filter { $0.subflow == subflow }
        outstanding.removeAll { $0.subflow == subflow }
        for range in ranges.sorted(by: { $0.start < $1.start }) {
            let start = max(range.start, unacknowledged)
            guard start < range.end else { continue }
            // A range another live subflow also carries (redundant sending) needs no reinjection.
            if outstanding.contains(where: { $0.start <= start && $0.end >= range.end }) { continue }
            reinjectQueue.append((start, range.end))
            queued += Int(range.end - start)
        }
        reinjectQueue.sort { $0.start < $1.start }
        if queued > 0 { counters.reinjections += 1; counters.reinjectedBytes += queued }
        return queued
    }

    /// MP_FAIL named `dataSequenceNumber` (§3.7): on the one subflow left,
    /// everything from there is sent again, in order, under the infinite
    /// mapping. Outstanding ranges and reinjections are forgotten.
    public mutating func rewind(to dataSequenceNumber: DataSequenceNumber) {
        let target = max(unacknowledged, dataSequenceNumber)
        guard target < nextNew else { return }
        nextNew = target
        outstanding.removeAll()
        reinjectQueue.removeAll()
    }

    /// Every range still outstanding, with its subflow: for tests and reports.
    public var outstandingRanges: [(start: DataSequenceNumber, end: DataSequenceNumber, subflow: SubflowID)] { outstanding }
}
