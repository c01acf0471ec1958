import Testing
import Foundation
import Convert
import Stack
@testable import Converter

/// Root, namespaces: the Swift MPTCP stack as the converter's carrier. The
/// car's Swift stack (TUN device, its own address) opens an MPTCP connection to
/// `wayside convert` (kernel MPTCP listener) in the server's namespace, sends the
/// Convert message with an HTTP request as 0-RTT data, and reads the answer.
///
/// ```
///   car: Swift stack 198.18.<n+1>.1 (TUN)  v<id> 198.18.<n>.1 ──veth── w<id> 198.18.<n>.2: convert :7000, http.server :8080
/// ```
@Suite(.enabled(if: getuid() == 0, "needs root to create network namespaces"))
struct StackCarrierRootTests {
    typealias T = ConverterRootTests

    @Test func anHTTPRequestRidesTheSwiftStackThroughTheConverter() throws {
        let t = try T.Testbed()
        defer { t.tearDown() }
        let stackNet = t.net + 1
        try T.sh(["ip", "netns", "add", t.car])
        try T.sh(["ip", "netns", "add", t.srv])
        try T.sh(["ip", "link", "add", "v\(t.id)", "netns", t.car, "type", "veth", "peer", "name", "w\(t.id)", "netns", t.srv])
        try T.sh(["ip", "-n", t.car, "addr", "add", "198.18.\(t.net).1/24", "dev", "v\(t.id)"])
        try T.sh(["ip", "-n", t.srv, "addr", "add", "\(t.server)/24", "dev", "w\(t.id)"])
        for (ns, dev) in [(t.car, "v\(t.id)"), (t.srv, "w\(t.id)")] {
            try T.sh(["ip", "-n", ns, "link", "set", "lo", "up"])
            try T.sh(["ip", "-n", ns, "link", "set", dev, "up"])
        }
        // The car's kernel forwards between the TUN device and the veth (ARCHITECTURE decision 1).
        for key in ["net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"] {
            try T.sh(["ip", "netns", "exec", t.car, "sysctl", "-qw", key])
        }
        try T.sh(["ip", "-n", t.srv, "route", "add", "198.18.\(stackNet).1/32", "via", "198.18.\(t.net).1"])
        for (ns, dev) in [(t.car, "v\(t.id)"), (t.srv, "w\(t.id)")] {
            for _ in 0..<250 {
                let show = try T.sh(["ip", "-n", ns, "link", "show", dev]).output
                if show.contains("state UP") && !show.contains("qdisc noop") { break }
                usleep(20_000)
            }
        }
        let original = Data((0..<500_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
        try original.write(to: t.dir.appendingPathComponent("www/file.bin"))
        _ = try t.spawn(t.srv, ["python3", "-m", "http.server", "8080", "--bind", t.server, "--directory", t.dir.appendingPathComponent("www").path])
        _ = try t.spawn(t.srv, [T.wayside.path, "convert", "--listen", "\(t.server):7000"], log: t.converterLog)
        try t.waitListening(t.srv, port: 8080)
        try t.waitListening(t.srv, port: 7000)

        let stack = SwiftStack(configuration: StackConfiguration(
            tunName: "wsc\(t.id.prefix(8))", paths: [StackPath(address: [198, 18, UInt8(stackNet), 1], interface: "v\(t.id)")],
            seed: 9, nodeName: "car"))
        try stack.start(namespace: t.car)
        defer { stack.stop(grace: .seconds(1)) }
        try T.sh(["ip", "-n", t.car, "route", "add", "198.18.\(stackNet).1/32", "dev", stack.tunName])
        let dialer = StackCarrierDialer(stack: stack)
        let converter = IPv4Endpoint("\(t.server):7000")!

        // 0-RTT: the request rides with the Convert message.
        let request = Array("GET /file.bin HTTP/1.0\r\nHost: \(t.server)\r\n\r\n".utf8)
        let opened = openCarrier(dialer, to: converter, for: IPv4Endpoint("\(t.server):8080")!, early: request, timeoutMilliseconds: 10_000)
        guard case let .success((carrier, first)) = opened else { Issue.record("\(opened)"); return }
        var response = first
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = try buffer.withUnsafeMutableBytes { try carrier.read(into: $0) }
            if n == 0 { break }
            response += buffer[..<n]
        }
        carrier.close()
        let separator = Array("\r\n\r\n".utf8)
        let headerEnd = (0..<max(0, response.count - 3)).first { Array(response[$0..<$0 + 4]) == separator }
        let head = String(decoding: response[..<(headerEnd ?? 0)], as: UTF8.self)
        #expect(head.hasPrefix("HTTP/1.0 200"), "\(head)")
        #expect(Data(response[((headerEnd ?? 0) + 4)...]) == original)

        // A refused destination comes back as the Error TLV Connection Reset.
        let refused = openCarrier(dialer, to: converter, for: IPv4Endpoint("\(t.server):8081")!, early: [], timeoutMilliseconds: 10_000)
        guard case let .failure(f) = refused else { Issue.record("8081 was not refused"); return }
        #expect(f.code == .connectionReset)

        let (status, _, log, _) = t.stopSidesConverterOnly()
        #expect(status == 0)
        #expect(log.contains("accepted 2, relayed 1, refused by destination 1,"), "\(log)")
        #expect(try T.counter(t, "MPTcpExtMPCapableACKRX") >= 1)
    }
}

extension ConverterRootTests.Testbed {
    /// SIGTERM to the converter only (no client side in this testbed).
    func stopSidesConverterOnly() -> (Int32, Int32, String, String) {
        guard let p = processes.first(where: { $0.arguments?.contains("convert") == true }) else { return (-1, -1, "", "") }
        kill(p.processIdentifier, SIGTERM)
        p.waitUntilExit()
        return (p.terminationStatus, 0, (try? String(contentsOf: converterLog, encoding: .utf8)) ?? "", "")
    }
}
