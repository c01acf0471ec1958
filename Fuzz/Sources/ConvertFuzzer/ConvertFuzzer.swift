import Convert

// Every input is read as the first bytes of a stream to the converter. A trap
// is a bug; so is a message that does not decode back to itself once encoded,
// or a decoder that consumes more bytes than it was given.
func convertFuzzer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let progress: ConvertDecodeProgress
    do { progress = try ConvertMessage.decode(bytes[...]) } catch {
        _ = error.description
        _ = error.errorCode
        return 0
    }
    switch progress {
    case let .needBytes(n):
        guard n > bytes.count, n <= convertMaximumMessageBytes else { fatalError("asked for \(n) bytes with \(bytes.count) present") }
    case let .message(m, consumed):
        guard consumed <= bytes.count, consumed == m.encodedLength else { fatalError("consumed \(consumed) of \(bytes.count), encodes to \(m.encodedLength)") }
        guard let again = m.encode() else { fatalError("a decoded message does not encode: \(m)") }
        guard (try? ConvertMessage.decode(again[...])) == .message(m, consumed: again.count) else { fatalError("round trip changed \(m)") }
        _ = try? m.destination()
        _ = m.error
        for case let .connect(d, _) in m.tlvs { _ = d.description }
    }
    return 0
}
