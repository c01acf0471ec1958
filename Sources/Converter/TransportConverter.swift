import Convert
#if canImport(Glibc)
import Glibc
#endif

/// Why the first Convert message on a stream could not be read.
public enum ConvertExchangeError: Error, CustomStringConvertible, Sendable {
    case malformed(ConvertDecodeError)
    /// The stream ended (or reset) after this many bytes, before a whole message.
    case endedEarly(received: Int)
    case timedOut(received: Int)

    public var description: String {
        switch self {
        case let .malformed(e): return "malformed Convert message: \(e)"
        case let .endedEarly(n): return "stream ended after \(n) bytes, before a whole Convert message"
        case let .timedOut(n): return "no whole Convert message within the time limit (\(n) bytes received)"
        }
    }
}

/// Reads one Convert message from the start of `stream`, waiting at most
/// `timeoutMilliseconds` in all; returns it and the bytes that came after it
/// (0-RTT data). Never reads more than one buffer past the message.
public func readConvertMessage(from stream: ByteStream, timeoutMilliseconds: Int) throws -> (ConvertMessage, rest: [UInt8]) {
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 16 * 1024)
    var waited = 0
    while true {
        let progress: ConvertDecodeProgress
        do throws(ConvertDecodeError) { progress = try ConvertMessage.decode(received[...]) } catch { throw ConvertExchangeError.malformed(error) }
        if case let .message(m, consumed) = progress { return (m, Array(received[consumed...])) }
        // A stream without a poll descriptor is read blocking: its own timeouts apply.
        var p = pollfd(fd: stream.pollDescriptor ?? -1, events: Int16(POLLIN), revents: 0)
        let step = 100
        let r = stream.pollDescriptor == nil ? 1 : poll(&p, 1, Int32(step))
        if r < 0 && errno != EINTR { throw ConvertExchangeError.endedEarly(received: received.count) }
        if r <= 0 {
            waited += step
            if waited >= timeoutMilliseconds { throw ConvertExchangeError.timedOut(received: received.count) }
            continue
        }
        let n: Int
        do { n = try chunk.withUnsafeMutableBytes { try stream.read(into: $0) } } catch {
            throw ConvertExchangeError.endedEarly(received: received.count)
        }
        guard n > 0 else { throw ConvertExchangeError.endedEarly(received: received.count) }
        received += chunk[..<n]
    }
}

/// Counters of a converter or client, read by tests and printed at shutdown.
public struct ConverterCounters: Sendable, Equatable, CustomStringConvertible {
    public var accepted = 0
    public var relayed = 0
    public var refusedByDestination = 0
    public var malformed = 0
    public var failed = 0
    public var active = 0

    public var description: String {
        "accepted \(accepted), relayed \(relayed), refused by destination \(refusedByDestination), malformed \(malformed), other failures \(failed), still active \(active)"
    }
}

/// Tracks live relays so shutdown can end them, and bounds how many run at once.
final class ConnectionTable: @unchecked Sendable {
    private let lock = Mutex()
    private var relays: [Int: Relay] = [:]
    private var nextID = 0
    private(set) var counters = ConverterCounters()
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// A slot for a new connection, or nil when `limit` are already active.
    func admit() -> Int? {
        lock.locked {
            counters.accepted += 1
            guard counters.active < limit else { return nil }
            counters.active += 1
            nextID += 1
            return nextID
        }
    }

    func attach(_ relay: Relay, to id: Int) { lock.locked { relays[id] = relay } }

    func release(_ id: Int, _ update: (inout ConverterCounters) -> Void) {
        lock.locked {
            relays[id] = nil
            counters.active -= 1
            update(&counters)
        }
    }

    /// A connection refused before it reached the listener (its SYN was held).
    func recordRefusal(byDestination: Bool) {
        lock.locked { if byDestination { counters.refusedByDestination += 1 } else { counters.failed += 1 } }
    }

    var snapshot: ConverterCounters { lock.locked { counters } }

    func stopAll() { for r in lock.locked({ Array(relays.values) }) { r.stop() } }
}

/// The server side of issue 9: accepts carrier connections (kernel MPTCP),
/// reads the client's Convert message (RFC 8803 §5), opens plain TCP to the
/// destination of its Connect TLV, answers, and relays.
public final class TransportConverter: @unchecked Sendable {
    public struct Settings: Sendable {
        public var listen: IPv4Endpoint
        public var carrier: KernelTransport = .mptcp
        public var maximumConnections = 1024
        public var messageTimeoutMilliseconds = 10_000
        public init(listen: IPv4Endpoint) { self.listen = listen }
    }

    public let settings: Settings
    let log: @Sendable (String) -> Void
    let table: ConnectionTable
    let listener: StreamSocket
    private let stopLock = Mutex()
    private var stopping = false

    /// Binds the listener now, so a caller knows it is ready when this returns.
    public init(_ settings: Settings, log: @escaping @Sendable (String) -> Void) throws {
        self.settings = settings
        self.log = log
        table = ConnectionTable(limit: settings.maximumConnections)
        listener = try StreamSocket.listen(settings.carrier, on: settings.listen, backlog: 512)
    }

    public var counters: ConverterCounters { table.snapshot }

    public func stop() { stopLock.locked { stopping = true } }
    var isStopping: Bool { stopLock.locked { stopping } }

    /// Accepts until `stop`; then resets the connections still relaying and waits for them.
    public func run() {
        while !isStopping {
            let carrier: StreamSocket?
            do { carrier = try listener.accept(timeoutMilliseconds: 200) } catch {
                log("convert: accept failed: \(error)")
                usleep(100_000)
                continue
            }
            guard let carrier else { continue }
            guard let id = table.admit() else {
                // RFC 8803 §4.2.7: Resource Exceeded, then close.
                log("convert: \(carrier.remoteEndpoint?.description ?? "?"): \(settings.maximumConnections) connections active; refused with Resource Exceeded")
                try? carrier.writeAll(ConvertMessage([.error(.resourceExceeded, value: 0)]).encode()!)
                carrier.close()
                continue
            }
            let started = RelayThread.detach(stackSize: 256 * 1024) { [self] in serve(carrier, id: id) }
            if !started {
                carrier.abort()
                table.release(id) { $0.failed += 1 }
            }
        }
        listener.close()
        table.stopAll()
        // Relays end within one poll round once cancelled.
        for _ in 0..<100 where table.snapshot.active > 0 { usleep(20_000) }
    }

    private func serve(_ carrier: StreamSocket, id: Int) {
        let peer = carrier.remoteEndpoint?.description ?? "?"
        let message: ConvertMessage, early: [UInt8]
        do {
            (message, early) = try readConvertMessage(from: carrier, timeoutMilliseconds: settings.messageTimeoutMilliseconds)
        } catch let e as ConvertExchangeError {
            log("convert: \(peer): \(e); connection closed")
            if case let .malformed(d) = e { try? carrier.writeAll(ConvertMessage([.error(d.errorCode, value: 0)]).encode()!) }
            carrier.close()
            table.release(id) { if case .malformed = e { $0.malformed += 1 } else { $0.failed += 1 } }
            return
        } catch {
            carrier.close()
            table.release(id) { $0.failed += 1 }
            return
        }
        let destination: ConvertDestination
        do throws(ConvertDecodeError) { destination = try message.destination().0 } catch {
            log("convert: \(peer): malformed Convert message: \(error); connection closed")
            try? carrier.writeAll(ConvertMessage([.error(error.errorCode, value: 0)]).encode()!)
            carrier.close()
            table.release(id) { $0.malformed += 1 }
            return
        }
        // Wayside sends only inside 198.18.0.0/15: any other destination is Not Authorized (RFC 8803 §4.2.7, code 32).
        guard let v4 = destination.ipv4, IPv4Endpoint(address: v4, port: destination.port).isTestbedAddress else {
            log("convert: \(peer): destination \(destination) is outside 198.18.0.0/15; answered Not Authorized")
            try? carrier.writeAll(ConvertMessage([.error(.notAuthorized, value: 0)]).encode()!)
            carrier.close()
            table.release(id) { $0.failed += 1 }
            return
        }
        let target = IPv4Endpoint(address: v4, port: destination.port)
        let upstream: StreamSocket
        do { upstream = try StreamSocket.connect(.tcp, to: target) } catch let e as ConverterSocketError {
            let code = Self.errorCode(forConnectErrno: e.errno)
            log("convert: \(peer) → \(target): \(e); answered \(code.0)")
            try? carrier.writeAll(ConvertMessage([.error(code.0, value: code.value)]).encode()!)
            carrier.close()
            table.release(id) { if code.0 == .connectionReset { $0.refusedByDestination += 1 } else { $0.failed += 1 } }
            return
        } catch {
            carrier.close()
            table.release(id) { $0.failed += 1 }
            return
        }
        // The destination accepted: a header-only Convert message tells the client so,
        // and the relay starts with the data that came with the client's message.
        do { try carrier.writeAll(ConvertMessage().encode()!) } catch {
            upstream.abort(); carrier.abort()
            table.release(id) { $0.failed += 1 }
            return
        }
        let relay: Relay
        do { relay = try Relay(carrier, named: "client", upstream, named: "destination \(target)") } catch {
            upstream.abort(); carrier.abort()
            table.release(id) { $0.failed += 1 }
            return
        }
        table.attach(relay, to: id)
        if isStopping { relay.stop() }
        let ending = relay.run(startAB: early)
        if ending != .closed { log("convert: \(peer) → \(target): \(ending)") }
        table.release(id) { $0.relayed += 1 }
    }

    /// How a failed connect to the destination is told to the client (RFC 8803 §4.2.7):
    /// a RST from the destination is Connection Reset (96); ICMP unreachable is
    /// Destination Unreachable (97) with the ICMP code as value; the rest Network Failure (65).
    static func errorCode(forConnectErrno e: Int32) -> (ConvertErrorCode, value: UInt8) {
        switch e {
        case ECONNREFUSED: return (.connectionReset, 0)
        case ENETUNREACH: return (.destinationUnreachable, 0)
        case EHOSTUNREACH: return (.destinationUnreachable, 1)
        default: return (.networkFailure, 0)
        }
    }
}
