import Wire

/// The sender's record of what the peer has selectively acknowledged
/// (RFC 6675 §3): disjoint, sorted ranges `[left, right)` above SND.UNA.
public struct SACKScoreboard: Sendable, Hashable {
    public private(set) var ranges: [SACKBlock] = []

    public init() {}

    public var isEmpty: Bool { ranges.isEmpty }
    public var highestSACKed: SequenceNumber? { ranges.last?.right }
    public var totalSACKedBytes: Int { ranges.reduce(0) { $0 + ($1.right - $1.left) } }

    /// Records a block the peer reported, ignoring parts at or below `cumulativeAck`
    /// and above `highData` (RFC 6675 §5: only SACK information for data that
    /// was sent is used). Returns the number of newly SACKed bytes.
    @discardableResult
    public mutating func add(_ block: SACKBlock, cumulativeAck: SequenceNumber, highData: SequenceNumber) -> Int {
        var left = block.left, right = block.right
        if left < cumulativeAck { left = cumulativeAck }
        if highData < right { right = highData }
        guard left < right else { return 0 }
        let before = totalSACKedBytes
        var merged = SACKBlock(left: left, right: right)
        var out: [SACKBlock] = []
        out.reserveCapacity(ranges.count + 1)
        var inserted = false
        for r in ranges {
            if r.right < merged.left {
                out.append(r)
            } else if merged.right < r.left {
                if !inserted { out.append(merged); inserted = true }
                out.append(r)
            } else {
                merged = SACKBlock(left: min(r.left, merged.left), right: max(r.right, merged.right))
            }
        }
        if !inserted { out.append(merged) }
        ranges = out
        return totalSACKedBytes - before
    }

    /// Forgets everything at or below the new cumulative acknowledgment.
    public mutating func acknowledge(upTo ack: SequenceNumber) {
        var i = 0
        while i < ranges.count {
            if ranges[i].right <= ack { i += 1; continue }
            if ranges[i].left < ack { ranges[i].left = ack }
            break
        }
        if i > 0 { ranges.removeFirst(i) }
    }

    public mutating func clear() { ranges.removeAll() }

    public func isSACKed(_ seq: SequenceNumber) -> Bool {
        ranges.contains { !(seq < $0.left) && seq < $0.right }
    }

    /// Bytes SACKed above `seq` and the number of SACKed ranges above it (RFC 6675 §4, IsLost).
    public func sacked(above seq: SequenceNumber) -> (bytes: Int, ranges: Int) {
        var bytes = 0, count = 0
        for r in ranges.reversed() {
            if r.right <= seq { break }
            bytes += r.right - max(r.left, seq + 1)
            count += 1
        }
        return (bytes, count)
    }

    /// RFC 6675 §4: IsLost(seq) — DupThresh discontiguous SACKed ranges, or more
    /// than (DupThresh − 1)·SMSS bytes, lie above it.
    public func isLost(_ seq: SequenceNumber, duplicateThreshold: Int, maximumSegmentSize: Int) -> Bool {
        let above = sacked(above: seq)
        return above.ranges >= duplicateThreshold || above.bytes > (duplicateThreshold - 1) * maximumSegmentSize
    }

    /// The holes between `from` and `to`: unSACKed ranges, each with the SACKed
    /// bytes and range count above it (constant across one hole).
    func holes(from: SequenceNumber, to: SequenceNumber) -> [(left: SequenceNumber, right: SequenceNumber, sackedAbove: Int, rangesAbove: Int)] {
        var out: [(SequenceNumber, SequenceNumber, Int, Int)] = []
        var cursor = from
        var bytesAbove = totalSACKedBytes
        var rangesAbove = ranges.count
        for r in ranges {
            if r.right <= cursor { bytesAbove -= r.right - r.left; rangesAbove -= 1; continue }
            if cursor < r.left {
                let end = to < r.left ? to : r.left
                if cursor < end { out.append((cursor, end, bytesAbove, rangesAbove)) }
            }
            bytesAbove -= r.right - r.left
            rangesAbove -= 1
            if cursor < r.right { cursor = r.right }
            if !(cursor < to) { return out }
        }
        if cursor < to { out.append((cursor, to, 0, 0)) }
        return out
    }
}
