import Foundation
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

@Suite struct SimulationCaptureTsharkTests {
    /// The capture opens in Wireshark's dissector: tshark reads every packet,
    /// sees the TCP handshake options, and finds no malformed packet.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark")))
    func tsharkReadsTheCapture() throws {
        let syn = TCPSegment(sourcePort: 40000, destinationPort: 80, sequenceNumber: SequenceNumber(1000),
                             flags: .syn, window: 65535, options: [.maximumSegmentSize(1460), .sackPermitted])
        let ack = TCPSegment(sourcePort: 40000, destinationPort: 80, sequenceNumber: SequenceNumber(1001),
                             acknowledgmentNumber: SequenceNumber(1), flags: .ack, window: 512, payload: Array(repeating: 7, count: 100))
        var net = Network(seed: 1, capturesPackets: true)
        let a = try net.addHost("a", ScriptedHost(script: [(.ms(0), .tcp(syn, from: vehicleA, to: server)),
                                                           (.ms(1), .tcp(ack, from: vehicleA, to: server))]))
        let b = try net.addHost("b", ScriptedHost())
        try net.connect(a, vehicleA, b, server)
        net.runUntilIdle()
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("wayside-sim-\(UInt64.random(in: 0 ... .max)).pcap").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: Data(net.pcap())))
        let tshark = Process()
        tshark.executableURL = URL(fileURLWithPath: "/usr/bin/tshark")
        tshark.arguments = ["-r", path, "-T", "fields", "-e", "ip.src", "-e", "tcp.flags.syn", "-e", "tcp.options.mss_val",
                            "-e", "tcp.len", "-e", "_ws.malformed"]
        let out = Pipe()
        tshark.standardOutput = out
        tshark.standardError = Pipe()
        try tshark.run()
        let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        tshark.waitUntilExit()
        #expect(tshark.terminationStatus == 0)
        let lines = text.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
        #expect(lines.count == 2)
        #expect(lines.first?.prefix(4) == ["198.18.0.1", "1", "1460", "0"])
        #expect(lines.last?.prefix(4) == ["198.18.0.1", "0", "", "100"])
        #expect(lines.allSatisfy { $0.count < 5 || $0[4].isEmpty })
    }
}
