import Foundation

/// The client side's nftables table, in the namespace the process runs in:
/// outgoing TCP of ordinary programs to 198.18.0.0/15 is redirected to the
/// local listener (a NAT `redirect` keeps the original destination for
/// SO_ORIGINAL_DST). Left alone: connections to the converter's port (the
/// carrier and any MPTCP subflow of it) and sockets carrying `mark` (SO_MARK
/// of the carriers; the Swift stack's sockets carry it too).
public struct RedirectRule: Sendable {
    public var table: String
    public var listenPort: UInt16
    public var converterPort: UInt16
    public var mark: UInt32
    /// The nfqueue that holds new SYNs (`SynHold`); nil: redirect only.
    public var synQueue: UInt16?
    /// Marks `SynHold` gives a SYN to be answered with a RST / ICMP host unreachable.
    public var refuseMark: UInt32 { mark &+ 1 }
    public var unreachableMark: UInt32 { mark &+ 2 }

    /// `runID` names the table, so several runs in one namespace, or a leftover
    /// of a crashed run, never collide.
    public init(runID: String, listenPort: UInt16, converterPort: UInt16, mark: UInt32, synQueue: UInt16? = nil) {
        self.synQueue = synQueue
        table = "wayside_convert_" + runID.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        self.listenPort = listenPort
        self.converterPort = converterPort
        self.mark = mark
    }

    /// The nft script that creates the table.
    /// The nft script that creates the table. `queueInNFT`: the SYN-holding rule
    /// in nft itself (kernels with nft_queue); otherwise `install` puts it in an
    /// iptables-nft chain (xt NFQUEUE) at mangle priority -150, before this table's hold chain.
    public func script(queueInNFT: Bool) -> String {
        // Before NAT (priority -140 < -100), so a held SYN still shows its original destination.
        let hold = synQueue.map { q in
            """
                chain hold {
                    type filter hook output priority -140; policy accept;
                    meta mark \(mark) return
                    tcp dport \(converterPort) return
                    meta mark \(refuseMark) reject with tcp reset
                    meta mark \(unreachableMark) reject with icmp type host-unreachable
                    \(queueInNFT ? "ip daddr 198.18.0.0/15 tcp flags & (syn | ack) == syn queue num \(q) bypass" : "")
                }

            """
        } ?? ""
        return """
        table ip \(table) {
        \(hold)    chain output {
                type nat hook output priority -100; policy accept;
                meta mark \(mark) return
                tcp dport \(converterPort) return
                ip daddr 198.18.0.0/15 meta l4proto tcp redirect to :\(listenPort)
            }
        }

        """
    }

    /// The iptables-nft chain (mangle table) that queues SYNs when nft cannot.
    public var iptablesChain: String { "WS_" + String(table.dropFirst("wayside_convert_".count).prefix(24)) }

    /// How SYNs are held once installed.
    public enum Holding: Equatable, Sendable, CustomStringConvertible {
        case none, nft, iptables
        public var description: String {
            switch self {
            case .none: return "not held (no nfqueue rule possible here: nft_queue and iptables-nft both missing)"
            case .nft: return "held by nft queue"
            case .iptables: return "held by iptables-nft NFQUEUE"
            }
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates the table (replacing a leftover of the same name) and, when SYNs
    /// are to be held, the queue rule (nft, else iptables-nft).
    @discardableResult
    public func install() throws -> Holding {
        remove()
        guard let q = synQueue else {
            try apply(script(queueInNFT: false))
            return .none
        }
        if (try? apply(script(queueInNFT: true))) != nil { return .nft }
        try apply(script(queueInNFT: false))
        let c = iptablesChain
        let steps: [[String]] = [
            ["-t", "mangle", "-N", c],
            ["-t", "mangle", "-A", c, "-m", "mark", "!", "--mark", "0", "-j", "RETURN"],
            ["-t", "mangle", "-A", c, "-p", "tcp", "--dport", "\(converterPort)", "-j", "RETURN"],
            ["-t", "mangle", "-A", c, "-d", "198.18.0.0/15", "-p", "tcp", "--syn", "-j", "NFQUEUE", "--queue-num", "\(q)", "--queue-bypass"],
            ["-t", "mangle", "-A", "OUTPUT", "-j", c],
        ]
        for step in steps where Self.run("/usr/sbin/iptables-nft", step).0 != 0 {
            removeIPTablesChain()
            return .none
        }
        return .iptables
    }

    private func apply(_ script: String) throws {
        let (status, output) = Self.nft(["-f", "-"], input: script)
        guard status == 0 else { throw Failure(description: "nft -f: \(output.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }

    /// Deletes the table and the iptables-nft chain; quiet when they are not there.
    public func remove() {
        _ = Self.nft(["delete", "table", "ip", table])
        removeIPTablesChain()
    }

    private func removeIPTablesChain() {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables-nft") else { return }
        let c = iptablesChain
        while Self.run("/usr/sbin/iptables-nft", ["-t", "mangle", "-D", "OUTPUT", "-j", c]).0 == 0 {}
        _ = Self.run("/usr/sbin/iptables-nft", ["-t", "mangle", "-F", c])
        _ = Self.run("/usr/sbin/iptables-nft", ["-t", "mangle", "-X", c])
        // iptables-nft made `table ip mangle` for the chain; drop it when nothing else is in it.
        let (status, rules) = Self.run("/usr/sbin/iptables-nft", ["-t", "mangle", "-S"])
        if status == 0, rules.split(separator: "\n").allSatisfy({ $0.hasPrefix("-P ") }) {
            _ = Self.nft(["delete", "table", "ip", "mangle"])
        }
    }

    public var isInstalled: Bool { Self.nft(["list", "table", "ip", table]).0 == 0 }

    static func nft(_ args: [String], input: String? = nil) -> (Int32, String) { run("/usr/sbin/nft", args, input: input) }

    static func run(_ tool: String, _ args: [String], input: String? = nil) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let stdin = Pipe()
        p.standardInput = stdin
        do { try p.run() } catch { return (127, "cannot run \(tool): \(error)") }
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
