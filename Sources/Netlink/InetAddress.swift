/// An IPv4 address, held in host byte order. Named `InetAddress` (not
/// `IPv4Address`) so that it never collides with the wire formats' own types
/// in a file that imports both.
public struct InetAddress: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: UInt32

    public init(_ value: UInt32) { self.value = value }

    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        value = UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d)
    }

    /// Dotted quad, e.g. `198.18.0.1`; nil for anything else (never traps).
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var v: UInt32 = 0
        for p in parts {
            guard !p.isEmpty, p.count <= 3, p.allSatisfy({ $0.isASCII && $0.isNumber }), let octet = UInt8(p) else { return nil }
            v = v << 8 | UInt32(octet)
        }
        value = v
    }

    public static func < (a: InetAddress, b: InetAddress) -> Bool { a.value < b.value }

    public var description: String {
        "\(value >> 24).\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
    }

    /// The address in network byte order, as `in_addr.s_addr` wants it.
    public var networkOrder: UInt32 { value.bigEndian }
}

/// An address with a prefix length: an interface address (`198.18.0.1/30`) or
/// a destination network (`198.18.0.0/15`).
public struct InetPrefix: Hashable, Sendable, CustomStringConvertible {
    public var address: InetAddress
    public var length: Int

    public init(_ address: InetAddress, length: Int) {
        precondition((0...32).contains(length), "prefix length out of range")
        self.address = address; self.length = length
    }

    /// `a.b.c.d/n`; nil for anything else (never traps).
    public init?(_ text: String) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let a = InetAddress(String(parts[0])),
              parts[1].allSatisfy({ $0.isASCII && $0.isNumber }), parts[1].count <= 2,
              let n = Int(parts[1]), (0...32).contains(n) else { return nil }
        self.init(a, length: n)
    }

    public var mask: UInt32 { length == 0 ? 0 : UInt32.max << (32 - length) }
    /// The network this address is in (host bits cleared).
    public var network: InetPrefix { InetPrefix(InetAddress(address.value & mask), length: length) }
    public var isNetwork: Bool { address.value & ~mask == 0 }
    public var first: InetAddress { InetAddress(address.value & mask) }
    public var last: InetAddress { InetAddress(address.value | ~mask) }

    public func contains(_ a: InetAddress) -> Bool { a.value & mask == address.value & mask }
    /// True if the two ranges share any address.
    public func overlaps(_ other: InetPrefix) -> Bool {
        let m = length < other.length ? mask : other.mask
        return address.value & m == other.address.value & m
    }
    /// True if every address of `other` is in this range.
    public func covers(_ other: InetPrefix) -> Bool { other.length >= length && contains(other.address) }

    public var description: String { "\(address)/\(length)" }

    /// The benchmarking range (RFC 2544, RFC 6890) that all of Wayside's
    /// addresses come from; nothing else is ever routed.
    public static let testbedRange = InetPrefix(InetAddress(198, 18, 0, 0), length: 15)
    public static let defaultRoute = InetPrefix(InetAddress(0), length: 0)
}
