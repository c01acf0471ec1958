import Core

/// One subflow as coupled congestion control sees it.
public struct CoupledSubflow: Hashable, Sendable {
    /// Congestion window in bytes.
    public var congestionWindow: Int
    public var smoothedRTT: Interval
    public var maximumSegmentSize: Int
    /// OLIA's ℓ_r: bytes acknowledged between the last two losses (or since
    /// the last one, whichever is larger), in bytes.
    public var bytesBetweenLosses: Double

    public init(congestionWindow: Int, smoothedRTT: Interval, maximumSegmentSize: Int, bytesBetweenLosses: Double = 0) {
        self.congestionWindow = congestionWindow; self.smoothedRTT = smoothedRTT
        self.maximumSegmentSize = maximumSegmentSize; self.bytesBetweenLosses = bytesBetweenLosses
    }

    var windowSegments: Double { Double(congestionWindow) / Double(maximumSegmentSize) }
    /// RTT in seconds, never zero (a zero RTT would make every rate infinite).
    var rtt: Double { max(smoothedRTT.seconds, 1e-6) }
}

/// OLIA's ℓ_r for one subflow (Khalili et al., §III): the larger of the
/// bytes acknowledged between its last two losses and the bytes acknowledged
/// since its last loss. A loss is a fast recovery or a retransmission timeout.
public struct LossIntervals: Hashable, Sendable {
    var lossesSeen = 0
    var acknowledgedAtLastLoss = 0
    var betweenLastTwo = 0

    public init() {}

    /// `acknowledgedBytes` and `losses` are the subflow's running totals.
    public mutating func update(acknowledgedBytes: Int, losses: Int) {
        guard losses > lossesSeen else { return }
        betweenLastTwo = acknowledgedBytes - acknowledgedAtLastLoss
        acknowledgedAtLastLoss = acknowledgedBytes
        lossesSeen = losses
    }

    public func bytesBetweenLosses(acknowledgedBytes: Int) -> Double {
        Double(max(betweenLastTwo, acknowledgedBytes - acknowledgedAtLastLoss))
    }
}

/// Coupled congestion avoidance for the subflows of one connection, each a
/// pure function of per-subflow windows, RTTs and MSS (Linux `mptcp_*`
/// out-of-tree modules; RFC 6356 for LIA). With one subflow each reduces to
/// NewReno's 1 MSS per RTT.
///
/// `CoupledSubflowIncrease` below has the shape of the `TCP` engine's hook `CoupledIncrease`
/// (`congestionAvoidanceIncrease(acknowledgedBytes:
/// congestionWindow:maximumSegmentSize:)`), so once `TCP` is a dependency
/// the conformance is one line.
public enum CoupledAlgorithm: String, Hashable, Sendable, CaseIterable {
    /// Each subflow runs its own controller (Reno or CUBIC), uncoupled.
    case uncoupled
    /// Linked Increases (RFC 6356).
    case lia
    /// Opportunistic LIA (Khalili et al., IEEE/ACM ToN 2013).
    case olia
    /// Balanced LIA (Peng et al., IEEE/ACM ToN 2016).
    case balia

    public static let names = allCases.map(\.rawValue)
}

public enum CoupledCongestionMath {
    /// RFC 6356 §3: α = cwnd_total · max_i(cwnd_i / rtt_i²) / (Σ_i cwnd_i / rtt_i)².
    public static func liaAlpha(_ subflows: [CoupledSubflow]) -> Double {
        let total = subflows.reduce(0.0) { $0 + Double($1.congestionWindow) }
        let best = subflows.map { Double($0.congestionWindow) / ($0.rtt * $0.rtt) }.max() ?? 0
        let sum = subflows.reduce(0.0) { $0 + Double($1.congestionWindow) / $1.rtt }
        return sum > 0 ? total * best / (sum * sum) : 1
    }

    /// RFC 6356 §3: for each ACK on subflow i acknowledging `acked` bytes,
    /// cwnd_i grows by min(α · acked · MSS_i / cwnd_total, acked · MSS_i / cwnd_i).
    public static func liaIncrease(_ subflows: [CoupledSubflow], index i: Int, acknowledgedBytes acked: Int) -> Double {
        let total = subflows.reduce(0.0) { $0 + Double($1.congestionWindow) }
        let s = subflows[i]
        let mss = Double(s.maximumSegmentSize), a = Double(acked)
        let coupled = liaAlpha(subflows) * a * mss / max(total, mss)
        let uncoupled = a * mss / max(Double(s.congestionWindow), mss)
        return min(coupled, uncoupled)
    }

    /// OLIA's α_r: moves window from the paths with the largest windows (M) to
    /// the best paths by ℓ_r²/rtt_r that are not among them (B \ M).
    public static func oliaAlpha(_ subflows: [CoupledSubflow], index r: Int) -> Double {
        let n = Double(subflows.count)
        let maxWindow = subflows.map(\.congestionWindow).max() ?? 0
        let quality = subflows.map { $0.bytesBetweenLosses * $0.bytesBetweenLosses / $0.rtt }
        let bestQuality = quality.max() ?? 0
        let inM = subflows.indices.filter { subflows[$0].congestionWindow == maxWindow }
        let inB = subflows.indices.filter { quality[$0] == bestQuality }
        let collected = inB.filter { !inM.contains($0) }
        guard !collected.isEmpty else { return 0 }
        if collected.contains(r) { return 1 / (n * Double(collected.count)) }
        if inM.contains(r) { return -1 / (n * Double(inM.count)) }
        return 0
    }

    /// OLIA, per ACK on subflow r (windows in segments w):
    /// Δw_r = (w_r/rtt_r²) / (Σ_p w_p/rtt_p)² + α_r / w_r per acknowledged segment.
    /// Returned in bytes; never shrinks the window below two segments.
    public static func oliaIncrease(_ subflows: [CoupledSubflow], index r: Int, acknowledgedBytes acked: Int) -> Double {
        let s = subflows[r]
        let w = max(s.windowSegments, 1)
        let sum = subflows.reduce(0.0) { $0 + max($1.windowSegments, 1) / $1.rtt }
        let perSegment = (w / (s.rtt * s.rtt)) / (sum * sum) + oliaAlpha(subflows, index: r) / w
        let mss = Double(s.maximumSegmentSize)
        let delta = perSegment * Double(acked) / mss * mss
        return max(delta, 2 * mss - Double(s.congestionWindow))
    }

    /// BALIA, per ACK on subflow r, with x_k = w_k / rtt_k and α_r = max_k x_k / x_r:
    /// Δw_r = x_r / (rtt_r (Σ_k x_k)²) · (1 + α_r)/2 · (4 + α_r)/5 per acknowledged segment.
    public static func baliaIncrease(_ subflows: [CoupledSubflow], index r: Int, acknowledgedBytes acked: Int) -> Double {
        let rates = subflows.map { max($0.windowSegments, 1) / $0.rtt }
        let s = subflows[r]
        let x = rates[r], sum = rates.reduce(0, +)
        let alpha = (rates.max() ?? x) / x
        let perSegment = x / (s.rtt * sum * sum) * (1 + alpha) / 2 * (4 + alpha) / 5
        let mss = Double(s.maximumSegmentSize)
        return perSegment * Double(acked) / mss * mss
    }

    /// BALIA's decrease on a loss: w_r ← w_r − (w_r / 2) · min(α_r, 1.5); returns the new window in bytes.
    public static func baliaWindowAfterLoss(_ subflows: [CoupledSubflow], index r: Int) -> Int {
        let rates = subflows.map { max($0.windowSegments, 1) / $0.rtt }
        let alpha = (rates.max() ?? rates[r]) / rates[r]
        let w = Double(subflows[r].congestionWindow)
        return max(Int(w - w / 2 * min(alpha, 1.5)), 2 * subflows[r].maximumSegmentSize)
    }
}

/// The congestion-avoidance increase of one subflow, coupled to the others.
/// The MPTCP layer refreshes `subflows` before handing the subflow an ACK;
/// the engine's own `congestionWindow` and MSS arguments override the
/// snapshot's entry for this subflow, so the value is never stale for it.
public struct CoupledSubflowIncrease: Hashable, Sendable {
    public var algorithm: CoupledAlgorithm
    public var subflows: [CoupledSubflow]
    public var index: Int

    public init(algorithm: CoupledAlgorithm, subflows: [CoupledSubflow], index: Int) {
        self.algorithm = algorithm; self.subflows = subflows; self.index = index
    }

    /// Bytes the window grows by for `acknowledgedBytes` newly acknowledged in congestion avoidance.
    public func congestionAvoidanceIncrease(acknowledgedBytes: Int, congestionWindow: Int, maximumSegmentSize: Int) -> Double {
        var all = subflows
        guard all.indices.contains(index) else {
            return Double(maximumSegmentSize) * Double(acknowledgedBytes) / Double(max(congestionWindow, maximumSegmentSize))
        }
        all[index].congestionWindow = congestionWindow
        all[index].maximumSegmentSize = maximumSegmentSize
        switch algorithm {
        case .uncoupled:
            return Double(maximumSegmentSize) * Double(acknowledgedBytes) / Double(max(congestionWindow, maximumSegmentSize))
        case .lia: return CoupledCongestionMath.liaIncrease(all, index: index, acknowledgedBytes: acknowledgedBytes)
        case .olia: return CoupledCongestionMath.oliaIncrease(all, index: index, acknowledgedBytes: acknowledgedBytes)
        case .balia: return CoupledCongestionMath.baliaIncrease(all, index: index, acknowledgedBytes: acknowledgedBytes)
        }
    }
}
