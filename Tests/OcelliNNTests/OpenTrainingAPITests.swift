import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor

/// Per sample, a variable number of 2-D points: a structured target like a batch of boxes.
struct PointSets {
    var points: [[(Float, Float)]]
}

/// A loss written outside the library on structured targets: the squared distance from the
/// prediction [N, 2] to the centroid of each sample's points.
struct CentroidLoss: Loss {
    var name: String { "centroid" }
    func batchLoss(target: PointSets, outputs: ModelOutputs) throws -> Tensor {
        let p = outputs.prediction
        guard p.shape == [target.points.count, 2] else {
            throw TrainingError("centroid: predictions \(p.shape) for \(target.points.count) point sets")
        }
        let centroids = target.points.flatMap { set -> [Float] in
            let n = Float(max(set.count, 1))
            return [set.reduce(0) { $0 + $1.0 } / n, set.reduce(0) { $0 + $1.1 } / n]
        }
        return (p - Tensor(shape: p.shape, scalars: centroids)).square().sum(axes: [1]).mean()
    }
}

/// A data source written outside the library: inputs are the points' bounding corners, the
/// target the points themselves; it records which batches were asked for.
final class PointSource: BatchSource {
    let samples: [[(Float, Float)]]
    let batchSize: Int
    var requests: [(index: Int, pass: Int)] = []

    init(count: Int, batchSize: Int, seed: UInt64) {
        var g = SeededGenerator(seed: seed)
        samples = (0..<count).map { _ in
            let k = 1 + Int(g.next() % 4)
            return (0..<k).map { _ in (Float(g.nextNormal()), Float(g.nextNormal())) }
        }
        self.batchSize = batchSize
    }

    var batchCount: Int { (samples.count + batchSize - 1) / batchSize }

    func batch(_ index: Int, pass: Int) throws -> Batch<PointSets> {
        requests.append((index, pass))
        let rows = Array(samples[(index * batchSize)..<min(samples.count, (index + 1) * batchSize)])
        // Input: the first point and the mean of the rest (the centroid is a linear function of them
        // only for sets of one or two points, so the model has something to learn, not memorise).
        let x = rows.flatMap { s -> [Float] in
            let first = s[0], rest = s.count > 1 ? Array(s.dropFirst()) : s
            return [first.0, first.1, rest.reduce(0) { $0 + $1.0 } / Float(rest.count), rest.reduce(0) { $0 + $1.1 } / Float(rest.count),
                    Float(s.count) / 4]
        }
        return Batch(Tensor(shape: [rows.count, 5], scalars: x), PointSets(points: rows))
    }
}

@Suite(.serialized) struct OpenTrainingAPITests {
    func pointModel() -> Sequential {
        Sequential(inputShape: [5]) { Dense(units: 16, activation: .tanh); Dense(units: 2) }
    }

    @Test func customLossTrainsOverCustomDataSource() throws {
        try RandomSeed.withSeed(11) {
            let model = pointModel()
            model.compile(optimizer: .adam(learningRate: 0.01), loss: CentroidLoss())
            let train = PointSource(count: 256, batchSize: 32, seed: 1), validation = PointSource(count: 64, batchSize: 32, seed: 2)
            let before = try model.evaluate(validation)["loss"]!
            let history = try model.fit(train, epochs: 30, validationData: validation, verbose: .silent)
            let after = try model.evaluate(validation)["loss"]!
            #expect(history.history["loss"]!.count == 30 && history.history["val_loss"]!.count == 30)
            #expect(after < before * 0.2, "validation loss \(before) → \(after)")
            #expect(history.history["val_loss"]!.last! == after)
            #expect(try model.predict(validation).shape == [64, 2])
        }
    }

    @Test func stepsPerEpochContinuesThePassAsKeras() throws {
        try RandomSeed.withSeed(1) {
            let model = pointModel()
            model.compile(optimizer: .sgd(), loss: CentroidLoss())
            let source = PointSource(count: 30, batchSize: 10, seed: 3)  // 3 batches a pass
            try model.fit(source, epochs: 3, stepsPerEpoch: 2, verbose: .silent)
            #expect(source.requests.map(\.index) == [0, 1, 2, 0, 1, 2])
            #expect(source.requests.map(\.pass) == [0, 0, 0, 1, 1, 1])
            #expect(model.optimizer!.iterations == 6)
        }
    }

    @Test func tensorOverloadIsTheTensorSource() throws {
        let (x, y) = blobs(100, seed: 5)
        func weights(_ train: (Model) throws -> Void) throws -> [Float] {
            try RandomSeed.withSeed(4) {
                let m = Sequential(inputShape: [2]) { Dense(units: 4, activation: .relu); Dropout(0.3); Dense(units: 2, activation: .softmax) }
                m.compile(optimizer: .rmsprop(), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
                try train(m)
                return m.getWeights().flatMap(\.scalars)
            }
        }
        let a = try weights { try $0.fit(x: x, y: y, batchSize: 16, epochs: 3, verbose: .silent) }
        let b = try weights { try $0.fit(TensorBatches(x: x, y: y, batchSize: 16, shuffle: true), epochs: 3, verbose: .silent) }
        #expect(a == b)
    }

    @Test func uncompiledAndMismatchedCallsThrowClearErrors() throws {
        let model = pointModel()
        let source = PointSource(count: 8, batchSize: 4, seed: 1)
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "no error" } catch { return "\(error)" }
        }
        let fit = message { try model.fit(source, verbose: .silent) }
        #expect(fit.contains("compile(optimizer:loss:metrics:) before fit"), "\(fit)")
        let evaluate = message { _ = try model.evaluate(x: Tensor.zeros([4, 5]), y: Tensor.zeros([4, 2])) }
        #expect(evaluate.contains("before evaluate"), "\(evaluate)")
        model.compile(optimizer: .sgd(), loss: .meanSquaredError)
        let wrongTargets = message { try model.fit(source, verbose: .silent) }
        #expect(wrongTargets.contains("mean_squared_error") && wrongTargets.contains("Tensor") && wrongTargets.contains("PointSets"), "\(wrongTargets)")
        model.compile(optimizer: .sgd(), loss: CentroidLoss(), metrics: [.accuracy])
        let metrics = message { try model.fit(source, verbose: .silent) }
        #expect(metrics.contains("metrics") && metrics.contains("PointSets"), "\(metrics)")
        model.compile(optimizer: .sgd(), loss: CentroidLoss())
        let empty = message { try model.fit(PointSource(count: 0, batchSize: 4, seed: 1), verbose: .silent) }
        #expect(empty.contains("empty"), "\(empty)")
        let mismatch = message { try model.fit(x: Tensor.zeros([4, 5]), y: Tensor.zeros([3, 2]), verbose: .silent) }
        #expect(mismatch.contains("4 samples in x and 3 in y"), "\(mismatch)")
    }

    /// An optimizer written outside the library implements only its per-parameter update.
    final class SignSGD: Optimizer {
        let state = OptimizerState(learningRate: 0.01)
        var name: String { "SignSGD" }
        var slotInitialValues: [Float] { [0] }
        func applySingle(_ u: ParameterUpdate) {
            for i in 0..<u.count {
                u.slots[0][i] += 1  // counts its updates, to check the state buffer persists
                u.weights[i] -= u.learningRate * (u.gradient[i] > 0 ? 1 : u.gradient[i] < 0 ? -1 : 0)
            }
        }
    }

    @Test func customOptimizerTrains() throws {
        let (x, y) = blobs(128, seed: 9)
        try RandomSeed.withSeed(2) {
            let m = Sequential(inputShape: [2]) { Dense(units: 2, activation: .softmax) }
            let optimizer = SignSGD()
            optimizer.clipValue = 10  // the shared options apply to every optimizer
            m.compile(optimizer: optimizer, loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
            let before = try m.evaluate(x: x, y: y)["loss"]!
            try m.fit(x: x, y: y, batchSize: 16, epochs: 5, verbose: .silent)
            #expect(try m.evaluate(x: x, y: y)["loss"]! < before)
            #expect(optimizer.iterations == 40)
            let p = m.trainableParameters[0]
            #expect(optimizer.state.slots[ObjectIdentifier(p)]?.allSatisfy { $0 == 40 } == true)
        }
    }
}
