// swift-tools-version: 6.0
// Wayside: a V2I mobility testbed with a userspace Multipath TCP stack.
// Module map and the rules between modules: docs/ARCHITECTURE.md.
import PackageDescription

let package = Package(
    name: "Wayside",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "wayside", targets: ["wayside"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // Pure foundations: time, quantities, seeded randomness, coverage timelines.
        .target(name: "Core"),

        // Wire formats of IPv4/IPv6, TCP and RFC 8684 MPTCP; checksums; MPTCP crypto; pcap.
        .target(
            name: "Wire",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")]
        ),

        // One TCP connection as a pure, clock-injected state machine (RFC 9293).
        .target(name: "TCP", dependencies: ["Wire", "Core"]),

        // The Multipath TCP connection level (RFC 8684): data sequence, handshakes over
        // options, tokens, path managers, schedulers, coupled congestion control.
        .target(name: "MPTCP", dependencies: ["Wire", "Core", "TCP"]),

        // The TCP engine driven by the simulator: hosts, bulk transfers, scenarios and their figures.
        .target(
            name: "TCPSimulation",
            dependencies: ["Core", "Wire", "TCP", "Simulation", "LinkModel",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),

        // Pure link models shared by the simulator and the emulator backends.
        .target(name: "LinkModel", dependencies: ["Core"]),

        // Deterministic discrete-event network in virtual time.
        .target(name: "Simulation", dependencies: ["Core", "LinkModel", "Wire"]),

        // YAML decoding with file:line:column errors, shared by topologies and routes.
        .target(name: "Config", dependencies: ["Core", .product(name: "Yams", package: "Yams")]),

        // Topology models, validation, plans, and building/tearing down a plan.
        .target(name: "Testbed", dependencies: ["Core", "Config"]),

        // Vehicle trajectories, roadside-unit radio models, importers -> coverage timelines.
        .target(name: "Mobility", dependencies: ["Core", "Config"]),

        // The command line: thin, calls the libraries.
        .executableTarget(
            name: "wayside",
            dependencies: [
                "Core", "Wire", "TCP", "Simulation", "Testbed", "Mobility", "TCPSimulation",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TCPTests", dependencies: ["TCP", "Wire", "Core", "TCPSimulation", "Simulation"]),
        .testTarget(name: "MPTCPTests", dependencies: ["MPTCP", "TCP", "Wire", "Core"]),
        .testTarget(name: "LinkModelTests", dependencies: ["LinkModel", "Core"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "LinkModel", "Core", "Wire"]),
        .testTarget(name: "TestbedTests", dependencies: ["Testbed", "Config", "Core"]),
        .testTarget(name: "MobilityTests", dependencies: ["Mobility", "Config", "Core"]),
    ],
    swiftLanguageModes: [.v5]
)
