// swift-tools-version: 6.1
import PackageDescription

let package = Package(
    name: "Ocelli",
    platforms: [.macOS(.v13)],
    products: [
        // Public API
        .library(name: "Ocelli", targets: ["Ocelli"]),
        .library(name: "OcelliTensor", targets: ["OcelliTensor"]),
        .library(name: "OcelliNN", targets: ["OcelliNN"]),
        .library(name: "OcelliVision", targets: ["OcelliVision"]),
        .library(name: "OcelliDetection", targets: ["OcelliDetection"]),
        .library(name: "OcelliDarknet", targets: ["OcelliDarknet"]),
        .executable(name: "ocelli", targets: ["ocelli"]),
    ],
    traits: [
        // Off by default: the default build and the README's commands need no MPI.
        .trait(name: "MPI", description: "Data-parallel training over MPI (Open MPI: apt install libopenmpi-dev openmpi-bin). "
               + "Build with `swift build -c release --traits MPI`, run with `mpirun -np N .build/release/ocelli train …`."),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        // Public API
        .target(name: "Ocelli", dependencies: ["OcelliTensor", "OcelliNN", "OcelliVision", "OcelliDetection", "OcelliDarknet"]),
        .target(name: "OcelliNN", dependencies: ["OcelliTensor"]),
        .target(name: "OcelliTensor", dependencies: ["COcelliKernels"]),
        .target(name: "OcelliVision", dependencies: ["OcelliTensor", "COcelliJPEG", "CPNG", "CZlib"]),
        // Boxes, IoU, NMS, VOC/COCO evaluation, anchors; detector heads, losses and training next.
        .target(name: "OcelliDetection", dependencies: ["OcelliTensor", "OcelliNN", "OcelliVision"]),
        .target(name: "OcelliDarknet", dependencies: ["OcelliTensor", "OcelliNN", "OcelliVision", "OcelliDetection"]),
        // The MPI collectives behind OcelliNN's `Collective` (data-parallel training). Without the
        // MPI trait it compiles to a stub that only recognises a launch by mpirun and says how to
        // build with MPI.
        .target(name: "OcelliMPI", dependencies: ["OcelliNN", .target(name: "CMPI", condition: .when(traits: ["MPI"]))]),
        .executableTarget(
            name: "ocelli",
            dependencies: [
                "Ocelli", "OcelliMPI",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // Implementation details: the innermost SIMD micro-kernels. They carry
        // `__attribute__((target("avx2,fma")))` and are chosen at run time, so no
        // unsafe flags are needed and older CPUs take the portable path.
        .target(name: "COcelliKernels", cSettings: [.headerSearchPath("."), .define("NDEBUG")]),

        // libjpeg's error handler must not return, so decoding and encoding run in C behind
        // setjmp; every libjpeg error or corrupt-data warning comes back as a status and a message.
        .target(name: "COcelliJPEG", dependencies: ["CJPEG"]),

        // System libraries (module maps with a shim header, found through pkg-config).
        .systemLibrary(
            name: "CJPEG", path: "Sources/CJPEG", pkgConfig: "libjpeg",
            providers: [.apt(["libjpeg62-turbo-dev"]), .brew(["jpeg-turbo"])]),
        .systemLibrary(
            name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]),
        .systemLibrary(
            name: "CMPI", path: "Sources/CMPI", pkgConfig: "ompi-c",
            providers: [.apt(["libopenmpi-dev", "openmpi-bin"]), .brew(["open-mpi"])]),
        .systemLibrary(
            name: "CPNG", path: "Sources/CPNG", pkgConfig: "libpng16",
            providers: [.apt(["libpng-dev"]), .brew(["libpng"])]),

        // Tests
        .target(name: "OcelliTestSupport", dependencies: ["OcelliTensor"], path: "Tests/OcelliTestSupport"),
        .testTarget(name: "OcelliTensorTests", dependencies: ["OcelliTensor", "OcelliTestSupport"]),
        // Fixtures made by Scripts/make_concept_fixtures.py (PyTorch and Keras as references).
        .testTarget(
            name: "OcelliNNTests", dependencies: ["OcelliNN", "OcelliVision", "OcelliTestSupport"],
            exclude: ["Fixtures"]),
        // Fixtures are read by path (relative to #filePath), made by Scripts/make_vision_fixtures.py.
        .testTarget(
            name: "OcelliVisionTests", dependencies: ["OcelliVision", "OcelliTestSupport"],
            exclude: ["Fixtures"]),
        // Fixtures made by Scripts/make_detection_eval_fixtures.py (py-faster-rcnn's voc_eval, pycocotools).
        .testTarget(
            name: "OcelliDetectionTests", dependencies: ["OcelliDetection", "OcelliVision", "OcelliTestSupport"],
            exclude: ["Fixtures"]),
        // Fixtures made by Scripts/make_darknet_fixtures.py (OpenCV's Darknet importer as reference).
        .testTarget(
            name: "OcelliDarknetTests", dependencies: ["OcelliDarknet", "OcelliDetection", "OcelliTestSupport"],
            exclude: ["Fixtures"]),
    ],
    swiftLanguageModes: [.v5]
)
