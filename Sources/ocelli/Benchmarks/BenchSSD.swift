import ArgumentParser
import Foundation
import Ocelli

/// `ocelli bench ssd`: images per second of a whole SSD training step (forward in training
/// mode, the MultiBox loss with its matching and hard-negative mining, backward, Adam's update)
/// on random images with random boxes: what `ocelli train --arch` spends on the network, without
/// the loader. Benchmarks/peers/bench_ssd_peers.py runs PyTorch on the same step beside it.
struct BenchSSD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ssd",
        abstract: "Images per second of an SSD training step (forward, MultiBox loss, backward, Adam) on random images and boxes.",
        discussion: """
            --json prints one object: arch, classes, batch, threads, steps, default_boxes, parameters, \
            train_images_per_s (batch ÷ the median step), step_median_ms, step_best_ms, steps_ms, loss (the last step's), \
            matched (positives in the last batch), peak_rss_mb.
            """)

    @Option(help: "The architecture: \(SSDModels.names.joined(separator: " or ")).")
    var arch: String = "ssd300"

    @Option(help: "Object classes (without the background): 20 as VOC (ssd300), 10 (ssd-digits).")
    var classes: Int?

    @Option(help: "Images per step.")
    var batch: Int = 8

    @Option(help: "Timed steps after one warm-up step (the median is reported).")
    var steps: Int = 5

    @Option(help: "Objects per image: each image gets between 1 and this many random boxes.")
    var objects: Int = 4

    @OptionGroup var threadOptions: ThreadOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        guard SSDModels.names.contains(arch.lowercased()) else {
            throw ValidationError("--arch must be one of \(SSDModels.names.joined(separator: ", ")), got '\(arch)'")
        }
        if let c = classes, !(1...1_000).contains(c) { throw ValidationError("--classes must be between 1 and 1000, got \(c)") }
        guard (1...256).contains(batch) else { throw ValidationError("--batch must be between 1 and 256, got \(batch)") }
        guard (1...10_000).contains(steps) else { throw ValidationError("--steps must be between 1 and 10000, got \(steps)") }
        guard (1...100).contains(objects) else { throw ValidationError("--objects must be between 1 and 100, got \(objects)") }
    }

    /// A batch of uniform-noise images with 1…`objects` random boxes each (10–60% of the side).
    static func randomBatch(size: Int, batch: Int, classes: Int, objects: Int, seed: UInt64) -> DetectionBatch {
        var g = SeededGenerator(seed: seed)
        let images = Tensor.uniform([batch, size, size, 3], seed: seed &+ 1)
        var all: [[ObjectAnnotation]] = []
        for _ in 0..<batch {
            let n = Int.random(in: 1...objects, using: &g)
            all.append((0..<n).map { _ in
                let w = Double.random(in: 0.1...0.6, using: &g), h = Double.random(in: 0.1...0.6, using: &g)
                let x = Double.random(in: 0...(1 - w), using: &g), y = Double.random(in: 0...(1 - h), using: &g)
                let c = Int.random(in: 0..<classes, using: &g)
                let s = Double(size)
                return ObjectAnnotation(classIndex: c, className: "\(c)", xmin: x * s, ymin: y * s, xmax: (x + w) * s, ymax: (y + h) * s)
            })
        }
        let most = all.map(\.count).max() ?? 1
        var rows = [Float](repeating: 0, count: batch * most * 5)
        for (i, objs) in all.enumerated() {
            for j in 0..<most {
                let r = (i * most + j) * 5
                if j < objs.count {
                    let o = objs[j]
                    rows[r] = Float(o.classIndex); rows[r + 1] = Float(o.xmin); rows[r + 2] = Float(o.ymin)
                    rows[r + 3] = Float(o.xmax); rows[r + 4] = Float(o.ymax)
                } else { rows[r] = -1 }
            }
        }
        return DetectionBatch(images: images, boxes: Tensor(shape: [batch, most, 5], scalars: rows), counts: all.map(\.count),
                              objects: all, indices: Array(0..<batch), width: size, height: size, epoch: 0, index: 0)
    }

    func run() throws {
        threadOptions.apply()
        RandomSeed.set(1)
        let (model, boxes): (Model, SSDDefaultBoxes)
        do { (model, boxes) = try SSDModels.named(arch, classes: classes) } catch { throw failure("\(error)") }
        let classCount = classes ?? (arch.lowercased() == "ssd300" ? 20 : 10)
        let loss = MultiBoxLoss(defaultBoxes: boxes, classes: classCount)
        model.compile(optimizer: Adam(learningRate: 1e-4), loss: loss)
        let data = Self.randomBatch(size: boxes.imageSize, batch: batch, classes: classCount, objects: objects, seed: 7)
        let input = Batch(data.images, data)

        var lastLoss: Float = 0
        var seed: UInt64 = 0
        func step() throws { seed += 1; lastLoss = try model.trainStep(input, seed: seed).loss }
        try step()  // warm-up: buffers, Winograd transforms of the filters
        var times: [Double] = []
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try step()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        guard lastLoss.isFinite else { throw failure("the MultiBox loss is \(lastLoss) after \(steps + 1) steps") }
        let sorted = times.sorted()
        let median = sorted[sorted.count / 2]
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let rss = Double(usage.ru_maxrss) / 1024
        let parameters = model.parameters.reduce(0) { $0 + $1.count }
        let perSecond = Double(batch) / (median / 1000)
        if json {
            let object: [String: Any] = [
                "arch": arch.lowercased(), "classes": classCount, "batch": batch, "threads": Parallel.threadCount, "steps": steps,
                "default_boxes": boxes.count, "parameters": parameters, "train_images_per_s": perSecond,
                "step_median_ms": median, "step_best_ms": sorted[0], "steps_ms": times, "loss": Double(lastLoss),
                "matched": loss.lastTerms.matched, "peak_rss_mb": rss,
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("\(arch.lowercased()), \(classCount) classes, \(boxes.count) default boxes, \(parameters) parameters; batch \(batch), \(Parallel.threadCount) threads")
        print(String(format: "training step (forward, MultiBox loss, backward, Adam): median %.1f ms, best %.1f ms of %d → %.2f images/s",
                     median, sorted[0], steps, perSecond))
        print(String(format: "last loss %.4f (%d matched default boxes); peak RSS %.0f MB", lastLoss, loss.lastTerms.matched, rss))
    }
}
