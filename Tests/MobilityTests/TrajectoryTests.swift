import Testing
import Core
@testable import Mobility

@Suite struct TrajectoryTests {
    @Test func positionsAlongWaypointsWithSpeeds() throws {
        // 20 m/s east for 200 m, then north for 100 m at 10 m/s.
        let t = try Trajectory(waypoints: [
            Waypoint(Point(x: 0, y: 0), speed: 20),
            Waypoint(Point(x: 200, y: 0), speed: 10),
            Waypoint(Point(x: 200, y: 100)),
        ])
        #expect(t.end == .seconds(20))
        #expect(t.position(at: .seconds(5)) == Point(x: 100, y: 0))
        #expect(t.position(at: .seconds(10)) == Point(x: 200, y: 0))
        #expect(t.position(at: .seconds(15)) == Point(x: 200, y: 50))
        #expect(t.position(at: .seconds(60)) == Point(x: 200, y: 100))
        #expect(t.speed(at: .seconds(3)) == 20)
        #expect(t.speed(at: .seconds(12)) == 10)
        #expect(t.length == 300)
    }

    @Test func speedCarriesOnUntilChanged() throws {
        let t = try Trajectory(waypoints: [
            Waypoint(Point(x: 0, y: 0), speed: 25),
            Waypoint(Point(x: 100, y: 0)),
            Waypoint(Point(x: 200, y: 0)),
        ])
        #expect(t.end == .seconds(8))
    }

    @Test func stopsHoldThePosition() throws {
        let t = try Trajectory(waypoints: [
            Waypoint(Point(x: 0, y: 0), speed: 10),
            Waypoint(Point(x: 100, y: 0), stop: .seconds(30)),
            Waypoint(Point(x: 200, y: 0)),
        ])
        #expect(t.position(at: .seconds(10)) == Point(x: 100, y: 0))
        #expect(t.position(at: .seconds(25)) == Point(x: 100, y: 0))
        #expect(t.speed(at: .seconds(25)) == 0)
        #expect(t.position(at: .seconds(45)) == Point(x: 150, y: 0))
        #expect(t.end == .seconds(50))
    }

    @Test func arrivalTimesSetSegmentDurations() throws {
        let t = try Trajectory(waypoints: [
            Waypoint(Point(x: 0, y: 0)),
            Waypoint(Point(x: 300, y: 400), arrival: .seconds(25)),
        ])
        #expect(t.position(at: .seconds(5)) == Point(x: 60, y: 80))
        #expect(t.speed(at: .seconds(1)) == 20)
    }

    @Test func waypointErrorsNameTheWaypoint() {
        #expect(throws: TrajectoryError(index: 1, message: "no speed to get here: give the previous waypoint a speed or this one an arrival time")) {
            try Trajectory(waypoints: [Waypoint(Point(x: 0, y: 0)), Waypoint(Point(x: 10, y: 0))])
        }
        #expect(throws: TrajectoryError.self) {
            try Trajectory(waypoints: [Waypoint(Point(x: 0, y: 0), speed: 1), Waypoint(Point(x: 10, y: 0), arrival: .seconds(20)),
                                       Waypoint(Point(x: 20, y: 0), arrival: .seconds(10))])
        }
        #expect(throws: TrajectoryError.self) {
            try Trajectory(waypoints: [Waypoint(Point(x: 0, y: 0), speed: -3), Waypoint(Point(x: 10, y: 0))])
        }
    }

    @Test func speedsParseWithUnits() throws {
        #expect(try Speed.parse("72km/h") == 20)
        #expect(try Speed.parse("13 m/s") == 13)
        #expect(abs(try Speed.parse("50mph") - 22.352) < 1e-9)
        #expect(throws: QuantityError.self) { try Speed.parse("80") }
        #expect(throws: QuantityError.self) { try Speed.parse("-5km/h") }
    }
}
