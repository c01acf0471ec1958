/// A Multipath TCP option (TCP option kind 30, RFC 8684 §3). The subtype is
/// the high nibble of the third byte; each case carries its fields as values.
/// Reserved bits are written as zero and ignored when read (RFC 8684 §3:
/// "reserved ... MUST be set to zero by the sender and ignored by the receiver").
public enum MPTCPOption: Hashable, Sendable {
    case capable(MPCapable)
    case join(MPJoin)
    case dss(DataSequenceSignal)
    case addAddress(AddAddress)
    /// REMOVE_ADDR (§3.4.2): the address ids being withdrawn, at least one.
    case removeAddress(addressIDs: [UInt8])
    /// MP_PRIO (§3.3.8). RFC 8684 dropped the address id of RFC 6824; a
    /// four-byte option from an old sender still carries one.
    case priority(backup: Bool, addressID: UInt8?)
    /// MP_FAIL (§3.7): the 64-bit data sequence number where the checksum failed.
    case fail(dataSequenceNumber: UInt64)
    /// MP_FASTCLOSE (§3.5): the key of the host receiving the option.
    case fastClose(receiverKey: UInt64)
    /// MP_TCPRST (§3.6): flags `U V W T` (T = transient) and the reason code.
    case reset(flags: UInt8, reason: UInt8)
    /// A subtype Wayside does not know (e.g. MP_EXPERIMENTAL, 0xf), kept byte
    /// for byte: `data` is everything after kind and length.
    case unknown(subtype: UInt8, data: [UInt8])

    public enum Subtype {
        public static let capable: UInt8 = 0x0
        public static let join: UInt8 = 0x1
        public static let dss: UInt8 = 0x2
        public static let addAddress: UInt8 = 0x3
        public static let removeAddress: UInt8 = 0x4
        public static let priority: UInt8 = 0x5
        public static let fail: UInt8 = 0x6
        public static let fastClose: UInt8 = 0x7
        public static let reset: UInt8 = 0x8
    }

    /// Byte offsets shared by every subtype.
    public enum Field {
        public static let kind = 0
        public static let length = 1
        public static let subtype = 2
        public static let subtypeFlags = 3
    }

    public var subtype: UInt8 {
        switch self {
        case .capable: return Subtype.capable
        case .join: return Subtype.join
        case .dss: return Subtype.dss
        case .addAddress: return Subtype.addAddress
        case .removeAddress: return Subtype.removeAddress
        case .priority: return Subtype.priority
        case .fail: return Subtype.fail
        case .fastClose: return Subtype.fastClose
        case .reset: return Subtype.reset
        case let .unknown(subtype, _): return subtype
        }
    }

    /// The subtype's name as RFC 8684 spells it.
    public var name: String {
        switch self {
        case .capable: return "MP_CAPABLE"
        case .join: return "MP_JOIN"
        case .dss: return "DSS"
        case .addAddress: return "ADD_ADDR"
        case .removeAddress: return "REMOVE_ADDR"
        case .priority: return "MP_PRIO"
        case .fail: return "MP_FAIL"
        case .fastClose: return "MP_FASTCLOSE"
        case .reset: return "MP_TCPRST"
        case let .unknown(subtype, _): return subtype == 0xF ? "MP_EXPERIMENTAL" : "MPTCP subtype \(subtype)"
        }
    }

    /// Bytes on the wire, kind and length included.
    public var encodedLength: Int {
        switch self {
        case let .capable(o): return o.encodedLength
        case let .join(o): return o.encodedLength
        case let .dss(o): return o.encodedLength
        case let .addAddress(o): return o.encodedLength
        case let .removeAddress(ids): return 3 + ids.count
        case let .priority(_, id): return id == nil ? 3 : 4
        case .fail, .fastClose: return 12
        case .reset: return 4
        case let .unknown(_, data): return 2 + data.count
        }
    }

    /// Reads one MPTCP option; `bytes` is exactly the option (kind through
    /// the last byte its length covers), as `TCPOption.parseOne` hands it over.
    public static func parse(_ bytes: ArraySlice<UInt8>) throws -> MPTCPOption {
        try require(bytes, 3, "MPTCP option")
        guard bytes.u8(Field.kind) == TCPOption.Kind.mptcp else {
            throw WireError.malformed(what: "MPTCP option", reason: "kind \(bytes.u8(Field.kind)), expected 30")
        }
        let length = Int(bytes.u8(Field.length))
        guard length == bytes.count else {
            throw WireError.malformed(what: "MPTCP option", reason: "length field \(length) but \(bytes.count) bytes given")
        }
        let subtype = bytes.u8(Field.subtype) >> 4
        func expect(_ lengths: Set<Int>, _ name: String) throws {
            guard lengths.contains(length) else {
                throw WireError.malformed(what: name, reason: "length \(length), expected one of \(lengths.sorted())")
            }
        }
        switch subtype {
        case Subtype.capable: return .capable(try MPCapable.parse(bytes))
        case Subtype.join: return .join(try MPJoin.parse(bytes))
        case Subtype.dss: return .dss(try DataSequenceSignal.parse(bytes))
        case Subtype.addAddress: return .addAddress(try AddAddress.parse(bytes))
        case Subtype.removeAddress:
            guard length >= 4 else {
                throw WireError.malformed(what: "REMOVE_ADDR", reason: "length \(length), needs at least one address id (4)")
            }
            return .removeAddress(addressIDs: bytes.bytes(3, length - 3))
        case Subtype.priority:
            try expect([3, 4], "MP_PRIO")
            return .priority(backup: bytes.u8(Field.subtype) & 0x01 != 0, addressID: length == 4 ? bytes.u8(3) : nil)
        case Subtype.fail:
            try expect([12], "MP_FAIL")
            return .fail(dataSequenceNumber: bytes.u64(4))
        case Subtype.fastClose:
            try expect([12], "MP_FASTCLOSE")
            return .fastClose(receiverKey: bytes.u64(4))
        case Subtype.reset:
            try expect([4], "MP_TCPRST")
            return .reset(flags: bytes.u8(Field.subtype) & 0x0F, reason: bytes.u8(3))
        default:
            return .unknown(subtype: subtype, data: bytes.bytes(2, length - 2))
        }
    }

    /// Writes the option (kind and length included) at `offset`.
    public func emit(into buffer: inout [UInt8], at offset: Int) {
        let length = encodedLength
        precondition(length <= 40 && buffer.count >= offset + length, "buffer too small for \(name)")
        buffer[offset + Field.kind] = TCPOption.Kind.mptcp
        buffer[offset + Field.length] = UInt8(length)
        switch self {
        case let .capable(o): o.emit(into: &buffer, at: offset)
        case let .join(o): o.emit(into: &buffer, at: offset)
        case let .dss(o): o.emit(into: &buffer, at: offset)
        case let .addAddress(o): o.emit(into: &buffer, at: offset)
        case let .removeAddress(ids):
            buffer[offset + 2] = Subtype.removeAddress << 4
            buffer.putBytes(ids, at: offset + 3)
        case let .priority(backup, id):
            buffer[offset + 2] = Subtype.priority << 4 | (backup ? 1 : 0)
            if let id { buffer[offset + 3] = id }
        case let .fail(dsn):
            buffer.put16(UInt16(Subtype.fail) << 12, at: offset + 2)
            buffer.put64(dsn, at: offset + 4)
        case let .fastClose(key):
            buffer.put16(UInt16(Subtype.fastClose) << 12, at: offset + 2)
            buffer.put64(key, at: offset + 4)
        case let .reset(flags, reason):
            buffer[offset + 2] = Subtype.reset << 4 | (flags & 0x0F)
            buffer[offset + 3] = reason
        case let .unknown(_, data):
            buffer.putBytes(data, at: offset + 2)
        }
    }
}

/// MP_CAPABLE (RFC 8684 §3.1). Which form it is follows from the length:
/// 4 on a v1 SYN, 12 with the sender's key (SYN/ACK; a v0 SYN), 20 with both
/// keys (third ACK), 22 with the data-level length of the first data, 24 with
/// the DSS checksum as well.
public struct MPCapable: Hashable, Sendable {
    public enum Field {
        public static let subtypeVersion = 2
        public static let flags = 3
        public static let senderKey = 4
        public static let receiverKey = 12
        public static let dataLevelLength = 20
        public static let checksum = 22
    }
    /// Flag bits of the fourth byte: `A B C D E F G H`.
    public enum Flag {
        /// A: the sender requires DSS checksums.
        public static let checksumRequired: UInt8 = 0x80
        /// B: extensibility; MUST be zero in RFC 8684.
        public static let extensibility: UInt8 = 0x40
        /// C: do not try to open more subflows to the source address.
        public static let noMoreSubflows: UInt8 = 0x20
        /// H: HMAC-SHA256 (the only algorithm of RFC 8684).
        public static let hmacSHA256: UInt8 = 0x01
    }

    public var version: UInt8
    public var flags: UInt8
    public var senderKey: UInt64?
    public var receiverKey: UInt64?
    public var dataLevelLength: UInt16?
    public var checksum: UInt16?

    public init(version: UInt8 = 1, flags: UInt8 = Flag.hmacSHA256, senderKey: UInt64? = nil, receiverKey: UInt64? = nil,
                dataLevelLength: UInt16? = nil, checksum: UInt16? = nil) {
        self.version = version; self.flags = flags; self.senderKey = senderKey; self.receiverKey = receiverKey
        self.dataLevelLength = dataLevelLength; self.checksum = checksum
    }

    public var checksumRequired: Bool { flags & Flag.checksumRequired != 0 }
    public var noMoreSubflows: Bool { flags & Flag.noMoreSubflows != 0 }
    public var usesHMACSHA256: Bool { flags & Flag.hmacSHA256 != 0 }

    public var encodedLength: Int {
        if checksum != nil { return 24 }
        if dataLevelLength != nil { return 22 }
        if receiverKey != nil { return 20 }
        if senderKey != nil { return 12 }
        return 4
    }

    static func parse(_ bytes: ArraySlice<UInt8>) throws -> MPCapable {
        let length = bytes.count
        guard [4, 12, 20, 22, 24].contains(length) else {
            throw WireError.malformed(what: "MP_CAPABLE", reason: "length \(length), expected 4, 12, 20, 22 or 24")
        }
        try require(bytes, 4, "MP_CAPABLE")
        return MPCapable(version: bytes.u8(Field.subtypeVersion) & 0x0F, flags: bytes.u8(Field.flags),
                         senderKey: length >= 12 ? bytes.u64(Field.senderKey) : nil,
                         receiverKey: length >= 20 ? bytes.u64(Field.receiverKey) : nil,
                         dataLevelLength: length >= 22 ? bytes.u16(Field.dataLevelLength) : nil,
                         checksum: length >= 24 ? bytes.u16(Field.checksum) : nil)
    }

    func emit(into buffer: inout [UInt8], at offset: Int) {
        // Later fields only exist after earlier ones; fill any gap with zero.
        let length = encodedLength
        buffer[offset + Field.subtypeVersion] = MPTCPOption.Subtype.capable << 4 | (version & 0x0F)
        buffer[offset + Field.flags] = flags
        if length >= 12 { buffer.put64(senderKey ?? 0, at: offset + Field.senderKey) }
        if length >= 20 { buffer.put64(receiverKey ?? 0, at: offset + Field.receiverKey) }
        if length >= 22 { buffer.put16(dataLevelLength ?? 0, at: offset + Field.dataLevelLength) }
        if length >= 24 { buffer.put16(checksum ?? 0, at: offset + Field.checksum) }
    }
}

/// MP_JOIN (RFC 8684 §3.2) in its three forms, told apart by length
/// (12, 16, 24).
public enum MPJoin: Hashable, Sendable {
    /// On the SYN: backup flag, the sender's address id, the receiver's
    /// token, and the sender's random number.
    case syn(backup: Bool, addressID: UInt8, receiverToken: UInt32, senderNonce: UInt32)
    /// On the SYN/ACK: the leftmost 64 bits of the sender's HMAC and its random number.
    case synAck(backup: Bool, addressID: UInt8, truncatedHMAC: UInt64, senderNonce: UInt32)
    /// On the third ACK: the leftmost 160 bits of the sender's HMAC.
    case ack(hmac: [UInt8])

    public enum Field {
        public static let subtypeFlags = 2
        public static let addressID = 3
        public static let receiverToken = 4
        public static let synNonce = 8
        public static let truncatedHMAC = 4
        public static let synAckNonce = 12
        public static let hmac = 4
    }
    public static let hmacLength = 20

    public var encodedLength: Int {
        switch self { case .syn: return 12; case .synAck: return 16; case .ack: return 24 }
    }

    static func parse(_ bytes: ArraySlice<UInt8>) throws -> MPJoin {
        let backup = bytes.u8(Field.subtypeFlags) & 0x01 != 0
        switch bytes.count {
        case 12:
            return .syn(backup: backup, addressID: bytes.u8(Field.addressID),
                        receiverToken: bytes.u32(Field.receiverToken), senderNonce: bytes.u32(Field.synNonce))
        case 16:
            return .synAck(backup: backup, addressID: bytes.u8(Field.addressID),
                           truncatedHMAC: bytes.u64(Field.truncatedHMAC), senderNonce: bytes.u32(Field.synAckNonce))
        case 24:
            return .ack(hmac: bytes.bytes(Field.hmac, hmacLength))
        default:
            throw WireError.malformed(what: "MP_JOIN", reason: "length \(bytes.count), expected 12 (SYN), 16 (SYN/ACK) or 24 (ACK)")
        }
    }

    func emit(into buffer: inout [UInt8], at offset: Int) {
        let subtype = MPTCPOption.Subtype.join << 4
        switch self {
        case let .syn(backup, id, token, nonce):
            buffer[offset + Field.subtypeFlags] = subtype | (backup ? 1 : 0)
            buffer[offset + Field.addressID] = id
            buffer.put32(token, at: offset + Field.receiverToken)
            buffer.put32(nonce, at: offset + Field.synNonce)
        case let .synAck(backup, id, hmac, nonce):
            buffer[offset + Field.subtypeFlags] = subtype | (backup ? 1 : 0)
            buffer[offset + Field.addressID] = id
            buffer.put64(hmac, at: offset + Field.truncatedHMAC)
            buffer.put32(nonce, at: offset + Field.synAckNonce)
        case let .ack(hmac):
            buffer[offset + Field.subtypeFlags] = subtype
            buffer[offset + Field.addressID] = 0
            // The value type may hold any count; the wire holds exactly 20.
            for i in 0 ..< Self.hmacLength { buffer[offset + Field.hmac + i] = i < hmac.count ? hmac[i] : 0 }
        }
    }
}

/// The mapping part of a DSS option (RFC 8684 §3.3): `dataLevelLength`
/// bytes of the data sequence starting at `dataSequenceNumber` are carried
/// on this subflow from relative sequence `subflowSequenceNumber`.
public struct DSSMapping: Hashable, Sendable {
    /// The full 64-bit value, or the low 32 bits when `isEightBytes` is false.
    public var dataSequenceNumber: UInt64
    public var isEightBytes: Bool
    public var subflowSequenceNumber: UInt32
    public var dataLevelLength: UInt16
    /// Present only when checksums were negotiated (§3.3.1).
    public var checksum: UInt16?

    public init(dataSequenceNumber: UInt64, isEightBytes: Bool = true, subflowSequenceNumber: UInt32,
                dataLevelLength: UInt16, checksum: UInt16? = nil) {
        self.dataSequenceNumber = isEightBytes ? dataSequenceNumber : dataSequenceNumber & 0xFFFF_FFFF
        self.isEightBytes = isEightBytes; self.subflowSequenceNumber = subflowSequenceNumber
        self.dataLevelLength = dataLevelLength; self.checksum = checksum
    }

    /// RFC 8684 §3.3.1: a mapping with data-level length 0 and checksum 0
    /// (or no checksum) on subflow sequence 0 is the infinite mapping of a fallback.
    public var isInfinite: Bool { dataLevelLength == 0 && subflowSequenceNumber == 0 }
}

/// DSS, the Data Sequence Signal (RFC 8684 §3.3): an optional data ACK, an
/// optional mapping, and the DATA_FIN flag.
public struct DataSequenceSignal: Hashable, Sendable {
    public enum Flag {
        public static let dataACKPresent: UInt8 = 0x01      // A
        public static let dataACKIsEightBytes: UInt8 = 0x02  // a
        public static let mappingPresent: UInt8 = 0x04      // M
        public static let dsnIsEightBytes: UInt8 = 0x08     // m
        public static let dataFIN: UInt8 = 0x10             // F
    }
    public enum Field {
        public static let flags = 3
        public static let dataACK = 4
    }

    /// The full 64-bit value, or the low 32 bits when `dataACKIsEightBytes` is false.
    public var dataACK: UInt64?
    public var dataACKIsEightBytes: Bool
    public var mapping: DSSMapping?
    public var dataFIN: Bool

    public init(dataACK: UInt64? = nil, dataACKIsEightBytes: Bool = true, mapping: DSSMapping? = nil, dataFIN: Bool = false) {
        self.dataACK = dataACK.map { dataACKIsEightBytes ? $0 : $0 & 0xFFFF_FFFF }
        self.dataACKIsEightBytes = dataACKIsEightBytes; self.mapping = mapping; self.dataFIN = dataFIN
    }

    public var flags: UInt8 {
        var f: UInt8 = 0
        if dataACK != nil { f |= Flag.dataACKPresent | (dataACKIsEightBytes ? Flag.dataACKIsEightBytes : 0) }
        if let mapping { f |= Flag.mappingPresent | (mapping.isEightBytes ? Flag.dsnIsEightBytes : 0) }
        if dataFIN { f |= Flag.dataFIN }
        return f
    }

    public var encodedLength: Int {
        var n = 4
        if dataACK != nil { n += dataACKIsEightBytes ? 8 : 4 }
        if let mapping { n += (mapping.isEightBytes ? 8 : 4) + 4 + 2 + (mapping.checksum != nil ? 2 : 0) }
        return n
    }

    static func parse(_ bytes: ArraySlice<UInt8>) throws -> DataSequenceSignal {
        try require(bytes, 4, "DSS")
        let flags = bytes.u8(Field.flags)
        let ackLength = flags & Flag.dataACKPresent == 0 ? 0 : (flags & Flag.dataACKIsEightBytes != 0 ? 8 : 4)
        let mappingPresent = flags & Flag.mappingPresent != 0
        let dsnLength = flags & Flag.dsnIsEightBytes != 0 ? 8 : 4
        let withoutChecksum = 4 + ackLength + (mappingPresent ? dsnLength + 6 : 0)
        let hasChecksum: Bool
        switch bytes.count {
        case withoutChecksum: hasChecksum = false
        case withoutChecksum + 2 where mappingPresent: hasChecksum = true
        default:
            let expected = mappingPresent ? "\(withoutChecksum) or \(withoutChecksum + 2)" : "\(withoutChecksum)"
            throw WireError.malformed(what: "DSS", reason: "length \(bytes.count) does not match flags 0x\(String(flags, radix: 16)) (expected \(expected))")
        }
        var at = Field.dataACK
        var dataACK: UInt64?
        if ackLength == 8 { dataACK = bytes.u64(at) } else if ackLength == 4 { dataACK = UInt64(bytes.u32(at)) }
        at += ackLength
        var mapping: DSSMapping?
        if mappingPresent {
            let dsn = dsnLength == 8 ? bytes.u64(at) : UInt64(bytes.u32(at))
            at += dsnLength
            mapping = DSSMapping(dataSequenceNumber: dsn, isEightBytes: dsnLength == 8,
                                 subflowSequenceNumber: bytes.u32(at), dataLevelLength: bytes.u16(at + 4),
                                 checksum: hasChecksum ? bytes.u16(at + 6) : nil)
        }
        return DataSequenceSignal(dataACK: dataACK, dataACKIsEightBytes: ackLength != 4, mapping: mapping,
                                  dataFIN: flags & Flag.dataFIN != 0)
    }

    func emit(into buffer: inout [UInt8], at offset: Int) {
        buffer[offset + 2] = MPTCPOption.Subtype.dss << 4
        buffer[offset + Field.flags] = flags
        var at = offset + Field.dataACK
        if let dataACK {
            if dataACKIsEightBytes { buffer.put64(dataACK, at: at); at += 8 } else { buffer.put32(UInt32(truncatingIfNeeded: dataACK), at: at); at += 4 }
        }
        if let mapping {
            if mapping.isEightBytes { buffer.put64(mapping.dataSequenceNumber, at: at); at += 8 }
            else { buffer.put32(UInt32(truncatingIfNeeded: mapping.dataSequenceNumber), at: at); at += 4 }
            buffer.put32(mapping.subflowSequenceNumber, at: at)
            buffer.put16(mapping.dataLevelLength, at: at + 4)
            if let checksum = mapping.checksum { buffer.put16(checksum, at: at + 6) }
        }
    }
}

/// ADD_ADDR (RFC 8684 §3.4.1). The address family, the port and the HMAC
/// follow from the length and the echo flag: an echo carries no HMAC.
public struct AddAddress: Hashable, Sendable {
    public enum Field {
        public static let subtypeFlags = 2
        public static let addressID = 3
        public static let address = 4
    }
    public var echo: Bool
    public var addressID: UInt8
    public var address: IPAddress
    public var port: UInt16?
    /// The rightmost 64 bits of the HMAC (§3.4.1); absent on an echo.
    public var truncatedHMAC: UInt64?

    public init(echo: Bool = false, addressID: UInt8, address: IPAddress, port: UInt16? = nil, truncatedHMAC: UInt64? = nil) {
        self.echo = echo; self.addressID = addressID; self.address = address; self.port = port
        self.truncatedHMAC = truncatedHMAC
    }

    var addressLength: Int { if case .v4 = address { return 4 } else { return 16 } }
    /// A non-echo always carries the HMAC on the wire (zero if unset); an echo never does.
    public var encodedLength: Int { 4 + addressLength + (port != nil ? 2 : 0) + (echo ? 0 : 8) }

    static func parse(_ bytes: ArraySlice<UInt8>) throws -> AddAddress {
        try require(bytes, 4, "ADD_ADDR")
        let echo = bytes.u8(Field.subtypeFlags) & 0x01 != 0
        let hmacLength = echo ? 0 : 8
        let addressLength: Int, hasPort: Bool
        switch bytes.count - hmacLength {
        case 8: addressLength = 4; hasPort = false
        case 10: addressLength = 4; hasPort = true
        case 20: addressLength = 16; hasPort = false
        case 22: addressLength = 16; hasPort = true
        default:
            let allowed = echo ? "8, 10, 20 or 22" : "16, 18, 28 or 30"
            throw WireError.malformed(what: "ADD_ADDR", reason: "length \(bytes.count) with echo=\(echo ? 1 : 0), expected \(allowed)")
        }
        let raw = bytes.bytes(Field.address, addressLength)
        let address: IPAddress = addressLength == 4 ? .v4(IPv4Address(bytes: raw)!) : .v6(IPv6Address(bytes: raw)!)
        var at = Field.address + addressLength
        var port: UInt16?
        if hasPort { port = bytes.u16(at); at += 2 }
        return AddAddress(echo: echo, addressID: bytes.u8(Field.addressID), address: address, port: port,
                          truncatedHMAC: echo ? nil : bytes.u64(at))
    }

    func emit(into buffer: inout [UInt8], at offset: Int) {
        buffer[offset + Field.subtypeFlags] = MPTCPOption.Subtype.addAddress << 4 | (echo ? 1 : 0)
        buffer[offset + Field.addressID] = addressID
        buffer.putBytes(address.bytes, at: offset + Field.address)
        var at = offset + Field.address + addressLength
        if let port { buffer.put16(port, at: at); at += 2 }
        if !echo { buffer.put64(truncatedHMAC ?? 0, at: at) }
    }
}
