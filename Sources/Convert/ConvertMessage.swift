/// The 0-RTT TCP Convert Protocol (RFC 8803) on the wire: the fixed header and
/// the TLVs a client and a Transport Converter exchange at the start of the
/// byte stream between them. Pure: bytes in, values or typed errors out; a
/// decoder of untrusted input never traps.
///
/// ```
///   fixed header (RFC 8803 §4.1)        TLV (RFC 8803 §4.2)
///   | Version | Total Length | Unassigned (16) |   | Type | Length | Value ... |
/// ```
/// Lengths count 32-bit words: Total Length covers the header and every TLV
/// after it, a TLV's Length covers its own Type and Length bytes.

/// RFC 8803 §4.1: the only version defined.
public let convertVersion: UInt8 = 1

/// Bytes in one length unit (RFC 8803 §4.1, §4.2: lengths are in 32-bit words).
public let convertWord = 4

/// The largest Convert message: Total Length is one byte of 32-bit words.
public let convertMaximumMessageBytes = 255 * 4

/// A destination the client asks the converter to reach (Connect TLV, RFC 8803 §4.2.2).
public struct ConvertDestination: Hashable, Sendable, CustomStringConvertible {
    /// 16 bytes; IPv4 destinations are IPv4-mapped IPv6 addresses (::ffff:a.b.c.d).
    public var address: [UInt8]
    public var port: UInt16

    public init(ipv4: UInt32, port: UInt16) {
        address = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF,
                   UInt8(ipv4 >> 24), UInt8(ipv4 >> 16 & 0xFF), UInt8(ipv4 >> 8 & 0xFF), UInt8(ipv4 & 0xFF)]
        self.port = port
    }

    /// nil unless `ipv6` is exactly 16 bytes.
    public init?(ipv6: [UInt8], port: UInt16) {
        guard ipv6.count == 16 else { return nil }
        address = ipv6
        self.port = port
    }

    /// The IPv4 address when this is an IPv4-mapped address.
    public var ipv4: UInt32? {
        guard address[0..<10].allSatisfy({ $0 == 0 }), address[10] == 0xFF, address[11] == 0xFF else { return nil }
        return UInt32(address[12]) << 24 | UInt32(address[13]) << 16 | UInt32(address[14]) << 8 | UInt32(address[15])
    }

    public var description: String {
        if let v = ipv4 { return "\(v >> 24).\(v >> 16 & 0xFF).\(v >> 8 & 0xFF).\(v & 0xFF):\(port)" }
        var groups: [String] = []
        for i in stride(from: 0, to: 16, by: 2) { groups.append(String(UInt16(address[i]) << 8 | UInt16(address[i + 1]), radix: 16)) }
        return "[\(groups.joined(separator: ":"))]:\(port)"
    }
}

/// Error codes of the Error TLV (RFC 8803 §4.2.7; IANA "Convert Errors").
public enum ConvertErrorCode: Hashable, Sendable, CustomStringConvertible {
    case unsupportedVersion          // 0
    case malformedMessage            // 1
    case unsupportedMessage          // 2
    case missingCookie               // 3
    case notAuthorized               // 32
    case unsupportedTCPOption        // 33
    case resourceExceeded            // 64
    case networkFailure              // 65
    /// The destination answered the converter's SYN with a RST: for the client, a refused connection.
    case connectionReset             // 96
    case destinationUnreachable      // 97
    case other(UInt8)

    public init(code: UInt8) {
        switch code {
        case 0: self = .unsupportedVersion
        case 1: self = .malformedMessage
        case 2: self = .unsupportedMessage
        case 3: self = .missingCookie
        case 32: self = .notAuthorized
        case 33: self = .unsupportedTCPOption
        case 64: self = .resourceExceeded
        case 65: self = .networkFailure
        case 96: self = .connectionReset
        case 97: self = .destinationUnreachable
        default: self = .other(code)
        }
    }

    public var code: UInt8 {
        switch self {
        case .unsupportedVersion: return 0
        case .malformedMessage: return 1
        case .unsupportedMessage: return 2
        case .missingCookie: return 3
        case .notAuthorized: return 32
        case .unsupportedTCPOption: return 33
        case .resourceExceeded: return 64
        case .networkFailure: return 65
        case .connectionReset: return 96
        case .destinationUnreachable: return 97
        case let .other(c): return c
        }
    }

    public var description: String {
        switch self {
        case .unsupportedVersion: return "unsupported version"
        case .malformedMessage: return "malformed message"
        case .unsupportedMessage: return "unsupported message"
        case .missingCookie: return "missing cookie"
        case .notAuthorized: return "not authorized"
        case .unsupportedTCPOption: return "unsupported TCP option"
        case .resourceExceeded: return "resource exceeded"
        case .networkFailure: return "network failure"
        case .connectionReset: return "connection reset by the destination"
        case .destinationUnreachable: return "destination unreachable"
        case let .other(c): return "error \(c)"
        }
    }
}

/// One TLV of a Convert message.
public enum ConvertTLV: Hashable, Sendable {
    /// Type 1 (RFC 8803 §4.2.1): asks the converter which TCP extensions it supports.
    case info
    /// Type 10 (§4.2.2): the destination, and TCP options for the converter's SYN (whole words, padded with zero bytes).
    case connect(ConvertDestination, tcpOptions: [UInt8])
    /// Type 20 (§4.2.3): a TCP header (options included) the converter received from the destination.
    case extendedTCPHeader([UInt8])
    /// Type 21 (§4.2.4): TCP option kinds the converter supports, one byte each.
    case supportedTCPExtensions([UInt8])
    /// Type 22 (§4.2.5): an opaque cookie.
    case cookie([UInt8])
    /// Type 30 (§4.2.7): an error and its one-byte value.
    case error(ConvertErrorCode, value: UInt8)
    /// A type this codec does not interpret; its body (after Type and Length) kept as is.
    case unknown(type: UInt8, body: [UInt8])

    public static let infoType: UInt8 = 1
    public static let connectType: UInt8 = 10
    public static let extendedTCPHeaderType: UInt8 = 20
    public static let supportedTCPExtensionsType: UInt8 = 21
    public static let cookieType: UInt8 = 22
    public static let errorType: UInt8 = 30

    public var type: UInt8 {
        switch self {
        case .info: return Self.infoType
        case .connect: return Self.connectType
        case .extendedTCPHeader: return Self.extendedTCPHeaderType
        case .supportedTCPExtensions: return Self.supportedTCPExtensionsType
        case .cookie: return Self.cookieType
        case .error: return Self.errorType
        case let .unknown(t, _): return t
        }
    }

    /// The bytes after Type and Length, before padding to a whole word.
    var body: [UInt8] {
        switch self {
        case .info: return [0, 0]
        case let .connect(d, options): return [UInt8(d.port >> 8), UInt8(d.port & 0xFF)] + d.address + options
        case let .extendedTCPHeader(h): return [0, 0] + h
        case let .supportedTCPExtensions(kinds): return [0, 0] + kinds
        case let .cookie(c): return [0, 0] + c
        case let .error(code, value): return [code.code, value]
        case let .unknown(_, body): return body
        }
    }

    /// Encoded size in bytes: Type, Length, body, zero padding to a whole word.
    public var encodedLength: Int { (2 + body.count + convertWord - 1) / convertWord * convertWord }
}

/// Why bytes are not a Convert message. The converter logs these and closes.
public enum ConvertDecodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// RFC 8803 §4.1: a version other than 1.
    case unsupportedVersion(UInt8)
    /// Total Length smaller than the fixed header itself.
    case totalLengthTooShort(words: UInt8)
    /// A TLV with Length 0 (it could never advance) at this byte offset.
    case zeroLengthTLV(type: UInt8, offset: Int)
    /// A TLV whose Length runs past the end of the message.
    case tlvOverrunsMessage(type: UInt8, offset: Int, words: UInt8, remainingWords: Int)
    /// A TLV whose Length is too small or too large for its type.
    case badTLVLength(type: UInt8, offset: Int, words: UInt8, reason: String)
    /// A message the client sent to the converter without a Connect TLV (RFC 8803 §5).
    case missingConnect
    /// More than one Connect TLV.
    case duplicateConnect

    public var description: String {
        switch self {
        case let .unsupportedVersion(v): return "unsupported Convert version \(v) (only \(convertVersion))"
        case let .totalLengthTooShort(w): return "Total Length \(w) words is shorter than the fixed header"
        case let .zeroLengthTLV(t, o): return "TLV type \(t) at byte \(o) has Length 0"
        case let .tlvOverrunsMessage(t, o, w, r): return "TLV type \(t) at byte \(o) has Length \(w) words, only \(r) left in the message"
        case let .badTLVLength(t, o, w, reason): return "TLV type \(t) at byte \(o) has Length \(w) words: \(reason)"
        case .missingConnect: return "no Connect TLV"
        case .duplicateConnect: return "more than one Connect TLV"
        }
    }

    /// The Error TLV code that tells the peer about it (RFC 8803 §4.2.7).
    public var errorCode: ConvertErrorCode {
        switch self {
        case .unsupportedVersion: return .unsupportedVersion
        default: return .malformedMessage
        }
    }
}

/// The outcome of looking at the first bytes of a stream.
public enum ConvertDecodeProgress: Hashable, Sendable {
    /// The message needs at least this many bytes in total; read more.
    case needBytes(Int)
    /// A whole message, and how many bytes it took; what follows is application data.
    case message(ConvertMessage, consumed: Int)
}

/// A Convert message: the fixed header and its TLVs.
public struct ConvertMessage: Hashable, Sendable {
    public var tlvs: [ConvertTLV]

    public init(_ tlvs: [ConvertTLV] = []) { self.tlvs = tlvs }

    /// Encoded size in bytes, or more than `convertMaximumMessageBytes` when it cannot be sent.
    public var encodedLength: Int { convertWord + tlvs.reduce(0) { $0 + $1.encodedLength } }

    /// The bytes on the wire; nil when the message does not fit Total Length (255 words)
    /// or one TLV does not fit its one-byte Length.
    public func encode() -> [UInt8]? {
        let total = encodedLength
        guard total <= convertMaximumMessageBytes else { return nil }
        var out: [UInt8] = [convertVersion, UInt8(total / convertWord), 0, 0]
        out.reserveCapacity(total)
        for tlv in tlvs {
            let length = tlv.encodedLength
            var bytes = [tlv.type, UInt8(length / convertWord)] + tlv.body
            bytes += [UInt8](repeating: 0, count: length - bytes.count)
            out += bytes
        }
        return out
    }

    /// Reads a message at the start of `bytes`, which may hold less than a whole
    /// message (then `.needBytes`) or more (0-RTT data after it).
    public static func decode(_ bytes: ArraySlice<UInt8>) throws(ConvertDecodeError) -> ConvertDecodeProgress {
        guard bytes.count >= convertWord else { return .needBytes(convertWord) }
        let s = bytes.startIndex
        // RFC 8803 §4.1: a converter receiving another version answers with an error.
        guard bytes[s] == convertVersion else { throw .unsupportedVersion(bytes[s]) }
        let totalWords = bytes[s + 1]
        guard totalWords >= 1 else { throw .totalLengthTooShort(words: totalWords) }
        let total = Int(totalWords) * convertWord
        guard bytes.count >= total else { return .needBytes(total) }
        var tlvs: [ConvertTLV] = []
        var at = convertWord
        while at < total {
            let type = bytes[s + at], words = bytes[s + at + 1]
            guard words > 0 else { throw .zeroLengthTLV(type: type, offset: at) }
            let length = Int(words) * convertWord
            guard at + length <= total else {
                throw .tlvOverrunsMessage(type: type, offset: at, words: words, remainingWords: (total - at) / convertWord)
            }
            let body = bytes[(s + at + 2) ..< (s + at + length)]
            tlvs.append(try decodeTLV(type: type, words: words, offset: at, body: body))
            at += length
        }
        return .message(ConvertMessage(tlvs), consumed: total)
    }

    static func decodeTLV(type: UInt8, words: UInt8, offset: Int, body: ArraySlice<UInt8>) throws(ConvertDecodeError) -> ConvertTLV {
        let b = body.startIndex
        switch type {
        case ConvertTLV.infoType:
            guard words == 1 else { throw .badTLVLength(type: type, offset: offset, words: words, reason: "an Info TLV is one word") }
            return .info
        case ConvertTLV.connectType:
            // Port (2) + address (16) after Type and Length: 5 words at least. The rest
            // are TCP options for the SYN, at most 40 bytes (RFC 9293 §3.1: data offset ≤ 15).
            guard words >= 5 else { throw .badTLVLength(type: type, offset: offset, words: words, reason: "a Connect TLV is at least 5 words") }
            guard words <= 15 else { throw .badTLVLength(type: type, offset: offset, words: words, reason: "more than 40 bytes of TCP options") }
            let port = UInt16(body[b]) << 8 | UInt16(body[b + 1])
            let address = Array(body[(b + 2) ..< (b + 18)])
            return .connect(ConvertDestination(ipv6: address, port: port)!, tcpOptions: Array(body[(b + 18)...]))
        case ConvertTLV.extendedTCPHeaderType:
            // A TCP header is 20 to 60 bytes (RFC 9293 §3.1), after 2 unassigned bytes.
            guard (6...16).contains(words) else {
                throw .badTLVLength(type: type, offset: offset, words: words, reason: "an Extended TCP Header TLV carries a 20–60 byte TCP header")
            }
            return .extendedTCPHeader(Array(body[(b + 2)...]))
        case ConvertTLV.supportedTCPExtensionsType:
            return .supportedTCPExtensions(Array(body[(b + 2)...]))
        case ConvertTLV.cookieType:
            guard words >= 2 else { throw .badTLVLength(type: type, offset: offset, words: words, reason: "a Cookie TLV carries at least one word of cookie") }
            return .cookie(Array(body[(b + 2)...]))
        case ConvertTLV.errorType:
            guard words == 1 else { throw .badTLVLength(type: type, offset: offset, words: words, reason: "an Error TLV is one word") }
            return .error(ConvertErrorCode(code: body[b]), value: body[b + 1])
        default:
            return .unknown(type: type, body: Array(body))
        }
    }

    /// The destination of a client's message: exactly one Connect TLV.
    public func destination() throws(ConvertDecodeError) -> (ConvertDestination, tcpOptions: [UInt8]) {
        var found: (ConvertDestination, [UInt8])?
        for case let .connect(d, options) in tlvs {
            guard found == nil else { throw .duplicateConnect }
            found = (d, options)
        }
        guard let found else { throw .missingConnect }
        return (found.0, tcpOptions: found.1)
    }

    /// The first Error TLV, if the converter sent one.
    public var error: (ConvertErrorCode, value: UInt8)? {
        for case let .error(code, value) in tlvs { return (code, value: value) }
        return nil
    }
}
