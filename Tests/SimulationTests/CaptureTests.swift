import Core
import LinkModel
import Simulation
import Testing
import Wire

@Suite struct SimulationCaptureTests {
    @Test func pcapHoldsEveryPacketSentAsIPv4WithItsVirtualTime() throws {
        let syn = TCPSegment(sourcePort: 40000, destinationPort: 80, sequenceNumber: SequenceNumber(1000),
                             flags: .syn, window: 65535, options: [.maximumSegmentSize(1460), .sackPermitted,
                                                                    .timestamps(value: 1, echoReply: 0), .noOperation, .windowScale(7)])
        let data = TCPSegment(sourcePort: 40000, destinationPort: 80, sequenceNumber: SequenceNumber(1001),
                              acknowledgmentNumber: SequenceNumber(5), flags: [.ack, .psh], window: 512,
                              payload: Array("hello, roadside".utf8))
        var net = Network(seed: 1, capturesPackets: true)
        let a = try net.addHost("a", ScriptedHost(script: [(.ms(0), .tcp(syn, from: vehicleA, to: server)),
                                                           (.ms(2), .tcp(data, from: vehicleA, to: server)),
                                                           (.ms(3), raw(vehicleA, server, number: 7, bytes: 30))]))
        let b = try net.addHost("b", ScriptedHost())
        try net.connect(a, vehicleA, b, server, parameters: LinkParameters(delay: .milliseconds(5), rate: .mbit(1)))
        net.runUntilIdle()
        let (header, records) = try PcapReader.records(net.pcap())
        #expect(header.linkType == .raw)
        #expect(records.map(\.timestamp) == [0, 2_000_000, 3_000_000])
        let first = try IPPacket.parse(records[0].data[...])
        #expect(first.header.source == .v4(vehicleA))
        #expect(first.header.destination == .v4(server))
        #expect(first.tcp == syn)
        #expect(first.tcpChecksumValid == true)
        let second = try IPPacket.parse(records[1].data[...])
        #expect(second.tcp == data)
        #expect(records[1].data.count == SimulatedPacket.tcp(data, from: vehicleA, to: server).byteCount)
        let third = try IPPacket.parse(records[2].data[...])
        #expect(third.proto == 253)
        #expect(third.otherPayload.count == 30)
    }

    @Test func noCaptureUnlessAsked() throws {
        var net = Network(seed: 1)
        let a = try net.addHost("a", ScriptedHost(script: [(.ms(0), raw(vehicleA, server, number: 1))]))
        let b = try net.addHost("b", ScriptedHost())
        try net.connect(a, vehicleA, b, server)
        net.runUntilIdle()
        #expect(net.captured.isEmpty)
        #expect(try PcapReader.records(net.pcap()).1.isEmpty)
    }
}
