// Human-readable and JSON renderings of decoded packets, shared by
// `wayside decode` and the tests that compare Wayside's reading with tshark's.

func hex<T: BinaryInteger>(_ v: T, width: Int) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: Swift.max(0, width - s.count)) + s
}

extension MPCapable {
    var flagLetters: String {
        let letters: [(UInt8, String)] = [(0x80, "A"), (0x40, "B"), (0x20, "C"), (0x10, "D"), (0x08, "E"), (0x04, "F"), (0x02, "G"), (0x01, "H")]
        let set = letters.filter { flags & $0.0 != 0 }.map(\.1).joined()
        return set.isEmpty ? "none" : set
    }
}

extension MPTCPOption: CustomStringConvertible {
    /// One-line summary, e.g. `MP_JOIN SYN backup=0 id=1 token=0x1a2b3c4d nonce=0x…`.
    public var description: String {
        switch self {
        case let .capable(o):
            var s = "MP_CAPABLE v\(o.version) flags=\(o.flagLetters)"
            if let k = o.senderKey { s += " sender-key=\(hex(k, width: 16))" }
            if let k = o.receiverKey { s += " receiver-key=\(hex(k, width: 16))" }
            if let l = o.dataLevelLength { s += " data-len=\(l)" }
            if let c = o.checksum { s += " csum=\(hex(c, width: 4))" }
            return s
        case let .join(.syn(backup, id, token, nonce)):
            return "MP_JOIN SYN backup=\(backup ? 1 : 0) id=\(id) token=\(hex(token, width: 8)) nonce=\(hex(nonce, width: 8))"
        case let .join(.synAck(backup, id, hmac, nonce)):
            return "MP_JOIN SYN/ACK backup=\(backup ? 1 : 0) id=\(id) hmac=\(hex(hmac, width: 16)) nonce=\(hex(nonce, width: 8))"
        case let .join(.ack(hmac)):
            return "MP_JOIN ACK hmac=\(hexString(hmac))"
        case let .dss(o):
            var parts = ["DSS"]
            if let ack = o.dataACK { parts.append("data-ack\(o.dataACKIsEightBytes ? "" : "32")=\(ack)") }
            if let m = o.mapping {
                parts.append("dsn\(m.isEightBytes ? "" : "32")=\(m.dataSequenceNumber) ssn=\(m.subflowSequenceNumber) data-len=\(m.dataLevelLength)")
                if let c = m.checksum { parts.append("csum=\(hex(c, width: 4))") }
            }
            if o.dataFIN { parts.append("DATA_FIN") }
            return parts.joined(separator: " ")
        case let .addAddress(o):
            var s = "ADD_ADDR\(o.echo ? " echo" : "") id=\(o.addressID) addr=\(o.address)"
            if let p = o.port { s += " port=\(p)" }
            if let h = o.truncatedHMAC { s += " hmac=\(hex(h, width: 16))" }
            return s
        case let .removeAddress(ids):
            return "REMOVE_ADDR ids=" + ids.map(String.init).joined(separator: ",")
        case let .priority(backup, id):
            return "MP_PRIO backup=\(backup ? 1 : 0)" + (id.map { " id=\($0)" } ?? "")
        case let .fail(dsn):
            return "MP_FAIL dsn=\(dsn)"
        case let .fastClose(key):
            return "MP_FASTCLOSE receiver-key=\(hex(key, width: 16))"
        case let .reset(flags, reason):
            return "MP_TCPRST reason=\(reason) flags=\(hex(flags, width: 1))\(flags & 1 != 0 ? " transient" : "")"
        case let .unknown(subtype, data):
            return "\(name) subtype=\(subtype) data=\(hexString(data))"
        }
    }

    /// Structured fields; names follow RFC 8684's field names.
    public var json: JSON {
        var f: [(String, JSON)] = [("kind", .string("mptcp")), ("subtype", .string(name)), ("subtype_value", .int(subtype))]
        switch self {
        case let .capable(o):
            f += [("version", .int(o.version)), ("flags", .int(o.flags))]
            if let k = o.senderKey { f.append(("sender_key", .int(k))) }
            if let k = o.receiverKey { f.append(("receiver_key", .int(k))) }
            if let l = o.dataLevelLength { f.append(("data_level_length", .int(l))) }
            if let c = o.checksum { f.append(("checksum", .int(c))) }
        case let .join(.syn(backup, id, token, nonce)):
            f += [("form", .string("SYN")), ("backup", .bool(backup)), ("address_id", .int(id)),
                  ("receiver_token", .int(token)), ("sender_nonce", .int(nonce))]
        case let .join(.synAck(backup, id, hmac, nonce)):
            f += [("form", .string("SYN/ACK")), ("backup", .bool(backup)), ("address_id", .int(id)),
                  ("truncated_hmac", .int(hmac)), ("sender_nonce", .int(nonce))]
        case let .join(.ack(hmac)):
            f += [("form", .string("ACK")), ("hmac", .string(hexString(hmac)))]
        case let .dss(o):
            f.append(("flags", .int(o.flags)))
            if let ack = o.dataACK { f += [("data_ack", .int(ack)), ("data_ack_8", .bool(o.dataACKIsEightBytes))] }
            if let m = o.mapping {
                f += [("data_sequence_number", .int(m.dataSequenceNumber)), ("dsn_8", .bool(m.isEightBytes)),
                      ("subflow_sequence_number", .int(m.subflowSequenceNumber)), ("data_level_length", .int(m.dataLevelLength))]
                if let c = m.checksum { f.append(("checksum", .int(c))) }
            }
            f.append(("data_fin", .bool(o.dataFIN)))
        case let .addAddress(o):
            f += [("echo", .bool(o.echo)), ("address_id", .int(o.addressID)), ("address", .string(o.address.description))]
            if let p = o.port { f.append(("port", .int(p))) }
            if let h = o.truncatedHMAC { f.append(("truncated_hmac", .int(h))) }
        case let .removeAddress(ids):
            f.append(("address_ids", .array(ids.map { .int($0) })))
        case let .priority(backup, id):
            f.append(("backup", .bool(backup)))
            if let id { f.append(("address_id", .int(id))) }
        case let .fail(dsn):
            f.append(("data_sequence_number", .int(dsn)))
        case let .fastClose(key):
            f.append(("receiver_key", .int(key)))
        case let .reset(flags, reason):
            f += [("flags", .int(flags)), ("transient", .bool(flags & 1 != 0)), ("reason", .int(reason))]
        case let .unknown(_, data):
            f.append(("data", .string(hexString(data))))
        }
        return .object(f)
    }
}

extension TCPOption: CustomStringConvertible {
    /// tcpdump-like text: `mss 1460`, `sackOK`, `TS val 1 ecr 0`, `wscale 7`.
    public var description: String {
        switch self {
        case .endOfList: return "eol"
        case .noOperation: return "nop"
        case let .maximumSegmentSize(v): return "mss \(v)"
        case let .windowScale(v): return "wscale \(v)"
        case .sackPermitted: return "sackOK"
        case let .sack(blocks): return "sack " + blocks.map { "{\($0.left):\($0.right)}" }.joined()
        case let .timestamps(v, e): return "TS val \(v) ecr \(e)"
        case let .mptcp(o): return o.description
        case let .unknown(kind, data): return "unknown-\(kind) \(hexString(data))"
        }
    }

    public var json: JSON {
        switch self {
        case .endOfList: return .object([("kind", .string("eol"))])
        case .noOperation: return .object([("kind", .string("nop"))])
        case let .maximumSegmentSize(v): return .object([("kind", .string("mss")), ("value", .int(v))])
        case let .windowScale(v): return .object([("kind", .string("wscale")), ("shift", .int(v))])
        case .sackPermitted: return .object([("kind", .string("sack_permitted"))])
        case let .sack(blocks):
            return .object([("kind", .string("sack")),
                            ("blocks", .array(blocks.map { .array([.int($0.left.rawValue), .int($0.right.rawValue)]) }))])
        case let .timestamps(v, e): return .object([("kind", .string("timestamps")), ("value", .int(v)), ("echo_reply", .int(e))])
        case let .mptcp(o): return o.json
        case let .unknown(kind, data):
            return .object([("kind", .string("unknown")), ("kind_value", .int(kind)), ("data", .string(hexString(data)))])
        }
    }
}

extension DecodedFrame {
    /// Seconds since `origin` (ns), with microsecond digits.
    func relativeTime(_ origin: UInt64) -> String {
        let delta = Int64(bitPattern: timestamp &- origin)
        let sign = delta < 0 ? "-" : ""
        let magnitude = delta.magnitude
        let micros = (magnitude % 1_000_000_000) / 1000
        let frac = String(micros)
        return sign + String(magnitude / 1_000_000_000) + "." + String(repeating: "0", count: 6 - frac.count) + frac
    }

    func endpoint(_ address: IPAddress, _ port: UInt16) -> String {
        if case .v6 = address { return "[\(address)]:\(port)" }
        return "\(address):\(port)"
    }

    /// One line: time, addresses and ports, flags, seq/ack, window, length, options.
    public func line(origin: UInt64) -> String {
        var s = "\(index) \(relativeTime(origin)) "
        guard let packet else {
            if let error { return s + "undecodable: \(error)" }
            return s + "ethertype \(hex(etherType ?? 0, width: 4)), \(capturedLength) bytes"
        }
        guard let tcp = packet.tcp else {
            s += "IPv\(packet.header.version) \(packet.header.source) > \(packet.header.destination): proto \(packet.proto), length \(packet.transportLength)"
            if let error { s += " [\(error)]" }
            return s
        }
        let payloadLength = packet.transportLength - packet.tcpHeaderLength
        s += "\(endpoint(packet.header.source, tcp.sourcePort)) > \(endpoint(packet.header.destination, tcp.destinationPort))"
        s += " [\(tcp.flags)] seq \(tcp.sequenceNumber)"
        if tcp.flags.contains(.ack) { s += " ack \(tcp.acknowledgmentNumber)" }
        s += " win \(tcp.window) len \(payloadLength)"
        if !tcp.options.isEmpty { s += " <" + tcp.options.map(\.description).joined(separator: ", ") + ">" }
        return s
    }

    /// Structured fields of the frame.
    public func json(origin: UInt64) -> JSON {
        var f: [(String, JSON)] = [("index", .int(index)), ("time", .integer(relativeTime(origin))),
                                   ("timestamp_ns", .int(timestamp)), ("captured_length", .int(capturedLength)),
                                   ("length", .int(originalLength))]
        if let packet {
            var ip: [(String, JSON)] = [("version", .int(packet.header.version)),
                                        ("source", .string(packet.header.source.description)),
                                        ("destination", .string(packet.header.destination.description)),
                                        ("protocol", .int(packet.proto))]
            switch packet.header {
            case let .v4(h): ip += [("ttl", .int(h.ttl)), ("identification", .int(h.identification)), ("total_length", .int(h.totalLength))]
            case let .v6(h): ip += [("hop_limit", .int(h.hopLimit)), ("flow_label", .int(h.flowLabel)), ("payload_length", .int(h.payloadLength))]
            }
            f.append(("ip", .object(ip)))
            if let tcp = packet.tcp {
                var t: [(String, JSON)] = [("source_port", .int(tcp.sourcePort)), ("destination_port", .int(tcp.destinationPort)),
                                           ("seq", .int(tcp.sequenceNumber.rawValue)), ("ack", .int(tcp.acknowledgmentNumber.rawValue)),
                                           ("flags", .string(tcp.flags.description)), ("flags_value", .int(tcp.flags.rawValue)),
                                           ("window", .int(tcp.window)), ("header_length", .int(packet.tcpHeaderLength)),
                                           ("payload_length", .int(packet.transportLength - packet.tcpHeaderLength))]
                if let valid = packet.tcpChecksumValid { t.append(("checksum_valid", .bool(valid))) }
                t.append(("options", .array(tcp.options.map(\.json))))
                f.append(("tcp", .object(t)))
            }
        } else if let etherType {
            f.append(("ethertype", .int(etherType)))
        }
        if let error { f.append(("error", .string(error.description))) }
        return .object(f)
    }
}
