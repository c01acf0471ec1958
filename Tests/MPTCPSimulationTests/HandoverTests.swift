import Core
import MPTCP
import MPTCPSimulation
import Simulation
import Testing

/// Issue 4, item 5, on seeded simulator links (virtual time, deterministic):
/// CBR 1000 messages/s of 1 KiB from a vehicle over two roadside-unit paths
/// of 10 ms RTT. The bounds are protocol behaviour, not wall-clock speed.
@Suite("MPTCP handover on simulated roadside-unit links")
struct HandoverTests {
    @Test(arguments: [CoverageLoss.silent, .carrier])
    func makeBeforeBreak_overlappingCoverage_gapWithinOneRTTAboveSpacing(_ cut: CoverageLoss) {
        var scenario = HandoverScenario()
        scenario.pathManager = "make-before-break"
        scenario.coverage = .overlap(.seconds(1))
        scenario.cut = cut
        let result = scenario.run()
        print("handover make-before-break overlap \(cut): largest gap \(result.largestGap) (bound \(scenario.gapBound)), delivered \(result.messagesDelivered)/\(result.messagesSent)")
        #expect(scenario.gapBound == .milliseconds(11))
        #expect(result.largestGap <= scenario.gapBound)
        #expect(result.messagesSent == 8_000)
        #expect(result.survived)
    }

    @Test(arguments: [CoverageLoss.silent, .carrier])
    func breakBeforeMake_500msCoverageGap_gapWithinGapPlusTwoRTTPlus10ms(_ cut: CoverageLoss) {
        var scenario = HandoverScenario()
        scenario.pathManager = "break-before-make"
        scenario.coverage = .gap(.milliseconds(500))
        scenario.cut = cut
        let result = scenario.run()
        print("handover break-before-make gap 500 ms \(cut): largest gap \(result.largestGap) (bound \(scenario.gapBound)), delivered \(result.messagesDelivered)/\(result.messagesSent)")
        #expect(scenario.gapBound == .milliseconds(530))
        #expect(result.largestGap <= scenario.gapBound)
        #expect(result.largestGap >= .milliseconds(500), "nothing can cross a coverage gap")
        #expect(result.survived)
    }

    /// Overlapping coverage with the other managers, where traffic is not on
    /// the dying path when it goes silently (fullmesh: the newer subflow has
    /// the lower RTT) or the loss is seen at once (carrier), or every chunk
    /// also rides the backup (redundant): within the same bound.
    @Test(arguments: [("fullmesh", "min-rtt", CoverageLoss.silent), ("fullmesh", "ecf", .silent),
                      ("fullmesh", "round-robin", .carrier), ("backup", "min-rtt", .carrier),
                      ("backup", "redundant", .silent)])
    func overlappingCoverage_otherManagers_gapWithinOneRTTAboveSpacing(_ pathManager: String, _ scheduler: String,
                                                                       _ cut: CoverageLoss) {
        var scenario = HandoverScenario()
        scenario.pathManager = pathManager
        scenario.scheduler = scheduler
        scenario.coverage = .overlap(.seconds(1))
        scenario.cut = cut
        let result = scenario.run()
        let gap = result.largestGap, survived = result.survived
        print("handover \(pathManager) \(scheduler) overlap \(cut): largest gap \(gap)")
        #expect(gap <= scenario.gapBound)
        #expect(survived)
    }

    /// By design break-before-make keeps one subflow and opens the next only
    /// when it has failed: with overlapping coverage and a silent cut the gap
    /// is the stale detection (max(20 ms, 4 RTT) + 40 ms of silence) plus a
    /// join and a round trip; with carrier loss the join and a round trip.
    @Test(arguments: [(CoverageLoss.silent, 80, 120), (.carrier, 20, 30)])
    func breakBeforeMake_overlappingCoverage_switchesOnlyOnceTheOldPathIsGone(_ cut: CoverageLoss, _ least: Int, _ most: Int) {
        var scenario = HandoverScenario()
        scenario.pathManager = "break-before-make"
        scenario.coverage = .overlap(.seconds(1))
        scenario.cut = cut
        let result = scenario.run()
        let gap = result.largestGap, survived = result.survived
        print("handover break-before-make overlap \(cut): largest gap \(gap)")
        #expect(gap >= .milliseconds(least) && gap <= .milliseconds(most))
        #expect(survived)
    }

    @Test func carrierLoss_reachesThePathManagerAsAddressEvents() {
        var scenario = HandoverScenario()
        scenario.pathManager = "break-before-make"
        scenario.coverage = .gap(.milliseconds(500))
        scenario.cut = .carrier
        let result = scenario.run()
        // The second unit's address came up (join) and the first one's was withdrawn.
        #expect((result.counters?.joinsEstablished ?? 0) >= 1)
        #expect(result.sender.connection?.localAddresses[1] == HandoverScenario.vehicleAddresses[1].bytes)
    }

    @Test func sameSeed_sameRun() {
        var scenario = HandoverScenario()
        scenario.cut = .silent
        let a = scenario.run(), b = scenario.run()
        #expect(a.receiver?.progress.map(\.0) == b.receiver?.progress.map(\.0))
    }
}
