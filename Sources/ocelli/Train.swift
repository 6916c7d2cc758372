import ArgumentParser
import Foundation
import Ocelli

/// `ocelli train`: Darknet's `detector train` on any data set Ocelli reads.
struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a Darknet YOLO cfg ([yolo] or [region] heads) on a detection data set, as `darknet detector train` does, or an SSD (--arch).",
        discussion: """
            Darknet's loop: `batch` images per iteration in `subdivisions` passes, Darknet's loss, SGD with the cfg's \
            momentum, decay and learning-rate policy (burn_in, steps/scales, poly, …), the cfg's jitter, flip and \
            hue/saturation/exposure, and multi-scale sizes with random=1. Each iteration prints Darknet's line \
            (N: loss, avg loss, rate, seconds, images) and each head's statistics. Every --map-every iterations and at \
            the end: mAP@0.5 on the validation split; BACKUP/<cfg>_last.weights and, when the mAP improves, \
            <cfg>_best.weights (Darknet .weights with `seen`, and .safetensors beside), BACKUP/chart.svg (loss and mAP \
            over iterations); at the end <cfg>_final.weights. Every file is written atomically. Keras' side: \
            --progress keras (a progress bar with the ETA), --patience (EarlyStopping on the mAP), --csv (CSVLogger), \
            --tensorboard (event files). An image whose files are at fault (a bad label line, a box outside the \
            image, a missing or unreadable image, a missing label file) is left out with a warning naming the file \
            and line; an empty label file is an image without objects.
            --json ends with one JSON object: iterations, seconds, images_per_second, final_loss, best_map50, weights.
            --arch ssd-digits|ssd300 trains an SSD instead: Keras' loop (Adam with a cosine decay, the MultiBox loss, \
            --epochs), the Darknet line per batch (with the location and confidence terms) or --progress keras, mAP@0.5 on \
            the validation split after each epoch, BACKUP/<arch>_last and _best model folders (with the class names, for \
            `ocelli detect/map --model`), chart.svg, --patience, --csv and --tensorboard (per epoch), and --resume from \
            <arch>_last (the same weights as a run never interrupted). --json: iterations, epochs, seconds, \
            images_per_second, final_loss, best_map50, weights.
            """)

    @Option(help: "The Darknet .cfg file, or the name of a bundled one.")
    var cfg: String?

    @Option(help: "Train an SSD instead of a Darknet cfg: ssd-digits (a small SSD for 256x256 images) or ssd300 (VGG16). Keras' loop: Adam, --epochs, the MultiBox loss, validation mAP@0.5 after every epoch, BACKUP/<arch>_best and _last model folders (ocelli detect/map --model).")
    var arch: String?

    @Option(help: "Epochs of an SSD (--arch) training (default: 8 for ssd-digits, 30 for ssd300; with --resume, the interrupted run's).")
    var epochs: Int?

    @Option(help: "Adam's learning rate for an SSD (--arch) training (default: 0.001).")
    var learningRate: Float?

    @Option(help: "The learning rate over an SSD (--arch) training: cosine (Keras' CosineDecay from --learning-rate to 1% of it at the last step; the default) or constant.")
    var schedule: SSDSchedule?

    enum SSDSchedule: String, ExpressibleByArgument, CaseIterable { case cosine, constant }

    @Option(help: "The data set: a VOC, YOLO or COCO folder (or a YOLO list file / COCO .json).")
    var data: String

    @Option(help: "Weights to start from (a pretrained backbone, or a checkpoint to continue: its `seen` continues the schedule).")
    var weights: String?

    @Option(help: "The split to train on.")
    var trainSplit: String = "train"

    @Option(help: "The split to validate on (none: no mAP).")
    var valSplit: String = "val"

    @Option(help: "Folder for the weights and the chart (Darknet's backup=).")
    var backup: String = "backup"

    @OptionGroup var training: TrainingFlags

    func validate() throws {
        guard (cfg == nil) != (arch == nil) else { throw ValidationError("give --cfg (a Darknet detector) or --arch (an SSD), one of them") }
        if let arch, !SSDModels.names.contains(arch.lowercased()) {
            throw ValidationError("--arch must be one of \(SSDModels.names.joined(separator: ", ")), got '\(arch)'")
        }
        if let epochs, !(1...100_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 100000, got \(epochs)") }
        if let learningRate, !(learningRate.isFinite && learningRate > 0 && learningRate <= 10) {
            throw ValidationError("--learning-rate must be in (0, 10], got \(learningRate)")
        }
        if arch == nil {
            for (option, given) in [("--epochs", epochs != nil), ("--learning-rate", learningRate != nil), ("--schedule", schedule != nil)] where given {
                throw ValidationError("\(option) is for an SSD (--arch); a Darknet cfg takes its schedule from [net] (--max-batches sets the iterations)")
            }
        }
    }

    func run() throws {
        try training.check()
        let dataURL = URL(fileURLWithPath: data)
        let trainSet: DetectionDataset, valSet: DetectionDataset?
        do {
            trainSet = try DetectionDataset.load(dataURL, split: trainSplit, skipping: TrainingFlags.warnSkipped(trainSplit))
            valSet = valSplit == "none" ? nil : try DetectionDataset.load(dataURL, split: valSplit, skipping: TrainingFlags.warnSkipped(valSplit))
        } catch { throw failure("\(error)") }
        if let arch {
            try trainSSD(arch.lowercased(), trainSet: trainSet, valSet: valSet)
            return
        }
        guard let cfg else { throw ValidationError("give --cfg (a Darknet detector) or --arch (an SSD)") }
        try training.train(cfg: cfg, weights: weights, trainSet: trainSet, valSet: valSet, backup: backup, inputs: [data])
    }
}

/// `ocelli detector train DATA CFG [WEIGHTS]`: Darknet's own command line.
struct Detector: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Darknet's `detector` commands.", subcommands: [DetectorTrain.self])
}

struct DetectorTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "darknet detector train DATA CFG [WEIGHTS]: DATA is Darknet's .data file (classes=, train=, valid=, names=, backup=).",
        discussion: "The same training as `ocelli train` (see its help); the lists of images are YOLO lists, labels beside the images as Darknet finds them.")

    @Argument(help: "Darknet's .data file.")
    var data: String

    @Argument(help: "The .cfg file, or the name of a bundled one.")
    var cfg: String

    @Argument(help: "Weights to start from.")
    var weights: String?

    @OptionGroup var training: TrainingFlags

    func run() throws {
        try training.check()
        let file: DarknetDataFile, sets: (train: DetectionDataset, valid: DetectionDataset?)
        do {
            file = try DarknetDataFile.load(data)
            sets = try file.datasets(skipping: TrainingFlags.warnSkipped("train/valid"))
        } catch { throw failure("\(error)") }
        try training.train(cfg: cfg, weights: weights, trainSet: sets.train, valSet: sets.valid, backup: file.backup,
                           inputs: [data, file.train, file.valid, file.names])
    }
}

/// What both training commands share: the loop's options and the loop.
struct TrainingFlags: ParsableArguments {
    @Option(help: "Iterations (default: the cfg's max_batches).")
    var maxBatches: Int?

    @Option(help: "Images per iteration (default: the cfg's batch).")
    var batch: Int?

    @Option(help: "Passes per iteration (default: the cfg's subdivisions).")
    var subdivisions: Int?

    @Option(help: "Iterations between validations and checkpoints (default: max_batches / 10, at least 1).")
    var mapEvery: Int?

    @Option(help: "Random seed (order, augmentation, initialisation).")
    var seed: UInt64 = 1

    @Flag(help: "Train on the images as they are (no jitter, flip or colour changes).")
    var noAugment = false

    @Option(help: "Threads preparing the images of a batch.")
    var workers: Int = 1

    @Option(help: "Freeze the Darknet layers before this index (transfer learning: train only the head). A cfg's stopbackward=1 freezes its layer and those before it.")
    var freeze: Int?

    @Flag(help: "Start the schedule from 0 instead of the weights' `seen` (Darknet's -clear, for a backbone trained elsewhere).")
    var clear = false

    @Flag(help: "Continue an interrupted run from BACKUP/<cfg>_last.weights and its .state.safetensors (momentum, position in the data): the same weights as a run that was never interrupted (same --seed and --threads).")
    var resume = false

    @Option(help: "Progress: darknet (Darknet's line per iteration and each head's statistics) or keras (one progress bar with the ETA, a line at each validation).")
    var progress: ProgressStyle = .darknet

    @Option(help: "EarlyStopping on the validation mAP: stop when it has not improved for this many validations in a row (the best weights stay in BACKUP/<cfg>_best.weights).")
    var patience: Int?

    @Option(help: "TensorBoard: write an event file in this folder (loss, avg_loss and learning_rate each iteration, map50 at each validation).")
    var tensorboard: String?

    @Option(help: "CSVLogger: one row per validation (iteration, avg_loss, loss, learning_rate, map50, seconds) to this file (appended to with --resume).")
    var csv: String?

    @OptionGroup var threadOptions: ThreadOptions
    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    enum ProgressStyle: String, ExpressibleByArgument, CaseIterable { case darknet, keras }

    /// Prints a warning for each image a data set leaves out (its files are at fault).
    static func warnSkipped(_ split: String) -> (Error) -> Void {
        { error in printError("warning: \(error); image left out of '\(split)'") }
    }

    func check() throws {
        threadOptions.apply()
        for (name, v, limit) in [("--max-batches", maxBatches, 100_000_000), ("--batch", batch, 65_536), ("--subdivisions", subdivisions, 65_536),
                                 ("--map-every", mapEvery, 100_000_000)] {
            if let v, !(1...limit).contains(v) { throw ValidationError("\(name) must be between 1 and \(limit), got \(v)") }
        }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be between 1 and 64, got \(workers)") }
        if let freeze, !(0...100_000).contains(freeze) { throw ValidationError("--freeze must be between 0 and 100000, got \(freeze)") }
        if resume && clear { throw ValidationError("--resume continues the schedule; --clear restarts it: give one of them") }
        if let patience, !(1...1_000_000).contains(patience) { throw ValidationError("--patience must be between 1 and 1000000, got \(patience)") }
    }

    /// `inputs`: the data files and folders named on the command line (never written over).
    func train(cfg: String, weights: String?, trainSet: DetectionDataset, valSet: DetectionDataset?, backup: String, inputs: [String?]) throws {
        // Under mpirun: this rank's share of every iteration; rank 0 prints, validates and writes.
        let dp: DataParallel?
        do { dp = try Distributed.setUp() } catch { throw failure("\(error)") }
        let primary = dp?.isPrimary ?? true
        func say(_ s: String) {
            guard primary else { return }
            if json { printError(s) } else { print(s) }
        }
        if patience != nil && valSet == nil {
            throw failure("--patience stops on the validation mAP, and there is no validation set (--val-split none, or no valid= in the .data file)")
        }
        do { try ensureWritableDirectory(backup) } catch { throw failure("\(error)") }
        let cfgPath = BundledData.cfgNamed(cfg) ?? cfg
        try refuseOverwritingInputs([("--csv", csv), ("--tensorboard", tensorboard)],
                                    inputs: [cfgPath, weights] + inputs, insideFolders: false)  // a resumed run appends to its logs
        let stem = ((cfgPath as NSString).lastPathComponent as NSString).deletingPathExtension

        func path(_ suffix: String) -> String { (backup as NSString).appendingPathComponent("\(stem)_\(suffix)") }
        // Resuming, the state file holds the weights too (one unit); the .weights beside it may
        // be missing when a run was killed during its first checkpoint.
        let stateHoldsWeights = resume && (SafeTensors.metadata(atPath: path("last.state.safetensors"))?["contains_weights"] == "1")
        let startWeights = resume ? (weights ?? (stateHoldsWeights ? nil : path("last.weights"))) : weights
        let (network, trainer): (DarknetNetwork, DarknetTrainer)
        do {
            network = try RandomSeed.withSeed(seed) { try DarknetNetwork(cfg: cfgPath) }
            network.model.dataParallel = dp
            if let weights = startWeights {
                // A backbone (the first layers only) loads too; the rest keep their initialisation.
                let (_, loaded) = try network.loadWeights(weights, partial: true)
                if clear { network.seen = 0 }
                say("Loading weights from \(weights)...Done! (\(loaded) of \(network.weightedLayers.count) weighted layers, seen \(network.seen))")
            }
            trainer = try DarknetTrainer(network: network, train: trainSet, seed: seed, batch: batch, subdivisions: subdivisions,
                                         maxBatches: maxBatches, augment: !noAugment, workers: workers, freeze: freeze)
            if trainer.frozenLayers > 0 { say("Layers 0…\(trainer.frozenLayers - 1) frozen") }
            if resume {
                try trainer.resume(state: path("last.state.safetensors"))
                say("Resuming at iteration \(trainer.iteration) from \(path("last.state.safetensors"))\(stateHoldsWeights ? " (its weights, seen \(network.seen))" : "")")
            }
            if let dp {
                // Every rank starts from rank 0's weights (they loaded the same files; a fresh
                // initialisation is seeded alike too: this makes it certain).
                try dp.broadcastParameters(network.model)
                say("Data-parallel: \(dp.size) processes, each running \(trainer.options.subdivisions / dp.size) of the \(trainer.options.subdivisions) subdivisions of every iteration"
                    + (trainer.subdivisionsRaised.map { " (raised from \($0.from) so that the processes share them: \(trainer.options.miniBatch) images per pass, batch-norm statistics per pass)" } ?? ""))
            }
        } catch { throw failure("\(error)") }
        let o = trainer.options
        say("\(stem): \(trainSet.images.count) training images, \(valSet?.images.count ?? 0) validation; batch \(o.batch), subdivisions \(o.subdivisions), \(trainer.maxBatches) iterations, learning rate \(o.learningRate.learningRate), momentum \(o.momentum), decay \(o.decay)")

        func save(_ suffix: String) throws -> String {
            let p = path(suffix + ".weights")
            guard primary else { return p }  // rank 0 writes the files
            if suffix == "last" { try trainer.saveState(path("last.state.safetensors")) }
            try trainer.saveWeights(p)
            try network.model.saveWeights(to: path(suffix + ".safetensors"))
            return p
        }
        let every = mapEvery ?? max(1, trainer.maxBatches / 10)
        var lossHistory: [(Int, Float)] = [], mapHistory: [(Int, Double)] = []
        var best: Double?, bestIteration = 0, validationsSinceBest = 0, written: [String: String] = [:]
        var lastLoss: Float = 0
        let start = Date()
        let firstImages = Int(clamping: network.seen), firstIteration = trainer.iteration
        let keras = progress == .keras
        let barOnTerminal = keras && isatty(json ? STDERR_FILENO : STDOUT_FILENO) != 0
        var log: TrainingLog
        do {
            log = try TrainingLog(tensorboard: primary ? tensorboard : nil, csv: primary ? csv : nil, append: resume)
        } catch { throw failure("\(error)") }
        var interrupted = false
        // Under mpirun every rank gets the signal: rank 0 says it.
        Interruption.install(message: primary ? "Interrupted: stopping after this iteration and writing the checkpoint (a second Ctrl-C quits at once, without it)" : "")
        do {
            while trainer.iteration < trainer.maxBatches {
                if dp == nil && Interruption.requested {
                    written["last"] = try save("last")
                    interrupted = true
                    break
                }
                // Data-parallel, the ranks agree in the step whether any of them was interrupted.
                let r = try trainer.step(stopRequested: Interruption.requested)
                lastLoss = r.averageLoss
                lossHistory.append((r.iteration, r.averageLoss))
                try log.iteration(r)
                let done = r.iteration - firstIteration, elapsed = Date().timeIntervalSince(start)
                let secondsPerIteration = done > 0 ? elapsed / Double(done) : 0
                let validates = r.iteration % every == 0 || r.iteration >= trainer.maxBatches
                let logs: [String: Float] = ["loss": r.loss, "avg_loss": r.averageLoss, "learning_rate": r.learningRate]
                if keras {
                    // Keras' bar: the counter, the ETA at the mean pace so far, the logs.
                    let line = ProgressLine.format(current: r.iteration, target: trainer.maxBatches,
                                                   elapsed: secondsPerIteration * Double(r.iteration), logs: logs,
                                                   final: false, color: barOnTerminal)
                    if barOnTerminal {
                        writeProgress("\r" + line + "\u{1b}[K" + (validates ? "\n" : ""))
                    } else if validates {
                        say(line)
                    }
                } else {
                    for (k, s) in r.statistics.enumerated() {
                        say(String(format: "Region %d Avg IOU: %f, Class: %f, Obj: %f, No Obj: %f, .5R: %f, .75R: %f,  count: %d",
                                   network.heads[k].layerIndex, s.averageIoU, s.classProbability, s.objectness, s.noObjectness,
                                   s.recall50, s.recall75, s.count))
                    }
                    // AlexeyAB's ending: the time left at the mean pace so far.
                    let left = secondsPerIteration * Double(trainer.maxBatches - r.iteration) / 3600
                    say(r.darknetLine + String(format: ", %.3f hours left", left))
                }
                guard r.loss.isFinite else {
                    written["last"] = try save("last")
                    throw failure("the loss is \(r.loss) at iteration \(r.iteration): training diverged (lower the learning rate or raise burn_in); the weights so far are in \(written["last"]!)")
                }
                var stopEarly = false
                if validates {
                    written["last"] = try save("last")
                    var map: Double?
                    if let valSet, primary {
                        let m = try trainer.validationMAP50(valSet)
                        map = m
                        mapHistory.append((r.iteration, m))
                        say(String(format: "mean average precision (mAP@0.50) = %.4f on %d images", m, valSet.images.count))
                        if best == nil || m > best! {
                            best = m; bestIteration = r.iteration; validationsSinceBest = 0
                            written["best"] = try save("best")
                            say("New best mAP: saved \(written["best"]!)")
                        } else {
                            validationsSinceBest += 1
                        }
                    }
                    try log.validation(r, map: map, seconds: Date().timeIntervalSince(start))
                    if primary {
                        try SVGChart.write(Self.chart(loss: lossHistory, map: mapHistory, title: stem), to: (backup as NSString).appendingPathComponent("chart.svg"))
                    }
                    if let patience, validationsSinceBest >= patience, r.iteration < trainer.maxBatches {
                        say(String(format: "Early stopping at iteration %d: the mAP has not improved for %d validations (best %.4f at iteration %d)",
                                   r.iteration, patience, best ?? 0, bestIteration))
                        stopEarly = true
                    }
                    // Only rank 0 knows the mAP: it decides for all.
                    if let dp { stopEarly = try dp.sum([stopEarly ? 1 : 0])[0] > 0 }
                }
                if stopEarly { break }
                if dp != nil && r.stopRequested {
                    written["last"] = try save("last")
                    interrupted = true
                    break
                }
            }
            if !interrupted { written["final"] = try save("final") }
            try log.close()
        } catch let e as ExitCode { throw e } catch { throw failure("\(error)") }
        let seconds = Date().timeIntervalSince(start)
        let images = Int(clamping: network.seen) - firstImages
        if let dp { try dp.checkInSync(network.model) }
        if interrupted {
            say("Stopped at iteration \(trainer.iteration) of \(trainer.maxBatches): saved \(written["last"]!) and its state; continue with --resume")
        } else {
            say("Saved \(written["final"]!)")
        }
        if json && primary {
            var object: [String: Any] = ["iterations": trainer.iteration, "seconds": seconds,
                                         "images_per_second": seconds > 0 ? Double(images) / seconds : 0,
                                         "final_loss": Double(lastLoss), "weights": written, "interrupted": interrupted]
            object["best_map50"] = best ?? NSNull()
            object.merge(Distributed.jsonFields(stepSeconds: seconds)) { a, _ in a }
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        // The shell's convention for a command ended by Ctrl-C.
        if interrupted { throw Interruption.exitCode }
    }

    /// Keras' progress bar on a terminal: no newline, flushed.
    func writeProgress(_ s: String) {
        if json { printError(s, terminator: "") } else { print(s, terminator: ""); fflush(stdout) }
    }

    /// Darknet's chart: the average loss over iterations and the validation mAP@0.5 points.
    static func chart(loss: [(Int, Float)], map: [(Int, Double)], title: String) -> String {
        let last = max(1, loss.last?.0 ?? 1)
        let finite = loss.map { Double($0.1) }.filter(\.isFinite)
        let top = max(1e-6, (finite.max() ?? 1) * 1.05)
        let left = SVGChart.Panel(x0: 0, width: 480, height: 320, xRange: (0, Double(last)), yRange: (0, top))
        var body = left.axes(title: "\(title): average loss", xLabel: "iteration", yLabel: "loss")
        body += left.polyline(loss.map { (Double($0.0), Double($0.1)) }, color: SVGChart.color(0), title: "avg loss")
        let right = SVGChart.Panel(x0: 480, width: 480, height: 320, xRange: (0, Double(last)), yRange: (0, 1))
        body += right.axes(title: "validation mAP@0.5", xLabel: "iteration", yLabel: "mAP")
        body += right.polyline(map.map { (Double($0.0), $0.1) }, color: SVGChart.color(3), title: "mAP@0.5")
        for (i, m) in map {
            body += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%@\"><title>%d: %.4f</title></circle>\n",
                           right.px(Double(i)), right.py(m), SVGChart.color(3), i, m)
        }
        return SVGChart.document(width: 960, height: 320, body: body)
    }
}

/// The run's TensorBoard events (`--tensorboard`) and CSV rows (`--csv`).
struct TrainingLog {
    let events: TensorBoardEventWriter?
    let csv: FileHandle?
    let csvPath: String?

    init(tensorboard: String?, csv: String?, append: Bool) throws {
        events = try tensorboard.map { try TensorBoardEventWriter(logDirectory: $0) }
        csvPath = csv
        if let csv {
            if !(append && FileManager.default.fileExists(atPath: csv)) {
                let header = "iteration,avg_loss,loss,learning_rate,map50,seconds\n"
                guard FileManager.default.createFile(atPath: csv, contents: Data(header.utf8)) else {
                    throw FileFormatError(csv, "cannot create the CSV log (does its folder exist and can it be written?)")
                }
            }
            guard let handle = FileHandle(forWritingAtPath: csv) else {
                throw FileFormatError(csv, "cannot open the CSV log for writing")
            }
            handle.seekToEndOfFile()
            self.csv = handle
        } else {
            self.csv = nil
        }
    }

    /// TensorBoard's per-iteration scalars.
    func iteration(_ r: DarknetTrainer.Iteration) throws {
        guard let events else { return }
        let step = Int64(r.iteration)
        try events.scalar("loss", r.loss, step: step)
        try events.scalar("avg_loss", r.averageLoss, step: step)
        try events.scalar("learning_rate", r.learningRate, step: step)
    }

    /// At each validation: the mAP, a flush of the events, a CSV row.
    func validation(_ r: DarknetTrainer.Iteration, map: Double?, seconds: Double) throws {
        if let map { try events?.scalar("map50", Float(map), step: Int64(r.iteration)) }
        try events?.flush()
        if let csv {
            let row = "\(r.iteration),\(r.averageLoss),\(r.loss),\(r.learningRate),\(map.map { String($0) } ?? ""),\(String(format: "%.1f", seconds))\n"
            do { try csv.write(contentsOf: Data(row.utf8)) } catch {
                throw FileFormatError(csvPath ?? "CSV log", "cannot append a row: \(systemReason(error))")
            }
        }
    }

    func close() throws {
        try events?.close()
        try csv?.close()
    }
}
