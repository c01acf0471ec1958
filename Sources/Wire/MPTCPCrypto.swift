import Crypto

/// The cryptography of RFC 8684 with HMAC-SHA256 (the `H` flag of MP_CAPABLE).
/// Keys are 64-bit values hashed in network byte order.
public enum MPTCPCrypto {
    /// RFC 8684 §3.2: the token is the most significant 32 bits of SHA-256(key).
    public static func token(key: UInt64) -> UInt32 {
        let digest = Array(SHA256.hash(data: bigEndianBytes(key)))
        return digest[0 ..< 4].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// RFC 8684 §3.1: the initial data sequence number is the least
    /// significant 64 bits of SHA-256(key).
    public static func initialDataSequenceNumber(key: UInt64) -> UInt64 {
        let digest = Array(SHA256.hash(data: bigEndianBytes(key)))
        return digest[24 ..< 32].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The full HMAC-SHA256 with key `first || second` (64-bit keys, network
    /// order) over `message`.
    public static func hmac(firstKey: UInt64, secondKey: UInt64, message: [UInt8]) -> [UInt8] {
        let key = SymmetricKey(data: bigEndianBytes(firstKey) + bigEndianBytes(secondKey))
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: key))
    }

    /// RFC 8684 §3.2: the HMAC a host sends during MP_JOIN, keyed with its own
    /// key followed by the peer's, over its own random number followed by the
    /// peer's. Host B (the listener) sends HMAC(Key-B||Key-A, R-B||R-A) on the
    /// SYN/ACK; host A sends HMAC(Key-A||Key-B, R-A||R-B) on the third ACK.
    public static func joinHMAC(senderKey: UInt64, receiverKey: UInt64, senderNonce: UInt32, receiverNonce: UInt32) -> [UInt8] {
        hmac(firstKey: senderKey, secondKey: receiverKey,
             message: bigEndianBytes(senderNonce) + bigEndianBytes(receiverNonce))
    }

    /// The MP_JOIN SYN/ACK carries the leftmost 64 bits of the responder's HMAC.
    public static func joinSynAckHMAC(senderKey: UInt64, receiverKey: UInt64, senderNonce: UInt32, receiverNonce: UInt32) -> UInt64 {
        joinHMAC(senderKey: senderKey, receiverKey: receiverKey, senderNonce: senderNonce, receiverNonce: receiverNonce)[0 ..< 8]
            .reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// The MP_JOIN third ACK carries the leftmost 160 bits of the initiator's HMAC.
    public static func joinAckHMAC(senderKey: UInt64, receiverKey: UInt64, senderNonce: UInt32, receiverNonce: UInt32) -> [UInt8] {
        Array(joinHMAC(senderKey: senderKey, receiverKey: receiverKey, senderNonce: senderNonce, receiverNonce: receiverNonce)
            .prefix(MPJoin.hmacLength))
    }

    /// RFC 8684 §3.4.1: ADD_ADDR's truncated HMAC is the rightmost 64 bits of
    /// HMAC(Key = sender's key || receiver's key, Msg = address id || address
    /// || port). Linux always puts the two port bytes in the message, zero
    /// when the option carries no port; so does this function.
    public static func addAddressHMAC(senderKey: UInt64, receiverKey: UInt64, addressID: UInt8,
                                      address: IPAddress, port: UInt16?) -> UInt64 {
        let message = [addressID] + address.bytes + bigEndianBytes(port ?? 0)
        return hmac(firstKey: senderKey, secondKey: receiverKey, message: message)[24 ..< 32]
            .reduce(0) { $0 << 8 | UInt64($1) }
    }

    static func bigEndianBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        (0 ..< T.bitWidth / 8).reversed().map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
    }
}
