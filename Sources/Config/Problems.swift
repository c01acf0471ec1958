/// Where something is in a configuration file. Lines and columns count from 1;
/// a location with line 0 means "the file as a whole" (it could not be read).
public struct SourceLocation: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int

    public init(file: String, line: Int, column: Int) {
        self.file = file; self.line = line; self.column = column
    }

    public static func < (a: SourceLocation, b: SourceLocation) -> Bool {
        (a.file, a.line, a.column) < (b.file, b.line, b.column)
    }

    /// `file:line:column`, or just `file` when the location is the whole file.
    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }
}

/// One thing wrong with a configuration file; `message` says what was found and
/// what was expected.
public struct ConfigProblem: Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    public var message: String

    public init(at location: SourceLocation, _ message: String) {
        self.location = location; self.message = message
    }

    public var description: String { "\(location): \(message)" }
}

/// Every problem found in one or more files, in file order, reported at once.
public struct ConfigError: Error, Hashable, Sendable, CustomStringConvertible {
    public var problems: [ConfigProblem]

    public init(_ problems: [ConfigProblem]) {
        // Stable sort: problems at the same place keep the order they were found in.
        self.problems = problems.enumerated().sorted { l, r in
            l.element.location != r.element.location ? l.element.location < r.element.location : l.offset < r.offset
        }.map(\.element)
    }

    public init(at location: SourceLocation, _ message: String) {
        self.init([ConfigProblem(at: location, message)])
    }

    /// One problem per line, `file:line:column: message`.
    public var description: String { problems.map(\.description).joined(separator: "\n") }
}

/// Collects problems while a file is decoded, so that decoding can go on after
/// the first one and the user sees everything wrong with the file in one go.
///
/// A reference type because every `ConfigValue` of a document reports into the
/// same list; it is not shared between threads.
public final class ConfigDiagnostics {
    public let file: String
    public private(set) var problems: [ConfigProblem] = []

    public init(file: String) { self.file = file }

    public func report(_ message: String, at location: SourceLocation) {
        problems.append(ConfigProblem(at: location, message))
    }

    public func report(_ message: String, line: Int, column: Int) {
        report(message, at: SourceLocation(file: file, line: line, column: column))
    }

    public var hasProblems: Bool { !problems.isEmpty }

    /// Throws everything reported so far, if anything was.
    public func check() throws(ConfigError) {
        if !problems.isEmpty { throw ConfigError(problems) }
    }
}

/// "Did you mean …?" for a misspelt key or value.
public enum Suggestion {
    /// Edit distance between two strings (insertions, deletions, substitutions
    /// and transpositions of neighbours each count one — the optimal string
    /// alignment distance), compared case-insensitively by Unicode scalar.
    /// Transpositions count one because swapped letters are the commonest typo.
    public static func editDistance(_ a: String, _ b: String) -> Int {
        let s = Array(a.lowercased().unicodeScalars), t = Array(b.lowercased().unicodeScalars)
        if s.isEmpty { return t.count }
        if t.isEmpty { return s.count }
        var d = [[Int]](repeating: [Int](repeating: 0, count: t.count + 1), count: s.count + 1)
        for i in 0...s.count { d[i][0] = i }
        for j in 0...t.count { d[0][j] = j }
        for i in 1...s.count {
            for j in 1...t.count {
                let cost = s[i - 1] == t[j - 1] ? 0 : 1
                d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
                if i > 1, j > 1, s[i - 1] == t[j - 2], s[i - 2] == t[j - 1] {
                    d[i][j] = min(d[i][j], d[i - 2][j - 2] + 1)
                }
            }
        }
        return d[s.count][t.count]
    }

    /// The candidate closest to `word`, if it is close enough to be a plausible
    /// typo: at most a third of the word's length in edits (and at least one),
    /// or a candidate that differs only by case, or one that contains it.
    public static func closest(to word: String, among candidates: [String]) -> String? {
        guard !word.isEmpty else { return nil }
        let limit = max(1, word.count / 3)
        var best: (String, Int)?
        for c in candidates where c != word {
            let d = editDistance(word, c)
            if d <= limit, best.map({ d < $0.1 }) ?? true { best = (c, d) }
        }
        if let best { return best.0 }
        let lower = word.lowercased()
        if word.count >= 3, let c = candidates.first(where: { $0.lowercased().hasPrefix(lower) }) { return c }
        return nil
    }

    /// `; did you mean 'x'?` or an empty string.
    public static func didYouMean(_ word: String, among candidates: [String]) -> String {
        closest(to: word, among: candidates).map { "; did you mean '\($0)'?" } ?? ""
    }

    /// `'a', 'b' or 'c'` for messages.
    public static func list(_ words: [String]) -> String {
        let quoted = words.map { "'\($0)'" }
        guard quoted.count > 1 else { return quoted.first ?? "nothing" }
        return quoted.dropLast().joined(separator: ", ") + " or " + quoted.last!
    }
}
