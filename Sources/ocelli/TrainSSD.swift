import ArgumentParser
import Foundation
import Ocelli

extension Train {
    /// The epochs an SSD trains for when --epochs is not given: the digits SSD's 30-minute run,
    /// else 30.
    static func defaultEpochs(_ arch: String) -> Int { arch == "ssd-digits" ? 8 : 30 }

    /// An SSD trained the Keras way: `fit` over the detection loader (the Darknet jitter and
    /// colour changes), the MultiBox loss, Adam, the validation mAP after every epoch, the best
    /// and last models saved as model folders that carry the class names and where the run is
    /// (`--resume` continues from BACKUP/<arch>_last).
    func trainSSD(_ arch: String, trainSet: DetectionDataset, valSet: DetectionDataset?) throws {
        let json = training.json
        func say(_ s: String) { if json { printError(s) } else { print(s) } }
        let darknetOnly = [("--subdivisions", training.subdivisions != nil), ("--map-every", training.mapEvery != nil),
                           ("--freeze", training.freeze != nil), ("--clear", training.clear)].filter(\.1).map(\.0)
        if !darknetOnly.isEmpty {
            throw failure("\(darknetOnly.joined(separator: ", ")): Darknet's loop only (--cfg); an SSD (--arch) trains every layer, one batch per step, and validates after every epoch")
        }
        if training.patience != nil && valSet == nil {
            throw failure("--patience stops on the validation mAP, and there is no validation set (--val-split none)")
        }
        if training.resume && weights != nil {
            throw failure("--resume continues \(arch)_last in \(backup) with its weights; --weights starts from other ones: give one of them")
        }
        do { try ensureWritableDirectory(backup) } catch { throw failure("\(error)") }
        try refuseOverwritingInputs([("--csv", training.csv), ("--tensorboard", training.tensorboard)], inputs: [data, weights],
                                    insideFolders: false)  // a resumed run appends to its logs
        let stem = arch
        func folder(_ suffix: String) -> String { (backup as NSString).appendingPathComponent("\(stem)_\(suffix)") }

        // The model: new (or from --weights), or the interrupted run's last checkpoint.
        let model: Model, boxes: SSDDefaultBoxes
        var run: SSDRunState
        if training.resume {
            let last = folder("last")
            do {
                let detector = try SSDDetector.load(from: last)
                model = detector.model; boxes = detector.defaultBoxes
                run = try SSDRunState(metadata: model.metadata, folder: last)
            } catch let e as ExitCode { throw e } catch {
                throw failure("--resume: \(error)")
            }
            guard model.name == SSDModels.modelName(arch), model.optimizer != nil, model.loss is MultiBoxLoss else {
                throw failure("--resume: \(last) holds '\(model.name)'\(model.optimizer == nil ? " without its optimizer" : ""), not a \(arch) training checkpoint")
            }
            guard model.outputs[1].shape[1] - 1 == trainSet.classNames.count else {
                throw failure("--resume: \(last) predicts \(model.outputs[1].shape[1] - 1) classes, the data set has \(trainSet.classNames.count)")
            }
            for (option, given) in [("--learning-rate", learningRate != nil), ("--schedule", schedule != nil)] where given {
                throw failure("--resume: \(option) cannot change: the learning rate continues on the interrupted run's schedule")
            }
            if let b = training.batch, b != run.batch {
                throw failure("--resume: the interrupted run trained with --batch \(run.batch), not \(b): the epochs would not line up")
            }
            if let e = epochs { run.epochs = e }
        } else {
            let classes = trainSet.classNames.count
            do { (model, boxes) = try RandomSeed.withSeed(training.seed) { try SSDModels.named(arch, classes: classes) } } catch {
                throw failure("\(error)")
            }
            if let weights {
                do {
                    let saved = try Model.load(from: weights, compile: false)
                    try model.setWeights(saved.getWeights())
                    say("Loaded the weights of \(weights)")
                } catch { throw failure("--weights \(weights): \(error)") }
            }
            run = SSDRunState(epochs: epochs ?? Self.defaultEpochs(arch), batch: training.batch ?? 16, seed: training.seed,
                              augment: !training.noAugment)
        }
        let detector = try SSDDetector(model: model, defaultBoxes: boxes)
        detector.classNames = trainSet.classNames  // saved with every checkpoint: detect labels its boxes
        let size = boxes.imageSize, batch = run.batch
        var transform: DetectionLoader.Transform?
        if run.augment {
            transform = Augment.Sequential([Augment.DarknetJitter(width: size, height: size, jitter: 0.2, mode: .place, flip: false),
                                             Augment.DarknetHSV(hue: 0.05, saturation: 1.5, exposure: 1.5)]).transform
        }
        let loader = DetectionLoader(dataset: trainSet, batchSize: batch, inputSize: size, seed: run.seed, dropLast: true, prefetch: 2,
                                     skipBadSamples: true, workers: training.workers, transform: transform)
        guard loader.batchesPerEpoch >= 1 else { throw failure("the training set has \(trainSet.images.count) images, fewer than one batch of \(batch)") }
        let perEpoch = training.maxBatches.map { min($0, loader.batchesPerEpoch) } ?? loader.batchesPerEpoch
        if training.resume, let saved = run.stepsPerEpoch, saved != perEpoch {
            throw failure("--resume: the interrupted run had \(saved) batches per epoch, this one \(perEpoch) (another data set or --max-batches?)")
        }
        run.stepsPerEpoch = perEpoch
        if !training.resume {
            let rate = learningRate ?? 0.001
            let optimizer = Adam(learningRate: rate)
            let plan = schedule ?? .cosine
            if plan == .cosine {
                optimizer.withSchedule(CosineDecay(initialLearningRate: rate, decaySteps: max(1, run.epochs * perEpoch), alpha: 0.01))
            }
            model.compile(optimizer: optimizer, loss: MultiBoxLoss(defaultBoxes: boxes, classes: trainSet.classNames.count))
            say("\(arch): \(trainSet.images.count) training images, \(valSet?.images.count ?? 0) validation; \(boxes.count) default boxes, batch \(batch), \(run.epochs) epochs, Adam \(rate) (\(plan.rawValue))")
        } else {
            say("\(arch): resuming \(folder("last")) at epoch \(run.epoch + 1) of \(run.epochs)\(run.step > 0 ? ", batch \(run.step + 1) of \(perEpoch)" : "")\(run.best.map { String(format: ", best mAP@0.5 so far %.4f", $0) } ?? "")")
        }
        guard run.epoch < run.epochs else {
            throw failure("--resume: \(folder("last")) finished its \(run.epochs) epochs; give --epochs N (more) to train on")
        }

        let logs: TrainingLogs
        do { logs = try TrainingLogs(csv: training.csv, tensorboard: training.tensorboard, append: training.resume) } catch {
            throw failure("\(error)")
        }
        guard let multibox = model.loss as? MultiBoxLoss else { throw failure("\(model.name): not compiled with the MultiBox loss") }
        let progress = SSDProgress(run: run, model: model, loss: multibox, perEpoch: perEpoch, batch: batch,
                                   style: training.progress, json: json, backup: backup, stem: stem, say: say)
        progress.save = { suffix in
            do { try model.save(to: folder(suffix)); return folder(suffix) } catch {
                progress.saveError = error; model.stopTraining = true; return nil
            }
        }
        if training.resume, run.best != nil, FileManager.default.fileExists(atPath: (folder("best") as NSString).appendingPathComponent("model.json")) {
            progress.written["best"] = folder("best")
        }
        Interruption.install(message: "Interrupted: stopping after this batch and saving \(folder("last")) (a second Ctrl-C quits at once)")
        var callbacks: [Callback] = [progress.batchCallback]
        if let valSet { callbacks.append(SSDValidationMAP(detector: detector, dataset: valSet)) }
        callbacks.append(progress)
        if let p = training.patience { callbacks.append(EarlyStopping(monitor: "val_map50", patience: p, mode: .max)) }
        callbacks += logs.callbacks
        let start = Date()
        RandomSeed.set(run.seed &+ 1)  // fit's per-step seeds: the same in a resumed run
        let history: History
        do {
            history = try model.fit(loader, epochs: run.epochs, stepsPerEpoch: perEpoch, callbacks: callbacks,
                                    verbose: training.progress == .keras && !json ? .auto : .silent,
                                    initialEpoch: run.epoch, initialStep: run.step)
        } catch { throw failure("\(error)") }
        if let e = progress.saveError { throw failure("\(e)") }
        if let loss = progress.diverged {
            throw failure("the loss is \(loss) at iteration \(progress.iteration): training diverged (lower --learning-rate); \(progress.written["last"].map { "the last good checkpoint is \($0)" } ?? "no checkpoint was written")")
        }
        let seconds = Date().timeIntervalSince(start)
        let best = progress.run.best
        say("Saved \(progress.written["last"] ?? folder("last"))\(best.map { String(format: "; best mAP@0.5 %.4f in %@", $0, folder("best")) } ?? "")")
        if json {
            var object: [String: Any] = ["iterations": progress.iteration, "epochs": progress.run.epoch, "seconds": seconds,
                                         "images_per_second": seconds > 0 ? Double(progress.imagesThisRun) / seconds : 0,
                                         "final_loss": Double(history.history["loss"]?.last ?? .nan), "weights": progress.written,
                                         "interrupted": Interruption.requested]
            object["best_map50"] = best ?? NSNull()
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        if Interruption.requested { throw Interruption.exitCode }
    }
}

/// Where an SSD training run is, saved in each checkpoint's metadata so that `--resume`
/// continues it: the next epoch and batch, the plan (epochs, batch, seed, augmentation), the
/// best mAP and the chart's points so far.
struct SSDRunState {
    var epochs: Int, batch: Int, seed: UInt64, augment: Bool
    var stepsPerEpoch: Int?
    /// The epoch to train next and the batches of it already trained.
    var epoch = 0, step = 0
    var best: Double?
    var averageLoss: Float?
    var lossHistory: [(Int, Float)] = [], mapHistory: [(Int, Double)] = []

    init(epochs: Int, batch: Int, seed: UInt64, augment: Bool) {
        self.epochs = epochs; self.batch = batch; self.seed = seed; self.augment = augment
    }

    static let prefix = "ocelli_train_"

    var metadata: [String: String] {
        // The chart needs no more than ~2,000 loss points: every k-th and the last.
        let k = max(1, (lossHistory.count + 1_999) / 2_000)
        let losses = lossHistory.enumerated().filter { $0.offset % k == 0 || $0.offset == lossHistory.count - 1 }.map(\.element)
        var m = ["epochs": "\(epochs)", "batch": "\(batch)", "seed": "\(seed)", "augment": augment ? "1" : "0",
                 "epoch": "\(epoch)", "step": "\(step)",
                 "loss_history": losses.map { "\($0.0):\($0.1)" }.joined(separator: " "),
                 "map_history": mapHistory.map { "\($0.0):\($0.1)" }.joined(separator: " ")]
        if let stepsPerEpoch { m["steps_per_epoch"] = "\(stepsPerEpoch)" }
        if let best { m["best_map50"] = "\(best)" }
        if let averageLoss { m["avg_loss"] = "\(averageLoss)" }
        return Dictionary(uniqueKeysWithValues: m.map { (Self.prefix + $0.key, $0.value) })
    }

    /// The state a checkpoint's metadata records; every value checked.
    init(metadata: [String: String], folder: String) throws {
        func value(_ key: String) -> String? { metadata[Self.prefix + key] }
        func fail(_ key: String, _ expected: String) -> FileFormatError {
            FileFormatError((folder as NSString).appendingPathComponent("model.json"),
                            "metadata \(Self.prefix)\(key) must be \(expected), got \(value(key).map { "'\($0)'" } ?? "nothing") (not a checkpoint of `ocelli train --arch`?)")
        }
        func int(_ key: String, _ range: ClosedRange<Int>) throws -> Int {
            guard let v = value(key).flatMap({ Int($0) }), range.contains(v) else { throw fail(key, "an integer in \(range)") }
            return v
        }
        epochs = try int("epochs", 1...100_000)
        batch = try int("batch", 1...65_536)
        guard let s = value("seed").flatMap({ UInt64($0) }) else { throw fail("seed", "an unsigned integer") }
        seed = s
        augment = try int("augment", 0...1) == 1
        epoch = try int("epoch", 0...100_000)
        stepsPerEpoch = try int("steps_per_epoch", 1...100_000_000)
        step = try int("step", 0...(stepsPerEpoch! - 1))
        if let b = value("best_map50") {
            guard let v = Double(b), v.isFinite, (0...1).contains(v) else { throw fail("best_map50", "a number in [0, 1]") }
            best = v
        }
        if let a = value("avg_loss") {
            guard let v = Float(a), v.isFinite else { throw fail("avg_loss", "a finite number") }
            averageLoss = v
        }
        func pairs(_ key: String) throws -> [(Int, Double)] {
            guard let text = value(key), !text.isEmpty else { return [] }
            return try text.split(separator: " ").map { item in
                let parts = item.split(separator: ":")
                guard parts.count == 2, let i = Int(parts[0]), i >= 0, let v = Double(parts[1]), v.isFinite else {
                    throw fail(key, "'iteration:value' pairs")
                }
                return (i, v)
            }
        }
        lossHistory = try pairs("loss_history").map { ($0.0, Float($0.1)) }
        mapHistory = try pairs("map_history")
    }
}

/// Keras' CSVLogger and TensorBoard for `--csv` and `--tensorboard` (one row and one point per
/// epoch: loss, learning_rate, val_map50).
struct TrainingLogs {
    let callbacks: [Callback]
    let tensorboard: TensorBoard?

    init(csv: String?, tensorboard: String?, append: Bool) throws {
        var cbs: [Callback] = []
        if let csv {
            let folder = (csv as NSString).deletingLastPathComponent
            if !folder.isEmpty { try ensureWritableDirectory(folder) }
            cbs.append(CSVLogger(path: csv, append: append))
        }
        self.tensorboard = tensorboard.map { TensorBoard(logDirectory: $0, updateFrequency: .epoch) }
        if let t = self.tensorboard { cbs.append(t) }
        callbacks = cbs
    }

}

/// The SSD run's progress and checkpoints: Darknet's line per batch (or Keras' bar, which `fit`
/// draws), the learning rate in the epoch's logs, at each epoch's end the last model (and the
/// best, when the validation mAP improves) and the chart. A loss that is not finite stops the
/// run without writing over the last good checkpoint.
final class SSDProgress: Callback {
    var run: SSDRunState
    let loss: MultiBoxLoss, perEpoch: Int, batch: Int, style: TrainingFlags.ProgressStyle, json: Bool
    let backup: String, stem: String, say: (String) -> Void
    var save: (String) -> String? = { _ in nil }
    var saveError: Error?
    var diverged: Float?
    var written: [String: String] = [:]
    private(set) var iteration: Int
    private(set) var imagesThisRun = 0
    private var stepsDone = 0, lastTime = Date()
    private weak var trainedModel: Model?

    init(run: SSDRunState, model: Model, loss: MultiBoxLoss, perEpoch: Int, batch: Int, style: TrainingFlags.ProgressStyle, json: Bool,
         backup: String, stem: String, say: @escaping (String) -> Void) {
        self.run = run; self.loss = loss; self.perEpoch = perEpoch; self.batch = batch; self.style = style; self.json = json
        self.backup = backup; self.stem = stem; self.say = say
        iteration = run.epoch * perEpoch + run.step
        trainedModel = model
    }

    /// Per batch: Darknet's line (N: loss, avg loss, rate, seconds, images) with the loss terms.
    lazy var batchCallback = LambdaCallback(onEpochBegin: { [unowned self] epoch in
        stepsDone = epoch == run.epoch ? run.step : 0
        lastTime = Date()
    }, onBatchEnd: { [unowned self] _, _ in
        stepsDone += 1; iteration += 1; imagesThisRun += batch
        let terms = loss.lastTerms
        let value = terms.location + terms.confidence
        guard value.isFinite else { diverged = value; trainedModel?.stopTraining = true; return }
        let average = run.averageLoss.map { $0 * 0.9 + value * 0.1 } ?? value
        run.averageLoss = average
        run.lossHistory.append((iteration, average))
        let now = Date(), seconds = now.timeIntervalSince(lastTime)
        lastTime = now
        if style == .darknet {
            let rate = trainedModel?.optimizer?.learningRate ?? 0
            say(String(format: "%d: %f, %f avg, %f rate, %f seconds, %d images; location %.4f, confidence %.4f, matched %d",
                       iteration, value, average, rate, seconds, iteration * batch, terms.location, terms.confidence, terms.matched))
        }
        if Interruption.requested { trainedModel?.stopTraining = true }
    })

    override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        guard diverged == nil, let model = trainedModel else { return }
        if let rate = model.optimizer?.learningRate { logs["learning_rate"] = rate }
        let finished = stepsDone >= perEpoch
        run.epoch = finished ? epoch + 1 : epoch
        run.step = finished ? 0 : stepsDone
        let m = logs["val_map50"].map(Double.init)
        if let m {
            run.mapHistory.append((iteration, m))
            say(String(format: "epoch %d%@: loss %.4f, mean average precision (mAP@0.50) = %.4f", epoch + 1,
                       finished ? "" : " (interrupted)", logs["loss"] ?? .nan, m))
        } else if style == .darknet || json {
            say(String(format: "epoch %d%@: loss %.4f", epoch + 1, finished ? "" : " (interrupted)", logs["loss"] ?? .nan))
        }
        let improved = m.map { v in run.best.map { v > $0 } ?? true } ?? false
        if improved { run.best = m }
        model.metadata.merge(run.metadata) { _, new in new }
        guard let last = save("last") else { return }
        written["last"] = last
        if improved, let best = save("best") {
            written["best"] = best
            say("New best mAP: saved \(best)")
        }
        do {
            try SVGChart.write(TrainingFlags.chart(loss: run.lossHistory, map: run.mapHistory, title: stem),
                               to: (backup as NSString).appendingPathComponent("chart.svg"))
        } catch { saveError = error; model.stopTraining = true }
    }
}
