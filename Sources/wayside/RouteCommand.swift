import ArgumentParser
import Config
import Core
import Foundation
import Mobility
import Testbed

/// `wayside route …`: turn a drive into the coverage timeline the emulator replays.
struct RouteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "route",
        abstract: "Show a route's coverage timeline, and generate the traces routes use.",
        discussion: "Route files are described in docs/ROUTES.md.",
        subcommands: [Show.self, CellularTrace.self, GPX.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a route's coverage timeline as a table; --svg also draws it.")

        @Argument(help: "The route file (Routes/*.yaml).")
        var route: String

        @Option(help: "The topology file; default: the one the route names.")
        var topology: String?

        @Option(help: "Also draw distance to each roadside unit and coverage bands into this SVG file.")
        var svg: String?

        @Option(help: "Override the route's seed (shadowing).")
        var seed: UInt64?

        func run() throws {
            let loaded = try RouteFiles.load(route: route, topology: topology, seed: seed)
            let c = loaded.coverage
            var heading = "route \(route)  topology \(loaded.topologyPath)  vehicle \(loaded.vehicle)"
            heading += "  duration \(formatSeconds(c.timeline.duration))  step \(loaded.route.step)  seed \(loaded.route.seed)"
            if let d = loaded.route.description { heading += "\n" + d }
            if let svg {
                let title = "\(RouteFiles.stem(route)) on \(RouteFiles.stem(loaded.topologyPath)) (seed \(loaded.route.seed))"
                try RouteFiles.write(CoverageDiagram(coverage: c, title: title).svg, to: svg, flag: "--svg")
            }
            print(TimelineTable(coverage: c, heading: heading).text, terminator: "")
        }
    }

    struct CellularTrace: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "cellular-trace",
            abstract: "Generate a synthetic Mahimahi capacity trace (deterministic by seed).")

        @Option(help: "Mean capacity, e.g. 10mbit.") var mean: String
        @Option(help: "Length of the trace (its period), e.g. 120s.") var duration: String
        @Option(help: "Seed.") var seed: UInt64 = 1
        @Option(help: "Standard deviation of the capacity's natural logarithm.") var logSigma: Double = 0.35
        @Option(help: "Correlation time of the capacity, e.g. 2s.") var correlation: String = "2s"
        @Option(help: "Mean time between fades, e.g. 30s.") var fadeEvery: String = "30s"
        @Option(help: "Mean fade length, e.g. 1500ms.") var fadeLength: String = "1500ms"
        @Option(help: "Capacity left in a fade, 0 to 1.") var fadeDepth: Double = 0.1
        @Option(name: .shortAndLong, help: "Write here instead of standard output.") var output: String?

        func run() throws {
            func parse<T>(_ flag: String, _ text: String, _ p: (String) throws(QuantityError) -> T) throws -> T {
                do { return try p(text) } catch { throw ValidationError("\(flag): \(error)") }
            }
            let model = CellularTraceModel(
                mean: try parse("--mean", mean, Bitrate.parse), logSigma: logSigma,
                correlationTime: try parse("--correlation", correlation, Quantity.nonNegativeInterval),
                meanTimeBetweenFades: try parse("--fade-every", fadeEvery, Quantity.nonNegativeInterval),
                meanFadeLength: try parse("--fade-length", fadeLength, Quantity.nonNegativeInterval),
                fadeDepth: fadeDepth)
            let d = try parse("--duration", duration, Quantity.interval)
            guard d >= .milliseconds(1), d <= .seconds(86_400) else { throw ValidationError("--duration: expected 1ms to 24h, found \(duration)") }
            guard model.mean.bitsPerSecond > 0 else { throw ValidationError("--mean: expected a rate above zero") }
            guard (0...1).contains(fadeDepth) else { throw ValidationError("--fade-depth: expected 0 to 1") }
            guard logSigma >= 0, logSigma <= 3 else { throw ValidationError("--log-sigma: expected 0 to 3") }
            let text = model.mahimahiTrace(duration: d, seed: seed)
            if let output { try RouteFiles.write(text, to: output, flag: "--output") } else { print(text, terminator: "") }
        }
    }

    struct GPX: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "gpx",
            abstract: "Write a route's drive as a GPX track (with seeded GPS noise), as a logger would record it.")

        @Argument(help: "A route file with a waypoint drive.") var route: String
        @Option(help: "Latitude,longitude of the local origin (0, 0), e.g. 48.137,11.575.") var origin: String
        @Option(help: "Time between track points, e.g. 1s.") var every: String = "1s"
        @Option(help: "GPS position error (standard deviation), metres.") var noise: Double = 0
        @Option(help: "Seed for the noise.") var seed: UInt64 = 1
        @Option(name: .shortAndLong, help: "Write here instead of standard output.") var output: String?

        func run() throws {
            let parts = origin.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard parts.count == 2, let lat = parts[0], let lon = parts[1], (-90...90).contains(lat), (-180...180).contains(lon) else {
                throw ValidationError("--origin: expected latitude,longitude in degrees, e.g. 48.137,11.575")
            }
            let interval: Interval
            do { interval = try Quantity.interval(every) } catch { throw ValidationError("--every: \(error)") }
            guard interval >= .milliseconds(1) else { throw ValidationError("--every: expected at least 1ms") }
            guard noise >= 0, noise <= 100 else { throw ValidationError("--noise: expected 0 to 100 metres") }
            let r = try RouteFiles.decode(route: route)
            guard case let .waypoints(t)? = r.drive else {
                throw RouteFiles.Failure("\(r.topologyLocation.file): the route has no waypoint drive to write as GPX")
            }
            let text = GPXWriter(origin: GeoCoordinate(latitude: lat, longitude: lon), noise: noise)
                .gpx(t, every: interval, seed: seed, name: RouteFiles.stem(route))
            if let output { try RouteFiles.write(text, to: output, flag: "--output") } else { print(text, terminator: "") }
        }
    }
}

/// Reading route and topology files, and writing outputs whole or not at all.
enum RouteFiles {
    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }

    struct Loaded {
        var route: Route
        var topologyPath: String
        var vehicle: String
        var coverage: DriveCoverage
    }

    static func stem(_ path: String) -> String {
        var base = path.split(separator: "/").last.map(String.init) ?? path
        for ext in [".yaml", ".yml"] where base.hasSuffix(ext) { base.removeLast(ext.count) }
        return base
    }

    static func read(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw Failure(FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw Failure("expected UTF-8 text") }
        return text
    }

    static func decode(route: String) throws -> Route {
        let text: String
        do { text = try read(route) } catch { throw Failure("\(route): \(error)") }
        do { return try Route.decode(text: text, file: route) } catch { throw Failure(error.description) }
    }

    /// Where the topology a route names is: a path (with a `/`) relative to the
    /// route's folder; a bare name in the `Topologies/` folder beside the
    /// route's folder, or in `./Topologies/`.
    static func topologyPath(for route: Route) -> String? {
        var names = [route.topology]
        if !route.topology.hasSuffix(".yaml") && !route.topology.hasSuffix(".yml") { names.append(route.topology + ".yaml") }
        let dir = route.file.contains("/") ? String(route.file[...route.file.lastIndex(of: "/")!]) : ""
        var candidates: [String] = []
        for n in names {
            if n.hasPrefix("/") { candidates.append(n) }
            else if n.contains("/") { candidates.append(dir + n) }
            else { candidates += ["Topologies/" + n, dir + "../Topologies/" + n] }
        }
        return candidates.map { ($0 as NSString).standardizingPath }.first { FileManager.default.fileExists(atPath: $0) }
    }

    static func load(route path: String, topology explicit: String?, seed: UInt64?) throws -> Loaded {
        var route = try decode(route: path)
        if let seed { route.seed = seed }
        guard let topologyPath = explicit ?? topologyPath(for: route) else {
            throw Failure("\(route.topologyLocation): no topology file '\(route.topology)' next to the route or in Topologies/; give one with --topology")
        }
        let topology: Topology
        do { topology = try Topology.load(contentsOf: topologyPath) } catch { throw Failure(error.description) }
        let view = RouteTopology(topology)
        do {
            let vehicle = try route.vehicle(in: view)
            let coverage = try route.coverage(on: view) { try read($0) }
            return Loaded(route: route, topologyPath: topologyPath, vehicle: vehicle, coverage: coverage)
        } catch { throw Failure(error.description) }
    }

    /// Writes `text` to `path` whole, through a temporary file renamed into
    /// place, so a failure never leaves a half-written file.
    static func write(_ text: String, to path: String, flag: String) throws {
        do { try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic) } catch {
            throw Failure("\(flag) \(path): cannot write: \((error as NSError).localizedDescription)")
        }
    }
}

extension RouteTopology {
    /// A topology as a route sees it: vehicles, their radio links to roadside
    /// units that stand somewhere (always-on links and units without a position
    /// are not driven by geometry), and link directions.
    init(_ topology: Topology) {
        let links = topology.links
        let nodes = Dictionary(topology.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        self.init(
            vehicles: topology.vehicles.map(\.name),
            links: links.map(\.name),
            sites: { vehicle in
                links.compactMap { link -> RoadsideUnitSite? in
                    guard link.kind == .radio, !link.alwaysOn, let peer = link.peer(of: vehicle),
                          let unit = nodes[peer.node], unit.role == .rsu,
                          let position = unit.position, let radio = unit.radio else { return nil }
                    return RoadsideUnitSite(name: unit.name, link: link.name, position: Point(x: position.x, y: position.y),
                                            radio: Mobility.RadioModel(radio.model))
                }
            },
            uplink: { vehicle, name in
                guard let link = links.first(where: { $0.name == name }) else { return nil }
                if link.a.node == vehicle { return .aToB }
                if link.b.node == vehicle { return .bToA }
                return nil
            })
    }
}

extension Mobility.RadioModel {
    init(_ model: Testbed.RadioModel) {
        switch model {
        case let .disk(range):
            self = .disk(DiskRadio(range: range))
        case let .logDistance(p):
            self = .logDistance(LogDistanceRadio(
                transmitPowerDBm: p.txPowerDBm, referenceLossDB: p.referenceLossDB, referenceDistance: p.referenceDistance,
                exponent: p.exponent, shadowingSigmaDB: p.shadowingSigmaDB,
                associateDBm: p.associateDBm, disassociateDBm: p.disassociateDBm))
        }
    }
}
