import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliVision

/// Two Gaussian blobs in 2-D: an easy problem any working training loop solves.
func blobs(_ n: Int, seed: UInt64) -> (Tensor, Tensor) {
    var g = SeededGenerator(seed: seed)
    var x = [Float](), y = [Float]()
    for i in 0..<n {
        let c = i % 2
        x.append(Float(c == 0 ? -1 : 1) + 0.4 * g.nextNormal())
        x.append(Float(c == 0 ? 1 : -1) + 0.4 * g.nextNormal())
        y.append(Float(c))
    }
    return (Tensor(shape: [n, 2], scalars: x), Tensor(shape: [n], scalars: y))
}

func tinyModel() -> Sequential {
    RandomSeed.set(7)
    let m = Sequential(inputShape: [2]) { Dense(units: 8, activation: .relu); Dense(units: 2, activation: .softmax) }
    m.compile(optimizer: .adam(learningRate: 0.05), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
    return m
}

func temporaryDirectory() -> String {
    let d = NSTemporaryDirectory() + "ocelli-tests-\(UUID().uuidString)"
    try! FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
    return d
}

@Suite(.serialized) struct TrainingTests {
    @Test func fitLearnsAndReportsHistory() throws {
        let (x, y) = blobs(256, seed: 1)
        let m = tinyModel()
        let h = try m.fit(x: x, y: y, batchSize: 32, epochs: 5, validationSplit: 0.25, verbose: .silent)
        #expect(h.history["loss"]!.count == 5)
        #expect(h.history["loss"]!.last! < h.history["loss"]!.first!)
        #expect(h.history["val_accuracy"]!.last! > 0.95)
        #expect(h.epochSeconds.count == 5)
        let r = try m.evaluate(x: x, y: y)
        #expect(r["accuracy"]! > 0.95)
        #expect(m.predict(x: x, batchSize: 50).shape == [256, 2])
        let svg = h.svg()
        #expect(svg.hasPrefix("<svg") && svg.contains(">loss</text>") && svg.contains(">accuracy</text>"))
        #expect(svg.components(separatedBy: "<polyline").count == 5)  // loss, val_loss, accuracy, val_accuracy
    }

    @Test func sameSeedSameWeights() throws {
        let (x, y) = blobs(64, seed: 2)
        // Each run in its own sequence: other suites build models on other threads meanwhile.
        func train() throws -> [Float] {
            try RandomSeed.withSeed(7) {
                let m = tinyModel()
                try m.fit(x: x, y: y, batchSize: 16, epochs: 2, verbose: .silent)
                return m.getWeights().flatMap(\.scalars)
            }
        }
        #expect(try train() == train())
    }

    /// A `withSeed` block draws only from its own sequence: builders drawing from the global one
    /// at the same time do not shift it.
    @Test func scopedSeedIsIsolated() async {
        func weights() -> [Float] {
            RandomSeed.withSeed(21) {
                let m = Sequential(inputShape: [3]) { Dense(units: 4); Dense(units: 2) }
                return m.getWeights().flatMap(\.scalars)
            }
        }
        let reference = weights()
        let results = await withTaskGroup(of: [Float].self) { group in
            for i in 0..<8 {
                group.addTask {
                    if i % 2 == 0 { return weights() }
                    // Draws from the global sequence at the same time.
                    for _ in 0..<50 { _ = Sequential(inputShape: [3]) { Dense(units: 4) } }
                    return reference
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(results.count == 8 && results.allSatisfy { $0 == reference })
    }

    @Test func frozenLayersDoNotMove() throws {
        let (x, y) = blobs(64, seed: 3)
        let m = tinyModel()
        m.layers[0].trainable = false
        let before = m.layers[0].parameters.map(\.value.scalars)
        try m.fit(x: x, y: y, epochs: 1, verbose: .silent)
        #expect(m.layers[0].parameters.map(\.value.scalars) == before)
        #expect(m.layers[1].parameters[0].value.scalars != tinyModel().layers[1].parameters[0].value.scalars)
    }

    @Test func crossEntropyOnASoftmaxOutputUsesTheLogits() throws {
        // A confidently wrong prediction: p(true) = e^-40. Clipped probabilities would report
        // −log(1e-7) ≈ 16.1 and give no gradient; the logits give the exact 40.
        RandomSeed.set(1)
        let m = Sequential(inputShape: [1]) { Dense(units: 2, activation: .softmax, kernelInitializer: .zeros) }
        let d = m.layers[0] as! Dense
        d.bias!.assign(Tensor([40, 0]))
        m.compile(optimizer: .sgd(learningRate: 0.1), loss: .sparseCategoricalCrossentropy())
        #expect(Swift.abs(try m.evaluate(x: Tensor([[1]]), y: Tensor([1]))["loss"]! - 40) < 1e-3)
        try m.fit(x: Tensor([[1]]), y: Tensor([1]), epochs: 1, verbose: .silent)
        #expect(d.bias!.value.scalars[1] > 0.09)  // the gradient reached the bias
    }

    @Test func regularizationAddsToTheLoss() throws {
        RandomSeed.set(1)
        let m = Sequential(inputShape: [2]) { Dense(units: 1, kernelInitializer: .ones, kernelRegularizer: .l2(0.5)) }
        m.compile(optimizer: .sgd(), loss: .meanSquaredError)
        let r = try m.evaluate(x: Tensor([[0, 0]]), y: Tensor([[0]]))
        #expect(Swift.abs(r["loss"]! - 1.0) < 1e-6)  // 0 data loss + 0.5·(1² + 1²)
    }
}

@Suite(.serialized) struct CallbackTests {
    @Test func earlyStoppingStopsAndRestores() throws {
        let (x, y) = blobs(64, seed: 4)
        let m = tinyModel()
        var epochs = 0
        // A fake monitored value that gets worse after epoch 1.
        let fake = LambdaCallback(onEpochEnd: { _, _ in epochs += 1 })
        final class Inject: Callback {
            override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) { logs["score"] = epoch == 1 ? -1 : Float(epoch) }
        }
        let stop = EarlyStopping(monitor: "score", patience: 2, restoreBestWeights: true)
        try m.fit(x: x, y: y, epochs: 20, callbacks: [Inject(), stop, fake], verbose: .silent)
        #expect(epochs == 4)  // best at epoch 1, two more without improvement, stop after epoch 3
        #expect(stop.stoppedEpoch == 3)
    }

    @Test func checkpointCsvAndLearningRateCallbacks() throws {
        let (x, y) = blobs(64, seed: 5)
        let dir = temporaryDirectory()
        let m = tinyModel()
        let ckpt = ModelCheckpoint(path: dir + "/w-{epoch}.safetensors", monitor: "loss", saveBestOnly: false)
        let csv = CSVLogger(path: dir + "/log.csv")
        let sched = LearningRateScheduler { epoch, lr in epoch == 0 ? lr : lr / 2 }
        try m.fit(x: x, y: y, epochs: 3, callbacks: [ckpt, sched, csv], verbose: .silent)
        #expect(ckpt.savedPaths.count == 3)
        #expect(FileManager.default.fileExists(atPath: dir + "/w-03.safetensors"))
        let rows = try String(contentsOfFile: dir + "/log.csv", encoding: .utf8).split(separator: "\n")
        #expect(rows.count == 4 && rows[0] == "epoch,accuracy,learning_rate,loss")
        #expect(Swift.abs(m.optimizer!.learningRate - 0.0125) < 1e-7)
        // No temporary files left behind by the atomic writes.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).allSatisfy { !$0.hasPrefix(".") })
    }

    @Test func reduceOnPlateauAndTerminateOnNaN() throws {
        let (x, y) = blobs(32, seed: 6)
        let m = tinyModel()
        final class Flat: Callback {
            override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) { logs["flat"] = 1 }
        }
        let plateau = ReduceLROnPlateau(monitor: "flat", factor: 0.5, patience: 1)
        try m.fit(x: x, y: y, epochs: 3, callbacks: [Flat(), plateau], verbose: .silent)
        #expect(Swift.abs(m.optimizer!.learningRate - 0.0125) < 1e-7)  // 0.05 → 0.025 → 0.0125

        let bad = tinyModel()
        var xs = x; xs[0, 0] = .nan
        var batches = 0
        try bad.fit(x: xs, y: y, batchSize: 4, epochs: 2, shuffle: false,
                callbacks: [TerminateOnNaN(), LambdaCallback(onBatchEnd: { _, _ in batches += 1 })], verbose: .silent)
        #expect(batches == 1)
    }

    @Test func progressLineHasKerasFormat() throws {
        let line = ProgressLine.format(current: 469, target: 469, elapsed: 7.2, logs: ["loss": 0.3294, "accuracy": 0.8814,
                                       "val_loss": 0.2956, "val_accuracy": 0.8946], final: true)
        #expect(line == "469/469 ━━━━━━━━━━━━━━━━━━━━ 7s 15ms/step - accuracy: 0.8814 - loss: 0.3294 - val_accuracy: 0.8946 - val_loss: 0.2956")
        let running = ProgressLine.format(current: 12, target: 469, elapsed: 1.2, logs: ["loss": 0.00012], final: false)
        #expect(running == " 12/469 ━━━━━━━━━━━━━━━━━━━━ 45s - loss: 1.2000e-04")
        let colored = ProgressLine.format(current: 235, target: 469, elapsed: 3, logs: [:], final: false, color: true)
        #expect(colored.contains("\u{1b}[32m" + String(repeating: "━", count: 10) + "\u{1b}[0m"))
        #expect(ProgressLine.formatDuration(3725) == "1:02:05" && ProgressLine.formatDuration(65) == "1:05")
        #expect(ProgressLine.formatPerStep(0.0004) == "400us/step" && ProgressLine.formatPerStep(2) == "2s/step")
    }
}

@Suite(.serialized) struct SerializationTests {
    @Test func saveLoadGivesIdenticalPredictions() throws {
        RandomSeed.set(3)
        let input = Input(shape: [6, 6, 2])
        let c = Conv2D(filters: 4, kernelSize: 3, padding: .same, activation: .relu)(input)
        let b = BatchNormalization()(c)
        let skip = Add()([b, Conv2D(filters: 4, kernelSize: 1)(input)])
        let out = Dense(units: 3, activation: .softmax)(Flatten()(MaxPooling2D(2)(skip)))
        let m = Model(inputs: input, outputs: out, name: "skip_net")
        m.compile(optimizer: .adam(), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
        let x = Tensor.uniform([8, 6, 6, 2], seed: 1), y = Tensor([0, 1, 2, 0, 1, 2, 0, 1])
        try m.fit(x: x, y: y, batchSize: 4, epochs: 2, verbose: .silent)
        let dir = temporaryDirectory()
        try m.save(to: dir)
        let loaded = try Model.load(from: dir)
        #expect(loaded.name == "skip_net")
        #expect(loaded.layers.map(\.name) == m.layers.map(\.name))
        #expect(loaded(x).scalars == m(x).scalars)
        loaded.compile(optimizer: .adam(), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
        #expect(try loaded.evaluate(x: x, y: y) == m.evaluate(x: x, y: y))

        let seq = tinyModel()
        try seq.save(to: dir + "/seq")
        let seq2 = try Model.load(from: dir + "/seq")
        #expect(seq2 is Sequential)
        #expect(seq2(Tensor([[0.5, -0.5]])).scalars == seq(Tensor([[0.5, -0.5]])).scalars)
    }

    @Test func badWeightFilesGiveClearErrors() throws {
        let dir = temporaryDirectory()
        let m = tinyModel()
        try m.saveWeights(to: dir + "/w.safetensors")
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/w.safetensors"))
        try data.prefix(data.count - 10).write(to: URL(fileURLWithPath: dir + "/cut.safetensors"))
        #expect(throws: FileFormatError.self) { try m.loadWeights(from: dir + "/cut.safetensors") }
        do { try m.loadWeights(from: dir + "/cut.safetensors") } catch { #expect("\(error)".contains("cut.safetensors")) }
        let other = Sequential(inputShape: [3]) { Dense(units: 8); Dense(units: 2) }
        do { try other.loadWeights(from: dir + "/w.safetensors"); Issue.record("expected a shape error") } catch {
            #expect("\(error)".contains("dense/kernel") && "\(error)".contains("[3, 8]"))
        }
        #expect(throws: FileFormatError.self) { try m.loadWeights(from: dir + "/missing.safetensors") }
        #expect(throws: FileFormatError.self) { try Model.fromArchitecture(Data("{}".utf8)) }
    }

    /// A destination that cannot be written gives the path and the system's reason, up front
    /// (`ensureWritableDirectory`, before training) and when saving; nothing half-written stays.
    @Test func unwritableDestinationsGiveClearErrors() throws {
        let dir = temporaryDirectory()
        let file = dir + "/a-file"
        try Data("x".utf8).write(to: URL(fileURLWithPath: file))
        try ensureWritableDirectory(dir + "/new/folder")  // created
        #expect(FileManager.default.fileExists(atPath: dir + "/new/folder"))
        do { try ensureWritableDirectory(file + "/sub"); Issue.record("expected an error") } catch {
            #expect("\(error)".hasPrefix(file + "/sub: cannot create the folder: "), "\(error)")
        }
        let m = tinyModel()
        do { try m.save(to: file + "/model"); Issue.record("expected an error") } catch {
            #expect("\(error)".contains(file + "/model/model.json: cannot create the folder"), "\(error)")
            #expect(!"\(error)".contains("NSCocoaErrorDomain"), "\(error)")
        }
        #expect(folder(of: "plot.svg") == "." && folder(of: "runs/plot.svg") == "runs")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["a-file", "new"])
    }

    @Test func safetensorsLayoutIsStandard() throws {
        let data = try SafeTensors.encode([("a", Tensor([1, 2])), ("b", Tensor([[3]]))])
        let n = Int(data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = try JSONSerialization.jsonObject(with: data.subdata(in: 8..<(8 + n))) as! [String: Any]
        #expect((header["a"] as! [String: Any])["data_offsets"] as! [Int] == [0, 8])
        #expect((header["b"] as! [String: Any])["shape"] as! [Int] == [1, 1])
        #expect(data.count == 8 + n + 12)
        #expect(try SafeTensors.decode(data, path: "x")["b"]!.scalars == [3])
    }
}

@Suite struct MNISTTests {
    @Test func loadsTheBundledFiles() throws {
        let m = try MNIST()
        #expect(m.trainImages.shape == [60000, 28, 28, 1] && m.testImages.shape == [10000, 28, 28, 1])
        var counts = [Int](repeating: 0, count: 10)
        for l in m.trainLabels.scalars { counts[Int(l)] += 1 }
        #expect(counts == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949])
        #expect(m.trainImages.scalars.allSatisfy { $0 >= 0 && $0 <= 1 })
        #expect(toCategorical(Tensor([2, 0]), numClasses: 3).scalars == [0, 0, 1, 1, 0, 0])
    }

    @Test func truncatedOrWrongFilesAreReported() throws {
        let dir = temporaryDirectory()
        let raw = try Data(contentsOf: URL(fileURLWithPath: MNIST.defaultDirectory + "/t10k-labels-idx1-ubyte.gz"))
        try raw.prefix(raw.count / 2).write(to: URL(fileURLWithPath: dir + "/cut.gz"))
        do { _ = try IDX.read(path: dir + "/cut.gz"); Issue.record("expected an error") } catch {
            #expect("\(error)".contains("cut.gz") && "\(error)".contains("truncated"))
        }
        try Data([1, 2, 3, 4, 5]).write(to: URL(fileURLWithPath: dir + "/junk"))
        #expect(throws: MNISTError.self) { try IDX.read(path: dir + "/junk") }
        #expect(throws: MNISTError.self) { try MNIST(directory: dir) }
    }
}

/// The README's Keras example, on a slice of MNIST (the calls and types must stay as documented).
@Suite struct ReadmeKerasExampleTests {
    @Test func readmeExampleRuns() throws {
        let mnist = try MNIST()
        let model = CourseModels.mnistConvnet()  // the README spells out the same layers
        #expect(model.summary().contains("34,826"))
        let dir = temporaryDirectory()
        model.compile(optimizer: .adam(), loss: .categoricalCrossentropy(), metrics: [.accuracy])
        let x = mnist.trainImages.sliced(axis: 0, 0..<512), y = toCategorical(mnist.trainLabels.sliced(axis: 0, 0..<512), numClasses: 10)
        let history = try model.fit(x: x, y: y, batchSize: 128, epochs: 2, validationSplit: 0.1,
                                callbacks: [EarlyStopping(patience: 2), ModelCheckpoint(path: dir + "/best.safetensors", saveBestOnly: true)],
                                verbose: .silent)
        #expect(history.history["val_loss"]?.count == 2)
        let tx = mnist.testImages.sliced(axis: 0, 0..<256), ty = toCategorical(mnist.testLabels.sliced(axis: 0, 0..<256), numClasses: 10)
        let result = try model.evaluate(x: tx, y: ty)
        try model.save(to: dir + "/convnet")
        let again = try Model.load(from: dir + "/convnet")
        again.compile(optimizer: .adam(), loss: .categoricalCrossentropy(), metrics: [.accuracy])
        #expect(try again.evaluate(x: tx, y: ty) == result)
    }
}
