import Core
import TCP
import Wire

/// Two connections wired back to back with no network in between: every
/// segment one sends is handed to the other at once (virtual time advances
/// 10 µs per segment). It isolates the engine's own cost per segment, for
/// benchmarks, and is a transfer test without any simulator underneath.
public struct EngineLoop {
    public private(set) var client: TCPConnection
    public private(set) var server: TCPConnection
    public private(set) var now = Instant.zero
    /// Segments handed to `handle`, both directions.
    public private(set) var segmentsHandled = 0
    public private(set) var bytesReceived = 0

    public init(configuration: TCPConfiguration = TCPConfiguration()) {
        let a = TCPFourTuple(localAddress: [198, 18, 0, 1], localPort: 40_000, remoteAddress: [198, 18, 0, 2], remotePort: 80)
        let b = TCPFourTuple(localAddress: [198, 18, 0, 2], localPort: 80, remoteAddress: [198, 18, 0, 1], remotePort: 40_000)
        client = TCPConnection(tuple: a, configuration: configuration, isnGenerator: InitialSequenceNumberGenerator(seed: 1))
        server = TCPConnection(tuple: b, configuration: configuration, isnGenerator: InitialSequenceNumberGenerator(seed: 2))
        server.listen()
    }

    /// Sends `total` bytes from client to server; returns whether all arrived.
    public mutating func transfer(_ total: Int) -> Bool {
        var toServer: [TCPSegment] = []
        var toClient: [TCPSegment] = []
        func segments(_ actions: [TCPAction]) -> [TCPSegment] {
            actions.compactMap { if case .send(let s) = $0 { return s } else { return nil } }
        }
        toServer += segments(client.connect(now: now))
        let chunk = [UInt8](repeating: 0x5a, count: 65_536)
        var written = 0
        var idleRounds = 0
        while bytesReceived < total && idleRounds < 1_000 {
            if client.state == .established && written < total {
                let n = client.send(chunk.prefix(min(chunk.count, total - written)))
                written += n
                toServer += segments(client.poll(now: now))
            }
            var progressed = false
            var i = 0
            while i < toServer.count {
                now += .microseconds(10)
                toClient += segments(server.handle(toServer[i], now: now))
                segmentsHandled += 1
                i += 1
                progressed = true
            }
            toServer.removeAll(keepingCapacity: true)
            let got = server.receive()
            bytesReceived += got.count
            toClient += segments(server.poll(now: now))
            i = 0
            while i < toClient.count {
                now += .microseconds(10)
                toServer += segments(client.handle(toClient[i], now: now))
                segmentsHandled += 1
                i += 1
                progressed = true
            }
            toClient.removeAll(keepingCapacity: true)
            if !progressed {
                // Nothing in flight: let the timers (delayed ACK) run.
                now = max(now, min(client.nextDeadline, server.nextDeadline))
                toServer += segments(client.poll(now: now))
                toClient += segments(server.poll(now: now))
                idleRounds += 1
            }
        }
        return bytesReceived >= total
    }
}
