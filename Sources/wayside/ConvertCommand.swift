import ArgumentParser
import Convert
import Converter
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// `wayside convert`: the transport converter of issue 9 (RFC 8803), either side.
/// Run it inside a node's namespace (`wayside exec NODE -- wayside convert ...`
/// or `ip netns exec NS wayside convert ...`).
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "convert",
        abstract: "Carry ordinary TCP programs over Multipath TCP through a transport converter (RFC 8803).",
        discussion: """
        Server side (in the server's namespace): accept MPTCP connections on --listen, read \
        each one's Convert message (RFC 8803), open plain TCP to its Connect TLV's destination \
        and relay. Client side (--client, in the vehicle's namespace): redirect outgoing TCP to \
        198.18.0.0/15 with an nftables table named after --run, and carry each connection to \
        --converter. SIGINT or SIGTERM stops either cleanly; the client removes its table.
        Examples:
          wayside convert --listen 198.18.0.2:7000
          wayside convert --client --converter 198.18.0.2:7000 --redirect-port 7001 --run r1
        See docs/CONVERTER.md.
        """
    )

    @Option(help: ArgumentHelp("Server side: address to accept carrier connections on; 0.0.0.0:PORT for every address.", valueName: "ADDR:PORT"))
    var listen: String?

    @Flag(help: "Client side: redirect this namespace's outgoing TCP to the converter.")
    var client = false

    @Option(help: ArgumentHelp("Client side: the converter's address.", valueName: "ADDR:PORT"))
    var converter: String?

    @Option(help: ArgumentHelp("Client side: local port the redirected connections arrive on.", valueName: "PORT"))
    var redirectPort: UInt16?

    @Option(help: ArgumentHelp("Carrier to the converter: kernel-mptcp or kernel-tcp.", valueName: "KIND"))
    var carrier: String = "kernel-mptcp"

    @Option(name: .customLong("run"), help: ArgumentHelp("Run id naming the client's nftables table.", valueName: "ID"))
    var runID: String = "\(getpid())"

    @Option(help: ArgumentHelp("Socket mark of carrier connections (the redirect lets them pass).", valueName: "MARK"))
    var mark: UInt32 = 0x5753

    @Flag(inversion: .prefixedNo, help: "Client side: hold each SYN (nfqueue) until the converter answered, so a refused destination is refused for the program.")
    var holdSyns = true

    @Option(help: ArgumentHelp("Client side: the nfqueue number for held SYNs; default the redirect port.", valueName: "N"))
    var queue: UInt16?

    @Option(help: "Connections relayed at once; more are refused (Resource Exceeded, RFC 8803) or reset.")
    var maxConnections: Int = 1024

    func transport() throws -> KernelTransport {
        switch carrier {
        case "kernel-mptcp": return .mptcp
        case "kernel-tcp": return .tcp
        case "swift": throw ValidationError("--carrier: the Swift stack's carrier joins when its runtime lands (docs/CONVERTER.md)")
        default: throw ValidationError("--carrier: '\(carrier)' is not one of kernel-mptcp, kernel-tcp")
        }
    }

    static func endpoint(_ flag: String, _ text: String, listening: Bool) throws -> IPv4Endpoint {
        guard let e = IPv4Endpoint(text) else { throw ValidationError("\(flag): cannot read '\(text)': expected ADDR:PORT, e.g. 198.18.0.2:7000") }
        guard e.isTestbedAddress || (listening && e.address == 0) else {
            throw ValidationError("\(flag): '\(text)' is outside 198.18.0.0/15, the testbed's range\(listening ? " (or 0.0.0.0)" : "")")
        }
        guard e.port != 0 else { throw ValidationError("\(flag): '\(text)' needs a port") }
        return e
    }

    func validate() throws {
        _ = try transport()
        guard (1...65_536).contains(maxConnections) else { throw ValidationError("--max-connections: \(maxConnections) is outside 1 ... 65536") }
        if client {
            guard listen == nil else { throw ValidationError("--listen is for the server side; the client listens on --redirect-port") }
            guard let converter else { throw ValidationError("--client: give --converter ADDR:PORT") }
            _ = try Self.endpoint("--converter", converter, listening: false)
            guard let redirectPort, redirectPort != 0 else { throw ValidationError("--client: give --redirect-port PORT (1 ... 65535)") }
        } else {
            guard converter == nil, redirectPort == nil else { throw ValidationError("--converter and --redirect-port are for --client") }
            guard let listen else { throw ValidationError("give --listen ADDR:PORT (server side) or --client") }
            _ = try Self.endpoint("--listen", listen, listening: true)
        }
    }

    func run() throws {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)
        let log: @Sendable (String) -> Void = { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let blocked = set
        func onSignal(_ stop: @escaping @Sendable () -> Void) {
            Thread {
                var s = blocked
                var received: Int32 = 0
                sigwait(&s, &received)
                stop()
            }.start()
        }

        if client {
            let converterEndpoint = try Self.endpoint("--converter", converter!, listening: false)
            let synQueue = holdSyns ? (queue ?? redirectPort!) : nil
            let rule = RedirectRule(runID: runID, listenPort: redirectPort!, converterPort: converterEndpoint.port, mark: mark, synQueue: synQueue)
            var settings = ConvertClient.Settings(listen: IPv4Endpoint(address: 0, port: redirectPort!), converter: converterEndpoint)
            settings.maximumConnections = maxConnections
            settings.synQueue = synQueue
            settings.refuseMark = rule.refuseMark
            settings.unreachableMark = rule.unreachableMark
            let side: ConvertClient
            do {
                side = try ConvertClient(settings, dialer: KernelCarrierDialer(transport: try transport(), mark: mark), log: log)
            } catch { throw failure("--redirect-port/--queue: \(error)") }
            // The listener is up before the rule sends anything to it; the rule goes whatever happens next.
            let holding: RedirectRule.Holding
            do { holding = try rule.install() } catch { throw failure("nftables table \(rule.table): \(error)") }
            defer { rule.remove() }
            onSignal { side.stop() }
            log("convert client: redirecting TCP to 198.18.0.0/15 through \(converterEndpoint) (\(carrier)), table \(rule.table)\(synQueue.map { ", SYNs on nfqueue \($0) \(holding)" } ?? "")")
            side.run()
            log("convert client: stopped; \(side.counters)")
        } else {
            var settings = TransportConverter.Settings(listen: try Self.endpoint("--listen", listen!, listening: true))
            settings.carrier = try transport()
            settings.maximumConnections = maxConnections
            let side: TransportConverter
            do { side = try TransportConverter(settings, log: log) } catch { throw failure("--listen: \(error)") }
            onSignal { side.stop() }
            log("convert: converter listening on \(settings.listen) (\(carrier))")
            side.run()
            log("convert: stopped; \(side.counters)")
        }
    }

    func failure(_ message: String) -> Error {
        FileHandle.standardError.write(Data("wayside convert: \(message)\n".utf8))
        return ExitCode(1)
    }
}
