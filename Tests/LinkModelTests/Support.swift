import Core
import LinkModel

struct TestPacket: LinkPacket, Hashable {
    var id: Int
    var byteCount: Int
}

extension Instant {
    static func ms(_ v: Int) -> Instant { .zero + .milliseconds(v) }
    static func us(_ v: Int) -> Instant { .zero + .microseconds(v) }
}

/// Drives a stage in virtual time: packets enter at their arrival times, and the
/// stage is polled exactly at its `nextEventTime`, as the simulator does.
/// Returns (packet, departure) in departure order, and the drops.
func drive<S: LinkStage>(_ stage: inout S, _ arrivals: [(Instant, S.Packet)], until end: Instant = .distantFuture)
    -> (out: [(S.Packet, Instant)], drops: [Dropped<S.Packet>]) {
    var out: [(S.Packet, Instant)] = []
    var drops: [Dropped<S.Packet>] = []
    var i = 0
    var steps = 0
    while true {
        steps += 1
        precondition(steps < 10_000_000, "the stage does not make progress")
        let nextArrival = i < arrivals.count ? arrivals[i].0 : .distantFuture
        let t = min(nextArrival, stage.nextEventTime)
        if t > end || t == .distantFuture { break }
        while let p = stage.dequeue(now: t) { out.append((p, t)) }
        while i < arrivals.count && arrivals[i].0 == t {
            stage.enqueue(arrivals[i].1, now: t)
            i += 1
        }
        drops += stage.drainDrops()
    }
    drops += stage.drainDrops()
    return (out, drops)
}

func packets(_ n: Int, bytes: Int = 1000, every gap: Interval = .zero, from start: Instant = .zero) -> [(Instant, TestPacket)] {
    (0..<n).map { (start + gap * Int64($0), TestPacket(id: $0, byteCount: bytes)) }
}
