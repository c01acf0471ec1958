import Testing
import Core
@testable import Mobility

@Suite struct CoverageTests {
    func coverageChanges(_ c: DriveCoverage, link: String) -> [(Interval, Bool)] {
        c.timeline.events(for: link).compactMap {
            if case let .coverage(up, _) = $0.change { return ($0.at, up) } else { return nil }
        }
    }

    /// A vehicle at 25 m/s along y = 0 from x = −500; an RSU at (300, 60) with
    /// a 100 m disk. It is in range where (x − 300)² + 60² ≤ 100², i.e.
    /// x ∈ [220, 380]: enter at (500 + 220) / 25 = 28.8 s, leave at 880 / 25 = 35.2 s.
    @Test func diskEnterAndExitMatchHandCalculation() throws {
        let drive = try Trajectory(waypoints: [Waypoint(Point(x: -500, y: 0), speed: 25), Waypoint(Point(x: 1000, y: 0))])
        let rsu = RoadsideUnitSite(name: "rsu1", link: "car-rsu1", position: Point(x: 300, y: 60),
                                   radio: .disk(DiskRadio(range: 100, rate: .mbit(12))))
        let c = DriveCoverage.compute(trajectory: drive, sites: [rsu], duration: drive.end)
        let changes = coverageChanges(c, link: "car-rsu1")
        #expect(changes.map(\.1) == [false, true, false])
        #expect(changes[0].0 == .zero)
        #expect(abs(changes[1].0.seconds - 28.8) < 1e-6)
        #expect(abs(changes[2].0.seconds - 35.2) < 1e-6)
        // The fixed rate is set before coverage comes.
        let events = c.timeline.events(for: "car-rsu1")
        #expect(events[1].change == .set(LinkParameters(rate: .mbit(12))))
        #expect(events[1].at == changes[1].0)
        #expect(c.timeline.duration == .seconds(60))
    }

    /// The same crossing at 130 km/h (36.11 m/s), a hold of 250 ms and a
    /// 20 m leave margin: enter at 720 / v + 0.25, leave where (x − 300)² + 60² = 120²,
    /// x = 300 + √(120² − 60²) ≈ 403.92, at (500 + 403.92) / v + 0.25.
    @Test func diskHoldAndMarginShiftTheTimes() throws {
        let v = 130 / 3.6
        let drive = try Trajectory(waypoints: [Waypoint(Point(x: -500, y: 0), speed: v), Waypoint(Point(x: 1000, y: 0))])
        let rsu = RoadsideUnitSite(name: "rsu1", link: "l1", position: Point(x: 300, y: 60), radio: .disk(DiskRadio(range: 100)))
        let settings = CoverageSettings(association: AssociationPolicy(rangeMargin: 20, hold: .milliseconds(250)))
        let c = DriveCoverage.compute(trajectory: drive, sites: [rsu], duration: drive.end, settings: settings)
        let changes = coverageChanges(c, link: "l1")
        #expect(changes.map(\.1) == [false, true, false])
        #expect(abs(changes[1].0.seconds - (720 / v + 0.25)) < 1e-6)
        let leaveX = 300 + (120.0 * 120 - 60 * 60).squareRoot()
        #expect(abs(changes[2].0.seconds - ((500 + leaveX) / v + 0.25)) < 1e-6)
    }

    @Test func startingInsideCoverageIsUpAtZero() throws {
        let drive = try Trajectory(waypoints: [Waypoint(Point(x: 0, y: 0), speed: 10), Waypoint(Point(x: 500, y: 0))])
        let rsu = RoadsideUnitSite(name: "r", link: "l", position: .origin, radio: .disk(DiskRadio(range: 200)))
        let c = DriveCoverage.compute(trajectory: drive, sites: [rsu], duration: drive.end)
        let changes = coverageChanges(c, link: "l")
        #expect(changes.map(\.1) == [true, false])
        #expect(changes[0].0 == .zero)
        #expect(abs(changes[1].0.seconds - 20) < 1e-6)
    }

    @Test func meanPowerFollowsLogDistance() {
        let r = LogDistanceRadio(transmitPowerDBm: 20, referenceLossDB: 40, exponent: 3, shadowingSigmaDB: 0)
        #expect(r.meanReceivedPowerDBm(distance: 1) == -20)
        #expect(abs(r.meanReceivedPowerDBm(distance: 100) - -80) < 1e-9)
        #expect(abs(r.distance(atReceivedPowerDBm: -80) - 100) < 1e-9)
    }

    @Test func rateTableChoosesTheBestGoodput() {
        let t = RateTable.ieee80211p
        #expect(t.operatingPoint(rssiDBm: -50).rate == .mbit(27))
        #expect(t.operatingPoint(rssiDBm: -50).packetErrorRate < 1e-6)
        #expect(t.operatingPoint(rssiDBm: -83).rate == .mbit(3) || t.operatingPoint(rssiDBm: -83).rate == .kbit(4500))
        #expect(t.operatingPoint(rssiDBm: -75).rate == .mbit(12))
        #expect(abs(t.packetErrorRate(marginDB: 0) - 0.1) < 1e-12)
        #expect(t.packetErrorRate(marginDB: 5) < 0.001)
        #expect(t.packetErrorRate(marginDB: -5) > 0.99)
    }

    func shadowedDrive(seed: UInt64, sigma: Double = 6, policy: AssociationPolicy = AssociationPolicy()) throws -> DriveCoverage {
        let drive = try Trajectory(waypoints: [Waypoint(Point(x: -1500, y: 0), speed: 30), Waypoint(Point(x: 1500, y: 0))])
        let radio = LogDistanceRadio(exponent: 2.2, shadowingSigmaDB: sigma, decorrelationDistance: 20)
        let rsu = RoadsideUnitSite(name: "rsu1", link: "car-rsu1", position: Point(x: 0, y: 10), radio: .logDistance(radio))
        return DriveCoverage.compute(trajectory: drive, sites: [rsu], duration: drive.end,
                                     settings: CoverageSettings(seed: seed, association: policy))
    }

    @Test func shadowingIsReproducibleBySeed() throws {
        let a = try shadowedDrive(seed: 7), b = try shadowedDrive(seed: 7), c = try shadowedDrive(seed: 8)
        #expect(a.timeline == b.timeline)
        #expect(a.samples["rsu1"] == b.samples["rsu1"])
        #expect(a.samples["rsu1"]!.map(\.receivedPowerDBm) != c.samples["rsu1"]!.map(\.receivedPowerDBm))
        // Shadowing has the configured spread around the mean.
        let radio = LogDistanceRadio(exponent: 2.2, shadowingSigmaDB: 6)
        let residuals = a.samples["rsu1"]!.map { $0.receivedPowerDBm! - radio.meanReceivedPowerDBm(distance: $0.distance) }
        let mean = residuals.reduce(0, +) / Double(residuals.count)
        let sd = (residuals.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(residuals.count)).squareRoot()
        #expect(sd > 4 && sd < 8)
    }

    @Test func hysteresisPreventsFlapping() throws {
        let bare = AssociationPolicy(marginDB: 0, hold: .zero)
        let damped = AssociationPolicy(marginDB: 4, hold: .milliseconds(500))
        var flapsBare = 0, flapsDamped = 0
        for seed in UInt64(1)...10 {
            let b = try shadowedDrive(seed: seed, policy: bare)
            let d = try shadowedDrive(seed: seed, policy: damped)
            let cb = coverageChanges(b, link: "car-rsu1"), cd = coverageChanges(d, link: "car-rsu1")
            flapsBare += cb.count - 3
            flapsDamped += cd.count - 3
            // With hold, nothing shorter than the hold survives between two changes.
            for (x, y) in zip(cd.dropFirst(), cd.dropFirst(2)) { #expect(y.0 - x.0 >= .milliseconds(500)) }
            // Coverage still comes and goes on every drive.
            #expect(cd.contains { $0.1 } && cd.last?.1 == false)
        }
        #expect(flapsBare > 20)
        #expect(flapsDamped < flapsBare / 4)
    }

    @Test func rateAndLossFollowTheSignal() throws {
        let c = try shadowedDrive(seed: 3, sigma: 0)
        let sets: [(Interval, LinkParameters)] = c.timeline.events(for: "car-rsu1").compactMap {
            if case let .set(p) = $0.change { return ($0.at, p) } else { return nil }
        }
        // Rates rise towards the RSU and fall after it, reaching 27 Mbit/s near it.
        let rates = sets.compactMap(\.1.rate)
        #expect(rates.contains(.mbit(27)))
        let peak = rates.firstIndex(of: .mbit(27))!
        #expect(rates[...peak] == rates[...peak].sorted()[...])
        #expect(rates.first! <= .kbit(4500))
        // Without shadowing, association starts where the mean power reaches the
        // slowest rate's sensitivity (−85 dBm) and ends 3 dB lower, each after the
        // 300 ms hold; the vehicle passes x = 0 at 50 s at 30 m/s.
        let radio = LogDistanceRadio(exponent: 2.2, shadowingSigmaDB: 0)
        func along(_ dBm: Double) -> Double { let d = radio.distance(atReceivedPowerDBm: dBm); return (d * d - 100).squareRoot() }
        let up = coverageChanges(c, link: "car-rsu1")
        #expect(up.count == 3)
        #expect(abs(up[1].0.seconds - (50 - along(-85) / 30 + 0.3)) < 0.11)
        #expect(abs(up[2].0.seconds - (50 + along(-88) / 30 + 0.3)) < 0.11)
    }

    @Test func capacityTraceBecomesRateSettings() throws {
        let trace = try MahimahiCapacity("10\n20\n30\n40\n500\n510\n1000\n")
        let link = CapacityTraceLink(link: "car-cell", uplinkDirection: .aToB, uplink: trace, downlink: nil, window: .milliseconds(500))
        let events = link.events(duration: .seconds(2))
        #expect(events.allSatisfy { $0.direction == .aToB && $0.link == "car-cell" })
        // [0,500): 4, [500,1000): 2, [1000,1500): 1000-line + 10..40 = 5, [1500,2000): 2.
        #expect(events.map(\.change) == [
            .set(LinkParameters(rate: Bitrate(bitsPerSecond: 96_000))),
            .set(LinkParameters(rate: Bitrate(bitsPerSecond: 48_000))),
            .set(LinkParameters(rate: Bitrate(bitsPerSecond: 120_000))),
            .set(LinkParameters(rate: Bitrate(bitsPerSecond: 48_000))),
        ])
        let gappy = try MahimahiCapacity("100\n1500\n2000\n")
        let g = CapacityTraceLink(link: "c", uplink: nil, downlink: gappy, window: .milliseconds(500)).events(duration: .seconds(2))
        #expect(g.map(\.change) == [
            .set(LinkParameters(rate: Bitrate(bitsPerSecond: 24_000))),
            .coverage(false, loss: .silent),
            .coverage(true, loss: .silent),
        ])
        #expect(g.map(\.at) == [.zero, .milliseconds(500), .milliseconds(1500)])
        #expect(g.allSatisfy { $0.direction == .bToA })
    }
}
