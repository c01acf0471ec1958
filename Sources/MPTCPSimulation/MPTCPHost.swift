import Core
import Crypto
import MPTCP
import Simulation
import TCP
import TCPSimulation
import Wire

/// What the application on one MPTCP connection does.
public enum MPTCPApplication: Sendable, Hashable {
    /// Connects at `start`, writes `bytes` of a seeded pseudorandom stream, closes.
    case bulkSender(bytes: Int, start: Instant)
    /// Connects at `start`, writes one message of `messageBytes` every
    /// `interval` from `start` until `end`, then closes.
    case constantBitRate(messageBytes: Int, interval: Interval, start: Instant, end: Instant)
    /// Accepts on the listening port, reads everything at once, closes after the peer's DATA_FIN.
    case sink
}

/// One MPTCP connection on a simulated host with its application's record.
public struct MPTCPEndpoint {
    public let application: MPTCPApplication
    public internal(set) var connection: MPTCPConnection?
    public let localPort: UInt16
    public let remote: NodeAddress
    public let remotePort: UInt16
    var generator: PayloadGenerator
    var hasher = SHA256()
    var started = false
    var closed = false
    var nextMessage: Instant?
    /// When this side opens the connection although its application only
    /// reads (`sink`): the vehicle opens, the server sends (downlink).
    var opensAt: Instant?
    /// The last instant the connection was polled, so that a deadline already
    /// due is reported just after it instead of spinning the network in place.
    var lastService = Instant.zero
    public internal(set) var bytesWritten = 0
    public internal(set) var bytesRead = 0
    /// SHA-256 of everything written (sender, once closed) or read (sink, at DATA_FIN).
    public internal(set) var digest: [UInt8]?
    /// When each message was written (constant bit rate).
    public internal(set) var messageWrites: [Instant] = []
    /// (instant, cumulative bytes read) after every read that returned bytes.
    public internal(set) var progress: [(Instant, Int)] = []
    /// Sink: when the peer's DATA_FIN arrived with every byte read.
    public internal(set) var finishedAt: Instant?
    /// Why the connection ended, in order (`MPTCPAction.closed`).
    public internal(set) var closedReasons: [String] = []

    /// Instants at which each complete message of `messageBytes` was read.
    public func messageArrivals(messageBytes: Int) -> [Instant] {
        var out: [Instant] = []
        for (t, total) in progress { while (out.count + 1) * messageBytes <= total { out.append(t) } }
        return out
    }

    /// The longest time between two consecutive reads at or after `from`
    /// (the first read counted is the first at or after `from`).
    public func largestDeliveryGap(from: Instant) -> Interval {
        var gap = Interval.zero
        var last: Instant?
        for (t, _) in progress where t >= from {
            if let last { gap = max(gap, t - last) }
            last = t
        }
        return gap
    }

}

/// A simulated multi-homed host running MPTCP connections over the pure
/// `MPTCPConnection`: segments are routed by four-tuple to a connection's
/// subflow, MP_JOIN SYNs to the connection whose token they name, other SYNs
/// for a listening port to a new connection; carrier changes of the host's
/// interfaces become local address events for the path managers.
///
/// Interface `i` carries `addresses[i]`, which is local address id `i`.
public struct MPTCPHost: SimulatedHost {
    public let addresses: [NodeAddress]
    public let configuration: MPTCPConfiguration
    /// Interfaces whose address joins as backup (MP_JOIN backup flag).
    public var backupInterfaces: Set<Int> = []
    /// When set, a bulk sender keeps at most this many written bytes not yet
    /// acknowledged at the data level, writing more as acknowledgments free
    /// room (a sender that runs until stopped); nil writes the whole stream at once.
    public var bulkWriteAhead: Int?
    public internal(set) var endpoints: [MPTCPEndpoint] = []
    /// Listening ports and the application accepted connections run.
    var listeners: [UInt16: MPTCPApplication] = [:]
    public internal(set) var carrier: [Bool]
    var outgoing: [SimulatedPacket] = []
    let seed: UInt64
    var connectionsMade: UInt64 = 0
    public internal(set) var segmentsIn = 0
    public internal(set) var segmentsOut = 0
    /// A SYN without MP_CAPABLE to a listening port runs as plain TCP
    /// (RFC 8684 §3.7, passive fallback); false refuses it with RST.
    public var acceptsPlainTCP = true
    /// Accepted connections announce the host's other addresses (ADD_ADDR,
    /// RFC 8684 §3.4.1) so the peer can join to them.
    public var announcesAddresses = false
    /// SYNs without MP_CAPABLE to a listening port refused with RST (`acceptsPlainTCP` off).
    public internal(set) var plainSYNsRefused = 0
    /// SYNs without MP_CAPABLE accepted as plain TCP.
    public internal(set) var plainTCPAccepted = 0
    /// Segments matching no connection, answered as CLOSED does.
    public internal(set) var segmentsWithoutConnection = 0

    public init(addresses: [NodeAddress], configuration: MPTCPConfiguration, seed: UInt64) {
        self.addresses = addresses; self.configuration = configuration; self.seed = seed
        carrier = addresses.map { _ in true }
    }

    /// A connection from interface 0's address to `remote`, run by `application`.
    /// A `sink` opens at `opensAt` (required for it: a sink otherwise only accepts).
    public mutating func addConnection(localPort: UInt16, remote: NodeAddress, remotePort: UInt16,
                                       application: MPTCPApplication, opensAt: Instant? = nil) {
        let payloadSeed = seed &+ UInt64(localPort) &* 31 &+ UInt64(remotePort)
        var e = MPTCPEndpoint(application: application, localPort: localPort, remote: remote,
                              remotePort: remotePort, generator: PayloadGenerator(seed: payloadSeed))
        e.opensAt = opensAt
        endpoints.append(e)
    }

    /// Accept MPTCP connections on `port`, each running `application`.
    public mutating func listen(port: UInt16, application: MPTCPApplication = .sink) {
        listeners[port] = application
    }

    // MARK: SimulatedHost

    public var nextDeadline: Instant {
        var t = Instant.distantFuture
        for e in endpoints {
            switch e.application {
            case .bulkSender(_, let start) where !e.started: t = min(t, start)
            case .constantBitRate(_, _, let start, _) where !e.started: t = min(t, start)
            case .sink where !e.started: if let at = e.opensAt { t = min(t, at) }
            default: break
            }
            if let m = e.nextMessage { t = min(t, m) }
            if let c = e.connection, !c.isClosed {
                t = min(t, max(c.nextDeadline, e.lastService + .microseconds(1)))
            }
        }
        return t
    }

    public mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant) {
        guard case .tcp(let segment) = packet.payload else { return }
        segmentsIn += 1
        let seen = TCPFourTuple(localAddress: packet.destination.bytes, localPort: segment.destinationPort,
                                remoteAddress: packet.source.bytes, remotePort: segment.sourcePort)
        for i in endpoints.indices {
            guard let id = endpoints[i].connection?.subflow(for: seen) else { continue }
            let actions = endpoints[i].connection!.handle(segment, on: id, now: now)
            perform(actions, endpoint: i, now: now)
            runApplication(i, now: now)
            return
        }
        if segment.flags == .syn {
            let options = MPTCPOptionReader.options(of: segment)
            for case let .join(.syn(_, _, token, _)) in options {
                // RFC 8684 §3.2: the token names the connection; an unknown one is refused inside acceptJoin.
                let i = endpoints.firstIndex { $0.connection?.token == token && $0.connection?.isClosed == false }
                    // No such token: any connection refuses it with RST and counts it.
                    ?? endpoints.firstIndex { $0.connection != nil && $0.connection?.isClosed == false }
                if let i {
                    perform(endpoints[i].connection!.acceptJoin(syn: segment, tuple: seen, now: now), endpoint: i, now: now)
                    runApplication(i, now: now)
                } else if let rst = TCPConnection.resetReply(to: segment) {
                    send(rst, tuple: seen)
                }
                return
            }
            if let application = listeners[segment.destinationPort] {
                connectionsMade += 1
                var accepted = configuration
                if announcesAddresses {
                    accepted.announcedAddresses += addresses.indices.filter { addresses[$0] != packet.destination && carrier[$0] }
                        .map { AnnouncedAddress(id: UInt8($0), address: .v4(addresses[$0])) }
                }
                let connectionSeed = seed &+ connectionsMade &* 7_919
                var opened = MPTCPConnection.accept(syn: segment, tuple: seen, configuration: accepted, seed: connectionSeed, now: now)
                if opened == nil && acceptsPlainTCP {
                    opened = MPTCPConnection.acceptPlainTCP(syn: segment, tuple: seen, configuration: accepted, seed: connectionSeed, now: now)
                    if opened != nil { plainTCPAccepted += 1 }
                }
                if let (c, actions) = opened {
                    var e = MPTCPEndpoint(application: application, localPort: segment.destinationPort, remote: packet.source,
                                          remotePort: segment.sourcePort, generator: PayloadGenerator(seed: seed &+ connectionsMade))
                    e.connection = c
                    e.started = true
                    // An accepted sender starts when the connection does.
                    if case .constantBitRate(_, _, let start, _) = application { e.nextMessage = max(start, now) }
                    endpoints.append(e)
                    perform(actions, endpoint: endpoints.count - 1, now: now)
                    return
                }
                plainSYNsRefused += 1
            }
        }
        segmentsWithoutConnection += 1
        // RFC 9293 §3.10.7.1: no connection here, answer as CLOSED does.
        if let rst = TCPConnection.resetReply(to: segment) { send(rst, tuple: seen) }
    }

    public mutating func advance(now: Instant) {
        for i in endpoints.indices {
            if !endpoints[i].started {
                switch endpoints[i].application {
                case .bulkSender(_, let start), .constantBitRate(_, _, let start, _):
                    if start <= now { open(i, now: now) }
                case .sink:
                    if let at = endpoints[i].opensAt, at <= now { open(i, now: now) }
                }
            }
            runApplication(i, now: now)
        }
    }

    public mutating func carrierChanged(interface: Int, up: Bool, now: Instant) {
        guard interface < carrier.count, carrier[interface] != up else { return }
        carrier[interface] = up
        let event = addressEvent(interface: interface, up: up)
        for i in endpoints.indices where endpoints[i].connection?.isClosed == false {
            let actions = endpoints[i].connection!.localAddress(event, address: addresses[interface].bytes, now: now)
            endpoints[i].lastService = now
            perform(actions, endpoint: i, now: now)
        }
    }

    public mutating func takeOutgoing(now: Instant) -> [SimulatedPacket] {
        defer { outgoing.removeAll(keepingCapacity: true) }
        return outgoing
    }

    // MARK: Internals

    func addressEvent(interface: Int, up: Bool) -> PathEvent {
        up ? .localAddressUp(AnnouncedAddress(id: UInt8(interface), address: .v4(addresses[interface])),
                             backup: backupInterfaces.contains(interface))
           : .localAddressDown(id: UInt8(interface))
    }

    mutating func open(_ i: Int, now: Instant) {
        endpoints[i].started = true
        connectionsMade += 1
        let e = endpoints[i]
        let tuple = TCPFourTuple(localAddress: addresses[0].bytes, localPort: e.localPort,
                                 remoteAddress: e.remote.bytes, remotePort: e.remotePort)
        let (c, actions) = MPTCPConnection.connect(tuple: tuple, configuration: configuration,
                                                   seed: seed &+ connectionsMade &* 7_919, now: now)
        endpoints[i].connection = c
        if case .constantBitRate(_, _, let start, _) = e.application { endpoints[i].nextMessage = start }
        perform(actions, endpoint: i, now: now)
        // The path manager learns of every other address that has carrier now.
        for interface in addresses.indices.dropFirst() where carrier[interface] {
            perform(endpoints[i].connection!.localAddress(addressEvent(interface: interface, up: true),
                                                          address: addresses[interface].bytes, now: now),
                    endpoint: i, now: now)
        }
    }

    mutating func send(_ segment: TCPSegment, tuple: TCPFourTuple) {
        guard let from = IPv4Address(bytes: tuple.localAddress), let to = IPv4Address(bytes: tuple.remoteAddress) else { return }
        segmentsOut += 1
        outgoing.append(.tcp(segment, from: from, to: to))
    }

    mutating func perform(_ actions: [MPTCPAction], endpoint i: Int, now: Instant) {
        for action in actions {
            switch action {
            case let .send(segment, tuple): send(segment, tuple: tuple)
            case let .closed(reason): endpoints[i].closedReasons.append(reason)
            }
        }
    }

    /// The application's turn, then the connection's timers.
    mutating func runApplication(_ i: Int, now: Instant) {
        guard endpoints[i].connection != nil else { return }
        var wrote = false
        switch endpoints[i].application {
        case .bulkSender(let total, _):
            // The data level keeps what it was given until data-acknowledged; written whole.
            while endpoints[i].bytesWritten < total {
                if let ahead = bulkWriteAhead, endpoints[i].connection!.unacknowledgedWrittenBytes >= ahead { break }
                let n = min(65_536, total - endpoints[i].bytesWritten)
                let chunk = endpoints[i].generator.next(n)
                endpoints[i].hasher.update(data: chunk)
                endpoints[i].connection!.write(chunk)
                endpoints[i].bytesWritten += n
                wrote = true
            }
            if endpoints[i].bytesWritten >= total && !endpoints[i].closed { finishWriting(i) ; wrote = true }
        case .constantBitRate(let size, let interval, _, let end):
            while let m = endpoints[i].nextMessage, m <= now {
                if m >= end {
                    endpoints[i].nextMessage = nil
                    if !endpoints[i].closed { finishWriting(i) }
                    break
                }
                let message = endpoints[i].generator.next(size)
                endpoints[i].hasher.update(data: message)
                endpoints[i].connection!.write(message)
                endpoints[i].bytesWritten += size
                endpoints[i].messageWrites.append(m)
                endpoints[i].nextMessage = m + interval
                wrote = true
            }
        case .sink:
            if endpoints[i].connection!.readableBytes > 0 {
                let data = endpoints[i].connection!.read()
                endpoints[i].hasher.update(data: data)
                endpoints[i].bytesRead += data.count
                endpoints[i].progress.append((now, endpoints[i].bytesRead))
            }
            if endpoints[i].connection!.peerClosed && endpoints[i].connection!.readableBytes == 0 && !endpoints[i].closed {
                endpoints[i].closed = true
                endpoints[i].digest = Array(endpoints[i].hasher.finalize())
                endpoints[i].finishedAt = now
                endpoints[i].connection!.close()
                wrote = true
            }
        }
        if wrote || endpoints[i].connection!.nextDeadline <= now {
            endpoints[i].lastService = now
            perform(endpoints[i].connection!.poll(now: now), endpoint: i, now: now)
            // Reading may have opened the window; what arrived during the poll is read at once.
            if case .sink = endpoints[i].application, endpoints[i].connection!.readableBytes > 0 { runApplication(i, now: now) }
        }
    }

    mutating func finishWriting(_ i: Int) {
        endpoints[i].closed = true
        endpoints[i].digest = Array(endpoints[i].hasher.finalize())
        endpoints[i].connection!.close()
    }
}

