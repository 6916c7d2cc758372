import ArgumentParser
import Foundation
import Ocelli

/// `ocelli bench detect`: the network forward pass of a Darknet model, as OpenCV's DNN module is
/// timed by Benchmarks/peers/bench_darknet_peers.py.
struct BenchDetect: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Time a Darknet network: batch-1 latency of the forward pass, the whole detect pipeline, and throughput over many images.")

    @Option(help: "The Darknet .cfg file, or the name of a bundled one (default: the bundled yolov3-tiny.cfg).")
    var cfg: String = BundledData.cfg("yolov3-tiny.cfg")

    @Option(help: "Weights (default: the network's own random initialisation). The forward pass does not depend on the values; the pipeline does: random weights find thousands of boxes, which makes NMS its largest cost.")
    var weights: String?

    @Option(help: "The image to detect on (default: the bundled Data/images/dog.jpg).")
    var image: String = BundledData.image("dog.jpg")

    @Option(help: "Network input width and height (default: the cfg's).")
    var size: Int?

    @Option(help: "Timed batch-1 forward passes (the median is reported).")
    var repeats: Int = 20

    @Option(help: "Images for the throughput run.")
    var images: Int = 100

    @Option(help: "Batch size of the throughput run.")
    var batch: Int = 1

    @Option(name: .customLong("train-batch"), help: "Also time training steps (forward in training mode + backward of a mean-square loss on the heads; the YOLO loss itself is cheap next to them) with this batch size; 0 skips.")
    var trainBatch: Int = 0

    @Option(name: .customLong("train-steps"), help: "Timed training steps after one warm-up step (the median is reported).")
    var trainSteps: Int = 3

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Also time each layer alone (best of 5, batch 1, on random inputs of its shape).")
    var layers = false

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if let size, size < 32 || size > 8_192 || size % 32 != 0 { throw ValidationError("--size must be a multiple of 32 from 32 to 8192, got \(size)") }
        for (name, v, range) in [("--repeats", repeats, 1...100_000), ("--images", images, 1...100_000), ("--batch", batch, 1...1_024),
                                 ("--train-batch", trainBatch, 0...1_024), ("--train-steps", trainSteps, 1...100_000)] where !range.contains(v) {
            throw ValidationError("\(name) must be between \(range.lowerBound) and \(range.upperBound), got \(v)")
        }
    }

    func run() throws {
        guard repeats >= 1, images >= 1, batch >= 1, trainSteps >= 1, trainBatch >= 0 else {
            throw ValidationError("--repeats, --images, --batch and --train-steps must be at least 1, --train-batch at least 0")
        }
        threadOptions.apply()
        let network = try DarknetNetwork(cfg: BundledData.cfgNamed(cfg) ?? cfg, width: size, height: size)
        guard !network.heads.isEmpty else { throw ValidationError("\(cfg) has no [yolo], [region] or [detection] layer to detect with") }
        if let weights { try network.loadWeights(weights) }
        let picture = try Image(contentsOf: image)
        let input = network.input(for: picture, fit: .letterbox).reshaped([1, network.height, network.width, 3])
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
        var boxes = 0
        for _ in 0..<max(3, repeats / 4) {
            let t0 = now()
            let decoded = try Image(contentsOf: image)
            let x = network.input(for: decoded, fit: .letterbox).reshaped([1, network.height, network.width, 3])
            let out = network.forward(x)
            boxes = network.detections(outputs: out, imageWidth: decoded.width, imageHeight: decoded.height, threshold: 0.25).count
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
        var trainImagesPerSecond: Double?
        if trainBatch > 0 {
            let x = Tensor.stack(Array(repeating: input.reshaped([network.height, network.width, 3]), count: trainBatch), axis: 0)
            func step() {
                var ctx = ForwardContext(training: true, seed: 1)
                let outs = network.model.forward([x], context: &ctx)
                let loss = outs.map { ($0 * 0.01).square().mean() }.reduce(Tensor(0), +)
                loss.backward()
            }
            step()
            var steps: [Double] = []
            for _ in 0..<trainSteps {
                let t = now()
                step()
                steps.append(now() - t)
            }
            trainImagesPerSecond = Double(trainBatch) / (median(steps) / 1000)
        }
        var perLayer: [[String: Any]] = []
        if layers {
            for info in network.layers {
                guard let layer = info.layer else { continue }
                let xs = layer.inputShapes.enumerated().map { Tensor.uniform([1] + $0.element, minimum: 0, maximum: 1, seed: UInt64($0.offset + 1)) }
                var best = Double.infinity
                for _ in 0..<6 {
                    let t = now()
                    _ = withoutGradients { () -> Tensor in
                        var ctx = ForwardContext(training: false)
                        return layer.forward(xs, context: &ctx)
                    }
                    best = min(best, now() - t)
                }
                perLayer.append(["index": info.index, "type": info.type, "ms": best, "bflops": info.bflops])
            }
        }
        var report: [String: Any] = [
            "cfg": (cfg as NSString).lastPathComponent, "width": network.width, "height": network.height,
            "threads": Parallel.threadCount, "bflops": network.totalBFLOPs,
            "latency_ms": median(forward), "latency_best_ms": forward.min()!, "pipeline_ms": median(pipeline), "pipeline_boxes": boxes,
            "throughput_images": images, "throughput_batch": batch, "throughput_images_per_s": Double(images) / (total / 1000),
        ]
        if let t = trainImagesPerSecond { report["train_images_per_s"] = t; report["train_batch"] = trainBatch }
        if layers { report["layers"] = perLayer }
        if json {
            let data = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
        } else {
            print(String(format: "%@ %dx%d, %d threads, %.3f BFLOPs", report["cfg"] as! String, network.width, network.height,
                         Parallel.threadCount, network.totalBFLOPs))
            print(String(format: "forward (batch 1): median %.1f ms, best %.1f ms", median(forward), forward.min()!))
            print(String(format: "decode + letterbox + forward + boxes + NMS: median %.1f ms (%d boxes kept%@)", median(pipeline), boxes,
                         weights == nil ? "; random weights: give --weights for a real pipeline time" : ""))
            print(String(format: "throughput: %d images in batches of %d: %.1f images/s", images, batch, Double(images) / (total / 1000)))
            for l in perLayer {
                let flops = l["bflops"] as! Double, ms = l["ms"] as! Double
                print(String(format: "  %3d %-14@ %7.2f ms%@", l["index"] as! Int, l["type"] as! String, ms,
                             flops > 0 ? String(format: "  %6.1f GFLOP/s", flops / (ms / 1000)) : ""))
            }
            if let t = trainImagesPerSecond {
                print(String(format: "training steps (batch %d, forward + backward): %.1f images/s", trainBatch, t))
            }
        }
    }
}
