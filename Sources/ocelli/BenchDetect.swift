import ArgumentParser
import Foundation
import Ocelli

/// `ocelli bench detect`: the network forward pass of a Darknet model, as OpenCV's DNN module is
/// timed by Benchmarks/peers/bench_darknet_peers.py.
struct BenchDetect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Time a Darknet network: batch-1 latency of the forward pass, the whole detect pipeline, and throughput over many images.")

    @Option(help: "The Darknet .cfg file.")
    var cfg: String = "../shared/models/yolov3-tiny/yolov3-tiny.cfg"

    @Option(help: "Weights (default: the network's own random initialisation; timings do not depend on the values).")
    var weights: String?

    @Option(help: "The image to detect on.")
    var image: String = "../shared/data/images/dog.jpg"

    @Option(help: "Network input width and height (default: the cfg's).")
    var size: Int?

    @Option(help: "Timed batch-1 forward passes (the median is reported).")
    var repeats: Int = 20

    @Option(help: "Images for the throughput run.")
    var images: Int = 100

    @Option(help: "Batch size of the throughput run.")
    var batch: Int = 1

    @Option(help: "Threads (default: OCELLI_NUM_THREADS or every core).")
    var threads: Int?

    @Flag(help: "Print one JSON object.")
    var json = false

    func run() throws {
        guard repeats >= 1, images >= 1, batch >= 1 else { throw ValidationError("--repeats, --images and --batch must be at least 1") }
        if let t = threads { Parallel.threadCount = t }
        let network = try DarknetNetwork(cfg: cfg, width: size, height: size)
        if let weights { try network.loadWeights(weights) }
        let picture = try Image(contentsOf: image)
        let input = DetectPipeline.input(picture, network: network, fit: .letterbox).reshaped([1, network.height, network.width, 3])
        func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

        // Warm-up: folds batch norms, grows the thread pool and the allocator's arenas.
        for _ in 0..<3 { _ = network.forward(input) }
        var forward: [Double] = []
        for _ in 0..<repeats {
            let t0 = now()
            _ = network.forward(input)
            forward.append(now() - t0)
        }
        var pipeline: [Double] = []
        for _ in 0..<max(3, repeats / 4) {
            let t0 = now()
            let decoded = try Image(contentsOf: image)
            let x = DetectPipeline.input(decoded, network: network, fit: .letterbox).reshaped([1, network.height, network.width, 3])
            let out = network.forward(x)
            _ = network.detections(outputs: out, imageWidth: decoded.width, imageHeight: decoded.height, threshold: 0.25)
            pipeline.append(now() - t0)
        }
        let batchInput = Tensor.stack(Array(repeating: input.reshaped([network.height, network.width, 3]), count: batch), axis: 0)
        _ = network.forward(batchInput)
        let t0 = now()
        var done = 0
        while done < images {
            let n = min(batch, images - done)
            _ = network.forward(n == batch ? batchInput : batchInput.sliced(axis: 0, 0..<n))
            done += n
        }
        let total = now() - t0
        func median(_ v: [Double]) -> Double { let s = v.sorted(); return s[s.count / 2] }
        let report: [String: Any] = [
            "cfg": (cfg as NSString).lastPathComponent, "width": network.width, "height": network.height,
            "threads": Parallel.threadCount, "bflops": network.totalBFLOPs,
            "latency_ms": median(forward), "latency_best_ms": forward.min()!, "pipeline_ms": median(pipeline),
            "throughput_images": images, "throughput_batch": batch, "throughput_images_per_s": Double(images) / (total / 1000),
        ]
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
        } else {
            print(String(format: "%@ %dx%d, %d threads, %.3f BFLOPs", report["cfg"] as! String, network.width, network.height,
                         Parallel.threadCount, network.totalBFLOPs))
            print(String(format: "forward (batch 1): median %.1f ms, best %.1f ms", median(forward), forward.min()!))
            print(String(format: "decode + letterbox + forward + boxes + NMS: median %.1f ms", median(pipeline)))
            print(String(format: "throughput: %d images in batches of %d: %.1f images/s", images, batch, Double(images) / (total / 1000)))
        }
    }
}
