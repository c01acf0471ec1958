import Core
import TCP

/// One subflow as a driver sees it: enough for MPTCP_INFO/TCP_INFO-style
/// reports and for logging state changes by comparing two snapshots.
public struct MPTCPSubflowSnapshot: Hashable, Sendable {
    public var id: SubflowID
    public var tuple: TCPFourTuple
    public var state: TCPState
    /// Local and remote address ids of the path (RFC 8684 §3.4).
    public var localAddressID: UInt8
    public var remoteAddressID: UInt8
    public var backup: Bool
    /// The subflow finished its handshake and may carry data.
    public var established: Bool
    /// The connection stopped using the subflow (reset, failed, replaced).
    public var closed: Bool
    public var stale: Bool
    public var closeReason: TCPCloseReason?
    public var smoothedRTT: Interval?
    public var congestionWindow: Int
    /// Payload bytes the peer acknowledged on this subflow (TCP_INFO `bytes_acked`).
    public var bytesAcknowledged: Int
    /// Payload bytes received in order on this subflow (TCP_INFO `bytes_received`).
    public var bytesReceived: Int
    public var counters: TCPCounters
}

extension MPTCPConnection {
    /// Every subflow the connection has had, by id.
    public var subflowSnapshots: [MPTCPSubflowSnapshot] {
        subflows.keys.sorted().map { id in
            let s = subflows[id]!
            return MPTCPSubflowSnapshot(
                id: id, tuple: s.tcp.tuple, state: s.tcp.state, localAddressID: s.path.localID,
                remoteAddressID: s.path.remoteID, backup: s.backup, established: s.reportedEstablished,
                closed: s.closed, stale: s.health == .stale, closeReason: s.tcp.closeReason,
                smoothedRTT: s.tcp.smoothedRTT, congestionWindow: s.tcp.congestionWindow,
                bytesAcknowledged: s.written - s.tcp.unacknowledgedBytes, bytesReceived: s.consumed,
                counters: s.tcp.counters)
        }
    }

    /// Bytes written by the application and not yet acknowledged at the data
    /// level (what a driver bounds to give writers backpressure).
    public var queuedSendBytes: Int { (sender?.bufferedBytes ?? 0) + pendingWrites.count }

    /// Where the ports of subflows this connection opens start (each join
    /// takes the next one). A host running several connections gives each its
    /// own range so their joins to one peer never share a four-tuple.
    public mutating func setJoinPorts(startingAt port: UInt16) {
        nextPort = port &- 1
    }
}

extension MPTCPConnection {
    /// ABORT for the whole connection: every open subflow sends RST and stops.
    public mutating func abortSubflows(now: Instant) -> [MPTCPAction] { abortAll(now: now) }
}
