import Core

/// What a scheduler may know about one subflow at the moment it decides
/// (Linux `mptcp_subflow_context` fields a `struct mptcp_sched_ops` reads).
public struct SubflowSnapshot: Hashable, Sendable {
    public var id: SubflowID
    /// Smoothed RTT (RFC 6298), nil before the first sample.
    public var smoothedRTT: Interval?
    public var rttVariation: Interval?
    /// Congestion window and bytes in flight, in bytes.
    public var congestionWindow: Int
    public var bytesInFlight: Int
    public var maximumSegmentSize: Int
    /// Either side asked for this subflow to be a backup (MP_JOIN B flag or MP_PRIO, §3.3.8).
    public var isBackup: Bool
    /// Established (and past the fourth ACK for joins), not failed, not stale.
    public var isUsable: Bool
    /// No progress for a while but not yet declared stale: suspect.
    public var isSuspect: Bool

    public init(id: SubflowID, smoothedRTT: Interval?, rttVariation: Interval? = nil, congestionWindow: Int,
                bytesInFlight: Int, maximumSegmentSize: Int = 1400, isBackup: Bool = false, isUsable: Bool = true,
                isSuspect: Bool = false) {
        self.id = id; self.smoothedRTT = smoothedRTT; self.rttVariation = rttVariation
        self.congestionWindow = congestionWindow; self.bytesInFlight = bytesInFlight
        self.maximumSegmentSize = maximumSegmentSize; self.isBackup = isBackup; self.isUsable = isUsable
        self.isSuspect = isSuspect
    }

    /// Room left in the congestion window.
    public var space: Int { max(0, congestionWindow - bytesInFlight) }
    public var hasSpace: Bool { space > 0 }
    /// RTT used for ranking: unknown RTTs rank last but still usable.
    var rankRTT: Interval { smoothedRTT ?? .seconds(1) }
}

/// A packet scheduler (Linux `net/mptcp/sched.c`): given the subflows, which
/// ones the next chunk goes on. An empty answer means "wait" (every eligible
/// subflow is full, or a better one is worth waiting for).
public protocol PacketScheduler: Sendable {
    var name: String { get }
    /// `queuedBytes` is what the connection still has to send (for ECF).
    mutating func subflows(for subflows: [SubflowSnapshot], queuedBytes: Int) -> [SubflowID]
}

/// Builds a scheduler from its name, as the command line and configs spell it.
public enum Schedulers {
    public static let names = ["min-rtt", "round-robin", "redundant", "backup-aware", "ecf"]
    public static let defaultName = "min-rtt"

    public static func make(_ name: String) -> (any PacketScheduler)? {
        switch name {
        case "min-rtt": return MinRTTScheduler()
        case "round-robin": return RoundRobinScheduler()
        case "redundant": return RedundantScheduler()
        case "backup-aware": return BackupAwareScheduler()
        case "ecf": return ECFScheduler()
        default: return nil
        }
    }

    /// RFC 8684 §3.3.8: backup subflows are used only when no regular one can be.
    static func eligible(_ subflows: [SubflowSnapshot]) -> [SubflowSnapshot] {
        let usable = subflows.filter(\.isUsable)
        let regular = usable.filter { !$0.isBackup }
        return regular.isEmpty ? usable : regular
    }
}

/// The default (Linux's in-kernel scheduler): the usable subflow with the
/// lowest smoothed RTT that has congestion-window room; backups only when no
/// regular subflow is usable.
public struct MinRTTScheduler: PacketScheduler {
    public var name: String { "min-rtt" }
    public init() {}
    public mutating func subflows(for subflows: [SubflowSnapshot], queuedBytes: Int) -> [SubflowID] {
        let best = Schedulers.eligible(subflows).filter(\.hasSpace).min { ($0.rankRTT, $0.id) < ($1.rankRTT, $1.id) }
        return best.map { [$0.id] } ?? []
    }
}

/// Each chunk on the next eligible subflow with room, in turn.
public struct RoundRobinScheduler: PacketScheduler {
    public var name: String { "round-robin" }
    private var last: SubflowID?
    public init() {}
    public mutating func subflows(for subflows: [SubflowSnapshot], queuedBytes: Int) -> [SubflowID] {
        let candidates = Schedulers.eligible(subflows).filter(\.hasSpace).sorted { $0.id < $1.id }
        guard !candidates.isEmpty else { return [] }
        let next = candidates.first { last == nil || $0.id > last! } ?? candidates[0]
        last = next.id
        return [next.id]
    }
}

/// Every chunk on every usable subflow with room, backups included: the
/// lowest latency over lossy paths at the cost of capacity. The receiver
/// drops the copies (duplicates are harmless, §3.3).
public struct RedundantScheduler: PacketScheduler {
    public var name: String { "redundant" }
    public init() {}
    public mutating func subflows(for subflows: [SubflowSnapshot], queuedBytes: Int) -> [SubflowID] {
        subflows.filter { $0.isUsable && $0.hasSpace }.sorted { ($0.rankRTT, $0.id) < ($1.rankRTT, $1.id) }.map(\.id)
    }
}

/// Min-RTT over regular subflows, but a regular subflow that has gone quiet
/// (suspect: in flight and no progress for about an RTT) does not count as
/// usable; while every regular subflow is suspect, chunks go on the best
/// suspect one *and* on the best backup, so a dying path costs at most the
/// backup's RTT instead of an RTO. This is the handover-aware variant.
public struct BackupAwareScheduler: PacketScheduler {
    public var name: String { "backup-aware" }
    public init() {}
    public mutating func subflows(for subflows: [SubflowSnapshot], queuedBytes: Int) -> [SubflowID] {
        let usable = subflows.filter { $0.isUsable && $0.hasSpace }
        func best(_ s: [SubflowSnapshot]) -> SubflowSnapshot? { s.min { ($0.rankRTT, $0.id) < ($1.rankRTT, $1.id) } }
        if let healthy = best(usable.filter { !$0.isBackup && !$0.isSuspect }) { return [healthy.id] }
        let suspect = best(usable.filter { !$0.isBackup })
        let backup = best(usable.filter(\.isBackup).filter { !$0.isSuspect }) ?? best(usable.filter(\.isBackup))
        return [suspect?.id, backup?.id].compactMap { $0 }
    }
}

/// ECF, Earliest Completion First (Lim et al., CoNEXT 2017): when the fastest
/// subflow is full, use a slower one only if the data would complete sooner
/// there than by waiting for the fastest to free up; otherwise wait.
public struct ECFScheduler: PacketScheduler {
    public var name: String { "ecf" }
    /// Hysteresis of the original algorithm (β = 0.25).
    public static let beta = 0.25
    private var waiting = false
    public init() {}

    public mutating func subflows(for subflows: [SubflowSnapshot], queuedBytes: Int) -> [SubflowID] {
        let eligible = Schedulers.eligible(subflows)
        guard let fastest = eligible.min(by: { ($0.rankRTT, $0.id) < ($1.rankRTT, $1.id) }) else { return [] }
        if fastest.hasSpace { waiting = false; return [fastest.id] }
        guard let second = eligible.filter({ $0.hasSpace && $0.id != fastest.id })
            .min(by: { ($0.rankRTT, $0.id) < ($1.rankRTT, $1.id) }) else { return [] }
        let rttF = fastest.rankRTT.seconds, rttS = second.rankRTT.seconds
        let delta = max(fastest.rttVariation?.seconds ?? 0, second.rttVariation?.seconds ?? 0)
        let k = Double(max(queuedBytes, 1))
        let cwndF = Double(max(fastest.congestionWindow, fastest.maximumSegmentSize))
        let cwndS = Double(max(second.congestionWindow, second.maximumSegmentSize))
        // Rounds the fastest needs for everything queued, once it has room again.
        let n = 1 + k / cwndF
        if n * rttF < (1 + (waiting ? Self.beta : 0)) * (rttS + delta) {
            // Waiting for the fast subflow beats the slow one, unless the slow
            // one would finish its share before the fast one comes back twice.
            if (k / cwndS) * rttS >= 2 * rttF + delta {
                waiting = true
                return []
            }
            return [second.id]
        }
        waiting = false
        return [second.id]
    }
}
