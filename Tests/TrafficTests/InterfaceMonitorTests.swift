import Testing
import Foundation
import Core
import Analysis
@testable import Traffic

/// rtnetlink messages built by hand (netlink(7), rtnetlink(7) layouts, little-endian).
enum RouteBytes {
    static func le16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }
    static func le32(_ v: UInt32) -> [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: v >> (8 * UInt32($0))) } }
    static func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        let bytes = le16(UInt16(4 + value.count)) + le16(type) + value
        return bytes + [UInt8](repeating: 0, count: (4 - bytes.count % 4) % 4)
    }
    static func message(_ type: UInt16, _ body: [UInt8]) -> [UInt8] {
        le32(UInt32(16 + body.count)) + le16(type) + le16(0) + le32(0) + le32(0) + body
    }
    static func link(_ type: UInt16 = 16, index: UInt32, flags: UInt32, name: String) -> [UInt8] {
        message(type, [0, 0] + le16(1) + le32(index) + le32(flags) + le32(0) + attribute(3, Array(name.utf8) + [0]))
    }
    static func address(_ type: UInt16 = 20, index: UInt32, _ octets: [UInt8], prefix: UInt8) -> [UInt8] {
        message(type, [UInt8(AF_INET), prefix, 0, 0] + le32(index) + attribute(1, octets) + attribute(2, octets))
    }
}

@Suite struct RouteMessageParserTests {
    @Test func linksAndAddressesAreRead() {
        let bytes = RouteBytes.link(index: 7, flags: 0x1 | 0x10000, name: "eth0")
            + RouteBytes.address(index: 7, [198, 18, 1, 2], prefix: 30)
            + RouteBytes.link(17, index: 7, flags: 0, name: "eth0")
            + RouteBytes.message(3, RouteBytes.le32(0))
        let parsed = RouteMessageParser.parse(bytes)
        #expect(parsed.messages == [
            .link(index: 7, name: "eth0", up: true, carrier: true),
            .address(index: 7, address: "198.18.1.2/30", added: true),
            .linkRemoved(index: 7, name: "eth0"),
        ])
        #expect(parsed.done)
    }

    @Test func malformedInputNeverTraps() {
        let good = RouteBytes.link(index: 2, flags: 1, name: "veth-a")
        // Every truncation, a length pointing past the end, and random bytes.
        for n in 0..<good.count { _ = RouteMessageParser.parse(Array(good.prefix(n))) }
        var lying = good
        lying[0] = 0xff
        #expect(RouteMessageParser.parse(lying).messages.isEmpty)
        var badAttribute = good
        badAttribute[32] = 0xfe // the name attribute's length runs past the message
        #expect(RouteMessageParser.parse(badAttribute).messages == [.link(index: 2, name: nil, up: true, carrier: false)])
        var random = SeededRandom(seed: 11, stream: "rtnetlink")
        for _ in 0..<2000 {
            let bytes = (0..<Int(random.next() % 96)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
            _ = RouteMessageParser.parse(bytes)
            _ = RouteMessageParser.parse(good + bytes)
        }
    }

    @Test func trackerLogsChangesNotTheInitialState() {
        var t = InterfaceTracker()
        #expect(t.apply(.link(index: 3, name: "eth1", up: true, carrier: true)).isEmpty)
        #expect(t.apply(.address(index: 3, address: "198.18.2.2/30", added: true)).isEmpty)
        t.seeding = false
        // The same state again is no change; carrier going is one.
        #expect(t.apply(.link(index: 3, name: "eth1", up: true, carrier: true)).isEmpty)
        #expect(t.apply(.link(index: 3, name: nil, up: true, carrier: false))
                == [.interface(name: "eth1", change: .carrierDown, address: nil)])
        #expect(t.apply(.link(index: 3, name: nil, up: false, carrier: false))
                == [.interface(name: "eth1", change: .linkDown, address: nil)])
        #expect(t.apply(.link(index: 3, name: nil, up: true, carrier: true))
                == [.interface(name: "eth1", change: .linkUp, address: nil), .interface(name: "eth1", change: .carrierUp, address: nil)])
        #expect(t.apply(.address(index: 3, address: "198.18.2.2/30", added: true)).isEmpty)
        #expect(t.apply(.address(index: 3, address: "198.18.2.2/30", added: false))
                == [.interface(name: "eth1", change: .addressRemoved, address: "198.18.2.2/30")])
        // A new interface that comes up with carrier: both are changes.
        #expect(t.apply(.link(index: 9, name: "dummy0", up: true, carrier: true))
                == [.interface(name: "dummy0", change: .linkUp, address: nil), .interface(name: "dummy0", change: .carrierUp, address: nil)])
        #expect(t.apply(.linkRemoved(index: 9, name: "dummy0"))
                == [.interface(name: "dummy0", change: .carrierDown, address: nil), .interface(name: "dummy0", change: .linkDown, address: nil)])
    }
}
