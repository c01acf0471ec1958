import Analysis
import Core
import Crypto
import MPTCP
import TCP
import Testing
import Wire
import Stack

/// Anything that takes and produces IPv4 packets in virtual time.
protocol PacketHost {
    mutating func receive(packet: ArraySlice<UInt8>, now: Instant)
    mutating func advance(now: Instant)
    var nextDeadline: Instant { get }
    mutating func takeOutgoing() -> [[UInt8]]
}

extension StackCore: PacketHost {}

/// A plain TCP peer (no MPTCP at all), like a kernel socket without IPPROTO_MPTCP.
struct PlainPeer: PacketHost {
    var tcp: TCPConnection
    var out: [[UInt8]] = []
    var received: [UInt8] = []

    init(local: [UInt8], localPort: UInt16, remote: [UInt8], remotePort: UInt16, listen: Bool, now: Instant) {
        tcp = TCPConnection(tuple: TCPFourTuple(localAddress: local, localPort: localPort, remoteAddress: remote, remotePort: remotePort),
                            isnGenerator: InitialSequenceNumberGenerator(seed: 99))
        if listen { tcp.listen() } else { emit(tcp.connect(now: now)) }
    }

    mutating func emit(_ actions: [TCPAction]) {
        for case let .send(s) in actions {
            let h = IPv4Header(source: IPv4Address(bytes: tcp.tuple.localAddress)!, destination: IPv4Address(bytes: tcp.tuple.remoteAddress)!,
                               proto: IPProtocol.tcp, payloadLength: s.encodedLength)
            out.append(IPPacket(header: .v4(h), tcp: s).bytes())
        }
    }

    mutating func receive(packet: ArraySlice<UInt8>, now: Instant) {
        guard let p = try? IPPacket.parse(packet), let s = p.tcp else { return }
        emit(tcp.handle(s, now: now))
        received += tcp.receive()
        emit(tcp.poll(now: now))
    }

    mutating func advance(now: Instant) {
        received += tcp.receive()
        emit(tcp.poll(now: now))
    }

    var nextDeadline: Instant { tcp.nextDeadline }
    mutating func takeOutgoing() -> [[UInt8]] { defer { out = [] }; return out }
}

/// Two hosts joined by a wire with a fixed one-way delay; packets to or from
/// a blocked address vanish (silent coverage loss).
struct BackToBack<A: PacketHost, B: PacketHost> {
    var a: A
    var b: B
    var now = Instant.zero
    var delay: Interval = .milliseconds(2)
    var blocked: Set<[UInt8]> = []
    var flight: [(at: Instant, toB: Bool, bytes: [UInt8])] = []
    var delivered = 0
    /// Every packet that left either host, in order (for checking RSTs and options).
    var log: [(fromA: Bool, packet: IPPacket)] = []

    init(_ a: A, _ b: B) { self.a = a; self.b = b }

    mutating func collect() {
        for p in a.takeOutgoing() { enqueue(p, toB: true) }
        for p in b.takeOutgoing() { enqueue(p, toB: false) }
    }

    mutating func enqueue(_ p: [UInt8], toB: Bool) {
        if let parsed = try? IPPacket.parse(p) {
            log.append((!toB ? false : true, parsed))
            if blocked.contains(parsed.header.source.bytes) || blocked.contains(parsed.header.destination.bytes) { return }
        }
        flight.append((now + delay, toB, p))
    }

    /// Moves time to the next event and handles it.
    mutating func step() -> Bool {
        collect()
        let nextPacket = flight.map(\.at).min() ?? .distantFuture
        let next = min(nextPacket, a.nextDeadline, b.nextDeadline)
        guard next < .distantFuture else { return false }
        now = max(now, next)
        var due: [(at: Instant, toB: Bool, bytes: [UInt8])] = []
        flight.removeAll { if $0.at <= now { due.append($0); return true }; return false }
        for p in due {
            delivered += 1
            if p.toB { b.receive(packet: p.bytes[...], now: now) } else { a.receive(packet: p.bytes[...], now: now) }
        }
        a.advance(now: now)
        b.advance(now: now)
        collect()
        return true
    }

    /// Steps until `done` holds or `limit` of virtual time passed.
    mutating func run(for limit: Interval, until done: (inout Self) -> Bool) -> Bool {
        let end = now + limit
        while now < end {
            if done(&self) { return true }
            if !step() { return done(&self) }
        }
        return done(&self)
    }
}

func payload(_ count: Int, seed: UInt64) -> [UInt8] {
    var r = SeededRandom(seed: seed, stream: "payload")
    var out = [UInt8]()
    out.reserveCapacity(count)
    while out.count < count {
        let v = r.next()
        withUnsafeBytes(of: v) { out.append(contentsOf: $0.prefix(count - out.count)) }
    }
    return out
}

func sha(_ bytes: [UInt8]) -> [UInt8] { Array(SHA256.hash(data: bytes)) }

let clientA: [UInt8] = [198, 18, 10, 1]
let clientB: [UInt8] = [198, 18, 11, 1]
let serverAddress: [UInt8] = [198, 18, 20, 1]

func clientCore(paths: Int = 1) -> StackCore {
    let p = [StackCorePath(address: clientA, label: "car-rsu1"), StackCorePath(address: clientB, label: "car-rsu2")]
    return StackCore(paths: Array(p.prefix(paths)), mptcp: MPTCPConfiguration(), seed: 7)
}

func serverCore() -> StackCore {
    StackCore(paths: [StackCorePath(address: serverAddress, label: "server-eth0")], mptcp: MPTCPConfiguration(), seed: 11)
}

/// Moves bytes: the client writes `data` and closes; the server reads all and closes.
struct Transfer {
    var data: [UInt8]
    var written = 0
    var received: [UInt8] = []
    var serverID: Int?
    var clientID: Int
    var events: [StackEvent] = []
    var serverEvents: [StackEvent] = []
    /// Subflows that must be established before the client closes.
    var closeAfterSubflows = 1
    var closed = false

    /// Subflows that must be established before the client writes anything.
    var writeAfterSubflows = 0

    mutating func pump(_ w: inout BackToBack<StackCore, StackCore>) {
        let established = w.a.info(clientID)?.subflows.filter { $0.established && $0.active }.count ?? 0
        if written < data.count, established >= writeAfterSubflows, let n = try? w.a.write(clientID, data[written...], now: w.now) {
            written += n
        }
        if written == data.count && !closed
            && (w.a.info(clientID)?.subflows.filter { $0.established && $0.active }.count ?? 0) >= closeAfterSubflows {
            w.a.shutdownWrite(clientID, now: w.now)
            closed = true
        }
        if serverID == nil { serverID = w.b.accept(port: 5201) }
        if let s = serverID {
            while true {
                let chunk = w.b.read(s, maximum: 1 << 20, now: w.now)
                if chunk.isEmpty { break }
                received += chunk
            }
            if w.b.isEndOfStream(s) { w.b.shutdownWrite(s, now: w.now) }
        }
        events += w.a.takeEvents(now: w.now)
        serverEvents += w.b.takeEvents(now: w.now)
    }
}

@Suite struct StackCoreTests {
    @Test func transferWithCleanClose() throws {
        var server = serverCore()
        try server.listen(port: 5201)
        var client = clientCore()
        let id = try client.connect(to: serverAddress, port: 5201, now: .zero)
        var w = BackToBack(client, server)
        var t = Transfer(data: payload(2_000_000, seed: 1), clientID: id)
        let ok = w.run(for: .seconds(30)) { w in
            t.pump(&w)
            return w.a.state(id) == .closed && t.serverID.flatMap { w.b.state($0) } == .closed
        }
        #expect(ok)
        #expect(t.received.count == t.data.count)
        #expect(sha(t.received) == sha(t.data))
        #expect(t.events.contains(.connectionState(connection: id, state: .established, mptcp: true, reason: nil)))
        #expect(t.events.contains { if case .connectionState(_, .closed, true, "DATA_FIN exchanged") = $0 { return true }; return false })
        let serverID = try #require(t.serverID)
        let info = try #require(w.b.info(serverID))
        #expect(info.mptcp)
        #expect(info.subflows.first?.bytesReceived == t.data.count)
        #expect(t.serverEvents.contains { if case .subflowState(_, 0, .established, _, _, _, _) = $0 { return true }; return false })
    }

    @Test func secondPathJoins() throws {
        var server = serverCore()
        try server.listen(port: 5201, label: "dl0")
        var client = clientCore(paths: 2)
        let id = try client.connect(to: serverAddress, port: 5201, now: .zero)
        var w = BackToBack(client, server)
        var t = Transfer(data: payload(3_000_000, seed: 2), clientID: id, closeAfterSubflows: 2)
        let ok = w.run(for: .seconds(30)) { w in
            t.pump(&w)
            return w.a.state(id) == .closed && t.serverID.flatMap { w.b.state($0) } == .closed
        }
        #expect(ok)
        #expect(sha(t.received) == sha(t.data))
        #expect(t.events.contains { if case .joinAttempt(id, let sub, 1, _, _) = $0 { return sub > 0 }; return false })
        #expect(t.events.contains { if case .subflowState(id, let sub, .established, 1, _, _, _) = $0 { return sub > 0 }; return false })
        #expect(t.serverID.flatMap { w.b.label($0) } == "dl0")
        let info = try #require(w.a.info(id))
        #expect(info.subflows.count >= 2)
        #expect(info.subflows.contains { $0.path == "car-rsu2" && $0.established })
    }

    /// Downlink as in `wayside run`: the server opens the connection to the car's
    /// first address; the car, passive and multi-homed, announces its second
    /// address (ADD_ADDR, RFC 8684 §3.4.1) and the server's fullmesh joins it.
    @Test func passiveMultihomedSideAnnouncesItsOtherAddressAndThePeerJoins() throws {
        var car = clientCore(paths: 2)
        try car.listen(port: 5201, label: "dl0")
        var configuration = MPTCPConfiguration()
        configuration.pathManager = "fullmesh"
        let server = StackCore(paths: [StackCorePath(address: serverAddress, label: "server-eth0")], mptcp: configuration, seed: 11)
        var s = server
        let id = try s.connect(to: clientA, port: 5201, now: .zero)
        var w = BackToBack(s, car)
        var t = Transfer(data: payload(1_000_000, seed: 4), clientID: id, closeAfterSubflows: 2)
        let ok = w.run(for: .seconds(30)) { w in
            t.pump(&w)
            return w.a.state(id) == .closed && t.serverID.flatMap { w.b.state($0) } == .closed
        }
        #expect(ok, "the server never had two subflows: the car did not announce its second address")
        #expect(sha(t.received) == sha(t.data))
        let info = try #require(w.a.info(id))
        #expect(info.subflows.contains { $0.established && $0.remote.hasPrefix("198.18.11.1") })
    }

    /// As on a drive: the car's second path is down when the server connects and
    /// comes up once data flows; the passive car announces it then and the server joins it.
    @Test func passiveSideAnnouncesAPathThatComesUpLater() throws {
        var car = clientCore(paths: 2)
        car.setPath(1, up: false, now: .zero)
        try car.listen(port: 5201, label: "dl0")
        var configuration = MPTCPConfiguration()
        configuration.pathManager = "fullmesh"
        var server = StackCore(paths: [StackCorePath(address: serverAddress, label: "server-eth0")], mptcp: configuration, seed: 11)
        let id = try server.connect(to: clientA, port: 5201, now: .zero)
        var w = BackToBack(server, car)
        var t = Transfer(data: payload(1_000_000, seed: 5), clientID: id, closeAfterSubflows: 2)
        var raised = false
        let ok = w.run(for: .seconds(30)) { w in
            // Up once data flows (the connection is established without it).
            if !raised && t.received.count > 0 { w.b.setPath(1, up: true, now: w.now); raised = true }
            t.pump(&w)
            return w.a.state(id) == .closed && t.serverID.flatMap { w.b.state($0) } == .closed
        }
        let carCounters = t.serverID.flatMap { w.b.info($0)?.counters }
        #expect(ok, "the server never joined the car's second path after it came up: car sent \(carCounters?.addAddressesSent ?? -1) ADD_ADDR, server received \(w.a.info(id)?.counters?.addAddressesReceived ?? -1), server joins \(w.a.info(id)?.counters?.joinsEstablished ?? -1)")
        #expect(sha(t.received) == sha(t.data))
        #expect(try #require(w.a.info(id)).subflows.contains { $0.established && $0.remote.hasPrefix("198.18.11.1") })
    }

    /// The join is up before the first byte is written, so the first data may
    /// leave on the join: the initial subflow must then map its first data with
    /// a DSS, not with MP_CAPABLE's data form (which means IDSN + 1, RFC 8684 §3.1).
    @Test func firstDataAfterTheJoinIsMappedRight() throws {
        var server = serverCore()
        try server.listen(port: 5201)
        var client = clientCore(paths: 2)
        let id = try client.connect(to: serverAddress, port: 5201, now: .zero)
        var w = BackToBack(client, server)
        var t = Transfer(data: payload(2_000_000, seed: 7), clientID: id, closeAfterSubflows: 2, writeAfterSubflows: 2)
        let ok = w.run(for: .seconds(30)) { w in
            t.pump(&w)
            return w.a.state(id) == .closed && t.serverID.flatMap { w.b.state($0) } == .closed
        }
        #expect(ok)
        #expect(t.received.count == t.data.count)
        #expect(sha(t.received) == sha(t.data))
        let capableWithData = w.log.filter { entry in
            entry.packet.tcp?.options.contains { if case let .mptcp(.capable(c)) = $0 { return c.dataLevelLength != nil }; return false } ?? false
        }
        for entry in capableWithData {
            // Whatever carries the data form is the connection's first byte.
            #expect(t.data.starts(with: entry.packet.tcp!.payload.prefix(64)))
        }
    }

    @Test(arguments: [0, 1]) func silentLossOfOnePathIsSurvived(cutPath: Int) throws {
        var server = serverCore()
        try server.listen(port: 5201)
        var client = clientCore(paths: 2)
        let id = try client.connect(to: serverAddress, port: 5201, now: .zero)
        var w = BackToBack(client, server)
        var t = Transfer(data: payload(4_000_000, seed: 3), clientID: id)
        var cut = false
        let ok = w.run(for: .seconds(60)) { w in
            t.pump(&w)
            if !cut && t.received.count > 1_000_000 {
                // Path 1 is what make-before-break now uses; path 0 carries the connection's start.
                w.blocked.insert(cutPath == 0 ? clientA : clientB)
                w.a.setPath(cutPath, up: false, now: w.now)
                cut = true
            }
            return w.a.state(id) == .closed && t.serverID.flatMap { w.b.state($0) } == .closed
        }
        #expect(cut)
        #expect(ok)
        #expect(sha(t.received) == sha(t.data))
    }

    @Test func plainClientGetsPassiveFallback() throws {
        var server = serverCore()
        try server.listen(port: 5201)
        let plain = PlainPeer(local: clientA, localPort: 40_000, remote: serverAddress, remotePort: 5201, listen: false, now: .zero)
        var w = BackToBack(plain, server)
        let data = payload(300_000, seed: 4)
        var sent = 0
        var serverID: Int?
        var received: [UInt8] = []
        var echoed = false
        let ok = w.run(for: .seconds(30)) { w in
            _ = w.b.takeEvents(now: w.now)
            if w.a.tcp.state == .established && sent < data.count {
                sent += w.a.tcp.send(data[sent...])
                if sent == data.count { w.a.tcp.close() }
                w.a.emit(w.a.tcp.poll(now: w.now))
            }
            if serverID == nil { serverID = w.b.accept(port: 5201) }
            if let s = serverID {
                received += w.b.read(s, maximum: 1 << 20, now: w.now)
                if w.b.isEndOfStream(s) && !echoed {
                    _ = try? w.b.write(s, Array("done".utf8), now: w.now)
                    w.b.shutdownWrite(s, now: w.now)
                    echoed = true
                }
            }
            return echoed && w.a.received == Array("done".utf8) && serverID.flatMap { w.b.state($0) } == .closed
        }
        #expect(ok)
        #expect(sha(received) == sha(data))
        let acceptedID = try #require(serverID)
        let info = try #require(w.b.info(acceptedID))
        #expect(!info.mptcp)
    }

    @Test func plainServerGivesActiveFallbackBothWays() throws {
        var client = clientCore()
        let id = try client.connect(to: serverAddress, port: 5201, now: .zero)
        let plain = PlainPeer(local: serverAddress, localPort: 5201, remote: clientA, remotePort: 32_768, listen: true, now: .zero)
        var w = BackToBack(client, plain)
        let up = payload(200_000, seed: 5)
        let down = payload(300_000, seed: 6)
        var written = 0, sentDown = 0
        var got: [UInt8] = []
        var eof = false
        let ok = w.run(for: .seconds(30)) { w in
            _ = w.a.takeEvents(now: w.now)
            if w.a.state(id) == .established && written < up.count {
                written += (try? w.a.write(id, up[written...], now: w.now)) ?? 0
                if written == up.count { w.a.shutdownWrite(id, now: w.now) }
            }
            if w.b.tcp.state.isSynchronized && sentDown < down.count {
                sentDown += w.b.tcp.send(down[sentDown...])
                if sentDown == down.count { w.b.tcp.close() }
                w.b.emit(w.b.tcp.poll(now: w.now))
            }
            while true {
                let chunk = w.a.read(id, maximum: 1 << 20, now: w.now)
                if chunk.isEmpty { break }
                got += chunk
            }
            eof = w.a.isEndOfStream(id)
            return eof && w.b.received.count == up.count && w.a.state(id) == .closed
        }
        #expect(ok, "\(w.a.info(id)!) eof \(eof) got \(got.count) peer got \(w.b.received.count) peer \(w.b.tcp.state)")
        #expect(sha(w.b.received) == sha(up))
        #expect(sha(got) == sha(down))
        let info = try #require(w.a.info(id))
        #expect(!info.mptcp)
        #expect(info.fallbackReason == FallbackReason.noCapableOnSYNACK.rawValue)
    }

    @Test func segmentsForNobodyGetReset() throws {
        var server = serverCore()
        try server.listen(port: 5201)
        let stray = PlainPeer(local: clientA, localPort: 40_001, remote: serverAddress, remotePort: 6000, listen: false, now: .zero)
        var w = BackToBack(stray, server)
        _ = w.run(for: .seconds(1)) { w in w.a.tcp.state == .closed }
        #expect(w.a.tcp.closeReason == .refused)
        #expect(w.b.resetsForNobody >= 1)
        // An ACK for a connection that never existed (RFC 9293 §3.10.7.1): RST with seq = its ack.
        let ack = TCPSegment(sourcePort: 40_002, destinationPort: 5201, sequenceNumber: SequenceNumber(1000),
                             acknowledgmentNumber: SequenceNumber(777), flags: .ack, window: 100)
        let h = IPv4Header(source: IPv4Address(bytes: clientA)!, destination: IPv4Address(bytes: serverAddress)!,
                           proto: IPProtocol.tcp, payloadLength: ack.encodedLength)
        w.b.receive(packet: IPPacket(header: .v4(h), tcp: ack).bytes()[...], now: w.now)
        let out = try #require(w.b.takeOutgoing().last.flatMap { try? IPPacket.parse($0) }?.tcp)
        #expect(out.flags == .rst)
        #expect(out.sequenceNumber == SequenceNumber(777))
        // A packet with a bad checksum is dropped, not answered.
        var bad = IPPacket(header: .v4(h), tcp: ack).bytes()
        bad[bad.count - 1] ^= 0xFF
        bad[h.headerLength + 16] ^= 0x01
        w.b.receive(packet: bad[...], now: w.now)
        #expect(w.b.takeOutgoing().isEmpty)
        #expect(w.b.packetsBadChecksum == 1)
        // Garbage never traps.
        w.b.receive(packet: [0x45, 0, 0, 3][...], now: w.now)
        #expect(w.b.packetsMalformed == 1)
    }
}
