/// A FIFO of bytes that appends at the back and consumes from the front in
/// amortised O(1), used for both the send and the receive buffer.
struct ByteQueue: Sendable {
    private var storage: [UInt8] = []
    private var head = 0

    var count: Int { storage.count - head }
    var isEmpty: Bool { count == 0 }

    mutating func append<C: Collection>(contentsOf bytes: C) where C.Element == UInt8 {
        storage.append(contentsOf: bytes)
    }

    /// Bytes `[offset, offset + length)` counted from the front.
    func slice(from offset: Int, length: Int) -> ArraySlice<UInt8> {
        storage[(head + offset)..<(head + offset + length)]
    }

    mutating func removeFirst(_ n: Int) {
        head += n
        // Compact once the consumed prefix dominates, keeping appends cheap.
        if head > 65_536 && head * 2 > storage.count {
            storage.removeFirst(head)
            head = 0
        }
    }

    mutating func popFirst(_ n: Int) -> [UInt8] {
        let k = min(n, count)
        let out = Array(storage[head..<(head + k)])
        removeFirst(k)
        return out
    }
}
