import Core
import LinkModel
import Testing

@Suite struct RateAndDelayTests {
    @Test func serialisationThenDelayGivesExactDepartures() {
        // 8 Mbit/s: 1000 bytes take exactly 1 ms; then 10 ms of propagation.
        var link = Chain(RateLink<TestPacket>(rate: .mbit(8)), DelayLine<TestPacket>(delay: .milliseconds(10)))
        let (out, drops) = drive(&link, packets(3) + [(.ms(20), TestPacket(id: 3, byteCount: 500))])
        #expect(drops.isEmpty)
        #expect(out.map(\.0.id) == [0, 1, 2, 3])
        #expect(out.map(\.1) == [.ms(11), .ms(12), .ms(13), .us(30_500)])
    }

    @Test func tokenBucketLetsABurstThroughAtOnce() {
        var link = RateLink<TestPacket>(rate: .mbit(8), burstBytes: 3000)
        let (out, _) = drive(&link, packets(5, from: .ms(100)))
        // Three packets of credit leave at once, then one per millisecond.
        #expect(out.map(\.1) == [.ms(100), .ms(100), .ms(100), .ms(101), .ms(102)])
    }

    @Test func rateChangeAppliesToTheNextPacket() {
        var link = RateLink<TestPacket>(rate: .mbit(8))
        link.enqueue(TestPacket(id: 0, byteCount: 1000), now: .zero)
        link.enqueue(TestPacket(id: 1, byteCount: 1000), now: .zero)
        link.setRate(.mbit(4), now: .us(500))
        let (out, _) = drive(&link, [])
        #expect(out.map(\.1) == [.ms(1), .ms(3)])
    }

    @Test func zeroRateStallsUntilTheRateReturns() {
        var link = RateLink<TestPacket>(rate: Bitrate(bitsPerSecond: 0))
        link.enqueue(TestPacket(id: 0, byteCount: 1000), now: .zero)
        #expect(link.nextEventTime == .distantFuture)
        link.setRate(.mbit(8), now: .ms(50))
        let (out, _) = drive(&link, [])
        #expect(out.map(\.1) == [.ms(51)])
    }

    @Test func jitterKeepsOrderUnlessAskedAndStaysInBounds() {
        let arrivals = packets(2000, every: .microseconds(100))
        var ordered = DelayLine<TestPacket>(delay: .milliseconds(20), jitter: .milliseconds(5),
                                            random: SeededRandom(seed: 7, stream: "j"))
        let a = drive(&ordered, arrivals).out
        #expect(a.map(\.0.id) == Array(0..<2000))
        for (p, t) in a {
            let sent = arrivals[p.id].0
            #expect(t - sent >= .milliseconds(15))
            #expect(t - sent <= .milliseconds(25) + .microseconds(100 * 100)) // at most pushed behind earlier packets
        }
        var free = DelayLine<TestPacket>(delay: .milliseconds(20), jitter: .milliseconds(5), allowsReordering: true,
                                         random: SeededRandom(seed: 7, stream: "j"))
        let b = drive(&free, arrivals).out
        #expect(b.count == 2000)
        #expect(b.map(\.0.id) != Array(0..<2000))
        for (p, t) in b {
            let d = t - arrivals[p.id].0
            #expect(d >= .milliseconds(15) && d <= .milliseconds(25))
        }
        // Non-decreasing departure times either way.
        #expect(zip(b, b.dropFirst()).allSatisfy { $0.1 <= $1.1 })
    }
}

@Suite struct LossTests {
    @Test func bernoulliLossIsWithinFourSigmaForAFixedSeed() {
        let n = 100_000
        var loss = RandomLoss<TestPacket>(.bernoulli(Probability(0.1)), random: SeededRandom(seed: 42, stream: "loss"))
        let (out, drops) = drive(&loss, packets(n, every: .microseconds(10)))
        #expect(out.count + drops.count == n)
        let sigma = (Double(n) * 0.1 * 0.9).squareRoot()
        #expect(abs(Double(drops.count) - 10_000) < 4 * sigma)
        #expect(drops.allSatisfy { $0.reason == .loss })
    }

    @Test func sameSeedSameDropsOtherSeedOtherDrops() {
        func dropped(_ seed: UInt64) -> [Int] {
            var loss = RandomLoss<TestPacket>(.bernoulli(Probability(0.05)), random: SeededRandom(seed: seed, stream: "l"))
            return drive(&loss, packets(5000)).drops.map(\.packet.id)
        }
        #expect(dropped(1) == dropped(1))
        #expect(dropped(1) != dropped(2))
    }

    @Test func gilbertElliottHasItsMeanLossAndBurstLength() {
        // Good->Bad 1%, Bad->Good 10%: in Bad 1/11 of the time; all of Bad is lost.
        let process = LossProcess.gilbertElliott(p: Probability(0.01), r: Probability(0.1),
                                                 lossInGood: .zero, lossInBad: Probability(1))
        #expect(abs(process.meanLoss - 1.0 / 11.0) < 1e-12)
        let n = 400_000
        var loss = RandomLoss<TestPacket>(process, random: SeededRandom(seed: 3, stream: "ge"))
        let drops = drive(&loss, packets(n)).drops.map(\.packet.id)
        let rate = Double(drops.count) / Double(n)
        #expect(abs(rate - 1.0 / 11.0) < 0.01)
        // Bursts: runs of consecutive losses last 1/r = 10 packets on average.
        var runs = 0
        for (i, id) in drops.enumerated() where i == 0 || drops[i - 1] != id - 1 { runs += 1 }
        let meanRun = Double(drops.count) / Double(runs)
        #expect(meanRun > 8.5 && meanRun < 11.5)
    }
}

@Suite struct QueueTests {
    @Test func dropTailInPackets() {
        var link = RateLink<TestPacket>(rate: .mbit(8), queue: PacketQueue(packetLimit: 5))
        let (out, drops) = drive(&link, packets(10))
        // One on the wire, five waiting, four dropped: the last four.
        #expect(out.map(\.0.id) == [0, 1, 2, 3, 4, 5])
        #expect(drops.map(\.packet.id) == [6, 7, 8, 9])
        #expect(drops.allSatisfy { $0.reason == .queueFull && $0.at == .zero })
    }

    @Test func dropTailInBytes() {
        var link = RateLink<TestPacket>(rate: .mbit(8), queue: PacketQueue(packetLimit: nil, byteLimit: 3000))
        let (out, drops) = drive(&link, packets(10))
        #expect(out.count == 4)
        #expect(drops.count == 6)
        // A small packet still fits where a large one did not.
        var l2 = RateLink<TestPacket>(rate: .mbit(8), queue: PacketQueue(packetLimit: nil, byteLimit: 1500))
        let r = drive(&l2, [(.zero, TestPacket(id: 0, byteCount: 1000)), (.zero, TestPacket(id: 1, byteCount: 1000)),
                            (.zero, TestPacket(id: 2, byteCount: 1000)), (.zero, TestPacket(id: 3, byteCount: 400))])
        #expect(r.out.map(\.0.id) == [0, 1, 3])
    }

    /// 10.5 Mbit/s of 1000-byte packets offered to a 10 Mbit/s link for 6 s:
    /// a standing queue that grows by 50 ms every second under drop-tail.
    func overload(codel: CoDelParameters?) -> (sojourns: [(Instant, Interval)], drops: [Dropped<TestPacket>]) {
        let arrivals = packets(7875, bytes: 1000, every: .nanoseconds(761_904))
        var link = RateLink<TestPacket>(rate: .mbit(10), queue: PacketQueue(packetLimit: 1000, codel: codel))
        let (out, drops) = drive(&link, arrivals)
        return (out.map { ($0.1, $0.1 - arrivals[$0.0.id].0) }, drops)
    }

    @Test func codelKeepsTheStandingQueueNearTargetWhereDropTailDoesNot() {
        let tail = overload(codel: nil)
        let codel = overload(codel: CoDelParameters())
        func median(_ s: [(Instant, Interval)], from: Int, to: Int) -> Interval {
            let late = s.filter { $0.0 >= .ms(from) && $0.0 < .ms(to) }.map(\.1).sorted()
            return late[late.count / 2]
        }
        #expect(tail.drops.isEmpty)
        #expect(median(tail.sojourns, from: 3000, to: 6000) > .milliseconds(150))
        #expect(median(codel.sojourns, from: 3000, to: 6000) < .milliseconds(20))
        #expect(codel.drops.allSatisfy { $0.reason == .codel })
        #expect(codel.drops.count > 100)
        // RFC 8289 §5.4: no drop before the delay has stayed above target for an
        // interval. The delay passes 5 ms after about 100 ms of overload.
        let firstDrop = codel.drops.first!.at
        #expect(firstDrop >= .ms(195) && firstDrop <= .ms(230))
        // §5.5: in the dropping state the next drop comes interval / sqrt(count)
        // later (100, 70.7, 57.7 ms), at the first dequeue at or after that time
        // (one every 0.8 ms here).
        let gaps = zip(codel.drops, codel.drops.dropFirst()).prefix(3).map { $1.at - $0.at }
        for (gap, expected) in zip(gaps, [100.0, 70.711, 57.735]) {
            #expect(abs(gap.milliseconds - expected) < 0.81)
        }
    }

    @Test func codelLetsATransientBurstDrainWithoutDrops() {
        // 100 packets at once: 80 ms of queue, gone before an interval has passed.
        var link = RateLink<TestPacket>(rate: .mbit(10), queue: PacketQueue(codel: CoDelParameters()))
        let (out, drops) = drive(&link, packets(100))
        #expect(drops.isEmpty)
        #expect(out.count == 100)
    }

    @Test func codelDoesNotDropALightlyLoadedLink() {
        var link = RateLink<TestPacket>(rate: .mbit(10), queue: PacketQueue(codel: CoDelParameters()))
        let (out, drops) = drive(&link, packets(1000, every: .milliseconds(1)))
        #expect(drops.isEmpty)
        #expect(out.count == 1000)
    }
}

@Suite struct DuplicationAndReorderingTests {
    @Test func duplicationSendsCopiesAtTheSameInstant() {
        var dup = Duplication<TestPacket>(probability: Probability(0.2), random: SeededRandom(seed: 5, stream: "d"))
        let (out, _) = drive(&dup, packets(10_000, every: .microseconds(1)))
        let copies = out.count - 10_000
        #expect(copies == dup.duplicated)
        #expect(abs(Double(copies) - 2000) < 4 * (10_000 * 0.2 * 0.8).squareRoot())
        #expect(Set(out.map(\.0.id)).count == 10_000)
    }

    @Test func reorderingHoldsPacketsBackSoOthersOvertake() {
        var r = Reordering<TestPacket>(probability: Probability(0.1), extraDelay: .milliseconds(5),
                                       random: SeededRandom(seed: 9, stream: "r"))
        let arrivals = packets(1000, every: .milliseconds(1))
        let (out, _) = drive(&r, arrivals)
        #expect(out.count == 1000)
        var inversions = 0
        for (a, b) in zip(out, out.dropFirst()) where a.0.id > b.0.id { inversions += 1 }
        #expect(inversions > 50)
        for (p, t) in out {
            let d = t - arrivals[p.id].0
            #expect(d == .zero || d == .milliseconds(5))
        }
        #expect(out.filter { $0.1 - arrivals[$0.0.id].0 > .zero }.count == r.reordered)
    }
}

@Suite struct CoverageGateTests {
    @Test func downDropsWhatEntersAndWhatWouldLeave() {
        var gate = CoverageGate(DelayLine<TestPacket>(delay: .milliseconds(10)))
        gate.enqueue(TestPacket(id: 0, byteCount: 100), now: .ms(0))   // leaves at 10: delivered
        gate.enqueue(TestPacket(id: 1, byteCount: 100), now: .ms(5))   // leaves at 15: coverage gone
        var out: [Int] = []
        while let p = gate.dequeue(now: .ms(10)) { out.append(p.id) }
        gate.setCoverage(false, loss: .silent, now: .ms(12))
        #expect(gate.carrier)  // silent: the interface keeps carrier
        gate.enqueue(TestPacket(id: 2, byteCount: 100), now: .ms(13))  // dropped on entry
        while let p = gate.dequeue(now: .ms(15)) { out.append(p.id) }
        gate.setCoverage(true, loss: .silent, now: .ms(20))
        gate.enqueue(TestPacket(id: 3, byteCount: 100), now: .ms(21))
        while let p = gate.dequeue(now: .ms(31)) { out.append(p.id) }
        #expect(out == [0, 3])
        let drops = gate.drainDrops()
        #expect(drops.map(\.packet.id) == [2, 1])
        #expect(drops.map(\.at) == [.ms(13), .ms(15)])
        #expect(drops.allSatisfy { $0.reason == .coverage })
    }

    @Test func carrierLossReportsNoCarrierAndFlushesTheLink() {
        var gate = CoverageGate(RateLink<TestPacket>(rate: .mbit(8)))
        for i in 0..<5 { gate.enqueue(TestPacket(id: i, byteCount: 1000), now: .zero) }
        var out: [Int] = []
        while let p = gate.dequeue(now: .us(2500)) { out.append(p.id) }
        gate.setCoverage(false, loss: .carrier, now: .us(2500))
        #expect(!gate.carrier)
        #expect(gate.nextEventTime == .distantFuture)
        #expect(out == [0, 1])
        #expect(gate.drainDrops().map(\.packet.id) == [2, 3, 4])
        gate.setCoverage(true, loss: .carrier, now: .ms(10))
        #expect(gate.carrier)
    }
}
