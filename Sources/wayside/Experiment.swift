import ArgumentParser
import Config
import Core
import Foundation
import MPTCP
import TCP

/// What `wayside run` runs: a topology, a route, traffic, the stacks to compare,
/// kernel MPTCP's path manager, seed, duration and thresholds. Built from an
/// experiment file (decoded through `Config`, problems with file:line:column),
/// then overridden by flags.
struct Experiment {
    enum Traffic: String, CaseIterable { case bulk, cbr, rr }
    enum Direction: String, CaseIterable { case down, up, both }
    /// The stacks `wayside run` knows.
    enum Stack: String, CaseIterable { case swift, kernelMPTCP = "kernel-mptcp", kernelTCP = "kernel-tcp" }
    /// Kernel MPTCP's in-kernel path manager configurations (BASELINES.md).
    enum PathManager: String, CaseIterable { case subflow, fullmesh }

    /// A topology or route: a file, or the text embedded in the binary for the default run.
    struct Source {
        var name: String
        var text: String?
        var path: String?
    }

    var topology: Source? = nil
    var route: Source
    var traffic: Traffic = .cbr
    var rate: Int = 1000
    var size: Int = 1024
    var direction: Direction = .down
    var stacks: [Stack] = [.swift, .kernelMPTCP, .kernelTCP]
    var pathManager: PathManager = .subflow
    var seed: UInt64? = nil
    var duration: Interval? = nil
    var assertions: [String] = []
    /// The Swift stack's path manager (`PathManagers.names`); `--path-manager fullmesh` sets both stacks'.
    var swiftPathManager = PathManagers.defaultName
    /// The Swift stack's packet scheduler (`Schedulers.names`).
    var scheduler = Schedulers.defaultName
    /// The Swift stack's congestion control: `cubic`, `reno`, or a coupled one (`lia`, `olia`, `balia`).
    var congestionControl = CongestionControlAlgorithm.cubic.rawValue

    static let keys = ["topology", "route", "traffic", "rate", "size", "direction", "stacks", "path-manager", "seed", "duration", "assert",
                       "scheduler", "congestion-control", "swift-path-manager"]

    /// Path manager names: kernel MPTCP's (`subflow`, `fullmesh`) and the Swift stack's.
    static var pathManagerNames: [String] { ["subflow"] + PathManagers.names }
    static var congestionControlNames: [String] {
        CongestionControlAlgorithm.allCases.map(\.rawValue) + CoupledAlgorithm.allCases.filter { $0 != .uncoupled }.map(\.rawValue)
    }

    /// A congestion control name as the Swift stack applies it: `lia`, `olia`,
    /// `balia` couple the subflows; `cubic`, `reno` run them uncoupled on that
    /// algorithm. Nil for a name that is neither.
    static func congestionControl(named name: String) -> (coupled: CoupledAlgorithm?, uncoupled: CongestionControlAlgorithm?)? {
        if let c = CoupledAlgorithm(rawValue: name), c != .uncoupled { return (c, nil) }
        if let cc = CongestionControlAlgorithm(rawValue: name) { return (nil, cc) }
        return nil
    }

    /// `value` when it is one of `names`; else the flag's error naming them.
    static func choice(_ value: String, of names: [String], flag: String) throws -> String {
        guard names.contains(value) else { throw ValidationError("\(flag): '\(value)' is not one of \(names.joined(separator: ", "))") }
        return value
    }

    /// Sets the path manager from a name: `subflow` is kernel MPTCP's (the Swift
    /// stack keeps its default), `fullmesh` both stacks', the others the Swift
    /// stack's (kernel MPTCP keeps `subflow`). False for an unknown name.
    mutating func setPathManager(_ name: String) -> Bool {
        guard Self.pathManagerNames.contains(name) else { return false }
        if let kernel = PathManager(rawValue: name) { pathManager = kernel }
        if PathManagers.names.contains(name) { swiftPathManager = name }
        return true
    }

    /// The embedded default: highway-2rsu, 30 s with one make-before-break
    /// handover, CBR downlink 1000 msg/s × 1 KiB, swift, then kernel-mptcp, then kernel-tcp.
    static var standard: Experiment {
        Experiment(topology: Source(name: "highway-2rsu (embedded)", text: DefaultExperiment.topology),
                   route: Source(name: "highway-2rsu-30s (embedded)", text: DefaultExperiment.route))
    }

    /// Reads an experiment file. Relative topology and route paths are taken
    /// from the file's folder (or, for a bare name, `Topologies/`/`Routes/`).
    /// `allowSwift`: the run simulates, so `swift` may be listed in `stacks`.
    static func load(contentsOf path: String, allowSwift: Bool = false) throws(ConfigError) -> Experiment {
        let doc = try ConfigDocument(contentsOf: path)
        var e = Experiment.standard
        e.topology = nil
        let dir = (path as NSString).deletingLastPathComponent
        func resolve(_ text: String, folder: String) -> String {
            if text.hasPrefix("/") { return text }
            if text.contains("/") { return ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent(text) }
            let name = text.hasSuffix(".yaml") || text.hasSuffix(".yml") ? text : text + ".yaml"
            let beside = ((dir.isEmpty ? "." : dir) as NSString).appendingPathComponent("../\(folder)/\(name)")
            if FileManager.default.fileExists(atPath: beside) { return (beside as NSString).standardizingPath }
            return "\(folder)/\(name)"
        }
        guard let root = doc.root.mapping(keys: keys, expected: "an experiment (a mapping)") else { try doc.finish(); return e }
        if let v = root["topology"], let s = v.string(expected: "a topology file") {
            e.topology = Source(name: s, path: resolve(s, folder: "Topologies"))
        }
        if let v = root.required("route", expected: "a route file"), let s = v.string(expected: "a route file") {
            e.route = Source(name: s, path: resolve(s, folder: "Routes"))
        }
        if let v = root["traffic"], let t = v.choice(Traffic.self, what: "a traffic kind") { e.traffic = t }
        if let v = root["rate"], let r = v.int(in: 1...1_000_000) { e.rate = r }
        if let v = root["size"], let s = v.byteSize() {
            if s < 24 || s > 16 << 20 { v.report("message size \(s) B is outside 24 B ... 16 MiB") } else { e.size = s }
        }
        if let v = root["direction"], let d = v.choice(Direction.self, what: "a direction") { e.direction = d }
        if let v = root["stacks"], let list = v.sequence(expected: "a list of stacks") {
            var stacks: [Stack] = []
            for item in list {
                guard let s = item.choice(Stack.self, what: "a stack") else { continue }
                if !stacks.contains(s) { stacks.append(s) }
            }
            if list.isEmpty { v.report("expected at least one stack") }
            e.stacks = stacks
        }
        if let v = root["path-manager"], let p = v.string(expected: "a path manager"), !e.setPathManager(p) {
            v.report("'\(p)' is not a path manager: one of \(pathManagerNames.joined(separator: ", "))")
        }
        if let v = root["swift-path-manager"], let p = v.string(expected: "a path manager") {
            if PathManagers.names.contains(p) { e.swiftPathManager = p } else { v.report("'\(p)' is not one of \(PathManagers.names.joined(separator: ", "))") }
        }
        if let v = root["scheduler"], let p = v.string(expected: "a scheduler") {
            if Schedulers.names.contains(p) { e.scheduler = p } else { v.report("'\(p)' is not a scheduler: one of \(Schedulers.names.joined(separator: ", "))") }
        }
        if let v = root["congestion-control"], let p = v.string(expected: "a congestion control") {
            if congestionControlNames.contains(p) { e.congestionControl = p } else {
                v.report("'\(p)' is not a congestion control: one of \(congestionControlNames.joined(separator: ", "))")
            }
        }
        if let v = root["seed"], let s = v.int(in: 0...Int.max) { e.seed = UInt64(s) }
        if let v = root["duration"], let d = v.nonNegativeInterval() {
            if d == .zero { v.report("expected a positive duration") } else { e.duration = d }
        }
        if let v = root["assert"], let list = v.sequence(expected: "a list of thresholds, e.g. 'max_gap < 600ms'") {
            for item in list { if let s = item.string(expected: "a threshold") { e.assertions.append(s) } }
        }
        try doc.finish()
        return e
    }
}

/// The default experiment's files, embedded so that `wayside run` works from any folder.
/// They are copies of `Topologies/highway-2rsu.yaml` and `Routes/highway-2rsu-30s.yaml`
/// (a test checks that they stay equal).
enum DefaultExperiment {
    static let topology = """
    # A straight highway with two roadside units 400 m apart, each reaching 250 m,
    # so their coverage overlaps by 100 m. Both are wired to one backhaul router,
    # which reaches the server.
    #
    #            rsu1 (0,0) ─────┐
    #   car ~~~<                  backhaul ──── server
    #            rsu2 (400,0) ───┘
    name: highway-2rsu
    description: A vehicle, two roadside units 400 m apart with 250 m range, a backhaul router and a server.
    nodes:
      car:      {role: vehicle, stack: swift}
      rsu1:
        role: rsu
        position: [0, 0]
        radio: {technology: 802.11p, range: 250m}
      rsu2:
        role: rsu
        position: [400, 0]
        radio: {technology: 802.11p, range: 250m}
      backhaul: {role: router}
      server:   {role: server, stack: swift}
    links:
      # 802.11p at a mid-table rate; the route's coverage timeline changes it.
      - endpoints: [car, rsu1]
        kind: radio
        rate: 12mbit
        delay: 2ms
        queue: 100
      - endpoints: [car, rsu2]
        kind: radio
        rate: 12mbit
        delay: 2ms
        queue: 100
      - endpoints: [rsu1, backhaul]
        rate: 1gbit
        delay: 5ms
      - endpoints: [rsu2, backhaul]
        rate: 1gbit
        delay: 5ms
      - endpoints: [backhaul, server]

    """

    static let route = """
    # The default experiment's drive (`wayside run` with no arguments): 30 s at
    # 96 km/h past the two roadside units of highway-2rsu (400 m apart, 250 m
    # range). rsu1 covers the start, both cover x 150…250 m (t ≈ 13.1…16.9 s, a
    # make-before-break handover), rsu2 covers the end. Coverage is lost silently
    # (a black hole, as when the radio fades without a disassociation).
    description: Highway at 96 km/h past two RSUs with 100 m of overlapping coverage, 30 s.
    topology: highway-2rsu
    seed: 1
    coverage-loss: silent
    drive:
      waypoints:
        - {x: -200, y: 5, speed: 96km/h}
        - {x: 600, y: 5}

    """
}
