import Testing
import Core
import Config
@testable import Mobility

@Suite struct RouteTests {
    /// A topology of one vehicle, two disk RSUs and a cellular link, as the CLI builds it from a topology file.
    static let topology = RouteTopology(
        vehicles: ["car"], links: ["car-rsu1", "car-rsu2", "car-cell", "rsu1-router"],
        sites: { _ in [
            RoadsideUnitSite(name: "rsu1", link: "car-rsu1", position: Point(x: 0, y: 10), radio: .disk(DiskRadio(range: 100))),
            RoadsideUnitSite(name: "rsu2", link: "car-rsu2", position: Point(x: 500, y: 10), radio: .disk(DiskRadio(range: 100))),
        ] },
        uplink: { _, link in ["car-rsu1", "car-rsu2", "car-cell"].contains(link) ? .aToB : nil })

    @Test func waypointRouteBecomesATimeline() throws {
        let yaml = """
        description: past two RSUs
        topology: two.yaml
        step: 50ms
        drive:
          waypoints:
            - {x: -200, y: 10, speed: 72km/h}
            - {x: 250, y: 10, stop: 5s}
            - {x: 800, y: 10}
        events:
          - {at: 30s, link: car-rsu1, set: {delay: 20ms, loss: 1%}}
          - {at: 31s, link: car-rsu1, direction: a-to-b, ramp: {rate: 1mbit}, over: 2s}
        """
        let route = try Route.decode(text: yaml, file: "Routes/two.yaml")
        #expect(route.topology == "two.yaml")
        #expect(route.step == .milliseconds(50))
        let c = try route.coverage(on: Self.topology) { _ in "" }
        // 72 km/h = 20 m/s: rsu1 from x = −100 (5 s) to 100 (15 s); the stop at 250 lasts
        // 22.5–27.5 s; rsu2 from x = 400 at 35 s to 600 at 45 s; the drive ends at 55 s.
        let up1 = c.timeline.coveredIntervals(of: "car-rsu1")
        #expect(up1.count == 1)
        #expect(abs(up1[0].start.seconds - 5) < 1e-6 && abs(up1[0].end.seconds - 15) < 1e-6)
        let up2 = c.timeline.coveredIntervals(of: "car-rsu2")
        #expect(abs(up2[0].start.seconds - 35) < 1e-6 && abs(up2[0].end.seconds - 45) < 1e-6)
        #expect(c.timeline.duration == .seconds(55))
        #expect(c.timeline.events.contains { $0.at == .seconds(31) && $0.direction == .aToB && $0.change == .ramp(LinkParameters(rate: .mbit(1)), over: .seconds(2)) })
        let gaps = c.timeline.gaps(across: ["car-rsu1", "car-rsu2"])
        #expect(gaps.count == 3)
        let table = TimelineTable(coverage: c, heading: "two").text
        #expect(table.contains("5.000s  car-rsu1  both    coverage up"))
        #expect(table.contains("gaps without a roadside unit: 3"))
        let svg = CoverageDiagram(coverage: c, title: "two <&>").svg
        #expect(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n") && svg.contains("two &lt;&amp;&gt;"))
    }

    @Test func everyProblemIsReportedWithItsPlace() {
        let yaml = """
        topology: two.yaml
        stp: 50ms
        coverage-loss: loud
        drive:
          waypoints:
            - {x: 0, y: 0, speed: 80}
            - {x: 100, y: zero}
        events:
          - {at: 5, link: car-rsu1, coverage: down}
          - {at: 6s, link: car-rsu1, set: {rate: 0mbit}}
          - {at: 7s, link: car-rsu1, coverage: up, set: {rate: 1mbit}}
        """
        do {
            _ = try Route.decode(text: yaml, file: "r.yaml")
            Issue.record("expected errors")
        } catch {
            let text = error.description
            #expect(text.contains("r.yaml:2:1: unknown key 'stp'; did you mean 'step'?"))
            #expect(text.contains("r.yaml:3:16: expected how coverage loss shows ('silent' or 'carrier'), found 'loud'"))
            #expect(text.contains("r.yaml:6:27: cannot read '80'"))
            #expect(text.contains("r.yaml:7:19: expected a distance in metres"))
            #expect(text.contains("r.yaml:9:10: cannot read '5'"))
            #expect(text.contains("r.yaml:10:42: expected a rate above zero"))
            #expect(text.contains("r.yaml:11:44: 'set' cannot be given together with 'coverage'"))
        }
    }

    @Test func trajectoryProblemsPointAtTheWaypoint() {
        let yaml = "topology: t\ndrive:\n  waypoints:\n    - {x: 0, y: 0}\n    - {x: 10, y: 0}\n"
        #expect(throws: ConfigError(at: SourceLocation(file: "r.yaml", line: 5, column: 7),
                                    "no speed to get here: give the previous waypoint a speed or this one an arrival time")) {
            try Route.decode(text: yaml, file: "r.yaml")
        }
    }

    @Test func traceErrorsNameTheTraceLine() throws {
        let yaml = """
        topology: two.yaml
        drive:
          trace: {csv: traces/drive.csv, offset: {x: -100, y: 10}}
        capacity:
          - {link: car-cell, uplink: traces/up.mahi, downlink: traces/missing.mahi}
          - {link: car-rsu9, uplink: traces/up.mahi}
        events:
          - {at: 1s, link: car-rsu3, coverage: down}
        """
        let route = try Route.decode(text: yaml, file: "Routes/r.yaml")
        let files = ["Routes/traces/drive.csv": "t,x,y\n0,0,0\n10,200,0\n20,zz,0\n", "Routes/traces/up.mahi": "5\n10\n"]
        struct Missing: Error, CustomStringConvertible { var description: String { "no such file" } }
        do {
            _ = try route.coverage(on: Self.topology) { path in
                guard let t = files[path] else { throw Missing() }
                return t
            }
            Issue.record("expected errors")
        } catch {
            let lines = error.description.split(separator: "\n").map(String.init)
            #expect(lines.contains("Routes/traces/drive.csv:4:4: 'zz' is not a number (x in metres)"))
            #expect(lines.contains("Routes/r.yaml:5:56: cannot read trace 'Routes/traces/missing.mahi': no such file"))
            #expect(lines.contains("Routes/r.yaml:6:12: no link 'car-rsu9' in the topology; did you mean 'car-rsu1'?"))
            #expect(lines.contains("Routes/r.yaml:8:20: no link 'car-rsu3' in the topology; did you mean 'car-rsu1'?"))
        }
    }

    @Test func importedTraceIsShiftedIntoTheTopology() throws {
        let yaml = "topology: two.yaml\ndrive:\n  trace: {csv: d.csv, offset: {x: -100, y: 10}}\ncapacity:\n  - {link: car-cell, uplink: up.mahi, window: 500ms}\n"
        let route = try Route.decode(text: yaml, file: "r.yaml")
        let c = try route.coverage(on: Self.topology) { path in
            path == "d.csv" ? "100,0,0\n110,200,0\n" : "100\n200\n300\n1000\n"
        }
        // Starts at x = −100 at t = 0 (trace times shifted), 20 m/s: rsu1 until x = 100 at 10 s.
        let up = c.timeline.coveredIntervals(of: "car-rsu1")
        #expect(up.count == 1 && up[0].start == .zero && abs(up[0].end.seconds - 10) < 1e-6)
        let rates = c.timeline.events(for: "car-cell").filter { $0.direction == .aToB }
        #expect(rates.first?.change == .set(LinkParameters(rate: Bitrate(bitsPerSecond: 72_000))))
    }
}
