import Core
import TCP

/// What a driver may observe of one subflow, for its event log (docs/LOGS.md
/// `subflow.state`, `subflow.join`, `subflow.progress`). Read-only: it
/// changes nothing in the connection.
public struct SubflowStatus: Hashable, Sendable {
    public var id: SubflowID
    public var tuple: TCPFourTuple
    /// Local and remote address ids (RFC 8684 §3.2).
    public var path: PathKey
    /// This side sent the SYN with MP_JOIN (an initial subflow is not a join).
    public var isJoinInitiator: Bool
    /// The handshake completed and data may flow (the connection reported it to its path manager).
    public var isEstablished: Bool
    /// Closed, reset, failed or removed by the path manager.
    public var isClosed: Bool
    public var isBackup: Bool
    /// Subflow-level bytes the peer acknowledged (TCP_INFO `bytes_acked`).
    public var bytesAcknowledged: Int
    /// Subflow-level bytes received in order (TCP_INFO `bytes_received`).
    public var bytesReceived: Int
}

extension MPTCPConnection {
    /// Every subflow the connection has had, by id.
    public var subflowStatuses: [SubflowStatus] {
        subflows.keys.sorted().map { id in
            let s = subflows[id]!
            var initiator = false
            if case .joinInitiator = s.options.handshake { initiator = true }
            return SubflowStatus(id: id, tuple: s.tcp.tuple, path: s.path, isJoinInitiator: initiator,
                                 isEstablished: s.reportedEstablished, isClosed: s.closed, isBackup: s.backup,
                                 bytesAcknowledged: max(0, s.written - s.tcp.unacknowledgedBytes), bytesReceived: s.consumed)
        }
    }

    /// How many subflows the connection has had (cheap: for drivers deciding whether to look closer).
    public var subflowCount: Int { subflows.count }

    /// Bytes written by the application and not yet acknowledged at the data level
    /// (a sender that keeps this bounded writes as fast as the connection drains).
    public var unacknowledgedWrittenBytes: Int { (sender?.bufferedBytes ?? 0) + pendingWrites.count }

    /// Whether the connection has keys (MP_CAPABLE completed) or fell back to plain TCP: the application may send.
    public var isEstablished: Bool { keys != nil || fallbackReason != nil }
}
