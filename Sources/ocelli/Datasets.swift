import ArgumentParser
import Foundation
import Ocelli

/// `ocelli datasets`: data sets Ocelli makes itself.
struct Datasets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the project's data sets.",
        subcommands: [Digits.self, Inspect.self])
}

extension DigitsDetection.Split: ExpressibleByArgument {}

/// `ocelli datasets digits`: the offline digits detection benchmark, in VOC layout.
struct Digits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the digits detection data set (MNIST digits pasted on 256x256 scenes) in Pascal VOC layout.",
        discussion: """
            --json prints one JSON object: images, objects, seconds.
            Each image is a 256x256 RGB scene (colour gradient, noise, a few strokes) with 1 to 6 MNIST \
            digits, 16 to 96 pixels tall, each an object "0"…"9" with the tight box of its visible pixels. \
            The recipe of the course's make_digits_detection.py. Written under --out: JPEGImages/<id>.png, \
            Annotations/<id>.xml, ImageSets/Main/<split>.txt, labels.txt. train draws MNIST training \
            images 0..<55000, val 55000..<60000. The same arguments give byte-identical files.
            """)

    @Option(help: "train or val.")
    var split: DigitsDetection.Split

    @Option(help: "Number of images.")
    var count: Int

    @Option(help: "Output folder (created if needed).")
    var out: String

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(help: "Folder with train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz (default: the bundled Data/mnist).")
    var mnist: String?

    @OptionGroup var threadOptions: ThreadOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if !(1...1_000_000).contains(count) { throw ValidationError("--count must be between 1 and 1000000, got \(count)") }
    }

    func run() throws {
        let start = Date()
        let digits = try DigitsDetection.Digits(directory: mnist ?? MNIST.defaultDirectory)
        let dataset = try DigitsDetection.write(split: split, count: count, seed: seed, digits: digits,
                                                to: URL(fileURLWithPath: out), threads: threadOptions.threads)
        let seconds = Date().timeIntervalSince(start)
        if json {
            print(String(format: "{\"images\":%d,\"objects\":%d,\"seconds\":%.3f}", dataset.images.count, dataset.objectCount, seconds))
        } else {
            print(String(format: "%@: %d %@ images, %d digits in %.2f s", out, dataset.images.count, split.rawValue, dataset.objectCount, seconds))
        }
    }
}

/// `ocelli datasets inspect`: what a detection data set holds, and how fast the loader reads it.
struct Inspect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise a detection data set (images, objects, classes, box sizes); optionally time the loader.")

    @Argument(help: "The data set: a VOC/YOLO/COCO folder, a YOLO list file or a COCO .json file.")
    var path: String

    @Option(help: "Layout: voc, yolo or coco (default: recognised from the files).")
    var format: DetectionDatasetFormat?

    @Option(help: "Split to read.")
    var split: String?

    @Option(help: "Time this many loader batches (0: do not time).")
    var batches: Int = 0

    @Option(name: .customLong("batch-size"), help: "Loader batch size.")
    var batchSize: Int = 16

    @Option(help: "Loader input size.")
    var size: Int = 416

    @Option(help: "Batches prefetched on a background thread (0: load synchronously).")
    var prefetch: Int = 2

    @Option(help: "Threads preparing the samples of a batch.")
    var workers: Int = 1

    @Option(name: .customLong("step-ms"), help: "Simulated training step per batch, in milliseconds of busy work on the calling thread.")
    var stepMilliseconds: Double = 0

    @Flag(help: "Time the loader with YOLOv3's augmentation: Darknet's jitter (0.3, placed, random flip) and HSV jitter (hue 0.1, saturation and exposure 1.5).")
    var augment = false

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if !(0...1_000_000).contains(batches) { throw ValidationError("--batches must be between 0 and 1000000, got \(batches)") }
        if !(1...4_096).contains(batchSize) { throw ValidationError("--batch-size must be between 1 and 4096, got \(batchSize)") }
        if !(1...8_192).contains(size) { throw ValidationError("--size must be between 1 and 8192, got \(size)") }
        if !(0...64).contains(prefetch) { throw ValidationError("--prefetch must be between 0 and 64, got \(prefetch)") }
        if !(1...64).contains(workers) { throw ValidationError("--workers must be between 1 and 64, got \(workers)") }
        if !(stepMilliseconds >= 0 && stepMilliseconds <= 3_600_000) {
            throw ValidationError("--step-ms must be between 0 and 3600000, got \(stepMilliseconds)")
        }
    }

    func run() throws {
        let dataset = try DetectionDataset.load(URL(fileURLWithPath: path), format: format, split: split)
        let objects = dataset.images.flatMap(\.objects)
        var perClass = [Int](repeating: 0, count: dataset.classNames.count)
        for o in objects where perClass.indices.contains(o.classIndex) { perClass[o.classIndex] += 1 }
        let counts = dataset.images.map(\.objects.count)
        let heights = objects.map(\.height).sorted(), widths = objects.map(\.width).sorted()
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        func median(_ v: [Double]) -> Double { v.isEmpty ? 0 : v[v.count / 2] }
        var histogram = [Int](repeating: 0, count: (counts.max() ?? 0) + 1)
        for c in counts { histogram[c] += 1 }

        var rate: Double? = nil
        if batches > 0 {
            guard !dataset.images.isEmpty else { throw ValidationError("\(path): the data set has no images, so there are no batches to time") }
            let transform = augment
                ? Augment.Sequential([Augment.DarknetJitter(width: size, height: size, jitter: 0.3, mode: .place, flip: true),
                                      Augment.DarknetHSV(hue: 0.1, saturation: 1.5, exposure: 1.5)]).transform
                : nil
            let loader = DetectionLoader(dataset: dataset, batchSize: batchSize, inputSize: size, seed: 1, prefetch: prefetch,
                                         workers: workers, transform: transform)
            var done = 0, epoch = 0
            let start = Date()
            outer: while done < batches {
                let iterator = loader.epoch(epoch)
                while let _ = try iterator.next() {
                    if stepMilliseconds > 0 {
                        let until = Date().addingTimeInterval(stepMilliseconds / 1000)
                        while Date() < until {}
                    }
                    done += 1
                    if done == batches { break outer }
                }
                epoch += 1
            }
            rate = Double(done) / Date().timeIntervalSince(start)
        }
        if json {
            var fields = [
                "\"format\":\"\(dataset.format.rawValue)\"", "\"images\":\(dataset.images.count)", "\"objects\":\(objects.count)",
                "\"classes\":\(dataset.classNames.count)", "\"objects_per_image\":\(mean(counts.map(Double.init)))",
                "\"objects_per_image_histogram\":\(histogram)", "\"per_class\":\(perClass)",
                "\"box_height_mean\":\(mean(heights))", "\"box_height_median\":\(median(heights))",
                "\"box_height_min\":\(heights.first ?? 0)", "\"box_height_max\":\(heights.last ?? 0)",
                "\"box_width_mean\":\(mean(widths))",
            ]
            if let rate { fields.append("\"batches_per_second\":\(rate)") }
            print("{" + fields.joined(separator: ",") + "}")
            return
        }
        print("\(path) (\(dataset.format.rawValue)\(dataset.split.map { ", split \($0)" } ?? "")): \(dataset.images.count) images, \(objects.count) objects, \(dataset.classNames.count) classes")
        print(String(format: "objects per image: mean %.3f, histogram %@", mean(counts.map(Double.init)), histogram.description))
        print(String(format: "box height: mean %.2f, median %.1f, min %.1f, max %.1f; box width: mean %.2f",
                     mean(heights), median(heights), heights.first ?? 0, heights.last ?? 0, mean(widths)))
        print("per class: " + zip(dataset.classNames, perClass).map { "\($0) \($1)" }.joined(separator: ", "))
        if let rate {
            print(String(format: "loader: %.2f batches/s (%.1f images/s) of %d at %dx%d, prefetch %d, workers %d, step %.0f ms%@",
                         rate, rate * Double(batchSize), batchSize, size, size, prefetch, workers, stepMilliseconds,
                         augment ? ", YOLOv3 augmentation" : ""))
        }
    }
}
