import CEmulator
import CNetlink
import Core
import Foundation
import LinkModel
import Netlink

/// The netem backend: the kernel carries each emulated link. In the emulator
/// namespace a bridge joins the link's two emulator-side ends, and each end's
/// egress (towards the node it faces) has a TBF root qdisc (the rate) with a
/// netem child (delay, jitter, loss, queue limit): `bSide` carries a→b,
/// `aSide` b→a. A timeline step changes both qdiscs in place (RTM_NEWQDISC
/// with NLM_F_REPLACE, never deleted and re-added); a `silent` coverage loss
/// is netem loss of 100 %, a `carrier` loss also sets the ends down.
///
/// Differences from the userspace backend: frames already inside netem when
/// coverage goes are still delivered, and loss draws come from the kernel.
public final class NetemEmulator: @unchecked Sendable {
    public let links: [EmulatedLink]
    public let timeline: CoverageTimeline

    private let lock = NSLock()
    private var applied: [AppliedChange] = []
    private var thread: Thread?
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    public private(set) var origin: Instant = .zero

    /// "Unlimited" as a TBF rate: above what a veth pair carries here.
    static let unlimited = Bitrate(bitsPerSecond: 10_000_000_000)
    static let frameBytes = 1514

    public init(links: [EmulatedLink], timeline: CoverageTimeline = CoverageTimeline(events: [], duration: .zero)) {
        self.links = links; self.timeline = timeline
    }

    public var appliedChanges: [AppliedChange] { lock.lock(); defer { lock.unlock() }; return applied }

    /// Builds the bridges and qdiscs and starts replaying the timeline from
    /// `origin` (default: once the qdiscs are in place).
    public func start(origin: Instant? = nil) throws {
        guard thread == nil else { throw EmulatorError("the emulator is already running") }
        guard let namespace = links.first?.emulatorNamespace else { throw EmulatorError("no emulated links") }
        let nsFD = open(NetworkNamespace.path(namespace), O_RDONLY | O_CLOEXEC)
        guard nsFD >= 0 else { throw EmulatorError("cannot open emulator namespace \(namespace): \(String(cString: strerror(errno)))") }
        let ready = DispatchSemaphore(value: 0)
        let setupError = Box<Error?>(nil)
        let t = Thread { [self] in
            // Like the userspace loop, this thread lives in the emulator namespace.
            let rc = ws_enter_netns(nsFD)
            close(nsFD)
            var driver: NetemDriver?
            if rc != 0 {
                setupError.set(EmulatorError.system("enter emulator namespace \(namespace)", rc))
            } else {
                do {
                    driver = try NetemDriver(links: links)
                    self.origin = origin ?? UserspaceEmulator.now()
                } catch { setupError.set(error) }
            }
            _ = ws_precise_thread(10)
            ready.signal()
            if let driver { replay(driver) }
            finished.signal()
        }
        t.name = "wayside-netem"
        t.start()
        ready.wait()
        if let e = setupError.value { finished.wait(); throw e }
        thread = t
    }

    public func stop() {
        guard thread != nil else { return }
        lock.lock(); stopping = true; lock.unlock()
        finished.wait()
        thread = nil
    }

    deinit { stop() }

    private var shouldStop: Bool { lock.lock(); defer { lock.unlock() }; return stopping }

    private func replay(_ driver: NetemDriver) {
        var schedules: [(link: Int, direction: LinkDirection, schedule: TimelineSchedule)] = []
        var parameters: [[LinkParameters]] = links.map { [$0.aToB, $0.bToA] }
        var covered = Array(repeating: [true, true], count: links.count)
        for (k, l) in links.enumerated() {
            for d in [LinkDirection.aToB, .bToA] {
                schedules.append((k, d, TimelineSchedule(timeline: timeline, link: l.name, direction: d, origin: origin)))
            }
        }
        while !shouldStop {
            let next = schedules.map(\.schedule.nextTime).min() ?? .distantFuture
            let now = UserspaceEmulator.now()
            if next > now {
                // Wake at the step, or every 50 ms to notice `stop()`.
                ws_sleep_until(min(next, now + .milliseconds(50)).nanoseconds)
                continue
            }
            var changes: [(Int, LinkDirection, Instant, LinkStep)] = []
            for i in schedules.indices {
                let (k, d) = (schedules[i].link, schedules[i].direction)
                let side = d == .bToA ? 1 : 0
                while schedules[i].schedule.nextTime <= now,
                      let (at, step) = schedules[i].schedule.popNext(current: parameters[k][side]) {
                    switch step {
                    case .set(let p): parameters[k][side] = parameters[k][side].updated(by: p)
                    case .coverage(let up, _): covered[k][side] = up
                    }
                    changes.append((k, d, at, step))
                }
            }
            let touched = Set(changes.map(\.0))
            for k in touched.sorted() {
                let l = links[k]
                // Carrier follows coverage lost as `carrier` in either direction.
                let carrierLost = changes.contains { $0.0 == k && { if case .coverage(false, .carrier) = $0.3 { return true }; return false }($0) }
                let carrierBack = changes.contains { $0.0 == k && { if case .coverage(true, _) = $0.3 { return true }; return false }($0) } && covered[k].allSatisfy { $0 }
                do {
                    try driver.configure(l.bSide, parameters[k][0], covered: covered[k][0])
                    try driver.configure(l.aSide, parameters[k][1], covered: covered[k][1])
                    if carrierLost { try driver.setCarrier(l, false) }
                    if carrierBack { try driver.setCarrier(l, true) }
                } catch {
                    FileHandle.standardError.write(Data("wayside: netem: \(error)\n".utf8))
                }
            }
            let appliedAt = UserspaceEmulator.now()
            lock.lock()
            applied += changes.map { AppliedChange(link: links[$0.0].name, direction: $0.1, step: $0.3, scheduled: $0.2, applied: appliedAt) }
            lock.unlock()
        }
    }
}

/// The netlink side of the netem backend, on a socket of the emulator namespace.
final class NetemDriver {
    let socket: OpaquePointer
    let routes: RouteSocket
    static let bridgeIndexBase: Int32 = 4000

    init(links: [EmulatedLink]) throws {
        guard let s = nl_socket_alloc() else { throw EmulatorError("nl_socket_alloc failed") }
        socket = s
        guard nl_connect(s, NETLINK_ROUTE) == 0 else { nl_socket_free(s); throw EmulatorError("cannot open a route netlink socket") }
        routes = try RouteSocket(namespace: links[0].emulatorNamespace)
        for (k, l) in links.enumerated() {
            let bridgeIndex = Self.bridgeIndexBase + Int32(k)
            try check(addBridge(name: "wsbr\(k)", index: bridgeIndex), "create bridge for \(l.name)")
            for end in [l.aSide, l.bSide] {
                try check(rtnl_link_enslave_ifindex(s, bridgeIndex, end.index), "attach \(end.name) to bridge")
            }
            try addQdiscs(l.bSide, l.aToB)
            try addQdiscs(l.aSide, l.bToA)
        }
    }

    deinit { nl_socket_free(socket) }

    func check(_ rc: Int32, _ what: String) throws {
        guard rc >= 0 else { throw EmulatorError("\(what): \(String(cString: nl_geterror(rc)))") }
    }

    func addBridge(name: String, index: Int32) -> Int32 {
        guard let link = rtnl_link_bridge_alloc() else { return -NLE_NOMEM }
        defer { rtnl_link_put(link) }
        rtnl_link_set_name(link, name)
        rtnl_link_set_ifindex(link, index)
        rtnl_link_set_flags(link, UInt32(IFF_UP))
        return rtnl_link_add(socket, link, NLM_F_CREATE | NLM_F_EXCL)
    }

    static func handle(_ major: UInt32, _ minor: UInt32) -> UInt32 { major << 16 | minor }

    /// TBF root 1: with netem 10: under its class 1:1.
    func qdiscs(_ end: InterfaceRef, _ p: LinkParameters, covered: Bool) -> (tbf: OpaquePointer, netem: OpaquePointer) {
        let tbf = rtnl_qdisc_alloc()!
        rtnl_tc_set_ifindex(tbf, end.index)
        rtnl_tc_set_parent(tbf, 0xFFFF_FFFF)  // TC_H_ROOT
        rtnl_tc_set_handle(tbf, Self.handle(1, 0))
        _ = rtnl_tc_set_kind(tbf, "tbf")
        let rate = p.rate ?? NetemEmulator.unlimited
        let bytesPerSecond = Int32(clamping: rate.bitsPerSecond / 8)
        // A bucket of two frames, or 4 ms at the rate: enough for the timer tick.
        let bucket = max(2 * NetemEmulator.frameBytes, Int(bytesPerSecond) / 250)
        let limitBytes = p.queueBytes ?? (p.queuePackets ?? 1000) * NetemEmulator.frameBytes
        rtnl_qdisc_tbf_set_rate(tbf, bytesPerSecond, Int32(clamping: bucket), 0)
        rtnl_qdisc_tbf_set_limit(tbf, Int32(clamping: limitBytes))

        let netem = rtnl_qdisc_alloc()!
        rtnl_tc_set_ifindex(netem, end.index)
        rtnl_tc_set_parent(netem, Self.handle(1, 1))
        rtnl_tc_set_handle(netem, Self.handle(10, 0))
        _ = rtnl_tc_set_kind(netem, "netem")
        rtnl_netem_set_delay(netem, Int32(clamping: (p.delay ?? .zero).nanoseconds / 1000))
        rtnl_netem_set_jitter(netem, Int32(clamping: (p.jitter ?? .zero).nanoseconds / 1000))
        // netem's loss is a fraction of 2^32 - 1.
        let loss = covered ? (p.loss?.value ?? 0) : 1
        rtnl_netem_set_loss(netem, Int32(bitPattern: UInt32((loss * Double(UInt32.max)).rounded())))
        rtnl_netem_set_limit(netem, Int32(clamping: p.queuePackets ?? 1000))
        return (tbf, netem)
    }

    func addQdiscs(_ end: InterfaceRef, _ p: LinkParameters) throws {
        let (tbf, netem) = qdiscs(end, p, covered: true)
        defer { rtnl_qdisc_put(tbf); rtnl_qdisc_put(netem) }
        try check(rtnl_qdisc_add(socket, tbf, NLM_F_CREATE | NLM_F_EXCL), "add tbf on \(end.name)")
        do {
            try check(rtnl_qdisc_add(socket, netem, NLM_F_CREATE | NLM_F_EXCL), "add netem on \(end.name)")
        } catch {
            throw EmulatorError("\(error) (is sch_netem available? modprobe sch_netem)")
        }
    }

    /// Changes both qdiscs of `end` in place.
    func configure(_ end: InterfaceRef, _ p: LinkParameters, covered: Bool) throws {
        let (tbf, netem) = qdiscs(end, p, covered: covered)
        defer { rtnl_qdisc_put(tbf); rtnl_qdisc_put(netem) }
        try check(rtnl_qdisc_add(socket, tbf, NLM_F_REPLACE), "change tbf on \(end.name)")
        try check(rtnl_qdisc_add(socket, netem, NLM_F_REPLACE), "change netem on \(end.name)")
    }

    func setCarrier(_ link: EmulatedLink, _ up: Bool) throws {
        for end in [link.aSide, link.bSide] { try routes.setLink(index: end.index, name: end.name, up: up) }
    }
}
