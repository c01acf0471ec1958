import ArgumentParser

/// `wayside bench AREA`: benchmarks that print tables. Each area adds its own
/// subcommand here; `make bench` runs them all. Speed figures live here, never
/// in tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run a benchmark and print its table (make bench runs every one).",
        subcommands: [
            WireBenchCommand.self, BenchTCPCommand.self, BenchLinksCommand.self,
            TestbedBenchCommand.self, EmulatorBenchCommand.self, BenchMPTCPCommand.self,
            BenchSimCommand.self, BenchSweepCommand.self, BenchStackCommand.self,
        ],
        defaultSubcommand: WireBenchCommand.self
    )
}
