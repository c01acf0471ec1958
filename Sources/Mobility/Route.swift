import Core
import Config

/// A route file (`Routes/*.yaml`): a drive — waypoints or an imported trace —
/// past the roadside units of a topology, links whose capacity follows a
/// Mahimahi trace, and timeline events written by hand. Decoded from text;
/// files it refers to are read later through a loader the caller provides.
/// The format is described in docs/ROUTES.md.
public struct Route {
    public var file: String
    public var description: String?
    /// The topology file the route is meant for, as written.
    public var topology: String
    public var topologyLocation: SourceLocation
    /// The vehicle node; `nil` when the topology has one.
    public var vehicle: String?
    public var vehicleLocation: SourceLocation?
    public var seed: UInt64
    public var step: Interval
    public var duration: Interval?
    public var durationLocation: SourceLocation?
    public var coverageLoss: CoverageLoss
    public var association: AssociationPolicy
    public var lossResolution: Double
    public var drive: Drive?
    public var capacity: [Capacity]
    public var events: [Event]

    public enum Drive {
        case waypoints(Trajectory)
        case trace(Trace)
    }

    /// A drive imported from a file next to the route.
    public struct Trace {
        public enum Format: String, CaseIterable, Sendable { case gpx, fcd, csv }
        public var format: Format
        /// As written: relative to the route file's folder.
        public var path: String
        public var location: SourceLocation
        /// FCD: the vehicle id to follow.
        public var vehicle: String?
        /// GPX: where local (0, 0) is; the first track point if absent.
        public var origin: GeoCoordinate?
        /// GPX without times: speed along the track in metres per second.
        public var speed: Double?
        /// Added to every position, to place the trace in the topology's frame.
        public var offset: Point
    }

    /// A link whose capacity follows Mahimahi traces.
    public struct Capacity {
        public var link: String
        public var location: SourceLocation
        public var uplink: (path: String, location: SourceLocation)?
        public var downlink: (path: String, location: SourceLocation)?
        public var window: Interval
    }

    /// One hand-written timeline event.
    public struct Event {
        public var event: TimelineEvent
        public var location: SourceLocation
        public var linkLocation: SourceLocation
    }
}

// MARK: Decoding

extension Route {
    static let topKeys = ["description", "topology", "vehicle", "seed", "step", "duration", "coverage-loss",
                          "association", "loss-resolution", "drive", "capacity", "events"]

    /// Decodes a route file's text; every problem is reported at once.
    public static func decode(text: String, file: String) throws(ConfigError) -> Route {
        let doc = try ConfigDocument(text: text, file: file)
        let route = decode(doc)
        try doc.finish()
        // Everything reported above would have made `decode` return nil.
        guard let route else { throw ConfigError(at: doc.root.location, "route could not be read") }
        return route
    }

    static func decode(_ doc: ConfigDocument) -> Route? {
        guard let top = doc.root.mapping(keys: topKeys, expected: "a route: a mapping with 'topology' and 'drive' or 'events'") else { return nil }
        var ok = true
        func need<T>(_ v: T?) -> T? { if v == nil { ok = false }; return v }

        let topologyValue = top.required("topology", expected: "the topology file the route drives through")
        let topology = need(topologyValue?.string(expected: "a topology file name"))
        let vehicle = top["vehicle"].flatMap { need($0.identifier()) }
        var seed: UInt64 = 1
        if let s = top["seed"] { if let v = need(s.string(expected: "a seed (a whole number)")) {
            if let n = UInt64(v) { seed = n } else { s.reportExpected("a seed (a whole number from 0 to 2^64 - 1)"); ok = false }
        } }
        var step = Interval.milliseconds(100)
        if let s = top["step"], let v = need(s.interval()) {
            if v > .zero && v <= .seconds(10) { step = v } else { s.reportExpected("a sampling step above 0 and at most 10s"); ok = false }
        }
        var duration: Interval? = nil
        if let s = top["duration"], let v = need(s.interval()) {
            if v > .zero && v <= .seconds(7 * 86_400) { duration = v } else { s.reportExpected("a duration above 0 and at most a week"); ok = false }
        }
        let coverageLoss = top["coverage-loss"].map { need($0.choice(CoverageLoss.self, what: "how coverage loss shows")) ?? .carrier } ?? .carrier
        var association = AssociationPolicy()
        if let a = top["association"]?.mapping(keys: ["associate-dbm", "margin-db", "range-margin", "hold"]) {
            if let v = a["associate-dbm"] { association.associateDBm = need(v.double(in: -150...50)) }
            if let v = a["margin-db"] { association.marginDB = need(v.double(in: 0...60)) ?? 0 }
            if let v = a["range-margin"] { association.rangeMargin = need(v.metres()) ?? 0 }
            if let v = a["hold"] { association.hold = need(v.nonNegativeInterval()) }
        } else if top["association"] != nil { ok = false }
        var lossResolution = 0.01
        if let v = top["loss-resolution"], let p = need(v.probability()) { lossResolution = p.value }

        var drive: Drive? = nil
        if let d = top["drive"] {
            drive = decodeDrive(d, file: doc.file)
            if drive == nil { ok = false }
        }
        var capacity: [Capacity] = []
        if let c = top["capacity"] {
            if let items = need(c.sequence(expected: "a list of links with 'link', 'uplink' and/or 'downlink' traces")) {
                for item in items {
                    if let cap = decodeCapacity(item) { capacity.append(cap) } else { ok = false }
                }
            }
        }
        var events: [Event] = []
        if let e = top["events"] {
            if let items = need(e.sequence(expected: "a list of timeline events")) {
                for item in items {
                    if let ev = decodeEvent(item) { events.append(ev) } else { ok = false }
                }
            }
        }
        if top["drive"] == nil && top["events"] == nil && top["capacity"] == nil {
            top.value.report("a route needs a 'drive', 'events' or 'capacity'")
            ok = false
        }
        if drive == nil && duration == nil && top["drive"] == nil && top.contains("topology") {
            top.value.report("a route without a 'drive' needs a 'duration'")
            ok = false
        }
        guard ok, let topology, let topologyValue else { return nil }
        return Route(file: doc.file, description: top["description"]?.string(), topology: topology,
                     topologyLocation: topologyValue.location, vehicle: vehicle, vehicleLocation: top["vehicle"]?.location,
                     seed: seed, step: step, duration: duration, durationLocation: top["duration"]?.location,
                     coverageLoss: coverageLoss, association: association, lossResolution: lossResolution,
                     drive: drive, capacity: capacity, events: events)
    }

    static func decodeDrive(_ value: ConfigValue, file: String) -> Drive? {
        guard let m = value.mapping(keys: ["waypoints", "trace"], expected: "a drive: 'waypoints' or 'trace'") else { return nil }
        guard m.exclusive(["waypoints", "trace"]) else { return nil }
        if let w = m["waypoints"] {
            guard let items = w.sequence(expected: "a list of waypoints, each with x, y and speed, at or stop") else { return nil }
            var waypoints: [Waypoint] = []
            var ok = true
            for item in items {
                guard let p = item.mapping(keys: ["x", "y", "speed", "at", "stop"], expected: "a waypoint: {x: 0, y: 0, speed: 80km/h}") else { ok = false; continue }
                let x = p.required("x", expected: "metres east").flatMap { $0.metres() }
                let y = p.required("y", expected: "metres north").flatMap { $0.metres() }
                let speed = p["speed"].map { $0.quantity(Speed.parse, expected: "a speed with a unit, e.g. 80km/h") }
                let at = p["at"].map { $0.nonNegativeInterval() }
                let stop = p["stop"].map { $0.nonNegativeInterval() }
                guard let x, let y, speed.map({ $0 != nil }) ?? true, at.map({ $0 != nil }) ?? true,
                      stop.map({ $0 != nil }) ?? true else { ok = false; continue }
                waypoints.append(Waypoint(Point(x: x, y: y), speed: speed ?? nil, arrival: at ?? nil, stop: (stop ?? nil) ?? .zero))
            }
            guard ok else { return nil }
            do {
                return .waypoints(try Trajectory(waypoints: waypoints))
            } catch {
                let at = error.index.map { items[$0].location } ?? w.location
                value.diagnostics.report(error.message, at: at)
                return nil
            }
        }
        guard let t = m.required("trace") else { return nil }
        guard let tm = t.mapping(keys: ["gpx", "fcd", "csv", "vehicle", "origin", "speed", "offset"],
                                 expected: "a trace: {gpx: FILE} or {fcd: FILE, vehicle: ID} or {csv: FILE}") else { return nil }
        let formats = Trace.Format.allCases.map(\.rawValue)
        guard tm.exclusive(formats) else { return nil }
        guard let formatName = formats.first(where: tm.contains), let format = Trace.Format(rawValue: formatName) else {
            tm.value.report("a trace needs one of \(Suggestion.list(formats)) with the trace file")
            return nil
        }
        let pathValue = tm[formatName]!
        guard let path = pathValue.string(expected: "a trace file, relative to the route file") else { return nil }
        var ok = true
        var vehicle: String? = nil
        if format == .fcd {
            vehicle = tm.required("vehicle", expected: "the SUMO vehicle id to follow")?.string(expected: "a SUMO vehicle id")
            if vehicle == nil { ok = false }
        } else if let v = tm["vehicle"] {
            v.report("'vehicle' applies to FCD traces only"); ok = false
        }
        var origin: GeoCoordinate? = nil
        if let o = tm["origin"] {
            if format != .gpx { o.report("'origin' applies to GPX traces only"); ok = false }
            else if let om = o.mapping(keys: ["lat", "lon"], expected: "{lat: 48.1, lon: 11.5}"),
                    let lat = om.required("lat")?.double(in: -90...90), let lon = om.required("lon")?.double(in: -180...180) {
                origin = GeoCoordinate(latitude: lat, longitude: lon)
            } else { ok = false }
        }
        var speed: Double? = nil
        if let s = tm["speed"] {
            if format != .gpx { s.report("'speed' applies to GPX traces without times only"); ok = false }
            else if let v = s.quantity(Speed.parse, expected: "a speed with a unit, e.g. 80km/h") { speed = v } else { ok = false }
        }
        var offset = Point.origin
        if let o = tm["offset"] {
            if let om = o.mapping(keys: ["x", "y"], expected: "{x: 0, y: 0} in metres"),
               let x = om.required("x")?.metres(), let y = om.required("y")?.metres() {
                offset = Point(x: x, y: y)
            } else { ok = false }
        }
        guard ok else { return nil }
        return .trace(Trace(format: format, path: path, location: pathValue.location, vehicle: vehicle,
                            origin: origin, speed: speed, offset: offset))
    }

    static func decodeCapacity(_ value: ConfigValue) -> Capacity? {
        guard let m = value.mapping(keys: ["link", "uplink", "downlink", "window"],
                                    expected: "{link: NAME, uplink: FILE, downlink: FILE}") else { return nil }
        let linkValue = m.required("link", expected: "the link's name in the topology")
        let link = linkValue?.string(expected: "a link name")
        let up = m["uplink"].map { v in v.string(expected: "a Mahimahi trace file").map { ($0, v.location) } }
        let down = m["downlink"].map { v in v.string(expected: "a Mahimahi trace file").map { ($0, v.location) } }
        var window = Interval.seconds(1)
        var ok = true
        if let w = m["window"] {
            if let v = w.interval(), v >= .milliseconds(1), v <= .seconds(60) { window = v } else {
                if w.string() != nil { w.reportExpected("a window from 1ms to 60s") }
                ok = false
            }
        }
        if up == nil && down == nil { m.value.report("a capacity link needs an 'uplink' or a 'downlink' trace, or both"); ok = false }
        guard ok, let link, let linkValue, up.map({ $0 != nil }) ?? true, down.map({ $0 != nil }) ?? true else { return nil }
        return Capacity(link: link, location: linkValue.location, uplink: up ?? nil, downlink: down ?? nil, window: window)
    }

    static let parameterKeys = ["delay", "jitter", "rate", "loss", "queue-packets", "queue-bytes"]

    static func decodeParameters(_ value: ConfigValue) -> LinkParameters? {
        guard let m = value.mapping(keys: parameterKeys, expected: "link parameters: delay, jitter, rate, loss, queue-packets, queue-bytes") else { return nil }
        var p = LinkParameters()
        var ok = true
        func take<T>(_ key: String, _ read: (ConfigValue) -> T?) -> T? {
            guard let v = m[key] else { return nil }
            let r = read(v)
            if r == nil { ok = false }
            return r
        }
        p.delay = take("delay") { $0.nonNegativeInterval() }
        p.jitter = take("jitter") { $0.nonNegativeInterval() }
        p.rate = take("rate") { v -> Bitrate? in
            guard let r = v.bitrate() else { return nil }
            guard r.bitsPerSecond > 0 else { v.reportExpected("a rate above zero (use 'coverage: down' for no link)"); return nil }
            return r
        }
        p.loss = take("loss") { $0.probability() }
        p.queuePackets = take("queue-packets") { $0.int(in: 1...1_000_000) }
        p.queueBytes = take("queue-bytes") { $0.byteSize() }
        if m.entries.isEmpty { value.report("expected at least one of \(Suggestion.list(parameterKeys))"); ok = false }
        return ok ? p : nil
    }

    static func decodeEvent(_ value: ConfigValue) -> Event? {
        guard let m = value.mapping(keys: ["at", "link", "direction", "coverage", "loss", "set", "ramp", "over"],
                                    expected: "an event: {at: 5s, link: NAME, coverage: down}") else { return nil }
        let at = m.required("at", expected: "when, from the start of the run")?.nonNegativeInterval()
        let linkValue = m.required("link", expected: "the link's name in the topology")
        let link = linkValue?.string(expected: "a link name")
        let direction = m["direction"].map { $0.choice(LinkDirection.self, what: "a direction") }
        var ok = at != nil && link != nil && (direction.map { $0 != nil } ?? true)
        let kinds = ["coverage", "set", "ramp"]
        guard m.exclusive(kinds) else { return nil }
        var change: LinkChange? = nil
        if let c = m["coverage"] {
            let up = c.choice(among: ["up", "down"], what: "coverage")
            let loss = m["loss"].map { $0.choice(CoverageLoss.self, what: "how coverage loss shows") } ?? .carrier
            if let up, let loss { change = .coverage(up == "up", loss: loss) } else { ok = false }
        } else if let l = m["loss"] {
            l.report("'loss' says how coverage is lost and goes with 'coverage'; a packet loss rate goes under 'set'")
            ok = false
        }
        if let s = m["set"] {
            if let p = decodeParameters(s) { change = .set(p) } else { ok = false }
        }
        if let r = m["ramp"] {
            let over = m.required("over", expected: "how long the ramp takes, e.g. 2s")?.interval()
            if let p = decodeParameters(r), let over {
                if over > .zero { change = .ramp(p, over: over) } else { m["over"]?.reportExpected("a ramp time above zero"); ok = false }
            } else { ok = false }
        } else if let o = m["over"] {
            o.report("'over' goes with 'ramp'"); ok = false
        }
        if change == nil && ok {
            m.value.report("an event needs one of \(Suggestion.list(kinds))")
            ok = false
        }
        guard ok, let at, let link, let change, let linkValue else { return nil }
        return Event(event: TimelineEvent(at: at, link: link, direction: (direction ?? .both) ?? .both, change: change),
                     location: value.location, linkLocation: linkValue.location)
    }
}

// MARK: From a route to a timeline

/// What a route needs to know of its topology, from the topology models.
public struct RouteTopology: Sendable {
    /// The topology's vehicle nodes.
    public var vehicles: [String]
    /// For a vehicle, its roadside units as sites on its radio links.
    public var sites: @Sendable (String) -> [RoadsideUnitSite]
    /// Every link name of the topology.
    public var links: [String]
    /// For a link of the vehicle, the direction from the vehicle outwards
    /// (`a-to-b` when the vehicle is the link's first endpoint); `nil` if the
    /// vehicle is not on the link.
    public var uplink: @Sendable (_ vehicle: String, _ link: String) -> LinkDirection?

    public init(vehicles: [String], links: [String], sites: @escaping @Sendable (String) -> [RoadsideUnitSite],
                uplink: @escaping @Sendable (String, String) -> LinkDirection?) {
        self.vehicles = vehicles; self.links = links; self.sites = sites; self.uplink = uplink
    }
}

extension Route {
    /// The path of a file the route refers to: relative to the route file's folder
    /// unless absolute.
    public func resolve(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        guard let slash = file.lastIndex(of: "/") else { return path }
        return String(file[...slash]) + path
    }

    /// The vehicle the route drives, checked against the topology.
    public func vehicle(in topology: RouteTopology) throws(ConfigError) -> String {
        if let v = vehicle {
            guard topology.vehicles.contains(v) else {
                throw ConfigError(at: vehicleLocation!, "no vehicle '\(v)' in the topology\(Suggestion.didYouMean(v, among: topology.vehicles)) (vehicles: \(Suggestion.list(topology.vehicles)))")
            }
            return v
        }
        guard topology.vehicles.count == 1 else {
            throw ConfigError(at: topologyLocation, topology.vehicles.isEmpty
                              ? "the topology has no vehicle to drive"
                              : "the topology has \(topology.vehicles.count) vehicles; say which one drives with 'vehicle:' (\(Suggestion.list(topology.vehicles)))")
        }
        return topology.vehicles[0]
    }

    /// Reads the drive's trace (through `read`, which returns a file's text)
    /// and builds the trajectory; import errors name the trace file's line.
    public func trajectory(read: (String) throws -> String) throws(ConfigError) -> Trajectory? {
        guard let drive else { return nil }
        switch drive {
        case let .waypoints(t): return t
        case let .trace(trace):
            let path = resolve(trace.path)
            let text: String
            do { text = try read(path) } catch {
                throw ConfigError(at: trace.location, "cannot read trace '\(path)': \(error)")
            }
            do {
                let t: Trajectory
                switch trace.format {
                case .gpx: t = try GPXImporter.trajectory(text, origin: trace.origin, speed: trace.speed)
                case .fcd: t = try FCDImporter.trajectory(text, vehicle: trace.vehicle ?? "")
                case .csv: t = try CSVImporter.trajectory(text)
                }
                let shifted = t.startingAtZero().knots.map {
                    Trajectory.Knot(at: $0.at, position: Point(x: $0.position.x + trace.offset.x, y: $0.position.y + trace.offset.y))
                }
                return try! Trajectory(knots: shifted)
            } catch {
                throw ConfigError(at: SourceLocation(file: path, line: error.line, column: error.column), error.message)
            }
        }
    }

    /// The route's coverage on `topology`: the drive's radio coverage, capacity
    /// traces and hand-written events, in one timeline. Every reference to the
    /// topology is checked, and all problems are reported at once.
    public func coverage(on topology: RouteTopology, read: (String) throws -> String) throws(ConfigError) -> DriveCoverage {
        let vehicle = try self.vehicle(in: topology)
        var problems: [ConfigProblem] = []
        let trajectory: Trajectory?
        do { trajectory = try self.trajectory(read: read) } catch { problems += error.problems; trajectory = nil }
        for e in events where !topology.links.contains(e.event.link) {
            problems.append(ConfigProblem(at: e.linkLocation, "no link '\(e.event.link)' in the topology\(Suggestion.didYouMean(e.event.link, among: topology.links))"))
        }
        var capacityLinks: [CapacityTraceLink] = []
        for c in capacity {
            guard let up = topology.uplink(vehicle, c.link) else {
                let known = topology.links.contains(c.link) ? "'\(c.link)' is not a link of vehicle '\(vehicle)'"
                    : "no link '\(c.link)' in the topology\(Suggestion.didYouMean(c.link, among: topology.links))"
                problems.append(ConfigProblem(at: c.location, known))
                continue
            }
            func trace(_ ref: (path: String, location: SourceLocation)?) -> MahimahiCapacity? {
                guard let ref else { return nil }
                let path = resolve(ref.path)
                do {
                    let text = try read(path)
                    do { return try MahimahiCapacity(text) } catch {
                        problems.append(ConfigProblem(at: SourceLocation(file: path, line: error.line, column: error.column), error.message))
                    }
                } catch {
                    problems.append(ConfigProblem(at: ref.location, "cannot read trace '\(path)': \(error)"))
                }
                return nil
            }
            let u = trace(c.uplink), d = trace(c.downlink)
            capacityLinks.append(CapacityTraceLink(link: c.link, uplinkDirection: up, uplink: u, downlink: d, window: c.window))
        }
        let sites = topology.sites(vehicle)
        if drive != nil && sites.isEmpty {
            problems.append(ConfigProblem(at: topologyLocation, "vehicle '\(vehicle)' has no radio link to a roadside unit with a position in the topology"))
        }
        if !problems.isEmpty { throw ConfigError(problems) }

        let lastEvent = events.map(\.event.at).max() ?? .zero
        let duration = self.duration ?? max(trajectory?.end ?? .zero, lastEvent)
        if duration <= .zero {
            throw ConfigError(at: durationLocation ?? topologyLocation, "the route lasts no time: give it a 'duration'")
        }
        let late = events.filter { $0.event.at > duration }
        if !late.isEmpty {
            throw ConfigError(late.map { ConfigProblem(at: $0.location, "event at \($0.event.at) is after the end of the route at \(duration)") })
        }
        let settings = CoverageSettings(step: step, seed: seed, loss: coverageLoss, association: association, lossResolution: lossResolution)
        var result: DriveCoverage
        if let trajectory {
            result = DriveCoverage.compute(trajectory: trajectory, sites: sites, duration: duration, settings: settings)
        } else {
            result = DriveCoverage(timeline: CoverageTimeline(events: [], duration: duration), samples: [:], sites: [], trajectory: nil)
        }
        var all = result.timeline.events
        for c in capacityLinks { all += c.events(duration: duration) }
        // Hand-written events come after computed ones at the same time, so they win.
        all += events.map(\.event)
        result.timeline = CoverageTimeline(events: all, duration: duration)
        return result
    }
}
