@testable import Wire

/// Bytes from hex text; spaces are ignored. Test inputs only.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0 ... $0 + 1]), radix: 16)! }
}

/// A buffer of `count` bytes pre-filled with 0xA5, so an unwritten byte shows up.
func poisoned(_ count: Int) -> [UInt8] { [UInt8](repeating: 0xA5, count: count) }
