import Testing
import Core
@testable import Analysis

@Suite struct ThresholdTests {
    @Test func parsesTheIssuesExamples() throws {
        let gap = try Threshold.parse("max_gap < 600ms")
        #expect(gap.metric == "max_gap" && gap.op == .less && gap.limit == .duration(.milliseconds(600)) && gap.stack == nil)
        let goodput = try Threshold.parse("goodput_mean >= 5mbit")
        #expect(goodput.op == .greaterOrEqual && goodput.limit == .rate(5_000_000))
        let survived = try Threshold.parse("  survived==true ")
        #expect(survived.op == .equal && survived.limit == .flag(true) && survived.expression == "survived==true")
        let scoped = try Threshold.parse("kernel-tcp:max_gap > 1.5s")
        #expect(scoped.stack == "kernel-tcp" && scoped.limit == .duration(.milliseconds(1500)))
        #expect(try Threshold.parse("delivered_ratio >= 90%").limit == .ratio(0.9))
        #expect(try Threshold.parse("reinjected_bytes <= 64KiB").limit == .bytes(65536))
        #expect(try Threshold.parse("messages_lost != 0").op == .notEqual)
    }

    @Test(arguments: [
        ("max_gap < 600", 11, "'max_gap' is a duration: cannot read '600': expected a duration with a unit (ns, us, ms, s, min, h), e.g. 20ms"),
        ("maxgap < 1s", 1, "unknown metric 'maxgap'; did you mean 'max_gap'?"),
        ("max_gap 600ms", 9, "expected a comparison (<, <=, >, >=, ==, !=) after 'max_gap'"),
        ("survived < true", 10, "'survived' is true or false: compare it with == or !="),
        ("survived == yes", 13, "'survived' is a flag: cannot read 'yes': expected true or false"),
        ("goodput_mean >=", 16, "expected a rate with a unit, e.g. 5mbit"),
        ("", 1, "expected a metric name, e.g. max_gap"),
        ("swift: < 1s", 7, "expected a metric name after 'swift:'"),
    ])
    func errorsNameTheColumn(text: String, column: Int, message: String) {
        do {
            _ = try Threshold.parse(text, origin: "--assert")
            Issue.record("parsed \(text)")
        } catch {
            #expect(error.column == column)
            #expect(error.message.hasPrefix(message), "\(error.message)")
            #expect(error.description.hasPrefix("--assert '\(text)': column \(column): "))
        }
    }

    @Test func evaluatesAgainstRuns() throws {
        let mbb = RunAnalysis.analyze(logs: HandMadeRuns.makeBeforeBreak())
        let tcp = RunAnalysis.analyze(logs: HandMadeRuns.breakBeforeMakeTCP())
        let thresholds = try ["max_gap < 600ms", "goodput_mean >= 5mbit", "survived == true",
                              "kernel-tcp:max_gap > 5s", "quic:survived == true", "max_join_latency < 1s"]
            .map { try Threshold.parse($0) }
        let checks = Threshold.evaluate(thresholds, against: [mbb, tcp])
        let table = checks.map { "\($0.stack) \($0.threshold.expression) \($0.passed)" }
        #expect(table == [
            "kernel-mptcp max_gap < 600ms true", "kernel-tcp max_gap < 600ms false",
            "kernel-mptcp goodput_mean >= 5mbit false", "kernel-tcp goodput_mean >= 5mbit false",
            "kernel-mptcp survived == true true", "kernel-tcp survived == true false",
            "kernel-tcp kernel-tcp:max_gap > 5s true",
            "quic quic:survived == true false",
            "kernel-mptcp max_join_latency < 1s true", "kernel-tcp max_join_latency < 1s false",
        ])
        #expect(checks[1].message == "max_gap = 5009 ms, expected < 600 ms")
        #expect(checks[9].message == "max_join_latency was not measured in this run")

        let xml = ThresholdCheck.junitXML(checks)
        #expect(xml.contains("<testsuites tests=\"10\" failures=\"6\">"))
        #expect(xml.contains("<testcase classname=\"kernel-tcp\" name=\"max_gap &lt; 600ms\">"))
        #expect(xml.components(separatedBy: "<failure ").count - 1 == 6)
    }
}

extension String {
    func components(separatedBy s: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = self[...]
        while let r = rest.firstRange(of: s) { parts.append(rest[..<r.lowerBound]); rest = rest[r.upperBound...] }
        parts.append(rest)
        return parts
    }
}
