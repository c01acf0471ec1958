import Foundation
import Testing
@testable import Netlink

func randomSuffix() -> String { String(UInt32.random(in: 0...UInt32.max), radix: 36) }

@Suite("Netlink: addresses (pure)")
struct InetAddressTests {
    @Test func parseAndPrint() {
        #expect(InetAddress("198.18.0.1")?.description == "198.18.0.1")
        #expect(InetAddress("198.18.0") == nil)
        #expect(InetAddress("198.18.0.256") == nil)
        #expect(InetAddress("1.2.3.-4") == nil)
        #expect(InetPrefix("198.18.4.1/30")?.network.description == "198.18.4.0/30")
        #expect(InetPrefix("198.18.4.1/33") == nil)
        #expect(InetPrefix("198.18.4.1") == nil)
    }

    @Test func containment() {
        let range = InetPrefix.testbedRange
        #expect(range.covers(InetPrefix("198.19.255.252/30")!))
        #expect(!range.covers(InetPrefix("198.20.0.0/30")!))
        #expect(!range.covers(InetPrefix("0.0.0.0/0")!))
        #expect(InetPrefix("198.18.9.0/24")!.overlaps(InetPrefix("198.18.9.128/25")!))
        #expect(!InetPrefix("198.18.9.0/25")!.overlaps(InetPrefix("198.18.9.128/25")!))
    }
}

/// Needs root: creates namespaces named `wst-<random>-*` and removes them in a defer.
@Suite("Netlink: namespaces and links (root)", .enabled(if: getuid() == 0))
struct NetlinkRootTests {
    @Test func vethBetweenNamespacesWithAddressesRoutesRulesAndCarrier() throws {
        let tag = "wst-\(randomSuffix())"
        let left = try NetworkNamespace.create(named: "\(tag)-l")
        defer { try? NetworkNamespace.delete(named: left.name) }
        let right = try NetworkNamespace.create(named: "\(tag)-r")
        defer { try? NetworkNamespace.delete(named: right.name) }
        #expect(NetworkNamespace.list().contains(left.name))

        let host = try RouteSocket()
        try host.createVeth(VethEnd(name: "eth0", namespaceFD: left.fd, index: 10), VethEnd(name: "peer0", namespaceFD: right.fd, index: 20))
        // Nothing of ours is left in the host namespace.
        #expect(try !host.links().contains { $0.name == "peer0" })

        let l = try left.routeSocket(), r = try right.routeSocket()
        #expect(try l.state(ofLink: "eth0").index == 10)
        #expect(try r.state(ofLink: "peer0").index == 20)
        #expect(try l.state(ofLink: "eth0").up)
        #expect(try !r.state(ofLink: "peer0").up)
        try r.setLink(index: 20, name: "peer0", up: true)
        try l.addAddress(InetPrefix("198.18.200.1/30")!, interfaceIndex: 10, interfaceName: "eth0")
        try r.addAddress(InetPrefix("198.18.200.2/30")!, interfaceIndex: 20, interfaceName: "peer0")
        try l.addRoute(RouteSpec(destination: InetPrefix("198.18.0.0/15")!, gateway: InetAddress("198.18.200.2"), interfaceIndex: 10))
        try l.addRoute(RouteSpec(destination: InetPrefix("198.18.200.0/30")!, interfaceIndex: 10, source: InetAddress("198.18.200.1"), table: 100))
        try l.addRoute(RouteSpec(destination: .defaultRoute, kind: .unreachable, table: 100))
        try l.addRule(from: InetPrefix("198.18.200.1/32")!, table: 100, priority: 100)
        try left.writeSysctls([("net/ipv4/ip_forward", "1")])
        #expect(try left.readSysctl("net/ipv4/ip_forward") == "1")
        #expect(try right.readSysctl("net/ipv4/ip_forward") == "0")

        // A duplicate is reported with the operation, the subject and the errno.
        let error = #expect(throws: NetlinkError.self) {
            try l.addAddress(InetPrefix("198.18.200.1/30")!, interfaceIndex: 10, interfaceName: "eth0")
        }
        #expect(error?.errno == EEXIST)
        #expect(error?.description.contains("eth0") == true)

        try waitRunning(l, "eth0")
        #expect(try l.state(ofLink: "eth0").isRunning)
        // The peer going down takes the carrier away: what `carrier` coverage loss looks like.
        try r.setLink(named: "peer0", up: false)
        try waitUntil { try !l.state(ofLink: "eth0").carrier }
        #expect(try r.state(ofLink: "peer0").up == false)
        try r.setLink(named: "peer0", up: true)
        try waitRunning(l, "eth0")

        let missing = #expect(throws: NetlinkError.self) { try l.state(ofLink: "nope0") }
        #expect(missing?.errno == ENODEV || missing?.errno == ENOENT)
    }

    @Test func deletingTheNameRemovesTheNamespace() throws {
        let name = "wst-\(randomSuffix())-d"
        let ns = try NetworkNamespace.create(named: name)
        ns.close()
        #expect(NetworkNamespace.exists(named: name))
        #expect(throws: NetlinkError.self) { _ = try NetworkNamespace.create(named: name) }
        try NetworkNamespace.delete(named: name)
        #expect(!NetworkNamespace.exists(named: name))
        try NetworkNamespace.delete(named: name) // idempotent
    }
}

func waitUntil(timeout: Double = 5, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while try !condition() {
        if Date() > deadline { Issue.record("condition not met within \(timeout) s"); return }
        usleep(1000)
    }
}

func waitRunning(_ s: RouteSocket, _ name: String) throws { try waitUntil { try s.state(ofLink: name).isRunning } }
