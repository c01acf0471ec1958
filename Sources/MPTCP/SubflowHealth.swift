import Core

/// Decides when a subflow has gone quiet (Linux `mptcp_subflow_active`,
/// `stale_loss_cnt`). Linux marks a subflow stale after `stale_loss_cnt` (4)
/// retransmission timeouts; with RTO backoff that is seconds (BASELINES.md,
/// lesson 3). Here a subflow with data in flight is *suspect* after about an
/// RTT of silence beyond its RTT and *stale* after `staleAfterRTOs` timeouts
/// or after `staleAfterSilence` RTTs of silence, whichever comes first.
public struct StaleDetector: Hashable, Sendable {
    public var suspectAfterRTTs: Double
    public var staleAfterSilenceRTTs: Double
    public var staleAfterRTOs: Int
    /// Never declare anything on less silence than this (RTT estimates of a
    /// few hundred microseconds in namespaces would otherwise flap).
    public var minimumSilence: Interval
    /// Added to every silence threshold: a receiver may hold its ACK this
    /// long (RFC 9293 §3.8.6.3 delayed ACK; Linux's minimum is 40 ms), so a
    /// lone segment in flight is silent for RTT + this without anything wrong.
    public var acknowledgmentDelayAllowance: Interval

    public init(suspectAfterRTTs: Double = 2, staleAfterSilenceRTTs: Double = 4, staleAfterRTOs: Int = 2,
                minimumSilence: Interval = .milliseconds(20), acknowledgmentDelayAllowance: Interval = .milliseconds(40)) {
        self.suspectAfterRTTs = suspectAfterRTTs; self.staleAfterSilenceRTTs = staleAfterSilenceRTTs
        self.staleAfterRTOs = staleAfterRTOs; self.minimumSilence = minimumSilence
        self.acknowledgmentDelayAllowance = acknowledgmentDelayAllowance
    }

    public enum Verdict: Hashable, Sendable { case healthy, suspect, stale }

    /// `lastProgress`: when an ACK last acknowledged new data on the subflow
    /// (or when data was first put in flight after an idle period).
    public func verdict(now: Instant, bytesInFlight: Int, lastProgress: Instant, smoothedRTT: Interval?,
                        timeoutsWithoutProgress: Int) -> Verdict {
        guard bytesInFlight > 0 else { return .healthy }
        if timeoutsWithoutProgress >= staleAfterRTOs { return .stale }
        let rtt = smoothedRTT ?? .milliseconds(100)
        let silence = now - lastProgress
        if silence >= max(minimumSilence, rtt * staleAfterSilenceRTTs) + acknowledgmentDelayAllowance { return .stale }
        if silence >= max(minimumSilence, rtt * suspectAfterRTTs) + acknowledgmentDelayAllowance { return .suspect }
        return .healthy
    }

    /// When the verdict can next change for a subflow with data in flight.
    public func nextDeadline(bytesInFlight: Int, lastProgress: Instant, smoothedRTT: Interval?, now: Instant) -> Instant {
        guard bytesInFlight > 0 else { return .distantFuture }
        let rtt = smoothedRTT ?? .milliseconds(100)
        let suspect = lastProgress + max(minimumSilence, rtt * suspectAfterRTTs) + acknowledgmentDelayAllowance
        let stale = lastProgress + max(minimumSilence, rtt * staleAfterSilenceRTTs) + acknowledgmentDelayAllowance
        return suspect > now ? suspect : (stale > now ? stale : .distantFuture)
    }
}

/// Make-after-break (issue 4): the connection lives on with no subflow at
/// all for up to `timeout` (Linux's default MPTCP idle close is 60 s) and
/// resumes when a path returns; only then does it give up.
public struct OutageClock: Hashable, Sendable {
    public let timeout: Interval
    /// When the current outage began, if there is one.
    public private(set) var outageSince: Instant?
    public private(set) var expired = false

    public init(timeout: Interval = .seconds(60)) { self.timeout = timeout }

    /// Tell the clock how many subflows can carry data right now.
    public mutating func update(usableSubflows: Int, now: Instant, counters: inout MPTCPCounters) {
        if usableSubflows > 0 { outageSince = nil; return }
        if outageSince == nil && !expired {
            outageSince = now
            counters.outagesStarted += 1
        }
    }

    public var nextDeadline: Instant { outageSince.map { $0 + timeout } ?? .distantFuture }

    /// True once, when the outage outlived the timeout: close the connection.
    public mutating func advance(now: Instant, counters: inout MPTCPCounters) -> Bool {
        guard let since = outageSince, !expired, now >= since + timeout else { return false }
        expired = true
        outageSince = nil
        counters.outageTimeouts += 1
        return true
    }
}
