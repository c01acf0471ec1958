import ArgumentParser

@main
struct Wayside: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wayside",
        abstract: "How does a Multipath TCP connection live through a drive past roadside units?",
        discussion: """
        Wayside builds a vehicle-to-infrastructure network from a YAML topology in \
        network namespaces, replays a drive's roadside-unit coverage on its links, \
        runs a Multipath TCP stack written in Swift (or Linux kernel MPTCP, or plain \
        TCP) across it, and measures every handover.
        """,
        version: WaysideVersion.string,
        subcommands: [
            RunCommand.self,
            RouteCommand.self,
            DecodeCommand.self,
            PlanCommand.self, UpCommand.self, DownCommand.self, ExecCommand.self, ListCommand.self, CleanupCommand.self,
            AnalyzeCommand.self,
            NodeCommand.self,
            ConvertCommand.self,
            SimulateTCPCommand.self,
            BenchCommand.self,
            EmulateCommand.self,
            SweepCommand.self, MergeCommand.self, RegressCommand.self,
        ]
    )
}

enum WaysideVersion {
    static let string = "0.1.0"
}
