import Stack

/// A connection of the Swift MPTCP stack as a converter carrier. `StackSocket`
/// only blocks (no descriptor to poll), so it has no `pollDescriptor`: the
/// relay reads and writes it blocking, and `abort` (which fails a waiting read
/// or write) wakes it.
public final class StackStream: ByteStream, @unchecked Sendable {
    public let socket: StackSocket
    private let lock = Mutex()
    private var ended = false

    public init(_ socket: StackSocket) { self.socket = socket }

    public var pollDescriptor: Int32? { nil }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        try socket.readBlocking(into: buffer)
    }

    public func writeSome(_ bytes: UnsafeRawBufferPointer) throws -> Int {
        try socket.writeAllBlocking(Array(bytes))
        return bytes.count
    }

    public func writeAll(_ bytes: UnsafeRawBufferPointer) throws {
        try socket.writeAllBlocking(Array(bytes))
    }

    /// DATA_FIN after what was written.
    public func shutdownWrite() { socket.shutdownWrite() }

    /// MP_FASTCLOSE / resets every subflow; once, like closing a descriptor.
    public func abort() {
        let first: Bool = lock.locked { defer { ended = true }; return !ended }
        if first { socket.abort() }
    }

    /// The orderly end: DATA_FIN; the stack finishes the connection once the peer closes too.
    public func close() {
        let first: Bool = lock.locked { defer { ended = true }; return !ended }
        if first { socket.close() }
    }
}

/// Opens carriers over a running Swift stack, from one of its paths.
public struct StackCarrierDialer: CarrierDialer {
    public let stack: SwiftStack
    public var fromPath: Int

    public init(stack: SwiftStack, fromPath: Int = 0) { self.stack = stack; self.fromPath = fromPath }

    public var name: String { "swift" }

    public func connect(to converter: IPv4Endpoint) throws -> ByteStream {
        let a = converter.address
        let bytes = [UInt8(a >> 24), UInt8(a >> 16 & 0xFF), UInt8(a >> 8 & 0xFF), UInt8(a & 0xFF)]
        return StackStream(try stack.connectBlocking(to: bytes, port: converter.port, fromPath: fromPath, label: "convert"))
    }
}
