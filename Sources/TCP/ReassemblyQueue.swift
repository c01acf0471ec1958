import Wire

/// Out-of-order data held above RCV.NXT until the gap before it is filled,
/// and the SACK blocks that describe it (RFC 2018 §4).
struct ReassemblyQueue: Sendable {
    struct Run: Sendable {
        var start: SequenceNumber
        var bytes: [UInt8]
        /// When this run last grew, to order SACK blocks by recency.
        var touched: UInt64
        var end: SequenceNumber { start + bytes.count }
    }
    private(set) var runs: [Run] = []
    private var clock: UInt64 = 0

    var isEmpty: Bool { runs.isEmpty }
    var bufferedBytes: Int { runs.reduce(0) { $0 + $1.bytes.count } }

    /// Stores `bytes` starting at `seq` (which is above `rcvNxt`), merging with
    /// neighbouring runs. Overlaps keep the bytes already held. Runs grow in
    /// place, so appending in-order data to a run costs only the new bytes.
    mutating func insert(_ bytes: ArraySlice<UInt8>, at seq: SequenceNumber) {
        guard !bytes.isEmpty else { return }
        clock += 1
        let end = seq + bytes.count
        var i = 0
        while i < runs.count && runs[i].end < seq { i += 1 }
        if i == runs.count || end < runs[i].start {
            runs.insert(Run(start: seq, bytes: Array(bytes), touched: clock), at: i)
            return
        }
        // The new data overlaps or touches run i.
        if seq < runs[i].start {
            let prefix = bytes.prefix(runs[i].start - seq)
            runs[i].bytes.insert(contentsOf: prefix, at: 0)
            runs[i].start = seq
        }
        if runs[i].end < end {
            let suffixStart = bytes.startIndex + (runs[i].end - seq)
            runs[i].bytes.append(contentsOf: bytes[suffixStart...])
        }
        runs[i].touched = clock
        // Swallow following runs the grown run now reaches.
        while i + 1 < runs.count && !(runs[i].end < runs[i + 1].start) {
            let next = runs.remove(at: i + 1)
            if runs[i].end < next.end {
                runs[i].bytes.append(contentsOf: next.bytes[(runs[i].end - next.start)...])
            }
        }
    }

    /// Removes and returns the run that now starts at or below `rcvNxt`, trimmed to begin at it.
    mutating func popContiguous(at rcvNxt: SequenceNumber) -> [UInt8]? {
        guard let first = runs.first, !(rcvNxt < first.start) else { return nil }
        runs.removeFirst()
        if !(rcvNxt < first.end) { return popContiguous(at: rcvNxt) ?? [] }
        return Array(first.bytes[(rcvNxt - first.start)...])
    }

    /// Up to `limit` SACK blocks: the most recently changed run first (RFC 2018 §4).
    func sackBlocks(limit: Int) -> [SACKBlock] {
        runs.sorted { $0.touched > $1.touched }.prefix(limit).map { SACKBlock(left: $0.start, right: $0.end) }
    }
}
