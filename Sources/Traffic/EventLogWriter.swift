import Analysis
import Core
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The run's clock: `CLOCK_MONOTONIC` minus the run's origin, which the
/// orchestrator passes to every process (`--epoch`), so that all logs of a run
/// share one time axis (docs/LOGS.md).
public struct RunClock: Sendable {
    /// `CLOCK_MONOTONIC` nanoseconds at the run's start.
    public var epoch: Int64

    public init(epoch: Int64) { self.epoch = epoch }

    public static func monotonicNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public func now() -> Instant { Instant(nanoseconds: RunClock.monotonicNanoseconds() - epoch) }

    /// Sleeps until `t` on the run's clock (returns at once if it has passed).
    public func sleep(until t: Instant) {
        let target = t.nanoseconds + epoch
        var ts = timespec(tv_sec: Int(target / 1_000_000_000), tv_nsec: Int(target % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }
}

/// Writes events to a `.jsonl` file from any thread. Lines are buffered and
/// flushed at least every `flushInterval` of events and at `close()`, so a
/// crash loses at most the unflushed tail, never a line's consistency before it.
public final class EventLogWriter: @unchecked Sendable {
    public let source: EventSource
    public let clock: RunClock
    private let lock = NSLock()
    private var file: UnsafeMutablePointer<FILE>?
    private var pending = 0

    public struct OpenError: Error, CustomStringConvertible {
        public var path: String
        public var errno: Int32
        public var description: String { "\(path): cannot open the event log: \(String(cString: strerror(errno)))" }
    }

    /// Opens (truncates) `path` and writes the `log.start` header.
    public init(path: String, source: EventSource, clock: RunClock, run: String, stack: String?,
                attributes: [String: String] = [:]) throws {
        guard let f = fopen(path, "w") else { throw OpenError(path: path, errno: errno) }
        self.file = f
        self.source = source
        self.clock = clock
        log(.logStart(version: EventLogFormat.version, run: run, stack: stack, attributes: attributes), at: clock.now())
        flush()
    }

    /// Logs `body` now.
    public func log(_ body: EventBody) { log(body, at: clock.now()) }

    public func log(_ body: EventBody, at t: Instant) {
        let line = LogEvent(time: t, source: source, body: body).jsonLine + "\n"
        lock.lock()
        defer { lock.unlock() }
        guard let file else { return }
        _ = line.withCString { fputs($0, file) }
        pending += 1
        if pending >= 256 { fflush(file); pending = 0 }
    }

    public func flush() {
        lock.lock()
        defer { lock.unlock() }
        if let file { fflush(file) }
        pending = 0
    }

    public func close() {
        lock.lock()
        defer { lock.unlock() }
        if let file { fclose(file) }
        file = nil
    }

    deinit { if let file { fclose(file) } }
}
