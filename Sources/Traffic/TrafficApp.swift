import Analysis
import Core
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The traffic applications of a node (issue 5, "Node process").
public enum AppKind: String, Sendable, CaseIterable {
    /// Send as fast as the socket takes bytes.
    case bulk
    /// `rate` messages per second of `size` bytes, each with a sequence number and its generation time.
    case cbr
    /// Request/response: send a `size`-byte message, wait for it to come back (paced at `rate` if set).
    case rr
    /// Accept one connection and read it to the end, logging each message or each run of bytes.
    case sink
    /// Accept one connection and send back everything read.
    case echo

    public var sends: Bool { self == .bulk || self == .cbr || self == .rr }
    var role: AppRole {
        switch self {
        case .bulk, .cbr: return .sender
        case .sink: return .receiver
        case .rr, .echo: return .both
        }
    }
}

public struct TrafficConfiguration: Sendable {
    public var app: AppKind
    public var socket: SocketKind
    /// Senders connect here; receivers listen here.
    public var address: SocketAddress
    /// A sender's local address (the path of the initial subflow), if it must be fixed.
    public var bind: SocketAddress?
    public var rate: Int
    public var size: Int
    /// How long a sender sends; nil = until stopped.
    public var duration: Interval?
    /// The connection label both ends log (docs/LOGS.md).
    public var conn: String
    /// Address → topology link, to name the path of each subflow.
    public var paths: [String: String]
    public var connectTimeout: Interval
    /// How often kernel MPTCP's subflow list is read.
    public var subflowPollInterval: Interval

    public init(app: AppKind, socket: SocketKind, address: SocketAddress, bind: SocketAddress? = nil, rate: Int = 1000,
                size: Int = 1024, duration: Interval? = nil, conn: String = "flow0", paths: [String: String] = [:],
                connectTimeout: Interval = .seconds(10), subflowPollInterval: Interval = .milliseconds(5)) {
        self.app = app; self.socket = socket; self.address = address; self.bind = bind; self.rate = rate
        self.size = size; self.duration = duration; self.conn = conn; self.paths = paths
        self.connectTimeout = connectTimeout; self.subflowPollInterval = subflowPollInterval
    }

    public var offered: Bitrate? {
        app == .cbr ? Bitrate(bitsPerSecond: Int64(rate) * Int64(max(size, MessageFraming.headerSize)) * 8) : nil
    }
}

/// Runs one application on kernel sockets, logging docs/LOGS.md events. `run()`
/// blocks; call it on a dedicated thread. `stop()` may be called from any thread.
public final class TrafficApp: @unchecked Sendable {
    public let configuration: TrafficConfiguration
    let log: EventLogWriter
    private let lock = NSLock()
    private var stopping = false
    private var listener: (any StreamListener)?
    private var connection: (any StreamConnection)?
    private var monitorDone = false
    /// Where connections come from: kernel sockets of `configuration.socket`'s
    /// kind unless another transport (the Swift stack) is given.
    let transport: any StreamTransport

    public init(configuration: TrafficConfiguration, log: EventLogWriter, transport: (any StreamTransport)? = nil) {
        self.configuration = configuration
        self.log = log
        self.transport = transport ?? KernelTransport(configuration.socket)
    }

    public var isStopping: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    /// Asks the application to finish: a sender stops sending and closes its
    /// side (DATA_FIN/FIN); a receiver stops reading. A sender still blocked in
    /// a write after `grace` is cut off.
    public func stop(grace: Interval = .seconds(1)) {
        lock.lock()
        stopping = true
        let l = listener, c = connection
        lock.unlock()
        l?.shutdown()
        if !configuration.app.sends {
            c?.shutdown(.both)
        } else if let c {
            let t = Thread { usleep(UInt32(max(0, grace.microseconds))); c.shutdown(.both) }
            t.start()
        }
    }

    public func run() throws {
        let c = configuration
        log.log(.appStart(conn: c.conn, app: c.app.rawValue, role: c.app.role, offered: c.offered))
        defer { log.flush() }
        let socket: any StreamConnection
        do {
            if c.app.sends {
                log.log(.connectionState(conn: c.conn, state: .connecting, mptcp: nil, reason: nil))
                socket = try transport.connect(to: c.address, from: c.bind,
                                               retryUntil: RunClock.monotonicNanoseconds() + c.connectTimeout.nanoseconds,
                                               shouldStop: { self.isStopping })
            } else {
                let l = try transport.listen(on: c.address)
                lock.lock(); listener = l; let stop = stopping; lock.unlock()
                if stop { log.log(.appStop(conn: c.conn, reason: "stopped before a connection")); return }
                socket = try l.acceptConnection()
            }
        } catch let e as SocketError {
            if isStopping {
                log.log(.appStop(conn: c.conn, reason: "stopped before a connection"))
                return
            }
            log.log(.connectionState(conn: c.conn, state: .failed, mptcp: nil, reason: e.description))
            log.log(.appStop(conn: c.conn, reason: e.description))
            throw e
        }
        lock.lock(); connection = socket; lock.unlock()
        // The listener stays open while the connection lives: kernel MPTCP looks up
        // joins (SYN with MP_JOIN, RFC 8684 §3.2) through the listening socket, and
        // answers them with RST once it is closed.
        defer { socket.close(); lock.lock(); listener?.close(); lock.unlock() }

        let mptcp = socket.multipathInUse()
        log.log(.connectionState(conn: c.conn, state: .established, mptcp: mptcp, reason: nil))
        let monitor = startSubflowMonitor(socket)

        var outcome: String
        do {
            if c.app.sends { try send(on: socket) } else { try receive(on: socket) }
            outcome = isStopping ? "signal" : "done"
        } catch let e as SocketError {
            let state: ConnectionState = [ECONNRESET, EPIPE].contains(e.errno) ? .reset : .failed
            if !(isStopping && [EPIPE, ECONNRESET, EINVAL].contains(e.errno)) {
                log.log(.connectionState(conn: c.conn, state: state, mptcp: nil, reason: e.description))
            }
            outcome = isStopping ? "signal" : e.description
        }
        lock.lock(); monitorDone = true; lock.unlock()
        monitor?.join()
        logSubflowsClosed(socket)
        log.log(.appStop(conn: c.conn, reason: outcome))
    }

    // MARK: Sending

    func sleep(until t: Instant) {
        // Wake at least every 50 ms to notice stop().
        while !isStopping {
            let now = log.clock.now()
            if now >= t { return }
            log.clock.sleep(until: min(t, now + .milliseconds(50)))
        }
    }

    func send(on socket: any StreamConnection) throws {
        let c = configuration
        let start = log.clock.now()
        let end = c.duration.map { start + $0 } ?? .distantFuture
        switch c.app {
        case .cbr:
            let interval = Interval(nanoseconds: 1_000_000_000 / Int64(max(1, c.rate)))
            var buffer: [UInt8] = []
            var k: UInt64 = 0
            while !isStopping {
                let scheduled = start + interval * Int64(k)
                if scheduled >= end { break }
                sleep(until: scheduled)
                if isStopping { break }
                // sent_at is when the message was generated: if the socket blocked, the
                // backlog goes out at once and its wait shows up as latency.
                let header = MessageHeader(sequence: k, sentAt: scheduled, size: c.size)
                buffer.removeAll(keepingCapacity: true)
                MessageFraming.append(header, to: &buffer)
                log.log(.appSent(AppMessage(conn: c.conn, sequence: k, size: buffer.count, sentAt: scheduled)))
                try socket.writeAll(buffer)
                k += 1
            }
        case .bulk:
            let chunk = [UInt8](repeating: 0, count: 64 * 1024)
            while !isStopping, log.clock.now() < end { try socket.writeAll(chunk) }
        case .rr:
            var reassembler = MessageReassembler()
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            let interval: Interval? = c.rate > 0 ? Interval(nanoseconds: 1_000_000_000 / Int64(c.rate)) : nil
            var k: UInt64 = 0
            while !isStopping {
                let scheduled = interval.map { start + $0 * Int64(k) } ?? log.clock.now()
                if scheduled >= end { break }
                sleep(until: scheduled)
                if isStopping { break }
                let request = MessageFraming.encode(MessageHeader(sequence: k, sentAt: scheduled, size: c.size))
                log.log(.appSent(AppMessage(conn: c.conn, sequence: k, size: request.count, sentAt: scheduled)))
                try socket.writeAll(request)
                var answered = false
                while !answered {
                    let n = try buffer.withUnsafeMutableBytes { try socket.read(into: $0) }
                    if n == 0 {
                        log.log(.connectionState(conn: c.conn, state: .finished, mptcp: nil, reason: "peer closed before answering"))
                        return
                    }
                    let messages = try readMessages(&reassembler, Array(buffer[0..<n]))
                    for m in messages {
                        log.log(.appDelivered(AppMessage(conn: c.conn, sequence: m.sequence, size: m.size, sentAt: m.sentAt)))
                        if m.sequence == k { answered = true }
                    }
                }
                k += 1
            }
        case .sink, .echo:
            break
        }
        // End of our stream: FIN, or DATA_FIN for MPTCP (RFC 8684 §3.3.3); then read what the peer still sends.
        socket.shutdown(.write)
        socket.setReadTimeout(.seconds(2))
        var scratch = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = (try? scratch.withUnsafeMutableBytes { try socket.read(into: $0) }) ?? 0
            if n == 0 { break }
        }
        log.log(.connectionState(conn: c.conn, state: .closed, mptcp: nil, reason: nil))
    }

    // MARK: Receiving

    func receive(on socket: any StreamConnection) throws {
        let c = configuration
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        var prefix: [UInt8] = []
        var framed: Bool?
        var reassembler = MessageReassembler()
        var total: Int64 = 0
        // Reads coalesced into one bytes.delivered: from the first read of the batch
        // to the last, at most 1 ms apart (docs/LOGS.md); logged at the last read's
        // time, when all of them had been delivered.
        var pendingBytes: Int64 = 0
        var batchStart: Instant?
        var lastRead = Instant.zero
        func flushBytes() {
            guard pendingBytes > 0 else { return }
            total += pendingBytes
            log.log(.bytesDelivered(conn: c.conn, bytes: pendingBytes, total: total), at: lastRead)
            pendingBytes = 0
            batchStart = nil
        }
        // A read that fails (reset) still leaves the bytes before it delivered.
        defer { flushBytes() }
        while true {
            let n = try buffer.withUnsafeMutableBytes { try socket.read(into: $0) }
            let now = log.clock.now()
            if n == 0 {
                flushBytes()
                if isStopping { return }
                log.log(.connectionState(conn: c.conn, state: .finished, mptcp: nil,
                                         reason: reassembler.atMessageBoundary ? nil : "stream ended inside a message"))
                break
            }
            if c.app == .echo { try buffer.withUnsafeBytes { try socket.writeAll(UnsafeRawBufferPointer(rebasing: $0[0..<n])) } }
            var framedBytes: [UInt8]?
            if framed == nil {
                // Decide from the first four bytes of the stream whether it carries messages.
                prefix.append(contentsOf: buffer[0..<n])
                framed = MessageFraming.isFramed(prefix: prefix)
                guard framed != nil else { continue }
                framedBytes = prefix
                prefix = []
            }
            if framed == true {
                let messages = try readMessages(&reassembler, framedBytes ?? Array(buffer[0..<n]))
                for m in messages {
                    log.log(.appDelivered(AppMessage(conn: c.conn, sequence: m.sequence, size: m.size, sentAt: m.sentAt)), at: now)
                }
            } else {
                // Byte streams: coalesce reads within 1 ms (docs/LOGS.md). A read more
                // than 1 ms after the batch began starts the next batch.
                if let s = batchStart, now - s > .milliseconds(1) { flushBytes() }
                pendingBytes += Int64(framedBytes?.count ?? n)
                batchStart = batchStart ?? now
                lastRead = now
            }
        }
        socket.shutdown(.write)
        log.log(.connectionState(conn: c.conn, state: .closed, mptcp: nil, reason: nil))
    }

    func readMessages(_ reassembler: inout MessageReassembler, _ bytes: [UInt8]) throws -> [MessageHeader] {
        do throws(FramingError) { return try reassembler.append(bytes) } catch {
            throw SocketError(operation: "read messages", context: error.description, errno: EPROTO)
        }
    }

    // MARK: Subflows

    private var knownSubflows: [String: Int] = [:] // "local>remote" -> id
    private var subflowInfo: [Int: (SocketAddress, SocketAddress)] = [:]

    func path(of local: SocketAddress, _ remote: SocketAddress) -> String? {
        configuration.paths[local.host] ?? configuration.paths[remote.host]
    }

    /// Plain TCP (or a fallen-back connection) is one subflow for its whole
    /// life; an MPTCP connection's subflows are listed every poll interval and
    /// changes logged. Either way each subflow's byte counters are polled and
    /// logged when they move.
    func startSubflowMonitor(_ socket: any StreamConnection) -> ThreadJoin? {
        let c = configuration
        let single = socket.subflows() == nil
        if single, let l = socket.localAddress, let r = socket.remoteAddress {
            knownSubflows["\(l)>\(r)"] = 0
            subflowInfo[0] = (l, r)
            log.log(.subflowState(SubflowChange(conn: c.conn, subflow: 0, state: .established, path: path(of: l, r),
                                                local: l.description, remote: r.description)))
        }
        pollSubflows(socket, single: single)
        return ThreadJoin {
            while true {
                self.lock.lock(); let done = self.monitorDone; self.lock.unlock()
                if done { return }
                usleep(UInt32(max(1000, c.subflowPollInterval.microseconds)))
                self.pollSubflows(socket, single: single)
            }
        }
    }

    private var lastCounters: [Int: (Int64, Int64)] = [:]

    func logProgress(_ id: Int, _ counters: SubflowCounters) {
        let last = lastCounters[id] ?? (0, 0)
        guard counters.bytesAcked > last.0 || counters.bytesReceived > last.1, let (l, r) = subflowInfo[id] else { return }
        lastCounters[id] = (counters.bytesAcked, counters.bytesReceived)
        log.log(.subflowProgress(conn: configuration.conn, subflow: id, path: path(of: l, r),
                                 bytesAcked: counters.bytesAcked, bytesReceived: counters.bytesReceived))
    }

    func pollSubflows(_ socket: any StreamConnection, single: Bool) {
        if single {
            if let counters = socket.singlePathCounters() { logProgress(0, counters) }
            return
        }
        guard let subflows = socket.subflows() else { return }
        let c = configuration
        var live = Set<String>()
        for s in subflows {
            let (l, r) = (s.local, s.remote)
            let key = "\(l)>\(r)"
            live.insert(key)
            if knownSubflows[key] == nil {
                let id = knownSubflows.count
                knownSubflows[key] = id
                subflowInfo[id] = (l, r)
                log.log(.subflowState(SubflowChange(conn: c.conn, subflow: id, state: .established, path: path(of: l, r),
                                                    local: l.description, remote: r.description)))
            }
        }
        for (key, id) in knownSubflows.sorted(by: { $0.value < $1.value }) where !live.contains(key) && subflowInfo[id] != nil {
            let (l, r) = subflowInfo[id]!
            subflowInfo[id] = nil
            log.log(.subflowState(SubflowChange(conn: c.conn, subflow: id, state: .closed, path: path(of: l, r),
                                                local: l.description, remote: r.description, reason: self.transport is KernelTransport ? "gone from MPTCP_SUBFLOW_ADDRS" : "gone from the subflow list")))
        }
        for s in subflows {
            guard let counters = s.counters, let id = knownSubflows["\(s.local)>\(s.remote)"] else { continue }
            logProgress(id, counters)
        }
    }

    func logSubflowsClosed(_ socket: any StreamConnection) {
        for (id, (l, r)) in subflowInfo.sorted(by: { $0.key < $1.key }) {
            log.log(.subflowState(SubflowChange(conn: configuration.conn, subflow: id, state: .closed, path: path(of: l, r),
                                                local: l.description, remote: r.description, reason: "connection closed")))
        }
        subflowInfo.removeAll()
    }
}

/// A thread that can be waited for.
public final class ThreadJoin: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    public init(_ body: @escaping @Sendable () -> Void) {
        let t = Thread { [done] in body(); done.signal() }
        t.start()
    }

    public func join() { done.wait() }
}
