// swift-tools-version: 6.0
// libFuzzer harnesses for Ocelli's readers: one executable per reader, built with
// `-Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library` (libFuzzer brings `main`; see run.sh). A separate package, so the main build and the README's two
// commands never need it.
import PackageDescription

let readers = ["DarknetCfg", "DarknetWeights", "DarknetData", "IDX", "SafeTensors", "ModelJSON", "Image",
               "VOC", "YOLO", "COCO", "Detections"]

let package = Package(
    name: "OcelliFuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "Ocelli", path: "..")],
    targets: [
        .target(name: "CFuzzDriver"),
        .target(name: "FuzzSupport", dependencies: ["CFuzzDriver", .product(name: "Ocelli", package: "Ocelli")]),
    ] + readers.map { reader in
        .executableTarget(
            name: "Fuzz\(reader)",
            dependencies: ["FuzzSupport", "CFuzzDriver", .product(name: "Ocelli", package: "Ocelli")])
    },
    swiftLanguageModes: [.v5]
)
