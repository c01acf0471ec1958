/// A first-in first-out buffer with O(1) append and removal at the head
/// (a growable ring), for queues that hold thousands of packets.
public struct PacketFIFO<Element> {
    @usableFromInline var storage: [Element?] = []
    @usableFromInline var head = 0
    @usableFromInline var countStored = 0

    public init() {}

    public var count: Int { countStored }
    public var isEmpty: Bool { countStored == 0 }

    @inlinable public var first: Element? { countStored == 0 ? nil : storage[head] }

    @inlinable public var last: Element? {
        countStored == 0 ? nil : storage[(head + countStored - 1) % storage.count]
    }

    /// The time of the head element, without copying it out.
    @inlinable public func firstTime<P>() -> Instant? where Element == Timed<P> {
        countStored == 0 ? nil : storage[head]!.time
    }

    @inlinable public mutating func append(_ e: Element) {
        if countStored == storage.count { grow() }
        storage[(head + countStored) % storage.count] = e
        countStored += 1
    }

    @inlinable @discardableResult public mutating func removeFirst() -> Element {
        precondition(countStored > 0, "removeFirst on an empty FIFO")
        let e = storage[head]!
        storage[head] = nil
        head = (head + 1) % storage.count
        countStored -= 1
        return e
    }

    @inlinable public mutating func removeAll() {
        storage = []; head = 0; countStored = 0
    }

    /// The elements from head to tail.
    public var elements: [Element] {
        (0..<countStored).map { storage[(head + $0) % storage.count]! }
    }

    @usableFromInline mutating func grow() {
        let newCapacity = max(16, storage.count * 2)
        var s = [Element?](repeating: nil, count: newCapacity)
        for i in 0..<countStored { s[i] = storage[(head + i) % storage.count] }
        storage = s
        head = 0
    }
}

/// A min-heap of elements keyed by (time, insertion order): equal times come
/// out in the order they went in, which keeps every run deterministic.
public struct TimeOrderedQueue<Element> {
    @usableFromInline struct Entry {
        @usableFromInline var time: Instant
        @usableFromInline var order: UInt64
        @usableFromInline var element: Element
        @inlinable init(time: Instant, order: UInt64, element: Element) { self.time = time; self.order = order; self.element = element }
    }
    @usableFromInline var heap: [Entry] = []
    @usableFromInline var nextOrder: UInt64 = 0

    public init() {}

    public var count: Int { heap.count }
    public var isEmpty: Bool { heap.isEmpty }
    /// The earliest time held, or `distantFuture`.
    public var nextTime: Instant { heap.first?.time ?? .distantFuture }
    public var first: (time: Instant, element: Element)? { heap.first.map { ($0.time, $0.element) } }

    @inlinable static func before(_ a: Entry, _ b: Entry) -> Bool {
        a.time != b.time ? a.time < b.time : a.order < b.order
    }

    public mutating func insert(_ element: Element, at time: Instant) {
        heap.append(Entry(time: time, order: nextOrder, element: element))
        nextOrder &+= 1
        var i = heap.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.before(heap[i], heap[parent]) else { break }
            heap.swapAt(i, parent)
            i = parent
        }
    }

    public mutating func removeFirst() -> (time: Instant, element: Element)? {
        guard !heap.isEmpty else { return nil }
        heap.swapAt(0, heap.count - 1)
        let top = heap.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < heap.count, Self.before(heap[l], heap[m]) { m = l }
            if r < heap.count, Self.before(heap[r], heap[m]) { m = r }
            guard m != i else { break }
            heap.swapAt(i, m)
            i = m
        }
        return (top.time, top.element)
    }

    public mutating func removeAll() { heap.removeAll(); }

    /// All elements, in no particular order.
    public var elements: [Element] { heap.map(\.element) }
}

import Core

/// A packet and an instant: when it is due to leave, or when it arrived.
public struct Timed<Packet> {
    public var packet: Packet
    public var time: Instant
    @inlinable public init(_ packet: Packet, _ time: Instant) { self.packet = packet; self.time = time }
}

/// What every stage that delays nothing shares: the packets it holds until they
/// are dequeued (each due at the instant it entered) and the drops it has not
/// yet reported. `PassThrough`, `RandomLoss` and `Duplication` keep one and
/// differ only in what `enqueue` puts into it.
@usableFromInline struct ReadyLine<Packet> {
    @usableFromInline var ready = PacketFIFO<Timed<Packet>>()
    @usableFromInline var drops: [Dropped<Packet>] = []

    @inlinable init() {}

    @inlinable mutating func append(_ packet: Packet, now: Instant) { ready.append(Timed(packet, now)) }

    @inlinable mutating func drop(_ packet: Packet, now: Instant, reason: DropReason) {
        drops.append(Dropped(packet: packet, at: now, reason: reason))
    }

    @inlinable mutating func dequeue(now: Instant) -> Packet? {
        guard let t = ready.firstTime(), t <= now else { return nil }
        return ready.removeFirst().packet
    }

    @inlinable var nextEventTime: Instant { ready.firstTime() ?? .distantFuture }

    @inlinable mutating func flush(now: Instant, reason: DropReason) {
        while !ready.isEmpty { drop(ready.removeFirst().packet, now: now, reason: reason) }
    }

    @inlinable mutating func drainDrops() -> [Dropped<Packet>] {
        if drops.isEmpty { return [] }
        let d = drops
        drops = []
        return d
    }
}
