import Core
import Wire

extension TCPConnection {
    /// Sends a pure ACK now, so that options an extension queued go out
    /// without waiting for data: MPTCP's fourth ACK of a join (RFC 8684
    /// §3.2), ADD_ADDR and its echo, a DATA_FIN alone. Nothing in states
    /// without an ACK to send.
    public mutating func sendAcknowledgment(now: Instant) -> [TCPAction] {
        guard state.isSynchronized, state != .timeWait else { return [] }
        var actions: [TCPAction] = []
        sendAcknowledgment(now: now, into: &actions)
        return actions
    }
}

extension TCPConnection {
    /// Bytes queued with `send` that were never transmitted. MPTCP hands a
    /// subflow its next chunk only when this is zero, so that no segment
    /// carries the tail of one DSS mapping and the head of another.
    public var unsentBytes: Int {
        let end = sendBufferStart + sendBuffer.count
        return max(0, end - sndNxt)
    }
}

extension TCPConnection {
    /// The peer's window scale shift (RFC 7323 §2.3): MPTCP scales the window
    /// of a segment carrying a data ACK with it (RFC 8684 §3.3.5).
    public var sendWindowShift: UInt8 { sndShift }
    /// Our own window scale shift, applied to every window field we send.
    public var receiveWindowShift: UInt8 { rcvShift }

    /// Sends a segment with SEG.SEQ = SND.UNA − 1 and no data, which the peer
    /// must answer with an ACK carrying its current window (RFC 9293
    /// §3.8.6.1). MPTCP uses it as a data-level zero-window probe.
    public mutating func sendWindowProbe(now: Instant) -> [TCPAction] {
        guard state == .established || state == .closeWait else { return [] }
        var actions: [TCPAction] = []
        let probe = makeSegment(sequence: sndUna - 1, flags: .ack, payload: [], now: now, purpose: .windowProbe)
        counters.zeroWindowProbesSent += 1
        send(probe, into: &actions)
        return actions
    }
}
