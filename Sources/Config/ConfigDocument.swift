import Foundation
import Yams

/// One YAML file, composed into located nodes, ready to be decoded.
///
/// Decoding goes through `root` and the `ConfigValue` accessors, which report
/// every problem into `diagnostics` and return `nil` for a value they could not
/// read, so the decoder carries on and finds the next problem. Call `finish()`
/// at the end: it throws everything found, with `file:line:column` each.
///
/// ```swift
/// let doc = try ConfigDocument(contentsOf: "Topologies/highway.yaml")
/// let top = doc.root.mapping(keys: ["nodes", "links"])
/// let rate = top?["rate"]?.bitrate()
/// try doc.finish()
/// ```
public struct ConfigDocument {
    public let file: String
    public let text: String
    public let diagnostics: ConfigDiagnostics
    /// The document's top node; an empty document is a null scalar at 1:1.
    public let root: ConfigValue

    /// Reads and composes a file. Throws at once if the file cannot be read or
    /// is not well-formed YAML (nothing can be decoded from it then).
    public init(contentsOf path: String) throws(ConfigError) {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw ConfigError(at: SourceLocation(file: path, line: 0, column: 0), "cannot read the file: \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(at: SourceLocation(file: path, line: 0, column: 0), "cannot read the file: expected UTF-8 text")
        }
        try self.init(text: text, file: path)
    }

    /// Composes YAML text; `file` names it in messages.
    public init(text: String, file: String) throws(ConfigError) {
        self.file = file
        self.text = text
        let diagnostics = ConfigDiagnostics(file: file)
        self.diagnostics = diagnostics
        let node: Node?
        do {
            // One document per file: a second one is a mistake worth reporting.
            var documents: [Node] = []
            var sequence = try Yams.compose_all(yaml: text)
            while documents.count < 2, let document = sequence.next() {
                documents.append(document)
            }
            if let error = sequence.error { throw error }
            if documents.count > 1, let mark = documents[1].mark {
                throw ConfigError(at: SourceLocation(file: file, line: mark.line, column: mark.column),
                                  "a second YAML document; expected one document per file")
            }
            node = documents.first
        } catch let error as ConfigError {
            throw error
        } catch let error as YamlError {
            throw ConfigDocument.located(error, file: file)
        } catch {
            throw ConfigError(at: SourceLocation(file: file, line: 0, column: 0), "cannot parse YAML: \(error)")
        }
        let top = node ?? Node("", Tag(.null), .plain)
        root = ConfigValue(node: top, location: SourceLocation(file: file, line: top.mark?.line ?? 1, column: top.mark?.column ?? 1),
                           path: "", diagnostics: diagnostics)
    }

    /// Throws every problem reported while decoding, if any.
    public func finish() throws(ConfigError) { try diagnostics.check() }

    /// A YAML syntax error as one located problem, in our words.
    static func located(_ error: YamlError, file: String) -> ConfigError {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        func context(_ c: YamlError.Context?) -> String { c.map { " (\($0.text) at line \($0.mark.line), column \($0.mark.column))" } ?? "" }
        switch error {
        case let .scanner(c, problem, mark, _), let .parser(c, problem, mark, _), let .composer(c, problem, mark, _):
            return ConfigError(at: at(mark), "not valid YAML: \(problem)\(context(c))")
        case let .reader(problem, offset, _, yaml):
            var line = 1, column = 1
            if let offset {
                for (i, ch) in yaml.utf8.enumerated() where i < offset {
                    if ch == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
                }
            }
            return ConfigError(at: SourceLocation(file: file, line: line, column: column), "not readable as YAML text: \(problem)")
        case let .duplicatedKeysInMapping(duplicates, c):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigError(at: at(c.mark), "key \(keys) appears more than once in this mapping; expected each key once")
        default:
            return ConfigError(at: SourceLocation(file: file, line: 0, column: 0), "cannot parse YAML: \(error)")
        }
    }
}
