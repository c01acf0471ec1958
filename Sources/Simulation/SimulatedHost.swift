import Core

/// What the simulator drives on a host: a TCP endpoint, an MPTCP stack, a
/// traffic source, anything pure and clock-injected.
///
/// The network calls in only with the virtual clock's `now`, never earlier
/// than a previous call:
/// 1. `receive(_:on:now:)` when a packet addressed to one of the host's
///    addresses arrives on one of its interfaces;
/// 2. `advance(now:)` when `now` reaches `nextDeadline` (timers: RTO,
///    delayed ACK, a sender's next packet);
/// 3. `carrierChanged(interface:up:now:)` when an interface gains or loses
///    carrier (coverage lost as `carrier`);
/// and after each of these, and after a test touched the host through
/// `Network.withHost`, it asks `takeOutgoing(now:)` for the packets to send.
/// Each outgoing packet leaves by the interface that owns its source address
/// (source routing, as a multi-homed MPTCP host does), or else by the host's
/// route to its destination.
///
/// A host may be a struct (the network keeps it and hands it back through
/// `Network.withHost`) or a class.
public protocol SimulatedHost {
    mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant)
    /// Packets to send now, in order. Called often; return `[]` when there are none.
    mutating func takeOutgoing(now: Instant) -> [SimulatedPacket]
    /// When the host next needs `advance(now:)`; `Instant.distantFuture` when idle.
    var nextDeadline: Instant { get }
    mutating func advance(now: Instant)
    mutating func carrierChanged(interface: Int, up: Bool, now: Instant)
}

extension SimulatedHost {
    public mutating func carrierChanged(interface: Int, up: Bool, now: Instant) {}
}

/// A host that sends a fixed-size packet every `interval` from `start` until
/// `count` packets are out, each numbered in its first 8 bytes (big-endian)
/// so a receiver can count losses, duplicates and reordering.
public struct PacketSource: SimulatedHost {
    public var source: NodeAddress
    public var destination: NodeAddress
    public var packetBytes: Int
    public var interval: Interval
    public var count: Int
    public private(set) var sent = 0
    @usableFromInline var nextSend: Instant
    @usableFromInline var pending: [SimulatedPacket] = []

    /// - Parameter packetBytes: bytes after the IP header (at least 8).
    public init(from source: NodeAddress, to destination: NodeAddress, packetBytes: Int = 1480,
                interval: Interval, count: Int, start: Instant = .zero) {
        self.source = source; self.destination = destination
        self.packetBytes = max(8, packetBytes); self.interval = interval; self.count = count
        self.nextSend = start
    }

    public mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant) {}

    public mutating func takeOutgoing(now: Instant) -> [SimulatedPacket] {
        defer { pending.removeAll() }
        return pending
    }

    public var nextDeadline: Instant { sent < count ? nextSend : .distantFuture }

    public mutating func advance(now: Instant) {
        while sent < count && nextSend <= now {
            var bytes = [UInt8](repeating: 0, count: packetBytes)
            let n = UInt64(sent)
            for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: n >> (56 - 8 * UInt64(i))) }
            // 253: RFC 3692 experimental protocol number.
            pending.append(SimulatedPacket(source: source, destination: destination,
                                           payload: .raw(protocolNumber: 253, bytes: bytes)))
            sent += 1
            nextSend += interval
        }
    }
}

/// A host that records what reaches it: arrival time, interface, sender and
/// the sequence number `PacketSource` wrote.
public struct PacketSink: SimulatedHost {
    public struct Arrival: Hashable, Sendable {
        public var at: Instant
        public var interface: Int
        public var source: NodeAddress
        public var destination: NodeAddress
        /// The number in the first 8 bytes of a raw payload (`nil` for TCP).
        public var number: UInt64?
        public var bytes: Int
    }
    public private(set) var arrivals: [Arrival] = []

    public init() {}

    public mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant) {
        var number: UInt64?
        if case .raw(_, let bytes) = packet.payload, bytes.count >= 8 {
            number = bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
        }
        arrivals.append(Arrival(at: now, interface: interface, source: packet.source,
                                destination: packet.destination, number: number, bytes: packet.byteCount))
    }

    public mutating func takeOutgoing(now: Instant) -> [SimulatedPacket] { [] }
    public var nextDeadline: Instant { .distantFuture }
    public mutating func advance(now: Instant) {}
}
