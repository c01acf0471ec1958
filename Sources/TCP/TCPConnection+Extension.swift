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
