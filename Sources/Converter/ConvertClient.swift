import Convert
#if canImport(Glibc)
import Glibc
#endif

/// Opens a carrier connection to the converter: the byte stream that the client
/// side's Convert message and relay ride on.
public protocol CarrierDialer: Sendable {
    /// What the logs call this carrier.
    var name: String { get }
    func connect(to converter: IPv4Endpoint) throws -> ByteStream
}

/// The kernel's MPTCP (the kernel baseline path, and what `mptcpize`d programs
/// use), marked so the client's own redirect rule lets it pass.
public struct KernelCarrierDialer: CarrierDialer {
    public var transport: KernelTransport
    public var mark: UInt32
    public init(transport: KernelTransport = .mptcp, mark: UInt32) { self.transport = transport; self.mark = mark }
    public var name: String { transport == .mptcp ? "kernel-mptcp" : "kernel-tcp" }
    public func connect(to converter: IPv4Endpoint) throws -> ByteStream {
        try StreamSocket.connect(transport, to: converter, mark: mark)
    }
}

/// The vehicle side of issue 9: accepts the connections that the redirect rule
/// sends to its listener, recovers each one's original destination
/// (SO_ORIGINAL_DST), opens a carrier to the converter with a Convert message
/// holding a Connect TLV (RFC 8803 §5) and whatever data the program has
/// already written (0-RTT), waits for the converter's answer, and relays. An
/// Error TLV from the converter resets the program's connection.
public final class ConvertClient: @unchecked Sendable {
    public struct Settings: Sendable {
        public var listen: IPv4Endpoint
        public var converter: IPv4Endpoint
        public var maximumConnections = 1024
        public var answerTimeoutMilliseconds = 10_000
        /// Hold each SYN (nfqueue) until the converter answered, so a refused
        /// destination is refused for the program's connect; nil: redirect only.
        public var synQueue: UInt16?
        /// Marks the held SYN gets when it must be answered with a RST / ICMP host unreachable (see `RedirectRule`).
        public var refuseMark: UInt32 = 0
        public var unreachableMark: UInt32 = 0
        /// How long an opened carrier waits for the program's connection to arrive.
        public var pendingLifetimeMilliseconds = 30_000
        public init(listen: IPv4Endpoint, converter: IPv4Endpoint) { self.listen = listen; self.converter = converter }
    }

    public let settings: Settings
    let dialer: CarrierDialer
    let log: @Sendable (String) -> Void
    let table: ConnectionTable
    let listener: StreamSocket
    let hold: SynHold?
    private let stopLock = Mutex()
    private var stopping = false

    /// A carrier opened for a held SYN, waiting for the program's connection to reach the listener.
    enum Pending {
        case opening
        case ready(ByteStream, fromServer: [UInt8], since: Int64)
    }
    private let pendingLock = Mutex()
    private var pending: [IPv4Endpoint: Pending] = [:]

    public init(_ settings: Settings, dialer: CarrierDialer, log: @escaping @Sendable (String) -> Void) throws {
        self.settings = settings
        self.dialer = dialer
        self.log = log
        table = ConnectionTable(limit: settings.maximumConnections)
        listener = try StreamSocket.listen(.tcp, on: settings.listen, backlog: 512)
        hold = try settings.synQueue.map { try SynHold(queue: $0) }
    }

    public var counters: ConverterCounters { table.snapshot }
    public func stop() { stopLock.locked { stopping = true } }
    var isStopping: Bool { stopLock.locked { stopping } }

    public func run() {
        var holder: RelayThread?
        if let hold {
            holder = RelayThread(stackSize: 256 * 1024) { [self] in holdSyns(hold) }
            if holder?.start() != true { log("convert client: no thread to hold SYNs; redirect only"); holder = nil }
        }
        defer { holder?.join() }
        while !isStopping {
            let program: StreamSocket?
            do { program = try listener.accept(timeoutMilliseconds: 200) } catch {
                log("convert client: accept failed: \(error)")
                usleep(100_000)
                continue
            }
            guard let program else { continue }
            guard let id = table.admit() else {
                log("convert client: \(settings.maximumConnections) connections active; reset a new one")
                program.abort()
                continue
            }
            if !RelayThread.detach(stackSize: 256 * 1024, { [self] in serve(program, id: id) }) {
                program.abort()
                table.release(id) { $0.failed += 1 }
            }
        }
        listener.close()
        table.stopAll()
        for case let .ready(carrier, _, _) in pendingLock.locked({ Array(pending.values) }) { carrier.abort() }
        for _ in 0..<100 where table.snapshot.active > 0 { usleep(20_000) }
    }

    private func serve(_ program: StreamSocket, id: Int) {
        func fail(_ line: String, refused: Bool = false, _ carrier: ByteStream? = nil) {
            log(line)
            program.abort()
            carrier?.abort()
            table.release(id) { if refused { $0.refusedByDestination += 1 } else { $0.failed += 1 } }
        }
        let destination: IPv4Endpoint
        do { destination = try program.originalDestination() } catch {
            return fail("convert client: a connection without an original destination (\(error)); reset")
        }
        if destination == settings.listen || destination.port == settings.listen.port && destination.address == program.localEndpoint?.address {
            return fail("convert client: a connection made straight to the listener; reset")
        }
        let carrier: ByteStream, fromServer: [UInt8]
        if let source = program.remoteEndpoint, case let .ready(c, data, _)? = pendingLock.locked({ pending.removeValue(forKey: source) }) {
            (carrier, fromServer) = (c, data)
        } else {
            // Not held (no queue, or its SYN bypassed it): open the carrier now; the
            // program's first bytes ride with the Convert message (RFC 8803 §5).
            switch open(destination, early: program.readAvailable(max: 4096)) {
            case let .success((c, data)): (carrier, fromServer) = (c, data)
            case let .failure(f):
                return fail("convert client: \(destination): \(f.line); reset", refused: f.code == .connectionReset)
            }
        }
        let relay: Relay
        do { relay = try Relay(program, named: "program", carrier, named: "converter") } catch {
            return fail("convert client: \(destination): \(error); reset", carrier)
        }
        table.attach(relay, to: id)
        if isStopping { relay.stop() }
        let ending = relay.run(startBA: fromServer)
        if ending != .closed { log("convert client: \(destination): \(ending)") }
        table.release(id) { $0.relayed += 1 }
    }

    func open(_ destination: IPv4Endpoint, early: [UInt8]) -> Result<(ByteStream, [UInt8]), CarrierOpenFailure> {
        openCarrier(dialer, to: settings.converter, for: destination, early: early, timeoutMilliseconds: settings.answerTimeoutMilliseconds)
    }

    /// The nfqueue loop: each new SYN waits while a carrier opens for its
    /// destination; then it goes on (to the redirect and the listener), or is
    /// answered as the destination answered the converter.
    private func holdSyns(_ hold: SynHold) {
        while !isStopping {
            for syn in hold.receive(timeoutMilliseconds: 200) {
                // Beyond the connection limit a SYN is not held: it goes on, and the listener resets it.
                let state: Pending?? = pendingLock.locked {
                    let s = pending[syn.source]
                    if s == nil {
                        guard pending.count < settings.maximumConnections else { return .none }
                        pending[syn.source] = .opening
                    }
                    return .some(s)
                }
                guard let state else { hold.verdict(syn.id, SynHold.verdictAccept); continue }
                switch state {
                case .ready?: hold.verdict(syn.id, SynHold.verdictAccept)   // a retransmitted SYN
                case .opening?: hold.verdict(syn.id, SynHold.verdictDrop)   // still opening: the program retransmits
                case nil:
                    let started = RelayThread.detach(stackSize: 256 * 1024) { [self] in decide(syn, hold) }
                    if !started {
                        _ = pendingLock.locked { pending.removeValue(forKey: syn.source) }
                        hold.verdict(syn.id, SynHold.verdictAccept)
                    }
                }
            }
            // Carriers whose program never arrived (it gave up) are closed.
            let now = Self.monotonicMilliseconds()
            let stale: [ByteStream] = pendingLock.locked {
                var out: [ByteStream] = []
                for (k, v) in pending {
                    if case let .ready(c, _, since) = v, now - since > Int64(settings.pendingLifetimeMilliseconds) {
                        out.append(c); pending[k] = nil
                    }
                }
                return out
            }
            for c in stale { c.abort() }
        }
    }

    private func decide(_ syn: SynHold.HeldSyn, _ hold: SynHold) {
        switch open(syn.destination, early: []) {
        case let .success((carrier, fromServer)):
            pendingLock.locked { pending[syn.source] = .ready(carrier, fromServer: fromServer, since: Self.monotonicMilliseconds()) }
            hold.verdict(syn.id, SynHold.verdictAccept)
        case let .failure(f):
            _ = pendingLock.locked { pending.removeValue(forKey: syn.source) }
            log("convert client: \(syn.destination): \(f.line); the program's SYN is answered \(f.code == .destinationUnreachable ? "host unreachable" : "with a reset")")
            // NF_REPEAT runs the chain again; the mark selects its reject rule.
            hold.verdict(syn.id, SynHold.verdictRepeat, mark: f.code == .destinationUnreachable ? settings.unreachableMark : settings.refuseMark)
            table.recordRefusal(byDestination: f.code == .connectionReset)
        }
    }

    static func monotonicMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// Why a carrier could not be opened for a destination; `code` when the converter answered with an Error TLV.
public struct CarrierOpenFailure: Error, CustomStringConvertible {
    public var line: String
    public var code: ConvertErrorCode?
    public var description: String { line }
}

/// A carrier to `converter` that has sent the Connect TLV for `destination`
/// (with `early`, the 0-RTT data, in the same write: RFC 8803 §5) and received
/// a success answer; with the bytes the destination sent after that answer.
public func openCarrier(_ dialer: CarrierDialer, to converter: IPv4Endpoint, for destination: IPv4Endpoint,
                        early: [UInt8], timeoutMilliseconds: Int) -> Result<(ByteStream, [UInt8]), CarrierOpenFailure> {
    let carrier: ByteStream
    do { carrier = try dialer.connect(to: converter) } catch {
        return .failure(CarrierOpenFailure(line: "carrier (\(dialer.name)) to converter \(converter): \(error)"))
    }
    do { try carrier.writeAll(ConvertMessage([.connect(destination.convertDestination, tcpOptions: [])]).encode()! + early) } catch {
        carrier.abort()
        return .failure(CarrierOpenFailure(line: "sending the Convert message: \(error)"))
    }
    let answer: ConvertMessage, fromServer: [UInt8]
    do { (answer, fromServer) = try readConvertMessage(from: carrier, timeoutMilliseconds: timeoutMilliseconds) } catch {
        carrier.abort()
        return .failure(CarrierOpenFailure(line: "converter's answer: \(error)"))
    }
    if let (code, value) = answer.error {
        carrier.close()
        return .failure(CarrierOpenFailure(line: "converter answered \(code) (value \(value))", code: code))
    }
    return .success((carrier, fromServer))
}
