import ArgumentParser
import Core
import Foundation
import TCP
import TCPSimulation

/// `wayside simulate-tcp`: one TCP scenario in the simulator, from flags.
struct SimulateTCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate-tcp",
        abstract: "Run TCP bulk transfers across a simulated bottleneck and summarise them.",
        discussion: """
        Senders behind a router share one bottleneck to a receiver: a rate with a \
        drop-tail queue, random loss, reordering, duplication and an optional outage, \
        and half the round-trip time each way. Everything runs in virtual time from the \
        seed, so the same flags give the same run. With --pcap, every packet sent is \
        written to a classic pcap file (raw IP) for Wireshark or `wayside decode`.
        """
    )

    @Option(help: "Bottleneck rate, e.g. 20mbit.") var rate = "20mbit"
    @Option(help: "Round-trip time without queueing, e.g. 50ms.") var rtt = "50ms"
    @Option(help: "Bottleneck queue in packets (default: one bandwidth-delay product).") var queue: Int?
    @Option(help: "Random loss of data packets, e.g. 1% or 0.01.") var loss = "0"
    @Option(name: .customLong("ack-loss"), help: "Random loss of ACKs.") var ackLoss = "0"
    @Option(help: "Share of packets reordered (held back by --reorder-delay).") var reorder = "0"
    @Option(name: .customLong("reorder-delay"), help: "How long a reordered packet is held back.") var reorderDelay = "5ms"
    @Option(help: "Share of packets duplicated.") var duplicate = "0"
    @Option(help: "Outage of the bottleneck as START-END offsets, e.g. 2s-32s.") var outage: String?
    @Option(help: "Number of flows sharing the bottleneck.") var flows = 1
    @Option(help: "Bytes per flow, e.g. 50MB (default: send until --duration).") var bytes: String?
    @Option(help: "Simulated time limit.") var duration = "30s"
    @Option(help: "Congestion control: reno or cubic.") var cc = "cubic"
    @Flag(name: .customLong("no-sack"), help: "Turn SACK off (NewReno recovery).") var noSACK = false
    @Flag(name: .customLong("no-timestamps"), help: "Turn RFC 7323 timestamps off.") var noTimestamps = false
    @Option(name: .customLong("receive-buffer"), help: "Receive buffer per connection, e.g. 256KiB.") var receiveBuffer = "4MiB"
    @Option(name: .customLong("send-buffer"), help: "Send buffer per connection.") var sendBuffer = "4MiB"
    @Option(help: "Seed of every random choice.") var seed: UInt64 = 1
    @Option(help: "Write a pcap of every packet sent to this file.") var pcap: String?

    func scenario() throws -> TCPScenario {
        func parse<T>(_ flag: String, _ text: String, _ body: (String) throws(QuantityError) -> T) throws -> T {
            do { return try body(text) } catch { throw ValidationError("--\(flag) '\(text)': expected \(error.expected)") }
        }
        var s = TCPScenario()
        s.rate = try parse("rate", rate, Bitrate.parse)
        s.roundTripTime = try parse("rtt", rtt, Quantity.nonNegativeInterval)
        if let queue {
            guard queue > 0 else { throw ValidationError("--queue \(queue): expected a positive number of packets") }
            s.queuePackets = queue
        }
        s.loss = try parse("loss", loss, Probability.parse)
        s.ackLoss = try parse("ack-loss", ackLoss, Probability.parse)
        s.reorderProbability = try parse("reorder", reorder, Probability.parse)
        s.reorderDelay = try parse("reorder-delay", reorderDelay, Quantity.nonNegativeInterval)
        s.duplicateProbability = try parse("duplicate", duplicate, Probability.parse)
        if let outage {
            let parts = outage.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2 else { throw ValidationError("--outage '\(outage)': expected START-END, e.g. 2s-32s") }
            let from = try parse("outage", String(parts[0]), Quantity.nonNegativeInterval)
            let to = try parse("outage", String(parts[1]), Quantity.nonNegativeInterval)
            guard from < to else { throw ValidationError("--outage '\(outage)': the end must come after the start") }
            s.outage = (from, to)
        }
        guard (1...200).contains(flows) else { throw ValidationError("--flows \(flows): expected 1 to 200") }
        s.flows = flows
        if let bytes {
            let n = try parse("bytes", bytes, ByteSize.parse)
            guard n > 0 else { throw ValidationError("--bytes '\(bytes)': expected more than zero") }
            s.bytesPerFlow = n
        }
        s.duration = try parse("duration", duration, Quantity.nonNegativeInterval)
        guard let algorithm = CongestionControlAlgorithm(rawValue: cc) else {
            throw ValidationError("--cc '\(cc)': expected one of \(CongestionControlAlgorithm.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        s.configuration.congestionControl = algorithm
        s.configuration.selectiveAcknowledgments = !noSACK
        s.configuration.timestamps = !noTimestamps
        s.configuration.receiveBufferSize = try parse("receive-buffer", receiveBuffer, ByteSize.parse)
        s.configuration.sendBufferSize = try parse("send-buffer", sendBuffer, ByteSize.parse)
        guard s.configuration.receiveBufferSize >= 1_500, s.configuration.sendBufferSize >= 1_500 else {
            throw ValidationError("--receive-buffer/--send-buffer: expected at least 1500 bytes")
        }
        s.seed = seed
        s.capturesPackets = pcap != nil
        return s
    }

    func validate() throws { _ = try scenario() }

    func run() throws {
        let s = try scenario()
        let result = s.run()
        print(TCPReport.summary(of: result, scenario: s))
        if let pcap, let bytes = result.pcap {
            guard FileManager.default.createFile(atPath: pcap, contents: Data(bytes)) else {
                throw ValidationError("--pcap '\(pcap)': cannot write the file")
            }
            print("pcap: \(pcap) (\(bytes.count) bytes)")
        }
        if s.bytesPerFlow != nil && !result.flows.allSatisfy({ $0.isIntact && $0.completedAt != nil }) {
            throw ExitCode(1)
        }
    }
}

/// Text renderings of scenario results, shared by `simulate-tcp` and `bench tcp`.
enum TCPReport {
    static func mbit(_ bps: Double) -> String { String(format: "%.2f Mbit/s", bps / 1e6) }

    static func summary(of r: TCPScenarioResult, scenario s: TCPScenario) -> String {
        var lines: [String] = []
        let rate = s.rate.map { "\($0)" } ?? "unlimited"
        lines.append("scenario: \(s.flows) flow(s), \(s.configuration.congestionControl.rawValue), rate \(rate), RTT \(s.roundTripTime), queue \(s.queuePackets.map(String.init) ?? "BDP") packets, loss \(s.loss), ack loss \(s.ackLoss), reorder \(s.reorderProbability), duplicate \(s.duplicateProbability)\(s.outage.map { ", outage \($0.from)-\($0.to)" } ?? ""), seed \(s.seed)")
        lines.append("simulated: \(r.simulatedTime), bottleneck drops: \(r.bottleneckDrops)")
        lines.append(pad(["flow", "delivered", "intact", "done at", "goodput", "rtx", "RTOs", "fast rec.", "SACK blks", "srtt", "cwnd", "ssthresh"]))
        for (i, f) in r.flows.enumerated() {
            let c = f.sender.connection
            let end = f.completedAt ?? (.zero + r.simulatedTime)
            let start = f.sender.establishedAt ?? .zero
            let ssthresh = c.slowStartThreshold == .max ? "∞" : "\(c.slowStartThreshold)"
            lines.append(pad(["\(i + 1)", "\(f.bytesDelivered)", s.bytesPerFlow == nil ? "-" : (f.isIntact ? "yes" : "NO"),
                              f.completedAt.map { "\($0)" } ?? "-", mbit(f.goodput(from: start, to: end)),
                              "\(f.counters.retransmissions)", "\(f.counters.retransmissionTimeouts)",
                              "\(f.counters.fastRecoveries)", "\(f.counters.sackBlocksReceived)",
                              c.smoothedRTT.map { String(format: "%.1fms", $0.milliseconds) } ?? "-",
                              "\(c.congestionWindow)", ssthresh]))
        }
        if r.flows.count > 1 {
            lines.append(String(format: "Jain fairness over the run: %.3f", r.jainFairness(from: .zero, to: .zero + r.simulatedTime)))
        }
        return lines.joined(separator: "\n")
    }

    static func pad(_ cells: [String]) -> String {
        let widths = [4, 11, 6, 14, 15, 6, 5, 9, 9, 8, 9, 9]
        return zip(cells, widths).map { $0.0.padding(toLength: max($0.1, $0.0.count), withPad: " ", startingAt: 0) }
            .joined(separator: " ")
    }
}
