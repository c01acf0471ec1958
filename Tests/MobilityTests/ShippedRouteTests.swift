import Testing
import Foundation
import Core
import Config
@testable import Mobility
@testable import wayside

/// Every route in Routes/ validates on its topology and renders; each shows
/// what it was shipped for.
@Suite struct ShippedRouteTests {
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    static let routes: [String] = {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root + "/Routes")) ?? []
        return names.filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    func load(_ name: String) throws -> RouteFiles.Loaded {
        try RouteFiles.load(route: Self.root + "/Routes/" + name, topology: nil, seed: nil)
    }

    @Test func routesAreShipped() {
        #expect(Self.routes.count >= 8)
    }

    @Test(arguments: routes)
    func routeValidatesAndRenders(_ name: String) throws {
        let loaded = try load(name)
        let c = loaded.coverage
        #expect(c.timeline.duration > .zero)
        #expect(!c.timeline.events.isEmpty)
        let table = TimelineTable(coverage: c, heading: name).text
        #expect(table.contains("coverage ("))
        let svg = CoverageDiagram(coverage: c, title: name).svg
        // Well-formed XML: the trace importer's scanner reads it to the end.
        var scanner = XMLScanner(svg)
        var elements = 0
        while let e = try scanner.next() { if case .start = e.event { elements += 1 } }
        #expect(elements > 10)
        // The same seed gives the same timeline.
        #expect(try load(name).coverage.timeline == c.timeline)
    }

    func gapsBetweenCells(_ c: DriveCoverage) -> [Interval] {
        let gaps = c.timeline.gaps(across: c.sites.map(\.link))
        // Before the first cell and after the last one are not gaps between cells.
        return gaps.filter { $0.start > .zero && $0.end < c.timeline.duration }.map { $0.end - $0.start }
    }

    @Test func highwayGapsHaveGapsOfTheExpectedLength() throws {
        // 400 m without a unit: 18 s at 80 km/h, 11.08 s at 130 km/h.
        for (name, seconds) in [("highway-80-gaps.yaml", 18.0), ("highway-130-gaps.yaml", 400 / (130 / 3.6))] {
            let gaps = gapsBetweenCells(try load(name).coverage)
            #expect(gaps.count == 2)
            for g in gaps { #expect(abs(g.seconds - seconds) < 0.01) }
        }
    }

    @Test func highwayOverlapHasNoGapsAndOverlaps() throws {
        for (name, kmh) in [("highway-80-overlap.yaml", 80.0), ("highway-130-overlap.yaml", 130.0)] {
            let c = try load(name).coverage
            #expect(gapsBetweenCells(c).isEmpty)
            // Neighbouring cells overlap by 100 m (less a little for the 5 m lateral offset).
            let up = c.sites.map { c.timeline.coveredIntervals(of: $0.link)[0] }
            for (a, b) in zip(up, up.dropFirst()) {
                #expect(abs((a.end - b.start).seconds - 99.9 / (kmh / 3.6)) < 0.05)
            }
        }
    }

    @Test func urbanStopsOneInsideOneOutside() throws {
        let c = try load("urban-stop-and-go.yaml").coverage
        let t = try #require(c.trajectory)
        // Find the stops: segments whose two knots are at the same place.
        let stops = zip(t.knots, t.knots.dropFirst()).filter { $0.0.position == $0.1.position }.map { ($0.0.at, $0.1.at) }
        #expect(stops.count >= 3)
        func covered(_ at: Interval) -> Bool {
            c.sites.contains { site in c.timeline.coveredIntervals(of: site.link).contains { $0.start <= at && at < $0.end } }
        }
        let inside = stops.filter { s in stride(from: s.0.nanoseconds, to: s.1.nanoseconds, by: 500_000_000).allSatisfy { covered(Interval(nanoseconds: $0)) } }
        let outside = stops.filter { s in stride(from: s.0.nanoseconds, to: s.1.nanoseconds, by: 500_000_000).allSatisfy { !covered(Interval(nanoseconds: $0)) } }
        #expect(inside.count >= 1)
        #expect(outside.count >= 1)
        // Log-distance radios set rate and loss on the links as the signal changes.
        #expect(c.timeline.events.contains { if case .set(let p) = $0.change { return p.rate != nil && p.loss != nil } else { return false } })
    }

    @Test func longDriveLastsTenMinutes() throws {
        for name in ["long-drive.yaml", "long-drive-gpx.yaml"] {
            let c = try load(name).coverage
            #expect(c.timeline.duration >= .seconds(600))
            let ups = c.timeline.events.filter { $0.change == .coverage(true, loss: .carrier) }
            #expect(ups.count >= 30)
        }
    }

    @Test func cellularBackupFollowsTheTraceBothWays() throws {
        let c = try load("cellular-backup.yaml").coverage
        let cell = c.timeline.events(for: "cellular")
        let up = cell.compactMap { e -> Bitrate? in if case .set(let p) = e.change, e.direction == .aToB { return p.rate } else { return nil } }
        let down = cell.compactMap { e -> Bitrate? in if case .set(let p) = e.change, e.direction == .bToA { return p.rate } else { return nil } }
        #expect(up.count > 30 && down.count > 30)
        let meanUp = Double(up.map(\.bitsPerSecond).reduce(0, +)) / Double(up.count)
        let meanDown = Double(down.map(\.bitsPerSecond).reduce(0, +)) / Double(down.count)
        #expect(meanUp > 3e6 && meanUp < 7e6)
        #expect(meanDown > 14e6 && meanDown < 26e6)
        // The DSRC links still come and go with geometry; the cellular link never loses coverage here.
        #expect(!cell.contains { if case .coverage = $0.change { return true } else { return false } })
        #expect(gapsBetweenCells(c).count == 1)
    }

    @Test func cellularTraceGeneratorIsReproducible() throws {
        let model = CellularTraceModel(mean: .mbit(5))
        let a = model.mahimahiTrace(duration: .seconds(10), seed: 3)
        #expect(a == model.mahimahiTrace(duration: .seconds(10), seed: 3))
        #expect(a != model.mahimahiTrace(duration: .seconds(10), seed: 4))
        let trace = try MahimahiCapacity(a)
        #expect(trace.period == .seconds(10))
        // The shipped uplink trace is what the documented command writes.
        let shipped = try String(contentsOfFile: Self.root + "/Routes/traces/cellular-uplink.mahi", encoding: .utf8)
        #expect(shipped == model.mahimahiTrace(duration: .seconds(120), seed: 11))
    }

    @Test func gpxWriterRoundTripsThroughTheImporter() throws {
        let drive = try Trajectory(waypoints: [Waypoint(Point(x: -300, y: 5), speed: 25), Waypoint(Point(x: 900, y: -40))])
        let origin = GeoCoordinate(latitude: 48.1372, longitude: 11.5756)
        let text = GPXWriter(origin: origin).gpx(drive, every: .seconds(1), seed: 1, name: "t")
        let back = try GPXImporter.trajectory(text, origin: origin)
        // GPX times are written to the millisecond.
        #expect(abs((back.end - drive.end).seconds) < 0.001)
        for k in back.knots { #expect(k.position.distance(to: drive.position(at: k.at)) < 0.05) }
    }

    @Test func badRouteFileFailsWithItsPlaceAndWritesNoSVG() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("wayside-route-\(UInt64.random(in: 0...UInt64.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let route = dir.appendingPathComponent("bad.yaml").path
        try "topology: \(Self.root)/Topologies/highway-2rsu.yaml\ndrive:\n  waypoints:\n    - {x: 0, y: 0, speed: 80km/h}\n    - {x: 100, y: 0, sotp: 1s}\n"
            .write(toFile: route, atomically: true, encoding: .utf8)
        let svg = dir.appendingPathComponent("out.svg").path
        var command = try RouteCommand.Show.parse([route, "--svg", svg])
        #expect(throws: RouteFiles.Failure.self) { try command.run() }
        do { try command.run() } catch {
            #expect("\(error)" == "\(route):5:22: unknown key 'sotp'; did you mean 'stop'? (expected 'x', 'y', 'speed', 'at' or 'stop')")
        }
        #expect(!FileManager.default.fileExists(atPath: svg))
        // A link the topology does not have: caught after decoding, still located.
        try "topology: \(Self.root)/Topologies/highway-2rsu.yaml\nduration: 5s\nevents:\n  - {at: 1s, link: car-rsu3, coverage: down}\n"
            .write(toFile: route, atomically: true, encoding: .utf8)
        command = try RouteCommand.Show.parse([route, "--svg", svg])
        do { try command.run(); Issue.record("expected an error") } catch {
            #expect("\(error)".hasPrefix("\(route):4:20: no link 'car-rsu3' in the topology"))
        }
        #expect(!FileManager.default.fileExists(atPath: svg))
        // And a good one writes the SVG whole.
        command = try RouteCommand.Show.parse([Self.root + "/Routes/highway-80-gaps.yaml", "--svg", svg])
        try command.run()
        let written = try String(contentsOfFile: svg, encoding: .utf8)
        #expect(written.hasPrefix("<svg") && written.hasSuffix("</svg>\n"))
    }
}
