import ArgumentParser

/// `wayside bench`: benchmarks that print tables of figures. Each area adds
/// its own subcommand; speed goals live here, never in unit tests.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Run benchmarks and print their figures as tables.",
        subcommands: [BenchTCPCommand.self]
    )
}
