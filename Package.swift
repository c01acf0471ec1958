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
            dependencies: ["Core", .product(name: "Crypto", package: "swift-crypto")]
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

        // MPTCP connections driven by the simulator: multi-homed hosts, CBR and bulk
        // applications, handover and aggregation scenarios.
        .target(
            name: "MPTCPSimulation",
            dependencies: ["Core", "Wire", "TCP", "MPTCP", "Simulation", "LinkModel", "TCPSimulation",
                           .product(name: "Crypto", package: "swift-crypto")]
        ),

        // An experiment (topology plan, route timeline, traffic, Swift stack settings) run
        // in virtual time, producing the event logs of a real run (`wayside run --simulate`).
        .target(
            name: "ExperimentSimulation",
            dependencies: ["Core", "Wire", "TCP", "MPTCP", "Simulation", "LinkModel", "MPTCPSimulation", "Testbed", "Analysis"]
        ),

        // Pure link models shared by the simulator and the emulator backends.
        // Generic over the packet type: clients (the simulator, the emulator) need the
        // bodies to specialise them, or every queue operation goes through runtime
        // generic metadata (10x slower, measured with `wayside bench links`).
        .target(name: "LinkModel", dependencies: ["Core"],
                swiftSettings: [.unsafeFlags(["-cross-module-optimization"])]),

        // Deterministic discrete-event network in virtual time.
        .target(name: "Simulation", dependencies: ["Core", "LinkModel", "Wire"]),

        // YAML decoding with file:line:column errors, shared by topologies and routes.
        .target(name: "Config", dependencies: ["Core", .product(name: "Yams", package: "Yams")]),

        // libnl-3 / libnl-route-3 from the system (pkg-config libnl-route-3.0).
        .systemLibrary(
            name: "CNetlink",
            pkgConfig: "libnl-route-3.0",
            providers: [.apt(["libnl-3-dev", "libnl-route-3-dev"])]
        ),

        // Namespaces, links, addresses, routes, rules and sysctls through libnl-route-3.
        .target(name: "Netlink", dependencies: ["CNetlink"]),

        // Topology models, validation, plans, and building/tearing down a plan.
        .target(name: "Testbed", dependencies: ["Core", "Config", "Netlink"]),

        // Vehicle trajectories, roadside-unit radio models, importers -> coverage timelines.
        .target(name: "Mobility", dependencies: ["Core", "Config"]),

        // Event-log contract (docs/LOGS.md), metrics (docs/METRICS.md), thresholds, results.json.
        .target(name: "Analysis", dependencies: ["Core"]),

        // A self-contained report.html with inline SVG plots, from Analysis results.
        .target(name: "Report", dependencies: ["Analysis", "Core"]),

        // Traffic applications (bulk, cbr, rr, sink, echo) over kernel sockets, logging docs/LOGS.md events.
        .target(name: "Traffic", dependencies: ["Analysis", "Core"]),

        // Kernel interfaces of the userspace emulator: AF_PACKET, epoll, timerfd, ethtool.
        .target(name: "CEmulator"),
        // Link emulator backends: userspace (AF_PACKET + one event loop) and netem.
        .target(name: "Emulator", dependencies: ["CEmulator", "CNetlink", "Core", "LinkModel", "Netlink", "Testbed"]),

        // Sweeps (docs/SWEEPS.md): sweep files expanded into runs, shards, summaries,
        // baselines and regression checks; the CLI runs them.
        .target(name: "Sweep", dependencies: ["Core", "Config", "Analysis", "Report"]),
        // The 0-RTT TCP Convert Protocol (RFC 8803) wire format: fixed header and TLVs. Pure.
        .target(name: "Convert"),
        // The transport converter (issue 9): carriers to the converter (kernel MPTCP today),
        // the server-side converter, the client-side redirect (nftables, SO_ORIGINAL_DST), relays.
        .target(name: "Converter", dependencies: ["Convert", "Stack", "Core"]),
        // Kernel interfaces of the Swift stack's runtime: TUN, ioctl, epoll, timerfd, eventfd, rtnetlink.
        .target(name: "CStack"),
        // The Swift stack on a TUN device: pure demultiplexing core + one event-loop thread, socket-like API.
        .target(name: "Stack", dependencies: ["CStack", "Core", "Wire", "TCP", "MPTCP", "Analysis", "Traffic"]),

        // The command line: thin, calls the libraries.
        .executableTarget(
            name: "wayside",
            dependencies: [
                "Core", "Wire", "TCP", "Simulation", "Testbed", "Mobility", "Config", "Netlink",
                "Analysis", "Report", "Traffic",
                "LinkModel", "TCPSimulation", "Emulator", "MPTCP", "MPTCPSimulation", "ExperimentSimulation",
                "Sweep", "Stack", "Convert", "Converter",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),

        .testTarget(name: "CoreTests", dependencies: ["Core"]),
        .testTarget(name: "WireTests", dependencies: ["Wire"]),
        .testTarget(name: "TCPTests", dependencies: ["TCP", "Wire", "Core", "TCPSimulation", "Simulation"]),
        .testTarget(name: "MPTCPTests", dependencies: ["MPTCP", "TCP", "Wire", "Core"]),
        .testTarget(name: "MPTCPSimulationTests", dependencies: ["MPTCPSimulation", "MPTCP", "Simulation", "Core"]),
        .testTarget(name: "LinkModelTests", dependencies: ["LinkModel", "Core"]),
        .testTarget(name: "SimulationTests", dependencies: ["Simulation", "LinkModel", "Core", "Wire"]),
        .testTarget(name: "TestbedTests", dependencies: ["Testbed", "Config", "Core", "Netlink"]),
        .testTarget(name: "MobilityTests", dependencies: ["Mobility", "Config", "Core", "Testbed", "wayside", "LinkModel"]),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Core"]),
        .testTarget(name: "NetlinkTests", dependencies: ["Netlink"]),
        .testTarget(name: "AnalysisTests", dependencies: ["Analysis", "Report", "Core"]),
        .testTarget(name: "TrafficTests", dependencies: ["Traffic", "Analysis", "Core"]),
        .testTarget(name: "RunTests", dependencies: ["wayside"]),
        .testTarget(name: "SweepTests", dependencies: ["Sweep", "wayside", "Analysis", "Config", "Core"]),
        .testTarget(name: "ExperimentSimulationTests",
                    dependencies: ["ExperimentSimulation", "Analysis", "Testbed", "Core", "LinkModel", "MPTCP"]),
        // The Swift stack placed by the testbed against Linux kernel MPTCP and TCP (issue 5).
        .testTarget(name: "StackInteropTests", dependencies: ["Stack", "Testbed", "Netlink", "Traffic", "MPTCP", "Core",
                                                              .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "ConvertTests", dependencies: ["Convert", "Converter", "Stack", "Netlink", "Core"]),
        .testTarget(name: "StackTests", dependencies: ["Stack", "MPTCP", "TCP", "Wire", "Core", "Analysis", "Traffic", "Netlink",
                                                      .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "EmulatorTests", dependencies: ["Emulator", "Testbed", "LinkModel", "Netlink", "Core", "CEmulator"]),
    ],
    swiftLanguageModes: [.v5]
)
