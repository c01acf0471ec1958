import Core

/// What the sender knows when an ACK acknowledges new data outside loss recovery.
public struct AcknowledgmentSample: Sendable {
    public var now: Instant
    /// Bytes newly acknowledged by this ACK.
    public var acknowledgedBytes: Int
    /// Bytes in flight before this ACK arrived.
    public var bytesInFlight: Int
    public var smoothedRTT: Interval?
    public var latestRTT: Interval?
    public var minimumRTT: Interval?
    public var maximumSegmentSize: Int
    /// Whether the sender was limited by the congestion window rather than by
    /// the application or the peer's window. RFC 7661 §4.1: a window that is
    /// not used must not grow.
    public var isCongestionWindowLimited: Bool

    public init(now: Instant, acknowledgedBytes: Int, bytesInFlight: Int, smoothedRTT: Interval?,
                latestRTT: Interval?, minimumRTT: Interval?, maximumSegmentSize: Int,
                isCongestionWindowLimited: Bool) {
        self.now = now; self.acknowledgedBytes = acknowledgedBytes; self.bytesInFlight = bytesInFlight
        self.smoothedRTT = smoothedRTT; self.latestRTT = latestRTT; self.minimumRTT = minimumRTT
        self.maximumSegmentSize = maximumSegmentSize; self.isCongestionWindowLimited = isCongestionWindowLimited
    }
}

/// A congestion controller: the engine tells it about ACKs and congestion
/// signals, and reads `congestionWindow` and `slowStartThreshold` (bytes).
///
/// Loss detection and recovery (RFC 6675, RFC 6582) live in the engine; a
/// controller only decides window sizes. MPTCP couples subflows by installing
/// a controller whose increase depends on all subflows (RFC 6356); the
/// `CoupledIncrease` hook lets NewReno's congestion avoidance be coupled
/// without writing a new controller.
public protocol CongestionControl: Sendable {
    var name: String { get }
    var congestionWindow: Int { get }
    var slowStartThreshold: Int { get }
    /// New data was acknowledged while not in loss recovery.
    mutating func onAcknowledgment(_ sample: AcknowledgmentSample)
    /// Loss recovery starts (fast retransmit): reduce the window once.
    mutating func onCongestionEvent(now: Instant, bytesInFlight: Int, maximumSegmentSize: Int)
    /// Loss recovery ended with a full acknowledgment (RFC 6582 §3.2 step 3).
    mutating func onRecoveryExit(now: Instant, bytesInFlight: Int, maximumSegmentSize: Int)
    /// The retransmission timer expired (RFC 5681 §3.1, eq. 4; cwnd to the loss window).
    mutating func onRetransmissionTimeout(now: Instant, bytesInFlight: Int, maximumSegmentSize: Int)
}

/// The congestion-avoidance increase of a coupled controller (RFC 6356 §3):
/// given bytes acknowledged on this subflow, its window and MSS, how many bytes
/// the window grows by. The MPTCP layer refreshes it with the other subflows'
/// windows and RTTs before handing a subflow an ACK.
public protocol CoupledIncrease: Sendable {
    func congestionAvoidanceIncrease(acknowledgedBytes: Int, congestionWindow: Int, maximumSegmentSize: Int) -> Double
}

/// Slow start with appropriate byte counting (RFC 3465, L = 2·SMSS).
@inline(__always) func slowStartIncrease(_ acked: Int, mss: Int) -> Int { min(acked, 2 * mss) }

/// NewReno's window arithmetic (RFC 5681 §3.1, RFC 6582 §3.2).
public struct NewReno: CongestionControl {
    public var name: String { "reno" }
    public private(set) var window: Double
    public private(set) var slowStartThreshold: Int = .max
    /// The MPTCP hook: when set, it replaces Reno's 1-MSS-per-RTT increase.
    public var coupling: (any CoupledIncrease)?

    public var congestionWindow: Int { Int(window) }

    public init(maximumSegmentSize mss: Int, initialWindowSegments: Int = 10) {
        // RFC 6928 §2: IW = min(10·MSS, max(2·MSS, 14600)).
        window = Double(min(initialWindowSegments * mss, max(2 * mss, 14_600)))
    }

    public mutating func onAcknowledgment(_ s: AcknowledgmentSample) {
        guard s.isCongestionWindowLimited else { return }
        if congestionWindow < slowStartThreshold {
            window += Double(slowStartIncrease(s.acknowledgedBytes, mss: s.maximumSegmentSize))
        } else if let coupling {
            window += coupling.congestionAvoidanceIncrease(
                acknowledgedBytes: s.acknowledgedBytes, congestionWindow: congestionWindow,
                maximumSegmentSize: s.maximumSegmentSize)
        } else {
            // RFC 5681 eq. 3: cwnd += SMSS·SMSS/cwnd per ACK, by bytes acknowledged.
            let mss = Double(s.maximumSegmentSize)
            window += mss * Double(s.acknowledgedBytes) / max(window, mss)
        }
    }

    public mutating func onCongestionEvent(now: Instant, bytesInFlight: Int, maximumSegmentSize mss: Int) {
        // RFC 5681 eq. 4 and RFC 6675 §5 step 4.2: ssthresh = max(FlightSize/2, 2·SMSS), cwnd = ssthresh.
        slowStartThreshold = max(bytesInFlight / 2, 2 * mss)
        window = Double(slowStartThreshold)
    }

    public mutating func onRecoveryExit(now: Instant, bytesInFlight: Int, maximumSegmentSize mss: Int) {
        window = Double(slowStartThreshold)
    }

    public mutating func onRetransmissionTimeout(now: Instant, bytesInFlight: Int, maximumSegmentSize mss: Int) {
        slowStartThreshold = max(bytesInFlight / 2, 2 * mss)
        window = Double(mss) // RFC 5681 §3.1: the loss window is one segment.
    }
}

/// CUBIC (RFC 9438), windows counted in segments internally as the RFC does.
public struct Cubic: CongestionControl {
    public var name: String { "cubic" }
    /// RFC 9438 §4.2 and §4.6: C = 0.4, β_cubic = 0.7.
    public static let c = 0.4
    public static let beta = 0.7
    /// RFC 9438 §4.3: α_cubic = 3(1 − β)/(1 + β) while below W_max.
    static let alphaRenoFriendly = 3 * (1 - beta) / (1 + beta)

    public private(set) var window: Double
    public private(set) var slowStartThreshold: Int = .max
    public var congestionWindow: Int { Int(window) }
    public private(set) var wMax: Double = 0        // segments
    var k: Double = 0                                // seconds
    var epochStart: Instant?
    var wEst: Double = 0                             // segments
    var cwndAtEpoch: Double = 0                      // segments

    public init(maximumSegmentSize mss: Int, initialWindowSegments: Int = 10) {
        window = Double(min(initialWindowSegments * mss, max(2 * mss, 14_600)))
    }

    public mutating func onAcknowledgment(_ s: AcknowledgmentSample) {
        guard s.isCongestionWindowLimited else { return }
        let mss = Double(s.maximumSegmentSize)
        if congestionWindow < slowStartThreshold {
            window += Double(slowStartIncrease(s.acknowledgedBytes, mss: s.maximumSegmentSize))
            return
        }
        let cwnd = window / mss
        if epochStart == nil {
            // RFC 9438 §4.2: a new congestion-avoidance stage starts here.
            epochStart = s.now
            cwndAtEpoch = cwnd
            wEst = cwnd
            if wMax <= cwnd { wMax = cwnd; k = 0 } else { k = cbrt((wMax - cwnd) / Self.c) }
        }
        let rtt = (s.smoothedRTT ?? .milliseconds(100)).seconds
        let t = (s.now - epochStart!).seconds
        let segmentsAcked = Double(s.acknowledgedBytes) / mss
        // RFC 9438 §4.3: the Reno-friendly estimate, with α = 1 once W_est ≥ W_max.
        let alpha = wEst >= wMax ? 1.0 : Self.alphaRenoFriendly
        wEst += alpha * segmentsAcked / cwnd
        let wCubicNow = Self.c * pow(t - k, 3) + wMax
        if wCubicNow < wEst {
            window = max(window, wEst * mss)
            return
        }
        // RFC 9438 §4.4/§4.5: aim at W_cubic(t + RTT), bounded to [cwnd, 1.5·cwnd].
        let target = min(max(Self.c * pow(t + rtt - k, 3) + wMax, cwnd), 1.5 * cwnd)
        window += (target - cwnd) / cwnd * segmentsAcked * mss
    }

    mutating func reduce(mss: Int) {
        let cwnd = window / Double(mss)
        epochStart = nil
        // RFC 9438 §4.7: fast convergence.
        wMax = cwnd < wMax ? cwnd * (1 + Self.beta) / 2 : cwnd
        slowStartThreshold = max(Int(window * Self.beta), 2 * mss)
    }

    public mutating func onCongestionEvent(now: Instant, bytesInFlight: Int, maximumSegmentSize mss: Int) {
        reduce(mss: mss)
        window = Double(slowStartThreshold) // RFC 9438 §4.6
    }

    public mutating func onRecoveryExit(now: Instant, bytesInFlight: Int, maximumSegmentSize mss: Int) {
        window = Double(slowStartThreshold)
    }

    public mutating func onRetransmissionTimeout(now: Instant, bytesInFlight: Int, maximumSegmentSize mss: Int) {
        // RFC 9438 §4.8: reduce as for a loss, then restart from one segment.
        reduce(mss: mss)
        window = Double(mss)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
