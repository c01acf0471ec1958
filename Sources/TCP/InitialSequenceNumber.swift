import Core
import Wire

/// Which connection a `TCPConnection` is: addresses as raw bytes (4 for IPv4,
/// 16 for IPv6) and ports. The addresses only feed the ISN hash; segments
/// themselves carry ports only.
public struct TCPFourTuple: Hashable, Sendable, CustomStringConvertible {
    public var localAddress: [UInt8]
    public var localPort: UInt16
    public var remoteAddress: [UInt8]
    public var remotePort: UInt16

    public init(localAddress: [UInt8], localPort: UInt16, remoteAddress: [UInt8], remotePort: UInt16) {
        self.localAddress = localAddress; self.localPort = localPort
        self.remoteAddress = remoteAddress; self.remotePort = remotePort
    }

    public var description: String {
        func address(_ a: [UInt8]) -> String { a.map(String.init).joined(separator: ".") }
        return "\(address(localAddress)):\(localPort)->\(address(remoteAddress)):\(remotePort)"
    }

    var hashInput: [UInt8] {
        localAddress + [UInt8(localPort >> 8), UInt8(localPort & 0xff)]
            + remoteAddress + [UInt8(remotePort >> 8), UInt8(remotePort & 0xff)]
    }
}

/// Initial sequence numbers per RFC 6528 §3: `ISN = M + F(localip, localport,
/// remoteip, remoteport, secretkey)`, where M is a timer ticking every 4 µs
/// and F is a keyed hash (SipHash-2-4 here). The secret and the clock are
/// injected, so the same secret and the same `now` give the same ISN.
public struct InitialSequenceNumberGenerator: Sendable {
    public let secret: SipHash24

    public init(secret: SipHash24) { self.secret = secret }
    /// A generator keyed from a seed (for simulations and tests).
    public init(seed: UInt64) {
        var random = SeededRandom(seed: seed, stream: "tcp.isn")
        self.secret = SipHash24(k0: random.next(), k1: random.next())
    }

    public func initialSequenceNumber(for tuple: TCPFourTuple, at now: Instant) -> SequenceNumber {
        // RFC 6528 §3: M is a 4-microsecond timer.
        let m = UInt32(truncatingIfNeeded: now.nanoseconds / 4_000)
        let f = UInt32(truncatingIfNeeded: secret.hash(tuple.hashInput))
        return SequenceNumber(m &+ f)
    }

    /// RFC 7323 §5.4 (and Appendix G): a per-connection random offset for
    /// TSval, so timestamps do not reveal the host's clock. Keyed like the
    /// ISN but on a different input domain.
    public func timestampOffset(for tuple: TCPFourTuple) -> UInt32 {
        UInt32(truncatingIfNeeded: secret.hash([0x54, 0x53] + tuple.hashInput) >> 32)
    }
}
