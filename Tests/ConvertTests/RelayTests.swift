import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import Converter

/// The relay over AF_UNIX socket pairs (no network): byte order, half-close in
/// each direction independently, and a stream that only blocks (how the Swift
/// stack's `StackSocket` joins), with no poll descriptor.
@Suite struct RelayTests {
    /// Two connected stream sockets.
    static func pair() throws -> (StreamSocket, StreamSocket) {
        var fds: [Int32] = [0, 0]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &fds) == 0 else {
            throw ConverterSocketError(operation: "socketpair", context: "", errno: errno)
        }
        return (StreamSocket(fd: fds[0]), StreamSocket(fd: fds[1]))
    }

    /// A `StreamSocket` seen as a stream without poll descriptor: every call blocks.
    final class BlockingOnly: ByteStream, @unchecked Sendable {
        let inner: StreamSocket
        init(_ inner: StreamSocket) { self.inner = inner }
        var pollDescriptor: Int32? { nil }
        func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int { try inner.read(into: buffer) }
        func writeSome(_ bytes: UnsafeRawBufferPointer) throws -> Int { try inner.writeAll(bytes); return bytes.count }
        func writeAll(_ bytes: UnsafeRawBufferPointer) throws { try inner.writeAll(bytes) }
        func shutdownWrite() { inner.shutdownWrite() }
        func abort() { _ = Glibc.shutdown(inner.fd, Int32(SHUT_RDWR)); inner.abort() }
        func close() { inner.close() }
    }

    static func readAll(_ s: StreamSocket) throws -> [UInt8] {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try s.read(into: $0) }
            if n == 0 { return out }
            out += buffer[..<n]
        }
    }

    /// program ⇄ [relay: left | right] ⇄ server; each end sends, half-closes, and reads to the end.
    func exchange(blockingRight: Bool) throws {
        let (program, left) = try Self.pair()
        let (right, server) = try Self.pair()
        let relay = try Relay(left, named: "left", blockingRight ? BlockingOnly(right) : right, named: "right")
        let upload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let download = (0..<500_000).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        var ending: RelayEnding?
        let relayThread = RelayThread(stackSize: 512 * 1024) { ending = relay.run(startAB: [1, 2, 3], startBA: [9]) }
        #expect(relayThread.start())
        var serverGot: [UInt8] = []
        let serverThread = RelayThread(stackSize: 512 * 1024) {
            // The server answers only after the upload ended: half-close keeps the other way open.
            serverGot = (try? Self.readAll(server)) ?? []
            try? server.writeAll(download)
            server.shutdownWrite()
        }
        #expect(serverThread.start())
        try program.writeAll(upload)
        program.shutdownWrite()
        let programGot = try Self.readAll(program)
        serverThread.join()
        relayThread.join()
        #expect(serverGot == [1, 2, 3] + upload)
        #expect(programGot == [9] + download)
        #expect(ending == .closed)
    }

    @Test func bothDirectionsArriveInOrderAndHalfCloseIsPerDirection() throws { try exchange(blockingRight: false) }
    @Test func aStreamWithoutPollDescriptorIsRelayedToo() throws { try exchange(blockingRight: true) }

    @Test func stopEndsARelayWhoseSidesAreIdle() throws {
        let (program, left) = try Self.pair()
        let (right, server) = try Self.pair()
        let relay = try Relay(left, named: "left", BlockingOnly(right), named: "right")
        var ending: RelayEnding?
        let t = RelayThread(stackSize: 512 * 1024) { ending = relay.run() }
        #expect(t.start())
        usleep(50_000)
        relay.stop()
        t.join()
        #expect(ending == .stopped)
        // Both outer ends see their peer gone.
        #expect(try Self.readAll(program) == [])
        #expect(try Self.readAll(server) == [])
    }
}
