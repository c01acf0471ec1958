import Convert
#if canImport(Glibc)
import Glibc
#endif

/// Holds each program's SYN in an nfqueue (NETLINK_NETFILTER, NFNL_SUBSYS_QUEUE)
/// until the converter has answered for its destination, so the program's
/// connect sees what a direct connect would: established only once the
/// destination accepted, refused (RST) when the destination refused (RFC 8803
/// §4.2.7 Connection Reset), unreachable (ICMP) when it was unreachable.
///
/// Accepted SYNs go on to the NAT redirect; the client's listener then finds
/// the carrier already open for that source address and port.
public final class SynHold: @unchecked Sendable {
    // linux/netfilter/nfnetlink.h, nfnetlink_queue.h, netfilter.h
    static let netlinkNetfilter: Int32 = 12
    static let subsystemQueue: UInt16 = 3
    static let msgPacket: UInt16 = 0, msgVerdict: UInt16 = 1, msgConfig: UInt16 = 2
    static let attrPacketHeader: UInt16 = 1, attrVerdictHeader: UInt16 = 2, attrMark: UInt16 = 3, attrPayload: UInt16 = 10
    static let cfgCommand: UInt16 = 1, cfgParams: UInt16 = 2
    static let commandBind: UInt8 = 1
    static let copyPacket: UInt8 = 2
    static let flagRequest: UInt16 = 1, flagAck: UInt16 = 4, messageError: UInt16 = 2  // linux/netlink.h
    static let verdictDrop: UInt32 = 0, verdictAccept: UInt32 = 1, verdictRepeat: UInt32 = 4

    public let queue: UInt16
    let fd: Int32
    private let sendLock = Mutex()
    private var sequence: UInt32 = 0

    /// Binds queue `queue` of this namespace; fails without CAP_NET_ADMIN or when another process holds the queue.
    public init(queue: UInt16) throws {
        self.queue = queue
        fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), Self.netlinkNetfilter)
        guard fd >= 0 else { throw ConverterSocketError(operation: "socket", context: "(NETLINK_NETFILTER)", errno: errno) }
        // struct sockaddr_nl: family, pad, pid 0 (the kernel picks), no groups.
        var local = [UInt8](repeating: 0, count: 12)
        local[0] = UInt8(AF_NETLINK)
        let r = local.withUnsafeBytes { bind(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), 12) }
        guard r == 0 else { let e = errno; Glibc.close(fd); throw ConverterSocketError(operation: "bind", context: "(NETLINK_NETFILTER)", errno: e) }
        do {
            // BIND (command 1) for this queue, then copy whole packets (headers are all we read: 128 bytes).
            try request(Self.msgConfig, attributes: [(Self.cfgCommand, [Self.commandBind, 0, 0, UInt8(AF_INET)])])
            try request(Self.msgConfig, attributes: [(Self.cfgParams, [0, 0, 0, 128, Self.copyPacket])])
        } catch { Glibc.close(fd); throw error }
    }

    deinit { Glibc.close(fd) }

    /// One netlink message: header, nfgenmsg (family, version 0, queue in network order), attributes.
    func message(_ type: UInt16, flags: UInt16, attributes: [(UInt16, [UInt8])]) -> [UInt8] {
        var body: [UInt8] = [UInt8(AF_UNSPEC), 0, UInt8(queue >> 8), UInt8(queue & 0xFF)]
        for (t, v) in attributes {
            let len = 4 + v.count
            body += withUnsafeBytes(of: UInt16(len)) { Array($0) } + withUnsafeBytes(of: t) { Array($0) } + v
            body += [UInt8](repeating: 0, count: (4 - len % 4) % 4)
        }
        let seq: UInt32 = sendLock.locked { sequence += 1; return sequence }
        var header: [UInt8] = []
        header += withUnsafeBytes(of: UInt32(16 + body.count)) { Array($0) }
        header += withUnsafeBytes(of: UInt16(Self.subsystemQueue << 8 | type)) { Array($0) }
        header += withUnsafeBytes(of: flags) { Array($0) }
        header += withUnsafeBytes(of: seq) { Array($0) }
        header += [0, 0, 0, 0]
        return header + body
    }

    /// Sends a configuration request and waits for its acknowledgement.
    private func request(_ type: UInt16, attributes: [(UInt16, [UInt8])]) throws {
        let m = message(type, flags: Self.flagRequest | Self.flagAck, attributes: attributes)
        guard m.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == m.count else {
            throw ConverterSocketError(operation: "send", context: "(nfqueue config)", errno: errno)
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n >= 20 else { throw ConverterSocketError(operation: "recv", context: "(nfqueue config)", errno: n < 0 ? errno : EPROTO) }
        let type = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 4, as: UInt16.self) }
        let error = buffer.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 16, as: Int32.self) }
        guard type == Self.messageError, error == 0 else {
            throw ConverterSocketError(operation: "nfqueue config", context: "(queue \(queue))", errno: error < 0 ? -error : EPROTO)
        }
    }

    /// Tells the kernel what to do with packet `id`; `mark` sets the packet's mark first.
    public func verdict(_ id: UInt32, _ verdict: UInt32, mark: UInt32? = nil) {
        var attrs: [(UInt16, [UInt8])] = [(Self.attrVerdictHeader, Self.bigEndian(verdict) + Self.bigEndian(id))]
        if let mark { attrs.append((Self.attrMark, Self.bigEndian(mark))) }
        let m = message(Self.msgVerdict, flags: Self.flagRequest, attributes: attrs)
        sendLock.locked { _ = m.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) } }
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    /// A queued SYN: its packet id and the connection it opens.
    public struct HeldSyn: Sendable {
        public var id: UInt32
        public var source: IPv4Endpoint
        public var destination: IPv4Endpoint
    }

    /// Waits up to `timeoutMilliseconds` for queued packets; returns the SYNs
    /// (a packet that is not an IPv4 TCP segment is accepted untouched).
    public func receive(timeoutMilliseconds: Int32) -> [HeldSyn] {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, timeoutMilliseconds) > 0 else { return [] }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        guard n > 0 else { return [] }
        var out: [HeldSyn] = []
        buffer.withUnsafeBytes { raw in
            var at = 0
            while at + 16 <= n {
                let len = Int(raw.loadUnaligned(fromByteOffset: at, as: UInt32.self))
                let type = raw.loadUnaligned(fromByteOffset: at + 4, as: UInt16.self)
                guard len >= 16, at + len <= n else { break }
                if type == Self.subsystemQueue << 8 | Self.msgPacket, let syn = Self.parsePacket(raw, from: at + 20, to: at + len) {
                    if let s = syn.syn { out.append(s) } else { verdict(syn.id, Self.verdictAccept) }
                }
                at += (len + 3) & ~3
            }
        }
        return out
    }

    /// Reads NFQA_PACKET_HDR and NFQA_PAYLOAD; the SYN's addresses and ports from the IPv4 and TCP headers.
    static func parsePacket(_ raw: UnsafeRawBufferPointer, from start: Int, to end: Int) -> (id: UInt32, syn: HeldSyn?)? {
        var id: UInt32?
        var payload: Range<Int>?
        var at = start
        while at + 4 <= end {
            let len = Int(raw.loadUnaligned(fromByteOffset: at, as: UInt16.self))
            let type = raw.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self) & 0x3FFF
            guard len >= 4, at + len <= end else { break }
            if type == attrPacketHeader, len >= 8 { id = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: at + 4, as: UInt32.self)) }
            if type == attrPayload { payload = (at + 4) ..< (at + len) }
            at += (len + 3) & ~3
        }
        guard let id else { return nil }
        guard let p = payload, p.count >= 20, raw[p.lowerBound] >> 4 == 4, raw[p.lowerBound + 9] == 6 else { return (id, nil) }
        let ihl = Int(raw[p.lowerBound] & 0x0F) * 4
        guard ihl >= 20, p.count >= ihl + 14 else { return (id, nil) }
        func u32(_ o: Int) -> UInt32 { UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: p.lowerBound + o, as: UInt32.self)) }
        func u16(_ o: Int) -> UInt16 { UInt16(bigEndian: raw.loadUnaligned(fromByteOffset: p.lowerBound + o, as: UInt16.self)) }
        let flags = raw[p.lowerBound + ihl + 13]
        guard flags & 0x12 == 0x02 else { return (id, nil) }  // SYN without ACK
        return (id, HeldSyn(id: id, source: IPv4Endpoint(address: u32(12), port: u16(ihl)),
                            destination: IPv4Endpoint(address: u32(16), port: u16(ihl + 2))))
    }
}
