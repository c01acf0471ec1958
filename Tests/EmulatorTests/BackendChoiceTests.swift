import Foundation
import Testing
@testable import Emulator

@Suite struct BackendChoiceTests {
    let without = NetemSupport(available: false, kernel: "6.1.0-test", reason: "no module")
    let with = NetemSupport(available: true, kernel: "6.1.0-test", reason: "sch_netem is a module of this kernel")

    @Test func autoPicksNetemWhereTheKernelHasItAndSaysWhich() throws {
        let yes = try BackendChoice.resolve(.auto, netem: with)
        #expect(yes.backend == .netem)
        #expect(yes.explanation.contains("auto"))
        let no = try BackendChoice.resolve(.auto, netem: without)
        #expect(no.backend == .userspace)
        #expect(no.explanation.contains("no sch_netem"))
    }

    @Test func netemWithoutSchNetemFailsClearly() {
        #expect {
            _ = try BackendChoice.resolve(.netem, netem: without)
        } throws: { error in
            "\(error)".contains("--emulator netem") && "\(error)".contains("6.1.0-test") && "\(error)".contains("sch_netem")
        }
        #expect((try? BackendChoice.resolve(.netem, netem: with))?.backend == .netem)
    }

    @Test func userspaceIsAlwaysAvailable() throws {
        #expect(try BackendChoice.resolve(.userspace, netem: with).backend == .userspace)
        #expect(try BackendChoice.resolve(.userspace, netem: without).backend == .userspace)
    }

    @Test func probeReadsAKernelModuleTree() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("netem-probe-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: root) }
        #expect(!NetemSupport.probe(root: root).available)
        let release = NetemSupport.probe(root: root).kernel
        try FileManager.default.createDirectory(atPath: root + "/lib/modules/\(release)", withIntermediateDirectories: true)
        try "kernel/net/sched/sch_netem.ko.xz: \n".write(toFile: root + "/lib/modules/\(release)/modules.dep", atomically: true, encoding: .utf8)
        #expect(NetemSupport.probe(root: root).available)
    }
}
