import ArgumentParser
import Foundation
import Wire

/// `wayside bench wire`: how fast Wire reads and writes packets, measured on a
/// real capture (the kernel MPTCP sample by default).
struct WireBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wire",
        abstract: "Packets per second through Wire's decoder and encoder."
    )

    @Option(help: "Classic pcap capture to decode.")
    var file = "samples/kernel-mptcp-two-paths.pcap"

    @Option(help: "Minimum measuring time per row, in seconds.")
    var seconds = 1.0

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw DecodeFailure(message: "--file \(file): cannot read the file")
        }
        let bytes = [UInt8](data)
        let (header, records): (PcapHeader, [PcapRecord])
        do { (header, records) = try PcapReader.records(bytes) } catch { throw DecodeFailure(message: "--file \(file): \(error)") }
        guard !records.isEmpty else { throw DecodeFailure(message: "--file \(file): no packets") }
        let packets = records.compactMap { record in
            (try? LinkLayer.networkPacket(of: record.data[...], linkType: header.linkType)).flatMap { try? IPPacket.parse($0.packet) }
        }
        let headersOnly = packets.compactMap { p -> [UInt8]? in
            guard var tcp = p.tcp else { return nil }
            tcp.payload = []
            return IPPacket(header: p.header, tcp: tcp).bytes()
        }

        print("Wire throughput on \(file) (\(records.count) packets, \(bytes.count) bytes), release build recommended")
        print("| row | packets | seconds | packets/s | MB/s |")
        print("|---|---:|---:|---:|---:|")
        row("read pcap + decode link, IP, TCP, MPTCP options", perRound: records.count, bytesPerRound: bytes.count) {
            var n = 0
            var reader = try! PcapReader(bytes: bytes)
            while let r = reader.next() { if DecodedFrame.decode(r, index: 0, linkType: header.linkType).packet != nil { n += 1 } }
            return n
        }
        let headerBytes = headersOnly.reduce(0) { $0 + $1.count }
        row("parse IP + TCP headers and options (no payload)", perRound: headersOnly.count, bytesPerRound: headerBytes) {
            var n = 0
            for p in headersOnly where (try? IPPacket.parse(p))?.tcp != nil { n += 1 }
            return n
        }
        row("emit IP + TCP with checksums (no payload)", perRound: packets.count, bytesPerRound: headerBytes) {
            var n = 0
            for p in packets {
                guard var tcp = p.tcp else { continue }
                tcp.payload = []
                n += IPPacket(header: p.header, tcp: tcp).bytes().isEmpty ? 0 : 1
            }
            return n
        }
        row("decode + one text line per packet", perRound: records.count, bytesPerRound: bytes.count) {
            var n = 0
            for r in records { n += DecodedFrame.decode(r, index: 1, linkType: header.linkType).line(origin: 0).isEmpty ? 0 : 1 }
            return n
        }
    }

    /// Repeats `body` until `seconds` have passed and prints one table row.
    func row(_ name: String, perRound: Int, bytesPerRound: Int, _ body: () -> Int) {
        let clock = ContinuousClock()
        var rounds = 0, sink = 0
        let start = clock.now
        var elapsed = Duration.zero
        repeat {
            sink &+= body()
            rounds += 1
            elapsed = clock.now - start
        } while elapsed < .seconds(seconds)
        let s = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let count = rounds * perRound
        let rate = Double(count) / s
        let mbps = Double(rounds * bytesPerRound) / s / 1e6
        print("| \(name) | \(count) | \(String(format: "%.2f", s)) | \(String(format: "%.0f", rate)) | \(String(format: "%.1f", mbps)) |")
        if sink == -1 { print("") } // keeps the work observable to the optimiser
    }
}
