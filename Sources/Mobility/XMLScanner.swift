/// A small pull scanner for the XML that drive traces come in (GPX, SUMO FCD):
/// elements, attributes, text, comments, CDATA, processing instructions and a
/// DOCTYPE without an internal subset. It keeps line and column for every
/// event so an importer can name the line of the trace at fault, and it never
/// traps on malformed input: everything it cannot read is a `TraceError`.
struct XMLScanner {
    enum Event: Equatable {
        case start(name: String, attributes: [String: String])
        case end(name: String)
        case text(String)
    }

    struct Located: Equatable {
        var event: Event
        var line: Int
        var column: Int
    }

    private let bytes: [UInt8]
    private var i = 0
    private var line = 1
    private var lineStart = 0
    private var open: [String] = []
    private var pendingEnd: (String, Int, Int)? = nil
    private var sawRoot = false

    init(_ text: String) { bytes = Array(text.utf8) }

    private var column: Int { i - lineStart + 1 }

    private func error(_ message: String, line l: Int? = nil, column c: Int? = nil) -> TraceError {
        TraceError(line: l ?? line, column: c ?? column, message: message)
    }

    private mutating func advance() {
        if bytes[i] == UInt8(ascii: "\n") { line += 1; lineStart = i + 1 }
        i += 1
    }

    private func starts(with s: StaticString) -> Bool {
        let n = s.utf8CodeUnitCount
        guard i + n <= bytes.count else { return false }
        return s.withUTF8Buffer { u in
            for k in 0..<n where bytes[i + k] != u[k] { return false }
            return true
        }
    }

    private mutating func skip(until terminator: StaticString, what: String) throws(TraceError) {
        let (l, c) = (line, column)
        while i < bytes.count {
            if starts(with: terminator) {
                for _ in 0..<terminator.utf8CodeUnitCount { advance() }
                return
            }
            advance()
        }
        throw error("\(what) is not closed by '\(terminator)'", line: l, column: c)
    }

    private static func isNameByte(_ b: UInt8) -> Bool {
        (b >= 0x61 && b <= 0x7A) || (b >= 0x41 && b <= 0x5A) || (b >= 0x30 && b <= 0x39)
            || b == UInt8(ascii: "_") || b == UInt8(ascii: "-") || b == UInt8(ascii: ".")
            || b == UInt8(ascii: ":") || b >= 0x80
    }

    private static func isSpace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x09 || b == 0x0A || b == 0x0D }

    private mutating func skipSpace() { while i < bytes.count, XMLScanner.isSpace(bytes[i]) { advance() } }

    private mutating func name() throws(TraceError) -> String {
        let s = i
        while i < bytes.count, XMLScanner.isNameByte(bytes[i]) { advance() }
        guard i > s else { throw error("expected a name") }
        return String(decoding: bytes[s..<i], as: UTF8.self)
    }

    /// Replaces the five predefined entities and character references.
    private func decodeEntities(_ raw: ArraySlice<UInt8>, line l: Int, column c: Int) throws(TraceError) -> String {
        guard raw.contains(UInt8(ascii: "&")) else { return String(decoding: raw, as: UTF8.self) }
        var out = ""
        var text = Substring(String(decoding: raw, as: UTF8.self))
        while let amp = text.firstIndex(of: "&") {
            out += text[text.startIndex..<amp]
            guard let semi = text[amp...].firstIndex(of: ";") else { throw error("'&' without ';'", line: l, column: c) }
            let entity = text[text.index(after: amp)..<semi]
            switch entity {
            case "lt": out += "<"
            case "gt": out += ">"
            case "amp": out += "&"
            case "quot": out += "\""
            case "apos": out += "'"
            default:
                var code: UInt32? = nil
                if entity.hasPrefix("#x") { code = UInt32(entity.dropFirst(2), radix: 16) }
                else if entity.hasPrefix("#") { code = UInt32(entity.dropFirst(1)) }
                guard let v = code, let scalar = Unicode.Scalar(v) else {
                    throw error("unknown entity '&\(entity);'", line: l, column: c)
                }
                out.unicodeScalars.append(scalar)
            }
            text = text[text.index(after: semi)...]
        }
        return out + text
    }

    /// The next event, or nil at the end of the document.
    mutating func next() throws(TraceError) -> Located? {
        if let (n, l, c) = pendingEnd {
            pendingEnd = nil
            return Located(event: .end(name: n), line: l, column: c)
        }
        while i < bytes.count {
            let (l, c) = (line, column)
            if bytes[i] != UInt8(ascii: "<") {
                let s = i
                while i < bytes.count, bytes[i] != UInt8(ascii: "<") { advance() }
                let raw = bytes[s..<i]
                if raw.allSatisfy(XMLScanner.isSpace) { continue }
                guard !open.isEmpty else { throw error("text outside the root element", line: l, column: c) }
                return Located(event: .text(try decodeEntities(raw, line: l, column: c)), line: l, column: c)
            }
            if starts(with: "<!--") { try skip(until: "-->", what: "comment"); continue }
            if starts(with: "<?") { try skip(until: "?>", what: "processing instruction"); continue }
            if starts(with: "<![CDATA[") {
                for _ in 0..<9 { advance() }
                let s = i
                try skip(until: "]]>", what: "CDATA section")
                guard !open.isEmpty else { throw error("CDATA outside the root element", line: l, column: c) }
                return Located(event: .text(String(decoding: bytes[s..<(i - 3)], as: UTF8.self)), line: l, column: c)
            }
            if starts(with: "<!") {
                guard !sawRoot else { throw error("declaration inside the document", line: l, column: c) }
                try skip(until: ">", what: "declaration"); continue
            }
            if starts(with: "</") {
                advance(); advance()
                let n = try name()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: ">") else { throw error("expected '>' to close </\(n)") }
                advance()
                guard let top = open.popLast() else { throw error("</\(n)> closes nothing", line: l, column: c) }
                guard top == n else { throw error("</\(n)> closes <\(top)>", line: l, column: c) }
                return Located(event: .end(name: n), line: l, column: c)
            }
            advance() // '<'
            let n = try name()
            if open.isEmpty && sawRoot { throw error("a second root element <\(n)>", line: l, column: c) }
            var attributes: [String: String] = [:]
            while true {
                let hadSpace = i < bytes.count && XMLScanner.isSpace(bytes[i])
                skipSpace()
                guard i < bytes.count else { throw error("<\(n) is not closed", line: l, column: c) }
                if bytes[i] == UInt8(ascii: ">") {
                    advance()
                    open.append(n); sawRoot = true
                    return Located(event: .start(name: n, attributes: attributes), line: l, column: c)
                }
                if starts(with: "/>") {
                    advance(); advance()
                    sawRoot = true
                    pendingEnd = (n, l, c)
                    return Located(event: .start(name: n, attributes: attributes), line: l, column: c)
                }
                guard hadSpace else { throw error("expected a space before an attribute") }
                let (al, ac) = (line, column)
                let a = try name()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "=") else { throw error("expected '=' after attribute \(a)") }
                advance()
                skipSpace()
                guard i < bytes.count, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else {
                    throw error("expected a quoted value for attribute \(a)")
                }
                let quote = bytes[i]
                advance()
                let s = i
                while i < bytes.count, bytes[i] != quote {
                    if bytes[i] == UInt8(ascii: "<") { throw error("'<' in the value of attribute \(a)") }
                    advance()
                }
                guard i < bytes.count else { throw error("value of attribute \(a) is not closed", line: al, column: ac) }
                let value = try decodeEntities(bytes[s..<i], line: al, column: ac)
                advance()
                guard attributes.updateValue(value, forKey: a) == nil else {
                    throw error("attribute \(a) given twice", line: al, column: ac)
                }
            }
        }
        if let top = open.last { throw error("end of file inside <\(top)>") }
        guard sawRoot else { throw error("no XML element in the file") }
        return nil
    }
}
