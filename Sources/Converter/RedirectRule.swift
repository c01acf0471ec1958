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

    /// `runID` names the table, so several runs in one namespace, or a leftover
    /// of a crashed run, never collide.
    public init(runID: String, listenPort: UInt16, converterPort: UInt16, mark: UInt32) {
        table = "wayside_convert_" + runID.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined()
        self.listenPort = listenPort
        self.converterPort = converterPort
        self.mark = mark
    }

    /// The nft script that creates the table.
    public var script: String {
        """
        table ip \(table) {
            chain output {
                type nat hook output priority -100; policy accept;
                meta mark \(mark) return
                tcp dport \(converterPort) return
                ip daddr 198.18.0.0/15 meta l4proto tcp redirect to :\(listenPort)
            }
        }

        """
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    /// Creates the table (replacing a leftover of the same name).
    public func install() throws {
        remove()
        let (status, output) = Self.nft(["-f", "-"], input: script)
        guard status == 0 else { throw Failure(description: "nft -f: \(output.trimmingCharacters(in: .whitespacesAndNewlines))") }
    }

    /// Deletes the table; quiet when it is not there.
    public func remove() {
        _ = Self.nft(["delete", "table", "ip", table])
    }

    public var isInstalled: Bool { Self.nft(["list", "table", "ip", table]).0 == 0 }

    static func nft(_ args: [String], input: String? = nil) -> (Int32, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/sbin/nft")
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        let stdin = Pipe()
        p.standardInput = stdin
        do { try p.run() } catch { return (127, "cannot run /usr/sbin/nft: \(error)") }
        if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
        try? stdin.fileHandleForWriting.close()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}
