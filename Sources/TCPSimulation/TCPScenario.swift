import Core
import LinkModel
import Simulation
import TCP
import Wire

/// One simulated TCP experiment: `flows` bulk senders behind a router, one
/// receiving host, and a bottleneck from the router to the receiver that
/// carries the rate, queue, loss, reordering, duplication and outage.
///
/// ```
/// sender-1 ─┐                    bottleneck (rate, queue, loss, delay = RTT/2)
/// sender-2 ─┼── router ═══════════════════════════════════════════ receiver
///    ...   ─┘            ◀── ACKs: delay = RTT/2, optional ACK loss
/// ```
public struct TCPScenario: Sendable {
    public var rate: Bitrate? = .mbit(20)
    public var roundTripTime: Interval = .milliseconds(50)
    /// The bottleneck's drop-tail queue in packets; nil: one bandwidth-delay product.
    public var queuePackets: Int?
    /// Random loss of data packets (router → receiver).
    public var loss: Probability = .zero
    /// Random loss of ACKs (receiver → router).
    public var ackLoss: Probability = .zero
    public var reorderProbability: Probability = .zero
    public var reorderDelay: Interval = .milliseconds(5)
    public var duplicateProbability: Probability = .zero
    /// The bottleneck is dead (both ways) in this window, offsets from the start.
    public var outage: (from: Interval, to: Interval)?
    public var flows = 1
    /// Bytes each flow sends; nil: without end, until `duration`.
    public var bytesPerFlow: Int?
    /// How long the run may last (simulated).
    public var duration: Interval = .seconds(30)
    /// Delay between the starts of successive flows.
    public var flowStartSpacing: Interval = .zero
    public var configuration = TCPConfiguration()
    public var reader: ReaderSchedule = .immediate
    public var seed: UInt64 = 1
    public var capturesPackets = false

    public init() {}

    /// Bytes in one bandwidth-delay product.
    public var bandwidthDelayProduct: Int {
        guard let rate else { return 0 }
        return Int(Double(rate.bitsPerSecond) / 8 * roundTripTime.seconds)
    }

    static let receiverAddress = NodeAddress(198, 18, 0, 2)
    static func senderAddress(_ i: Int) -> NodeAddress { NodeAddress(198, 18, 1, UInt8(1 + i)) }

    public func run() -> TCPScenarioResult {
        var network = Network(seed: seed, logsEvents: false, capturesPackets: capturesPackets)
        // Names are unique by construction, so building cannot fail.
        let router = try! network.addRouter("router")
        var receiver = TCPHost(address: Self.receiverAddress)
        var senderIDs: [NodeID] = []
        for i in 0..<flows {
            var sender = TCPHost(address: Self.senderAddress(i))
            let port = UInt16(40_000 + i)
            sender.addFlow(localPort: port, remote: Self.receiverAddress, remotePort: 5_001,
                           role: .bulkSender(bytes: bytesPerFlow, start: .zero + flowStartSpacing * Int64(i)),
                           configuration: configuration, seed: seed &+ UInt64(i) &* 7_919)
            receiver.addFlow(localPort: 5_001, remote: Self.senderAddress(i), remotePort: port,
                             role: .sink(reader: reader), configuration: configuration, seed: seed &+ 104_729 &+ UInt64(i))
            let id = try! network.addHost("sender-\(i + 1)", sender)
            try! network.connect(id, Self.senderAddress(i), router, nil, name: "access-\(i + 1)")
            senderIDs.append(id)
        }
        let receiverID = try! network.addHost("receiver", receiver)
        let bdpPackets = max(1, bandwidthDelayProduct / 1_500)
        let forward = LinkParameters(delay: roundTripTime / 2, rate: rate, loss: loss,
                                     queuePackets: queuePackets ?? bdpPackets)
        let backward = LinkParameters(delay: roundTripTime / 2, loss: ackLoss)
        let options = PipelineOptions(reorderProbability: reorderProbability, reorderDelay: reorderDelay,
                                      duplicateProbability: duplicateProbability)
        let bottleneck = try! network.connect(router, nil, receiverID, Self.receiverAddress, name: "bottleneck",
                                              parameters: forward, options: options,
                                              reverse: backward, reverseOptions: options)
        if let outage { network.addOutage(bottleneck, from: outage.from, to: outage.to) }

        // Run in slices, stopping once every flow has finished.
        let end = Instant.zero + duration
        var finished = false
        while network.now < end && !finished {
            network.run(until: min(end, network.now + .milliseconds(100)))
            if bytesPerFlow != nil, let r = network.host(receiverID, as: TCPHost.self) {
                finished = r.flows.allSatisfy { $0.finishedAt != nil }
            }
        }
        let receiverHost = network.host(receiverID, as: TCPHost.self)!
        var results: [TCPFlowResult] = []
        var segments = receiverHost.segmentsIn + receiverHost.segmentsOut
        for (i, id) in senderIDs.enumerated() {
            let s = network.host(id, as: TCPHost.self)!
            segments += s.segmentsIn + s.segmentsOut
            results.append(TCPFlowResult(sender: s.flows[0], receiver: receiverHost.flows[i]))
        }
        let drops = network.counters(bottleneck, .aToB).totalDropped + network.counters(bottleneck, .bToA).totalDropped
        return TCPScenarioResult(flows: results, simulatedTime: network.now - .zero, bottleneckDrops: drops,
                                 engineSegments: segments, pcap: capturesPackets ? network.pcap() : nil)
    }
}

/// What one flow achieved.
public struct TCPFlowResult {
    public var sender: TCPFlow
    public var receiver: TCPFlow

    public var bytesDelivered: Int { receiver.bytesRead }
    /// Whether the receiver read exactly what the sender wrote (SHA-256 of both streams).
    public var isIntact: Bool { sender.digest != nil && sender.digest == receiver.digest }
    public var counters: TCPCounters { sender.connection.counters }
    public var completedAt: Instant? { receiver.finishedAt }

    /// Goodput in bits per second over `[from, to]`.
    public func goodput(from: Instant, to: Instant) -> Double {
        Double(receiver.bytesRead(from: from, to: to)) * 8 / max((to - from).seconds, 1e-9)
    }
}

public struct TCPScenarioResult {
    public var flows: [TCPFlowResult]
    public var simulatedTime: Interval
    public var bottleneckDrops: Int
    /// Segments handled or produced by the engines, all hosts together.
    public var engineSegments: Int
    public var pcap: [UInt8]?

    /// Jain's fairness index of the flows' goodputs over `[from, to]`: (Σx)²/(n·Σx²).
    public func jainFairness(from: Instant, to: Instant) -> Double {
        let x = flows.map { $0.goodput(from: from, to: to) }
        let sum = x.reduce(0, +), squares = x.reduce(0) { $0 + $1 * $1 }
        return squares > 0 ? sum * sum / (Double(x.count) * squares) : 0
    }
}
