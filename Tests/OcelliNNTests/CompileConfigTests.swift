import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor

/// `Model.load` gives back the compile configuration, as Keras' `load_model` does.
@Suite(.serialized) struct CompileConfigTests {
    func model() -> Sequential {
        Sequential(inputShape: [2]) { Dense(units: 6, activation: .relu); Dense(units: 2, activation: .softmax) }
    }

    /// Training 2 epochs, saving, loading and training 2 more gives the weights of 4 epochs in one
    /// go: the optimizer's state and step count came back.
    @Test func loadedModelContinuesTrainingBitwise() throws {
        let (x, y) = blobs(96, seed: 3)
        for optimizer in ["adam", "rmsprop", "sgd", "adagrad"] {
            func compiled() -> Sequential {
                let m = model()
                switch optimizer {
                case "adam": m.compile(optimizer: .adam(learningRate: 0.01, amsgrad: true), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
                case "rmsprop": m.compile(optimizer: .rmsprop(momentum: 0.5, centered: true), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
                case "sgd":
                    let o = SGD(learningRate: 0.1, momentum: 0.9, nesterov: true)
                    o.withSchedule(ExponentialDecay(initialLearningRate: 0.1, decaySteps: 5, decayRate: 0.5))
                    m.compile(optimizer: o, loss: .sparseCategoricalCrossentropy(), metrics: [.sparseTopKCategoricalAccuracy(k: 1)])
                default: m.compile(optimizer: .adagrad(learningRate: 0.1), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
                }
                return m
            }
            // No shuffling, so the batches do not depend on the random sequence.
            let whole = try RandomSeed.withSeed(5) { () -> [Float] in
                let m = compiled()
                try m.fit(x: x, y: y, batchSize: 16, epochs: 4, shuffle: false, verbose: .silent)
                return m.getWeights().flatMap(\.scalars)
            }
            let dir = temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let resumed = try RandomSeed.withSeed(5) { () -> [Float] in
                let m = compiled()
                try m.fit(x: x, y: y, batchSize: 16, epochs: 2, shuffle: false, verbose: .silent)
                try m.save(to: dir)
                let loaded = try Model.load(from: dir)
                #expect(loaded.optimizer?.name == m.optimizer?.name && loaded.optimizer?.iterations == 12, "\(optimizer)")
                #expect(loaded.loss?.name == "sparse_categorical_crossentropy" && loaded.metrics == m.metrics, "\(optimizer)")
                try loaded.fit(x: x, y: y, batchSize: 16, epochs: 2, shuffle: false, verbose: .silent)
                return loaded.getWeights().flatMap(\.scalars)
            }
            #expect(whole == resumed, "\(optimizer): resumed training differs from uninterrupted training")
        }
    }

    /// A run stopped in the middle of an epoch (as Ctrl-C does), saved, loaded and continued with
    /// `fit(initialEpoch:initialStep:)` ends with the weights of the run never stopped: the same
    /// shuffled batches, dropout masks, optimizer state and schedule position.
    @Test func fitResumedInTheMiddleOfAnEpochIsBitwiseTheSame() throws {
        let (x, y) = blobs(80, seed: 9)
        func compiled() -> Sequential {
            let m = Sequential(inputShape: [2]) { Dense(units: 8, activation: .relu); Dropout(0.3); Dense(units: 2, activation: .softmax) }
            let o = Adam(learningRate: 0.02)
            o.withSchedule(CosineDecay(initialLearningRate: 0.02, decaySteps: 15, alpha: 0.01))
            m.compile(optimizer: o, loss: .sparseCategoricalCrossentropy())
            return m
        }
        func batches() throws -> TensorBatches { try TensorBatches(x: x, y: y, batchSize: 16, shuffle: true, seed: 4) }
        let straight = try RandomSeed.withSeed(2) { () -> [Float] in
            let m = compiled()
            RandomSeed.set(7)
            try m.fit(batches(), epochs: 3, verbose: .silent)
            return m.getWeights().flatMap(\.scalars)
        }
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let resumed = try RandomSeed.withSeed(2) { () -> [Float] in
            let m = compiled()
            var seen = 0
            let stop = LambdaCallback(onBatchEnd: { _, _ in seen += 1; if seen == 7 { m.stopTraining = true } })
            RandomSeed.set(7)
            try m.fit(batches(), epochs: 3, callbacks: [stop], verbose: .silent)  // epoch 2, 2 of its 5 batches
            try m.save(to: dir)
            let loaded = try Model.load(from: dir)
            RandomSeed.set(7)
            try loaded.fit(batches(), epochs: 3, verbose: .silent, initialEpoch: 1, initialStep: 2)
            #expect(loaded.optimizer?.iterations == 15)
            return loaded.getWeights().flatMap(\.scalars)
        }
        #expect(straight == resumed, "resumed in the middle of an epoch, the weights differ from the uninterrupted run's")
        // Starting at the wrong batch gives other weights (the test can fail).
        let shifted = try RandomSeed.withSeed(2) { () -> [Float] in
            let loaded = try Model.load(from: dir)
            RandomSeed.set(7)
            try loaded.fit(batches(), epochs: 3, verbose: .silent, initialEpoch: 1, initialStep: 1)
            return loaded.getWeights().flatMap(\.scalars)
        }
        #expect(shifted != straight)
        let m = compiled()
        #expect(throws: TrainingError.self) { try m.fit(batches(), epochs: 3, verbose: .silent, initialStep: 5) }
    }

    @Test func evaluateAfterLoadGivesTheSameNumbers() throws {
        let (x, y) = blobs(64, seed: 4)
        let m = model()
        m.compile(optimizer: .adam(), loss: .sparseCategoricalCrossentropy(labelSmoothing: 0.1), metrics: [.accuracy])
        try m.fit(x: x, y: y, batchSize: 16, epochs: 1, verbose: .silent)
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try m.save(to: dir)
        #expect(try Model.load(from: dir).evaluate(x: x, y: y) == m.evaluate(x: x, y: y))
        // Without compile the loaded model asks for it.
        let bare = try Model.load(from: dir, compile: false)
        do { _ = try bare.evaluate(x: x, y: y); Issue.record("no error") } catch {
            #expect("\(error)".contains("compile"), "\(error)")
        }
    }

    @Test func customLossNeedsRegistration() throws {
        struct Scaled: Loss {
            var factor: Float
            var name: String { "scaled_mse" }
            func batchLoss(target: Tensor, outputs: ModelOutputs) throws -> Tensor { (outputs.prediction - target).square().mean() * factor }
            var savedConfig: SavedObject? { SavedObject(className: "ScaledMSE", config: ["factor": .number(Double(factor))]) }
        }
        let m = model()
        m.compile(optimizer: .sgd(), loss: Scaled(factor: 3))
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try m.save(to: dir)
        do { _ = try Model.load(from: dir); Issue.record("no error") } catch {
            #expect("\(error)".contains("unknown loss 'ScaledMSE'") && "\(error)".contains("LossRegistry"), "\(error)")
        }
        LossRegistry.register("ScaledMSE") { saved in Scaled(factor: Float(saved.config["factor"]?.double ?? 1)) }
        let loaded = try Model.load(from: dir)
        #expect((loaded.loss as? Scaled)?.factor == 3)
        // A loss that cannot be saved leaves the loaded model uncompiled.
        struct Unsaved: Loss {
            var name: String { "unsaved" }
            func batchLoss(target: Tensor, outputs: ModelOutputs) throws -> Tensor { outputs.prediction.mean() }
        }
        m.compile(optimizer: .sgd(), loss: Unsaved())
        try m.save(to: dir)
        #expect(try Model.load(from: dir).loss == nil)
    }

    @Test func badCompileConfigsAreClearErrors() throws {
        let m = model()
        m.compile(optimizer: .adam(), loss: .meanSquaredError)
        let dir = temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try m.save(to: dir)
        let path = (dir as NSString).appendingPathComponent("model.json")
        let original = try String(contentsOfFile: path, encoding: .utf8)
        func message(_ from: String, _ to: String) throws -> String {
            try original.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
            do { _ = try Model.load(from: dir); return "no error" } catch { return "\(error)" }
        }
        let optimizer = try message("\"Adam\"", "\"Lion\"")
        #expect(optimizer.contains("model.json") && optimizer.contains("unknown optimizer 'Lion'"), "\(optimizer)")
        let rate = try message("\"learning_rate\" : 0.0010000000474974513", "\"learning_rate\" : \"fast\"")
        #expect(rate.contains("learning_rate"), "\(rate)")
    }
}
