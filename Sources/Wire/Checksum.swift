/// The Internet checksum (RFC 1071): the one's-complement of the
/// one's-complement sum of 16-bit big-endian words, an odd last byte padded
/// with zero. Returns the value to put in a checksum field; over bytes that
/// already contain a correct checksum it returns 0.
@inlinable public func internetChecksum<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt16 where C.Element == UInt8 {
    ~foldChecksum(onesComplementSum(bytes, initial: initial))
}

/// The unfolded 32-bit running sum of `bytes` read as big-endian 16-bit words.
@inlinable public func onesComplementSum<C: Collection>(_ bytes: C, initial: UInt32 = 0) -> UInt32 where C.Element == UInt8 {
    var sum = UInt64(initial)
    var high = true
    for b in bytes {
        sum &+= high ? UInt64(b) << 8 : UInt64(b)
        high.toggle()
    }
    while sum > 0xFFFF_FFFF { sum = (sum & 0xFFFF_FFFF) + (sum >> 32) }
    return UInt32(sum)
}

@inlinable public func foldChecksum(_ sum: UInt32) -> UInt16 {
    var s = sum
    while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
    return UInt16(s)
}

/// The sum of the TCP/UDP pseudo-header for IPv4 (RFC 9293 §3.1): source,
/// destination, zero, protocol, and the transport length.
public func pseudoHeaderSum(source: IPv4Address, destination: IPv4Address, proto: UInt8, length: Int) -> UInt32 {
    var sum: UInt32 = 0
    sum &+= source.rawValue >> 16; sum &+= source.rawValue & 0xFFFF
    sum &+= destination.rawValue >> 16; sum &+= destination.rawValue & 0xFFFF
    sum &+= UInt32(proto)
    sum &+= UInt32(truncatingIfNeeded: length) & 0xFFFF
    sum &+= UInt32(truncatingIfNeeded: length) >> 16
    return sum
}

/// The sum of the IPv6 pseudo-header (RFC 8200 §8.1): source, destination,
/// 32-bit upper-layer length, and the next header value.
public func pseudoHeaderSum(source: IPv6Address, destination: IPv6Address, proto: UInt8, length: Int) -> UInt32 {
    var sum: UInt64 = 0
    for word in [source.high, source.low, destination.high, destination.low] {
        sum += (word >> 48) & 0xFFFF; sum += (word >> 32) & 0xFFFF
        sum += (word >> 16) & 0xFFFF; sum += word & 0xFFFF
    }
    let length32 = UInt32(truncatingIfNeeded: length)
    sum += UInt64(length32 >> 16) + UInt64(length32 & 0xFFFF) + UInt64(proto)
    while sum > 0xFFFF_FFFF { sum = (sum & 0xFFFF_FFFF) + (sum >> 32) }
    return UInt32(sum)
}

public func pseudoHeaderSum(source: IPAddress, destination: IPAddress, proto: UInt8, length: Int) -> UInt32? {
    switch (source, destination) {
    case let (.v4(s), .v4(d)): return pseudoHeaderSum(source: s, destination: d, proto: proto, length: length)
    case let (.v6(s), .v6(d)): return pseudoHeaderSum(source: s, destination: d, proto: proto, length: length)
    default: return nil
    }
}

/// The TCP checksum of a whole segment (header with its checksum field, and
/// payload) under an IPv4 pseudo-header. 0 over a segment whose checksum is right.
public func tcpChecksum<C: Collection>(segment: C, source: IPv4Address, destination: IPv4Address) -> UInt16 where C.Element == UInt8 {
    internetChecksum(segment, initial: pseudoHeaderSum(source: source, destination: destination, proto: IPProtocol.tcp, length: segment.count))
}

/// The TCP checksum under an IPv6 pseudo-header.
public func tcpChecksum<C: Collection>(segment: C, source: IPv6Address, destination: IPv6Address) -> UInt16 where C.Element == UInt8 {
    internetChecksum(segment, initial: pseudoHeaderSum(source: source, destination: destination, proto: IPProtocol.tcp, length: segment.count))
}

/// The DSS checksum (RFC 8684 §3.3.1): the Internet checksum over a
/// pseudo-header of the 64-bit data sequence number, the 32-bit subflow
/// sequence number relative to the subflow's initial sequence number, the
/// 16-bit data-level length and the 16-bit checksum field, followed by the
/// payload the mapping covers. Pass `checksum: 0` to compute the value to
/// send; over a received mapping with its checksum it returns 0 when intact.
public func dssChecksum<C: Collection>(dataSequenceNumber: UInt64, relativeSubflowSequenceNumber: UInt32,
                                       dataLevelLength: UInt16, checksum: UInt16 = 0, payload: C) -> UInt16
    where C.Element == UInt8 {
    var header = [UInt8](repeating: 0, count: 16)
    header.put64(dataSequenceNumber, at: 0)
    header.put32(relativeSubflowSequenceNumber, at: 8)
    header.put16(dataLevelLength, at: 12)
    header.put16(checksum, at: 14)
    return internetChecksum(payload, initial: onesComplementSum(header))
}
