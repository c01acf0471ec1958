import Testing
import Core
@testable import Analysis

@Suite struct JSONValueTests {
    @Test func parsesEveryKindOfValue() throws {
        let v = try JSONValue.parse(#" {"a": [1, -2, 3.5, 1e3, true, false, null], "b": "x\"\\\/\n\u00e9\ud83d\ude97", "c": {}} "#)
        #expect(v["a"] == .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]))
        #expect(v["b"] == .string("x\"\\/\né🚗"))
        #expect(v["c"] == .object([]))
        // Nanosecond timestamps above 2^53 stay exact.
        #expect(try JSONValue.parse("9007199254740993") == .int(9_007_199_254_740_993))
    }

    @Test(arguments: [
        ("{\"t\":1,}", 8, "expected a field name in double quotes"),
        ("{\"t\":1", 7, "unexpected end of line: expected ',' or '}'"),
        ("{\"t\":01}", 7, "a number must not start with 0"),
        ("{\"t\" 1}", 6, "expected ':' after field name"),
        ("[1,2] x", 7, "unexpected text after the JSON value"),
        ("\"é\\q\"", 3, "unknown escape '\\q'"),
        ("{\"a\":1,\"a\":2}", 13, "field 'a' appears twice"),
        ("\"\\ud800x\"", 8, "unpaired surrogate in \\u escape"),
        ("1e999", 1, "number '1e999' is out of range"),
        ("", 1, "unexpected end of line: expected a value"),
        ("nul", 4, "expected 'null'"),
    ])
    func rejectsWithColumn(text: String, column: Int, message: String) {
        do {
            _ = try JSONValue.parse(text)
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.column == column)
            #expect(error.message == message)
        }
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        let deep = String(repeating: "[", count: 100_000)
        #expect(throws: JSONSyntaxError.self) { try JSONValue.parse(deep) }
    }

    @Test func serialisesAndReadsBack() throws {
        let v = JSONValue.object([("s", .string("a\"b\u{01}c\n")), ("n", .int(-5)), ("d", .double(0.25)),
                                  ("inf", .double(.infinity)), ("l", .array([.null, .bool(true)]))])
        #expect(v.serialized == #"{"s":"a\"b\u0001c\n","n":-5,"d":0.25,"inf":null,"l":[null,true]}"#)
        let back = try JSONValue.parse(v.pretty())
        #expect(back["s"] == .string("a\"b\u{01}c\n"))
        #expect(back["d"] == .double(0.25))
    }

    @Test func randomBytesNeverTrap() {
        var r = SeededRandom(seed: 99)
        let alphabet = Array(#"{}[]":,0123456789.eE-+tfnul\ "abc"#.utf8) + [0xC3, 0xA9, 0xFF]
        for _ in 0..<5_000 {
            let n = Int(r.next() % 40)
            let bytes = (0..<n).map { _ in alphabet[Int(r.next() % UInt64(alphabet.count))] }
            let text = String(decoding: bytes, as: UTF8.self)
            _ = try? JSONValue.parse(text)
            _ = try? LogEvent.parse(line: text)
        }
    }
}

@Suite struct EventLogTests {
    static let everyKind: [LogEvent] = [
        LogEvent(time: .zero, source: .node("car"), body: .logStart(version: 1, run: "r1", stack: "kernel-mptcp",
                                                                    attributes: ["role": "client", "path_manager": "in-kernel"])),
        LogEvent(time: .milliseconds(1), source: .node("car"), body: .appStart(conn: "c1", app: "cbr", role: .sender, offered: .kbit(800))),
        LogEvent(time: .milliseconds(2), source: .node("car"), body: .appSent(AppMessage(conn: "c1", sequence: 7, size: 1024, sentAt: Instant(nanoseconds: 2_000_000)))),
        LogEvent(time: .milliseconds(3), source: .node("server"), body: .appDelivered(AppMessage(conn: "c1", sequence: 7, size: 1024, sentAt: Instant(nanoseconds: 2_000_000)))),
        LogEvent(time: .milliseconds(4), source: .node("server"), body: .bytesDelivered(conn: "c1", bytes: 1024, total: 4096)),
        LogEvent(time: .milliseconds(5), source: .node("server"), body: .connectionState(conn: "c1", state: .established, mptcp: true, reason: nil)),
        LogEvent(time: .milliseconds(6), source: .node("car"), body: .connectionState(conn: "c1", state: .reset, mptcp: nil, reason: "MP_FASTCLOSE")),
        LogEvent(time: .milliseconds(7), source: .node("car"), body: .subflowState(SubflowChange(conn: "c1", subflow: 1, state: .established, path: "car-rsu1", local: "198.18.1.2:40000", remote: "198.18.0.1:5201"))),
        LogEvent(time: .milliseconds(8), source: .node("car"), body: .subflowState(SubflowChange(conn: "c1", subflow: 1, state: .failed, reason: "timeout"))),
        LogEvent(time: .milliseconds(9), source: .node("car"), body: .subflowProgress(conn: "c1", subflow: 1, path: "car-rsu1", bytesAcked: 9000, bytesReceived: 12)),
        LogEvent(time: .milliseconds(9), source: .node("car"), body: .joinAttempt(conn: "c1", subflow: 2, path: "car-rsu2", local: "198.18.2.2", remote: nil)),
        LogEvent(time: .milliseconds(10), source: .node("car"), body: .interface(name: "eth1", change: .carrierDown, address: nil)),
        LogEvent(time: .milliseconds(11), source: .node("car"), body: .interface(name: "eth1", change: .addressAdded, address: "198.18.2.2/24")),
        LogEvent(time: .milliseconds(12), source: .node("car"), body: .reinjection(conn: "c1", bytes: 2896, from: 1, to: 2)),
        LogEvent(time: .milliseconds(13), source: .link("car-rsu1"), body: .coverage(covered: false, loss: .carrier, rate: .mbit(54))),
        LogEvent(time: .milliseconds(14), source: .link("car-rsu1"), body: .linkParameters(rate: .mbit(6), delay: .milliseconds(20), loss: Probability(0.01))),
        LogEvent(time: .milliseconds(15), source: .node("car"), body: .appStop(conn: "c1", reason: "SIGTERM")),
        LogEvent(time: .milliseconds(16), source: .node("run"), body: .runEnd),
        LogEvent(time: .milliseconds(17), source: .node("car"), body: .unknown(kind: "tcp.info", fields: ["rtt_us": .int(250), "cwnd": .int(10)])),
    ]

    @Test func everyKindRoundTrips() throws {
        for e in Self.everyKind {
            let line = e.jsonLine
            #expect(!line.contains("\n"))
            let back = try LogEvent.parse(line: line)
            #expect(back == e, "\(line)")
        }
    }

    @Test func linesHaveAStableShape() {
        let e = Self.everyKind[3]
        #expect(e.jsonLine == #"{"t":3000000,"node":"server","kind":"app.delivered","conn":"c1","seq":7,"size":1024,"sent_at":2000000}"#)
        #expect(Self.everyKind[14].jsonLine == #"{"t":13000000,"link":"car-rsu1","kind":"coverage","covered":false,"loss":"carrier","rate_bps":54000000}"#)
    }

    @Test(arguments: [
        (#"{"node":"a","kind":"run.end"}"#, "missing field 't' (nanoseconds since the run's start)"),
        (#"{"t":1,"kind":"run.end"}"#, "missing field 'node' or 'link' (who wrote the event)"),
        (#"{"t":1,"node":"a","link":"b","kind":"run.end"}"#, "an event has either 'node' or 'link', not both"),
        (#"{"t":"1","node":"a","kind":"run.end"}"#, "field 't' must be an integer"),
        (#"{"t":1,"node":"a","kind":"app.sent","conn":"c","seq":-1,"size":1,"sent_at":0}"#, "app.sent: field 'seq' must not be negative"),
        (#"{"t":1,"node":"a","kind":"conn.state","conn":"c","state":"gone"}"#,
         "conn.state: field 'state' is 'gone', expected one of 'connecting', 'established', 'finished', 'closed', 'failed', 'reset'"),
        (#"{"t":1,"link":"l","kind":"coverage"}"#, "coverage: missing field 'covered'"),
        (#"{"t":1,"link":"l","kind":"link.params","loss":2}"#, "link.params: field 'loss' must be a number from 0 to 1"),
        ("[1]", "expected a JSON object"),
    ])
    func badEventsSayWhichField(line: String, message: String) {
        do {
            _ = try LogEvent.parse(line: line)
            Issue.record("parsed \(line)")
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func fileReportsBadLinesWithFileAndLineAndKeepsTheRest() {
        let text = [
            Self.everyKind[0].jsonLine,
            Self.everyKind[1].jsonLine,
            "",
            #"{"t":5,"node":"car","kind":"app.sent","conn":"c1"}"#,
            Self.everyKind[2].jsonLine,
            #"{"t":6,"node":"car","kind":"app.sen"#, // a writer killed mid-line
        ].joined(separator: "\n")
        let log = EventLogFile.parse(text: text, file: "logs/car.jsonl")
        #expect(log.events.count == 3)
        #expect(log.stack == "kernel-mptcp")
        #expect(log.run == "r1")
        #expect(log.attributes["path_manager"] == "in-kernel")
        #expect(log.problems.map(\.description) == [
            "logs/car.jsonl:4: app.sent: missing field 'seq'",
            "logs/car.jsonl:6:36: unexpected end of line inside a string",
        ])
    }

    @Test func fileWithoutHeaderOrWithAnUnknownVersionIsSkipped() {
        let noHeader = EventLogFile.parse(text: Self.everyKind[1].jsonLine, file: "a.jsonl")
        #expect(noHeader.events.isEmpty)
        #expect(noHeader.problems.first?.description.hasPrefix("a.jsonl:1: expected a 'log.start' header") == true)
        let future = EventLogFile.parse(text: #"{"t":0,"node":"a","kind":"log.start","version":2,"run":"x"}"#, file: "b.jsonl")
        #expect(future.events.isEmpty)
        #expect(future.problems.first?.description == "b.jsonl:1: log version 2 is not supported (this reader knows version 1); file skipped")
        let empty = EventLogFile.parse(text: "\n\n", file: "c.jsonl")
        #expect(empty.problems.first?.description == "c.jsonl:3: empty log: no 'log.start' header")
    }
}

extension Instant {
    static func milliseconds(_ n: Int) -> Instant { Instant(nanoseconds: Int64(n) * 1_000_000) }
}
