import Foundation
import Testing
@testable import Wire

/// The committed capture of a kernel MPTCP run (made by the interop test with
/// WAYSIDE_KEEP_CAPTURE) decodes without error and its cryptography
/// recomputes, on any machine, root or not.
@Suite("Sample capture samples/kernel-mptcp-two-paths.pcap")
struct SampleCaptureTests {
    static let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("samples/kernel-mptcp-two-paths.pcap").path

    @Test func decodesAndCryptoRecomputes() throws {
        let (header, records) = try PcapReader.records(Array(try Data(contentsOf: URL(fileURLWithPath: Self.path))))
        #expect(header.linkType == .linuxSLL)
        let frames = records.enumerated().map { DecodedFrame.decode($1, index: $0 + 1, linkType: header.linkType) }
        #expect(frames.allSatisfy { $0.error == nil && $0.packet?.tcp != nil })
        let check = try CaptureCryptoCheck(frames: frames)
        #expect(check.failures == [])
        #expect(check.tokensChecked == 2)
        #expect(check.joinHMACsChecked == 4)
        #expect(check.addAddressHMACsChecked == 1)
        #expect(check.idsnsChecked == 2)
        #expect(check.dssChecksumsChecked > 0)
        // Every MPTCP option re-emits to the bytes it was read from.
        for record in records {
            guard let packet = try? IPPacket.parse(LinkLayer.networkPacket(of: record.data[...], linkType: header.linkType).packet),
                  let tcp = packet.tcp else { continue }
            var rebuilt = [UInt8](repeating: 0xA5, count: tcp.encodedLength)
            tcp.emit(into: &rebuilt)
            let original = try LinkLayer.networkPacket(of: record.data[...], linkType: header.linkType).packet
            let ihl = Int(original.first! & 0x0F) * 4
            let headerBytes = Array(original.dropFirst(ihl).prefix(tcp.headerLength))
            // Equal except the checksum field, which emit leaves zero without a pseudo-header.
            #expect(Array(rebuilt[..<16]) == Array(headerBytes[..<16]))
            #expect(Array(rebuilt[18 ..< tcp.headerLength]) == Array(headerBytes[18...]))
        }
    }

    /// Every prefix of every packet, and every single-byte change in its
    /// headers, parses or throws a `WireError`; none traps. (The fuzzer in
    /// Fuzz/ goes much further; this runs with the unit tests.)
    @Test func truncatedAndCorruptedPacketsNeverTrap() throws {
        let (header, records) = try PcapReader.records(Array(try Data(contentsOf: URL(fileURLWithPath: Self.path))))
        var parsed = 0, rejected = 0
        for record in records.prefix(40) {
            let packet = Array(try LinkLayer.networkPacket(of: record.data[...], linkType: header.linkType).packet)
            let headerLength = min(packet.count, 120)
            for cut in 0 ... headerLength {
                if (try? IPPacket.parse(packet[..<cut])) != nil { parsed += 1 } else { rejected += 1 }
            }
            for i in 0 ..< headerLength {
                for value: UInt8 in [0x00, 0x01, 0x02, 0x0A, 0x1E, 0x7F, 0xFF] {
                    var corrupted = Array(packet.prefix(headerLength))
                    corrupted[i] = value
                    if (try? IPPacket.parse(corrupted)) != nil { parsed += 1 } else { rejected += 1 }
                }
            }
        }
        #expect(parsed > 0 && rejected > 0)
    }

    /// Reading a file needs no root: tshark and Wayside agree on the sample too.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark")))
    func agreesWithTshark() throws {
        let (header, records) = try PcapReader.records(Array(try Data(contentsOf: URL(fileURLWithPath: Self.path))))
        let frames = records.enumerated().map { DecodedFrame.decode($1, index: $0 + 1, linkType: header.linkType) }
        let agreement = try TsharkAgreement(capture: Self.path, frames: frames)
        print("sample capture: \(agreement.summary)")
        #expect(agreement.mismatches == 0)
        #expect(agreement.mptcpOptions == 77)
    }
}
