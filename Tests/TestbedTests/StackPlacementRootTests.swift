import Foundation
import Testing
import Core
import Netlink
@testable import Testbed

/// An IPv4/UDP packet (UDP checksum 0: none, allowed over IPv4 by RFC 768).
func udpPacket(from source: InetAddress, to destination: InetAddress, payload: [UInt8]) -> [UInt8] {
    let total = 20 + 8 + payload.count
    var p: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xff), 0, 1, 0x40, 0, 64, 17, 0, 0]
    for a in [source, destination] { p += [UInt8(a.value >> 24), UInt8(a.value >> 16 & 0xff), UInt8(a.value >> 8 & 0xff), UInt8(a.value & 0xff)] }
    var sum: UInt32 = 0
    for i in stride(from: 0, to: 20, by: 2) { sum += UInt32(p[i]) << 8 | UInt32(p[i + 1]) }
    while sum > 0xffff { sum = (sum & 0xffff) + (sum >> 16) }
    let checksum = ~UInt16(sum)
    p[10] = UInt8(checksum >> 8); p[11] = UInt8(checksum & 0xff)
    let udpLength = 8 + payload.count
    p += [0x13, 0x88, 0x13, 0x89, UInt8(udpLength >> 8), UInt8(udpLength & 0xff), 0, 0]
    return p + payload
}

/// The interface the kernel forwards a packet to (`ip route get … from … iif …`):
/// the stack's addresses are not local to the node, so only a forwarding lookup works.
func forwardedInterface(in namespace: String, from source: InetAddress, arrivingOn input: String, to destination: InetAddress) throws -> String? {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    p.arguments = ["-n", namespace, "-o", "route", "get", destination.description, "from", source.description, "iif", input]
    let pipe = Pipe()
    p.standardOutput = pipe
    p.standardError = FileHandle.nullDevice
    try p.run()
    p.waitUntilExit()
    let words = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).split(separator: " ")
    guard let i = words.firstIndex(of: "dev"), i + 1 < words.count else { return nil }
    return String(words[i + 1])
}

/// Reads packets from a TUN descriptor until one carries `payload` or `timeout` ms pass.
func receive(_ payload: [UInt8], on fd: Int32, timeoutMilliseconds: Int32 = 3000) -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: 2048)
    let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
    while Date() < deadline {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 100) > 0 else { continue }
        let n = read(fd, &buffer, buffer.count)
        if n > 28, Array(buffer[28..<n]) == payload { return Array(buffer[0..<n]) }
    }
    return nil
}

/// Builds a topology with the Swift stack placed on the car and the server,
/// without the stack: raw packets written into one TUN device must come out of
/// the other, each stack address must leave by its own path, and teardown must
/// remove the TUN devices with everything else. Needs root.
@Suite("Swift stack placement build and teardown (Root, namespaces, TUN)", .enabled(if: getuid() == 0))
struct StackPlacementRootTests {
    let registry = RunRegistry(directory: "/run/wayside-test")

    @Test func packetsFromOneStackAddressReachTheOtherThroughTheTunDevices() throws {
        let runID = uniqueRunID()
        let before = try Leftovers.snapshot(runID)
        let plan = try TestbedPlan(topology: Topology.load(contentsOf: shippedTopology("highway-2rsu")), runID: runID,
                                   emulation: EmulationMode.none, swiftStackNodes: ["car", "server"])
        let testbed = try TestbedNetwork.build(plan, registry: registry)
        var tornDown = false
        defer { if !tornDown { try? testbed.teardown() } }

        let car = try #require(plan.stackPlacement(forNode: "car"))
        let server = try #require(plan.stackPlacement(forNode: "server"))
        let carNS = try NetworkNamespace.open(named: car.namespace), serverNS = try NetworkNamespace.open(named: server.namespace)
        let tunName = car.tunName
        let carTun = try carNS.run { try TunDevice.attach(name: tunName) }
        defer { close(carTun) }
        let serverTun = try serverNS.run { try TunDevice.attach(name: tunName) }
        defer { close(serverTun) }
        let state = try carNS.routeSocket().state(ofLink: car.tunName)
        #expect(state.index == car.tunIndex && state.up)
        // The kernel forwards for the stack behind it, and does not filter by reverse path.
        #expect(try carNS.readSysctl("net/ipv4/ip_forward") == "1")
        #expect(try carNS.readSysctl("net/ipv4/conf/\(car.tunName)/rp_filter") == "0")

        // Each stack address of the car leaves by its own veth.
        let s = server.paths[0].stackAddress
        for path in car.paths {
            #expect(try forwardedInterface(in: car.namespace, from: path.stackAddress, arrivingOn: car.tunName, to: s) == path.interface.name)
        }
        // Both directions, from each of the car's stack addresses.
        for (k, path) in car.paths.enumerated() {
            let out = Array("car path \(k) to server".utf8)
            let sent = udpPacket(from: path.stackAddress, to: s, payload: out)
            #expect(write(carTun, sent, sent.count) == sent.count)
            let got = try #require(receive(out, on: serverTun), "nothing from \(path.stackAddress) reached the server's TUN")
            #expect(Array(got[12..<20]) == Array(sent[12..<20]))   // addresses untouched
            #expect(got[8] == 64 - 4)                               // four forwarding hops: car, rsu, backhaul, server
            let back = Array("server to car path \(k)".utf8)
            let reply = udpPacket(from: s, to: path.stackAddress, payload: back)
            #expect(write(serverTun, reply, reply.count) == reply.count)
            #expect(receive(back, on: carTun) != nil, "nothing from the server reached \(path.stackAddress)")
        }

        try testbed.teardown()
        tornDown = true
        #expect(try Leftovers.snapshot(runID) == before)
        #expect(!(try RouteSocket().links().contains { $0.name == car.tunName }))
    }
}
