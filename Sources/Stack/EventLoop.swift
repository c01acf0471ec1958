import Analysis
import CStack
import Core
import Foundation
import Wire
#if canImport(Glibc)
import Glibc
#endif

/// The stack's loop, on its own thread inside the node's namespace: epoll
/// over the TUN device, a timerfd armed at the core's next deadline
/// (absolute CLOCK_MONOTONIC), the API's eventfd and an rtnetlink socket.
/// It reads packets in batches, drives the core with the run's clock, writes
/// what the core produced, and sleeps until the next deadline: no busy loop.
struct EventLoop {
    static let tunToken: UInt64 = 1
    static let timerToken: UInt64 = 2
    static let wakeToken: UInt64 = 3
    static let routeToken: UInt64 = 4
    /// Packets read per wake-up before the core's output is written.
    static let batch = 256

    unowned let stack: SwiftStack
    let tun: Int32
    let epoll: Int32
    let timer: Int32
    let routes: Int32
    var armed = Instant.distantFuture
    let buffer: UnsafeMutablePointer<UInt8>
    static let capacity = 65_536
    var rtEvents = [wst_rt_event](repeating: wst_rt_event(), count: 64)
    /// Interface index → path indices leaving by it, and each path's interface state.
    var interfaceIndex: [String: Int32] = [:]
    var linkUp: [String: Bool] = [:]
    var carrier: [String: Bool] = [:]
    var addresses: [String: Set<UInt32>] = [:]

    init(stack: SwiftStack) throws {
        self.stack = stack
        var name = [CChar](repeating: 0, count: 16)
        let fd = wst_tun_open(stack.configuration.tunName, &name)
        guard fd >= 0 else { throw StackError.system("open TUN device \(stack.configuration.tunName)", fd) }
        tun = fd
        let actual = String(cString: name)
        let index = wst_link_up(actual, Int32(stack.configuration.mtu))
        guard index > 0 else { Glibc.close(fd); throw StackError.system("bring \(actual) up", index) }
        epoll = wst_epoll_create()
        timer = wst_timer_create()
        routes = wst_rtnl_open()
        buffer = .allocate(capacity: Self.capacity)
        guard epoll >= 0, timer >= 0, routes >= 0 else {
            let code = epoll < 0 ? epoll : timer < 0 ? timer : routes
            Self.closeAll([fd, epoll, timer, routes])
            buffer.deallocate()
            throw StackError.system("epoll, timerfd or rtnetlink socket", code)
        }
        var rc = wst_epoll_add(epoll, tun, Self.tunToken)
        if rc == 0 { rc = wst_epoll_add(epoll, timer, Self.timerToken) }
        if rc == 0 { rc = wst_epoll_add(epoll, stack.wakeFD, Self.wakeToken) }
        if rc == 0 { rc = wst_epoll_add(epoll, routes, Self.routeToken) }
        if rc == 0 { rc = wst_rtnl_dump_links(routes) }
        guard rc == 0 else {
            Self.closeAll([fd, epoll, timer, routes])
            buffer.deallocate()
            throw StackError.system("epoll", rc)
        }
        stack.lock.lock()
        stack.tunName = actual
        stack.tunIndex = index
        stack.lock.unlock()
    }

    static func closeAll(_ fds: [Int32]) { for f in fds where f >= 0 { _ = Glibc.close(f) } }

    func close() {
        Self.closeAll([tun, epoll, timer, routes])
        buffer.deallocate()
    }

    mutating func run() {
        var tokens = [UInt64](repeating: 0, count: 16)
        while true {
            let stop = turn()
            if stop { return }
            let n = tokens.withUnsafeMutableBufferPointer { wst_epoll_wait(epoll, $0.baseAddress, 16, -1) }
            guard n >= 0 else { return }
            stack.wakeups[Int(min(4, max(0, tokens[0])))] += 1
            for token in tokens[0 ..< Int(n)] {
                switch token {
                case Self.timerToken: wst_drain(timer); armed = .distantFuture
                case Self.wakeToken: wst_drain(stack.wakeFD)
                case Self.routeToken: readRoutes()
                default: break // the TUN device is read in every turn
                }
            }
        }
    }

    /// One turn: packets in, timers, waiting callers, packets out, the timer re-armed.
    /// Returns true when the stack is stopping.
    mutating func turn() -> Bool {
        var resumes: [() -> Void] = []
        var stop = false
        var more = true
        while more {
            // Read a batch outside the lock, then hand it to the core.
            var packets: [[UInt8]] = []
            while packets.count < Self.batch {
                let n = wst_read(tun, buffer, Int32(Self.capacity))
                if n <= 0 { break }
                packets.append(Array(UnsafeBufferPointer(start: buffer, count: Int(n))))
            }
            more = packets.count == Self.batch
            stack.lock.lock()
            let now = stack.clock.now()
            stack.loopIterations += 1
            stack.packetsRead += packets.count
            for p in packets {
                stack.pcap?.append(PcapRecord(timestamp: UInt64(max(0, now.nanoseconds)), data: p))
                stack.core.receive(packet: p[...], now: now)
            }
            stack.core.advance(now: now)
            resumes += stack.serviceWaiters(now: now)
            let events = stack.core.takeEvents(now: now)
            stack.log(events, at: now)
            let out = stack.core.takeOutgoing()
            stop = stack.stopping
            let next = stack.core.nextDeadline
            stack.lock.unlock()
            write(out, now: now)
            if !more && next != armed {
                let epoch = stack.clock.epoch
                _ = wst_timer_arm(timer, next == .distantFuture ? 0 : max(1, next.nanoseconds &+ epoch))
                armed = next
            }
        }
        for r in resumes { r() }
        return stop
    }

    mutating func write(_ packets: [[UInt8]], now: Instant) {
        guard !packets.isEmpty else { return }
        var written = 0, errors = 0
        for p in packets {
            let rc = p.withUnsafeBufferPointer { wst_write(tun, $0.baseAddress, Int32($0.count)) }
            if rc == 0 { written += 1 } else { errors += 1 }
        }
        stack.lock.lock()
        if stack.pcap != nil {
            for p in packets { stack.pcap!.append(PcapRecord(timestamp: UInt64(max(0, now.nanoseconds)), data: p)) }
        }
        stack.packetsWritten += written
        stack.writeErrors += errors
        stack.lock.unlock()
    }

    /// Link and address events of the paths' interfaces move paths up and down.
    mutating func readRoutes() {
        let n = rtEvents.withUnsafeMutableBufferPointer { wst_rtnl_read(routes, $0.baseAddress, 64) }
        guard n > 0 else { return }
        let now = stack.clock.now()
        let paths = stack.configuration.paths
        var changed: Set<String> = []
        for e in rtEvents[0 ..< Int(n)] {
            var e = e
            let name = withUnsafeBytes(of: &e.name) { raw in String(cString: raw.bindMemory(to: CChar.self).baseAddress!) }
            switch e.kind {
            case 1, 2:
                guard paths.contains(where: { $0.interface == name }) else { continue }
                interfaceIndex[name] = e.ifindex
                let up = e.kind == 1 && e.up != 0
                let hasCarrier = e.kind == 1 && e.carrier != 0
                if let was = linkUp[name], was != up { stack.logInterface(name, up ? .linkUp : .linkDown, address: nil, at: now) }
                if let was = carrier[name], was != hasCarrier {
                    stack.logInterface(name, hasCarrier ? .carrierUp : .carrierDown, address: nil, at: now)
                }
                if linkUp[name] != up || carrier[name] != hasCarrier { changed.insert(name) }
                linkUp[name] = up
                carrier[name] = hasCarrier
            case 3, 4:
                guard let name = interfaceIndex.first(where: { $0.value == e.ifindex })?.key else { continue }
                let address = InetText.ipv4(e.address)
                var set = addresses[name] ?? []
                if e.kind == 3 { set.insert(e.address) } else { set.remove(e.address) }
                addresses[name] = set
                stack.logInterface(name, e.kind == 3 ? .addressAdded : .addressRemoved, address: address, at: now)
                changed.insert(name)
            default: break
            }
        }
        guard !changed.isEmpty else { return }
        stack.lock.lock()
        for (i, p) in paths.enumerated() where changed.contains(p.interface) {
            // A path is usable while its interface is up with carrier and, once
            // an address event was seen for it, still has an address.
            let usable = (linkUp[p.interface] ?? true) && (carrier[p.interface] ?? true)
                && (addresses[p.interface].map { !$0.isEmpty } ?? true)
            stack.core.setPath(i, up: usable, now: now)
        }
        stack.lock.unlock()
    }
}

enum InetText {
    /// Dotted quad of an address in network byte order.
    static func ipv4(_ networkOrder: UInt32) -> String {
        withUnsafeBytes(of: networkOrder) { $0.map(String.init).joined(separator: ".") }
    }
}
