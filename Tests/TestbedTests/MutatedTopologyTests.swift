import Foundation
import Testing
import Config
import Core
@testable import Testbed

/// Topology files are untrusted input: whatever a file holds, decoding either
/// yields a topology that plans, or located problems — it never traps.
@Suite("Topology files: mutated input never traps")
struct MutatedTopologyTests {
    static let alphabet = Array(" \n:-[]{},#&*!|>'\"%0123456789abcxyz./\t")

    @Test(arguments: TopologyTests.shipped.filter { $0 != "dense" })
    func mutationsOfShippedFiles(name: String) throws {
        let original = Array(try String(contentsOfFile: shippedTopology(name), encoding: .utf8))
        var rng = SeededRandom(seed: 6, stream: name)
        var accepted = 0, rejected = 0
        for _ in 0..<300 {
            var text = original
            for _ in 0..<(1 + Int(rng.next() % 4)) {
                let at = Int(rng.next() % UInt64(text.count))
                switch rng.next() % 3 {
                case 0: text.remove(at: at)
                case 1: text.insert(Self.alphabet[Int(rng.next() % UInt64(Self.alphabet.count))], at: at)
                default: text[at] = Self.alphabet[Int(rng.next() % UInt64(Self.alphabet.count))]
                }
            }
            do {
                let t = try Topology.parse(text: String(text), file: "m.yaml")
                _ = try TestbedPlan(topology: t, runID: RunID("m")!).render()
                accepted += 1
            } catch let error as ConfigError {
                #expect(!error.problems.isEmpty)
                for p in error.problems { #expect(p.location.file == "m.yaml" && p.location.line >= 1) }
                rejected += 1
            }
        }
        #expect(accepted + rejected == 300)
        #expect(rejected > 0)
    }
}
