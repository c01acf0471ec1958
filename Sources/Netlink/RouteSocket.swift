import CNetlink

/// IFF_LOWER_UP from <linux/if.h>, which Swift does not import as a constant.
let iffLowerUp: UInt32 = 1 << 16
#if canImport(Glibc)
import Glibc
#endif

/// The state of one interface as the kernel reports it.
public struct LinkState: Hashable, Sendable {
    public var name: String
    public var index: Int32
    /// Administratively up (IFF_UP).
    public var up: Bool
    /// The driver reports carrier (IFF_LOWER_UP).
    public var carrier: Bool
    /// RFC 2863 operational state: `up`, `down`, `lowerlayerdown`, …
    public var operationalState: String

    /// Up and able to carry traffic: what a caller must wait for before sending.
    public var isRunning: Bool { up && carrier && operationalState == "up" }
}

/// One end of a veth pair to create.
public struct VethEnd: Sendable {
    public var name: String
    /// Namespace the end is created in (a descriptor of its nsfs file).
    public var namespaceFD: Int32
    /// Interface index to ask for (0: the kernel picks). Indices are per
    /// namespace, so a fresh namespace can be given a known numbering and
    /// nothing needs to be looked up afterwards.
    public var index: Int32
    /// Create administratively up (honoured for the first end only; see `createVeth`).
    public var up: Bool
    public init(name: String, namespaceFD: Int32, index: Int32 = 0, up: Bool = true) {
        self.name = name; self.namespaceFD = namespaceFD; self.index = index; self.up = up
    }
}

/// A route to add.
public struct RouteSpec: Hashable, Sendable, CustomStringConvertible {
    public enum Kind: String, Hashable, Sendable { case unicast, unreachable }
    public var destination: InetPrefix
    public var kind: Kind
    /// Gateway on the outgoing link; nil for a directly connected route.
    public var gateway: InetAddress?
    /// Outgoing interface index; required for unicast routes.
    public var interfaceIndex: Int32?
    /// Preferred source address.
    public var source: InetAddress?
    /// 254 is the main table.
    public var table: UInt32

    public init(destination: InetPrefix, kind: Kind = .unicast, gateway: InetAddress? = nil,
                interfaceIndex: Int32? = nil, source: InetAddress? = nil, table: UInt32 = 254) {
        self.destination = destination; self.kind = kind; self.gateway = gateway
        self.interfaceIndex = interfaceIndex; self.source = source; self.table = table
    }

    public var description: String {
        var s = (kind == .unreachable ? "unreachable " : "") + (destination.length == 0 ? "default" : destination.description)
        if let gateway { s += " via \(gateway)" }
        if let interfaceIndex { s += " ifindex \(interfaceIndex)" }
        if let source { s += " src \(source)" }
        if table != 254 { s += " table \(table)" }
        return s
    }
}

/// An rtnetlink socket (libnl-route-3) bound to the namespace it was opened in.
/// Not for use from two threads at once.
public final class RouteSocket {
    let sock: OpaquePointer
    /// The namespace's name, for error messages.
    public let namespace: String

    /// Opens a socket in the calling thread's namespace. To open one in another
    /// namespace use `NetworkNamespace.routeSocket()`.
    public init(namespace: String = "host") throws {
        guard let s = nl_socket_alloc() else { throw NetlinkError.system("allocate netlink socket in", namespace, errno: ENOMEM) }
        let rc = nl_connect(s, NETLINK_ROUTE)
        if rc < 0 {
            nl_socket_free(s)
            throw NetlinkError(operation: "connect netlink socket in", subject: namespace, libnl: rc)
        }
        sock = s
        self.namespace = namespace
    }

    deinit { nl_socket_free(sock) }

    private func subject(_ s: String) -> String { "\(s) (namespace \(namespace))" }

    // MARK: Links

    /// Creates a veth pair, each end directly in its own namespace (no moving
    /// after creation), optionally up from the start.
    public func createVeth(_ a: VethEnd, _ b: VethEnd) throws {
        guard let link = rtnl_link_veth_alloc() else { throw NetlinkError.system("allocate veth", a.name, errno: ENOMEM) }
        defer { rtnl_link_veth_release(link) }
        guard let peer = rtnl_link_veth_get_peer(link) else { throw NetlinkError.system("allocate veth peer", b.name, errno: ENOMEM) }
        defer { rtnl_link_put(peer) }
        for (l, end) in [(link, a), (peer, b)] {
            rtnl_link_set_name(l, end.name)
            rtnl_link_set_ns_fd(l, end.namespaceFD)
            if end.index > 0 { rtnl_link_set_ifindex(l, end.index) }
        }
        // Only the first end can be created up: the kernel configures the peer
        // before the two are joined, and opening a veth without its peer fails
        // with ENOTCONN. The caller brings `b` up afterwards (`setLink`).
        if a.up { rtnl_link_set_flags(link, UInt32(IFF_UP)) }
        let rc = rtnl_link_add(sock, link, NLM_F_CREATE | NLM_F_EXCL)
        if rc < 0 { throw NetlinkError(operation: "create veth", subject: "\(a.name)—\(b.name)", libnl: rc) }
    }

    /// Sets an interface administratively up or down (in this socket's namespace).
    /// For a veth end, down takes the carrier away from its peer: how the
    /// emulator shows a `carrier` coverage loss.
    public func setLink(named name: String, up: Bool) throws {
        try setLink(index: try state(ofLink: name).index, name: name, up: up)
    }

    /// Same, by interface index (no lookup); `name` is for messages.
    public func setLink(index: Int32, name: String, up: Bool) throws {
        guard let change = rtnl_link_alloc() else { throw NetlinkError.system("allocate link", name, errno: ENOMEM) }
        defer { rtnl_link_put(change) }
        rtnl_link_set_ifindex(change, index)
        if up { rtnl_link_set_flags(change, UInt32(IFF_UP)) } else { rtnl_link_unset_flags(change, UInt32(IFF_UP)) }
        // RTM_NEWLINK with the index (not RTM_SETLINK via rtnl_link_change's
        // lookup) so that only the flag is touched.
        let rc = rtnl_link_change(sock, change, change, 0)
        if rc < 0 { throw NetlinkError(operation: up ? "set link up" : "set link down", subject: subject(name), libnl: rc) }
    }

    /// The kernel's view of one interface.
    public func state(ofLink name: String) throws -> LinkState {
        var link: OpaquePointer?
        let rc = rtnl_link_get_kernel(sock, 0, name, &link)
        guard rc >= 0, let link else { throw NetlinkError(operation: "get link", subject: subject(name), libnl: rc) }
        defer { rtnl_link_put(link) }
        return Self.state(of: link)
    }

    /// Every interface in this socket's namespace.
    public func links() throws -> [LinkState] {
        var cache: OpaquePointer?
        let rc = rtnl_link_alloc_cache(sock, AF_UNSPEC, &cache)
        guard rc >= 0, let cache else { throw NetlinkError(operation: "list links", subject: "namespace \(namespace)", libnl: rc) }
        defer { nl_cache_free(cache) }
        var result: [LinkState] = []
        var object = nl_cache_get_first(cache)
        while let o = object {
            result.append(Self.state(of: o))
            object = nl_cache_get_next(o)
        }
        return result
    }

    static func state(of link: OpaquePointer) -> LinkState {
        let flags = rtnl_link_get_flags(link)
        var buffer = [CChar](repeating: 0, count: 32)
        rtnl_link_operstate2str(rtnl_link_get_operstate(link), &buffer, buffer.count)
        return LinkState(name: String(cString: rtnl_link_get_name(link)), index: rtnl_link_get_ifindex(link),
                         up: flags & UInt32(IFF_UP) != 0, carrier: flags & iffLowerUp != 0,
                         operationalState: String(cString: buffer))
    }

    // MARK: Addresses, routes, rules

    public func addAddress(_ prefix: InetPrefix, interfaceIndex: Int32, interfaceName: String) throws {
        guard let addr = rtnl_addr_alloc() else { throw NetlinkError.system("allocate address", interfaceName, errno: ENOMEM) }
        defer { rtnl_addr_put(addr) }
        let local = try Self.nlAddress(prefix.address, length: prefix.length)
        defer { nl_addr_put(local) }
        rtnl_addr_set_ifindex(addr, interfaceIndex)
        rtnl_addr_set_local(addr, local)
        if prefix.length < 31 {
            let broadcast = try Self.nlAddress(prefix.last, length: 32)
            defer { nl_addr_put(broadcast) }
            rtnl_addr_set_broadcast(addr, broadcast)
        }
        let rc = rtnl_addr_add(sock, addr, NLM_F_CREATE | NLM_F_EXCL)
        if rc < 0 { throw NetlinkError(operation: "add address \(prefix) to", subject: subject(interfaceName), libnl: rc) }
    }

    public func addRoute(_ spec: RouteSpec) throws {
        guard let route = rtnl_route_alloc() else { throw NetlinkError.system("allocate route", spec.description, errno: ENOMEM) }
        defer { rtnl_route_put(route) }
        let dst = try Self.nlAddress(spec.destination.address, length: spec.destination.length)
        defer { nl_addr_put(dst) }
        _ = rtnl_route_set_family(route, UInt8(AF_INET))
        _ = rtnl_route_set_dst(route, dst)
        rtnl_route_set_table(route, spec.table)
        rtnl_route_set_protocol(route, UInt8(RTPROT_STATIC))
        switch spec.kind {
        case .unreachable:
            _ = rtnl_route_set_type(route, UInt8(RTN_UNREACHABLE))
            rtnl_route_set_scope(route, UInt8(RT_SCOPE_UNIVERSE.rawValue))
        case .unicast:
            _ = rtnl_route_set_type(route, UInt8(RTN_UNICAST))
            rtnl_route_set_scope(route, UInt8(spec.gateway == nil ? RT_SCOPE_LINK.rawValue : RT_SCOPE_UNIVERSE.rawValue))
            guard let nh = rtnl_route_nh_alloc() else { throw NetlinkError.system("allocate nexthop", spec.description, errno: ENOMEM) }
            if let index = spec.interfaceIndex { rtnl_route_nh_set_ifindex(nh, index) }
            if let gw = spec.gateway {
                let g = try Self.nlAddress(gw, length: 32)
                rtnl_route_nh_set_gateway(nh, g)
                nl_addr_put(g)
            }
            rtnl_route_add_nexthop(route, nh) // the route owns it from here
        }
        if let src = spec.source {
            let s = try Self.nlAddress(src, length: 32)
            defer { nl_addr_put(s) }
            _ = rtnl_route_set_pref_src(route, s)
        }
        let rc = rtnl_route_add(sock, route, NLM_F_CREATE | NLM_F_EXCL)
        if rc < 0 { throw NetlinkError(operation: "add route \(spec) in", subject: "namespace \(namespace)", libnl: rc) }
    }

    /// `from <source> lookup <table>` at `priority`.
    public func addRule(from source: InetPrefix, table: UInt32, priority: UInt32) throws {
        guard let rule = rtnl_rule_alloc() else { throw NetlinkError.system("allocate rule", source.description, errno: ENOMEM) }
        defer { rtnl_rule_put(rule) }
        let src = try Self.nlAddress(source.address, length: source.length)
        defer { nl_addr_put(src) }
        rtnl_rule_set_family(rule, AF_INET)
        _ = rtnl_rule_set_src(rule, src)
        rtnl_rule_set_table(rule, table)
        rtnl_rule_set_prio(rule, priority)
        rtnl_rule_set_action(rule, UInt8(FR_ACT_TO_TBL))
        let rc = rtnl_rule_add(sock, rule, NLM_F_CREATE | NLM_F_EXCL)
        if rc < 0 { throw NetlinkError(operation: "add rule from \(source) lookup \(table) in", subject: "namespace \(namespace)", libnl: rc) }
    }

    static func nlAddress(_ a: InetAddress, length: Int) throws -> OpaquePointer {
        var raw = a.networkOrder
        guard let addr = nl_addr_build(AF_INET, &raw, 4) else { throw NetlinkError.system("build address", a.description, errno: ENOMEM) }
        nl_addr_set_prefixlen(addr, Int32(length))
        return addr
    }
}
