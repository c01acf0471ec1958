import Testing
import Config
import Core
import Netlink
@testable import Testbed

/// The repository's root, found from this file's path (tests run from anywhere).
let repositoryRoot: String = {
    var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
    parts.removeLast(3) // Tests/TestbedTests/TopologyTests.swift
    return parts.joined(separator: "/")
}()

func shippedTopology(_ name: String) -> String { "\(repositoryRoot)/Topologies/\(name).yaml" }

@Suite("Topology files")
struct TopologyTests {
    static let shipped = ["highway-2rsu", "highway-rsu-500m", "urban-grid", "cellular-backup", "dense"]

    @Test(arguments: shipped)
    func shippedTopologiesLoad(name: String) throws {
        let t = try Topology.load(contentsOf: shippedTopology(name))
        #expect(t.name == name)
        #expect(!t.vehicles.isEmpty)
        #expect(!t.roadsideUnits.isEmpty)
        for v in t.vehicles { #expect(t.links(of: v.name).contains { $0.kind == .radio }) }
    }

    @Test func highwayHasWhatMobilityAndTheRunnerNeed() throws {
        let t = try Topology.load(contentsOf: shippedTopology("highway-2rsu"))
        #expect(t.vehicles.map(\.name) == ["car"])
        #expect(t.roadsideUnits.map(\.name) == ["rsu1", "rsu2"])
        #expect(t.node(named: "rsu2")?.position == Position(x: 400, y: 0))
        #expect(t.node(named: "rsu1")?.radio == RadioParameters(model: .disk(range: 250), technology: "802.11p"))
        let link = try #require(t.link(named: "car-rsu1"))
        #expect(link.kind == .radio)
        #expect(link.a.node == "car" && link.b.node == "rsu1")
        #expect(link.aToB == LinkParameters(delay: .milliseconds(2), rate: .mbit(12), queuePackets: 100))
        #expect(link.needsEmulation)
        #expect(t.link(named: "backhaul-server")?.needsEmulation == false)
        #expect(t.link(named: "rsu1-backhaul")?.kind == .wired)
    }

    @Test func perDirectionParametersAndAlwaysOn() throws {
        let t = try Topology.load(contentsOf: shippedTopology("cellular-backup"))
        let cell = try #require(t.link(named: "cellular"))
        #expect(cell.alwaysOn)
        #expect(cell.aToB.rate == .mbit(5) && cell.bToA.rate == .mbit(20))
        #expect(cell.parameters(.bToA).jitter == .milliseconds(5))
        #expect(cell.a.interface == "lte0")
        #expect(t.node(named: "cell")?.position == nil)
    }

    @Test func pathLossRadio() throws {
        let t = try Topology.load(contentsOf: shippedTopology("urban-grid"))
        guard case .logDistance(let m)? = t.node(named: "rsu-ne")?.radio?.model else {
            Issue.record("expected a log-distance radio"); return
        }
        #expect(m.exponent == 3.0 && m.associateDBm == -85 && m.disassociateDBm == -90 && m.shadowingSigmaDB == 6)
        #expect(abs(m.medianReceivedPower(at: 100) - (23 - 47.9 - 60)) < 1e-9)
    }

    @Test func explicitAddressesAndRoutes() throws {
        let t = try Topology.parse(text: """
        nodes:
          car: {role: vehicle}
          rsu: {role: rsu}
          srv: {role: server}
        links:
          - {endpoints: [car, rsu], addresses: [198.18.7.1/24, 198.18.7.2/24], interfaces: [wlan0, v]}
          - {endpoints: [rsu, srv], name: uplink}
        routes:
          - {node: srv, to: 198.18.7.0/24, via: rsu}
        """, file: "x.yaml")
        #expect(t.name == "x")
        #expect(t.links[0].a.address == InetPrefix("198.18.7.1/24"))
        #expect(t.links[0].kind == .radio) // vehicle to rsu defaults to radio
        #expect(t.links[1].name == "uplink" && t.links[1].kind == .wired)
        #expect(t.routes == [ExplicitRoute(node: "srv", destination: InetPrefix("198.18.7.0/24")!, via: "rsu", location: t.routes[0].location)])
    }
}

/// Every kind of bad input, each reported with file:line:column and what was expected.
@Suite("Topology files: bad input")
struct BadTopologyTests {
    func problems(_ text: String) -> [String] {
        do {
            _ = try Topology.parse(text: text, file: "bad.yaml")
            return []
        } catch {
            return error.problems.map(\.description)
        }
    }

    let base = """
    nodes:
      car: {role: vehicle}
      rsu1: {role: rsu, position: [0, 0], radio: {range: 300m}}
      srv: {role: server}
    links:
      - {endpoints: [car, rsu1]}
      - {endpoints: [rsu1, srv]}

    """

    @Test func baseIsValid() { #expect(problems(base) == []) }

    @Test func unknownKeysSuggestTheRightOne() {
        #expect(problems(base + "routs: []\n") == ["bad.yaml:8:1: unknown key 'routs'; did you mean 'routes'? (expected 'name', 'description', 'emulation', 'nodes', 'links' or 'routes')"])
        let p = problems(base.replacingOccurrences(of: "{role: server}", with: "{role: server, stak: swift}"))
        #expect(p.count == 1 && p[0].hasPrefix("bad.yaml:4:23: unknown key 'stak'; did you mean 'stack'?"))
    }

    @Test func danglingNodeReference() {
        let p = problems(base + "  - {endpoints: [rsu1, svr]}\n")
        #expect(p == ["bad.yaml:8:24: no node named 'svr'; did you mean 'srv'? (expected one of the nodes under 'nodes')"])
    }

    @Test func duplicateNamesOfNodesAndLinks() {
        #expect(problems(base + "  - {endpoints: [rsu1, srv]}\n") == [
            "bad.yaml:8:5: a second link named 'rsu1-srv' (line 7); expected unique link names: give one of them 'name:'",
        ])
        let p = problems(base.replacingOccurrences(of: "  srv: {role: server}", with: "  srv: {role: server}\n  srv: {role: host}"))
        #expect(p.count == 1 && p[0].hasPrefix("bad.yaml:4:3: key 'srv' appears more than once"))
    }

    @Test func unitsThatDoNotParse() {
        let p = problems(base + "  - {endpoints: [rsu1, srv], name: x, rate: 54mbitz, delay: 20, loss: 0.5%%, queue: 12 apples}\n")
        #expect(p.count == 4)
        #expect(p[0].hasPrefix("bad.yaml:8:45: cannot read '54mbitz': expected a rate"))
        #expect(p[1].hasPrefix("bad.yaml:8:61: cannot read '20': expected a duration"))
        #expect(p[2].hasPrefix("bad.yaml:8:71: cannot read '0.5%%': expected a probability"))
        #expect(p[3].hasPrefix("bad.yaml:8:85: cannot read '12 apples': expected a size"))
    }

    @Test func addressClashes() {
        let p = problems(base + """
          - {endpoints: [rsu1, srv], name: a, addresses: [198.18.9.1/24, 198.18.9.2/24]}
          - {endpoints: [rsu1, srv], name: b, addresses: [198.18.9.2/25, 198.18.9.3/25]}
          - {endpoints: [rsu1, srv], name: c, addresses: [198.18.10.1/24, 198.18.11.2/24]}
          - {endpoints: [rsu1, srv], name: d, addresses: [10.0.0.1/24, 198.18.12.0/24]}

        """)
        #expect(p == [
            "bad.yaml:9:36: address 198.18.9.2 of link 'b' is already used by link 'a'",
            "bad.yaml:9:36: subnet 198.18.9.0/25 of link 'b' overlaps 198.18.9.0/24 of link 'a'; expected one subnet per link",
            "bad.yaml:10:36: addresses 198.18.10.1/24 and 198.18.11.2/24 of link 'c' are in different subnets; expected both ends in one subnet",
            "bad.yaml:11:51: 10.0.0.1/24 is outside 198.18.0.0/15; Wayside only uses the benchmarking range, so that no traffic can leave the machine",
            "bad.yaml:11:64: 198.18.12.0/24 is the network address of 198.18.12.0/24; expected a host address",
        ])
    }

    @Test func vehicleWithoutRadioLink() {
        let p = problems(base + "  - {endpoints: [srv, bus]}\n".replacingOccurrences(of: "bus", with: "rsu1") )
        #expect(p.isEmpty)
        let q = problems(base.replacingOccurrences(of: "  srv: {role: server}", with: "  srv: {role: server}\n  bus: {role: vehicle}") + "  - {endpoints: [bus, srv]}\n")
        #expect(q == ["bad.yaml:5:3: vehicle 'bus' has no radio link; expected at least one link of kind 'radio' to a roadside unit"])
    }

    @Test func radioLinkBetweenTheWrongRoles() {
        let p = problems(base + "  - {endpoints: [rsu1, srv], name: r, kind: radio}\n")
        #expect(p == ["bad.yaml:8:45: a radio link joins a vehicle and a roadside unit, found a rsu and a server; expected 'kind: wired' or other endpoints"])
    }

    @Test func wrongShapesAndMissingKeys() {
        let p = problems("""
        nodes:
          car: {position: [1, 2, 3]}
          rsu1: {role: rsu, radio: {range: 10m, path-loss: {}}}
          srv: {role: server, radio: {range: 5m}}
          r: {role: router, stack: swift}
          'bad name': {role: host}
        links: {}
        """)
        #expect(p == [
            "bad.yaml:2:8: missing key 'role' in 'nodes.car': expected the node's role ('vehicle', 'rsu', 'router', 'server' or 'host')",
            "bad.yaml:2:19: expected a position in metres: [x, y] or {x: .., y: ..}, found a list",
            "bad.yaml:3:41: 'path-loss' cannot be given together with 'range'; expected only one of 'range' or 'path-loss'",
            "bad.yaml:4:30: only a roadside unit (role 'rsu') has a radio; 'srv' is a server",
            "bad.yaml:5:28: a router forwards traffic and runs no stack; expected 'stack' only on vehicles, servers and hosts",
            "bad.yaml:6:3: expected a node name of letters, digits, '-', '_' or '.', found 'bad name'",
            "bad.yaml:7:8: expected a list of links, found a mapping",
        ])
    }

    @Test func pathLossProblems() {
        let p = problems(base.replacingOccurrences(of: "radio: {range: 300m}", with: "radio: {path-loss: {tx-power: 20, exponent: 12, shadowing: 4, associate: -80, disassociate: -70}}"))
        #expect(p == [
            "bad.yaml:3:58: missing key 'reference-loss' in 'nodes.rsu1.radio.path-loss': expected path loss in dB at the reference distance",
            "bad.yaml:3:83: expected a path-loss exponent from 1 to 8, found '12'",
        ])
        let q = problems(base.replacingOccurrences(of: "radio: {range: 300m}", with: "radio: {path-loss: {tx-power: 20, reference-loss: 40, exponent: 2, shadowing: 4, associate: -80, disassociate: -70}}"))
        #expect(q.count == 1 && q[0].contains("expected 'disassociate' at or below 'associate' (-80 dBm) so that association has hysteresis, found -70"))
    }

    @Test func routesMustStayInsideTheRange() {
        let p = problems(base + "routes:\n  - {node: srv, to: 0.0.0.0/0, via: rsu1}\n  - {node: srv, to: 198.18.4.0/24, via: car}\n")
        #expect(p == [
            "bad.yaml:9:21: 0.0.0.0/0 is outside 198.18.0.0/15; expected a destination inside the benchmarking range (no route ever leads out of the machine)",
            "bad.yaml:10:5: 'car' is not a neighbour of 'srv'; expected one of 'rsu1'",
        ])
    }

    @Test func syntaxErrorAndEmptyFile() {
        let p = problems("nodes: {car: [\n")
        #expect(p.count == 1 && p[0].hasPrefix("bad.yaml:2:1: not valid YAML"))
        #expect(problems("") == ["bad.yaml:1:1: expected a topology (a mapping with 'nodes' and 'links'), found nothing"])
    }
}

extension String {
    func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
