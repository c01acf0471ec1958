import CEmulator
import Core
import Foundation
import Netlink

/// Kernel traffic to measure an emulated link with: UDP datagrams that carry
/// their send times (one-way delay from the kernel's receive stamp) and a TCP
/// bulk transfer (goodput over time). Sockets are opened on the namespace
/// thread in their node's namespace; sending and receiving happen on
/// dedicated threads, never in a Swift concurrency task.
public enum Probe {
    public struct Endpoint: Sendable {
        public var namespace: String
        public var address: InetAddress
        public init(namespace: String, address: InetAddress) { self.namespace = namespace; self.address = address }
    }

    public struct Datagram: Sendable {
        public var sequence: Int
        /// When it was sent, on the emulator's clock (CLOCK_MONOTONIC).
        public var sent: Instant
        /// Kernel receive time minus send time (both CLOCK_REALTIME).
        public var oneWay: Interval
    }

    public struct DatagramRun: Sendable {
        public var sent: Int
        /// The datagrams that arrived (each once), in arrival order.
        public var received: [Datagram]
        /// When each datagram was sent, by sequence number (CLOCK_MONOTONIC).
        public var sendTimes: [Instant]
    }

    static func socket(in namespace: String, _ open: @escaping () -> Int32, _ what: String) throws -> Int32 {
        let ns = try NetworkNamespace.open(named: namespace)
        defer { ns.close() }
        let fd = try ns.run { open() }
        guard fd >= 0 else { throw EmulatorError.system("\(what) in \(namespace)", fd) }
        return fd
    }

    /// Sends `count` datagrams of `size` bytes (UDP payload, at least 24) every
    /// `interval` from `source` to `destination`:`port`, and collects them
    /// until `linger` after the last was sent.
    public static func datagrams(from source: Endpoint, to destination: Endpoint, port: UInt16, count: Int,
                                 interval: Interval, size: Int = 1000, linger: Interval = .milliseconds(500)) throws -> DatagramRun {
        let dst = destination.address.networkOrder
        let receiver = try socket(in: destination.namespace, { ws_udp_open(dst, port, 50) }, "UDP socket")
        defer { close(receiver) }
        let src = source.address.networkOrder
        let sender = try socket(in: source.namespace, { ws_udp_open(src, 0, 50) }, "UDP socket")
        defer { close(sender) }

        let result = Box(DatagramRun(sent: 0, received: [], sendTimes: Array(repeating: .distantFuture, count: count)))
        let senderDone = Box(false)
        let receiving = DispatchSemaphore(value: 0)
        let rx = Thread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            var seen = Set<Int>()
            var quietSince: Instant?
            while true {
                var stamp: Int64 = 0
                let n = buffer.withUnsafeMutableBufferPointer { ws_udp_receive(receiver, $0.baseAddress, Int32($0.count), &stamp) }
                if n >= 24 {
                    let seq = Int(buffer.load(at: 0)), mono = Int64(buffer.load(at: 8)), real = Int64(buffer.load(at: 16))
                    if seq < count, seen.insert(seq).inserted {
                        result.value.received.append(Datagram(sequence: seq, sent: Instant(nanoseconds: mono),
                                                              oneWay: Interval(nanoseconds: stamp - real)))
                    }
                    continue
                }
                guard senderDone.locked else { continue }
                let now = Instant(nanoseconds: ws_monotonic_ns())
                if let q = quietSince { if now - q >= linger { break } } else { quietSince = now }
            }
            receiving.signal()
        }
        rx.start()
        let sending = DispatchSemaphore(value: 0)
        let tx = Thread {
            // A preempted sender would stamp a datagram long before it leaves;
            // but a real-time thread that never sleeps (no pacing) would have
            // the kernel throttle all real-time threads, the emulator's too.
            if interval > .zero { _ = ws_precise_thread(5) }
            var payload = [UInt8](repeating: 0, count: max(24, size))
            let start = ws_monotonic_ns()
            for seq in 0..<count {
                let due = start + Int64(seq) * interval.nanoseconds
                let wait = due - ws_monotonic_ns()
                if wait > 0 { usleep(UInt32(wait / 1000)) }
                let mono = ws_monotonic_ns(), real = ws_realtime_ns()
                payload.store(UInt64(seq), at: 0); payload.store(UInt64(bitPattern: mono), at: 8); payload.store(UInt64(bitPattern: real), at: 16)
                let rc = payload.withUnsafeBufferPointer { ws_udp_send(sender, dst, port, $0.baseAddress, Int32($0.count)) }
                if rc > 0 {
                    result.locked { $0.sent += 1; $0.sendTimes[seq] = Instant(nanoseconds: mono) }
                }
            }
            senderDone.set(true)
            sending.signal()
        }
        tx.start()
        sending.wait()
        receiving.wait()
        return result.locked
    }

    /// A TCP bulk transfer from `source` to `destination`:`port` for
    /// `duration`: the receiver's progress, (time, bytes so far) after each read.
    public static func bulk(from source: Endpoint, to destination: Endpoint, port: UInt16,
                            duration: Interval) throws -> [(at: Instant, bytes: Int)] {
        let dst = destination.address.networkOrder, src = source.address.networkOrder
        let listener = try socket(in: destination.namespace, { ws_tcp_listen(dst, port) }, "TCP listener")
        defer { close(listener) }
        let progress = Box([(at: Instant, bytes: Int)]())
        let receiving = DispatchSemaphore(value: 0)
        let rx = Thread {
            let c = ws_tcp_accept(listener, 5000)
            if c >= 0 {
                var buffer = [UInt8](repeating: 0, count: 1 << 16)
                var total = 0
                var samples: [(at: Instant, bytes: Int)] = []
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(c, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { break }
                    total += n
                    samples.append((Instant(nanoseconds: ws_monotonic_ns()), total))
                }
                close(c)
                progress.set(samples)
            }
            receiving.signal()
        }
        rx.start()
        let connection = try socket(in: source.namespace, { ws_tcp_connect(src, dst, port, 2000) }, "TCP connect")
        let sending = DispatchSemaphore(value: 0)
        let tx = Thread {
            let chunk = [UInt8](repeating: 0x5a, count: 1 << 16)
            let end = ws_monotonic_ns() + duration.nanoseconds
            while ws_monotonic_ns() < end {
                let n = chunk.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno != EAGAIN && errno != EINTR { break }
            }
            close(connection)
            sending.signal()
        }
        tx.start()
        sending.wait()
        receiving.wait()
        return progress.locked
    }
}

/// A value shared between threads behind a lock.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    init(_ value: T) { _value = value }
    var value: T {
        get { lock.lock(); defer { lock.unlock() }; return _value }
        _modify { lock.lock(); defer { lock.unlock() }; yield &_value }
    }
    var locked: T { value }
    func set(_ v: T) { value = v }
    func locked(_ body: (inout T) -> Void) { lock.lock(); body(&_value); lock.unlock() }
}

extension Array where Element == UInt8 {
    func load(at offset: Int) -> UInt64 {
        withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self) }
    }
    mutating func store(_ value: UInt64, at offset: Int) {
        withUnsafeMutableBytes { $0.storeBytes(of: value, toByteOffset: offset, as: UInt64.self) }
    }
}
