import Testing
import Core
@testable import Analysis
@testable import Report

/// Checks that markup is well-formed XML: tags nest and close, attributes are
/// quoted, and every '&' starts an entity. Returns the first problem.
func wellFormedProblem(_ text: String) -> String? {
    let c = Array(text.unicodeScalars)
    var i = 0
    var stack: [String] = []
    while i < c.count {
        if c[i] == "&" {
            var j = i + 1
            while j < c.count, j - i < 10, c[j] != ";" { j += 1 }
            guard j < c.count, c[j] == ";", j > i + 1 else { return "bare '&' at \(i)" }
            i = j + 1
            continue
        }
        guard c[i] == "<" else { i += 1; continue }
        var j = i + 1
        var quote: Unicode.Scalar?
        while j < c.count {
            if let q = quote { if c[j] == q { quote = nil } }
            else if c[j] == "\"" || c[j] == "'" { quote = c[j] }
            else if c[j] == "<" { return "'<' inside a tag at \(j)" }
            else if c[j] == ">" { break }
            j += 1
        }
        guard j < c.count else { return "unterminated tag at \(i)" }
        let inner = String(String.UnicodeScalarView(c[(i + 1)..<j]))
        i = j + 1
        if inner.hasPrefix("!") || inner.hasPrefix("?") { continue }
        if inner.hasPrefix("/") {
            let name = String(inner.dropFirst())
            guard stack.last == name else { return "</\(name)> closes <\(stack.last ?? "nothing")>" }
            stack.removeLast()
            continue
        }
        let name = String(inner.prefix { $0 != " " && $0 != "/" && $0 != "\n" })
        // Attribute values must be quoted: every '=' is followed by a quote.
        let attrs = Array(inner)
        for (k, ch) in attrs.enumerated() where ch == "=" {
            guard k + 1 < attrs.count, attrs[k + 1] == "\"" || attrs[k + 1] == "'" else { return "unquoted attribute in <\(name)>" }
        }
        if !inner.hasSuffix("/") { stack.append(name) }
    }
    return stack.isEmpty ? nil : "unclosed <\(stack.last!)>"
}

func occurrences(of needle: String, in text: String) -> Int {
    var n = 0
    var rest = text[...]
    while let r = rest.firstRange(of: needle) { n += 1; rest = rest[r.upperBound...] }
    return n
}

@Suite struct ReportTests {
    let runs = [RunAnalysis.analyze(logs: HandMadeRuns.makeBeforeBreak()), RunAnalysis.analyze(logs: HandMadeRuns.breakBeforeMakeTCP())]

    @Test func reportIsWellFormedAndSelfContained() throws {
        let checks = Threshold.evaluate([try Threshold.parse("max_gap < 600ms")], against: runs)
        let html = HTMLReport.render(runs: runs, checks: checks, title: "Test <run> & co")
        #expect(wellFormedProblem(html) == nil, "\(wellFormedProblem(html) ?? "")")
        #expect(html.contains("<title>Test &lt;run&gt; &amp; co</title>"))
        // Nothing fetched from elsewhere: no scripts, no external references.
        #expect(!html.contains("<script"))
        #expect(!html.contains("src="))
        #expect(!html.contains("href=\"http"))
        #expect(!html.contains("url("))
    }

    @Test func reportHasThePlotsAndTheComparison() {
        let html = HTMLReport.render(runs: runs)
        // Per flow: a goodput plot and a subflow timeline.
        #expect(occurrences(of: "<svg ", in: html) == 4)
        #expect(occurrences(of: "class=\"goodput\"", in: html) == 2)
        #expect(occurrences(of: "class=\"subflows\"", in: html) == 2)
        // One stall marked in each run: 310 ms and 5009 ms.
        #expect(occurrences(of: "<rect class=\"gap\"", in: html) == 4)
        #expect(html.contains(">310 ms</text>"))
        #expect(html.contains(">5009 ms</text>"))
        // Coverage bands per link: a (0–5 s) and b in both runs, named in lanes.
        #expect(html.contains("a covered 0–5 s"))
        #expect(html.contains("b covered 4–10 s"))
        #expect(html.contains("b covered 5.5–10 s"))
        // Comparison table: one column per stack, survival marked.
        #expect(html.contains("<th><a href=\"#run-kernel-mptcp\">kernel-mptcp</a></th><th><a href=\"#run-kernel-tcp\">kernel-tcp</a></th>"))
        #expect(html.contains("<tr><td>survived</td><td class=\"pass\">true</td><td class=\"fail\">false</td></tr>"))
        #expect(html.contains("✕ failed"))
    }

    @Test func resultsJSONReadsBackWithItsSchema() throws {
        let checks = Threshold.evaluate([try Threshold.parse("survived == true")], against: runs)
        let text = ResultsDocument.render(runs: runs, checks: checks, options: AnalysisOptions())
        let doc = try JSONValue.parse(text)
        #expect(doc["schema"] == .string("wayside.results"))
        #expect(doc["version"] == .int(1))
        let r = try #require(doc["runs"]?.arrayValue)
        #expect(r.count == 2)
        #expect(r[0]["metrics"]?["max_gap"]?["value"] == .double(310))
        #expect(r[1]["metrics"]?["survived"]?["value"] == .bool(false))
        let flow = try #require(r[0]["flows"]?.arrayValue?.first)
        #expect(flow["handovers"]?.arrayValue?.count == 2)
        #expect(flow["latency_ms"]?["p99"] == .double(201))
        #expect(doc["thresholds"]?.arrayValue?.map { $0["passed"] } == [.bool(true), .bool(false)])
    }

    @Test func csvSeries() throws {
        let files = ResultsDocument.csv(runs: runs)
        #expect(files.map(\.name) == ["goodput.csv", "subflows.csv", "handovers.csv", "coverage.csv", "summary.csv"])
        let goodput = files[0].text.split(separator: "\n")
        #expect(goodput[0] == "stack,conn,receiver,t_s,goodput_bps")
        #expect(goodput.count == 1 + 100 + 100)
        #expect(goodput[1 + 53] == "kernel-mptcp,f,server,5.300000,3200000")
        let handovers = files[2].text.split(separator: "\n")
        #expect(handovers[2] == "kernel-mptcp,f,server,5.000000,a,loss,silent,310.000,,301.000")
        #expect(files[3].text.contains("kernel-tcp,b,5.500000,10.000000,10000000"))
    }
}
