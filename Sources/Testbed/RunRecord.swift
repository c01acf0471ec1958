import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Netlink

/// What one run created, written to `/run/wayside/<run id>.json` before
/// anything is created and kept until everything is removed, so that
/// `wayside cleanup` can remove exactly what a killed run left.
public struct RunRecord: Codable, Hashable, Sendable {
    public struct Interface: Codable, Hashable, Sendable {
        public var node: String?
        public var namespace: String
        public var name: String
        public var index: Int32
        public var address: String?
    }
    public struct Emulator: Codable, Hashable, Sendable {
        public var namespace: String
        public var aSide: Interface
        public var bSide: Interface
    }
    public struct Link: Codable, Hashable, Sendable {
        public var name: String
        public var kind: String
        public var a: Interface
        public var b: Interface
        public var emulator: Emulator?
    }
    public struct Node: Codable, Hashable, Sendable {
        public var name: String
        public var role: String
        public var namespace: String
    }
    public enum State: String, Codable, Sendable { case building, up }

    public var runID: String
    public var topology: String
    /// The topology file, when the run was built from one.
    public var topologyFile: String?
    /// The process that builds (or built) the run.
    public var pid: Int32
    public var created: Date
    public var state: State
    /// Every namespace of the run, created or about to be.
    public var namespaces: [String]
    public var emulatorNamespace: String?
    public var nodes: [Node]
    public var links: [Link]

    public init(plan: TestbedPlan, topologyFile: String?, pid: Int32, state: State) {
        func interface(_ i: PlannedInterface) -> Interface {
            Interface(node: i.node, namespace: i.namespace, name: i.name, index: i.index, address: i.address?.description)
        }
        runID = plan.runID.value
        topology = plan.topology.name
        self.topologyFile = topologyFile
        self.pid = pid
        created = Date()
        self.state = state
        namespaces = plan.namespaces
        emulatorNamespace = plan.emulatorNamespace
        nodes = plan.nodes.map { Node(name: $0.name, role: $0.node.role.rawValue, namespace: $0.namespace) }
        links = plan.links.map { l in
            Link(name: l.name, kind: l.link.kind.rawValue, a: interface(l.a), b: interface(l.b),
                 emulator: l.emulator.map { Emulator(namespace: $0.namespace, aSide: interface($0.aSide), bSide: interface($0.bSide)) })
        }
    }

    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// True while the process that wrote the record is alive (a build in progress).
    public var ownerIsAlive: Bool { state == .building && kill(pid, 0) == 0 }
}

/// The directory of run records.
public struct RunRegistry: Sendable {
    public var directory: String
    public init(directory: String = "/run/wayside") { self.directory = directory }

    public func path(_ runID: String) -> String { "\(directory)/\(runID).json" }

    /// Writes a record; `exclusive` fails if the run id is already taken.
    public func write(_ record: RunRecord, exclusive: Bool) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        let data = try encoder.encode(record)
        let path = path(record.runID)
        if exclusive {
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
            guard fd >= 0 else {
                throw TestbedError.runExists(record.runID, reason: String(cString: strerror(errno)))
            }
            defer { close(fd) }
            let written = data.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            guard written == data.count else { throw TestbedError.record(path, reason: String(cString: strerror(errno))) }
        } else {
            // Replace atomically so that a reader never sees half a record.
            let temporary = path + ".tmp"
            try data.write(to: URL(fileURLWithPath: temporary))
            guard rename(temporary, path) == 0 else { throw TestbedError.record(path, reason: String(cString: strerror(errno))) }
        }
    }

    public func read(_ runID: String) throws -> RunRecord {
        let path = path(runID)
        guard let data = FileManager.default.contents(atPath: path) else { throw TestbedError.noSuchRun(runID) }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(RunRecord.self, from: data) } catch {
            throw TestbedError.record(path, reason: "not a run record: \(error)")
        }
    }

    public func remove(_ runID: String) {
        unlink(path(runID))
        unlink(path(runID) + ".tmp")
    }

    /// Every recorded run, oldest first; unreadable records are skipped.
    public func all() -> [RunRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.filter { $0.hasSuffix(".json") }
            .compactMap { try? read(String($0.dropLast(5))) }
            .sorted { $0.created < $1.created }
    }
}

public enum TestbedError: Error, CustomStringConvertible {
    case runExists(String, reason: String)
    case noSuchRun(String)
    case record(String, reason: String)
    case interrupted
    case timeout(String)
    case netlink(NetlinkError)
    case teardown([NetlinkError])

    public var description: String {
        switch self {
        case .runExists(let id, let reason): return "run \(id) already exists (\(reason)); choose another run id or run 'wayside cleanup --run \(id)'"
        case .noSuchRun(let id): return "no run \(id): 'wayside ls' lists the runs"
        case .record(let path, let reason): return "\(path): \(reason)"
        case .interrupted: return "interrupted: everything built so far was removed"
        case .timeout(let what): return "timed out: \(what)"
        case .netlink(let e): return e.description
        case .teardown(let errors): return "teardown left something behind:\n" + errors.map(\.description).joined(separator: "\n")
        }
    }
}
