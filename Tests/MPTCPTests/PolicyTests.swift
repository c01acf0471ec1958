import Core
import Testing
import Wire
@testable import MPTCP

@Suite("MPTCP schedulers")
struct SchedulerTests {
    static let fast = SubflowSnapshot(id: SubflowID(1), smoothedRTT: .milliseconds(10), congestionWindow: 14_000, bytesInFlight: 0)
    static let slow = SubflowSnapshot(id: SubflowID(2), smoothedRTT: .milliseconds(50), congestionWindow: 14_000, bytesInFlight: 0)

    @Test func names_everyNameBuildsItsScheduler() {
        for name in Schedulers.names { #expect(Schedulers.make(name)?.name == name) }
        #expect(Schedulers.make("fastest") == nil)
    }

    @Test func minRTT_bothFree_picksLowestRTT() {
        var s = MinRTTScheduler()
        #expect(s.subflows(for: [Self.slow, Self.fast], queuedBytes: 1000) == [SubflowID(1)])
    }

    @Test func minRTT_fastFull_picksSlow() {
        var s = MinRTTScheduler()
        var full = Self.fast; full.bytesInFlight = 14_000
        #expect(s.subflows(for: [full, Self.slow], queuedBytes: 1000) == [SubflowID(2)])
    }

    @Test func minRTT_regularUsableButFull_doesNotTouchBackup() {
        var s = MinRTTScheduler()
        var full = Self.slow; full.bytesInFlight = 14_000
        var backup = Self.fast; backup.isBackup = true
        #expect(s.subflows(for: [full, backup], queuedBytes: 1000).isEmpty)
    }

    @Test func minRTT_regularUnusable_usesBackup() {
        var s = MinRTTScheduler()
        var dead = Self.fast; dead.isUsable = false
        var backup = Self.slow; backup.isBackup = true
        #expect(s.subflows(for: [dead, backup], queuedBytes: 1000) == [SubflowID(2)])
    }

    @Test func roundRobin_twoFree_alternates() {
        var s = RoundRobinScheduler()
        let picks = (0 ..< 4).flatMap { _ in s.subflows(for: [Self.fast, Self.slow], queuedBytes: 1) }
        #expect(picks == [SubflowID(1), SubflowID(2), SubflowID(1), SubflowID(2)])
    }

    @Test func redundant_allUsable_sendsOnEveryOneIncludingBackup() {
        var s = RedundantScheduler()
        var backup = Self.slow; backup.isBackup = true
        #expect(s.subflows(for: [backup, Self.fast], queuedBytes: 1) == [SubflowID(1), SubflowID(2)])
    }

    @Test func backupAware_regularSuspect_sendsOnRegularAndBackup() {
        var s = BackupAwareScheduler()
        var suspect = Self.fast; suspect.isSuspect = true
        var backup = Self.slow; backup.isBackup = true
        #expect(s.subflows(for: [suspect, backup], queuedBytes: 1) == [SubflowID(1), SubflowID(2)])
        #expect(s.subflows(for: [Self.fast, backup], queuedBytes: 1) == [SubflowID(1)])
    }

    @Test func ecf_fastFullLittleQueued_waitsForFast() {
        var s = ECFScheduler()
        var full = Self.fast; full.bytesInFlight = 14_000
        // 2 KB queued: the fast path finishes it in ~1 RTT (10 ms) after freeing; the slow one needs 50 ms.
        let slowWide = SubflowSnapshot(id: SubflowID(2), smoothedRTT: .milliseconds(50), congestionWindow: 1400, bytesInFlight: 0)
        #expect(s.subflows(for: [full, slowWide], queuedBytes: 2000).isEmpty)
    }

    @Test func ecf_fastFullMuchQueued_usesSlowToo() {
        var s = ECFScheduler()
        var full = Self.fast; full.bytesInFlight = 14_000
        #expect(s.subflows(for: [full, Self.slow], queuedBytes: 1_000_000) == [SubflowID(2)])
    }
}

@Suite("MPTCP coupled congestion control (RFC 6356, OLIA, BALIA)")
struct CoupledCongestionTests {
    static let mss = 1400
    static func subflow(_ cwndSegments: Int, _ rttMs: Int, losses: Double = 0) -> CoupledSubflow {
        CoupledSubflow(congestionWindow: cwndSegments * mss, smoothedRTT: .milliseconds(rttMs), maximumSegmentSize: mss,
                       bytesBetweenLosses: losses)
    }

    @Test(arguments: CoupledAlgorithm.allCases)
    func oneSubflow_reducesToReno(_ algorithm: CoupledAlgorithm) {
        let hook = CoupledSubflowIncrease(algorithm: algorithm, subflows: [Self.subflow(20, 30)], index: 0)
        let reno = Double(Self.mss) * Double(Self.mss) / Double(20 * Self.mss)
        #expect(abs(hook.congestionAvoidanceIncrease(acknowledgedBytes: Self.mss, congestionWindow: 20 * Self.mss,
                                                     maximumSegmentSize: Self.mss) - reno) < 1e-9)
    }

    @Test func lia_twoEqualSubflows_alphaHalfAndAggregateLikeOneReno() {
        let flows = [Self.subflow(20, 30), Self.subflow(20, 30)]
        #expect(abs(CoupledCongestionMath.liaAlpha(flows) - 0.5) < 1e-12)
        // Each subflow grows at a quarter of Reno's rate on its own window, so the
        // pair (window 2w) grows like one Reno flow of window w would... per RTT: 2 × w acks × mss/(4w) = mss/2 each.
        let inc = CoupledCongestionMath.liaIncrease(flows, index: 0, acknowledgedBytes: Self.mss)
        #expect(abs(inc - Double(Self.mss) * Double(Self.mss) / Double(4 * 20 * Self.mss)) < 1e-9)
    }

    @Test func lia_increase_neverExceedsUncoupledReno() {
        let flows = [Self.subflow(4, 10), Self.subflow(40, 200)]
        for i in flows.indices {
            let reno = Double(Self.mss) * Double(Self.mss) / Double(flows[i].congestionWindow)
            #expect(CoupledCongestionMath.liaIncrease(flows, index: i, acknowledgedBytes: Self.mss) <= reno + 1e-9)
        }
    }

    @Test func olia_bestPathNotLargest_getsPositiveAlphaLargestNegative() {
        // Path 0 has the largest window; path 1 the best loss interval per RTT.
        let flows = [Self.subflow(40, 30, losses: 10_000), Self.subflow(10, 30, losses: 100_000)]
        #expect(CoupledCongestionMath.oliaAlpha(flows, index: 1) == 0.5)
        #expect(CoupledCongestionMath.oliaAlpha(flows, index: 0) == -0.5)
    }

    @Test func olia_bestPathIsLargest_alphasZero() {
        let flows = [Self.subflow(40, 30, losses: 100_000), Self.subflow(10, 30, losses: 10_000)]
        #expect(CoupledCongestionMath.oliaAlpha(flows, index: 0) == 0)
        #expect(CoupledCongestionMath.oliaAlpha(flows, index: 1) == 0)
    }

    @Test func lossIntervals_largerOfLastTwoLossesAndSinceTheLast() {
        var l = LossIntervals()
        #expect(l.bytesBetweenLosses(acknowledgedBytes: 5_000) == 5_000) // no loss yet: everything so far
        l.update(acknowledgedBytes: 10_000, losses: 1)
        #expect(l.bytesBetweenLosses(acknowledgedBytes: 12_000) == 10_000) // the interval that ended wins
        l.update(acknowledgedBytes: 12_000, losses: 1)                     // no new loss: nothing moves
        #expect(l.bytesBetweenLosses(acknowledgedBytes: 25_000) == 15_000) // since the last loss is longer
        l.update(acknowledgedBytes: 13_000, losses: 2)
        #expect(l.bytesBetweenLosses(acknowledgedBytes: 14_000) == 3_000)
    }

    @Test func balia_twoEqualSubflows_matchesClosedForm() {
        let flows = [Self.subflow(20, 50), Self.subflow(20, 50)]
        // x = w/rtt for both; α = 1; per segment: x/(rtt · (2x)²) = 1/(4 w).
        let inc = CoupledCongestionMath.baliaIncrease(flows, index: 0, acknowledgedBytes: Self.mss)
        #expect(abs(inc - Double(Self.mss) / (4 * 20)) < 1e-9)
    }

    @Test func balia_loss_halvesEqualSubflowAndCutsSlowerOneLess() {
        let equal = [Self.subflow(20, 50), Self.subflow(20, 50)]
        #expect(CoupledCongestionMath.baliaWindowAfterLoss(equal, index: 0) == 10 * Self.mss)
        // The slower subflow (α = 2 → min(α, 1.5) = 1.5) loses 75 %.
        let mixed = [Self.subflow(20, 10), Self.subflow(20, 20)]
        #expect(CoupledCongestionMath.baliaWindowAfterLoss(mixed, index: 1) == 5 * Self.mss)
    }
}

@Suite("MPTCP subflow health and make-after-break")
struct HealthTests {
    let detector = StaleDetector(acknowledgmentDelayAllowance: .zero)
    let t0 = Instant(nanoseconds: 1_000_000_000)

    @Test func idleSubflow_neverStale() {
        #expect(detector.verdict(now: t0 + .seconds(10), bytesInFlight: 0, lastProgress: t0, smoothedRTT: .milliseconds(10),
                                 timeoutsWithoutProgress: 0) == .healthy)
    }

    @Test func inFlight_silenceGrows_suspectThenStale() {
        func v(_ ms: Int) -> StaleDetector.Verdict {
            detector.verdict(now: t0 + .milliseconds(ms), bytesInFlight: 1000, lastProgress: t0, smoothedRTT: .milliseconds(10),
                             timeoutsWithoutProgress: 0)
        }
        #expect(v(15) == .healthy)
        #expect(v(20) == .suspect)
        #expect(v(40) == .stale)
        #expect(detector.nextDeadline(bytesInFlight: 1000, lastProgress: t0, smoothedRTT: .milliseconds(10), now: t0)
            == t0 + .milliseconds(20))
    }

    @Test func inFlight_twoTimeouts_staleWhateverTheRTT() {
        #expect(detector.verdict(now: t0, bytesInFlight: 1, lastProgress: t0, smoothedRTT: .seconds(1),
                                 timeoutsWithoutProgress: 2) == .stale)
    }

    @Test func outage_pathReturnsBeforeTimeout_connectionLives() {
        var clock = OutageClock(timeout: .seconds(60))
        var counters = MPTCPCounters()
        clock.update(usableSubflows: 0, now: t0, counters: &counters)
        #expect(!clock.advance(now: t0 + .seconds(5), counters: &counters))
        clock.update(usableSubflows: 1, now: t0 + .seconds(5), counters: &counters)
        #expect(clock.nextDeadline == .distantFuture)
        #expect(!clock.advance(now: t0 + .seconds(100), counters: &counters))
        #expect(counters.outagesStarted == 1 && counters.outageTimeouts == 0)
    }

    @Test func outage_noPathForTimeout_expiresOnce() {
        var clock = OutageClock(timeout: .seconds(60))
        var counters = MPTCPCounters()
        clock.update(usableSubflows: 0, now: t0, counters: &counters)
        #expect(clock.nextDeadline == t0 + .seconds(60))
        #expect(!clock.advance(now: t0 + .seconds(59), counters: &counters))
        #expect(clock.advance(now: t0 + .seconds(60), counters: &counters))
        #expect(!clock.advance(now: t0 + .seconds(61), counters: &counters))
        #expect(counters.outageTimeouts == 1)
    }
}

@Suite("MPTCP path managers")
struct PathManagerTests {
    static let t0 = Instant(nanoseconds: 1_000_000_000)
    static let rsu1 = AnnouncedAddress(id: 0, address: .v4(IPv4Address(198, 18, 1, 2)))
    static let rsu2 = AnnouncedAddress(id: 1, address: .v4(IPv4Address(198, 18, 2, 2)))
    static let first = SubflowID(0)
    static let path0 = PathKey(localID: 0, remoteID: 0), path1 = PathKey(localID: 1, remoteID: 0)

    func manager(_ name: String, configuration: PathBook.Configuration = .init()) -> any PathManager {
        var pm = PathManagers.make(name, configuration: configuration, initialPath: (Self.first, Self.path0))!
        _ = pm.handle(.localAddressUp(Self.rsu1, backup: false), now: Self.t0)
        return pm
    }

    @Test func names_everyNameBuildsItsManager() {
        for name in PathManagers.names { #expect(PathManagers.make(name, configuration: .init())?.name == name) }
        #expect(PathManagers.make("ndiffports", configuration: .init()) == nil)
    }

    @Test(arguments: ["fullmesh", "make-before-break", "backup"])
    func initialUp_secondAddressAppears_joinsAtOnce(_ name: String) {
        var pm = manager(name)
        let actions = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        #expect(actions.contains { if case .openSubflow(_, Self.path1, _) = $0 { return true } else { return false } })
    }

    @Test func breakBeforeMake_initialUp_secondAddressAppears_opensNothing() {
        var pm = manager("break-before-make")
        #expect(pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0).isEmpty)
    }

    @Test func breakBeforeMake_initialFails_triesOtherPathAndReinjects() {
        var pm = manager("break-before-make")
        _ = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        let actions = pm.handle(.subflowFailed(Self.first), now: Self.t0 + .seconds(1))
        #expect(actions.first == .reinject(Self.first))
        #expect(actions.contains { if case .openSubflow(_, Self.path1, false) = $0 { return true } else { return false } })
    }

    @Test func backup_secondAddress_joinedAsBackup() {
        var pm = manager("backup")
        let actions = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        #expect(actions == [.openSubflow(SubflowID(1), Self.path1, backup: true)])
    }

    @Test func makeBeforeBreak_newSubflowEstablished_olderBecomesBackup() {
        var pm = manager("make-before-break")
        _ = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        let actions = pm.handle(.subflowEstablished(SubflowID(1)), now: Self.t0 + .milliseconds(15))
        #expect(actions == [.setBackup(Self.first, true)])
        // The new one dies: the old one carries data again.
        let after = pm.handle(.subflowFailed(SubflowID(1)), now: Self.t0 + .seconds(2))
        #expect(after.contains(.setBackup(Self.first, false)))
        #expect(after.contains(.reinject(SubflowID(1))))
    }

    @Test func anyPolicy_pathInBlackHole_retriedAtFixedIntervalForever() {
        let cfg = PathBook.Configuration(joinRetryInterval: .milliseconds(50), joinAttemptTimeout: .milliseconds(200))
        var pm = manager("fullmesh", configuration: cfg)
        _ = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        var opens: [Instant] = [Self.t0]
        var now = Self.t0
        // No SYN/ACK ever: attempts are abandoned and started again; the gap between two never grows.
        for _ in 0 ..< 40 {
            now = pm.nextDeadline
            let actions = pm.advance(now: now)
            if actions.contains(where: { if case .openSubflow = $0 { return true } else { return false } }) { opens.append(now) }
        }
        let gaps = zip(opens.dropFirst(), opens).map { $0 - $1 }
        #expect(opens.count >= 10)
        #expect(Set(gaps).count == 1 && gaps.first == .milliseconds(200))
    }

    @Test func anyPolicy_failedPathRetriedAfterInterval_notBeforeAndNotNever() {
        var pm = manager("fullmesh")
        _ = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        _ = pm.handle(.subflowFailed(SubflowID(1)), now: Self.t0 + .milliseconds(1)) // e.g. RST: no route
        #expect(pm.advance(now: Self.t0 + .milliseconds(20)).isEmpty)
        #expect(pm.nextDeadline == Self.t0 + .milliseconds(51))
        #expect(pm.advance(now: Self.t0 + .milliseconds(51)) == [.openSubflow(SubflowID(2), Self.path1, backup: false)])
    }

    @Test func anyPolicy_localAddressDown_closesReinjectsAndWithdraws() {
        var pm = manager("fullmesh")
        _ = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        _ = pm.handle(.subflowEstablished(SubflowID(1)), now: Self.t0)
        let actions = pm.handle(.localAddressDown(id: 1), now: Self.t0 + .seconds(1))
        #expect(actions == [.reinject(SubflowID(1)), .closeSubflow(SubflowID(1), reason: .unspecified), .withdraw(id: 1)])
    }

    @Test func anyPolicy_subflowStale_reinjectsAndRejoinsSamePathFresh() {
        var pm = manager("fullmesh")
        let actions = pm.handle(.subflowStale(Self.first), now: Self.t0 + .seconds(1))
        #expect(actions == [.reinject(Self.first), .openSubflow(SubflowID(1), Self.path0, backup: false)])
        // The fresh join works: the stale one is replaced.
        #expect(pm.handle(.subflowEstablished(SubflowID(1)), now: Self.t0 + .seconds(1))
            == [.reinject(Self.first), .closeSubflow(Self.first, reason: .unacceptablePerformance)])
    }

    @Test func fullmesh_peerAnnouncesAddress_joinsEveryLocalToIt() {
        var pm = manager("fullmesh")
        _ = pm.handle(.localAddressUp(Self.rsu2, backup: false), now: Self.t0)
        let actions = pm.handle(.peerAddressAdded(AnnouncedAddress(id: 5, address: .v4(IPv4Address(198, 18, 9, 1)))), now: Self.t0)
        #expect(actions.count == 2)
    }
}
