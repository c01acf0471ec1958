import Foundation
import Testing
import Core
import Netlink
@testable import Testbed

@Suite("Swift stack placement in the plan (pure)")
struct StackPlacementTests {
    func plan(_ nodes: [String] = ["car", "server"]) throws -> TestbedPlan {
        try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: RunID("t1")!, swiftStackNodes: nodes)
    }

    func routes(_ p: TestbedPlan, _ node: String, table: UInt32 = 254) -> [String] {
        p.routes.filter { $0.namespace == "ws-t1-\(node)" && $0.route.table == table }.map(TestbedPlan.describe)
    }

    @Test func noPlacementUnlessAsked() throws {
        let p = try plan([])
        #expect(p.stackPlacements.isEmpty)
        #expect(!p.routes.contains { $0.route.destination.address.value >= InetAddress(198, 19, 255, 0).value })
    }

    @Test func stackAddressesPerPathFromTheTopOfTheRange() throws {
        let p = try plan()
        let car = try #require(p.stackPlacement(forNode: "car"))
        #expect(car.tunName == "wt-t1" && car.namespace == "ws-t1-car")
        #expect(car.paths.map(\.stackAddress.description) == ["198.19.255.254", "198.19.255.253"])
        #expect(car.paths.map(\.interface.name) == ["eth0", "eth1"])
        #expect(car.paths.map(\.link) == ["car-rsu1", "car-rsu2"])
        #expect(car.paths.map(\.table) == [100, 101])
        let server = try #require(p.stackPlacement(forNode: "server"))
        #expect(server.paths.map(\.stackAddress.description) == ["198.19.255.252"])
        // The TUN device's index is unique in the run, like every veth's.
        let indices = p.veths.flatMap { [$0.first.index, $0.second.index] } + p.stackPlacements.map(\.tunIndex)
        #expect(Set(indices).count == indices.count)
        // No stack address falls in any link's subnet.
        for s in p.stackPlacements { for path in s.paths { #expect(!p.links.contains { $0.a.address!.network.contains(path.stackAddress) }) } }
    }

    @Test func theNodeSendsEachStackAddressOutOfItsOwnInterface() throws {
        let p = try plan()
        #expect(routes(p, "car").contains("198.19.255.254/32 dev wt-t1 scope link"))
        #expect(routes(p, "car").contains("198.19.255.253/32 dev wt-t1 scope link"))
        let rules = p.rules.filter { $0.namespace == "ws-t1-car" }.map { "from \($0.source) lookup \($0.table)" }
        #expect(rules.contains("from 198.19.255.254/32 lookup 100") && rules.contains("from 198.19.255.253/32 lookup 101"))
        // The multi-homed car already had per-path tables; they are reused, not repeated.
        #expect(routes(p, "car", table: 100).count == 3)
        #expect(routes(p, "car", table: 101).contains("198.18.0.0/15 via 198.18.0.6 dev eth1 table 101"))
        // The single-homed server gets the same kind of table for its one path.
        #expect(routes(p, "server", table: 100) == [
            "198.18.0.16/30 dev eth0 scope link src 198.18.0.18 table 100",
            "198.18.0.0/15 via 198.18.0.17 dev eth0 table 100",
            "unreachable default table 100",
        ])
        #expect(p.rules.filter { $0.namespace == "ws-t1-server" }.map(\.source.description) == ["198.19.255.252/32"])
    }

    @Test func everyOtherNodeReachesTheStackAddressAsItReachesTheVethAddress() throws {
        let p = try plan()
        // The roadside units: through the car's veth address on their shared link.
        #expect(routes(p, "rsu1").contains("198.19.255.254/32 via 198.18.0.1 dev eth0"))
        #expect(routes(p, "rsu2").contains("198.19.255.253/32 via 198.18.0.5 dev eth0"))
        // The backhaul: path 0 by rsu1, path 1 by rsu2, as to 198.18.0.1 and 198.18.0.5.
        #expect(routes(p, "backhaul").contains("198.19.255.254/32 via 198.18.0.9 dev eth0"))
        #expect(routes(p, "backhaul").contains("198.19.255.253/32 via 198.18.0.13 dev eth1"))
        #expect(routes(p, "backhaul").contains("198.19.255.252/32 via 198.18.0.18 dev eth2"))
        #expect(routes(p, "server").contains("198.19.255.254/32 via 198.18.0.17 dev eth0"))
        // Nothing outside the range, ever.
        for r in p.routes where r.route.kind == .unicast { #expect(InetPrefix.testbedRange.covers(r.route.destination)) }
    }

    @Test func renderingAndScriptShowTheTunDevice() throws {
        let p = try plan()
        #expect(p.render().contains("wt-t1 (TUN, Swift stack): 198.19.255.254 behind eth0, 198.19.255.253 behind eth1"))
        let script = p.shellScript()
        #expect(script.contains("ip -n ws-t1-car tuntap add dev wt-t1 mode tun"))
        #expect(script.contains("ip -n ws-t1-car route add 198.19.255.254/32 dev wt-t1 scope link"))
        #expect(script.contains("ip -n ws-t1-car rule add from 198.19.255.253/32 lookup 101 priority 101"))
    }

    @Test func onlyEndPointsRunTheStack() throws {
        #expect(throws: PlanError.self) { _ = try plan(["rsu1"]) }
        #expect(throws: PlanError.self) { _ = try plan(["nobody"]) }
    }
}
