import Testing
import Core
import Netlink
@testable import Testbed

@Suite("Testbed plan (pure)")
struct PlanTests {
    func plan(_ name: String, emulation: EmulationMode? = nil) throws -> TestbedPlan {
        try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology(name)), runID: RunID("t1")!, emulation: emulation)
    }

    @Test func namesAddressesAndEmulatorAttachments() throws {
        let p = try plan("highway-2rsu")
        #expect(p.namespaces == ["ws-t1-car", "ws-t1-rsu1", "ws-t1-rsu2", "ws-t1-backhaul", "ws-t1-server", "ws-t1--emu"])
        let l = try #require(p.link(named: "car-rsu1"))
        #expect(l.a.name == "eth0" && l.a.namespace == "ws-t1-car" && l.a.address?.description == "198.18.0.1/30")
        #expect(l.b.name == "eth0" && l.b.address?.description == "198.18.0.2/30")
        #expect(l.emulator?.namespace == "ws-t1--emu")
        #expect(l.emulator?.aSide.name == "e0a" && l.emulator?.bSide.name == "e0b")
        #expect(p.link(named: "car-rsu2")?.a.name == "eth1")
        // The plain backhaul link is one veth pair, not emulated.
        #expect(p.link(named: "backhaul-server")?.emulator == nil)
        #expect(p.veths.count == 2 * 4 + 1)
        for v in p.veths { #expect(v.first.name.utf8.count <= 15 && v.second.name.utf8.count <= 15) }
        // Interface indices are unique within each namespace.
        var seen = Set<String>()
        for v in p.veths { for i in [v.first, v.second] { #expect(seen.insert("\(i.namespace)/\(i.index)").inserted) } }
    }

    @Test func emulationNoneBuildsPlainPairs() throws {
        let p = try plan("highway-2rsu", emulation: EmulationMode.none)
        #expect(p.emulatorNamespace == nil)
        #expect(p.veths.count == 5)
        #expect(p.links.allSatisfy { $0.emulator == nil })
    }

    @Test func policyRoutingOnTheMultiHomedVehicle() throws {
        let p = try plan("highway-2rsu")
        let car = try #require(p.node(named: "car"))
        #expect(car.policyRouted)
        #expect(p.node(named: "rsu1")?.policyRouted == false)
        let rules = p.rules.filter { $0.namespace == car.namespace }
        #expect(rules.map(\.source.description) == ["198.18.0.1/32", "198.18.0.5/32"])
        let table100 = p.routes.filter { $0.namespace == car.namespace && $0.route.table == 100 }.map(TestbedPlan.describe)
        #expect(table100 == [
            "198.18.0.0/30 dev eth0 scope link src 198.18.0.1 table 100",
            "198.18.0.0/15 via 198.18.0.2 dev eth0 table 100",
            "unreachable default table 100",
        ])
        #expect(p.routes.filter { $0.namespace == car.namespace && $0.route.table == 101 }.contains { TestbedPlan.describe($0) == "198.18.0.0/15 via 198.18.0.6 dev eth1 table 101" })
    }

    @Test func routesAreSummarisedAndStayInsideTheRange() throws {
        let p = try plan("highway-2rsu")
        let server = p.routes.filter { $0.namespace == "ws-t1-server" }.map(TestbedPlan.describe)
        #expect(server == ["198.18.0.0/15 via 198.18.0.17 dev eth0"])
        let backhaul = p.routes.filter { $0.namespace == "ws-t1-backhaul" }.map(TestbedPlan.describe)
        // Vehicle subnets are reached through their roadside unit, never through the vehicle.
        #expect(backhaul.contains("198.18.0.0/15 via 198.18.0.9 dev eth0"))
        #expect(backhaul.contains("198.18.0.4/30 via 198.18.0.13 dev eth1"))
        for r in p.routes where r.route.kind == .unicast {
            #expect(InetPrefix.testbedRange.covers(r.route.destination))
        }
    }

    @Test func explicitRoutesReplaceComputedOnes() throws {
        let t = try Topology.parse(text: """
        nodes: {car: {role: vehicle}, r1: {role: rsu}, r2: {role: router}, srv: {role: server}}
        links:
          - {endpoints: [car, r1]}
          - {endpoints: [r1, r2]}
          - {endpoints: [r2, srv]}
          - {endpoints: [r1, srv], name: shortcut}
        routes:
          - {node: srv, to: 198.18.0.0/30, via: r2}
        """)
        let p = try TestbedPlan(topology: t, runID: RunID("t2")!)
        let srv = p.routes.filter { $0.namespace == "ws-t2-srv" }.map(TestbedPlan.describe)
        #expect(srv.first == "198.18.0.0/30 via 198.18.0.9 dev eth0")
    }

    @Test func denseTopologyPlansWithinTheRange() throws {
        let p = try plan("dense")
        #expect(p.nodes.count == 35)
        #expect(p.links.count == 214)
        #expect(Set(p.links.map { $0.a.address!.network }).count == 214)
    }

    @Test func shellScriptMirrorsThePlan() throws {
        let p = try plan("highway-2rsu")
        let script = p.shellScript()
        #expect(script.contains("ip link add eth0 netns ws-t1-car type veth peer name e0a netns ws-t1--emu"))
        #expect(script.contains("ip -n ws-t1-car rule add from 198.18.0.1/32 lookup 100 priority 100"))
        #expect(script.contains("ip -n ws-t1-car route add unreachable default table 100"))
        #expect(p.teardownScript().contains("ip netns del ws-t1--emu"))
    }

    @Test func addressSpaceRunsOutWithAClearError() throws {
        // Explicit subnets cover all of 198.18.0.0/15 but one /30; two more links need addresses.
        let t = Topology(name: "full", nodes: [TopologyNode(name: "a", role: .router), TopologyNode(name: "b", role: .router)], links: [
            TopologyLink(name: "x", kind: .wired, a: LinkEnd(node: "a", address: InetPrefix("198.18.0.1/16")), b: LinkEnd(node: "b", address: InetPrefix("198.18.0.2/16"))),
            TopologyLink(name: "y", kind: .wired, a: LinkEnd(node: "a", address: InetPrefix("198.19.0.1/17")), b: LinkEnd(node: "b", address: InetPrefix("198.19.0.2/17"))),
            TopologyLink(name: "z", kind: .wired, a: LinkEnd(node: "a", address: InetPrefix("198.19.128.1/18")), b: LinkEnd(node: "b", address: InetPrefix("198.19.128.2/18"))),
            TopologyLink(name: "auto1", kind: .wired, a: LinkEnd(node: "a"), b: LinkEnd(node: "b")),
        ])
        let p = try TestbedPlan(topology: t, runID: RunID("f")!)
        #expect(p.link(named: "auto1")?.a.address?.description == "198.19.192.1/30")
        var full = t
        for k in 0..<(16384 + 1) { full.links.append(TopologyLink(name: "l\(k)", kind: .wired, a: LinkEnd(node: "a"), b: LinkEnd(node: "b"))) }
        #expect(throws: PlanError.self) { _ = try TestbedPlan(topology: full, runID: RunID("f")!) }
    }

    @Test func runIDs() {
        #expect(RunID("abc123") != nil)
        #expect(RunID("ABC") == nil)
        #expect(RunID("a-b") == nil)
        #expect(RunID("") == nil)
        #expect(RunID.random().value.count == 6)
    }
}
