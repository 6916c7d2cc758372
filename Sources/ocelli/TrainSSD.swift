import Foundation
import Ocelli

extension Train {
    /// An SSD trained the Keras way: `fit` over the detection loader (the Darknet jitter, flips
    /// and colour changes), the MultiBox loss, Adam, the validation mAP after every epoch, the
    /// best and last models saved as model folders.
    func trainSSD(_ arch: String, trainSet: DetectionDataset, valSet: DetectionDataset?) throws {
        let json = training.json
        func say(_ s: String) { if json { printError(s) } else { print(s) } }
        do { try ensureWritableDirectory(backup) } catch { throw failure("\(error)") }
        let (model, boxes): (Model, SSDDefaultBoxes)
        do { (model, boxes) = try RandomSeed.withSeed(training.seed) { try SSDModels.named(arch, classes: trainSet.classNames.count) } } catch {
            throw failure("\(error)")
        }
        if let weights {
            do {
                let saved = try Model.load(from: weights)
                try model.setWeights(saved.getWeights())
                say("Loaded the weights of \(weights)")
            } catch { throw failure("--weights \(weights): \(error)") }
        }
        let detector = try SSDDetector(model: model, defaultBoxes: boxes)
        let loss = MultiBoxLoss(defaultBoxes: boxes, classes: trainSet.classNames.count)
        let size = boxes.imageSize, batch = training.batch ?? 16
        var transform: DetectionLoader.Transform?
        if !training.noAugment {
            transform = Augment.Sequential([Augment.DarknetJitter(width: size, height: size, jitter: 0.2, mode: .place, flip: false),
                                             Augment.DarknetHSV(hue: 0.05, saturation: 1.5, exposure: 1.5)]).transform
        }
        let loader = DetectionLoader(dataset: trainSet, batchSize: batch, inputSize: size, seed: training.seed, dropLast: true, prefetch: 2,
                                     skipBadSamples: true, workers: training.workers, transform: transform)
        guard loader.batchesPerEpoch >= 1 else { throw failure("the training set has \(trainSet.images.count) images, fewer than one batch of \(batch)") }
        let steps = training.maxBatches.map { min($0, loader.batchesPerEpoch) }
        let optimizer = Adam(learningRate: learningRate)
        if schedule == .cosine {
            optimizer.withSchedule(CosineDecay(initialLearningRate: learningRate, decaySteps: max(1, epochs * (steps ?? loader.batchesPerEpoch)), alpha: 0.01))
        }
        model.compile(optimizer: optimizer, loss: loss)
        say("\(arch): \(trainSet.images.count) training images, \(valSet?.images.count ?? 0) validation; \(boxes.count) default boxes, batch \(batch), \(epochs) epochs, Adam \(learningRate) (\(schedule.rawValue))")
        let stem = arch
        func folder(_ suffix: String) -> String { (backup as NSString).appendingPathComponent("\(stem)_\(suffix)") }
        var best: Double?, written: [String: String] = [:], lossHistory: [(Int, Float)] = [], mapHistory: [(Int, Double)] = []
        var saveError: Error?
        let perEpoch = steps ?? loader.batchesPerEpoch
        let start = Date()
        let validation = valSet.map { SSDValidationMAP(detector: detector, dataset: $0) }
        let checkpoints = LambdaCallback(onEpochEnd: { epoch, logs in
            do {
                let iteration = (epoch + 1) * perEpoch
                lossHistory.append((iteration, logs["loss"] ?? .nan))
                if json { say(String(format: "epoch %d: loss %.4f, %.1f s", epoch + 1, logs["loss"] ?? .nan, Date().timeIntervalSince(start))) }
                try model.save(to: folder("last")); written["last"] = folder("last")
                if let m = logs["val_map50"].map(Double.init) {
                    mapHistory.append((iteration, m))
                    say(String(format: "epoch %d: mean average precision (mAP@0.50) = %.4f", epoch + 1, m))
                    if best == nil || m > best! { best = m; try model.save(to: folder("best")); written["best"] = folder("best") }
                }
                try SVGChart.write(TrainingFlags.chart(loss: lossHistory, map: mapHistory, title: stem), to: (backup as NSString).appendingPathComponent("chart.svg"))
            } catch { saveError = error; model.stopTraining = true }
        })
        Interruption.install(message: "Interrupted: stopping after this batch and saving \(folder("last")) (a second Ctrl-C quits at once)")
        let interrupt = LambdaCallback(onBatchEnd: { _, _ in if Interruption.requested { model.stopTraining = true } })
        let history: History
        do {
            history = try model.fit(loader, epochs: epochs, stepsPerEpoch: steps, callbacks: [interrupt] + (validation.map { [$0] } ?? []) + [checkpoints],
                                    verbose: json ? .silent : .auto)
        } catch { throw failure("\(error)") }
        if let saveError { throw failure("\(saveError)") }
        if Interruption.requested {
            do { try model.save(to: folder("last")); written["last"] = folder("last") } catch { throw failure("\(error)") }
        }
        let seconds = Date().timeIntervalSince(start)
        let images = history.epochs.count * perEpoch * batch
        say("Saved \(written["last"] ?? folder("last"))\(best.map { String(format: "; best mAP@0.5 %.4f in %@", $0, folder("best")) } ?? "")")
        if json {
            var object: [String: Any] = ["iterations": history.epochs.count * perEpoch, "epochs": history.epochs.count, "seconds": seconds,
                                         "images_per_second": seconds > 0 ? Double(images) / seconds : 0,
                                         "final_loss": Double(history.history["loss"]?.last ?? .nan), "weights": written,
                                         "interrupted": Interruption.requested]
            object["best_map50"] = best ?? NSNull()
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        }
        if Interruption.requested { throw Interruption.exitCode }
    }
}
