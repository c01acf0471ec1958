import Core

/// A Mahimahi packet-delivery trace, read as Mahimahi writes it: one line per
/// delivery opportunity, each line a whole number of milliseconds since the
/// start, never decreasing; a line repeated means several opportunities in
/// the same millisecond. Each opportunity carries up to `bytesPerOpportunity`
/// (1500) bytes. Cyclic traces repeat with a period of the last timestamp.
public struct MahimahiTrace: Hashable, Sendable {
    /// Opportunity times in milliseconds, non-decreasing.
    public let opportunities: [Int64]
    /// Whether the trace starts over after its last line (Mahimahi's default).
    public var isCyclic: Bool
    public var bytesPerOpportunity: Int

    /// The length of one cycle: the last timestamp.
    public var period: Interval { .milliseconds(Int(opportunities.last ?? 0)) }

    public init(milliseconds: [Int64], cyclic: Bool = true, bytesPerOpportunity: Int = 1500) throws(TraceError) {
        guard !milliseconds.isEmpty else { throw TraceError(file: nil, line: 1, column: 1, message: "the trace has no delivery opportunities") }
        for i in milliseconds.indices {
            guard milliseconds[i] >= 0 else { throw TraceError(file: nil, line: i + 1, column: 1, message: "a timestamp is negative") }
            if i > 0, milliseconds[i] < milliseconds[i - 1] {
                throw TraceError(file: nil, line: i + 1, column: 1,
                                 message: "timestamp \(milliseconds[i]) is earlier than the line before (\(milliseconds[i - 1]))")
            }
        }
        if cyclic, milliseconds.last! == 0 {
            throw TraceError(file: nil, line: milliseconds.count, column: 1,
                             message: "a repeating trace must end after 0 ms (its last timestamp is its period)")
        }
        guard bytesPerOpportunity > 0 else { throw TraceError(file: nil, line: 1, column: 1, message: "an opportunity must carry at least one byte") }
        self.opportunities = milliseconds; self.isCyclic = cyclic; self.bytesPerOpportunity = bytesPerOpportunity
    }

    /// Parses a trace file's text. Blank lines are skipped; anything else that is
    /// not a whole number of milliseconds is an error naming its line and column.
    public static func parse(_ text: String, file: String? = nil, cyclic: Bool = true,
                             bytesPerOpportunity: Int = 1500) throws(TraceError) -> MahimahiTrace {
        var values: [Int64] = []
        var lineNumber = 0
        var previous: Int64 = 0
        // "\r\n" is one Character in Swift, so split on either.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine[...]
            var column = 1
            var start = line.startIndex
            while start < line.endIndex, line[start] == " " || line[start] == "\t" {
                start = line.index(after: start); column += 1
            }
            var end = line.endIndex
            while end > start, line[line.index(before: end)] == " " || line[line.index(before: end)] == "\t" {
                end = line.index(before: end)
            }
            let token = line[start..<end]
            if token.isEmpty { continue }
            guard token.allSatisfy({ $0.isASCII && $0.isNumber }), token.count <= 15, let ms = Int64(token) else {
                throw TraceError(file: file, line: lineNumber, column: column,
                                 message: "expected a whole number of milliseconds, found '\(token)'")
            }
            if !values.isEmpty, ms < previous {
                throw TraceError(file: file, line: lineNumber, column: column,
                                 message: "timestamp \(ms) is earlier than the one before it (\(previous)); a trace never goes back in time")
            }
            values.append(ms)
            previous = ms
        }
        guard !values.isEmpty else {
            throw TraceError(file: file, line: max(lineNumber, 1), column: 1, message: "the trace has no delivery opportunities")
        }
        if cyclic, values.last! == 0 {
            throw TraceError(file: file, line: lineNumber, column: 1,
                             message: "a repeating trace must end after 0 ms (its last timestamp is its period)")
        }
        do {
            return try MahimahiTrace(milliseconds: values, cyclic: cyclic, bytesPerOpportunity: bytesPerOpportunity)
        } catch {
            throw TraceError(file: file, line: error.line, column: error.column, message: error.message)
        }
    }

    /// Offset from the trace's start of opportunity number `k` (0-based, across
    /// cycles), or `nil` past the end of a non-cyclic trace.
    public func offset(ofOpportunity k: Int) -> Interval? {
        let n = opportunities.count
        if !isCyclic { return k < n ? .milliseconds(Int(opportunities[k])) : nil }
        let cycle = Int64(k / n)
        return .milliseconds(Int(cycle * opportunities[n - 1] + opportunities[k % n]))
    }

    /// The first opportunity at or after `offset` from the trace's start.
    public func firstOpportunity(atOrAfter offset: Interval) -> Int {
        let n = opportunities.count
        guard offset > .zero else { return 0 }
        // Whole milliseconds, rounded up: an opportunity at 3 ms is not usable at 3.2 ms.
        let ms = (offset.nanoseconds + 999_999) / 1_000_000
        let cycle: Int64
        let within: Int64
        if isCyclic {
            cycle = ms / opportunities[n - 1]
            within = ms % opportunities[n - 1]
        } else {
            cycle = 0; within = ms
        }
        // First index with opportunities[i] >= within.
        var lo = 0, hi = n
        while lo < hi {
            let mid = (lo + hi) / 2
            if opportunities[mid] < within { lo = mid + 1 } else { hi = mid }
        }
        if !isCyclic { return lo }
        // `lo == n` means the next cycle's first opportunity. The last line of a
        // cycle lies at the same instant as the next cycle's start, so step back
        // over any opportunity that is not before the offset.
        var k = Int(cycle) * n + lo
        while k > 0, let t = self.offset(ofOpportunity: k - 1), t.nanoseconds >= ms * 1_000_000 { k -= 1 }
        return k
    }
}

/// A trace that did not read, with where.
public struct TraceError: Error, Hashable, Sendable, CustomStringConvertible {
    public var file: String?
    public var line: Int
    public var column: Int
    public var message: String
    public init(file: String?, line: Int, column: Int, message: String) {
        self.file = file; self.line = line; self.column = column; self.message = message
    }
    public var description: String { "\(file ?? "trace"):\(line):\(column): \(message)" }
}

/// A bottleneck whose delivery opportunities come from a Mahimahi trace.
///
/// At each opportunity up to `bytesPerOpportunity` bytes leave the queue; a
/// packet larger than what is left continues in the next opportunity, and
/// capacity nobody used is lost (Mahimahi's semantics). The trace's time zero
/// is `origin`.
public struct TraceLink<Packet: LinkPacket>: LinkStage {
    public let trace: MahimahiTrace
    public let origin: Instant
    public var queue: PacketQueue<Packet>

    /// The packet partly carried, and how many of its bytes are still to go.
    @usableFromInline var inTransit: (packet: Packet, bytesLeft: Int)?
    /// The next opportunity not yet used or passed.
    @usableFromInline var nextOpportunity = 0
    @usableFromInline var ready = PacketFIFO<(Packet, Instant)>()
    @usableFromInline var drops: [Dropped<Packet>] = []
    /// Opportunities used so far (for tests and statistics).
    public private(set) var opportunitiesUsed = 0

    public init(trace: MahimahiTrace, origin: Instant, queue: PacketQueue<Packet> = PacketQueue()) {
        self.trace = trace; self.origin = origin; self.queue = queue
    }

    @usableFromInline func time(ofOpportunity k: Int) -> Instant {
        trace.offset(ofOpportunity: k).map { origin + $0 } ?? .distantFuture
    }

    var isBusy: Bool { inTransit != nil || !queue.isEmpty }

    /// Uses every opportunity up to `now` while there is something to carry.
    @usableFromInline mutating func advance(to now: Instant) {
        while isBusy {
            let t = time(ofOpportunity: nextOpportunity)
            guard t <= now else { break }
            useOpportunity(at: t)
        }
        drops.append(contentsOf: queue.drainDrops())
    }

    mutating func useOpportunity(at t: Instant) {
        nextOpportunity += 1
        opportunitiesUsed += 1
        var budget = trace.bytesPerOpportunity
        while budget > 0 {
            if inTransit == nil {
                guard let p = queue.dequeue(now: t) else { break }
                inTransit = (p, p.byteCount)
            }
            let (p, left) = inTransit!
            if left <= budget {
                budget -= left
                ready.append((p, t))
                inTransit = nil
            } else {
                inTransit = (p, left - budget)
                budget = 0
            }
        }
    }

    public mutating func enqueue(_ packet: Packet, now: Instant) {
        advance(to: now)
        if !isBusy {
            // Opportunities that passed while the link was idle are gone.
            nextOpportunity = max(nextOpportunity, trace.firstOpportunity(atOrAfter: now - origin))
        }
        queue.enqueue(packet, now: now)
        drops.append(contentsOf: queue.drainDrops())
    }

    public mutating func dequeue(now: Instant) -> Packet? {
        while true {
            if let head = ready.first, head.1 <= now { return ready.removeFirst().0 }
            guard isBusy, time(ofOpportunity: nextOpportunity) <= now else { return nil }
            useOpportunity(at: time(ofOpportunity: nextOpportunity))
            drops.append(contentsOf: queue.drainDrops())
        }
    }

    public var nextEventTime: Instant {
        if let head = ready.first { return head.1 }
        return isBusy ? time(ofOpportunity: nextOpportunity) : .distantFuture
    }

    public mutating func flush(now: Instant, reason: DropReason) {
        advance(to: now)
        if let t = inTransit { drops.append(Dropped(packet: t.packet, at: now, reason: reason)); inTransit = nil }
        queue.flush(now: now, reason: reason)
        drops.append(contentsOf: queue.drainDrops())
    }

    public mutating func drainDrops() -> [Dropped<Packet>] {
        if drops.isEmpty { return [] }
        let d = drops
        drops = []
        return d
    }
}
