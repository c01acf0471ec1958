import Core
import Wire

/// A path: one of our addresses to one of the peer's, by address id (§3.4.1).
/// Remote id 0 is the address the connection was opened to.
public struct PathKey: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var localID: UInt8
    public var remoteID: UInt8
    public init(localID: UInt8, remoteID: UInt8) { self.localID = localID; self.remoteID = remoteID }
    public static func < (a: PathKey, b: PathKey) -> Bool { (a.localID, a.remoteID) < (b.localID, b.remoteID) }
    public var description: String { "\(localID)→\(remoteID)" }
}

/// What a path manager hears about (Linux `pm.c` events; mptcpd's netlink events).
public enum PathEvent: Hashable, Sendable {
    /// A local address became usable (interface up, carrier, address added).
    case localAddressUp(AnnouncedAddress, backup: Bool)
    /// A local address went away (interface down, no carrier, address deleted).
    case localAddressDown(id: UInt8)
    case peerAddressAdded(AnnouncedAddress)
    case peerAddressRemoved(id: UInt8)
    /// A subflow the manager asked for completed its handshake (joins: fourth ACK).
    case subflowEstablished(SubflowID)
    /// A subflow was reset, timed out, or its join was rejected.
    case subflowFailed(SubflowID)
    /// A subflow with data in flight made no progress for too long (`StaleDetector`).
    case subflowStale(SubflowID)
    /// A stale subflow acknowledged new data again.
    case subflowRecovered(SubflowID)
}

/// What a path manager asks the connection to do.
public enum PathAction: Hashable, Sendable {
    /// Open a subflow (MP_JOIN; for the first, the connection itself) on `path`
    /// under the id the manager chose.
    case openSubflow(SubflowID, PathKey, backup: Bool)
    /// Close a subflow (RST with MP_TCPRST carrying `reason`).
    case closeSubflow(SubflowID, reason: ResetReason)
    /// Send MP_PRIO on the subflow (§3.3.8).
    case setBackup(SubflowID, Bool)
    /// Reinject what the subflow carries that is not acknowledged at the data level.
    case reinject(SubflowID)
    /// ADD_ADDR / REMOVE_ADDR.
    case announce(AnnouncedAddress)
    case withdraw(id: UInt8)
}

/// A path manager: events in, actions out, timers through `nextDeadline`.
/// Every manager retries a wanted path that has no working subflow every
/// `joinRetryInterval`, fresh each time (a new SYN, not a backed-off
/// retransmission), so the time to use a returning path never grows with the
/// connection's age (BASELINES.md, lessons 1 and 2).
public protocol PathManager: Sendable {
    var name: String { get }
    var book: PathBook { get }
    mutating func handle(_ event: PathEvent, now: Instant) -> [PathAction]
    mutating func advance(now: Instant) -> [PathAction]
    var nextDeadline: Instant { get }
}

public enum PathManagers {
    public static let names = ["fullmesh", "make-before-break", "break-before-make", "backup"]
    public static let defaultName = "make-before-break"

    public static func make(_ name: String, configuration: PathBook.Configuration,
                            initialPath: (SubflowID, PathKey)? = nil) -> (any PathManager)? {
        var book = PathBook(configuration: configuration)
        if let (id, path) = initialPath { book.adoptInitialSubflow(id, path: path) }
        switch name {
        case "fullmesh": return FullMeshPathManager(book: book)
        case "make-before-break": return MakeBeforeBreakPathManager(book: book)
        case "break-before-make": return BreakBeforeMakePathManager(book: book)
        case "backup": return BackupPathManager(book: book)
        default: return nil
        }
    }
}

/// The state every path manager keeps: addresses on both sides, subflows by
/// path, join attempts and their retry times.
public struct PathBook: Sendable {
    public struct Configuration: Hashable, Sendable {
        /// A fresh join on a wanted path without a working subflow, this often.
        public var joinRetryInterval: Interval
        /// A join with no answer after this long is abandoned (its SYN may sit
        /// in a black hole under SYN backoff) and started again.
        public var joinAttemptTimeout: Interval
        /// Announce local addresses with ADD_ADDR (the side that accepts joins).
        public var announceLocalAddresses: Bool
        /// Withdraw a lost local address with REMOVE_ADDR so the peer stops
        /// sending on it at once (BASELINES.md: this cut Linux's gap to 3–6 ms).
        public var withdrawLostAddresses: Bool
        /// Most subflows at once (Linux: `ip mptcp limits set subflows`).
        public var maximumSubflows: Int

        public init(joinRetryInterval: Interval = .milliseconds(50), joinAttemptTimeout: Interval = .milliseconds(500),
                    announceLocalAddresses: Bool = false, withdrawLostAddresses: Bool = true, maximumSubflows: Int = 8) {
            self.joinRetryInterval = joinRetryInterval; self.joinAttemptTimeout = joinAttemptTimeout
            self.announceLocalAddresses = announceLocalAddresses; self.withdrawLostAddresses = withdrawLostAddresses
            self.maximumSubflows = maximumSubflows
        }
    }

    public enum SubflowState: Hashable, Sendable { case connecting(since: Instant), established, stale }

    public struct Subflow: Hashable, Sendable {
        public var path: PathKey
        public var state: SubflowState
        public var backup: Bool
        /// Order of establishment: later is newer.
        public var generation: Int
    }

    public let configuration: Configuration
    public private(set) var locals: [UInt8: AnnouncedAddress] = [:]
    public private(set) var localBackup: [UInt8: Bool] = [:]
    public private(set) var remotes: Set<UInt8> = [0]
    public private(set) var subflows: [SubflowID: Subflow] = [:]
    /// When each path may next get a fresh join attempt.
    private var retryAt: [PathKey: Instant] = [:]
    private var nextID = 1
    private var generation = 0

    public init(configuration: Configuration) { self.configuration = configuration }

    mutating func adoptInitialSubflow(_ id: SubflowID, path: PathKey) {
        generation += 1
        subflows[id] = Subflow(path: path, state: .established, backup: false, generation: generation)
        nextID = max(nextID, id.rawValue + 1)
    }

    public func subflows(on path: PathKey) -> [SubflowID] { subflows.filter { $0.value.path == path }.map(\.key).sorted() }
    public var usable: [SubflowID] { subflows.filter { $0.value.state == .established }.map(\.key).sorted() }
    public func isWorking(_ path: PathKey) -> Bool {
        subflows.values.contains { $0.path == path && $0.state == .established }
    }
    public func isConnecting(_ path: PathKey) -> Bool {
        subflows.values.contains { if $0.path == path, case .connecting = $0.state { return true } else { return false } }
    }

    /// Common bookkeeping for an event; returns the actions every policy takes.
    mutating func record(_ event: PathEvent, now: Instant) -> [PathAction] {
        var actions: [PathAction] = []
        switch event {
        case let .localAddressUp(address, backup):
            locals[address.id] = address
            localBackup[address.id] = backup
            for remote in remotes { retryAt[PathKey(localID: address.id, remoteID: remote)] = now }
            if configuration.announceLocalAddresses { actions.append(.announce(address)) }
        case let .localAddressDown(id):
            locals[id] = nil
            localBackup[id] = nil
            for (sid, s) in subflows where s.path.localID == id {
                actions += drop(sid, reason: .unspecified)
            }
            if configuration.withdrawLostAddresses { actions.append(.withdraw(id: id)) }
        case let .peerAddressAdded(address):
            remotes.insert(address.id)
            for local in locals.keys { retryAt[PathKey(localID: local, remoteID: address.id)] = now }
        case let .peerAddressRemoved(id):
            remotes.remove(id)
            for (sid, s) in subflows where s.path.remoteID == id {
                actions += drop(sid, reason: .unspecified)
            }
        case let .subflowEstablished(id):
            guard var s = subflows[id] else { break }
            generation += 1
            s.state = .established
            s.generation = generation
            subflows[id] = s
            // A fresh subflow on a path replaces a stale one there.
            for (other, o) in subflows where other != id && o.path == s.path && o.state == .stale {
                actions += drop(other, reason: .unacceptablePerformance)
            }
        case let .subflowFailed(id):
            guard let s = subflows[id] else { break }
            var wasCarrying = true
            if case .connecting = s.state { wasCarrying = false }
            subflows[id] = nil
            if wasCarrying { actions.append(.reinject(id)) }
            retryAt[s.path] = now + configuration.joinRetryInterval
        case let .subflowStale(id):
            guard subflows[id]?.state == .established else { break }
            subflows[id]!.state = .stale
            actions.append(.reinject(id))
            // Try the same path afresh at once: a new join is not held back by
            // the stale subflow's RTO backoff.
            retryAt[subflows[id]!.path] = now
        case let .subflowRecovered(id):
            if subflows[id]?.state == .stale { subflows[id]!.state = .established }
        }
        return actions
    }

    /// Removes a subflow and asks for it to be closed and its data reinjected.
    mutating func drop(_ id: SubflowID, reason: ResetReason) -> [PathAction] {
        guard let s = subflows.removeValue(forKey: id) else { return [] }
        if case .connecting = s.state { return [.closeSubflow(id, reason: reason)] }
        return [.reinject(id), .closeSubflow(id, reason: reason)]
    }

    /// Abandons join attempts that took too long.
    mutating func expireAttempts(now: Instant, counters: inout MPTCPCounters) -> [PathAction] {
        var actions: [PathAction] = []
        for (id, s) in subflows.sorted(by: { $0.key < $1.key }) {
            if case let .connecting(since) = s.state, now >= since + configuration.joinAttemptTimeout {
                subflows[id] = nil
                counters.joinAttemptsAbandoned += 1
                actions.append(.closeSubflow(id, reason: .unspecified))
                retryAt[s.path] = now
            }
        }
        return actions
    }

    /// Opens a join on each of `paths` that has neither a working subflow nor
    /// an attempt under way, if its retry time has come.
    mutating func open(_ paths: [(PathKey, Bool)], now: Instant) -> [PathAction] {
        var actions: [PathAction] = []
        for (path, backup) in paths where !isWorking(path) && !isConnecting(path) {
            guard subflows.count < configuration.maximumSubflows else { break }
            guard locals[path.localID] != nil, remotes.contains(path.remoteID) else { continue }
            if let at = retryAt[path], now < at { continue }
            let id = SubflowID(nextID)
            nextID += 1
            subflows[id] = Subflow(path: path, state: .connecting(since: now), backup: backup, generation: 0)
            retryAt[path] = now + configuration.joinRetryInterval
            actions.append(.openSubflow(id, path, backup: backup))
        }
        return actions
    }

    /// Changes the backup flag we keep for a subflow (the caller sends MP_PRIO).
    mutating func setBackup(_ id: SubflowID, _ backup: Bool) -> [PathAction] {
        guard subflows[id] != nil, subflows[id]!.backup != backup else { return [] }
        subflows[id]!.backup = backup
        return [.setBackup(id, backup)]
    }

    /// The earliest instant anything here wants attention.
    func deadline(for paths: [PathKey]) -> Instant {
        var d = Instant.distantFuture
        for (_, s) in subflows { if case let .connecting(since) = s.state { d = min(d, since + configuration.joinAttemptTimeout) } }
        guard subflows.count < configuration.maximumSubflows else { return d }
        for path in paths where !isWorking(path) && !isConnecting(path)
            && locals[path.localID] != nil && remotes.contains(path.remoteID) {
            if let at = retryAt[path] { d = min(d, at) }
        }
        return d
    }

    var allPaths: [PathKey] {
        locals.keys.sorted().flatMap { l in remotes.sorted().map { PathKey(localID: l, remoteID: $0) } }
    }
    func isBackupLocal(_ id: UInt8) -> Bool { localBackup[id] ?? false }
}

/// `fullmesh`: a subflow on every local × remote address pair, backup where
/// the local address is configured as backup. Aggregates capacity.
public struct FullMeshPathManager: PathManager {
    public var name: String { "fullmesh" }
    public private(set) var book: PathBook
    public var counters = MPTCPCounters()
    public init(book: PathBook) { self.book = book }

    var wanted: [(PathKey, Bool)] { book.allPaths.map { ($0, book.isBackupLocal($0.localID)) } }

    public mutating func handle(_ event: PathEvent, now: Instant) -> [PathAction] {
        book.record(event, now: now) + book.open(wanted, now: now)
    }
    public mutating func advance(now: Instant) -> [PathAction] {
        book.expireAttempts(now: now, counters: &counters) + book.open(wanted, now: now)
    }
    public var nextDeadline: Instant { book.deadline(for: wanted.map(\.0)) }
}

/// `make-before-break`: open a subflow on a new path as soon as it appears;
/// when it is established, traffic moves to it (older subflows become
/// backups through MP_PRIO, so they carry data only if the new one fails);
/// a dead subflow is dropped. For a vehicle whose new roadside unit comes
/// into range before the old one fades.
public struct MakeBeforeBreakPathManager: PathManager {
    public var name: String { "make-before-break" }
    public private(set) var book: PathBook
    public var counters = MPTCPCounters()
    public init(book: PathBook) { self.book = book }

    var wanted: [(PathKey, Bool)] { book.allPaths.map { ($0, false) } }

    public mutating func handle(_ event: PathEvent, now: Instant) -> [PathAction] {
        var actions = book.record(event, now: now)
        switch event {
        case let .subflowEstablished(id):
            // The newest subflow is the regular one; every other becomes backup.
            actions += book.setBackup(id, false)
            for other in book.usable where other != id { actions += book.setBackup(other, true) }
        case .subflowFailed, .subflowStale, .localAddressDown, .peerAddressRemoved:
            actions += promoteNewest()
        default: break
        }
        return actions + book.open(wanted, now: now)
    }

    /// When no regular subflow is left, the newest working one becomes regular.
    mutating func promoteNewest() -> [PathAction] {
        let working = book.usable.compactMap { id in book.subflows[id].map { (id, $0) } }
        guard !working.contains(where: { !$0.1.backup }),
              let newest = working.max(by: { $0.1.generation < $1.1.generation }) else { return [] }
        return book.setBackup(newest.0, false)
    }

    public mutating func advance(now: Instant) -> [PathAction] {
        book.expireAttempts(now: now, counters: &counters) + book.open(wanted, now: now)
    }
    public var nextDeadline: Instant { book.deadline(for: wanted.map(\.0)) }
}

/// `break-before-make`: one subflow at a time. While it works nothing else
/// is opened; when it fails or goes stale, every available path is tried at
/// once (and retried at a fixed interval) and the first to be established
/// wins; the other attempts are closed.
public struct BreakBeforeMakePathManager: PathManager {
    public var name: String { "break-before-make" }
    public private(set) var book: PathBook
    public var counters = MPTCPCounters()
    public init(book: PathBook) { self.book = book }

    var wanted: [(PathKey, Bool)] { book.usable.isEmpty ? book.allPaths.map { ($0, false) } : [] }

    public mutating func handle(_ event: PathEvent, now: Instant) -> [PathAction] {
        var actions = book.record(event, now: now)
        if case let .subflowEstablished(id) = event {
            for (other, s) in book.subflows.sorted(by: { $0.key < $1.key }) where other != id {
                if case .connecting = s.state { actions += book.drop(other, reason: .unspecified) }
                else if s.state == .stale { actions += book.drop(other, reason: .unacceptablePerformance) }
            }
        }
        return actions + book.open(wanted, now: now)
    }
    public mutating func advance(now: Instant) -> [PathAction] {
        book.expireAttempts(now: now, counters: &counters) + book.open(wanted, now: now)
    }
    public var nextDeadline: Instant { book.deadline(for: wanted.map(\.0)) }
}

/// `backup`: subflows on every path, but only the primary local address
/// (the lowest id not configured as backup) carries data; the others are
/// opened with the MP_JOIN backup flag and used only when no regular subflow
/// is alive (RFC 8684 §3.3.8). Lost regular paths are rejoined at the fixed
/// retry interval.
public struct BackupPathManager: PathManager {
    public var name: String { "backup" }
    public private(set) var book: PathBook
    public var counters = MPTCPCounters()
    public init(book: PathBook) { self.book = book }

    var primary: UInt8? {
        book.locals.keys.sorted().first { !book.isBackupLocal($0) } ?? book.locals.keys.min()
    }
    var wanted: [(PathKey, Bool)] { book.allPaths.map { ($0, $0.localID != primary) } }

    public mutating func handle(_ event: PathEvent, now: Instant) -> [PathAction] {
        book.record(event, now: now) + book.open(wanted, now: now)
    }
    public mutating func advance(now: Instant) -> [PathAction] {
        book.expireAttempts(now: now, counters: &counters) + book.open(wanted, now: now)
    }
    public var nextDeadline: Instant { book.deadline(for: wanted.map(\.0)) }
}
