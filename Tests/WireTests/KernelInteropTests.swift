import Foundation
import Testing
@testable import Wire
#if canImport(Glibc)
import Glibc
#endif

// Linux kernel MPTCP between two namespaces, two paths, captured with tshark:
//
//        client netns (wsw-<run>-c)                 server netns (wsw-<run>-s)
//   198.18.1.1/24  c0-<run> ─────────────────── s0-<run>  198.18.1.2/24  (initial subflow)
//   198.18.2.1/24  c1-<run> ─────────────────── s1-<run>  198.18.2.2/24  (signal endpoint → ADD_ADDR)
//        `ip mptcp endpoint … subflow` on 198.18.2.1 → MP_JOIN to 198.18.1.2
//        ADD_ADDR 198.18.2.2 accepted        → MP_JOIN to 198.18.2.2
//   tshark -i any -F pcap inside the client namespace
//
// Then Wayside's reading of every MPTCP option is compared field by field with
// tshark's, and tokens, IDSNs, MP_JOIN and ADD_ADDR HMACs and DSS checksums are
// recomputed from the keys and nonces in the capture.
@Suite("Kernel MPTCP interop (needs root, network namespaces, tshark)",
       .enabled(if: getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/bin/tshark")),
       .serialized)
struct KernelInteropTests {
    @Test func decodeAgreesWithTsharkAndCryptoMatches() throws {
        let run = KernelMPTCPRun()
        defer { run.tearDown() }
        let capture = try run.captureTransfer()
        if let keep = ProcessInfo.processInfo.environment["WAYSIDE_KEEP_CAPTURE"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: capture, toPath: keep)
        }

        let (header, records) = try PcapReader.records(Array(try Data(contentsOf: URL(fileURLWithPath: capture))))
        let frames = records.enumerated().map { DecodedFrame.decode($1, index: $0 + 1, linkType: header.linkType) }
        for frame in frames { #expect(frame.error == nil, "frame \(frame.index): \(String(describing: frame.error))") }

        // (a) Every MPTCP option field of every packet, against tshark.
        let agreement = try TsharkAgreement(capture: capture, frames: frames)
        print("kernel interop: \(agreement.summary)")
        #expect(agreement.mptcpOptions > 0)

        // (b) Crypto recomputed from what the capture shows.
        let check = try CaptureCryptoCheck(frames: frames)
        print("kernel interop: \(check.tokensChecked) MP_JOIN tokens, \(check.idsnsChecked) IDSNs, \(check.joinHMACsChecked) MP_JOIN HMACs, \(check.addAddressHMACsChecked) ADD_ADDR HMACs, \(check.dssChecksumsChecked) DSS checksums recomputed; \(check.failures.count) failures")
        for failure in check.failures { Issue.record(Comment(rawValue: failure)) }
        #expect(check.tokensChecked >= 1, "no MP_JOIN SYN in the capture: the second subflow did not join")
        #expect(check.joinHMACsChecked >= 2)
        #expect(check.idsnsChecked >= 2)
    }
}

/// Wayside's reading of a capture compared with tshark's, field by field:
/// every MPTCP option field, the TCP header fields and the plain options.
/// Disagreements are recorded as test issues.
struct TsharkAgreement {
    var packets = 0, mptcpOptions = 0, optionValues = 0, headerValues = 0, mismatches = 0, checksumsTsharkOmits = 0

    init(capture: String, frames: [DecodedFrame]) throws {
        packets = frames.count
        let tshark = try TsharkFields.read(capture)
        if tshark.count != frames.count { mismatches += 1; Issue.record("tshark saw \(tshark.count) packets, Wayside \(frames.count)") }
        for frame in frames {
            let options: [MPTCPOption] = frame.packet?.tcp?.options.compactMap { option -> MPTCPOption? in
                if case let .mptcp(o) = option { return o } else { return nil }
            } ?? []
            mptcpOptions += options.count
            let ours = TsharkFields.expected(options)
            let theirs = tshark[frame.index] ?? [:]
            for field in TsharkFields.names {
                let a = ours[field] ?? [], b = theirs[field] ?? []
                // tshark 4.0 shows a DSS checksum only where it has tied the
                // subflow to a connection that negotiated checksums; on MP_JOIN
                // subflows it leaves the field out although the option length
                // (flags + 2) proves it is there. Those are counted, not compared.
                if field == "tcp.options.mptcp.checksum", b.isEmpty, !a.isEmpty,
                   options.allSatisfy({ if case .capable = $0 { return false } else { return true } }) {
                    checksumsTsharkOmits += a.count
                    continue
                }
                optionValues += max(a.count, b.count)
                if a != b {
                    mismatches += 1
                    Issue.record("frame \(frame.index) \(field): Wayside \(a), tshark \(b)")
                }
            }
        }
        // The TCP headers and plain options too.
        let tsharkHeaders = try TsharkFields.read(capture, fields: TsharkFields.headerNames)
        for frame in frames {
            guard let packet = frame.packet else { continue }
            let ours = TsharkFields.expectedHeader(packet), theirs = tsharkHeaders[frame.index] ?? [:]
            for field in TsharkFields.headerNames {
                let a = ours[field] ?? [], b = theirs[field] ?? []
                headerValues += max(a.count, b.count)
                if a != b { mismatches += 1; Issue.record("frame \(frame.index) \(field): Wayside \(a), tshark \(b)") }
            }
        }
    }

    var summary: String {
        "\(packets) packets, \(mptcpOptions) MPTCP options, \(optionValues) MPTCP option field values and \(headerValues) TCP header/option values compared with tshark, \(mismatches) mismatches (\(checksumsTsharkOmits) DSS checksums on join subflows that tshark does not show)"
    }
}

/// tshark's MPTCP option fields (Wireshark 4.0 names) and the values
/// Wayside's reading of the same options must produce for them.
enum TsharkFields {
    static let names = [
        "tcp.options.mptcp.subtype", "tcp.options.mptcp.version", "tcp.options.mptcp.sendkey", "tcp.options.mptcp.recvkey",
        "tcp.options.mptcp.recvtok", "tcp.options.mptcp.sendrand", "tcp.options.mptcp.sendtrunchmac", "tcp.options.mptcp.sendhmac",
        "tcp.options.mptcp.addrid", "tcp.options.mptcp.rawdataack", "tcp.options.mptcp.rawdataseqno",
        "tcp.options.mptcp.subflowseqno", "tcp.options.mptcp.datalvllen", "tcp.options.mptcp.checksum",
        "tcp.options.mptcp.ipv4", "tcp.options.mptcp.ipv6", "tcp.options.mptcp.port", "tcp.options.mptcp.echo",
        "tcp.options.mptcp.addaddrtrunchmac", "tcp.options.mptcp.backup.flag", "tcp.options.mptcp.datafin.flag",
        "tcp.options.mptcp.dataackpresent.flag", "tcp.options.mptcp.dataack8.flag", "tcp.options.mptcp.dseqnpresent.flag",
        "tcp.options.mptcp.dseqn8.flag", "tcp.options.mptcp.checksumreq.flags", "tcp.options.mptcp.sha256.flag",
        "tcp.options.mptcp.flag_T.flag", "tcp.options.mptcp.rst_reason", "tcp.options.mptcp.flags",
        "tcp.options.mptcp.extensibility.flag", "tcp.options.mptcp.nomoresubflows.flag",
    ]

    /// TCP header fields and plain options, compared as well so that a
    /// mis-read header cannot hide behind agreeing options.
    static let headerNames = [
        "tcp.srcport", "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw", "tcp.window_size_value", "tcp.len",
        "tcp.options.mss_val", "tcp.options.wscale.shift", "tcp.options.timestamp.tsval", "tcp.options.timestamp.tsecr",
        "tcp.options.sack_perm",
    ]

    static func expectedHeader(_ packet: IPPacket) -> [String: [String]] {
        guard let tcp = packet.tcp else { return [:] }
        var f: [String: [String]] = [
            "tcp.srcport": [String(tcp.sourcePort)], "tcp.dstport": [String(tcp.destinationPort)],
            "tcp.flags": [hex4(UInt16(tcp.flags.rawValue))], "tcp.seq_raw": [String(tcp.sequenceNumber.rawValue)],
            "tcp.ack_raw": [String(tcp.acknowledgmentNumber.rawValue)], "tcp.window_size_value": [String(tcp.window)],
            "tcp.len": [String(packet.transportLength - packet.tcpHeaderLength)],
        ]
        for option in tcp.options {
            switch option {
            case let .maximumSegmentSize(v): f["tcp.options.mss_val", default: []].append(String(v))
            case let .windowScale(v): f["tcp.options.wscale.shift", default: []].append(String(v))
            case let .timestamps(v, e):
                f["tcp.options.timestamp.tsval", default: []].append(String(v))
                f["tcp.options.timestamp.tsecr", default: []].append(String(e))
            case .sackPermitted: f["tcp.options.sack_perm", default: []].append("0402")
            default: break
            }
        }
        return f
    }

    /// frame number → field → values in order of occurrence.
    static func read(_ capture: String, fields names: [String] = names) throws -> [Int: [String: [String]]] {
        var args = ["-r", capture, "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=|", "-e", "frame.number"]
        for n in names { args += ["-e", n] }
        let output = try Shell.run("/usr/bin/tshark", args)
        var result: [Int: [String: [String]]] = [:]
        for line in output.split(separator: "\n") {
            let columns = line.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
            guard columns.count == names.count + 1, let frame = Int(columns[0]) else { continue }
            var fields: [String: [String]] = [:]
            for (i, n) in names.enumerated() where !columns[i + 1].isEmpty {
                fields[n] = columns[i + 1].split(separator: "|").map(String.init)
            }
            result[frame] = fields
        }
        return result
    }

    static func hex2(_ v: UInt8) -> String { "0x" + (v < 16 ? "0" : "") + String(v, radix: 16) }
    static func hex4(_ v: UInt16) -> String { let s = String(v, radix: 16); return "0x" + String(repeating: "0", count: 4 - s.count) + s }

    static func expected(_ options: [MPTCPOption]) -> [String: [String]] {
        var f: [String: [String]] = [:]
        func add(_ name: String, _ value: String) { f["tcp.options.mptcp." + name, default: []].append(value) }
        func bit(_ b: Bool) -> String { b ? "1" : "0" }
        for option in options {
            add("subtype", String(option.subtype))
            switch option {
            case let .capable(o):
                add("version", String(o.version))
                add("flags", hex2(o.flags))
                add("extensibility.flag", bit(o.flags & MPCapable.Flag.extensibility != 0))
                add("nomoresubflows.flag", bit(o.noMoreSubflows))
                add("checksumreq.flags", bit(o.checksumRequired))
                add("sha256.flag", bit(o.usesHMACSHA256))
                if let k = o.senderKey { add("sendkey", String(k)) }
                if let k = o.receiverKey { add("recvkey", String(k)) }
                if let l = o.dataLevelLength { add("datalvllen", String(l)) }
                if let c = o.checksum { add("checksum", hex4(c)) }
            case let .join(.syn(backup, id, token, nonce)):
                // tshark shows the whole third byte (subtype and B) as the flags.
                add("flags", hex2(0x10 | (backup ? 1 : 0)))
                add("backup.flag", bit(backup)); add("addrid", String(id)); add("recvtok", String(token)); add("sendrand", String(nonce))
            case let .join(.synAck(backup, id, hmac, nonce)):
                add("flags", hex2(0x10 | (backup ? 1 : 0)))
                add("backup.flag", bit(backup)); add("addrid", String(id)); add("sendtrunchmac", String(hmac)); add("sendrand", String(nonce))
            case let .join(.ack(hmac)):
                add("sendhmac", hexString(hmac))
            case let .dss(o):
                add("flags", hex2(o.flags))
                add("datafin.flag", bit(o.dataFIN))
                add("dseqn8.flag", bit(o.mapping?.isEightBytes ?? false))
                add("dseqnpresent.flag", bit(o.mapping != nil))
                add("dataack8.flag", bit(o.dataACK != nil && o.dataACKIsEightBytes))
                add("dataackpresent.flag", bit(o.dataACK != nil))
                if let a = o.dataACK { add("rawdataack", String(a)) }
                if let m = o.mapping {
                    add("rawdataseqno", String(m.dataSequenceNumber)); add("subflowseqno", String(m.subflowSequenceNumber))
                    add("datalvllen", String(m.dataLevelLength))
                    if let c = m.checksum { add("checksum", hex4(c)) }
                }
            case let .addAddress(o):
                add("echo", bit(o.echo)); add("addrid", String(o.addressID))
                switch o.address { case let .v4(a): add("ipv4", a.description); case let .v6(a): add("ipv6", a.description) }
                if let p = o.port { add("port", String(p)) }
                if let h = o.truncatedHMAC { add("addaddrtrunchmac", String(h)) }
            case let .priority(backup, id):
                add("backup.flag", bit(backup)); if let id { add("addrid", String(id)) }
            case let .reset(flags, reason):
                add("flag_T.flag", bit(flags & 1 != 0)); add("rst_reason", String(reason))
            case let .fastClose(key):
                add("recvkey", String(key))
            case .removeAddress, .fail, .unknown:
                break
            }
        }
        return f
    }
}

/// Recomputes the MPTCP cryptography of a capture from the keys and nonces in it.
struct CaptureCryptoCheck {
    var tokensChecked = 0, idsnsChecked = 0, joinHMACsChecked = 0, addAddressHMACsChecked = 0, dssChecksumsChecked = 0
    var failures: [String] = []

    struct Endpoints: Hashable { var src: IPAddress; var sport: UInt16; var dst: IPAddress; var dport: UInt16
        var reversed: Endpoints { Endpoints(src: dst, sport: dport, dst: src, dport: sport) }
    }
    /// The keys of one MPTCP connection: A opened it, B listened.
    struct Keys: Hashable { var a: UInt64; var b: UInt64 }
    /// One subflow, keyed by its initiator→responder endpoints.
    struct Subflow { var keys: Keys; var initiatorIsA: Bool; var initiatorNonce: UInt32?; var responderNonce: UInt32?
        var initiatorISN: UInt32?; var responderISN: UInt32? }

    init(frames: [DecodedFrame]) throws {
        var subflows: [Endpoints: Subflow] = [:]
        var isns: [Endpoints: UInt32] = [:] // sender's ISN per direction, from SYN and SYN/ACK
        var firstMapping: [UInt64: UInt64] = [:] // sender key → first DSN it mapped
        var connections: [Keys] = []
        for frame in frames {
            guard let packet = frame.packet, let tcp = packet.tcp else { continue }
            let ends = Endpoints(src: packet.header.source, sport: tcp.sourcePort, dst: packet.header.destination, dport: tcp.destinationPort)
            if tcp.flags.contains(.syn) { isns[ends] = tcp.sequenceNumber.rawValue }
            for case let .mptcp(option) in tcp.options {
                switch option {
                case let .capable(c):
                    if let a = c.senderKey, let b = c.receiverKey, subflows[ends] == nil {
                        let keys = Keys(a: a, b: b)
                        subflows[ends] = Subflow(keys: keys, initiatorIsA: true)
                        connections.append(keys)
                    }
                case let .join(.syn(_, _, token, nonce)):
                    if let keys = connections.first(where: { MPTCPCrypto.token(key: $0.b) == token }) {
                        subflows[ends] = Subflow(keys: keys, initiatorIsA: true, initiatorNonce: nonce); tokensChecked += 1
                    } else if let keys = connections.first(where: { MPTCPCrypto.token(key: $0.a) == token }) {
                        subflows[ends] = Subflow(keys: keys, initiatorIsA: false, initiatorNonce: nonce); tokensChecked += 1
                    } else {
                        failures.append("frame \(frame.index): MP_JOIN SYN token \(String(token, radix: 16)) matches no key seen")
                    }
                case let .join(.synAck(_, _, hmac, nonce)):
                    guard var s = subflows[ends.reversed], let rA = s.initiatorNonce else {
                        failures.append("frame \(frame.index): MP_JOIN SYN/ACK without its SYN"); continue
                    }
                    s.responderNonce = nonce
                    subflows[ends.reversed] = s
                    let (ki, kr) = s.initiatorIsA ? (s.keys.a, s.keys.b) : (s.keys.b, s.keys.a)
                    let expected = MPTCPCrypto.joinSynAckHMAC(senderKey: kr, receiverKey: ki, senderNonce: nonce, receiverNonce: rA)
                    joinHMACsChecked += 1
                    if expected != hmac { failures.append("frame \(frame.index): MP_JOIN SYN/ACK HMAC \(String(hmac, radix: 16)), recomputed \(String(expected, radix: 16))") }
                case let .join(.ack(hmac)):
                    guard let s = subflows[ends], let rA = s.initiatorNonce, let rB = s.responderNonce else {
                        failures.append("frame \(frame.index): MP_JOIN ACK without SYN and SYN/ACK"); continue
                    }
                    let (ki, kr) = s.initiatorIsA ? (s.keys.a, s.keys.b) : (s.keys.b, s.keys.a)
                    let expected = MPTCPCrypto.joinAckHMAC(senderKey: ki, receiverKey: kr, senderNonce: rA, receiverNonce: rB)
                    joinHMACsChecked += 1
                    if expected != hmac { failures.append("frame \(frame.index): MP_JOIN ACK HMAC \(hexString(hmac)), recomputed \(hexString(expected))") }
                case let .addAddress(o) where !o.echo:
                    guard let (keys, senderIsA) = Self.lookup(ends, subflows) else {
                        failures.append("frame \(frame.index): ADD_ADDR on an unknown subflow"); continue
                    }
                    let (ks, kr) = senderIsA ? (keys.a, keys.b) : (keys.b, keys.a)
                    let expected = MPTCPCrypto.addAddressHMAC(senderKey: ks, receiverKey: kr, addressID: o.addressID, address: o.address, port: o.port)
                    addAddressHMACsChecked += 1
                    if expected != o.truncatedHMAC { failures.append("frame \(frame.index): ADD_ADDR HMAC \(String(describing: o.truncatedHMAC)), recomputed \(expected)") }
                case let .dss(d):
                    guard let m = d.mapping, let (keys, senderIsA) = Self.lookup(ends, subflows) else { continue }
                    let senderKey = senderIsA ? keys.a : keys.b
                    let idsn = MPTCPCrypto.initialDataSequenceNumber(key: senderKey)
                    if firstMapping[senderKey] == nil {
                        // RFC 8684 §3.1: data starts at IDSN + 1 (the SYN takes the IDSN).
                        let dsn = m.isEightBytes ? m.dataSequenceNumber
                            : DataSequenceNumber.expand(UInt32(truncatingIfNeeded: m.dataSequenceNumber), near: DataSequenceNumber(idsn)).rawValue
                        firstMapping[senderKey] = dsn
                        idsnsChecked += 1
                        if dsn != idsn &+ 1 { failures.append("frame \(frame.index): first DSN \(dsn), IDSN+1 of the sender's key is \(idsn &+ 1)") }
                    }
                    // A mapping carried whole in this segment can have its checksum checked.
                    if let csum = m.checksum, m.dataLevelLength > 0, packet.isComplete, tcp.payload.count == Int(m.dataLevelLength),
                       let isn = isns[ends], tcp.sequenceNumber.rawValue &- isn == m.subflowSequenceNumber {
                        let dsn = m.isEightBytes ? m.dataSequenceNumber
                            : DataSequenceNumber.expand(UInt32(truncatingIfNeeded: m.dataSequenceNumber), near: DataSequenceNumber(idsn)).rawValue
                        dssChecksumsChecked += 1
                        let result = dssChecksum(dataSequenceNumber: dsn, relativeSubflowSequenceNumber: m.subflowSequenceNumber,
                                                 dataLevelLength: m.dataLevelLength, checksum: csum, payload: tcp.payload)
                        if result != 0 { failures.append("frame \(frame.index): DSS checksum \(csum) does not verify") }
                    }
                default: break
                }
            }
            // The data ACK of the side that sent no data yet acknowledges the peer's IDSN + 1.
            for case let .mptcp(.dss(d)) in tcp.options {
                guard let ack = d.dataACK, let (keys, senderIsA) = Self.lookup(ends, subflows) else { continue }
                let peerKey = senderIsA ? keys.b : keys.a
                guard firstMapping[peerKey] == nil, !tcp.flags.contains(.syn) else { continue }
                let idsn = MPTCPCrypto.initialDataSequenceNumber(key: peerKey)
                let full = d.dataACKIsEightBytes ? ack : DataSequenceNumber.expand(UInt32(truncatingIfNeeded: ack), near: DataSequenceNumber(idsn)).rawValue
                idsnsChecked += 1
                firstMapping[peerKey] = full // checked once per key
                if full != idsn &+ 1 { failures.append("frame \(frame.index): data ACK \(full) before any data, peer IDSN+1 is \(idsn &+ 1)") }
            }
        }
        _ = isns
    }

    /// The connection keys of a subflow and whether this direction is sent by host A.
    static func lookup(_ ends: Endpoints, _ subflows: [Endpoints: Subflow]) -> (Keys, Bool)? {
        if let s = subflows[ends] { return (s.keys, s.initiatorIsA) }
        if let s = subflows[ends.reversed] { return (s.keys, !s.initiatorIsA) }
        return nil
    }
}

/// Namespaces, veths, MPTCP endpoints, a kernel MPTCP transfer and its capture.
final class KernelMPTCPRun {
    let id = String(UInt32.random(in: 0 ..< UInt32.max), radix: 36)
    var client: String { "wsw-\(id)-c" }
    var server: String { "wsw-\(id)-s" }
    let directory: String
    var created: [String] = []
    var tshark: SpawnedProcess?
    static let port: UInt16 = 5000

    init() {
        directory = NSTemporaryDirectory() + "wayside-interop-\(id)"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func ip(_ args: String...) throws { _ = try Shell.run("/usr/sbin/ip", args) }

    func setUp() throws {
        for ns in [client, server] { try ip("netns", "add", ns); created.append(ns) }
        for path in 0 ..< 2 {
            try ip("link", "add", "c\(path)-\(id)", "netns", client, "type", "veth", "peer", "name", "s\(path)-\(id)", "netns", server)
            try ip("-n", client, "addr", "add", "198.18.\(path + 1).1/24", "dev", "c\(path)-\(id)")
            try ip("-n", server, "addr", "add", "198.18.\(path + 1).2/24", "dev", "s\(path)-\(id)")
            try ip("-n", client, "link", "set", "c\(path)-\(id)", "up")
            try ip("-n", server, "link", "set", "s\(path)-\(id)", "up")
        }
        for ns in [client, server] {
            try ip("-n", ns, "link", "set", "lo", "up")
            try ip("-n", ns, "mptcp", "limits", "set", "subflows", "2", "add_addr_accepted", "2")
        }
        try ip("-n", client, "mptcp", "endpoint", "add", "198.18.2.1", "dev", "c1-\(id)", "subflow")
        try ip("-n", server, "mptcp", "endpoint", "add", "198.18.2.2", "dev", "s1-\(id)", "signal")
        // Checksums on, so DSS checksums and MP_CAPABLE's data-level length appear.
        _ = try Shell.run("/usr/sbin/ip", ["netns", "exec", server, "sysctl", "-qw", "net.mptcp.checksum_enabled=1"])
        try waitUntilUp()
    }

    func waitUntilUp() throws {
        for _ in 0 ..< 100 {
            let c = try Shell.run("/usr/sbin/ip", ["-n", client, "-o", "link", "show", "up"])
            let s = try Shell.run("/usr/sbin/ip", ["-n", server, "-o", "link", "show", "up"])
            if (0 ..< 2).allSatisfy({ c.contains("c\($0)-\(id)@") && s.contains("s\($0)-\(id)@") }) && c.contains("LOWER_UP") {
                let lower = c.split(separator: "\n").filter { $0.contains("-\(id)@") }.allSatisfy { $0.contains("LOWER_UP") }
                    && s.split(separator: "\n").filter { $0.contains("-\(id)@") }.allSatisfy { $0.contains("LOWER_UP") }
                if lower { return }
            }
            usleep(50_000)
        }
        throw ShellError(message: "veth links of run \(id) did not come up")
    }

    /// Runs the transfer and returns the path of the capture.
    func captureTransfer() throws -> String {
        let start = Date()
        func mark(_ what: String) { print("kernel interop: \(what) after \(String(format: "%.2f", Date().timeIntervalSince(start))) s") }
        try setUp()
        mark("namespaces up")
        let file = directory + "/capture.pcap"
        // Spawned with a clean signal mask: the test runner's threads block
        // SIGTERM, and a child spawned by Foundation's Process inherits that.
        let process = try SpawnedProcess("/usr/sbin/ip", ["netns", "exec", client, "/usr/bin/tshark", "-q", "-i", "any",
                                                          "-F", "pcap", "-w", file, "-a", "duration:20",
                                                          "-f", "tcp port \(Self.port)"])
        tshark = process
        // tshark says "Capturing on 'any'" once dumpcap has the interface open.
        let said = process.readStandardError(until: "Capturing on")
        guard said.contains("Capturing on") else { throw ShellError(message: "tshark did not start capturing: \(said)") }
        mark("tshark capturing")
        usleep(300_000)

        let listening = DispatchSemaphore(value: 0)
        let serverDone = DispatchSemaphore(value: 0)
        let clientDone = DispatchSemaphore(value: 0)
        let serverResult = ResultBox(), clientResult = ResultBox()
        let serverThread = Thread { [server] in
            serverResult.value = Result { try NamespaceSocket.receiveAll(namespace: server, port: Self.port, listening: listening) }
            serverDone.signal()
        }
        serverThread.start()
        guard listening.wait(timeout: .now() + 10) == .success else { throw ShellError(message: "server did not listen") }
        let clientThread = Thread { [client] in
            clientResult.value = Result { try NamespaceSocket.send(namespace: client, to: "198.18.1.2", port: Self.port) }
            clientDone.signal()
        }
        clientThread.start()
        guard clientDone.wait(timeout: .now() + 15) == .success, serverDone.wait(timeout: .now() + 15) == .success else {
            throw ShellError(message: "transfer did not finish")
        }
        let sent = try clientResult.value.get(), received = try serverResult.value.get()
        #expect(sent == received)
        mark("transfer of \(sent) bytes done")
        usleep(300_000)
        // SIGTERM: tshark stops dumpcap and finishes the file.
        process.terminate()
        _ = process.wait()
        mark("capture closed")
        tshark = nil
        return file
    }

    func tearDown() {
        if let tshark { tshark.terminate(); _ = tshark.wait() }
        for ns in created { _ = try? Shell.run("/usr/sbin/ip", ["netns", "del", ns]) }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Kernel MPTCP sockets opened inside a named network namespace. Call only on
/// a dedicated thread: `setns` changes the namespace of the calling thread.
enum NamespaceSocket {
    static let ipprotoMPTCP: Int32 = 262
    static let cloneNewNet: Int32 = 0x4000_0000

    static func enter(_ namespace: String) throws {
        // Glibc's Swift module hides setns (it needs _GNU_SOURCE); look it up.
        typealias SetNS = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns") else { throw ShellError(message: "setns not found") }
        let setns = unsafeBitCast(symbol, to: SetNS.self)
        let fd = open("/run/netns/\(namespace)", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ShellError(message: "open /run/netns/\(namespace): errno \(errno)") }
        defer { close(fd) }
        guard setns(fd, cloneNewNet) == 0 else { throw ShellError(message: "setns \(namespace): errno \(errno)") }
    }

    static func address(_ ip: String, _ port: UInt16) -> sockaddr_in {
        var a = sockaddr_in()
        a.sin_family = sa_family_t(AF_INET)
        a.sin_port = port.bigEndian
        inet_pton(AF_INET, ip, &a.sin_addr)
        return a
    }

    static func receiveAll(namespace: String, port: UInt16, listening: DispatchSemaphore) throws -> Int {
        try enter(namespace)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), ipprotoMPTCP)
        guard fd >= 0 else { throw ShellError(message: "socket(IPPROTO_MPTCP): errno \(errno)") }
        defer { close(fd) }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var addr = address("0.0.0.0", port)
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 1) == 0 else { throw ShellError(message: "bind/listen: errno \(errno)") }
        listening.signal()
        let conn = accept(fd, nil, nil)
        guard conn >= 0 else { throw ShellError(message: "accept: errno \(errno)") }
        defer { close(conn) }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var total = 0
        while true {
            let n = read(conn, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw ShellError(message: "read: errno \(errno)") }
            if n == 0 { return total }
            total += n
        }
    }

    /// Sends 64 KiB, pauses so the path manager joins the second subflows,
    /// then sends 192 KiB more over all of them.
    static func send(namespace: String, to ip: String, port: UInt16) throws -> Int {
        try enter(namespace)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), ipprotoMPTCP)
        guard fd >= 0 else { throw ShellError(message: "socket(IPPROTO_MPTCP): errno \(errno)") }
        defer { close(fd) }
        var addr = address(ip, port)
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard connected == 0 else { throw ShellError(message: "connect: errno \(errno)") }
        var total = 0
        for (byte, count) in [(UInt8(ascii: "x"), 65536), (UInt8(ascii: "y"), 196_608)] {
            let chunk = [UInt8](repeating: byte, count: count)
            var offset = 0
            while offset < chunk.count {
                let n = chunk[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw ShellError(message: "write: errno \(errno)") }
                offset += n
            }
            total += count
            if byte == UInt8(ascii: "x") { usleep(300_000) }
        }
        shutdown(fd, Int32(SHUT_WR))
        // Wait for the server's close so the DATA_FINs are in the capture.
        var b = [UInt8](repeating: 0, count: 16)
        while read(fd, &b, b.count) > 0 {}
        return total
    }
}

/// A child process started with posix_spawn, an empty signal mask and default
/// dispositions, so that it can be stopped by its pid with SIGTERM.
final class SpawnedProcess {
    let pid: pid_t
    private var stderrFD: Int32
    private var exited = false

    init(_ path: String, _ args: [String]) throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw ShellError(message: "pipe: errno \(errno)") }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[1], 2)
        posix_spawn_file_actions_addclose(&actions, fds[0])
        posix_spawn_file_actions_addclose(&actions, fds[1])
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        posix_spawnattr_setsigmask(&attributes, &none)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT); sigaddset(&defaults, SIGTERM); sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, environ)
        close(fds[1])
        guard rc == 0 else { close(fds[0]); throw ShellError(message: "posix_spawn \(path): error \(rc)") }
        self.pid = pid
        stderrFD = fds[0]
    }

    /// Reads standard error until `marker` appears or the process closes it.
    func readStandardError(until marker: String) -> String {
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !text.contains(marker) {
            let n = read(stderrFD, &buffer, buffer.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            text += String(decoding: buffer[0 ..< n], as: UTF8.self)
        }
        return text
    }

    func terminate() { if !exited { kill(pid, SIGTERM) } }

    /// Waits for the exit; returns the raw wait status.
    func wait() -> Int32 {
        guard !exited else { return 0 }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        exited = true
        close(stderrFD)
        return status
    }
}

/// A thread's result, handed over through a semaphore (which orders the accesses).
final class ResultBox: @unchecked Sendable {
    var value: Result<Int, Error> = .failure(ShellError(message: "did not run"))
}

struct ShellError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

enum Shell {
    /// Runs a program, returns its standard output; throws with its standard error on failure.
    static func run(_ path: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            throw ShellError(message: "\(path) \(args.joined(separator: " ")) exited \(p.terminationStatus): \(String(decoding: errData, as: UTF8.self))")
        }
        return String(decoding: data, as: UTF8.self)
    }
}
