import Core
import LinkModel
import Wire

/// The simulator routes IPv4 addresses, Wire's own type.
public typealias NodeAddress = IPv4Address

extension IPv4Address {
    /// Whether this address lies in `prefix/length`.
    public func isIn(_ prefix: IPv4Address, length: Int) -> Bool {
        guard length > 0 else { return true }
        let mask: UInt32 = length >= 32 ? .max : ~(UInt32.max >> UInt32(length))
        return rawValue & mask == prefix.rawValue & mask
    }
}

/// One IP packet in the simulator: addresses, and a payload that is either a
/// TCP segment as a value (what TCP and MPTCP endpoints exchange) or opaque
/// bytes of another protocol. Its size on a link is that of the IPv4 packet
/// it stands for: a 20-byte IPv4 header plus the payload (for TCP, the header
/// with its options padded to 32 bits, plus the data).
public struct SimulatedPacket: LinkPacket, Hashable, Sendable {
    public var source: NodeAddress
    public var destination: NodeAddress
    public var payload: Payload
    /// Decremented at every router; a packet reaching 0 is dropped.
    public var timeToLive: UInt8

    public enum Payload: Hashable, Sendable {
        case tcp(TCPSegment)
        /// Any other protocol: the IP protocol number and the bytes after the IP header.
        case raw(protocolNumber: UInt8, bytes: [UInt8])
    }

    public init(source: NodeAddress, destination: NodeAddress, payload: Payload, timeToLive: UInt8 = 64) {
        self.source = source; self.destination = destination; self.payload = payload; self.timeToLive = timeToLive
    }

    public static func tcp(_ segment: TCPSegment, from source: NodeAddress, to destination: NodeAddress) -> SimulatedPacket {
        SimulatedPacket(source: source, destination: destination, payload: .tcp(segment))
    }

    public static let ipv4HeaderBytes = 20

    public var byteCount: Int {
        switch payload {
        case .tcp(let s): return Self.ipv4HeaderBytes + Self.tcpHeaderBytes(s) + s.payload.count
        case .raw(_, let bytes): return Self.ipv4HeaderBytes + bytes.count
        }
    }

    /// RFC 9293 §3.1: 20 bytes and the options, padded to a multiple of 4.
    public static func tcpHeaderBytes(_ s: TCPSegment) -> Int { s.headerLength }

    /// The packet as an IPv4 datagram on the wire: header with checksum, then
    /// the TCP segment with its checksum (or the raw payload).
    public func ipv4Bytes(identification: UInt16 = 0) -> [UInt8] {
        let transport: [UInt8]
        switch payload {
        case .tcp(let s): transport = s.bytes(source: .v4(source), destination: .v4(destination))
        case .raw(_, let bytes): transport = bytes
        }
        let header = IPv4Header(source: source, destination: destination, proto: protocolNumber,
                                payloadLength: transport.count, ttl: timeToLive, identification: identification)
        var out = [UInt8](repeating: 0, count: header.headerLength)
        header.emit(into: &out)
        out += transport
        return out
    }

    public var protocolNumber: UInt8 {
        switch payload {
        case .tcp: return 6
        case .raw(let p, _): return p
        }
    }
}

extension SimulatedPacket: CustomStringConvertible {
    /// A one-line summary for event logs: addresses, ports, flags, sequence numbers, length.
    public var description: String {
        switch payload {
        case .tcp(let s):
            var flags = ""
            if s.flags.contains(.syn) { flags += "S" }
            if s.flags.contains(.fin) { flags += "F" }
            if s.flags.contains(.rst) { flags += "R" }
            if s.flags.contains(.psh) { flags += "P" }
            if s.flags.contains(.ack) { flags += "." }
            return "\(source):\(s.sourcePort)>\(destination):\(s.destinationPort) tcp [\(flags)] seq=\(s.sequenceNumber.rawValue) ack=\(s.acknowledgmentNumber.rawValue) win=\(s.window) len=\(s.payload.count)"
        case .raw(let p, let bytes):
            return "\(source)>\(destination) proto=\(p) len=\(bytes.count)"
        }
    }
}
