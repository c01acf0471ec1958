import Testing
import Core
import Config
@testable import Mobility

/// Parsers of untrusted input never trap: seeded mutations of valid inputs
/// (bytes dropped, duplicated, replaced by XML/CSV/YAML punctuation, truncated)
/// must come back as a value or an error — a trap fails the whole test run.
@Suite struct UntrustedInputTests {
    static let gpx = """
    <?xml version="1.0"?><gpx version="1.1"><trk><trkseg>
    <trkpt lat="45.0" lon="7.0"><time>2024-05-01T12:00:00Z</time></trkpt>
    <trkpt lat="45.001" lon="7.001"><time>2024-05-01T12:00:10.5+01:00</time></trkpt>
    <!-- c --><![CDATA[x]]></trkseg></trk></gpx>
    """
    static let fcd = """
    <fcd-export><timestep time="0"><vehicle id="v" x="1" y="2"/></timestep>
    <timestep time="1.5"><vehicle id="v" x="10" y="2"/></timestep></fcd-export>
    """
    static let csv = "t,x,y\n0,0,0\n1.5,30,0\n3,30,40\n"
    static let mahimahi = "1\n5\n5\n10\n20\n"
    static let route = """
    topology: t
    drive:
      waypoints:
        - {x: 0, y: 0, speed: 80km/h}
        - {x: 100, y: 0, stop: 2s}
        - {x: 100, y: 300, at: 60s}
    events:
      - {at: 1s, link: a-b, ramp: {rate: 1mbit}, over: 1s}
    """

    static func mutations(of text: String, count: Int, seed: UInt64) -> [String] {
        var random = SeededRandom(seed: seed, stream: "mutations")
        let alphabet = Array("<>/\"'=&;#:,-.9e\n {}[]xT".utf8) + [0xFF, 0x00]
        var out: [String] = []
        for _ in 0..<count {
            var b = Array(text.utf8)
            for _ in 0..<(1 + Int(random.next() % 4)) where !b.isEmpty {
                let i = Int(random.next() % UInt64(b.count))
                switch random.next() % 5 {
                case 0: b.remove(at: i)
                case 1: b.insert(b[i], at: i)
                case 2: b[i] = alphabet[Int(random.next() % UInt64(alphabet.count))]
                case 3: b.removeSubrange(i...)
                default: b.insert(contentsOf: Array("9999999999999999999999".utf8), at: i)
                }
            }
            out.append(String(decoding: b, as: UTF8.self))
        }
        return out
    }

    @Test func importersNeverTrap() {
        var accepted = 0
        for m in Self.mutations(of: Self.gpx, count: 1500, seed: 1) { if (try? GPXImporter.trajectory(m)) != nil { accepted += 1 } }
        for m in Self.mutations(of: Self.fcd, count: 1500, seed: 2) { if (try? FCDImporter.trajectory(m, vehicle: "v")) != nil { accepted += 1 } }
        for m in Self.mutations(of: Self.csv, count: 1500, seed: 3) { if (try? CSVImporter.trajectory(m)) != nil { accepted += 1 } }
        for m in Self.mutations(of: Self.mahimahi, count: 1500, seed: 4) {
            if let t = try? MahimahiCapacity(m) { accepted += 1; _ = t.capacity(window: .milliseconds(7), duration: .milliseconds(100)) }
        }
        // Some mutations leave a valid input (e.g. a changed digit): the check is not vacuous.
        #expect(accepted > 100)
    }

    @Test func routeDecodingNeverTraps() {
        let topology = RouteTopology(vehicles: ["car"], links: ["a-b"], sites: { _ in
            [RoadsideUnitSite(name: "r", link: "a-b", position: Point(x: 50, y: 0),
                              radio: .logDistance(LogDistanceRadio(shadowingSigmaDB: 4)))]
        }, uplink: { _, _ in .aToB })
        var accepted = 0
        for m in Self.mutations(of: Self.route, count: 800, seed: 5) {
            guard let r = try? Route.decode(text: m, file: "r.yaml") else { continue }
            if let c = try? r.coverage(on: topology, read: { _ in "" }), c.timeline.duration <= .seconds(3600) { accepted += 1 }
        }
        #expect(accepted > 20)
    }

    @Test func extremeValuesAreErrorsNotTraps() {
        #expect(throws: TraceError.self) { try CSVImporter.trajectory("0,0,0\n1e300,1,1\n") }
        #expect(throws: TraceError.self) { try MahimahiCapacity("1\n99999999999999\n") }
        #expect(throws: TraceError.self) {
            try GPXImporter.trajectory("<gpx><trk><trkseg><trkpt lat=\"1\" lon=\"1\"><time>0001-01-01T00:00:00Z</time></trkpt><trkpt lat=\"1\" lon=\"2\"><time>9999-01-01T00:00:00Z</time></trkpt></trkseg></trk></gpx>")
        }
        #expect(throws: TrajectoryError.self) {
            try Trajectory(waypoints: [Waypoint(Point(x: 0, y: 0), speed: 1e-300), Waypoint(Point(x: 1e300, y: 0))])
        }
        #expect(throws: TrajectoryError.self) {
            try Trajectory(waypoints: [Waypoint(Point(x: 0, y: 0), speed: 1, stop: .seconds(300 * 86_400)),
                                       Waypoint(Point(x: 1, y: 0), stop: .seconds(300 * 86_400))])
        }
    }
}
