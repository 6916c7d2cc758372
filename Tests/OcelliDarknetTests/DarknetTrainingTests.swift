import Foundation
import Testing
import OcelliDetection
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

/// A Darknet cfg trained through `compile`/`fit` with Darknet's own loss, on the digits data.
@Suite(.serialized) struct DarknetTrainingTests {
    static let tinyDigitsCfg = """
        [net]
        width=64
        height=64
        channels=3

        [convolutional]
        batch_normalize=1
        filters=8
        size=3
        stride=1
        pad=1
        activation=leaky

        [maxpool]
        size=2
        stride=2

        [convolutional]
        batch_normalize=1
        filters=16
        size=3
        stride=1
        pad=1
        activation=leaky

        [maxpool]
        size=2
        stride=2

        [convolutional]
        batch_normalize=1
        filters=32
        size=3
        stride=1
        pad=1
        activation=leaky

        [maxpool]
        size=2
        stride=2

        [convolutional]
        size=1
        stride=1
        pad=1
        filters=45
        activation=linear

        [yolo]
        mask=0,1,2
        anchors=6,8, 12,14, 20,22
        classes=10
        num=3
        ignore_thresh=.5
        truth_thresh=1
        """

    @Test func yoloCfgTrainsThroughFitWithDarknetsLoss() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-yolo-fit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try DigitsDetection.write(split: .train, count: 32, seed: 4, digits: try DigitsDetection.Digits(), to: directory)
        let dataset = try DetectionDataset.load(directory, split: "train")
        let loader = DetectionLoader(dataset: dataset, batchSize: 8, inputSize: 64, seed: 1, prefetch: 0)
        try RandomSeed.withSeed(5) {
            let network = try DarknetNetwork(config: DarknetConfig(text: Self.tinyDigitsCfg, file: "tiny-digits.cfg"))
            let loss = try network.yoloLoss()
            network.model.compile(optimizer: .adam(learningRate: 3e-3), loss: loss)
            let before = try network.model.evaluate(loader)["loss"]!
            #expect(loss.seen == 0, "evaluate does not count as training")
            let history = try network.model.fit(loader, epochs: 12, verbose: .silent)
            // Darknet's statistics of the last training batch: the head found the digits it is
            // responsible for and learnt that most places hold none.
            let stats = try #require(loss.lastStatistics.first)
            let after = try network.model.evaluate(loader)["loss"]!
            let losses = history.history["loss"]!
            // Training-mode losses fall fast; evaluation (batch norm's running averages, which
            // lag behind after a few dozen steps) falls too.
            #expect(losses.count == 12 && losses.last! < losses.first! * 0.3 && after < before, "loss \(before) → \(after); per epoch \(losses)")
            #expect(loss.seen == 12 * 32)
            #expect(stats.count > 0 && stats.noObjectness < 0.1 && stats.objectness > stats.noObjectness && stats.darknetCost > 0, "\(stats)")
        }
    }

    /// The Keras path: the validation mAP in fit's logs, EarlyStopping and ModelCheckpoint on it.
    @Test func fitMonitorsTheValidationMAP() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-yolo-map-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        let digits = try DigitsDetection.Digits()
        try DigitsDetection.write(split: .train, count: 16, seed: 4, digits: digits, to: directory)
        try DigitsDetection.write(split: .val, count: 4, seed: 5, digits: digits, to: directory)
        let train = try DetectionDataset.load(directory, split: "train"), val = try DetectionDataset.load(directory, split: "val")
        let loader = DetectionLoader(dataset: train, batchSize: 8, inputSize: 64, seed: 1, prefetch: 0)
        try RandomSeed.withSeed(5) {
            let network = try DarknetNetwork(config: DarknetConfig(text: Self.tinyDigitsCfg, file: "tiny-digits.cfg"))
            network.model.compile(optimizer: .adam(learningRate: 3e-3), loss: try network.yoloLoss())
            let map = DetectionMAP(network: network, dataset: val)
            let stopping = EarlyStopping(monitor: "val_map50", patience: 1)
            let best = directory.appendingPathComponent("best.safetensors").path
            let checkpoint = ModelCheckpoint(path: best, monitor: "val_map50", saveBestOnly: true)
            let history = try network.model.fit(loader, epochs: 4, callbacks: [map, stopping, checkpoint], verbose: .silent)
            let maps = try #require(history.history["val_map50"])
            #expect(maps.count == history.history["loss"]!.count && maps.count == map.history.count)
            #expect(maps.allSatisfy { $0 >= 0 && $0 <= 1 })
            #expect(zip(maps, map.history).allSatisfy { $0 == Float($1.map) })
            // Maximised (auto mode knows mAP): a new best is saved, a worse one is not.
            var top: Float = -1, saves = 0, since = 0, stopped: Int?
            for (k, m) in maps.enumerated() {
                if m > top { top = m; saves += 1; since = 0 } else { since += 1 }
                if since >= 1 && k > 0 { stopped = k; break }
            }
            #expect(checkpoint.savedPaths.count == saves && FileManager.default.fileExists(atPath: best))
            #expect(stopping.stoppedEpoch == (stopped ?? 0), "\(maps)")
        }
    }

    @Test func lossOptionsComeFromTheCfgAndAreChecked() throws {
        let v2 = try DarknetNetwork(cfg: TestFiles.cfg("yolov2-voc.cfg"))
        let loss = try v2.yoloLoss()
        guard case .region(let r) = try #require(loss.heads.first) else { Issue.record("not a region head"); return }
        // yolov2-voc.cfg: thresh=.6, object_scale=5, rescore=1, bias_match=1, softmax=1.
        #expect(r.threshold == 0.6 && r.objectScale == 5 && r.noObjectScale == 1 && r.rescore && r.biasMatch && r.softmax)
        let tiny = try DarknetNetwork(cfg: TestFiles.cfg("yolov3-tiny.cfg"))
        let heads = try tiny.yoloLoss().heads
        #expect(heads.count == 2)
        if case .yolo(let y) = heads[0] { #expect(y.mask == [3, 4, 5] && y.ignoreThreshold == 0.7 && y.classes == 80) }
        let bad = Self.tinyDigitsCfg.replacingOccurrences(of: "ignore_thresh=.5", with: "ignore_thresh=-1")
        #expect(throws: DarknetError.self) { try DarknetNetwork(config: DarknetConfig(text: bad, file: "bad.cfg")).yoloLoss() }
    }
}

/// `[net]`'s training options, Darknet's learning-rate policies and its SGD.
@Suite struct DarknetTrainingOptionsTests {
    @Test func yolov3TinyNetSection() throws {
        let o = try DarknetNetwork(cfg: TestFiles.cfg("yolov3-tiny.cfg")).trainingOptions()
        #expect(o.batch == 1 && o.subdivisions == 1 && o.momentum == 0.9 && o.decay == 0.0005)
        #expect(o.maxBatches == 500_200 && o.multiScale && o.jitter == 0.3 && o.hue == 0.1 && o.saturation == 1.5 && o.flip)
        let r = o.learningRate
        #expect(r.policy == .steps(steps: [400_000, 450_000], scales: [0.1, 0.1]) && r.burnIn == 1000 && r.power == 4)
        // Burn-in: rate · (batch / 1000)^4; then the steps.
        #expect(abs(r.rate(atBatch: 500) - 0.001 * 0.0625) < 1e-9)
        #expect(r.rate(atBatch: 1000) == 0.001 && r.rate(atBatch: 399_999) == 0.001)
        #expect(abs(r.rate(atBatch: 400_000) - 0.0001) < 1e-9 && abs(r.rate(atBatch: 450_000) - 0.00001) < 1e-10)
        // The optimizer's step k is Darknet's batch k + 1.
        #expect(r(0) == r.rate(atBatch: 1) && r(999) == 0.001)
    }

    @Test func policies() throws {
        let poly = try DarknetNetwork(cfg: TestFiles.cfg("darknet19.cfg")).trainingOptions().learningRate
        #expect(poly.policy == .poly && abs(poly.rate(atBatch: 400_000) - 0.1 * 0.0625) < 1e-7 && poly.rate(atBatch: 800_000) == 0)
        let step = DarknetLearningRate(learningRate: 0.1, policy: .step(step: 10, scale: 0.5))
        #expect(step.rate(atBatch: 9) == 0.1 && step.rate(atBatch: 25) == 0.025)
        let exp = DarknetLearningRate(learningRate: 1, policy: .exp(gamma: 0.5))
        #expect(exp.rate(atBatch: 3) == 0.125)
        let sig = DarknetLearningRate(learningRate: 1, policy: .sig(gamma: 1, step: 5))
        #expect(sig.rate(atBatch: 5) == 0.5)
        // A resumed run continues the schedule from the batches already trained.
        let resumed = DarknetLearningRate(learningRate: 0.001, burnIn: 1000, firstBatch: 500)
        #expect(resumed(0) == resumed.rate(atBatch: 501))
    }

    @Test func badNetOptionsAreClearErrors() throws {
        func message(_ net: String) -> String {
            let text = "[net]\nwidth=32\nheight=32\nchannels=3\n\(net)\n[convolutional]\nfilters=4\nsize=1\nactivation=linear\n"
            do { _ = try DarknetNetwork(config: DarknetConfig(text: text, file: "t.cfg")).trainingOptions(); return "no error" } catch { return "\(error)" }
        }
        #expect(message("batch=64\nsubdivisions=5").contains("not a multiple of subdivisions"))
        #expect(message("policy=cosine").contains("policy=cosine"))
        #expect(message("policy=steps\nsteps=10,20\nscales=.1").contains("same length"))
        #expect(message("momentum=nan").contains("momentum"))
        #expect(message("batch=0").contains("batch=0"))
    }

    @Test func darknetSGDIsMomentumWithKernelDecay() throws {
        let opt = DarknetSGD(learningRate: 0.1, momentum: 0.9, decay: 0.01)
        let kernel = Parameter("kernel", Tensor([1, -2])), bias = Parameter("biases", Tensor([1, -2]))
        var wk: [Float] = [1, -2], wb: [Float] = [1, -2], vk: [Float] = [0, 0], vb: [Float] = [0, 0]
        for step in 0..<3 {
            let g: [Float] = [0.5 + Float(step), -0.25]
            kernel.value.grad = Tensor(g); bias.value.grad = Tensor(g)
            opt.apply([kernel, bias])
            for i in 0..<2 {
                vk[i] = 0.9 * vk[i] + g[i] + 0.01 * wk[i]; wk[i] -= 0.1 * vk[i]
                vb[i] = 0.9 * vb[i] + g[i]; wb[i] -= 0.1 * vb[i]
            }
        }
        #expect(kernel.value.scalars == wk && bias.value.scalars == wb)
    }
}

/// Darknet's training loop: iterations, subdivisions, checkpoints, the per-iteration numbers.
@Suite(.serialized) struct DarknetTrainerTests {
    static func digits(_ count: Int, split: DigitsDetection.Split = .train, seed: UInt64 = 4) throws -> (URL, DetectionDataset) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-trainer-\(UUID().uuidString)")
        try DigitsDetection.write(split: split, count: count, seed: seed, digits: try DigitsDetection.Digits(), to: directory)
        return (directory, try DetectionDataset.load(directory, split: split == .train ? "train" : "val"))
    }

    static let cfg = DarknetTrainingTests.tinyDigitsCfg
        .replacingOccurrences(of: "[net]\n", with: "[net]\nbatch=8\nsubdivisions=2\nlearning_rate=0.01\nburn_in=2\nmax_batches=6\npolicy=steps\nsteps=4\nscales=.1\nflip=0\n")

    /// `random=1`: batches come at other multiples of 32 than the cfg's size every 10 batches, and
    /// the fully convolutional network trains on them (it used to stop on the input shape).
    @Test func multiScaleTrainingRunsAtEverySize() throws {
        let (directory, train) = try Self.digits(16)
        defer { try? FileManager.default.removeItem(at: directory) }
        let text = Self.cfg.replacingOccurrences(of: "width=64", with: "width=96").replacingOccurrences(of: "height=64", with: "height=96")
            .replacingOccurrences(of: "batch=8", with: "batch=2").replacingOccurrences(of: "subdivisions=2", with: "subdivisions=1")
            .replacingOccurrences(of: "truth_thresh=1", with: "truth_thresh=1\nrandom=1")
        let network = try RandomSeed.withSeed(4) { try DarknetNetwork(config: DarknetConfig(text: text, file: "multi.cfg")) }
        let trainer = try DarknetTrainer(network: network, train: train, seed: 1, maxBatches: 40)
        #expect(trainer.options.multiScale)
        var sizes = Set<Int>()
        while trainer.iteration < 40 {
            let r = try trainer.step()
            sizes.insert(r.inputSize)
            #expect(r.loss.isFinite)
        }
        #expect(sizes.count > 1 && sizes.allSatisfy { $0 % 32 == 0 && (64...128).contains($0) }, "sizes \(sizes)")
    }

    @Test func iterationsCheckpointsAndTheSchedule() throws {
        let (directory, train) = try Self.digits(24)
        defer { try? FileManager.default.removeItem(at: directory) }
        try RandomSeed.withSeed(6) {
            let network = try DarknetNetwork(config: DarknetConfig(text: Self.cfg, file: "tiny-digits.cfg"))
            let trainer = try DarknetTrainer(network: network, train: train, seed: 2)
            #expect(trainer.options.batch == 8 && trainer.options.miniBatch == 4 && trainer.maxBatches == 6)
            var reports: [DarknetTrainer.Iteration] = []
            while trainer.iteration < trainer.maxBatches { reports.append(try trainer.step()) }
            #expect(reports.map(\.iteration) == [1, 2, 3, 4, 5, 6] && network.seen == 48 && reports.last!.images == 48)
            // Burn-in (batch/2)^4 · rate, then the step at 4 (Darknet's rate of the update's batch).
            #expect(abs(reports[0].learningRate - 0.01 * 0.0625) < 1e-9 && reports[2].learningRate == 0.01)
            #expect(abs(reports[3].learningRate - 0.001) < 1e-9)
            #expect(reports.allSatisfy { $0.loss.isFinite && $0.loss > 0 } && reports.last!.darknetLine.hasPrefix("6: "))
            // The checkpoint is Darknet's file, with `seen`, and gives the same network back.
            let path = directory.appendingPathComponent("tiny_last.weights").path
            try trainer.saveWeights(path)
            let reloaded = try DarknetNetwork(config: DarknetConfig(text: Self.cfg, file: "tiny-digits.cfg"))
            let header = try reloaded.loadWeights(path)
            #expect(header.seen == 48 && reloaded.seen == 48)
            let x = TestData.uniform([1, 64, 64, 3], seed: 3)
            #expect(reloaded.forward(x)[0].scalars == network.forward(x)[0].scalars)
            // A trainer over the reloaded weights continues the schedule where it stopped.
            let resumed = try DarknetTrainer(network: reloaded, train: train, seed: 2, maxBatches: 8)
            #expect(resumed.iteration == 6 && abs(resumed.optimizer.learningRate - 0.001) < 1e-9)
        }
    }

    @Test func badSetupsAreClearErrors() throws {
        let (directory, train) = try Self.digits(4)
        defer { try? FileManager.default.removeItem(at: directory) }
        let network = try DarknetNetwork(config: DarknetConfig(text: Self.cfg, file: "tiny-digits.cfg"))
        func message(_ body: () throws -> Void) -> String { do { try body(); return "no error" } catch { return "\(error)" } }
        #expect(message { _ = try DarknetTrainer(network: network, train: train, batch: 6, subdivisions: 4) }.contains("multiple of subdivisions"))
        #expect(message { _ = try DarknetTrainer(network: network, train: train, batch: 16, subdivisions: 1) }.contains("fewer than one pass"))
        var other = train
        other.classNames = Array(other.classNames.prefix(3))
        #expect(message { _ = try DarknetTrainer(network: network, train: other) }.contains("predict 10 classes, the data set has 3"))
        let noMax = Self.cfg.replacingOccurrences(of: "max_batches=6", with: "max_batches=0")
        let net0 = try DarknetNetwork(config: DarknetConfig(text: noMax, file: "t.cfg"))
        #expect(message { _ = try DarknetTrainer(network: net0, train: train) }.contains("max_batches is 0"))
    }
}

/// Gradients accumulated over passes equal one pass over the whole batch (a network without
/// batch norm; the loss a batch mean).
@Suite struct GradientAccumulationTests {
    @Test func twoHalfPassesEqualOneFullBatch() throws {
        let x = TestData.uniform([8, 5], seed: 1), y = TestData.uniform([8, 3], seed: 2)
        func model() -> Model {
            RandomSeed.withSeed(3) {
                let m = Sequential(inputShape: [5]) { Dense(units: 4, activation: .tanh); Dense(units: 3) }
                m.compile(optimizer: .sgd(learningRate: 0.1), loss: .meanSquaredError)
                return m
            }
        }
        let whole = model(), halves = model()
        try whole.trainStep(Batch(x, y))
        for part in [0..<4, 4..<8] {
            try halves.accumulateGradients(Batch(x.sliced(axis: 0, part), y.sliced(axis: 0, part)), scale: 0.5)
        }
        try halves.applyGradients()
        for (a, b) in zip(whole.trainableParameters, halves.trainableParameters) {
            let worst = zip(a.value.scalars, b.value.scalars).map { abs($0 - $1) }.max() ?? 0
            #expect(worst < 1e-6, "\(a.name): \(worst)")
        }
        #expect(whole.optimizer?.iterations == 1 && halves.optimizer?.iterations == 1)
    }
}

/// Darknet's `.data` file and the lists it names.
@Suite struct DarknetDataFileTests {
    @Test func readsTheRecipeAndItsLists() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-data-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("obj"), withIntermediateDirectories: true)
        let image = try Image(contentsOf: TestFiles.image("dog.jpg"))
        try image.write(jpeg: directory.appendingPathComponent("obj/a.jpg").path)
        try "1 0.5 0.5 0.25 0.5\r\n".write(to: directory.appendingPathComponent("obj/a.txt"), atomically: true, encoding: .utf8)
        try directory.appendingPathComponent("obj/a.jpg").path.write(to: directory.appendingPathComponent("train.txt"), atomically: true, encoding: .utf8)
        try "cat\ndog\n".write(to: directory.appendingPathComponent("obj.names"), atomically: true, encoding: .utf8)
        let text = "classes = 2\ntrain = train.txt\nvalid = train.txt\nnames = obj.names  # the names\nbackup = backup/\n"
        let path = directory.appendingPathComponent("obj.data").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let file = try DarknetDataFile.load(path)
        #expect(file.classes == 2 && file.backup == "backup/" && file.train == directory.appendingPathComponent("train.txt").path)
        let (train, valid) = try file.datasets()
        #expect(train.classNames == ["cat", "dog"] && train.images.count == 1 && valid?.images.count == 1)
        #expect(train.images[0].objects.first?.classIndex == 1 && train.images[0].objects.first?.className == "dog")
        // Errors name the file and what is wrong.
        func message(_ t: String) -> String { do { _ = try DarknetDataFile(text: t, file: "x.data"); return "no error" } catch { return "\(error)" } }
        #expect(message("train = a.txt\n").contains("missing classes="))
        #expect(message("classes = two\ntrain = a.txt\n").contains("classes=two"))
        #expect(message("classes = 2\n").contains("missing train="))
        #expect(message("classes 2\n").contains("key=value"))
        let three = try DarknetDataFile(text: text.replacingOccurrences(of: "classes = 2", with: "classes = 3"), file: path)
        #expect(throws: DarknetError.self) { try three.datasets() }
    }
}

/// `ocelli train` and `ocelli detector train` as a user runs them (a child process).
@Suite(.serialized) struct TrainCommandTests {
    @Test func trainWritesDarknetsFilesAndItsSummary() throws {
        let (directory, _) = try DarknetTrainerTests.digits(16)
        defer { try? FileManager.default.removeItem(at: directory) }
        try DigitsDetection.write(split: .val, count: 4, seed: 5, digits: try DigitsDetection.Digits(), to: directory)
        let cfg = directory.appendingPathComponent("tiny.cfg").path
        try DarknetTrainerTests.cfg.write(toFile: cfg, atomically: true, encoding: .utf8)
        let backup = directory.appendingPathComponent("backup").path
        guard case .success = OcelliExecutable.path else {
            if case .failure(let missing) = OcelliExecutable.path { Issue.record("\(missing)") }
            return
        }
        let r = try OcelliExecutable.run(["train", "--cfg", cfg, "--data", directory.path, "--max-batches", "2", "--map-every", "1",
                                          "--backup", backup, "--threads", "1", "--json"])
        #expect(r.status == 0, "exit \(r.status): \(r.error)")
        // Darknet's lines on stderr (stdout holds the JSON), then one JSON object.
        #expect(r.error.contains("1: ") && r.error.contains(" avg, ") && r.error.contains("Region 7 Avg IOU:"), "\(r.error)")
        #expect(r.error.contains("mean average precision (mAP@0.50)"), "\(r.error)")
        let json = try #require(r.output.split(separator: "\n").last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] })
        #expect(json["iterations"] as? Int == 2 && (json["images_per_second"] as? Double ?? 0) > 0 && json["best_map50"] is Double)
        for name in ["tiny_last.weights", "tiny_best.weights", "tiny_final.weights", "tiny_final.safetensors", "chart.svg"] {
            #expect(FileManager.default.fileExists(atPath: (backup as NSString).appendingPathComponent(name)), "\(name) missing")
        }
        let reloaded = try DarknetNetwork(config: DarknetConfig(text: DarknetTrainerTests.cfg, file: "tiny.cfg"))
        #expect(try reloaded.loadWeights((backup as NSString).appendingPathComponent("tiny_final.weights")).seen == 16)
        // A bad option and a missing data set are clear errors, not crashes.
        let bad = try OcelliExecutable.run(["train", "--cfg", cfg, "--data", directory.path, "--max-batches", "0"])
        #expect(bad.status != 0 && bad.error.contains("--max-batches must be between 1 and"), "\(bad.error)")
        let missing = try OcelliExecutable.run(["train", "--cfg", cfg, "--data", directory.appendingPathComponent("nope").path, "--backup", backup])
        #expect(missing.status != 0 && missing.error.contains("nope"), "\(missing.error)")
    }

    /// AlexeyAB's recipe with damaged samples: each is left out with a warning naming its file
    /// (and line), an empty label file is a negative image, and training runs on the rest.
    @Test func badSamplesAreLeftOutWithClearWarnings() throws {
        let (directory, train) = try DarknetTrainerTests.digits(16)
        defer { try? FileManager.default.removeItem(at: directory) }
        guard case .success = OcelliExecutable.path else {
            if case .failure(let missing) = OcelliExecutable.path { Issue.record("\(missing)") }
            return
        }
        // Darknet's layout: JPEGImages/x.png → labels/x.txt, a list of image paths, a .data file.
        let labels = directory.appendingPathComponent("labels")
        try FileManager.default.createDirectory(at: labels, withIntermediateDirectories: true)
        var list: [String] = []
        for image in train.images {
            let w = Double(image.width), h = Double(image.height)
            let text = image.objects.map { o in
                String(format: "%d %.6f %.6f %.6f %.6f\n", o.classIndex, (o.xmin + o.xmax) / 2 / w, (o.ymin + o.ymax) / 2 / h, o.width / w, o.height / h)
            }.joined()
            try text.write(to: labels.appendingPathComponent(image.id + ".txt"), atomically: true, encoding: .utf8)
            list.append(image.file.path)
        }
        func label(_ k: Int) -> URL { labels.appendingPathComponent(train.images[k].id + ".txt") }
        func append(_ k: Int, _ line: String) throws {
            let text = try String(contentsOf: label(k), encoding: .utf8) + line + "\n"
            try text.write(to: label(k), atomically: true, encoding: .utf8)
        }
        try append(0, "12 0.5 0.5 0.1 0.1")                      // class out of range
        try append(1, "3 0.5 abc 0.1 0.1")                        // not a number
        try append(2, "3 1.7 1.8 0.1 0.1")                        // outside the image
        try FileManager.default.removeItem(at: label(3))         // no label file
        try "".write(to: label(4), atomically: true, encoding: .utf8)   // a negative: allowed
        try Data("not an image".utf8).write(to: train.images[5].file)   // unreadable image
        list.append(directory.appendingPathComponent("JPEGImages/missing.png").path)   // no such image
        let listFile = directory.appendingPathComponent("train.txt")
        try (list.joined(separator: "\n") + "\n").write(to: listFile, atomically: true, encoding: .utf8)
        let data = directory.appendingPathComponent("obj.data")
        try "classes = 10\ntrain = \(listFile.path)\nnames = \(directory.appendingPathComponent("labels.txt").path)\nbackup = \(directory.appendingPathComponent("backup").path)\n"
            .write(to: data, atomically: true, encoding: .utf8)
        let cfg = directory.appendingPathComponent("tiny.cfg").path
        try DarknetTrainerTests.cfg.replacingOccurrences(of: "batch=8\nsubdivisions=2", with: "batch=4\nsubdivisions=1")
            .write(toFile: cfg, atomically: true, encoding: .utf8)
        let r = try OcelliExecutable.run(["detector", "train", data.path, cfg, "--max-batches", "2", "--threads", "1", "--json"])
        #expect(r.status == 0, "exit \(r.status): \(r.error)")
        let warnings = r.error.split(separator: "\n").filter { $0.hasPrefix("warning: ") }.map(String.init)
        let expected = [(label(0).lastPathComponent + ":", "class 12 is out of range"), (label(1).lastPathComponent + ":", "'abc' is not a number"),
                        (label(2).lastPathComponent + ":", "outside"), (label(3).lastPathComponent, "no label file"),
                        (train.images[5].file.lastPathComponent, "unknown image format"), ("missing.png", "no such file")]
        for (file, words) in expected {
            #expect(warnings.contains { $0.contains(file) && $0.contains(words) }, "no warning naming \(file) (\(words)): \(warnings)")
        }
        #expect(warnings.count == expected.count, "\(warnings)")
        // Line numbers: the bad line is the last of each label file.
        let lines0 = try String(contentsOf: label(0), encoding: .utf8).split(separator: "\n").count
        #expect(warnings.contains { $0.contains("\(label(0).lastPathComponent):\(lines0):") }, "\(warnings)")
        #expect(r.error.contains("11 training images"), "16 + 1 listed, 6 left out, the negative kept: \(r.error)")
        #expect(FileManager.default.fileExists(atPath: directory.appendingPathComponent("backup/tiny_final.weights").path))
    }

    /// The Keras side of the command: a progress bar with the ETA, EarlyStopping on the mAP
    /// (--patience), CSVLogger and TensorBoard files.
    @Test func kerasProgressEarlyStoppingAndLogs() throws {
        let (directory, _) = try DarknetTrainerTests.digits(8)
        defer { try? FileManager.default.removeItem(at: directory) }
        try DigitsDetection.write(split: .val, count: 2, seed: 5, digits: try DigitsDetection.Digits(), to: directory)
        guard case .success = OcelliExecutable.path else {
            if case .failure(let missing) = OcelliExecutable.path { Issue.record("\(missing)") }
            return
        }
        let cfg = directory.appendingPathComponent("tiny.cfg").path
        try DarknetTrainerTests.cfg.write(toFile: cfg, atomically: true, encoding: .utf8)
        let csv = directory.appendingPathComponent("log.csv").path, events = directory.appendingPathComponent("tb").path
        let r = try OcelliExecutable.run(["train", "--cfg", cfg, "--data", directory.path, "--max-batches", "6", "--map-every", "1",
                                          "--patience", "2", "--progress", "keras", "--csv", csv, "--tensorboard", events,
                                          "--backup", directory.appendingPathComponent("backup").path, "--threads", "1"])
        #expect(r.status == 0, "exit \(r.status): \(r.error)")
        #expect(r.output.contains("1/6 ━━━━") && r.output.contains(" - avg_loss: ") && r.output.contains(" - learning_rate: "), "\(r.output)")
        #expect(!r.output.contains("Region "), "keras progress replaces Darknet's lines: \(r.output)")
        let rows = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        #expect(rows.first == "iteration,avg_loss,loss,learning_rate,map50,seconds", "\(rows)")
        // EarlyStopping's rule on the logged mAPs: stop after 2 validations without a new best.
        let maps = rows.dropFirst().compactMap { $0.split(separator: ",", omittingEmptySubsequences: false).dropFirst(4).first.flatMap { Double($0) } }
        var best = -1.0, since = 0, stop: Int?
        for (k, m) in maps.enumerated() {
            if m > best { best = m; since = 0 } else { since += 1 }
            if since >= 2 && k + 1 < 6 { stop = k + 1; break }
        }
        #expect(maps.count == (stop ?? 6), "one row per validation up to the stop: \(rows)")
        #expect(r.output.contains("Early stopping at iteration") == (stop != nil), "\(maps): \(r.output)")
        let files = try FileManager.default.contentsOfDirectory(atPath: events).filter { $0.hasPrefix("events.out.tfevents.") }
        let read = try TensorBoardEvent.read(path: (events as NSString).appendingPathComponent(try #require(files.first)))
        let tags = Set(read.flatMap { $0.scalars.map(\.tag) })
        #expect(tags == ["loss", "avg_loss", "learning_rate", "map50"], "\(tags)")
        #expect(read.flatMap(\.scalars).filter { $0.tag == "map50" }.count == maps.count)
        let noValidation = try OcelliExecutable.run(["train", "--cfg", cfg, "--data", directory.path, "--val-split", "none", "--patience", "2",
                                                     "--backup", directory.appendingPathComponent("backup2").path])
        #expect(noValidation.status != 0 && noValidation.error.contains("--patience stops on the validation mAP"), "\(noValidation.error)")
    }
}

/// Transfer learning as the course does it: a backbone's weights (`partial`), frozen layers.
@Suite(.serialized) struct TransferLearningTests {
    static func values(_ l: Layer?) -> [[Float]] { (l?.parameters ?? []).map(\.value.scalars) }

    @Test func frozenLayersStayBitwiseAndTheRestTrains() throws {
        let (directory, train) = try DarknetTrainerTests.digits(16)
        defer { try? FileManager.default.removeItem(at: directory) }
        for (cfg, freeze) in [(DarknetTrainerTests.cfg, 4 as Int?),
                              (DarknetTrainerTests.cfg.replacingOccurrences(of: "[maxpool]\nsize=2\nstride=2\n\n[convolutional]\nbatch_normalize=1\nfilters=32",
                                                                            with: "[maxpool]\nsize=2\nstride=2\nstopbackward=1\n\n[convolutional]\nbatch_normalize=1\nfilters=32"), nil)] {
            let network = try RandomSeed.withSeed(8) { try DarknetNetwork(config: DarknetConfig(text: cfg, file: "t.cfg")) }
            let before = network.layers.map { Self.values($0.layer) }
            let trainer = try DarknetTrainer(network: network, train: train, seed: 1, maxBatches: 2, freeze: freeze)
            #expect(trainer.frozenLayers == 4)
            try trainer.step(); try trainer.step()
            let after = network.layers.map { Self.values($0.layer) }
            #expect(after[0] == before[0] && after[2] == before[2], "frozen layers changed")
            #expect(after[4] != before[4] && after[6] != before[6], "the layers after the frozen ones must train")
        }
    }

    @Test func partialWeightsMakeABackboneForAnotherHead() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-partial-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cfg = DarknetTrainerTests.cfg
        let trained = try RandomSeed.withSeed(1) { try DarknetNetwork(config: DarknetConfig(text: cfg, file: "t.cfg")) }
        try trained.loadWeights(syntheticWeights(trained))
        trained.seen = 1234
        let backbone = directory.appendingPathComponent("t.conv.4").path
        trained.seen = 0
        try trained.saveWeights(backbone, upTo: 4)     // conv 0 and conv 2
        let fresh = try RandomSeed.withSeed(2) { try DarknetNetwork(config: DarknetConfig(text: cfg, file: "t.cfg")) }
        let initial = fresh.layers.map { Self.values($0.layer) }
        let (header, loaded) = try fresh.loadWeights(backbone, partial: true)
        #expect(loaded == 2 && header.seen == 0)
        #expect(Self.values(fresh.layers[0].layer) == Self.values(trained.layers[0].layer))
        #expect(Self.values(fresh.layers[2].layer) == Self.values(trained.layers[2].layer))
        // The head keeps its own initialisation (Darknet's re-initialised last layers).
        #expect(Self.values(fresh.layers[4].layer) == initial[4] && Self.values(fresh.layers[6].layer) == initial[6])
        // Without `partial` a backbone is a truncated file; a file ending inside a layer is an error either way.
        #expect(throws: DarknetError.self) { try fresh.loadWeights(backbone) }
        var cut = try Data(contentsOf: URL(fileURLWithPath: backbone))
        cut.removeLast(8)
        let cutPath = directory.appendingPathComponent("cut.weights").path
        try cut.write(to: URL(fileURLWithPath: cutPath))
        #expect(throws: DarknetError.self) { try fresh.loadWeights(cutPath, partial: true) }
    }
}

/// An interrupted run, resumed from its checkpoint, ends with the same weights as one that was
/// never interrupted.
@Suite(.serialized) struct ResumeTests {
    @Test func resumedEqualsUninterrupted() throws {
        let (directory, train) = try DarknetTrainerTests.digits(24)
        defer { try? FileManager.default.removeItem(at: directory) }
        let cfg = DarknetTrainerTests.cfg
        func fresh() throws -> DarknetNetwork { try RandomSeed.withSeed(9) { try DarknetNetwork(config: DarknetConfig(text: cfg, file: "t.cfg")) } }
        func parameters(_ n: DarknetNetwork) -> [[Float]] { n.layers.flatMap { ($0.layer?.parameters ?? []).map(\.value.scalars) } }

        let straight = try fresh()
        let a = try DarknetTrainer(network: straight, train: train, seed: 3, maxBatches: 5)
        var lossesA: [Float] = []
        while a.iteration < 5 { lossesA.append(try a.step().averageLoss) }

        let first = try fresh()
        let b = try DarknetTrainer(network: first, train: train, seed: 3, maxBatches: 5)
        var lossesB: [Float] = []
        while b.iteration < 2 { lossesB.append(try b.step().averageLoss) }
        let weights = directory.appendingPathComponent("t_last.weights").path, state = directory.appendingPathComponent("t_last.state.safetensors").path
        try b.saveState(state)
        try b.saveWeights(weights)

        let second = try fresh()
        try second.loadWeights(weights)
        let c = try DarknetTrainer(network: second, train: train, seed: 3, maxBatches: 5)
        try c.resume(state: state)
        while c.iteration < 5 { lossesB.append(try c.step().averageLoss) }
        #expect(lossesB == lossesA)
        #expect(parameters(second) == parameters(straight), "resumed weights differ from the uninterrupted run's")

        // The state is one unit: without the .weights (a run killed before writing them), or
        // beside older ones, it resumes the same run from its own weights.
        let third = try fresh()
        let d = try DarknetTrainer(network: third, train: train, seed: 3, maxBatches: 5)
        try d.resume(state: state)
        #expect(d.iteration == 2)
        while d.iteration < 5 { _ = try d.step() }
        #expect(parameters(third) == parameters(straight), "resumed from the state alone, the weights differ")

        // Another seed is refused with the reason; so is a state without weights (written before
        // they were kept in it) beside weights of another moment.
        let e = try DarknetTrainer(network: second, train: train, seed: 4, maxBatches: 5)
        #expect(throws: DarknetError.self) { try e.resume(state: state) }
        let (tensors, metadata) = try SafeTensors.decodeWithMetadata(Data(contentsOf: URL(fileURLWithPath: state)), path: state)
        let old = directory.appendingPathComponent("old.state.safetensors").path
        try writeAtomically(SafeTensors.encode(tensors.filter { !$0.key.hasPrefix("weights/") }.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                                               metadata: metadata.filter { $0.key != "contains_weights" }), to: old)
        let f = try DarknetTrainer(network: try fresh(), train: train, seed: 3, maxBatches: 5)
        #expect(throws: DarknetError.self) { try f.resume(state: old) }   // seen 0, the state is at 16
    }
}
