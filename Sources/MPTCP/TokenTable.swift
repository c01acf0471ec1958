import Wire

/// The keys of one MPTCP connection and what RFC 8684 derives from them:
/// tokens (§3.2, most significant 32 bits of SHA-256(key)) and initial data
/// sequence numbers (§3.1, least significant 64 bits of SHA-256(key)).
public struct ConnectionKeys: Hashable, Sendable {
    public let localKey: UInt64
    public let remoteKey: UInt64
    public let localToken: UInt32
    public let remoteToken: UInt32
    /// Our initial data sequence number; the first data byte we send is IDSN + 1
    /// (§3.3: the SYN occupies one octet of the data sequence space).
    public let localIDSN: DataSequenceNumber
    public let remoteIDSN: DataSequenceNumber

    public init(localKey: UInt64, remoteKey: UInt64) {
        self.localKey = localKey; self.remoteKey = remoteKey
        localToken = MPTCPCrypto.token(key: localKey)
        remoteToken = MPTCPCrypto.token(key: remoteKey)
        localIDSN = DataSequenceNumber(MPTCPCrypto.initialDataSequenceNumber(key: localKey))
        remoteIDSN = DataSequenceNumber(MPTCPCrypto.initialDataSequenceNumber(key: remoteKey))
    }
}

/// Tokens of the connections a host owns (Linux `net/mptcp/token.c`): an
/// MP_JOIN SYN names its connection only by the token (§3.2), so the token
/// must be unique on the host. `Connection` is whatever the driver uses to
/// find a connection again (an index, an id).
public struct TokenTable<Connection: Hashable & Sendable>: Sendable {
    private var entries: [UInt32: Connection] = [:]
    /// Keys drawn whose token was already taken (or was zero), for the MIB.
    public private(set) var collisions = 0

    public init() {}

    public var count: Int { entries.count }

    public func connection(for token: UInt32) -> Connection? { entries[token] }

    /// Draws a fresh local key whose token no connection on this host uses
    /// (§3.1: "the key ... MUST be unique for the sender"; Linux retries the
    /// draw on a token collision). A zero key is never used.
    public mutating func newKey<R: RandomNumberGenerator>(using random: inout R) -> UInt64 {
        while true {
            let key = random.next()
            if key != 0, entries[MPTCPCrypto.token(key: key)] == nil { return key }
            collisions += 1
        }
    }

    /// Records that `connection` owns `token`. Returns false (and changes
    /// nothing) when another connection owns it already.
    @discardableResult
    public mutating func insert(token: UInt32, for connection: Connection) -> Bool {
        if let owner = entries[token] { return owner == connection }
        entries[token] = connection
        return true
    }

    public mutating func remove(token: UInt32) { entries[token] = nil }
}
