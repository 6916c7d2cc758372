import ArgumentParser
import Foundation
import Ocelli
#if canImport(Glibc)
import Glibc
#endif

/// `ocelli mnist`: the course's first DNN (or a small convnet) trained on MNIST, Keras-style.
struct Mnist: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train the course's first DNN on MNIST with Keras-style output, then evaluate it on the test set.",
        discussion: "--json ends the output with one JSON line: model, epochs, test_accuracy, test_loss, epoch_seconds, peak_rss_mb.")

    enum ModelKind: String, ExpressibleByArgument, CaseIterable {
        case seed, convnet
    }

    @Option(help: "seed: the course's model (Conv2D 32 3x3 → Dropout → Conv2D 10 1x1 → Dropout → Conv2D 10 26x26 → softmax); convnet: Conv 32 → MaxPool → Conv 64 → MaxPool → Dropout → Dense 10.")
    var model: ModelKind = .seed

    @Option(help: "Epochs (default: 10 for seed, 5 for convnet).")
    var epochs: Int?

    @Option(name: .customLong("batch-size"), help: "Batch size (default: 32 for seed, 128 for convnet).")
    var batchSize: Int?

    @Option(help: "Random seed for initialization, shuffling and dropout.")
    var seed: UInt64 = 1

    @Option(help: "Save the trained model (architecture + weights) into this directory.")
    var save: String?

    @Option(help: "Write the training history (loss and accuracy per epoch) as an SVG chart.")
    var plot: String?

    @Option(help: "Folder with the four MNIST .gz files (default: the copy in this repository's Data/mnist).")
    var data: String?

    @Option(help: "Use only the first N training images (quick runs).")
    var limit: Int?

    @OptionGroup var threadOptions: ThreadOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @Option(help: "Keras verbosity: 0 silent, 1 progress bar, 2 one line per epoch (default: 1 on a terminal, else 2).")
    var verbose: Int?

    func validate() throws {
        if let e = epochs, !(1...10_000).contains(e) { throw ValidationError("--epochs must be between 1 and 10000, got \(e)") }
        if let b = batchSize, !(1...65_536).contains(b) { throw ValidationError("--batch-size must be between 1 and 65536, got \(b)") }
        if let v = verbose, !(0...2).contains(v) { throw ValidationError("--verbose must be 0, 1 or 2") }
        if let l = limit, l < 1 { throw ValidationError("--limit must be at least 1") }
    }

    static func build(_ kind: ModelKind) -> Sequential {
        kind == .seed ? CourseModels.mnistSeed() : CourseModels.mnistConvnet()
    }

    func run() throws {
        threadOptions.apply()
        // Under mpirun: this rank's share of every batch (rank 0 prints and writes).
        let dp: DataParallel?
        do { dp = try Distributed.setUp() } catch { throw failure("\(error)") }
        let primary = dp?.isPrimary ?? true
        let epochs = self.epochs ?? (model == .seed ? 10 : 5)
        let batchSize = self.batchSize ?? (model == .seed ? 32 : 128)
        let mnist = try MNIST(directory: data ?? MNIST.defaultDirectory)
        var xTrain = mnist.trainImages, yTrain = toCategorical(mnist.trainLabels, numClasses: 10)
        if let l = limit, l < xTrain.shape[0] {
            xTrain = xTrain.sliced(axis: 0, 0..<l); yTrain = yTrain.sliced(axis: 0, 0..<l)
        }
        let yTest = toCategorical(mnist.testLabels, numClasses: 10)

        // Where the results go must be writable before the training, not found out after it.
        do {
            if let save { try ensureWritableDirectory(save) }
            if let plot { try ensureWritableDirectory(folder(of: plot)) }
            // The plot is written after the model: it may not be one of the model's files.
            try refuseOverwritingInputs([("--plot", plot)],
                                        inputs: [data ?? MNIST.defaultDirectory] + (save.map { s in ["model.json", "model.safetensors"].map { (s as NSString).appendingPathComponent($0) } } ?? []))
            try refuseOverwritingInputs([("--save", save.map { ($0 as NSString).appendingPathComponent("model.json") })], inputs: [data ?? MNIST.defaultDirectory])
        } catch { throw failure("\(error)") }

        RandomSeed.set(seed)
        let net = Mnist.build(model)
        net.dataParallel = dp
        if primary { net.printSummary() }
        if let dp, primary { print("Data-parallel: \(dp.size) processes, \(batchSize) images per batch in all") }
        net.compile(optimizer: .adam(), loss: .categoricalCrossentropy(), metrics: [.accuracy])
        let verbosity = verbose.flatMap { Verbosity(rawValue: $0) } ?? .auto
        // Ctrl-C stops after the current batch; the model is still evaluated and saved.
        Interruption.install(message: !primary ? "" : "Interrupted: stopping after this batch\(save.map { ", then saving to \($0)" } ?? "") (Ctrl-C again quits at once)")
        let interrupt = LambdaCallback(onBatchEnd: { [weak net] _, _ in if Interruption.requested { net?.stopTraining = true } })
        let history = try net.fit(x: xTrain, y: yTrain, batchSize: batchSize, epochs: epochs, callbacks: [interrupt], verbose: verbosity)
        if let dp { try dp.checkInSync(net) }
        guard primary else { return }  // rank 0 evaluates, saves and reports
        let result = try net.evaluate(x: mnist.testImages, y: yTest, batchSize: 256)
        print(String(format: "Test loss: %.4f", result["loss"] ?? .nan))
        print(String(format: "Test accuracy: %.4f", result["accuracy"] ?? .nan))
        // A failed write is reported at the end, after the other outputs (the JSON line too).
        var failed: String?
        if let save {
            do {
                try net.save(to: save)
                print("Saved the model to \(save)")
            } catch {
                // Never lose the trained model: put it somewhere that works and say where.
                let fallback = (NSTemporaryDirectory() as NSString)
                    .appendingPathComponent("ocelli-mnist-\(model.rawValue)-\(ProcessInfo.processInfo.processIdentifier)")
                failed = (try? net.save(to: fallback)) != nil
                    ? "\(error); the trained model was saved to \(fallback) instead" : "\(error)"
            }
        }
        if let plot {
            do {
                try history.writeSVG(to: plot)
                print("Wrote the training history to \(plot)")
            } catch { failed = [failed, "\(error)"].compactMap { $0 }.joined(separator: "\nerror: ") }
        }
        if json {
            var usage = rusage()
            getrusage(RUSAGE_SELF.rawValue, &usage)
            let object: [String: Any] = [
                "model": model.rawValue, "epochs": epochs, "batch_size": batchSize, "seed": seed,
                "test_accuracy": Double(result["accuracy"] ?? .nan), "test_loss": Double(result["loss"] ?? .nan),
                "epoch_seconds": history.epochSeconds, "peak_rss_mb": Double(usage.ru_maxrss) / 1024,
                "threads": Parallel.threadCount,
                "history": history.history.mapValues { $0.map(Double.init) },
                "interrupted": Interruption.requested,
                "images_per_second": Double(xTrain.shape[0] * history.epochSeconds.count) / max(history.epochSeconds.reduce(0, +), 1e-9),
            ].merging(Distributed.jsonFields(stepSeconds: history.epochSeconds.reduce(0, +))) { a, _ in a }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
        }
        if let failed { throw failure(failed) }
        if Interruption.requested { throw Interruption.exitCode }
    }
}
