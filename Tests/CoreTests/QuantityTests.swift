import Testing
@testable import Core

@Suite struct QuantityTests {
    @Test(arguments: [
        ("20ms", Interval.milliseconds(20)), ("1.5s", .milliseconds(1500)), ("250us", .microseconds(250)),
        ("100ns", .nanoseconds(100)), ("2min", .seconds(120)), ("0s", .zero), (" 7 ms ", .milliseconds(7)),
        ("1e3ms", .seconds(1)),
    ])
    func intervalParses(text: String, expected: Interval) throws {
        #expect(try Quantity.interval(text) == expected)
    }

    @Test(arguments: ["20", "ms", "20 parsecs", "", "1.2.3ms", "nan s", "1e30s", "5e"])
    func intervalRejects(text: String) {
        #expect(throws: QuantityError.self) { try Quantity.interval(text) }
    }

    @Test func negativeIntervalRejectedWhereNotAllowed() {
        #expect(throws: QuantityError.self) { try Quantity.nonNegativeInterval("-1ms") }
        #expect(try! Quantity.interval("-1ms") == .milliseconds(-1))
    }

    @Test(arguments: [
        ("54mbit", Int64(54_000_000)), ("3kbit", 3_000), ("1gbit", 1_000_000_000), ("500bit", 500),
        ("10Mbps", 10_000_000), ("2.5Mbit/s", 2_500_000),
    ])
    func bitrateParses(text: String, bps: Int64) throws {
        #expect(try Bitrate.parse(text).bitsPerSecond == bps)
    }

    @Test(arguments: ["54", "54mb", "-1mbit", "fast"])
    func bitrateRejects(text: String) {
        #expect(throws: QuantityError.self) { try Bitrate.parse(text) }
    }

    @Test func bitrateRendersAsWritten() throws {
        for text in ["54mbit", "3kbit", "1gbit", "500bit", "2.5mbit"] {
            #expect(try Bitrate.parse(text).description == text)
        }
    }

    @Test func transmissionTimeRoundsUp() {
        // 1500 bytes at 12 Mbit/s is exactly 1 ms; at 7 Mbit/s 1714285.71.. ns -> 1714286.
        #expect(Bitrate.mbit(12).transmissionTime(bytes: 1500) == .milliseconds(1))
        #expect(Bitrate.mbit(7).transmissionTime(bytes: 1500) == .nanoseconds(1_714_286))
        // No overflow for large transfers at low rates.
        #expect(Bitrate(bitsPerSecond: 1).transmissionTime(bytes: 1 << 30).nanoseconds == Int64(1) << 33 * 1_000_000_000)
    }

    @Test(arguments: [("0.5%", 0.005), ("0.005", 0.005), ("100%", 1.0), ("0", 0.0)])
    func probabilityParses(text: String, value: Double) throws {
        #expect(abs(try Probability.parse(text).value - value) < 1e-12)
    }

    @Test(arguments: ["101%", "1.5", "-1%", "0.5 percent"])
    func probabilityRejects(text: String) {
        #expect(throws: QuantityError.self) { try Probability.parse(text) }
    }

    @Test(arguments: [("1500", 1500), ("1500B", 1500), ("64KiB", 65536), ("1MB", 1_000_000), ("2MiB", 2_097_152)])
    func byteSizeParses(text: String, bytes: Int) throws {
        #expect(try ByteSize.parse(text) == bytes)
    }

    @Test(arguments: ["1.5B", "64kib", "lots"])
    func byteSizeRejects(text: String) {
        #expect(throws: QuantityError.self) { try ByteSize.parse(text) }
    }

    @Test func errorSaysWhatWasExpected() {
        do { _ = try Quantity.interval("20") } catch {
            #expect(error.description == "cannot read '20': expected a duration with a unit (ns, us, ms, s, min, h), e.g. 20ms")
        }
    }

    @Test func intervalRendering() {
        #expect(Interval.milliseconds(20).description == "20ms")
        #expect(Interval.milliseconds(1500).description == "1500ms")
        #expect(Interval.seconds(3).description == "3s")
        #expect(Interval.nanoseconds(1_500).description == "1.5us")
    }
}

@Suite struct SeededRandomTests {
    @Test func sameSeedSameDraws() {
        var a = SeededRandom(seed: 42), b = SeededRandom(seed: 42)
        for _ in 0..<1000 { #expect(a.next() == b.next()) }
    }

    @Test func differentSeedsDiffer() {
        var a = SeededRandom(seed: 1), b = SeededRandom(seed: 2)
        #expect((0..<16).map { _ in a.next() } != (0..<16).map { _ in b.next() })
    }

    @Test func streamsAreIndependentOfEachOther() {
        var a = SeededRandom(seed: 7, stream: "link-a"), b = SeededRandom(seed: 7, stream: "link-b")
        #expect(a.next() != b.next())
    }

    @Test func unitIsInRangeAndRoughlyUniform() {
        var r = SeededRandom(seed: 3)
        var sum = 0.0
        let n = 100_000
        for _ in 0..<n { let u = r.unit(); #expect(u >= 0 && u < 1); sum += u }
        // Mean of n uniforms has standard deviation 1/sqrt(12n) ~ 0.0009; 5 sigma.
        #expect(abs(sum / Double(n) - 0.5) < 0.0046)
    }

    @Test func chanceMatchesProbability() {
        var r = SeededRandom(seed: 11)
        let n = 200_000
        let hits = (0..<n).filter { _ in r.chance(0.02) }.count
        // Binomial sd = sqrt(n p (1-p)) ~ 62.6; 5 sigma.
        #expect(abs(hits - 4000) < 313)
    }
}

@Suite struct CoverageTimelineTests {
    @Test func eventsSortByTimeKeepingOrderAtTies() {
        let t = CoverageTimeline(events: [
            TimelineEvent(at: .seconds(5), link: "car-rsu1", change: .coverage(false, loss: .silent)),
            TimelineEvent(at: .seconds(4), link: "car-rsu2", change: .coverage(true, loss: .silent)),
            TimelineEvent(at: .seconds(5), link: "car-rsu2", change: .set(LinkParameters(delay: .milliseconds(5)))),
        ], duration: .seconds(10))
        #expect(t.events.map { $0.link } == ["car-rsu2", "car-rsu1", "car-rsu2"])
        #expect(t.links == ["car-rsu2", "car-rsu1"])
        #expect(t.events(for: "car-rsu2").count == 2)
    }

    @Test func parametersUpdateOnlySetFields() {
        let base = LinkParameters(delay: .milliseconds(10), rate: .mbit(10))
        let next = base.updated(by: LinkParameters(rate: .mbit(3)))
        #expect(next.delay == .milliseconds(10))
        #expect(next.rate == .mbit(3))
    }

    @Test func directionsInclude() {
        #expect(LinkDirection.both.includes(.aToB))
        #expect(LinkDirection.aToB.includes(.both))
        #expect(!LinkDirection.aToB.includes(.bToA))
    }
}

@Suite struct TextFormattingTests {
    @Test func jsonStringsEscapeQuotesBackslashesAndControls() {
        var out = ""
        TextFormatting.appendJSONString("a\"b\\c\nd\u{01}é", to: &out)
        #expect(out == "\"a\\\"b\\\\c\\nd\\u0001é\"")
    }

    @Test func fixedDecimals() {
        #expect(TextFormatting.fixed(12.5, digits: 2) == "12.50")
        #expect(TextFormatting.fixed(12.5, digits: 2, trimmingZeros: true) == "12.5")
        #expect(TextFormatting.fixed(3.0, digits: 3, trimmingZeros: true) == "3")
        #expect(TextFormatting.fixed(-0.125, digits: 1) == "-0.1")
        #expect(TextFormatting.fixed(7.4, digits: 0) == "7")
        #expect(TextFormatting.fixed(.nan, digits: 2) == nil)
    }
}
