import Core
import Yams

/// A YAML node with its place in the file. Every accessor that can fail
/// reports a problem at this node's location (what was found, what was
/// expected) and returns `nil`, so decoding continues and all problems are
/// reported together.
public struct ConfigValue {
    public let node: Node
    public let location: SourceLocation
    /// Where the value sits in the document, e.g. `links[2].a-to-b.rate`; for context in messages.
    public let path: String
    public let diagnostics: ConfigDiagnostics

    public init(node: Node, location: SourceLocation, path: String, diagnostics: ConfigDiagnostics) {
        self.node = node; self.location = location; self.path = path; self.diagnostics = diagnostics
    }

    func child(_ node: Node, path: String) -> ConfigValue {
        let mark = node.mark
        return ConfigValue(node: node,
                           location: SourceLocation(file: location.file, line: mark?.line ?? location.line, column: mark?.column ?? location.column),
                           path: path, diagnostics: diagnostics)
    }

    // MARK: Reporting

    /// Reports a problem at this value.
    public func report(_ message: String) { diagnostics.report(message, at: location) }

    /// True for an empty value (`key:`), `~` or `null`.
    public var isNull: Bool { node.null != nil }

    /// How the value looks, for "found …" in messages.
    public var found: String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        case .scalar(let s):
            if isNull { return "nothing" }
            let text = s.string.count > 40 ? String(s.string.prefix(37)) + "..." : s.string
            return "'\(text)'"
        }
    }

    /// Reports "expected …, found …", for decoders' own checks.
    public func reportExpected(_ what: String) { report("expected \(what), found \(found)") }

    func expected<T>(_ what: String) -> T? {
        reportExpected(what)
        return nil
    }

    // MARK: Scalars

    /// The text of a scalar that is not null.
    public func string(expected what: String = "a string") -> String? {
        guard case .scalar(let s) = node, !isNull else { return expected(what) }
        return s.string
    }

    /// A name for something the file defines (a node, a link, an interface):
    /// letters, digits, `-`, `_` and `.`, starting with a letter or digit.
    public func identifier(expected what: String = "a name of letters, digits, '-', '_' or '.'", maxLength: Int = 64) -> String? {
        guard let s = string(expected: what) else { return nil }
        let ok = !s.isEmpty && s.count <= maxLength
            && s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0)) }
            && s.unicodeScalars.first.map { $0.properties.isAlphabetic || ("0"..."9").contains($0) } == true
        guard ok else { return expected(what + (s.count > maxLength ? " of at most \(maxLength) characters" : "")) }
        return s
    }

    public func int(in range: ClosedRange<Int>? = nil) -> Int? {
        let what = range.map { "a whole number from \($0.lowerBound) to \($0.upperBound)" } ?? "a whole number"
        guard let s = string(expected: what), let v = Int(s.filter { $0 != "_" }) else { return expected(what) }
        if let range, !range.contains(v) { return expected(what) }
        return v
    }

    public func double(in range: ClosedRange<Double>? = nil, expected what: String? = nil) -> Double? {
        let what = what ?? range.map { "a number from \(Quantity.trimmed($0.lowerBound)) to \(Quantity.trimmed($0.upperBound))" } ?? "a number"
        guard let s = string(expected: what), let v = Double(s), v.isFinite else { return expected(what) }
        if let range, !range.contains(v) { return expected(what) }
        return v
    }

    public func bool() -> Bool? {
        let what = "true or false"
        guard case .scalar(let s) = node, !isNull else { return expected(what) }
        switch s.string.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: return expected(what)
        }
    }

    /// One of a fixed set of words, with "did you mean" for a near miss.
    public func choice(among words: [String], what: String? = nil) -> String? {
        let expectedText = what.map { "\($0) (\(Suggestion.list(words)))" } ?? Suggestion.list(words)
        guard let s = string(expected: expectedText) else { return nil }
        guard words.contains(s) else {
            report("expected \(expectedText), found '\(s)'\(Suggestion.didYouMean(s, among: words))")
            return nil
        }
        return s
    }

    /// A case of a string enum, by raw value.
    public func choice<E: RawRepresentable & CaseIterable>(_ type: E.Type, what: String? = nil) -> E? where E.RawValue == String {
        choice(among: E.allCases.map(\.rawValue), what: what).flatMap(E.init(rawValue:))
    }

    // MARK: Quantities (Core's parsers, located)

    /// Any of Core's quantity parsers, with its `QuantityError` reported here.
    public func quantity<T>(_ parse: (String) throws(QuantityError) -> T, expected what: String = "a quantity") -> T? {
        guard let s = string(expected: what) else { return nil }
        do {
            return try parse(s)
        } catch {
            report(error.description)
            return nil
        }
    }

    /// A duration such as `20ms` (`Quantity.interval`).
    public func interval() -> Interval? { quantity(Quantity.interval, expected: "a duration with a unit, e.g. 20ms") }
    /// A duration that is not negative.
    public func nonNegativeInterval() -> Interval? { quantity(Quantity.nonNegativeInterval, expected: "a duration with a unit, e.g. 20ms") }
    /// A rate such as `54mbit` (`Bitrate.parse`).
    public func bitrate() -> Bitrate? { quantity(Bitrate.parse, expected: "a rate with a unit, e.g. 54mbit") }
    /// A probability such as `0.5%` or `0.005` (`Probability.parse`).
    public func probability() -> Probability? { quantity(Probability.parse, expected: "a probability, e.g. 0.5%") }
    /// A size such as `64KiB` (`ByteSize.parse`).
    public func byteSize() -> Int? { quantity(ByteSize.parse, expected: "a size in bytes, e.g. 64KiB") }

    /// A distance in metres: a bare number (metres) or with `m` or `km`.
    public func metres() -> Double? {
        let what = "a distance in metres (a number, or with m or km, e.g. 250 or 1.2km)"
        guard var s = string(expected: what) else { return nil }
        var scale = 1.0
        if s.hasSuffix("km") { s.removeLast(2); scale = 1000 }
        else if s.hasSuffix("m") { s.removeLast() }
        while s.last == " " { s.removeLast() }
        guard let v = Double(s), v.isFinite else { return expected(what) }
        return v * scale
    }

    // MARK: Collections

    /// The items of a list.
    public func sequence(expected what: String = "a list") -> [ConfigValue]? {
        guard case .sequence(let seq) = node else { return expected(what) }
        return seq.enumerated().map { child($0.element, path: "\(path)[\($0.offset)]") }
    }

    /// A mapping whose keys must come from `keys`; every other key is reported
    /// (with "did you mean") and left out.
    public func mapping(keys allowed: [String], expected what: String = "a mapping") -> ConfigMapping? {
        guard let m = mapping(expected: what) else { return nil }
        var kept: [ConfigMapping.Entry] = []
        for entry in m.entries {
            if allowed.contains(entry.key) {
                kept.append(entry)
            } else {
                diagnostics.report("unknown key '\(entry.key)'\(Suggestion.didYouMean(entry.key, among: allowed)) (expected \(Suggestion.list(allowed)))",
                                   at: entry.keyLocation)
            }
        }
        return ConfigMapping(value: self, entries: kept)
    }

    /// A mapping with keys the file chooses (e.g. names of nodes). Every key
    /// must be a non-empty string.
    public func mapping(expected what: String = "a mapping") -> ConfigMapping? {
        guard case .mapping(let m) = node else { return expected(what) }
        var entries: [ConfigMapping.Entry] = []
        for (k, v) in m {
            let keyValue = child(k, path: path)
            guard case .scalar(let s) = k, !keyValue.isNull, !s.string.isEmpty else {
                keyValue.report("expected a key that is a word, found \(keyValue.found)")
                continue
            }
            let childPath = path.isEmpty ? s.string : "\(path).\(s.string)"
            entries.append(ConfigMapping.Entry(key: s.string, keyLocation: keyValue.location, value: child(v, path: childPath)))
        }
        return ConfigMapping(value: self, entries: entries)
    }
}

/// A mapping's entries in the order written, each with the key's location.
public struct ConfigMapping {
    public struct Entry {
        public let key: String
        public let keyLocation: SourceLocation
        public let value: ConfigValue
    }

    /// The mapping itself (its location is that of its first key).
    public let value: ConfigValue
    public let entries: [Entry]

    public var location: SourceLocation { value.location }
    public var keys: [String] { entries.map(\.key) }

    /// The value of `key`, or nil if the key is absent.
    public subscript(key: String) -> ConfigValue? { entries.first { $0.key == key }?.value }

    public func contains(_ key: String) -> Bool { entries.contains { $0.key == key } }

    /// The value of `key`; reports "missing key" at the mapping if it is absent.
    public func required(_ key: String, expected what: String? = nil) -> ConfigValue? {
        if let v = self[key] { return v }
        let context = value.path.isEmpty ? "" : " in '\(value.path)'"
        value.report("missing key '\(key)'\(context)" + (what.map { ": expected \($0)" } ?? ""))
        return nil
    }

    /// Reports that at most one of `keys` may be given, at the second one found.
    @discardableResult
    public func exclusive(_ keys: [String]) -> Bool {
        let present = entries.filter { keys.contains($0.key) }
        guard present.count > 1 else { return true }
        value.diagnostics.report("'\(present[1].key)' cannot be given together with '\(present[0].key)'; expected only one of \(Suggestion.list(keys))",
                                 at: present[1].keyLocation)
        return false
    }
}
