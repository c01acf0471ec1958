import Core
import Testing
import Wire
@testable import TCP
import TCPSimulation

// Whole transfers through the discrete-event simulator, compared byte for
// byte (SHA-256 of what was written against SHA-256 of what was read).

@Suite("TCP transfers in the simulator")
struct SimulatedTransferTests {
    @Test func fiftyMegabytesAcrossLossReorderingAndDuplication() {
        var s = TCPScenario()
        s.rate = .mbit(50)
        s.roundTripTime = .milliseconds(10)
        s.loss = Probability(0.02)
        s.ackLoss = Probability(0.02)
        s.reorderProbability = Probability(0.01)
        s.reorderDelay = .milliseconds(3)
        s.duplicateProbability = Probability(0.01)
        s.bytesPerFlow = 50_000_000
        s.duration = .seconds(600)
        s.seed = 2026
        let r = s.run()
        let flow = r.flows[0]
        #expect(flow.bytesDelivered == 50_000_000)
        #expect(flow.isIntact)
        #expect(flow.counters.fastRecoveries > 100)
        #expect(flow.counters.sackBlocksReceived > 0)
        #expect(flow.receiver.connection.counters.outOfOrderSegmentsReceived > 0)
    }

    @Test func thirtySecondOutageIsSurvivedByRTOBackoff() {
        var s = TCPScenario()
        s.rate = .mbit(10)
        s.roundTripTime = .milliseconds(20)
        s.bytesPerFlow = 5_000_000
        s.outage = (from: .seconds(2), to: .seconds(32))
        s.duration = .seconds(120)
        let r = s.run()
        let flow = r.flows[0]
        #expect(flow.isIntact)
        #expect(flow.bytesDelivered == 5_000_000)
        let done = flow.completedAt ?? .distantFuture
        #expect(done > .zero + .seconds(32))
        // Backoff 0.2 s, 0.4 s, … doubles across the outage: at least seven timeouts in a row.
        #expect(flow.counters.retransmissionTimeouts >= 7)
        #expect(flow.sender.connection.retransmissionTimeout < .seconds(1)) // a fresh sample ended the backoff
    }

    @Test func zeroWindowThenWindowUpdate() {
        var s = TCPScenario()
        s.rate = .mbit(20)
        s.roundTripTime = .milliseconds(20)
        s.bytesPerFlow = 2_000_000
        s.configuration.receiveBufferSize = 65_536
        s.reader = .paused(from: .zero + .milliseconds(300), to: .zero + .seconds(3))
        s.duration = .seconds(60)
        let r = s.run()
        let flow = r.flows[0]
        #expect(flow.isIntact)
        #expect(flow.counters.zeroWindowProbesSent > 0)
        #expect(flow.counters.retransmissionTimeouts == 0)
        // Nothing was read while paused; reading resumed at 3 s and the window reopened.
        #expect(flow.receiver.bytesRead(from: .zero + .milliseconds(301), to: .zero + .milliseconds(2_999)) == 0)
        #expect((flow.completedAt ?? .distantFuture) > .zero + .seconds(3))
    }

    @Test func sameSeedSameRun() {
        var s = TCPScenario()
        s.loss = Probability(0.01)
        s.bytesPerFlow = 1_000_000
        s.capturesPackets = true
        let a = s.run(), b = s.run()
        #expect(a.pcap == b.pcap)
        #expect(a.flows[0].counters == b.flows[0].counters)
    }
}
