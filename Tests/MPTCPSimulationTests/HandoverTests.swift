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
