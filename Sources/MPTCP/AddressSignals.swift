import Core
import Wire

/// An address of one host with its MPTCP address id (RFC 8684 §3.4.1: ids
/// name addresses within a connection; id 0 is the initial subflow's).
public struct AnnouncedAddress: Hashable, Sendable, CustomStringConvertible {
    public var id: UInt8
    public var address: IPAddress
    public var port: UInt16?
    public init(id: UInt8, address: IPAddress, port: UInt16? = nil) { self.id = id; self.address = address; self.port = port }
    public var description: String { "#\(id) \(address)" + (port.map { ":\($0)" } ?? "") }
}

/// The address signalling of one connection (RFC 8684 §3.4; Linux
/// `pm.c`/`options.c`): ADD_ADDR with its HMAC, repeated until the peer
/// echoes it; REMOVE_ADDR; checking the peer's ADD_ADDR HMAC; MP_PRIO and
/// MP_FASTCLOSE. Pure: it returns options to send and events for the path
/// manager.
public struct AddressSignals: Sendable {
    public enum Event: Hashable, Sendable {
        case peerAddressAdded(AnnouncedAddress)
        case peerAddressRemoved(id: UInt8)
        /// The peer changed the priority of the subflow the option arrived on (§3.3.8).
        case peerPriorityChanged(backup: Bool)
        /// A valid MP_FASTCLOSE: reset every subflow and close now (§3.5).
        case fastClose
        /// The peer reset a subflow with this reason (§3.6).
        case peerReset(reason: ResetReason?, transient: Bool)
    }

    public struct Configuration: Hashable, Sendable {
        /// Interval between ADD_ADDR repeats until echoed. Linux's
        /// `net.mptcp.add_addr_timeout` is 120 s, much longer than a handover;
        /// a vehicle needs the peer to learn an address within an RTT or two.
        public var retransmissionInterval: Interval
        /// Repeats before giving up (Linux: ADD_ADDR_RETRANS_MAX = 3).
        public var maximumRetransmissions: Int
        public init(retransmissionInterval: Interval = .seconds(1), maximumRetransmissions: Int = 3) {
            self.retransmissionInterval = retransmissionInterval; self.maximumRetransmissions = maximumRetransmissions
        }
    }

    struct Pending: Hashable, Sendable {
        var address: AnnouncedAddress
        var deadline: Instant
        var retransmissions: Int
    }

    public let keys: ConnectionKeys
    public let configuration: Configuration
    private var pending: [Pending] = []
    /// Options waiting to ride on the next outgoing segment.
    public private(set) var queued: [MPTCPOption] = []
    /// Peer addresses learnt through valid ADD_ADDR options.
    public private(set) var peerAddresses: [UInt8: AnnouncedAddress] = [:]

    public init(keys: ConnectionKeys, configuration: Configuration = Configuration()) {
        self.keys = keys; self.configuration = configuration
    }

    public var nextDeadline: Instant { pending.map(\.deadline).min() ?? .distantFuture }
    /// Announcements not yet echoed.
    public var unechoed: [AnnouncedAddress] { pending.map(\.address) }

    /// The ADD_ADDR we send for `address`: HMAC with our key first (§3.4.1).
    public func addAddressOption(_ address: AnnouncedAddress) -> MPTCPOption {
        .addAddress(AddAddress(addressID: address.id, address: address.address, port: address.port,
                               truncatedHMAC: MPTCPCrypto.addAddressHMAC(senderKey: keys.localKey, receiverKey: keys.remoteKey,
                                                                         addressID: address.id, address: address.address,
                                                                         port: address.port)))
    }

    /// Announce a local address to the peer.
    public mutating func announce(_ address: AnnouncedAddress, now: Instant, counters: inout MPTCPCounters) {
        pending.removeAll { $0.address.id == address.id }
        pending.append(Pending(address: address, deadline: now + configuration.retransmissionInterval, retransmissions: 0))
        queued.append(addAddressOption(address))
        counters.addAddressesSent += 1
    }

    /// Withdraw local addresses (REMOVE_ADDR, §3.4.2).
    public mutating func withdraw(ids: [UInt8], counters: inout MPTCPCounters) {
        guard !ids.isEmpty else { return }
        pending.removeAll { ids.contains($0.address.id) }
        queued.append(.removeAddress(addressIDs: ids))
        counters.removeAddressesSent += 1
    }

    /// Change our priority on the subflow these options go out on (MP_PRIO, §3.3.8).
    public mutating func setPriority(backup: Bool, counters: inout MPTCPCounters) {
        queued.append(.priority(backup: backup, addressID: nil))
        counters.priorityChangesSent += 1
    }

    /// MP_FASTCLOSE carries the peer's key (§3.5).
    public func fastCloseOption(counters: inout MPTCPCounters) -> MPTCPOption {
        counters.fastClosesSent += 1
        return .fastClose(receiverKey: keys.remoteKey)
    }

    /// Takes the options queued for the next segment, as many as fit in `room` bytes.
    public mutating func takeQueued(room: Int) -> [MPTCPOption] {
        var out: [MPTCPOption] = [], left = room
        var rest: [MPTCPOption] = []
        for option in queued {
            if option.encodedLength <= left { out.append(option); left -= option.encodedLength } else { rest.append(option) }
        }
        queued = rest
        return out
    }

    /// Repeats unechoed ADD_ADDRs whose time has come; gives up after the limit.
    public mutating func advance(now: Instant, counters: inout MPTCPCounters) {
        for i in pending.indices.reversed() where now >= pending[i].deadline {
            if pending[i].retransmissions >= configuration.maximumRetransmissions {
                pending.remove(at: i)
                continue
            }
            pending[i].retransmissions += 1
            pending[i].deadline = now + configuration.retransmissionInterval
            queued.append(addAddressOption(pending[i].address))
            counters.addAddressRetransmissions += 1
        }
    }

    /// MPTCP options that arrived on any subflow. Returns what the path
    /// manager and connection must learn; queues echoes.
    public mutating func received(_ options: [MPTCPOption], counters: inout MPTCPCounters) -> [Event] {
        var events: [Event] = []
        for option in options {
            switch option {
            case let .addAddress(a) where a.echo:
                counters.addAddressEchoesReceived += 1
                pending.removeAll { $0.address.id == a.addressID && $0.address.address == a.address }
            case let .addAddress(a):
                counters.addAddressesReceived += 1
                // §3.4.1: the HMAC is keyed with the sender's key first. One that
                // does not verify MUST be ignored (and Linux counts it).
                let expected = MPTCPCrypto.addAddressHMAC(senderKey: keys.remoteKey, receiverKey: keys.localKey,
                                                          addressID: a.addressID, address: a.address, port: a.port)
                guard a.truncatedHMAC == expected else { counters.addAddressBadHMAC += 1; continue }
                // §3.4.1: the receiver echoes the option (without HMAC) so the sender stops repeating it.
                queued.append(.addAddress(AddAddress(echo: true, addressID: a.addressID, address: a.address, port: a.port)))
                let announced = AnnouncedAddress(id: a.addressID, address: a.address, port: a.port)
                if peerAddresses[a.addressID] != announced {
                    peerAddresses[a.addressID] = announced
                    events.append(.peerAddressAdded(announced))
                }
            case let .removeAddress(ids):
                counters.removeAddressesReceived += 1
                for id in ids {
                    peerAddresses[id] = nil
                    events.append(.peerAddressRemoved(id: id))
                }
            case let .priority(backup, _):
                counters.priorityChangesReceived += 1
                events.append(.peerPriorityChanged(backup: backup))
            case let .fastClose(key):
                // §3.5: only the right key closes the connection; anything else is ignored.
                guard key == keys.localKey else { counters.fastClosesBadKey += 1; continue }
                counters.fastClosesReceived += 1
                events.append(.fastClose)
            case let .reset(flags, reason):
                counters.resetsReceived += 1
                events.append(.peerReset(reason: ResetReason(rawValue: reason), transient: flags & 0x01 != 0))
            default:
                continue
            }
        }
        return events
    }
}

/// Reads MPTCP options without ever trapping. `Wire`'s strict list parser
/// rejects a whole header for one bad option; the connection level instead
/// skips a malformed kind-30 option (by its length byte), counts it, and
/// keeps the others, as Linux does (the option is ignored, MPTCP_MIB_*).
public enum MPTCPOptionReader {
    /// The MPTCP options of an already parsed segment.
    public static func options(of segment: TCPSegment) -> [MPTCPOption] {
        segment.options.compactMap { if case let .mptcp(m) = $0 { return m } else { return nil } }
    }

    /// The MPTCP options in raw TCP option bytes (the header after its
    /// 20 fixed bytes). Stops at end-of-list or at a length that cannot be
    /// walked past; every MPTCP option that fails to parse is counted.
    public static func options(inRawOptions bytes: ArraySlice<UInt8>, counters: inout MPTCPCounters) -> [MPTCPOption] {
        var out: [MPTCPOption] = []
        var rest = bytes
        while let kind = rest.first {
            if kind == TCPOption.Kind.endOfList { break }
            if kind == TCPOption.Kind.noOperation { rest = rest.dropFirst(); continue }
            guard rest.count >= 2 else { if kind == TCPOption.Kind.mptcp { counters.malformedOptions += 1 }; break }
            let length = Int(rest[rest.startIndex + 1])
            guard length >= 2, length <= rest.count else {
                if kind == TCPOption.Kind.mptcp { counters.malformedOptions += 1 }
                break
            }
            if kind == TCPOption.Kind.mptcp {
                if let option = try? MPTCPOption.parse(rest.prefix(length)) { out.append(option) }
                else { counters.malformedOptions += 1 }
            }
            rest = rest.dropFirst(length)
        }
        return out
    }
}
