import ArgumentParser
import Foundation
import Ocelli

/// `ocelli datasets`: data sets Ocelli makes itself.
struct Datasets: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make the project's data sets.",
        subcommands: [Digits.self])
}

extension DigitsDetection.Split: ExpressibleByArgument {}

/// `ocelli datasets digits`: the offline digits detection benchmark, in VOC layout.
struct Digits: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the digits detection data set (MNIST digits pasted on 256x256 scenes) in Pascal VOC layout.",
        discussion: """
            Each image is a 256x256 RGB scene (colour gradient, noise, a few strokes) with 1 to 6 MNIST \
            digits, 16 to 96 pixels tall, each an object "0"…"9" with the tight box of its visible pixels. \
            The recipe of ../shared/tools/make_digits_detection.py. Written under --out: JPEGImages/<id>.png, \
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

    @Option(help: "Threads (default: OCELLI_NUM_THREADS or every core).")
    var threads: Int?

    @Flag(help: "Print one JSON object: images, objects, seconds.")
    var json = false

    func validate() throws {
        if count < 0 { throw ValidationError("--count must be at least 0, got \(count)") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    func run() throws {
        let start = Date()
        let digits = try DigitsDetection.Digits(directory: mnist ?? MNIST.defaultDirectory)
        let dataset = try DigitsDetection.write(split: split, count: count, seed: seed, digits: digits,
                                                to: URL(fileURLWithPath: out), threads: threads)
        let seconds = Date().timeIntervalSince(start)
        if json {
            print(String(format: "{\"images\":%d,\"objects\":%d,\"seconds\":%.3f}", dataset.images.count, dataset.objectCount, seconds))
        } else {
            print(String(format: "%@: %d %@ images, %d digits in %.2f s", out, dataset.images.count, split.rawValue, dataset.objectCount, seconds))
        }
    }
}
