import Core
import LinkModel
import Simulation
import Testing

/// A host that sends what its script says when it says, and keeps what it receives.
struct ScriptedHost: SimulatedHost {
    var script: [(Instant, SimulatedPacket)]
    var cursor = 0
    var outbox: [SimulatedPacket] = []
    var received: [(at: Instant, interface: Int, packet: SimulatedPacket)] = []
    var carrierEvents: [(at: Instant, interface: Int, up: Bool)] = []

    init(script: [(Instant, SimulatedPacket)] = []) { self.script = script.sorted { $0.0 < $1.0 } }

    mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant) {
        received.append((now, interface, packet))
    }
    mutating func takeOutgoing(now: Instant) -> [SimulatedPacket] {
        defer { outbox = [] }
        return outbox
    }
    var nextDeadline: Instant { cursor < script.count ? script[cursor].0 : .distantFuture }
    mutating func advance(now: Instant) {
        while cursor < script.count && script[cursor].0 <= now { outbox.append(script[cursor].1); cursor += 1 }
    }
    mutating func carrierChanged(interface: Int, up: Bool, now: Instant) {
        carrierEvents.append((now, interface, up))
    }
}

func raw(_ from: NodeAddress, _ to: NodeAddress, number: UInt64, bytes: Int = 1000) -> SimulatedPacket {
    var b = [UInt8](repeating: 0, count: bytes)
    for i in 0..<8 { b[i] = UInt8(truncatingIfNeeded: number >> (56 - 8 * UInt64(i))) }
    return SimulatedPacket(source: from, destination: to, payload: .raw(protocolNumber: 253, bytes: b))
}

func number(_ p: SimulatedPacket) -> UInt64? {
    guard case .raw(_, let b) = p.payload else { return nil }
    return b.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
}

extension Instant {
    static func ms(_ v: Int) -> Instant { .zero + .milliseconds(v) }
}

let vehicleA = NodeAddress(198, 18, 0, 1)
let vehicleB = NodeAddress(198, 18, 1, 1)
let server = NodeAddress(198, 18, 9, 1)

@Suite struct SimulationDeterminismTests {
    /// Source -> router -> sink across loss, jitter, reordering and duplication.
    func lossyRun(seed: UInt64) throws -> String {
        var net = Network(seed: seed)
        let src = try net.addHost("src", PacketSource(from: vehicleA, to: server, packetBytes: 500,
                                                      interval: .milliseconds(1), count: 500))
        let r = try net.addRouter("r")
        let dst = try net.addHost("dst", PacketSink())
        let options = PipelineOptions(lossProcess: .gilbertElliott(p: Probability(0.02), r: Probability(0.3),
                                                                   lossInGood: Probability(0.01), lossInBad: Probability(0.5)),
                                      reorderProbability: Probability(0.05), reorderDelay: .milliseconds(3),
                                      duplicateProbability: Probability(0.02))
        try net.connect(src, vehicleA, r, nil, parameters: LinkParameters(delay: .milliseconds(5), jitter: .milliseconds(2),
                                                                          rate: .mbit(5), loss: Probability(0.03)))
        try net.connect(r, nil, dst, server, parameters: LinkParameters(delay: .milliseconds(10), rate: .mbit(20)),
                        options: options)
        net.runUntilIdle()
        return net.eventLog.text
    }

    @Test func sameSeedGivesAByteIdenticalLog() throws {
        let a = try lossyRun(seed: 11)
        let b = try lossyRun(seed: 11)
        #expect(a == b)
        #expect(a.contains(" drop src-r a-to-b "))
        #expect(a.contains(" recv dst if0 "))
    }

    @Test func differentSeedsGiveDifferentLogs() throws {
        #expect(try lossyRun(seed: 11) != lossyRun(seed: 12))
    }
}

@Suite struct SimulationOutageTests {
    @Test func nothingCrossesALinkDuringAnOutage() throws {
        var net = Network(seed: 1)
        let src = try net.addHost("src", PacketSource(from: vehicleA, to: server, packetBytes: 100,
                                                      interval: .milliseconds(1), count: 1000))
        let dst = try net.addHost("dst", PacketSink())
        let link = try net.connect(src, vehicleA, dst, server, parameters: LinkParameters(delay: .milliseconds(10)))
        net.addOutage(link, from: .milliseconds(300), to: .milliseconds(500))
        net.runUntilIdle()
        let sink = try #require(net.host(dst, as: PacketSink.self))
        // Sent before 290 ms: arrived before the outage. Sent from 290 ms: still on the
        // link at 300 ms, lost. Sent from 500 ms: crosses again.
        let expected = Array(0..<290) + Array(500..<1000)
        #expect(sink.arrivals.compactMap(\.number) == expected.map(UInt64.init))
        for a in sink.arrivals { #expect(a.at == .ms(Int(a.number!) + 10)) }
        #expect(net.counters(link, .aToB).dropped[.coverage] == 210)
        #expect(net.eventLog.text.contains("0.300000000 step src-dst a-to-b coverage down silent"))
    }

    @Test func carrierLossIsReportedToBothEnds() throws {
        var net = Network(seed: 1)
        let a = try net.addHost("a", ScriptedHost())
        let b = try net.addHost("b", ScriptedHost())
        let link = try net.connect(a, vehicleA, b, server)
        net.addOutage(link, from: .milliseconds(100), to: .milliseconds(250), loss: .carrier)
        net.runUntilIdle()
        let ha = try #require(net.host(a, as: ScriptedHost.self))
        let hb = try #require(net.host(b, as: ScriptedHost.self))
        #expect(ha.carrierEvents.map(\.at) == [.ms(100), .ms(250)])
        #expect(ha.carrierEvents.map(\.up) == [false, true])
        #expect(hb.carrierEvents.count == 2)
    }
}

@Suite struct SimulationRoutingTests {
    ///            10 ms  ┌──── rsu1 ────┐  1 ms
    ///   vehicle ─┤                    ├─ core ── 1 ms ── server
    ///            30 ms  └──── rsu2 ────┘  1 ms
    func twoPathNetwork(vehicle: ScriptedHost, server serverHost: ScriptedHost) throws -> (Network, NodeID, NodeID) {
        var net = Network(seed: 3)
        let v = try net.addHost("vehicle", vehicle)
        let rsu1 = try net.addRouter("rsu1")
        let rsu2 = try net.addRouter("rsu2")
        let core = try net.addRouter("core")
        let s = try net.addHost("server", serverHost)
        try net.connect(v, vehicleA, rsu1, nil, parameters: LinkParameters(delay: .milliseconds(10)))
        try net.connect(v, vehicleB, rsu2, nil, parameters: LinkParameters(delay: .milliseconds(30)))
        try net.connect(rsu1, nil, core, nil, parameters: LinkParameters(delay: .milliseconds(1)))
        try net.connect(rsu2, nil, core, nil, parameters: LinkParameters(delay: .milliseconds(1)))
        try net.connect(core, nil, s, server, parameters: LinkParameters(delay: .milliseconds(1)))
        return (net, v, s)
    }

    @Test func eachAddressOfAMultiHomedHostHasItsOwnPath() throws {
        let vehicle = ScriptedHost(script: [(.ms(0), raw(vehicleA, server, number: 1)),
                                            (.ms(0), raw(vehicleB, server, number: 2))])
        let serverHost = ScriptedHost(script: [(.ms(100), raw(server, vehicleA, number: 3)),
                                               (.ms(100), raw(server, vehicleB, number: 4))])
        var (net, v, s) = try twoPathNetwork(vehicle: vehicle, server: serverHost)
        net.runUntilIdle()
        let atServer = try #require(net.host(s, as: ScriptedHost.self)).received
        #expect(atServer.map { number($0.packet) } == [1, 2])
        #expect(atServer.map(\.at) == [.ms(12), .ms(32)])
        let atVehicle = try #require(net.host(v, as: ScriptedHost.self)).received
        #expect(atVehicle.map { number($0.packet) } == [3, 4])
        #expect(atVehicle.map(\.interface) == [0, 1])
        #expect(atVehicle.map(\.at) == [.ms(112), .ms(132)])
    }

    @Test func aPathThatLosesCoverageLeavesTheOtherWorking() throws {
        let script = (0..<100).flatMap { i -> [(Instant, SimulatedPacket)] in
            [(.ms(i), raw(vehicleA, server, number: UInt64(i))), (.ms(i), raw(vehicleB, server, number: UInt64(1000 + i)))]
        }
        var (net, _, s) = try twoPathNetwork(vehicle: ScriptedHost(script: script), server: ScriptedHost())
        try net.apply(CoverageTimeline(events: [
            TimelineEvent(at: .milliseconds(50), link: "vehicle-rsu1", change: .coverage(false, loss: .silent)),
        ], duration: .seconds(1)))
        net.runUntilIdle()
        let numbers = try #require(net.host(s, as: ScriptedHost.self)).received.compactMap { number($0.packet) }
        #expect(numbers.filter { $0 < 1000 } == (0..<40).map(UInt64.init))
        #expect(numbers.filter { $0 >= 1000 }.count == 100)
    }

    @Test func unknownLinkInATimelineIsAnError() throws {
        var (net, _, _) = try twoPathNetwork(vehicle: ScriptedHost(), server: ScriptedHost())
        #expect(throws: SimulationError.unknownLink("nowhere")) {
            try net.apply(CoverageTimeline(events: [TimelineEvent(at: .zero, link: "nowhere", change: .set(LinkParameters()))],
                                           duration: .seconds(1)))
        }
    }

    @Test func aTimelineChangesDelayAtItsTime() throws {
        var net = Network(seed: 1)
        let src = try net.addHost("src", PacketSource(from: vehicleA, to: server, packetBytes: 100,
                                                      interval: .milliseconds(10), count: 100))
        let dst = try net.addHost("dst", PacketSink())
        try net.connect(src, vehicleA, dst, server, name: "radio", parameters: LinkParameters(delay: .milliseconds(10)))
        try net.apply(CoverageTimeline(events: [
            TimelineEvent(at: .milliseconds(500), link: "radio", direction: .aToB, change: .set(LinkParameters(delay: .milliseconds(40)))),
        ], duration: .seconds(1)))
        net.runUntilIdle()
        let sink = try #require(net.host(dst, as: PacketSink.self))
        for a in sink.arrivals {
            let sent = Int(a.number!) * 10
            #expect(a.at == .ms(sent + (sent < 500 ? 10 : 40)))
        }
        #expect(sink.arrivals.count == 100)
    }
}

@Suite struct SimulationBottleneckTests {
    @Test func twoFlowsShareABottleneckAtItsRate() throws {
        var net = Network(seed: 5, logsEvents: false)
        let a = try net.addHost("a", PacketSource(from: vehicleA, to: server, packetBytes: 980,
                                                  interval: .milliseconds(1), count: 2000))  // 8 Mbit/s
        let b = try net.addHost("b", PacketSource(from: vehicleB, to: server, packetBytes: 980,
                                                  interval: .milliseconds(1), count: 2000, start: .zero + .microseconds(500)))
        let r = try net.addRouter("r")
        let s = try net.addHost("s", PacketSink())
        // Jitter on the access links breaks the phase lock two constant-rate flows
        // would otherwise have with a drop-tail queue.
        try net.connect(a, vehicleA, r, nil, parameters: LinkParameters(delay: .milliseconds(2), jitter: .milliseconds(1), rate: .mbit(100)))
        try net.connect(b, vehicleB, r, nil, parameters: LinkParameters(delay: .milliseconds(2), jitter: .milliseconds(1), rate: .mbit(100)))
        let bottleneck = try net.connect(r, nil, s, server,
                                         parameters: LinkParameters(delay: .milliseconds(5), rate: .mbit(10), queuePackets: 50))
        net.runUntilIdle()
        let sink = try #require(net.host(s, as: PacketSink.self))
        // 1000-byte packets at 10 Mbit/s: one every 800 us, back to back once the queue is full.
        let busy = sink.arrivals.filter { $0.at >= .ms(500) && $0.at < .ms(1500) }
        #expect(abs(busy.count - 1250) <= 1)
        let fromA = busy.filter { $0.source == vehicleA }.count
        let share = Double(fromA) / Double(busy.count)
        #expect(share > 0.4 && share < 0.6)
        let c = net.counters(bottleneck, .aToB)
        #expect(c.dropped[.queueFull, default: 0] > 0)
        #expect(c.delivered + c.totalDropped == 4000)
        for pair in zip(sink.arrivals, sink.arrivals.dropFirst()) { #expect(pair.1.at - pair.0.at >= .microseconds(800)) }
    }
}

@Suite struct SimulationHostProtocolTests {
    @Test func withHostLetsATestSendAndTheNetworkCarriesIt() throws {
        var net = Network(seed: 1)
        let a = try net.addHost("a", ScriptedHost())
        let b = try net.addHost("b", ScriptedHost())
        try net.connect(a, vehicleA, b, server, parameters: LinkParameters(delay: .milliseconds(7)))
        net.run(until: .ms(100))
        try net.withHost(a, as: ScriptedHost.self) { $0.outbox.append(raw(vehicleA, server, number: 9)) }
        net.runUntilIdle()
        #expect(net.now == .ms(107))
        let got = try #require(net.host(b, as: ScriptedHost.self)).received
        #expect(got.map(\.at) == [.ms(107)])
        #expect(throws: SimulationError.self) { try net.withHost(a, as: PacketSink.self) { _ in } }
    }

    @Test func aPacketFromAnAddressTheHostDoesNotOwnUsesItsRoute() throws {
        var net = Network(seed: 1)
        let a = try net.addHost("a", ScriptedHost(script: [(.ms(1), raw(NodeAddress(198, 18, 200, 1), server, number: 1)),
                                                           (.ms(2), raw(vehicleA, NodeAddress(198, 19, 0, 1), number: 2))]))
        let b = try net.addHost("b", ScriptedHost())
        try net.connect(a, vehicleA, b, server)
        net.runUntilIdle()
        #expect(try #require(net.host(b, as: ScriptedHost.self)).received.count == 1)
        #expect(net.eventLog.text.contains("not-for-host"))
    }

    @Test func duplicateNamesAndAddressesAreRejected() throws {
        var net = Network(seed: 1)
        let a = try net.addHost("a", PacketSink())
        let b = try net.addHost("b", PacketSink())
        #expect(throws: SimulationError.duplicateName("a")) { try net.addRouter("a") }
        try net.connect(a, vehicleA, b, server)
        #expect(throws: SimulationError.addressInUse(vehicleA)) { try net.connect(a, vehicleA, b, vehicleB, name: "second") }
    }
}
