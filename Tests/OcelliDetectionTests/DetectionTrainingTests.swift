import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliDetection

/// A detection loss written outside the library, on the loader's structured targets: the
/// squared error of the predicted object count per image ([N, 1]) against the batch's counts.
struct ObjectCountLoss: Loss {
    var name: String { "object_count" }
    func batchLoss(target: DetectionBatch, outputs: ModelOutputs) throws -> Tensor {
        let counts = Tensor(shape: [target.count, 1], scalars: target.counts.map(Float.init))
        return (outputs.prediction - counts).square().mean()
    }
}

@Suite(.serialized) struct DetectionTrainingTests {
    @Test func detectionLoaderFeedsFitWithBoxTargets() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let digits = try DigitsDetection.Digits()
        try DigitsDetection.write(split: .train, count: 48, seed: 2, digits: digits, to: directory)
        let dataset = try DetectionDataset.load(directory, split: "train")
        let loader = DetectionLoader(dataset: dataset, batchSize: 8, inputSize: 32, seed: 1, prefetch: 0)
        #expect(loader.batchCount == 6)
        let first = try loader.batch(0, pass: 0)
        #expect(first.inputs[0].shape == [8, 32, 32, 3] && first.targets.counts.count == 8)

        try RandomSeed.withSeed(3) {
            let model = Sequential(inputShape: [32, 32, 3]) {
                Conv2D(filters: 8, kernelSize: 3, strides: 2, activation: .relu)
                GlobalAveragePooling2D()
                Dense(units: 1)
            }
            model.compile(optimizer: .adam(learningRate: 0.01), loss: ObjectCountLoss())
            let before = try model.evaluate(loader)["loss"]!
            let history = try model.fit(loader, epochs: 8, verbose: .silent)
            let after = try model.evaluate(loader)["loss"]!
            #expect(history.history["loss"]!.count == 8)
            // Predicting the mean count alone reaches the counts' variance (about 2): training
            // must at least find it, from predictions near 0 (about 12).
            #expect(after < before * 0.5, "loss \(before) → \(after)")
            #expect(try model.predict(loader).shape == [48, 1])
        }
    }
}
