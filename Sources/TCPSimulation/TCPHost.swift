import Core
import Crypto
import Simulation
import TCP
import Wire

/// The byte stream a bulk sender writes: pseudorandom, reproducible from a seed,
/// so a receiver's SHA-256 can be compared with the sender's.
public struct PayloadGenerator: Sendable {
    var random: SeededRandom
    public init(seed: UInt64) { random = SeededRandom(seed: seed, stream: "tcp.payload") }

    public mutating func next(_ count: Int) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(count + 8)
        while out.count < count {
            let word = random.next()
            for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: word >> (8 * UInt64(i)))) }
        }
        out.removeLast(out.count - count)
        return out
    }
}

/// When a receiving application reads.
public enum ReaderSchedule: Sendable, Hashable {
    /// Reads everything as soon as it arrives.
    case immediate
    /// Reads nothing between `from` and `to` (the receive buffer fills, the
    /// window closes), then everything again.
    case paused(from: Instant, to: Instant)
}

/// One TCP connection on a simulated host, with its application.
public struct TCPFlow {
    public enum Role: Sendable, Hashable {
        /// Connects at `start`, writes `bytes` (nil: without end) and closes.
        case bulkSender(bytes: Int?, start: Instant)
        /// Listens, reads per `reader`, and closes once the peer has.
        case sink(reader: ReaderSchedule)
    }

    public internal(set) var connection: TCPConnection
    public let role: Role
    public let remote: NodeAddress
    var generator: PayloadGenerator
    var hasher = SHA256()
    var started = false
    var closed = false
    public internal(set) var bytesWritten = 0
    public internal(set) var bytesRead = 0
    /// SHA-256 of everything written (sender, once all is queued) or read (sink, at FIN).
    public internal(set) var digest: [UInt8]?
    public internal(set) var establishedAt: Instant?
    public internal(set) var finishedAt: Instant?
    /// (instant, cumulative bytes read) after every read: the goodput series.
    public internal(set) var progress: [(Instant, Int)] = []

    public init(connection: TCPConnection, role: Role, remote: NodeAddress, payloadSeed: UInt64) {
        self.connection = connection; self.role = role; self.remote = remote
        self.generator = PayloadGenerator(seed: payloadSeed)
    }

    /// Bytes read in `[from, to]`, from the progress series.
    public func bytesRead(from: Instant, to: Instant) -> Int {
        func at(_ t: Instant) -> Int {
            var lo = 0, hi = progress.count
            while lo < hi { let mid = (lo + hi) / 2; if progress[mid].0 <= t { lo = mid + 1 } else { hi = mid } }
            return lo == 0 ? 0 : progress[lo - 1].1
        }
        return at(to) - at(from)
    }
}

/// A simulated host running TCP flows over the pure engine: segments in,
/// segments out, timers at `nextDeadline`.
public struct TCPHost: SimulatedHost {
    public let address: NodeAddress
    public internal(set) var flows: [TCPFlow] = []
    var outgoing: [SimulatedPacket] = []
    /// Segments handed to the engine and segments it produced.
    public internal(set) var segmentsIn = 0
    public internal(set) var segmentsOut = 0

    public init(address: NodeAddress) { self.address = address }

    /// Adds a flow; the sink's connection listens at once.
    public mutating func addFlow(localPort: UInt16, remote: NodeAddress, remotePort: UInt16, role: TCPFlow.Role,
                                 configuration: TCPConfiguration, seed: UInt64) {
        let tuple = TCPFourTuple(localAddress: address.bytes, localPort: localPort,
                                 remoteAddress: remote.bytes, remotePort: remotePort)
        var connection = TCPConnection(tuple: tuple, configuration: configuration,
                                       isnGenerator: InitialSequenceNumberGenerator(seed: seed ^ UInt64(localPort)))
        if case .sink = role { connection.listen() }
        flows.append(TCPFlow(connection: connection, role: role, remote: remote, payloadSeed: seed &+ UInt64(remotePort) &+ UInt64(localPort)))
    }

    public var nextDeadline: Instant {
        var t = Instant.distantFuture
        for f in flows {
            t = min(t, f.connection.nextDeadline)
            switch f.role {
            case .bulkSender(_, let start) where !f.started: t = min(t, start)
            case .sink(.paused(_, let to)) where f.connection.receivableBytes > 0: t = min(t, to)
            default: break
            }
        }
        return t
    }

    public mutating func receive(_ packet: SimulatedPacket, on interface: Int, now: Instant) {
        guard case .tcp(let segment) = packet.payload else { return }
        segmentsIn += 1
        guard let i = flows.firstIndex(where: {
            $0.connection.tuple.localPort == segment.destinationPort && $0.connection.tuple.remotePort == segment.sourcePort
                && $0.remote == packet.source
        }) else {
            // RFC 9293 §3.10.7.1: no connection here, answer as CLOSED does.
            if let rst = TCPConnection.resetReply(to: segment) { emit(.send(rst), to: packet.source) }
            return
        }
        let actions = flows[i].connection.handle(segment, now: now)
        collect(actions, flow: i)
        runApplication(i, now: now)
    }

    public mutating func advance(now: Instant) {
        for i in flows.indices {
            if case .bulkSender(_, let start) = flows[i].role, !flows[i].started, start <= now {
                flows[i].started = true
                collect(flows[i].connection.connect(now: now), flow: i)
            }
            if flows[i].connection.nextDeadline <= now {
                collect(flows[i].connection.poll(now: now), flow: i)
            }
            runApplication(i, now: now)
        }
    }

    public mutating func takeOutgoing(now: Instant) -> [SimulatedPacket] {
        defer { outgoing.removeAll(keepingCapacity: true) }
        return outgoing
    }

    mutating func emit(_ action: TCPAction, to remote: NodeAddress) {
        if case .send(let s) = action {
            segmentsOut += 1
            outgoing.append(.tcp(s, from: address, to: remote))
        }
    }

    mutating func collect(_ actions: [TCPAction], flow i: Int) {
        for a in actions { emit(a, to: flows[i].remote) }
    }

    /// The application's turn (in place: copying a flow out would copy its buffers).
    mutating func runApplication(_ i: Int, now: Instant) {
        let actions = flows[i].runApplication(now: now)
        collect(actions, flow: i)
    }
}

extension TCPFlow {
    /// Writes what fits, reads what may be read, closes when done; returns what the connection then sends.
    mutating func runApplication(now: Instant) -> [TCPAction] {
        let state = connection.state
        if establishedAt == nil && state.isSynchronized { establishedAt = now }
        var wantsPoll = false
        switch role {
        case .bulkSender(let total, _):
            if state == .established || state == .closeWait {
                while connection.sendBufferSpace > 0 && (total == nil || bytesWritten < total!) {
                    let n = min(connection.sendBufferSpace, 65_536, total.map { $0 - bytesWritten } ?? .max)
                    let chunk = generator.next(n)
                    hasher.update(data: chunk)
                    connection.send(chunk)
                    bytesWritten += n
                    wantsPoll = true
                }
                if let total, bytesWritten >= total, !closed {
                    closed = true
                    digest = Array(hasher.finalize())
                    connection.close()
                    wantsPoll = true
                }
            }
            if finishedAt == nil && closed && connection.unacknowledgedBytes == 0 && connection.state != .finWait1 {
                finishedAt = now
            }
        case .sink(let reader):
            var mayRead = true
            if case .paused(let from, let to) = reader, from <= now && now < to { mayRead = false }
            if mayRead && connection.receivableBytes > 0 {
                let data = connection.receive()
                hasher.update(data: data)
                bytesRead += data.count
                progress.append((now, bytesRead))
                wantsPoll = true
            }
            if connection.isReceiveFinished && !closed {
                closed = true
                digest = Array(hasher.finalize())
                finishedAt = now
                connection.close()
                wantsPoll = true
            }
        }
        return wantsPoll ? connection.poll(now: now) : []
    }
}
