import Core

/// The header every application message carries (cbr, rr): enough for the
/// receiver to log the message's sequence number, size and send time
/// (docs/LOGS.md `app.delivered`) without a side channel.
///
/// Layout, big-endian (offsets in bytes):
/// ```
///  0  magic     u32  0x57534731 ("WSG1")
///  4  size      u32  whole message length, header included (24 ... 16 MiB)
///  8  sequence  u64
/// 16  sent_at   i64  nanoseconds since the run's start when the message was generated
/// 24  padding   size - 24 bytes of zeros
/// ```
public struct MessageHeader: Hashable, Sendable {
    public var sequence: UInt64
    public var sentAt: Instant
    public var size: Int

    public init(sequence: UInt64, sentAt: Instant, size: Int) {
        self.sequence = sequence; self.sentAt = sentAt; self.size = size
    }
}

public enum MessageFraming {
    public static let magic: UInt32 = 0x5753_4731
    public static let headerSize = 24
    public static let maximumSize = 16 * 1024 * 1024

    enum Offset {
        static let magic = 0, size = 4, sequence = 8, sentAt = 16
    }

    /// Appends the whole message (header and zero padding) to `buffer`.
    /// `size` is clamped to [headerSize, maximumSize].
    public static func append(_ header: MessageHeader, to buffer: inout [UInt8]) {
        let size = min(maximumSize, max(headerSize, header.size))
        let start = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: size))
        func put<T: FixedWidthInteger>(_ v: T, at offset: Int) {
            var be = v.bigEndian
            withUnsafeBytes(of: &be) { raw in
                for (i, b) in raw.enumerated() { buffer[start + offset + i] = b }
            }
        }
        put(magic, at: Offset.magic)
        put(UInt32(size), at: Offset.size)
        put(header.sequence, at: Offset.sequence)
        put(header.sentAt.nanoseconds, at: Offset.sentAt)
    }

    public static func encode(_ header: MessageHeader) -> [UInt8] {
        var b: [UInt8] = []
        append(header, to: &b)
        return b
    }

    /// Whether a stream that starts with these bytes carries framed messages.
    /// nil until four bytes have been seen.
    public static func isFramed(prefix: some Collection<UInt8>) -> Bool? {
        guard prefix.count >= 4 else { return nil }
        var v: UInt32 = 0
        for b in prefix.prefix(4) { v = v << 8 | UInt32(b) }
        return v == magic
    }
}

public struct FramingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Offset in the stream where the bad header starts.
    public var streamOffset: Int64
    public var message: String
    public var description: String { "at stream byte \(streamOffset): \(message)" }
}

/// Cuts a byte stream into messages. Only headers are kept; padding is
/// skipped without copying. After an error the reassembler stays failed:
/// a stream out of sync cannot be trusted again.
public struct MessageReassembler: Sendable {
    private var header: [UInt8] = []
    private var skip = 0
    private var offset: Int64 = 0
    private var headerStart: Int64 = 0
    private var failure: FramingError?

    public init() { header.reserveCapacity(MessageFraming.headerSize) }

    /// Bytes of the stream consumed so far.
    public var streamOffset: Int64 { offset }

    /// Feeds bytes; returns the messages completed by them, in order.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(FramingError) -> [MessageHeader] {
        if let failure { throw failure }
        var out: [MessageHeader] = []
        var i = 0
        let n = bytes.count
        while i < n {
            if skip > 0 {
                let k = min(skip, n - i)
                skip -= k; i += k; offset += Int64(k)
                continue
            }
            if header.isEmpty { headerStart = offset }
            let k = min(MessageFraming.headerSize - header.count, n - i)
            header.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i..<(i + k)]))
            i += k; offset += Int64(k)
            guard header.count == MessageFraming.headerSize else { continue }
            func read<T: FixedWidthInteger>(_ type: T.Type, at o: Int) -> T {
                var v: T = 0
                for b in header[o..<(o + MemoryLayout<T>.size)] { v = v << 8 | T(truncatingIfNeeded: b) }
                return v
            }
            guard read(UInt32.self, at: MessageFraming.Offset.magic) == MessageFraming.magic else {
                failure = FramingError(streamOffset: headerStart, message: "no message header (bad magic)")
                throw failure!
            }
            let size = Int(read(UInt32.self, at: MessageFraming.Offset.size))
            guard size >= MessageFraming.headerSize, size <= MessageFraming.maximumSize else {
                failure = FramingError(streamOffset: headerStart, message: "message size \(size) outside 24 ... \(MessageFraming.maximumSize)")
                throw failure!
            }
            out.append(MessageHeader(sequence: read(UInt64.self, at: MessageFraming.Offset.sequence),
                                     sentAt: Instant(nanoseconds: read(Int64.self, at: MessageFraming.Offset.sentAt)),
                                     size: size))
            header.removeAll(keepingCapacity: true)
            skip = size - MessageFraming.headerSize
        }
        return out
    }

    public mutating func append(_ bytes: [UInt8]) throws(FramingError) -> [MessageHeader] {
        var result: Result<[MessageHeader], FramingError> = .success([])
        bytes.withUnsafeBytes { raw in
            do throws(FramingError) { result = .success(try append(raw)) } catch { result = .failure(error) }
        }
        return try result.get()
    }

    /// True between messages: a stream that ends here ended cleanly.
    public var atMessageBoundary: Bool { header.isEmpty && skip == 0 }
}
