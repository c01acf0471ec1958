import Analysis
import ArgumentParser
import Core
import Foundation
import MPTCP
import Stack
import TCP
import Traffic
#if canImport(Glibc)
import Glibc
#endif

/// `wayside node`: one traffic application on one node, over kernel sockets or
/// the Swift stack running in this process, logging docs/LOGS.md events.
/// Run it inside the node's namespace (`ip netns exec NS wayside node ...`).
struct NodeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Run one traffic application on this node and log its events.",
        discussion: """
        Senders (bulk, cbr, rr) connect to --connect; receivers (sink, echo) accept one \
        connection on --listen. SIGINT or SIGTERM ends the application cleanly: a sender \
        closes its side (FIN, or DATA_FIN over MPTCP), and the log is flushed.
        Example: wayside node --app cbr --rate 1000 --size 1024 --connect 198.18.0.1:5000 \
        --socket kernel-mptcp --log car.jsonl
        With --socket swift the node runs the Swift MPTCP stack on the TUN device --tun \
        (made by the testbed) with one --stack-address per path, e.g. \
        --socket swift --tun wt-abc123 --stack-address 198.19.255.254=eth0 --stack-address 198.19.255.253=eth1.
        """
    )

    @Option(help: ArgumentHelp("bulk, cbr, rr, sink or echo.", valueName: "APP"))
    var app: String

    @Option(help: ArgumentHelp("kernel-mptcp, kernel-tcp or swift.", valueName: "KIND"))
    var socket: String = "kernel-mptcp"

    @OptionGroup var swift: SwiftStackOptions

    @Option(help: ArgumentHelp("Server address to connect to (senders).", valueName: "ADDR:PORT"))
    var connect: String?

    @Option(help: ArgumentHelp("Address to accept one connection on (sink, echo); 0.0.0.0:PORT for every address of the node.", valueName: "ADDR:PORT"))
    var listen: String?

    @Option(help: ArgumentHelp("Local address for the first subflow (senders).", valueName: "ADDR:PORT"))
    var bind: String?

    @Option(help: "Messages per second (cbr; rr paces requests at this rate, 0 = back to back).")
    var rate: Int = 1000

    @Option(help: ArgumentHelp("Message size, header (24 B) included (cbr, rr).", valueName: "SIZE"))
    var size: String = "1024"

    @Option(help: ArgumentHelp("How long a sender sends; default until SIGINT/SIGTERM.", valueName: "DURATION"))
    var duration: String?

    @Option(help: ArgumentHelp("Connection label, the same at both ends.", valueName: "LABEL"))
    var conn: String = "flow0"

    @Option(help: ArgumentHelp("This node's name in the logs.", valueName: "NAME"))
    var node: String = "node"

    @Option(name: .customLong("run"), help: ArgumentHelp("Run id recorded in the log header.", valueName: "ID"))
    var runID: String = ""

    @Option(help: ArgumentHelp("CLOCK_MONOTONIC nanoseconds of the run's start; default: now.", valueName: "NS"))
    var epoch: Int64?

    @Option(help: ArgumentHelp("Event log to write (JSON lines).", valueName: "FILE"))
    var log: String

    @Option(name: .customLong("path"), help: ArgumentHelp("Name the path of subflows using this address: ADDR=LINK; repeatable.", valueName: "ADDR=LINK"))
    var paths: [String] = []

    @Option(help: ArgumentHelp("How long a sender retries connecting.", valueName: "DURATION"))
    var connectTimeout: String = "10s"

    @Option(name: .customLong("attribute"), help: ArgumentHelp("KEY=VALUE recorded in the log header; repeatable.", valueName: "KEY=VALUE"))
    var attributes: [String] = []

    func parsed() throws -> TrafficConfiguration {
        guard let kind = AppKind(rawValue: app) else {
            throw ValidationError("--app: '\(app)' is not one of \(AppKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        // The Swift stack's applications are configured like kernel MPTCP's;
        // `swiftStack()` says what runs underneath.
        let kernelKind: SocketKind? = socket == "swift" ? .kernelMPTCP : SocketKind(rawValue: socket)
        guard let socketKind = kernelKind else {
            throw ValidationError("--socket: '\(socket)' is not one of \((SocketKind.allCases.map(\.rawValue) + ["swift"]).joined(separator: ", "))")
        }
        if socket != "swift", let flag = swift.givenFlag {
            throw ValidationError("\(flag) is for --socket swift, not --socket \(socket)")
        }
        let addressText: String
        let flag: String
        if kind.sends {
            guard let connect else { throw ValidationError("--app \(app) sends: give --connect ADDR:PORT") }
            guard listen == nil else { throw ValidationError("--listen is for sink and echo, not --app \(app)") }
            addressText = connect; flag = "--connect"
        } else {
            guard let listen else { throw ValidationError("--app \(app) receives: give --listen ADDR:PORT") }
            guard connect == nil, bind == nil else { throw ValidationError("--connect and --bind are for senders, not --app \(app)") }
            addressText = listen; flag = "--listen"
        }
        func address(_ flag: String, _ text: String) throws -> SocketAddress {
            do { return try SocketAddress.parse(text) } catch { throw ValidationError("\(flag): \(error)") }
        }
        func interval(_ flag: String, _ text: String) throws -> Interval {
            do throws(QuantityError) {
                let d = try Quantity.nonNegativeInterval(text)
                guard d > .zero else { throw QuantityError(text: text, expected: "a positive duration") }
                return d
            } catch { throw ValidationError("\(flag): \(error.description)") }
        }
        let sizeBytes: Int
        do throws(QuantityError) { sizeBytes = try ByteSize.parse(size) } catch { throw ValidationError("--size: \(error.description)") }
        guard (MessageFraming.headerSize...MessageFraming.maximumSize).contains(sizeBytes) else {
            throw ValidationError("--size: \(size) is outside \(MessageFraming.headerSize) B ... 16 MiB")
        }
        guard rate >= 0, rate <= 1_000_000, kind != .cbr || rate > 0 else {
            throw ValidationError("--rate: \(rate) messages per second is outside \(kind == .cbr ? 1 : 0) ... 1000000")
        }
        var pathMap: [String: String] = [:]
        for p in paths {
            let parts = p.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, SocketAddress.isIPv4(parts[0]), !parts[1].isEmpty else {
                throw ValidationError("--path: cannot read '\(p)': expected ADDR=LINK, e.g. 198.18.1.2=car-rsu1")
            }
            pathMap[parts[0]] = parts[1]
        }
        let parsedAddress: SocketAddress
        if kind.sends { parsedAddress = try address(flag, addressText) } else {
            do { parsedAddress = try SocketAddress.parseListening(addressText) } catch { throw ValidationError("\(flag): \(error)") }
        }
        return TrafficConfiguration(
            app: kind, socket: socketKind, address: parsedAddress,
            bind: try bind.map { try address("--bind", $0 + ($0.contains(":") ? "" : ":0")) }, rate: rate, size: sizeBytes,
            duration: try duration.map { try interval("--duration", $0) }, conn: conn, paths: pathMap,
            connectTimeout: try interval("--connect-timeout", connectTimeout))
    }

    func validate() throws {
        _ = try parsed()
        if socket == "swift" { _ = try swift.configuration(node: node, eventLog: nil) }
        for a in attributes where !a.contains("=") {
            throw ValidationError("--attribute: cannot read '\(a)': expected KEY=VALUE")
        }
    }

    func run() throws {
        let configuration = try parsed()
        // Signals go to one thread that asks the application to stop; every other thread has them blocked.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
        signal(SIGPIPE, SIG_IGN)

        var attrs: [String: String] = ["app": app, "node_role": configuration.app.sends ? "client" : "server"]
        for a in attributes {
            let kv = a.split(separator: "=", maxSplits: 1).map(String.init)
            attrs[kv[0]] = kv.count > 1 ? kv[1] : ""
        }
        let clock = RunClock(epoch: epoch ?? RunClock.monotonicNanoseconds())
        let writer: EventLogWriter
        do {
            writer = try EventLogWriter(path: log, source: .node(node), clock: clock, run: runID, stack: socket, attributes: attrs)
        } catch { throw ValidationError("--log: \(error)") }
        defer { writer.close() }
        // Kernel stacks: the namespace's link, carrier and address changes (docs/LOGS.md `interface`).
        let interfaces = [SocketKind.kernelMPTCP, .kernelTCP].contains(configuration.socket) ? try? InterfaceMonitor(log: writer) : nil
        interfaces?.start()
        defer { interfaces?.stop() }
        var stack: SwiftStack?
        if socket == "swift" {
            let s = SwiftStack(configuration: try swift.configuration(node: node, eventLog: writer, labels: configuration.paths))
            do { try s.start(namespace: nil) } catch {
                FileHandle.standardError.write(Data("wayside node: cannot start the Swift stack on \(swift.tun ?? ""): \(error)\n".utf8))
                throw ExitCode(1)
            }
            stack = s
        }
        // Connections closed with DATA_FIN, the stack's capture and events flushed, before the log closes.
        defer { stack?.stop(grace: .seconds(2)) }
        let trafficApp = TrafficApp(configuration: configuration, log: writer, transport: stack.map { StackTransport(stack: $0) })
        let blocked = set
        let waiter = Thread {
            var s = blocked
            var received: Int32 = 0
            sigwait(&s, &received)
            trafficApp.stop()
        }
        waiter.start()
        do { try trafficApp.run() } catch {
            writer.flush()
            FileHandle.standardError.write(Data("wayside node: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// `wayside node --socket swift`: where the stack sits and how it behaves.
struct SwiftStackOptions: ParsableArguments {
    @Option(help: ArgumentHelp("The TUN device the testbed made for the Swift stack (--socket swift).", valueName: "NAME"))
    var tun: String?

    @Option(name: .customLong("stack-address"),
            help: ArgumentHelp("One path of the Swift stack: its own address and the interface it leaves by; repeatable, first is the initial path (--socket swift).",
                               valueName: "ADDR=IFACE"))
    var stackAddresses: [String] = []

    @Option(name: .customLong("backup-interface"), help: ArgumentHelp("A path to use only as backup (MP_PRIO, RFC 8684 §3.3.8); repeatable (--socket swift).", valueName: "IFACE"))
    var backupInterfaces: [String] = []

    @Option(name: .customLong("path-manager"), help: ArgumentHelp("Swift stack path manager: \(PathManagers.names.joined(separator: ", ")).", valueName: "NAME"))
    var pathManager: String?

    @Option(help: ArgumentHelp("Swift stack scheduler: \(Schedulers.names.joined(separator: ", ")).", valueName: "NAME"))
    var scheduler: String?

    @Option(name: .customLong("congestion-control"), help: ArgumentHelp("Swift stack coupled congestion control: \(CoupledAlgorithm.names.joined(separator: ", ")).", valueName: "NAME"))
    var congestionControl: String?

    @Option(help: ArgumentHelp("Capture every packet the Swift stack sends and receives (pcap, LINKTYPE_RAW).", valueName: "FILE"))
    var pcap: String?

    @Option(name: .customLong("stack-seed"), help: ArgumentHelp("Seed of the Swift stack's keys, nonces and initial sequence numbers.", valueName: "N"))
    var seed: UInt64?

    /// The first Swift-only flag given, for refusing it with a kernel socket.
    var givenFlag: String? {
        if tun != nil { return "--tun" }
        if !stackAddresses.isEmpty { return "--stack-address" }
        if !backupInterfaces.isEmpty { return "--backup-interface" }
        if pathManager != nil { return "--path-manager" }
        if scheduler != nil { return "--scheduler" }
        if congestionControl != nil { return "--congestion-control" }
        if pcap != nil { return "--pcap" }
        if seed != nil { return "--stack-seed" }
        return nil
    }

    func configuration(node: String, eventLog: EventLogWriter?, labels: [String: String] = [:]) throws -> StackConfiguration {
        guard let tun, !tun.isEmpty, tun.utf8.count <= 15 else { throw ValidationError("--socket swift: give --tun NAME (at most 15 bytes), the TUN device the testbed made") }
        guard !stackAddresses.isEmpty else { throw ValidationError("--socket swift: give at least one --stack-address ADDR=IFACE") }
        var paths: [StackPath] = []
        for text in stackAddresses {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[1].isEmpty, let bytes = InetBytes.parse(parts[0]) else {
                throw ValidationError("--stack-address: cannot read '\(text)': expected ADDR=IFACE, e.g. 198.19.255.254=eth0")
            }
            guard bytes[0] == 198, bytes[1] & 0xfe == 18 else {
                throw ValidationError("--stack-address: cannot read '\(text)': expected an address in 198.18.0.0/15, the testbed's range")
            }
            guard !paths.contains(where: { $0.address == bytes || $0.interface == parts[1] }) else {
                throw ValidationError("--stack-address: '\(text)' repeats an address or interface")
            }
            paths.append(StackPath(address: bytes, interface: parts[1], backup: backupInterfaces.contains(parts[1]), label: labels[parts[0]]))
        }
        for b in backupInterfaces where !paths.contains(where: { $0.interface == b }) {
            throw ValidationError("--backup-interface: '\(b)' is not the interface of any --stack-address")
        }
        var mptcp = MPTCPConfiguration()
        if let pathManager { mptcp.pathManager = try Experiment.choice(pathManager, of: PathManagers.names, flag: "--path-manager") }
        if let scheduler { mptcp.scheduler = try Experiment.choice(scheduler, of: Schedulers.names, flag: "--scheduler") }
        if let congestionControl {
            guard let cc = Experiment.congestionControl(named: congestionControl) else {
                throw ValidationError("--congestion-control: '\(congestionControl)' is not one of \(Experiment.congestionControlNames.joined(separator: ", "))")
            }
            if let c = cc.coupled { mptcp.coupledCongestionControl = c }
            if let u = cc.uncoupled { mptcp.tcp.congestionControl = u }
        }
        var c = StackConfiguration(tunName: tun, paths: paths, mptcp: mptcp, seed: seed ?? UInt64(truncatingIfNeeded: RunClock.monotonicNanoseconds()))
        c.pcapPath = pcap
        c.eventLog = eventLog
        c.nodeName = node
        return c
    }
}
