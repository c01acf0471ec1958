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
        public init(listen: IPv4Endpoint, converter: IPv4Endpoint) { self.listen = listen; self.converter = converter }
    }

    public let settings: Settings
    let dialer: CarrierDialer
    let log: @Sendable (String) -> Void
    let table: ConnectionTable
    let listener: StreamSocket
    private let stopLock = Mutex()
    private var stopping = false

    public init(_ settings: Settings, dialer: CarrierDialer, log: @escaping @Sendable (String) -> Void) throws {
        self.settings = settings
        self.dialer = dialer
        self.log = log
        table = ConnectionTable(limit: settings.maximumConnections)
        listener = try StreamSocket.listen(.tcp, on: settings.listen, backlog: 512)
    }

    public var counters: ConverterCounters { table.snapshot }
    public func stop() { stopLock.locked { stopping = true } }
    var isStopping: Bool { stopLock.locked { stopping } }

    public func run() {
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
        let carrier: ByteStream
        do { carrier = try dialer.connect(to: settings.converter) } catch {
            return fail("convert client: \(destination): carrier (\(dialer.name)) to converter \(settings.converter): \(error); reset")
        }
        // RFC 8803 §5: the Convert message first, then the program's first bytes in the same segment.
        let early = program.readAvailable(max: 4096)
        do { try carrier.writeAll(ConvertMessage([.connect(destination.convertDestination, tcpOptions: [])]).encode()! + early) } catch {
            return fail("convert client: \(destination): sending the Convert message: \(error); reset", carrier)
        }
        let answer: ConvertMessage, fromServer: [UInt8]
        do { (answer, fromServer) = try readConvertMessage(from: carrier, timeoutMilliseconds: settings.answerTimeoutMilliseconds) } catch {
            return fail("convert client: \(destination): converter's answer: \(error); reset", carrier)
        }
        if let (code, value) = answer.error {
            // The program sees what it would have seen without the converter: a reset.
            return fail("convert client: \(destination): converter answered \(code) (value \(value)); reset", refused: code == .connectionReset, carrier)
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
}
