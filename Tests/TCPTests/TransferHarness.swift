import Core
import Wire
@testable import TCP

/// A small deterministic two-endpoint network for transfer tests before the
/// simulator exists: a fixed one-way delay, seeded random loss, optional
/// reordering, and a bottleneck rate with an unbounded queue. Virtual time
/// jumps from event to event.
struct TwoEndpointHarness {
    struct InFlight { var arrival: Instant; var order: Int; var toServer: Bool; var segment: TCPSegment }

    var client: TCPConnection
    var server: TCPConnection
    var now = Instant.zero
    var delay: Interval = .milliseconds(10)
    var lossProbability = 0.0
    var reorderProbability = 0.0
    /// Bytes per second of the bottleneck (both directions); nil for unlimited.
    var rate: Double?
    var dropFilter: ((TCPSegment, Bool, Instant) -> Bool)?
    private var random = SeededRandom(seed: 7, stream: "harness")
    private var inFlight: [InFlight] = []
    private var order = 0
    private var linkFree: [Bool: Instant] = [true: .zero, false: .zero]
    var delivered: [UInt8] = []
    var segmentsCarried = 0

    init(client: TCPConfiguration, server: TCPConfiguration, seed: UInt64 = 7) {
        let clientTuple = TCPFourTuple(localAddress: [198, 18, 0, 1], localPort: 40_000,
                                       remoteAddress: [198, 18, 0, 2], remotePort: 80)
        let serverTuple = TCPFourTuple(localAddress: [198, 18, 0, 2], localPort: 80,
                                       remoteAddress: [198, 18, 0, 1], remotePort: 0)
        self.client = TCPConnection(tuple: clientTuple, configuration: client, isnGenerator: InitialSequenceNumberGenerator(seed: seed))
        self.server = TCPConnection(tuple: serverTuple, configuration: server, isnGenerator: InitialSequenceNumberGenerator(seed: seed + 1))
        self.random = SeededRandom(seed: seed, stream: "harness")
        self.server.listen()
    }

    mutating func carry(_ actions: [TCPAction], toServer: Bool) {
        for case .send(let segment) in actions {
            segmentsCarried += 1
            if let dropFilter, dropFilter(segment, toServer, now) { continue }
            if random.chance(lossProbability) { continue }
            var departure = now
            if let rate {
                let start = max(now, linkFree[toServer]!)
                departure = start + .seconds(fractional: Double(segment.payload.count + 52) / rate)
                linkFree[toServer] = departure
            }
            var arrival = departure + delay
            if random.chance(reorderProbability) { arrival = arrival + .milliseconds(3) }
            order += 1
            inFlight.append(InFlight(arrival: arrival, order: order, toServer: toServer, segment: segment))
        }
    }

    /// Runs until `done` holds or `limit` passes; the client sends `data` then closes.
    mutating func transfer(_ data: [UInt8], closeAfter: Bool = true, limit: Interval = .seconds(600),
                           readChunk: Int = .max, readEvery: Interval? = nil) -> Bool {
        var offset = 0
        carry(client.connect(now: now), toServer: true)
        var nextRead = Instant.zero
        var closed = false
        var steps = 0
        while now < Instant.zero + limit {
            steps += 1
            if steps > 20_000_000 { return false }
            // Application: keep the send buffer full, close when everything is queued.
            if client.state == .established || client.state == .closeWait {
                if offset < data.count {
                    let n = client.send(data[offset..<min(data.count, offset + 65_536)])
                    offset += n
                    if n > 0 { carry(client.poll(now: now), toServer: true) }
                }
                if offset == data.count && closeAfter && !closed {
                    client.close(); closed = true
                    carry(client.poll(now: now), toServer: true)
                }
            }
            if readEvery == nil || now >= nextRead {
                let got = server.receive(maximum: readChunk)
                if !got.isEmpty {
                    delivered += got
                    carry(server.poll(now: now), toServer: false)
                }
                if let readEvery { nextRead = now + readEvery }
            }
            if delivered.count == data.count && server.isReceiveFinished { return true }
            if client.state == .closed && client.closeReason != .normal { return false }
            // Next event.
            var next = min(client.nextDeadline, server.nextDeadline)
            if let readEvery, server.receivableBytes > 0 { next = min(next, max(nextRead, now)) }
            var index: Int?
            for (i, p) in inFlight.enumerated() where p.arrival < next || (p.arrival == next && index == nil) {
                if let j = index, (inFlight[j].arrival, inFlight[j].order) <= (p.arrival, p.order) { continue }
                index = i
            }
            if let i = index, inFlight[i].arrival <= next {
                let p = inFlight.remove(at: i)
                now = max(now, p.arrival)
                if p.toServer {
                    carry(server.handle(p.segment, now: now), toServer: false)
                } else {
                    carry(client.handle(p.segment, now: now), toServer: true)
                }
                continue
            }
            if next == .distantFuture { return false }
            now = max(now, next)
            carry(client.poll(now: now), toServer: true)
            carry(server.poll(now: now), toServer: false)
        }
        return false
    }
}
