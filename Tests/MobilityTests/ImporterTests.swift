import Testing
import Core
@testable import Mobility

@Suite struct ImporterTests {
    /// Lengths of one degree on the WGS 84 ellipsoid (standard tables).
    @Test(arguments: [
        (0.0, 110_574.3, 111_319.5),
        (45.0, 111_132.9, 78_846.8),
        (60.0, 111_412.3, 55_799.9),
    ])
    func projectionMatchesKnownDegreeLengths(latitude: Double, metresPerDegreeLatitude: Double, metresPerDegreeLongitude: Double) {
        let p = LocalProjection(origin: GeoCoordinate(latitude: latitude, longitude: 10))
        // A hundredth of a degree each way, scaled up; local plane error is far below 1 m per km.
        let north = p.project(GeoCoordinate(latitude: latitude + 0.01, longitude: 10))
        let east = p.project(GeoCoordinate(latitude: latitude, longitude: 10.01))
        #expect(abs(north.y * 100 - metresPerDegreeLatitude) < 15)
        #expect(abs(north.x) < 1e-9)
        #expect(abs(east.x * 100 - metresPerDegreeLongitude) < 1)
    }

    @Test func gpxTrackIsProjectedAndTimed() throws {
        let gpx = """
        <?xml version="1.0" encoding="UTF-8"?>
        <gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
          <!-- a drive north along a meridian at 45°N -->
          <trk><name>A &amp; B</name><trkseg>
            <trkpt lat="45.0" lon="7.0"><ele>200</ele><time>2024-05-01T12:00:00Z</time></trkpt>
            <trkpt lat="45.009" lon="7.0"><time>2024-05-01T12:00:40Z</time></trkpt>
            <trkpt lat="45.009" lon="7.0127"><time>2024-05-01T12:01:20.5Z</time></trkpt>
          </trkseg></trk>
        </gpx>
        """
        let t = try GPXImporter.trajectory(gpx)
        #expect(t.knots.count == 3)
        #expect(t.end == .milliseconds(80_500))
        // 0.009° of latitude at 45°N ≈ 1000.2 m; 0.0127° of longitude ≈ 1001.4 m.
        #expect(abs(t.knots[1].position.y - 1000.2) < 0.5)
        #expect(abs(t.knots[2].position.x - 1001.4) < 0.5)
        #expect(abs(t.length - 2001.6) < 1)
    }

    @Test func gpxWithoutTimesTakesASpeed() throws {
        let gpx = """
        <gpx><trk><trkseg><trkpt lat="0" lon="0"/><trkpt lat="0" lon="0.01"/></trkseg></trk></gpx>
        """
        let t = try GPXImporter.trajectory(gpx, speed: 1113.195)
        #expect(abs(t.end.seconds - 1) < 0.001)
        #expect(throws: TraceError(line: 1, message: "<trkpt> has no time")) { try GPXImporter.trajectory(gpx) }
    }

    @Test func gpxErrorsNameTheLine() {
        let bad = "<gpx>\n<trk><trkseg>\n<trkpt lat=\"91\" lon=\"0\"/>\n</trkseg></trk></gpx>"
        #expect(throws: TraceError(line: 3, column: 1, message: "'lat=\"91\"' is not a latitude (-90...90)")) { try GPXImporter.trajectory(bad) }
        let unclosed = "<gpx>\n<trk>\n<trkseg>\n</trk></gpx>"
        #expect(throws: TraceError(line: 4, column: 1, message: "</trk> closes <trkseg>")) { try GPXImporter.trajectory(unclosed) }
        let badTime = "<gpx><trk><trkseg>\n<trkpt lat=\"1\" lon=\"1\">\n  <time>yesterday</time></trkpt></trkseg></trk></gpx>"
        #expect(throws: TraceError(line: 3, column: 3, message: "'yesterday' is not an ISO 8601 time such as 2024-05-01T12:00:00Z")) { try GPXImporter.trajectory(badTime) }
        let backwards = """
        <gpx><trk><trkseg>
        <trkpt lat="1" lon="1"><time>2024-05-01T12:00:10Z</time></trkpt>
        <trkpt lat="1" lon="1.001"><time>2024-05-01T12:00:05Z</time></trkpt>
        </trkseg></trk></gpx>
        """
        #expect(throws: TraceError.self) { try GPXImporter.trajectory(backwards) }
        #expect((try? GPXImporter.trajectory("<gpx><trk>")) == nil)
        #expect((try? GPXImporter.trajectory("")) == nil)
        #expect((try? GPXImporter.trajectory("<gpx a=\"1\" a=\"2\"/>")) == nil)
    }

    @Test func iso8601Times() {
        #expect(ISO8601.seconds("1970-01-01T00:00:00Z") == 0)
        #expect(ISO8601.seconds("2000-03-01T00:00:00Z") == 951_868_800)
        #expect(ISO8601.seconds("2024-05-01T14:00:00+02:00") == ISO8601.seconds("2024-05-01T12:00:00Z"))
        #expect(ISO8601.seconds("2024-05-01T12:00:00.25") == 1_714_564_800.25)
        #expect(ISO8601.seconds("2024-13-01T12:00:00Z") == nil)
        #expect(ISO8601.seconds("2024-05-01") == nil)
    }

    @Test func fcdPicksOneVehicle() throws {
        let fcd = """
        <?xml version="1.0" encoding="UTF-8"?>
        <fcd-export xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
            <timestep time="0.00">
                <vehicle id="veh0" x="10.00" y="5.00" angle="90.00" type="DEFAULT_VEHTYPE" speed="13.89" pos="5.10" lane="e0_0" slope="0.00"/>
                <vehicle id="veh1" x="0.00" y="0.00" angle="90.00" speed="0.00"/>
            </timestep>
            <timestep time="1.00">
                <vehicle id="veh1" x="3.00" y="4.00" angle="90.00" speed="5.00"/>
                <vehicle id="veh0" x="23.89" y="5.00" angle="90.00" speed="13.89"/>
            </timestep>
            <timestep time="2.00"/>
            <timestep time="3.00">
                <vehicle id="veh0" x="51.67" y="5.00" angle="90.00" speed="13.89"/>
            </timestep>
        </fcd-export>
        """
        let t = try FCDImporter.trajectory(fcd, vehicle: "veh0")
        #expect(t.knots.map(\.at) == [.zero, .seconds(1), .seconds(3)])
        #expect(t.knots[1].position == Point(x: 23.89, y: 5))
        let other = try FCDImporter.trajectory(fcd, vehicle: "veh1")
        #expect(other.length == 5)
        #expect(throws: TraceError(line: 1, message: "no vehicle 'car' in the FCD trace (vehicles in the trace: veh0, veh1)")) {
            try FCDImporter.trajectory(fcd, vehicle: "car")
        }
        let broken = "<fcd-export>\n<timestep time=\"0\">\n<vehicle id=\"v\" x=\"abc\" y=\"0\"/>\n</timestep></fcd-export>"
        #expect(throws: TraceError(line: 3, column: 1, message: "<vehicle id=\"v\"> needs a numeric 'x' in metres")) {
            try FCDImporter.trajectory(broken, vehicle: "v")
        }
    }

    @Test func csvParsesWithHeaderAndComments() throws {
        let csv = "t,x,y\n# start\n0,0,0\n\n1.5, 30, 0\r\n3,30,40\n"
        let t = try CSVImporter.trajectory(csv)
        #expect(t.knots.count == 3)
        #expect(t.end == .seconds(3))
        #expect(t.position(at: .milliseconds(750)) == Point(x: 15, y: 0))
        #expect(t.length == 70)
        #expect(throws: TraceError(line: 3, column: 3, message: "'x' is not a number (x in metres)")) {
            try CSVImporter.trajectory("0,0,0\n1,1,1\n2,x,2\n")
        }
        #expect(throws: TraceError(line: 2, message: "expected three fields t,x,y, found 2")) {
            try CSVImporter.trajectory("0,0,0\n1,1\n")
        }
        #expect(throws: TraceError(line: 2, message: "time goes backwards (-1s after 0s from the first point)")) {
            try CSVImporter.trajectory("5,0,0\n4,1,1\n")
        }
    }

    @Test func mahimahiCapacityRepeatsTheTrace() throws {
        // 4 opportunities in the first 500 ms, 1 in the next; period 1000 ms.
        let trace = try MahimahiCapacity("100\n200\n200\n400\n600\n1000\n")
        #expect(trace.period == .seconds(1))
        let c = trace.capacity(window: .milliseconds(500), duration: .seconds(2))
        #expect(c.map(\.at) == [.zero, .milliseconds(500), .seconds(1), .milliseconds(1500)])
        // Window [0,500): 100,200,200,400 -> 4 × 12000 bit / 0.5 s.
        #expect(c[0].rate == Bitrate(bitsPerSecond: 96_000))
        // Window [500,1000): 600 -> 1.
        #expect(c[1].rate == Bitrate(bitsPerSecond: 24_000))
        // Second cycle: the 1000 ms opportunity falls at its start, then 100,200,200,400.
        #expect(c[2].rate == Bitrate(bitsPerSecond: 120_000))
        #expect(throws: TraceError(line: 3, message: "5 ms comes before the previous line's 10 ms")) { try MahimahiCapacity("1\n10\n5\n") }
        #expect(throws: TraceError(line: 2, message: "'x' is not a whole number of milliseconds")) { try MahimahiCapacity("1\nx\n") }
    }
}
