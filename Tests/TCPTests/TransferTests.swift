import Core
import Testing
import Wire
@testable import TCP

@Suite("TCP transfers in the two-endpoint harness")
struct TransferTests {
    func fullConfiguration(_ cc: CongestionControlAlgorithm = .cubic) -> TCPConfiguration {
        var c = TCPConfiguration()
        c.congestionControl = cc
        return c
    }

    @Test func cleanTransferIsByteExact() {
        var h = TwoEndpointHarness(client: fullConfiguration(), server: fullConfiguration())
        let data = bytes(1_000_000)
        let finished = h.transfer(data)
        #expect(finished)
        #expect(h.delivered == data)
        #expect(h.client.counters.retransmissions == 0)
        #expect(h.client.sackEnabled && h.client.timestampsEnabled && h.client.windowScaleNegotiated)
    }

    @Test(arguments: [CongestionControlAlgorithm.newReno, .cubic], [true, false])
    func lossyTransferIsByteExact(cc: CongestionControlAlgorithm, sack: Bool) {
        var config = fullConfiguration(cc)
        config.selectiveAcknowledgments = sack
        var h = TwoEndpointHarness(client: config, server: config, seed: 11)
        h.lossProbability = 0.02
        h.reorderProbability = 0.01
        h.rate = 2_500_000
        let data = bytes(2_000_000)
        let finished = h.transfer(data)
        #expect(finished)
        #expect(h.delivered == data)
        #expect(h.client.counters.retransmissions > 0)
        #expect(h.client.counters.fastRecoveries > 0)
        if sack { #expect(h.client.counters.sackBlocksReceived > 0) }
    }

    @Test func plainTransferWithoutOptionsIsByteExact() {
        var config = plainConfiguration()
        config.nagle = true
        var h = TwoEndpointHarness(client: config, server: config, seed: 3)
        h.lossProbability = 0.01
        let data = bytes(300_000)
        let finished = h.transfer(data)
        #expect(finished)
        #expect(h.delivered == data)
    }

    @Test func slowReaderExercisesZeroWindow() {
        var config = fullConfiguration()
        config.receiveBufferSize = 16_384
        var h = TwoEndpointHarness(client: config, server: config, seed: 5)
        let data = bytes(400_000)
        let finished = h.transfer(data, readChunk: 4_000, readEvery: .milliseconds(50))
        #expect(finished)
        #expect(h.delivered == data)
    }
}
