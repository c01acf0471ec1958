import CNetlink
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A dedicated OS thread on which namespace switches happen.
///
/// `setns(2)`/`unshare(2)` change the network namespace of the calling thread
/// only. A Swift concurrency task may hop between threads, and a thread of the
/// cooperative pool that is left in another namespace would run unrelated tasks
/// there; so every switch happens on this thread, which returns to its home
/// namespace before it takes the next job.
public final class NamespaceThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var thread: Thread?
    /// The namespace the thread starts in and always returns to.
    private var homeFD: Int32 = -1

    public init() {
        let ready = DispatchSemaphore(value: 0)
        let t = Thread { [unowned self] in
            self.homeFD = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
            ready.signal()
            while true {
                self.condition.lock()
                while self.jobs.isEmpty { self.condition.wait() }
                let job = self.jobs.removeFirst()
                self.condition.unlock()
                job()
            }
        }
        t.name = "wayside-netns"
        t.start()
        thread = t
        ready.wait()
    }

    /// The thread for occasional switches (opening a socket in a namespace).
    public static let shared = NamespaceThread()

    /// One thread per processor, for work spread over many namespaces at once
    /// (creating a topology's namespaces is kernel work that runs in parallel).
    public static let pool: [NamespaceThread] = (0..<max(2, min(8, ProcessInfo.processInfo.activeProcessorCount))).map { _ in NamespaceThread() }

    /// Runs `body` on the namespace thread and waits for it.
    public func run<T>(_ body: @escaping () throws -> T) throws -> T {
        var result: Result<T, Error>?
        let done = DispatchSemaphore(value: 0)
        condition.lock()
        jobs.append {
            result = Result { try body() }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        return try result!.get()
    }

    /// Runs `body` inside the namespace open at `fd`, then returns the thread
    /// home. A socket opened in `body` stays bound to that namespace.
    public func run<T>(inNamespace fd: Int32, name: String, _ body: @escaping () throws -> T) throws -> T {
        try run {
            guard wayside_setns(fd, wayside_CLONE_NEWNET) == 0 else { throw NetlinkError.system("enter namespace", name) }
            defer { self.returnHome() }
            return try body()
        }
    }

    /// Creates a new network namespace on this thread and runs `body` in it.
    func runInNewNamespace<T>(name: String, _ body: @escaping () throws -> T) throws -> T {
        try run {
            guard wayside_unshare(wayside_CLONE_NEWNET) == 0 else { throw NetlinkError.system("create namespace", name) }
            defer { self.returnHome() }
            return try body()
        }
    }

    private func returnHome() {
        // Failing to return would leave every later job in the wrong namespace.
        precondition(wayside_setns(homeFD, wayside_CLONE_NEWNET) == 0, "cannot return the namespace thread home: errno \(errno)")
    }
}

/// A named network namespace, visible to `ip netns` (a bind mount of its
/// nsfs file under /run/netns, as iproute2 makes them). Holds an open
/// descriptor for as long as the value lives; `close()` releases it.
public final class NetworkNamespace: @unchecked Sendable {
    public static let directory = "/run/netns"

    public let name: String
    public private(set) var fd: Int32

    init(name: String, fd: Int32) { self.name = name; self.fd = fd }
    deinit { close() }

    public func close() {
        if fd >= 0 { Glibc.close(fd); fd = -1 }
    }

    public static func path(_ name: String) -> String { "\(directory)/\(name)" }

    /// Creates the namespace `name`; fails with EEXIST if it exists.
    public static func create(named name: String, thread: NamespaceThread = .shared) throws -> NetworkNamespace {
        try directoryPrepared.get()
        let path = path(name)
        let file = Glibc.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0)
        guard file >= 0 else { throw NetlinkError.system("create namespace file", path) }
        Glibc.close(file)
        do {
            try thread.runInNewNamespace(name: name) {
                guard mount("/proc/thread-self/ns/net", path, "none", wayside_MS_BIND, nil) == 0 else {
                    throw NetlinkError.system("bind-mount namespace", path)
                }
            }
        } catch {
            unlink(path)
            throw error
        }
        return try NetworkNamespace.open(named: name)
    }

    /// Opens an existing namespace by name.
    public static func open(named name: String) throws -> NetworkNamespace {
        let fd = Glibc.open(path(name), O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw NetlinkError.system("open namespace", name) }
        return NetworkNamespace(name: name, fd: fd)
    }

    public static func exists(named name: String) -> Bool { access(path(name), F_OK) == 0 }

    /// Removes the namespace's name; the kernel frees the namespace (and every
    /// interface in it) once nothing holds it open. Missing names are not an error.
    public static func delete(named name: String) throws {
        let path = path(name)
        if umount2(path, wayside_MNT_DETACH) != 0, errno != EINVAL, errno != ENOENT {
            throw NetlinkError.system("unmount namespace", path)
        }
        if unlink(path) != 0, errno != ENOENT { throw NetlinkError.system("remove namespace file", path) }
    }

    /// Names of all namespaces under /run/netns (everyone's, not only Wayside's).
    public static func list() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: directory))?.sorted() ?? []
    }

    /// Prepared once per process: mount calls are slow and the state persists.
    static let directoryPrepared = Result { try prepareDirectory() }

    /// /run/netns as a shared mount point, as iproute2 does, so that a
    /// namespace's bind mount propagates to other mount namespaces and its
    /// removal does too (otherwise a copy could keep the namespace alive).
    static func prepareDirectory() throws {
        if mkdir(directory, 0o755) != 0, errno != EEXIST { throw NetlinkError.system("create directory", directory) }
        if mount("", directory, "none", wayside_MS_SHARED | wayside_MS_REC, nil) == 0 { return }
        guard errno == EINVAL else { throw NetlinkError.system("make mount shared", directory) }
        guard mount(directory, directory, "none", wayside_MS_BIND | wayside_MS_REC, nil) == 0 else {
            throw NetlinkError.system("bind-mount", directory)
        }
        guard mount("", directory, "none", wayside_MS_SHARED | wayside_MS_REC, nil) == 0 else {
            throw NetlinkError.system("make mount shared", directory)
        }
    }

    /// Runs `body` inside this namespace on the namespace thread.
    public func run<T>(thread: NamespaceThread = .shared, _ body: @escaping () throws -> T) throws -> T {
        try thread.run(inNamespace: fd, name: name, body)
    }

    /// A route socket bound to this namespace.
    public func routeSocket(thread: NamespaceThread = .shared) throws -> RouteSocket {
        let name = self.name
        return try run(thread: thread) { try RouteSocket(namespace: name) }
    }

    /// Writes sysctls (paths under /proc/sys, e.g. `net/ipv4/ip_forward`) in
    /// this namespace: /proc/sys/net resolves to the namespace of the thread
    /// that opens the file.
    public func writeSysctls(_ values: [(String, String)], thread: NamespaceThread = .shared) throws {
        let name = self.name
        try run(thread: thread) {
            for (key, value) in values {
                let path = "/proc/sys/\(key)"
                let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
                guard fd >= 0 else { throw NetlinkError.system("open sysctl \(key) in", name) }
                defer { Glibc.close(fd) }
                let bytes = Array((value + "\n").utf8)
                guard write(fd, bytes, bytes.count) == bytes.count else { throw NetlinkError.system("write sysctl \(key) in", name) }
            }
        }
    }

    /// Reads one sysctl in this namespace.
    public func readSysctl(_ key: String, thread: NamespaceThread = .shared) throws -> String {
        let name = self.name
        return try run(thread: thread) {
            guard let text = try? String(contentsOfFile: "/proc/sys/\(key)", encoding: .utf8) else {
                throw NetlinkError.system("read sysctl \(key) in", name)
            }
            return text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
}

extension NetworkNamespace {
    /// For a process about to `exec` a command in a namespace (`wayside exec`):
    /// moves the calling thread into the namespace and, as `ip netns exec`
    /// does, gives it a private mount namespace with this namespace's /sys so
    /// that tools reading /sys/class/net see the right interfaces. Only for the
    /// thread that then calls `execv`; never from a Swift concurrency task.
    public static func enterForExec(named name: String) throws {
        let ns = try NetworkNamespace.open(named: name)
        guard wayside_setns(ns.fd, wayside_CLONE_NEWNET) == 0 else { throw NetlinkError.system("enter namespace", name) }
        ns.close()
        // A fresh /sys is a convenience: the command still runs in the right
        // network namespace if any of this is refused.
        guard wayside_unshare(wayside_CLONE_NEWNS) == 0 else { return }
        guard mount("", "/", "none", wayside_MS_SLAVE | wayside_MS_REC, nil) == 0 else { return }
        if umount2("/sys", wayside_MNT_DETACH) == 0 {
            _ = mount(name, "/sys", "sysfs", 0, nil)
        }
    }
}
