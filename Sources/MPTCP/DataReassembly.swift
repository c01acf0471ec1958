import Wire

/// The receive side of the connection-level data sequence: bytes arrive from
/// any subflow with their data sequence numbers, in any order and possibly
/// more than once (reinjection, redundant scheduling); they are delivered to
/// the application once, in order. The data ACK is the next data sequence
/// number expected (§3.3.2); the connection-level receive window is what is
/// left of the buffer (§3.3.4/§3.3.5).
public struct DataReassembly: Sendable {
    public struct Outcome: Hashable, Sendable {
        /// Bytes that became readable in order.
        public var newlyReadable = 0
        /// Bytes that had arrived before (harmless, counted).
        public var duplicate = 0
        /// Bytes dropped beyond the advertised window.
        public var beyondWindow = 0
        /// The DATA_FIN became in order: the peer will send nothing more.
        public var dataFINReached = false
    }

    /// The next data sequence number expected: the data ACK to send.
    public private(set) var expected: DataSequenceNumber
    /// Bytes of connection-level receive buffer (readable plus out of order).
    public let capacity: Int
    /// The largest right edge ever advertised; data up to it is accepted even
    /// after the buffer filled (§3.3.5: the window must not shrink).
    public private(set) var advertisedRightEdge: DataSequenceNumber
    public private(set) var dataFINSequenceNumber: DataSequenceNumber?
    public private(set) var dataFINReceived = false

    private var readable: [UInt8] = []
    private var readableHead = 0
    /// Out-of-order pieces beyond `expected`, sorted, never overlapping.
    private var pieces: [(start: DataSequenceNumber, bytes: [UInt8])] = []

    /// `remoteIDSN` is the peer's initial data sequence number; its first byte is IDSN + 1.
    public init(remoteIDSN: DataSequenceNumber, capacity: Int = 1 << 20) {
        expected = remoteIDSN + 1
        self.capacity = capacity
        advertisedRightEdge = remoteIDSN + 1 + capacity
    }

    public var readableBytes: Int { readable.count - readableHead }
    public var outOfOrderBytes: Int { pieces.reduce(0) { $0 + $1.bytes.count } }
    /// The window to advertise with the next data ACK (relative to `expected`).
    /// Out-of-order bytes lie inside it, so they do not shrink it (counting
    /// them twice made the right edge trail the one the sender computes from
    /// the data ACK, and bytes the subflow had acknowledged were dropped here
    /// for good); readable bytes precede `expected` and do.
    public var window: Int { max(0, capacity - readableBytes) }

    /// Computes the window for an outgoing segment and remembers its right
    /// edge. The edge never moves left (§3.3.5).
    public mutating func windowToAdvertise() -> Int {
        let edge = expected + window
        if edge > advertisedRightEdge { advertisedRightEdge = edge }
        return Int(advertisedRightEdge - expected)
    }

    /// Data for `[dataSequenceNumber, +bytes.count)` arrived on some subflow.
    public mutating func receive(_ dataSequenceNumber: DataSequenceNumber, _ bytes: [UInt8],
                                 counters: inout MPTCPCounters) -> Outcome {
        var outcome = Outcome()
        var start = dataSequenceNumber
        var data = ArraySlice(bytes)
        // Already delivered in order.
        if start < expected {
            let old = min(data.count, Int(expected - start))
            outcome.duplicate += old
            data = data.dropFirst(old)
            start = start + old
        }
        // The application may have read since the last data ACK went out: the
        // edge that ACK implied is where the window stands now, not where it
        // stood when the bytes were still unread.
        _ = windowToAdvertise()
        // RFC 8684 §3.3.5: data beyond the window's right edge is not accepted.
        let room = Int(advertisedRightEdge - start)
        if data.count > max(0, room) {
            let cut = data.count - max(0, room)
            outcome.beyondWindow += cut
            data = data.dropLast(cut)
        }
        if !data.isEmpty {
            outcome.duplicate += insert(start, data)
        }
        // Move whatever became contiguous to the readable buffer.
        while let first = pieces.first, first.start == expected {
            pieces.removeFirst()
            readable.append(contentsOf: first.bytes)
            expected = expected + first.bytes.count
            outcome.newlyReadable += first.bytes.count
        }
        outcome.dataFINReached = advanceOverDataFIN()
        counters.duplicateDataBytes += outcome.duplicate
        counters.dataBeyondWindowBytes += outcome.beyondWindow
        return outcome
    }

    /// The peer's DATA_FIN sits at `dataSequenceNumber` (§3.3.3); it is
    /// acknowledged once every byte before it has arrived.
    public mutating func receiveDataFIN(at dataSequenceNumber: DataSequenceNumber, counters: inout MPTCPCounters) -> Outcome {
        var outcome = Outcome()
        if dataFINSequenceNumber == nil {
            dataFINSequenceNumber = dataSequenceNumber
            counters.dataFINsReceived += 1
        }
        outcome.dataFINReached = advanceOverDataFIN()
        return outcome
    }

    private mutating func advanceOverDataFIN() -> Bool {
        guard let fin = dataFINSequenceNumber, !dataFINReceived, expected == fin else { return false }
        dataFINReceived = true
        expected = fin + 1
        return true
    }

    /// Takes up to `maximum` readable bytes out of the buffer (the application read).
    public mutating func read(maximum: Int = .max) -> [UInt8] {
        let count = min(maximum, readableBytes)
        let out = Array(readable[readableHead ..< readableHead + count])
        readableHead += count
        if readableHead == readable.count { readable.removeAll(keepingCapacity: true); readableHead = 0 }
        else if readableHead > 4096 && readableHead * 2 > readable.count { readable.removeFirst(readableHead); readableHead = 0 }
        return out
    }

    /// Inserts the parts of `data` that no stored piece covers; returns the
    /// number of bytes that were already there.
    private mutating func insert(_ start: DataSequenceNumber, _ data: ArraySlice<UInt8>) -> Int {
        var duplicate = 0
        var cursor = start
        let end = start + data.count
        var added: [(start: DataSequenceNumber, bytes: [UInt8])] = []
        for piece in pieces {
            let pieceEnd = piece.start + piece.bytes.count
            if pieceEnd <= cursor { continue }
            if piece.start >= end { break }
            if piece.start > cursor {
                let gapEnd = piece.start
                added.append((cursor, slice(data, from: start, cursor, gapEnd)))
            }
            let overlapEnd = min(pieceEnd, end)
            duplicate += Int(overlapEnd - max(cursor, piece.start))
            cursor = overlapEnd
            if cursor >= end { break }
        }
        if cursor < end { added.append((cursor, slice(data, from: start, cursor, end))) }
        if !added.isEmpty {
            pieces.append(contentsOf: added)
            pieces.sort { $0.start < $1.start }
        }
        return duplicate
    }

    private func slice(_ data: ArraySlice<UInt8>, from base: DataSequenceNumber,
                       _ a: DataSequenceNumber, _ b: DataSequenceNumber) -> [UInt8] {
        let lo = data.startIndex + Int(a - base)
        let hi = data.startIndex + Int(b - base)
        return Array(data[lo ..< hi])
    }
}
