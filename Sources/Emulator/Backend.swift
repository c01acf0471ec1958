import Core
import Foundation

/// Which emulator carries the links (`--emulator`).
public enum EmulatorBackend: String, CaseIterable, Sendable {
    /// netem where the kernel has it, the userspace emulator otherwise.
    case auto
    case netem
    case userspace
}

/// The backend a run uses, and why.
public struct BackendChoice: Sendable {
    public var backend: EmulatorBackend
    public var explanation: String

    /// Picks the backend for `requested` on the running kernel.
    public static func resolve(_ requested: EmulatorBackend, netem: NetemSupport = .probe()) throws -> BackendChoice {
        switch requested {
        case .userspace:
            return BackendChoice(backend: .userspace, explanation: "userspace (as asked)")
        case .netem:
            guard netem.available else {
                throw EmulatorError("--emulator netem: this kernel (\(netem.kernel)) has no sch_netem (\(netem.reason)); use --emulator userspace or auto")
            }
            return BackendChoice(backend: .netem, explanation: "netem (as asked; \(netem.reason))")
        case .auto:
            return netem.available
                ? BackendChoice(backend: .netem, explanation: "netem (auto: \(netem.reason))")
                : BackendChoice(backend: .userspace, explanation: "userspace (auto: kernel \(netem.kernel) has no sch_netem)")
        }
    }
}

/// Whether the running kernel can give a qdisc of kind netem: built in, loaded,
/// or loadable as a module of this kernel.
public struct NetemSupport: Sendable {
    public var available: Bool
    public var kernel: String
    public var reason: String

    public init(available: Bool, kernel: String, reason: String) {
        self.available = available; self.kernel = kernel; self.reason = reason
    }

    public static func probe(root: String = "") -> NetemSupport {
        var u = utsname()
        uname(&u)
        let release = withUnsafeBytes(of: &u.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        let fm = FileManager.default
        if fm.fileExists(atPath: root + "/sys/module/sch_netem") {
            return NetemSupport(available: true, kernel: release, reason: "sch_netem is loaded")
        }
        let modules = root + "/lib/modules/\(release)"
        if let builtin = try? String(contentsOfFile: modules + "/modules.builtin", encoding: .utf8), builtin.contains("sch_netem.ko") {
            return NetemSupport(available: true, kernel: release, reason: "sch_netem is built in")
        }
        if let dep = try? String(contentsOfFile: modules + "/modules.dep", encoding: .utf8), dep.contains("/sch_netem.ko") {
            return NetemSupport(available: true, kernel: release, reason: "sch_netem is a module of this kernel")
        }
        return NetemSupport(available: false, kernel: release,
                            reason: "not loaded, not built in, and no module under \(modules)")
    }
}

/// What `wayside emulate` and the tests drive, whichever backend carries the links.
public protocol LinkEmulator: AnyObject {
    var links: [EmulatedLink] { get }
    /// Time zero of the timeline (CLOCK_MONOTONIC).
    var origin: Instant { get }
    /// Every timeline step applied so far, with when it was due and when it took effect.
    var appliedChanges: [AppliedChange] { get }
    func start(origin: Instant?) throws
    func stop()
}

extension UserspaceEmulator: LinkEmulator {}
extension NetemEmulator: LinkEmulator {}
