import ArgumentParser
import Foundation
import Ocelli

struct OcelliCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocelli",
        abstract: "Deep learning for vision, in Swift.",
        subcommands: [Debug.self, Mnist.self, Detect.self, Train.self, Detector.self, Partial.self, Summary.self, Map.self, Anchors.self, Convert.self, Datasets.self, Examples.self, Bench.self])
}

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure Ocelli's kernels.",
        subcommands: [Kernels.self, Vision.self, BenchDetect.self, BenchDetection.self, AugmentBench.self, BenchTrain.self, BenchSSD.self])
}

struct Kernels: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "GEMM GFLOP/s and conv2d forward/backward milliseconds at the course's shapes.")

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @OptionGroup var threadOptions: ThreadOptions

    @Option(help: "GEMM backend: blas (the platform BLAS when present) or builtin.")
    var backend: String?

    @Option(help: "Convolution algorithm: automatic, direct, im2col, dot.")
    var algorithm: String = "automatic"

    @Flag(help: "Also time each convolution algorithm and each gradient separately.")
    var detail = false

    @Option(help: "Seconds of repeats per measurement.")
    var budget: Double = 0.4

    func validate() throws {
        if let b = backend, GEMM.Backend(rawValue: b) == nil { throw ValidationError("--backend must be blas or builtin, got '\(b)'") }
        if ConvolutionAlgorithm(rawValue: algorithm) == nil || algorithm == "naive" {
            throw ValidationError("--algorithm must be automatic, direct, im2col or dot, got '\(algorithm)'")
        }
        if !(budget > 0 && budget <= 3_600) { throw ValidationError("--budget must be between 0 and 3600 seconds, got \(budget)") }
    }

    func run() throws {
        threadOptions.apply()
        if let b = backend {
            if b == "blas" && !BLAS.isAvailable {
                StandardError.write("warning: no BLAS found (install libopenblas0-pthread); using the built-in kernel\n")
            }
            GEMM.backend = GEMM.Backend(rawValue: b)!
        }
        let report = KernelBenchmark.run(budget: budget, algorithm: ConvolutionAlgorithm(rawValue: algorithm)!)
        if json {
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            print(String(data: try enc.encode(report), encoding: .utf8)!)
            return
        }
        print("threads: \(report.threads)   gemm backend: \(report.blas)   built-in kernel: \(report.kernel_isa)")
        print("")
        print("GEMM                      GFLOP/s")
        for g in report.gemm {
            print(String(format: "  %5d x %5d x %5d   %8.1f", g.m, g.n, g.k, g.gflops))
        }
        print("")
        print("conv2d                    forward ms   backward ms")
        for c in report.conv {
            print("  " + c.name.padding(toLength: 22, withPad: " ", startingAt: 0)
                  + String(format: " %10.2f   %11.2f", c.forward_ms, c.backward_ms))
        }
        if detail {
            print("")
            for (name, timings) in KernelBenchmark.detail(budget: budget) {
                print("  " + name.padding(toLength: 22, withPad: " ", startingAt: 0)
                      + timings.map { String(format: "%@ %.2f", $0.0, $0.1) }.joined(separator: "  "))
            }
        }
    }
}

struct Vision: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Decode an image and letterbox it to a square network input, as `ocelli detect` will.")

    @Argument(help: "Image file (default: the bundled Data/images/dog.jpg).")
    var image: String = BundledData.image("dog.jpg")

    @Option(help: "Network input size.")
    var size: Int = 416

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if !(1...8_192).contains(size) { throw ValidationError("--size must be between 1 and 8192, got \(size)") }
    }

    func run() throws {
        guard size > 0 else { throw ValidationError("--size must be positive") }
        let (decode, letterbox) = try VisionBenchmark.decodeAndLetterbox(path: image, size: size, repetitions: 20)
        if json {
            print("{\"image\":\"\(image)\",\"size\":\(size),\"decode_ms\":\(decode),\"letterbox_ms\":\(letterbox)}")
        } else {
            print(String(format: "%@: decode %.2f ms, letterbox to %dx%d %.2f ms (best of 20)", image, decode, size, size, letterbox))
        }
    }
}

struct AugmentBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "augment",
        abstract: "Images per second of typical augmentation pipelines producing square network inputs.",
        discussion: "--json prints one JSON array, an object per pipeline.")

    @Argument(help: "Image file (default: the bundled Data/images/dog.jpg).")
    var image: String = BundledData.image("dog.jpg")

    @Option(help: "Network input size.")
    var size: Int = 416

    @Option(help: "Seconds per measurement.")
    var seconds: Double = 1

    @Option(help: "Threads for the all-threads figure.")
    var threads: Int = 2

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if !(1...8_192).contains(size) { throw ValidationError("--size must be between 1 and 8192, got \(size)") }
        if !(seconds > 0 && seconds <= 3_600) { throw ValidationError("--seconds must be between 0 and 3600, got \(seconds)") }
        if !(1...1_024).contains(threads) { throw ValidationError("--threads must be between 1 and 1024, got \(threads)") }
    }

    func run() throws {
        guard size > 0, seconds > 0, threads > 0 else { throw ValidationError("--size, --seconds and --threads must be positive") }
        let timings = try VisionBenchmark.augmentation(path: image, size: size, seconds: seconds, threads: threads)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(data: try encoder.encode(timings), encoding: .utf8)!)
            return
        }
        print("\(image) -> \(size)x\(size), images/s")
        print("                                                       augmentation only   with JPEG decode    \(threads) threads")
        print("  pipeline                                              wall    per CPU-s   wall    per CPU-s   with decode")
        for t in timings {
            print("  " + t.name.padding(toLength: 52, withPad: " ", startingAt: 0)
                  + String(format: " %6.0f   %8.0f   %6.0f   %8.0f   %8.0f", t.imagesPerSecond, t.imagesPerCPUSecond,
                           t.imagesPerSecondWithDecode, t.imagesPerCPUSecondWithDecode, t.imagesPerSecondAllThreads))
        }
    }
}

// Saved models may hold Darknet layers (`ocelli summary DIR`): teach `Model.load` them first.
DarknetLayers.register()
OutputStreams.install()
// OcelliCommand.main(), with MPI's ending on a data-parallel rank (`Distributed`).
do {
    var command = try OcelliCommand.parseAsRoot()
    try command.run()
    Distributed.end(error: nil)
} catch {
    Distributed.end(error: error)
    OcelliCommand.exit(withError: error)
}
