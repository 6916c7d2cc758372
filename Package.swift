// swift-tools-version: 6.0
import PackageDescription

let package = Package(
    name: "Ocelli",
    platforms: [.macOS(.v13)],
    products: [
        // Public API
        .library(name: "Ocelli", targets: ["Ocelli"]),
        .library(name: "OcelliTensor", targets: ["OcelliTensor"]),
        .executable(name: "ocelli", targets: ["ocelli"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Public API
        .target(name: "Ocelli", dependencies: ["OcelliTensor"]),
        .target(name: "OcelliTensor", dependencies: ["COcelliKernels"]),
        .executableTarget(
            name: "ocelli",
            dependencies: [
                "Ocelli",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Implementation details: the innermost SIMD micro-kernels. They carry
        // `__attribute__((target("avx2,fma")))` and are chosen at run time, so no
        // unsafe flags are needed and older CPUs take the portable path.
        .target(name: "COcelliKernels", cSettings: [.headerSearchPath("."), .define("NDEBUG")]),

        // Tests
        .target(name: "OcelliTestSupport", dependencies: ["OcelliTensor"], path: "Tests/OcelliTestSupport"),
        .testTarget(name: "OcelliTensorTests", dependencies: ["OcelliTensor", "OcelliTestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
