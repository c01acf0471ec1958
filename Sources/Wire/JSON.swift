import Core

/// A JSON value with object keys kept in insertion order, so decoder output
/// is stable and readable. Integers are written exactly (64-bit keys and data
/// sequence numbers do not pass through a Double).
public indirect enum JSON: Hashable, Sendable {
    case null
    case bool(Bool)
    case integer(String)
    case number(Double)
    case string(String)
    case array([JSON])
    case object([(String, JSON)])

    public static func int<T: BinaryInteger>(_ v: T) -> JSON { .integer(String(v)) }

    public static func == (a: JSON, b: JSON) -> Bool { a.serialized == b.serialized }
    public func hash(into hasher: inout Hasher) { hasher.combine(serialized) }

    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    public func write(to out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .integer(s): out += s
        case let .number(d): out += d.isFinite ? "\(d)" : "null"
        case let .string(s): JSON.writeString(s, to: &out)
        case let .array(items):
            out += "["
            for (i, item) in items.enumerated() { if i > 0 { out += "," }; item.write(to: &out) }
            out += "]"
        case let .object(fields):
            out += "{"
            for (i, (k, v)) in fields.enumerated() {
                if i > 0 { out += "," }
                JSON.writeString(k, to: &out); out += ":"; v.write(to: &out)
            }
            out += "}"
        }
    }

    static func writeString(_ s: String, to out: inout String) { TextFormatting.appendJSONString(s, to: &out) }
}
