// swift-tools-version: 6.0
// libFuzzer target for Wayside's packet parsers, kept out of the main package
// so that `swift build` there never sees -sanitize=fuzzer. `Sources/Wire` is a
// symlink to the main package's Wire sources: the fuzzer exercises exactly
// that code. Built and run by `make fuzz` at the top level.
import PackageDescription

let package = Package(
    name: "WaysideFuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
    ],
    targets: [
        .target(name: "Wire", dependencies: [.product(name: "Crypto", package: "swift-crypto")]),
        .executableTarget(name: "PacketParserFuzzer", dependencies: ["Wire"]),
        // RFC 8803 Convert messages; `Sources/Convert` is a symlink to the main package's.
        .target(name: "Convert"),
        .executableTarget(name: "ConvertFuzzer", dependencies: ["Convert"]),
    ],
    swiftLanguageModes: [.v5]
)
