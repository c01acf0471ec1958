import ArgumentParser
import Foundation
import Wire

/// `wayside decode`: one line (or one JSON object) per packet of a classic
/// pcap capture, with every TCP and MPTCP option and its fields.
struct DecodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "decode",
        abstract: "Print every packet of a pcap capture with its TCP and Multipath TCP options.",
        discussion: """
        Reads classic pcap (either byte order, micro- or nanosecond timestamps) with \
        Ethernet, raw IP, or Linux cooked (SLL, SLL2) framing; `tshark -F pcap -w FILE` \
        writes it. Each line shows the time since the first packet, addresses and ports, \
        flags, sequence and acknowledgment numbers, window, payload length and every \
        option. With --json, each packet is one JSON object per line.
        """
    )

    @Argument(help: "The capture file (classic pcap).")
    var file: String

    @Flag(name: .long, help: "Print one JSON object per packet instead of text.")
    var json = false

    func run() throws {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw DecodeFailure(message: "\(file): cannot read the file (does it exist, is it readable?)")
        }
        var reader: PcapReader
        do {
            reader = try PcapReader(bytes: [UInt8](data))
        } catch {
            throw DecodeFailure(message: "\(file): \(error)")
        }
        let linkType = reader.header.linkType
        var origin: UInt64?
        var index = 0
        var out = ""
        var undecodable = 0
        while true {
            let record: PcapRecord?
            do { record = try reader.nextRecord() } catch {
                flush(&out)
                throw DecodeFailure(message: "\(file): after \(index) packets: \(error)")
            }
            guard let record else { break }
            index += 1
            let frame = DecodedFrame.decode(record, index: index, linkType: linkType)
            if frame.error != nil { undecodable += 1 }
            let start = origin ?? record.timestamp
            origin = start
            if json { frame.json(origin: start).write(to: &out) } else { out += frame.line(origin: start) }
            out += "\n"
            if out.utf8.count > 1 << 16 { flush(&out) }
        }
        flush(&out)
        if index == 0 {
            FileHandle.standardError.write(Data("\(file): \(linkType) capture with no packets\n".utf8))
        }
        if undecodable > 0 {
            FileHandle.standardError.write(Data("\(file): \(undecodable) of \(index) packets could not be fully decoded\n".utf8))
        }
    }

    private func flush(_ out: inout String) {
        FileHandle.standardOutput.write(Data(out.utf8))
        out = ""
    }
}

/// A decode error to report as it is, with a non-zero exit.
struct DecodeFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
