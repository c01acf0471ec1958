import Core
import LinkModel
import Wire

/// An IPv4 address as the simulator routes it. (Wire's own address type
/// arrives with its IPv4 codec; this one converts to and from 32 bits.)
public struct NodeAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32

    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        rawValue = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Dotted quad, e.g. "198.18.0.1"; `nil` for anything else.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let octet = UInt8(p) else { return nil }
            v = v << 8 | UInt32(octet)
        }
        rawValue = v
    }

    public var octets: [UInt8] { [UInt8(rawValue >> 24), UInt8(rawValue >> 16 & 0xff), UInt8(rawValue >> 8 & 0xff), UInt8(rawValue & 0xff)] }

    public static func < (a: NodeAddress, b: NodeAddress) -> Bool { a.rawValue < b.rawValue }

    /// Whether this address lies in `prefix/length`.
    public func isIn(_ prefix: NodeAddress, length: Int) -> Bool {
        guard length > 0 else { return true }
        let mask: UInt32 = length >= 32 ? .max : ~(UInt32.max >> UInt32(length))
        return rawValue & mask == prefix.rawValue & mask
    }

    public var description: String { octets.map(String.init).joined(separator: ".") }
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
    public static func tcpHeaderBytes(_ s: TCPSegment) -> Int {
        var n = 0
        for o in s.options {
            switch o {
            case .endOfList, .noOperation: n += 1
            case .maximumSegmentSize: n += 4
            case .windowScale: n += 3
            case .sackPermitted: n += 2
            case .sack(let blocks): n += 2 + 8 * blocks.count
            case .timestamps: n += 10
            case .unknown(_, let data): n += 2 + data.count
            }
        }
        return 20 + (n + 3) / 4 * 4
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
