/// Text renderings shared by every writer of JSON, CSV and reports, so that a
/// number or a string looks the same in results.json, a decoded capture and
/// report.html. Pure, no Foundation.
public enum TextFormatting {
    /// Appends `s` as a JSON string literal (RFC 8259 §7: quote, backslash and
    /// control characters escaped; everything else as is).
    public static func appendJSONString(_ s: String, to out: inout String) {
        out += "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if scalar.value < 0x20 {
                    let hex = String(scalar.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        out += "\""
    }

    /// `v` rounded to `digits` decimals, exactly that many shown (`12.50`), or
    /// with trailing zeros dropped when `trimmingZeros` (`12.5`, `3`). `nil`
    /// for a value that is not finite, so each caller says what it shows then.
    public static func fixed(_ v: Double, digits: Int, trimmingZeros: Bool = false) -> String? {
        guard v.isFinite else { return nil }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded()
        let neg = r < 0
        let m = Int64(r.magnitude)
        let p = Int64(scale)
        guard digits > 0 else { return (neg ? "-" : "") + String(m) }
        var frac = String(m % p)
        while frac.count < digits { frac = "0" + frac }
        if trimmingZeros { while frac.hasSuffix("0") { frac.removeLast() } }
        return (neg ? "-" : "") + String(m / p) + (frac.isEmpty ? "" : "." + frac)
    }
}
