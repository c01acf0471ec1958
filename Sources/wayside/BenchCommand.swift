import ArgumentParser

/// `wayside bench`: benchmarks that print tables. Each area adds its own
/// subcommand here; with none named, every benchmark runs.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks and print their tables.",
        subcommands: [WireBenchCommand.self, BenchTCPCommand.self],
        defaultSubcommand: WireBenchCommand.self
    )
}
