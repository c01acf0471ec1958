import Testing
import Core
@testable import Config

@Suite("Config: located decoding")
struct ConfigValueTests {
    func document(_ text: String) throws -> ConfigDocument { try ConfigDocument(text: text, file: "t.yaml") }

    @Test func quantitiesDecodeAtTheirLocation() throws {
        let doc = try document("""
        rate: 54mbit
        delay: 20ms
        loss: 0.5%
        queue: 64KiB
        x: 1.2km
        """)
        let m = try #require(doc.root.mapping(keys: ["rate", "delay", "loss", "queue", "x"]))
        #expect(m["rate"]?.bitrate() == .mbit(54))
        #expect(m["delay"]?.interval() == .milliseconds(20))
        #expect(m["loss"]?.probability() == Probability(0.005))
        #expect(m["queue"]?.byteSize() == 65536)
        #expect(m["x"]?.metres() == 1200)
        #expect(m["delay"]?.location == SourceLocation(file: "t.yaml", line: 2, column: 8))
        try doc.finish()
    }

    @Test func everyProblemIsReportedAtOnceWithLineAndColumn() throws {
        let doc = try document("""
        rate: 54 mbitz
        delay: 20
        rnage: 3
        loss: 150%
        """)
        let m = try #require(doc.root.mapping(keys: ["rate", "delay", "range", "loss"]))
        _ = m["rate"]?.bitrate()
        _ = m["delay"]?.interval()
        _ = m["loss"]?.probability()
        let error = #expect(throws: ConfigError.self) { try doc.finish() }
        let lines = try #require(error).description.split(separator: "\n").map(String.init)
        #expect(lines.count == 4)
        #expect(lines[0].hasPrefix("t.yaml:1:7: cannot read '54 mbitz': expected a rate"))
        #expect(lines[1].hasPrefix("t.yaml:2:8: cannot read '20': expected a duration"))
        #expect(lines[2].hasPrefix("t.yaml:3:1: unknown key 'rnage'; did you mean 'range'?"))
        #expect(lines[3].hasPrefix("t.yaml:4:7: cannot read '150%'"))
    }

    @Test func missingKeyAndWrongShape() throws {
        let doc = try document("""
        nodes:
          - a
        links: {x: 1}
        """)
        let m = try #require(doc.root.mapping(keys: ["nodes", "links", "name"]))
        _ = m.required("name", expected: "the topology's name")
        _ = m["nodes"]?.mapping()
        _ = m["links"]?.sequence()
        let error = try #require(#expect(throws: ConfigError.self) { try doc.finish() })
        #expect(error.problems.map(\.description) == [
            "t.yaml:1:1: missing key 'name': expected the topology's name",
            "t.yaml:2:3: expected a mapping, found a list",
            "t.yaml:3:8: expected a list, found a mapping",
        ])
    }

    @Test func choicesSuggestTheNearestWord() throws {
        enum Role: String, CaseIterable { case vehicle, rsu, router }
        let doc = try document("role: vehicel\nother: rsu\n")
        let m = try #require(doc.root.mapping())
        #expect(m["other"]?.choice(Role.self) == .rsu)
        #expect(m["role"]?.choice(Role.self) == nil)
        let error = try #require(#expect(throws: ConfigError.self) { try doc.finish() })
        #expect(error.description == "t.yaml:1:7: expected 'vehicle', 'rsu' or 'router', found 'vehicel'; did you mean 'vehicle'?")
    }

    @Test func syntaxErrorsAreLocated() throws {
        let error = try #require(#expect(throws: ConfigError.self) { try document("a: [1, 2\nb: 3\n") })
        #expect(error.problems.count == 1)
        #expect(error.problems[0].location.line >= 1)
        #expect(error.description.hasPrefix("t.yaml:"))
        #expect(error.description.contains("not valid YAML"))
    }

    @Test func duplicateKeysAreReported() throws {
        let error = try #require(#expect(throws: ConfigError.self) { try document("a: 1\nb: 2\na: 3\n") })
        #expect(error.description.contains("'a' appears more than once"))
        #expect(error.problems[0].location.line == 1)
    }

    @Test func aSecondDocumentIsRejected() throws {
        let error = try #require(#expect(throws: ConfigError.self) { try document("a: 1\n---\nb: 2\n") })
        #expect(error.problems[0].location.line == 3)
    }

    @Test func unreadableFileNamesTheFile() throws {
        let error = try #require(#expect(throws: ConfigError.self) { try ConfigDocument(contentsOf: "/nonexistent/wayside.yaml") })
        #expect(error.description.hasPrefix("/nonexistent/wayside.yaml: cannot read the file"))
    }

    @Test func emptyDocumentIsNull() throws {
        let doc = try document("")
        #expect(doc.root.isNull)
        _ = doc.root.mapping()
        let error = try #require(#expect(throws: ConfigError.self) { try doc.finish() })
        #expect(error.description == "t.yaml:1:1: expected a mapping, found nothing")
    }

    @Test func scalarsAndIdentifiers() throws {
        let doc = try document("n: 12\nf: 2.5\nb: yes\nid: rsu-1\nbad: 'a b'\nneg: -3\n")
        let m = try #require(doc.root.mapping())
        #expect(m["n"]?.int() == 12)
        #expect(m["f"]?.double() == 2.5)
        #expect(m["b"]?.bool() == true)
        #expect(m["id"]?.identifier() == "rsu-1")
        #expect(m["bad"]?.identifier() == nil)
        #expect(m["neg"]?.int(in: 0...10) == nil)
        #expect(doc.diagnostics.problems.count == 2)
    }

    @Test func exclusiveKeys() throws {
        let doc = try document("range: 300m\npath-loss: {}\n")
        let m = try #require(doc.root.mapping())
        #expect(!m.exclusive(["range", "path-loss"]))
        #expect(doc.diagnostics.problems.first?.location.line == 2)
    }

    @Test(arguments: [
        ("rnage", "range", 1), ("range", "range", 0), ("", "abc", 3), ("kitten", "sitting", 3), ("Rate", "rate", 0),
    ])
    func editDistance(a: String, b: String, d: Int) {
        #expect(Suggestion.editDistance(a, b) == d)
    }

    @Test func suggestionsOnlyForPlausibleTypos() {
        #expect(Suggestion.closest(to: "delya", among: ["delay", "rate"]) == "delay")
        #expect(Suggestion.closest(to: "zzzz", among: ["delay", "rate"]) == nil)
        #expect(Suggestion.closest(to: "pos", among: ["position", "role"]) == "position")
    }
}
