import Core

/// A problem in an event log, located as `file:line:column` (column when known).
public struct LogProblem: Hashable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int?
    public var message: String

    public init(file: String, line: Int, column: Int? = nil, message: String) {
        self.file = file; self.line = line; self.column = column; self.message = message
    }

    public var description: String {
        "\(file):\(line)\(column.map { ":\($0)" } ?? ""): \(message)"
    }
}

/// One log file read: the header, the events in file order, and every line
/// that could not be read. Reading never stops at a bad line: a writer killed
/// mid-line leaves one, and the rest of the file is still worth analysing.
public struct EventLogFile: Sendable {
    public var file: String
    public var run: String
    /// The stack named by the header (`swift`, `kernel-mptcp`, `kernel-tcp`), if any.
    public var stack: String?
    public var attributes: [String: String]
    public var events: [LogEvent]
    public var problems: [LogProblem]

    /// Parses the text of one `.jsonl` file. The first non-empty line must be a
    /// `log.start` header with a version this reader knows; without one the
    /// file is rejected (no events, one problem).
    public static func parse(text: String, file: String) -> EventLogFile {
        var copy = text
        return copy.withUTF8 { parse(utf8: $0, file: file) }
    }

    /// The same from the file's bytes. Lines are cut at '\n' bytes (a '\r' before it is
    /// dropped), so a multi-megabyte log is never split by characters.
    public static func parse(utf8 bytes: UnsafeBufferPointer<UInt8>, file: String) -> EventLogFile {
        var log = EventLogFile(file: file, run: "", stack: nil, attributes: [:], events: [], problems: [])
        var sawHeader = false
        var lineNumber = 0
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
            defer { start = end + 1 }
            lineNumber += 1
            var last = end
            if last > start, bytes[last - 1] == UInt8(ascii: "\r") { last -= 1 }
            var blank = true
            for i in start..<last where bytes[i] != UInt8(ascii: " ") && bytes[i] != UInt8(ascii: "\t") { blank = false; break }
            if blank { continue }
            let event: LogEvent
            do { event = try LogEvent.parse(utf8: Array(UnsafeBufferPointer(rebasing: bytes[start..<last]))) } catch {
                log.problems.append(LogProblem(file: file, line: lineNumber, column: error.column, message: error.message))
                if !sawHeader {
                    log.problems.append(LogProblem(file: file, line: lineNumber,
                                                   message: "the first line must be a readable 'log.start' header; file skipped"))
                    return log
                }
                continue
            }
            if !sawHeader {
                guard case let .logStart(version, run, stack, attributes) = event.body else {
                    log.problems.append(LogProblem(file: file, line: lineNumber,
                                                   message: "expected a 'log.start' header as the first line, found '\(event.body.kind)'; file skipped"))
                    return log
                }
                guard version == EventLogFormat.version else {
                    log.problems.append(LogProblem(file: file, line: lineNumber,
                                                   message: "log version \(version) is not supported (this reader knows version \(EventLogFormat.version)); file skipped"))
                    return log
                }
                sawHeader = true
                log.run = run; log.stack = stack; log.attributes = attributes
            }
            log.events.append(event)
        }
        if !sawHeader {
            log.problems.append(LogProblem(file: file, line: max(1, lineNumber), message: "empty log: no 'log.start' header"))
        }
        return log
    }
}

extension EventLogFile {
    /// Groups the files of a results folder into runs: one per (stack, run id) of
    /// the headers; a file without a stack joins the group of its run id, else a
    /// group `unknown`. Groups keep the order of first appearance.
    public static func groupIntoRuns(_ logs: [EventLogFile]) -> [[EventLogFile]] {
        var order: [String] = []
        var groups: [String: [EventLogFile]] = [:]
        var stackOfRun: [String: String] = [:]
        for log in logs { if let s = log.stack, !log.run.isEmpty { stackOfRun[log.run] = stackOfRun[log.run] ?? s } }
        for log in logs where log.problems.isEmpty || !log.events.isEmpty {
            let key = (log.stack ?? stackOfRun[log.run] ?? "unknown") + "\u{0}" + log.run
            if groups[key] == nil { order.append(key) }
            groups[key, default: []].append(log)
        }
        return order.map { groups[$0]! }
    }
}
