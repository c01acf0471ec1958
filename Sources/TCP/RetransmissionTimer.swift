import Core

/// The RTO estimator of RFC 6298, with Karn's exponential backoff.
public struct RetransmissionTimeoutEstimator: Sendable, Hashable {
    public private(set) var smoothedRTT: Interval?
    public private(set) var rttVariance: Interval = .zero
    public private(set) var latestRTT: Interval?
    public private(set) var minimumRTTSeen: Interval?
    /// How many times the timer has been doubled since the last valid sample.
    public private(set) var backoff: Int = 0
    var base: Interval
    let minimum: Interval
    let maximum: Interval
    /// RFC 6298 §4: the clock granularity G.
    static let granularity = Interval.milliseconds(1)

    init(initial: Interval, minimum: Interval, maximum: Interval) {
        self.base = initial; self.minimum = minimum; self.maximum = maximum
    }

    /// The current RTO, backoff included, bounded by the maximum (§2.5).
    public var timeout: Interval {
        var rto = base
        for _ in 0..<backoff where rto < maximum { rto = rto * Int64(2) }
        return min(rto, maximum)
    }

    /// RFC 6298 §2.2/§2.3 with α = 1/8 and β = 1/4. A valid sample ends the
    /// backoff (Karn: only samples from segments that were not retransmitted,
    /// or timestamp echoes, reach here).
    mutating func addSample(_ rtt: Interval) {
        let r = max(rtt, .nanoseconds(1))
        latestRTT = r
        minimumRTTSeen = min(minimumRTTSeen ?? r, r)
        if let srtt = smoothedRTT {
            let error = srtt > r ? srtt - r : r - srtt
            rttVariance = rttVariance * 0.75 + error * 0.25
            smoothedRTT = srtt * 0.875 + r * 0.125
        } else {
            smoothedRTT = r
            rttVariance = r / 2
        }
        let k = max(Self.granularity, rttVariance * Int64(4))
        base = max(minimum, min(maximum, smoothedRTT! + k))
        backoff = 0
    }

    /// RFC 6298 §5.5: on expiry, back off the timer.
    mutating func backOff() { backoff += 1 }

    /// RFC 6298 §5.7: if the SYN or SYN-ACK was retransmitted and no sample
    /// exists, start data transfer with a three-second RTO.
    mutating func handshakeRetransmitted() {
        if smoothedRTT == nil { base = max(base, .seconds(3)) }
        backoff = 0
    }
}
