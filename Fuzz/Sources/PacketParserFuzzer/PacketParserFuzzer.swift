import Wire

// Every input goes through each reader of untrusted bytes. A trap anywhere
// is a bug; so is a segment that does not read back as itself after being
// written out again.
func packetParserFuzzer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    checkIPPacket(bytes)
    checkTCPSegment(bytes)
    checkPcap(bytes)
    return 0
}

/// A parsed IP packet's TCP segment, emitted and parsed again, is unchanged.
func checkIPPacket(_ bytes: [UInt8]) {
    guard let packet = try? IPPacket.parse(bytes), let tcp = packet.tcp else { return }
    let again = tcp.bytes(source: packet.header.source, destination: packet.header.destination)
    guard let reparsed = try? TCPSegment.parse(again) else { fatalError("emitted segment does not parse: \(tcp)") }
    guard reparsed == tcp else { fatalError("round trip changed the segment:\n\(tcp)\n\(reparsed)") }
    _ = packet.bytes()
}

/// The same for bytes read as a bare TCP segment, and option lists on their own.
func checkTCPSegment(_ bytes: [UInt8]) {
    if let tcp = try? TCPSegment.parse(bytes) {
        var buffer = [UInt8](repeating: 0xA5, count: tcp.encodedLength)
        tcp.emit(into: &buffer)
        guard (try? TCPSegment.parse(buffer)) == tcp else { fatalError("round trip changed the segment: \(tcp)") }
        for option in tcp.options { _ = option.description; _ = option.json.serialized }
    }
    if bytes.count <= 40, let options = try? TCPOption.parseList(bytes[...]) {
        var out = [UInt8](repeating: 0xA5, count: TCPOption.encodedLength(options))
        var at = 0
        for option in options { at = option.emit(into: &out, at: at) }
        guard (try? TCPOption.parseList(out[...])) == options else { fatalError("options changed: \(options)") }
    }
}

/// pcap files: read every record and decode it under each link type.
func checkPcap(_ bytes: [UInt8]) {
    guard var reader = try? PcapReader(bytes: bytes) else { return }
    var index = 0
    while let record = reader.next(), index < 64 {
        index += 1
        let frame = DecodedFrame.decode(record, index: index, linkType: reader.header.linkType)
        _ = frame.line(origin: 0)
        _ = frame.json(origin: 0).serialized
        for linkType in [PcapLinkType.ethernet, .linuxSLL, .linuxSLL2, .raw] where linkType != reader.header.linkType {
            _ = DecodedFrame.decode(record, index: index, linkType: linkType)
        }
    }
}
