import Core

/// Which congestion controller a new connection starts with.
public enum CongestionControlAlgorithm: String, CaseIterable, Sendable {
    case newReno = "reno"
    case cubic

    public func make(maximumSegmentSize mss: Int, initialWindowSegments: Int) -> any CongestionControl {
        switch self {
        case .newReno: return NewReno(maximumSegmentSize: mss, initialWindowSegments: initialWindowSegments)
        case .cubic: return Cubic(maximumSegmentSize: mss, initialWindowSegments: initialWindowSegments)
        }
    }
}

/// RFC 9293 §3.8.4 and RFC 1122 §4.2.3.6: keepalives are off unless asked for,
/// and the idle interval MUST default to no less than two hours.
public struct KeepaliveSettings: Hashable, Sendable {
    public var idle: Interval
    public var interval: Interval
    public var probes: Int
    public init(idle: Interval = .seconds(7200), interval: Interval = .seconds(75), probes: Int = 9) {
        self.idle = idle; self.interval = interval; self.probes = probes
    }
}

/// Everything a connection can be tuned by. Defaults follow the RFCs, and
/// Linux where an RFC leaves a choice.
public struct TCPConfiguration: Sendable {
    /// The MSS we announce (RFC 9293 §3.7.1): what we can receive, excluding
    /// IP and TCP headers. 1460 fits a 1500-byte IPv4 MTU.
    public var maximumSegmentSize: Int = 1460
    public var sendBufferSize: Int = 256 * 1024
    public var receiveBufferSize: Int = 256 * 1024
    public var windowScaling = true
    public var timestamps = true
    public var selectiveAcknowledgments = true
    /// RFC 9293 §3.7.4: Nagle's algorithm; a host SHOULD implement it and
    /// MUST let an application turn it off.
    public var nagle = true
    /// RFC 9293 §3.8.6.3: an ACK MUST NOT be delayed by more than 0.5 s.
    public var delayedAckTimeout: Interval = .milliseconds(40)
    /// RFC 6298 §2.1: the RTO before any measurement is one second.
    public var initialRetransmissionTimeout: Interval = .seconds(1)
    /// RFC 6298 §2.4 suggests one second; Linux uses 200 ms, which the
    /// experiments here follow so that results are comparable with it.
    public var minimumRetransmissionTimeout: Interval = .milliseconds(200)
    /// RFC 6298 §2.5: a maximum of at least 60 seconds.
    public var maximumRetransmissionTimeout: Interval = .seconds(60)
    /// RFC 9293 §3.8.3: R2 must correspond to at least 100 seconds; with the
    /// backoff above, 15 retransmissions (Linux's tcp_retries2) exceed that.
    public var maximumRetransmissions = 15
    /// RFC 9293 §3.8.3: R2 for a SYN must be at least 3 minutes; 6 retries of
    /// 1 s doubling is 127 s, Linux's tcp_syn_retries.
    public var maximumSYNRetransmissions = 6
    /// Twice the maximum segment lifetime (RFC 9293 §3.4.2).
    public var timeWaitDuration: Interval = .seconds(60)
    public var keepalive: KeepaliveSettings? = nil
    /// RFC 6928: an initial window of ten segments.
    public var initialWindowSegments = 10
    public var congestionControl: CongestionControlAlgorithm = .cubic
    /// RFC 5681 §3.2 / RFC 6675 §2: three duplicate ACKs signal a loss.
    public var duplicateAckThreshold = 3
    /// RFC 5961 §7: challenge ACKs are rate-limited (Linux: 1000 per second).
    public var challengeAckLimitPerSecond = 1000

    public init() {}

    /// The shift we announce (RFC 7323 §2.3): the smallest that lets the
    /// whole receive buffer be advertised, at most 14.
    public var receiveWindowShift: UInt8 {
        guard windowScaling else { return 0 }
        var shift: UInt8 = 0
        while shift < 14 && (receiveBufferSize >> Int(shift)) > 0xFFFF { shift += 1 }
        return shift
    }
}
