import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Normalisation layers (issue 7, part 5).
@Suite struct NormalizationLayerTests {
    static let tolerance: Float = 1e-5

    func run(_ layer: Layer, _ x: Tensor, gamma: Tensor, beta: Tensor) -> Tensor {
        let model = Sequential(inputShape: Array(x.shape.dropFirst())) { layer }
        layer.parameters[0].assign(gamma)
        layer.parameters[1].assign(beta)
        return model(x)
    }

    @Test func layerGroupAndInstanceNormalizationMatchPyTorch() {
        let f = ReferenceFixtures.entry("normalization")
        let x = ReferenceFixtures.tensor(f["x"]), gamma = ReferenceFixtures.tensor(f["gamma"]), beta = ReferenceFixtures.tensor(f["beta"])
        let eps = Float(f["epsilon"] as! Double)
        let ln = run(LayerNormalization(epsilon: eps), x, gamma: gamma, beta: beta)
        #expect(maxDifference(ln, ReferenceFixtures.tensor(f["layer_norm"])) <= Self.tolerance)
        let gn = run(GroupNormalization(groups: 2, epsilon: eps), x, gamma: gamma, beta: beta)
        #expect(maxDifference(gn, ReferenceFixtures.tensor(f["group_norm_2"])) <= Self.tolerance)
        let inorm = run(InstanceNormalization(epsilon: eps), x, gamma: gamma, beta: beta)
        #expect(maxDifference(inorm, ReferenceFixtures.tensor(f["instance_norm"])) <= Self.tolerance)
    }

    @Test func normalizationByHandAndErrors() throws {
        // One sample [1, 3]: mean 2, variance 2/3 → (x − 2)/√(2/3) = ∓1.2247449.
        let ln = Sequential(inputShape: [3]) { LayerNormalization(epsilon: 0) }
        #expect(ln(Tensor([[1, 2, 3]])).isClose(to: Tensor([[-1.2247449, 0, 1.2247449]])))
        // Group norm with 1 group = layer norm over every axis; with C groups = instance norm.
        let x = Tensor.uniform([2, 3, 2, 4], minimum: -2, maximum: 2, seed: 1)
        let one = Sequential(inputShape: [3, 2, 4]) { GroupNormalization(groups: 1, epsilon: 1e-5) }
        let flat = x.reshaped([2, 24])
        let manual = (flat - flat.mean(axes: [1], keepDims: true)) / (flat.variance(axes: [1], keepDims: true) + 1e-5).sqrt()
        #expect(maxDifference(one(x), manual.reshaped(x.shape)) <= 1e-5)
        let perChannel = Sequential(inputShape: [3, 2, 4]) { GroupNormalization(groups: 4, epsilon: 1e-5) }
        let instance = Sequential(inputShape: [3, 2, 4]) { InstanceNormalization(epsilon: 1e-5) }
        #expect(maxDifference(perChannel(x), instance(x)) == 0)
        #expect(throws: LayerError.self) { _ = try GroupNormalization(groups: 3).apply([Input(shape: [4, 4, 8])]) }
    }

    @Test func normalizationGradientsMatchFiniteDifferences() {
        let x = TestData.uniform([2, 2, 3, 4], seed: 2, scale: 2)
        let layers: [() -> Layer] = [{ LayerNormalization() }, { GroupNormalization(groups: 2) }, { InstanceNormalization() }]
        for make in layers {
            let layer = make()
            let model = Sequential(inputShape: [2, 3, 4]) { layer }
            let gamma = TestData.uniform([4], seed: 3), beta = TestData.uniform([4], seed: 4)
            let r = checkGradients([x, gamma, beta]) { t in
                layer.parameters[0].value = t[1]; layer.parameters[1].value = t[2]
                var c = ForwardContext(training: true)
                return model.forward([t[0]], context: &c)[0]
            }
            #expect(r.passed, "\(layer.typeName): \(r)")
        }
    }

    @Test func weightNormalizationMatchesPyTorch() {
        let f = ReferenceFixtures.entry("weight_norm")
        let conv = f["conv"] as! [String: Any]
        let wn = WeightNormalization(Conv2D(filters: 4, kernelSize: 3, padding: .same))
        let model = Sequential(inputShape: [5, 4, 3]) { wn }
        #expect(wn.parameters.map(\.name) == ["g", "kernel", "bias"])
        // g starts at ‖v‖: wrapping does not change the layer's output.
        let inner = wn.layer as! Conv2D
        let x = ReferenceFixtures.tensor(conv["x"])
        #expect(maxDifference(model(x), Tensor.conv2d(x, filter: inner.kernel.value, bias: inner.bias!.value, padding: .same)) <= 1e-5)
        wn.g.assign(ReferenceFixtures.tensor(conv["g"]))
        inner.kernel.assign(ReferenceFixtures.tensor(conv["v"]))
        inner.bias!.assign(ReferenceFixtures.tensor(conv["bias"]))
        #expect(maxDifference(model(x), ReferenceFixtures.tensor(conv["y"])) <= Self.tolerance)
        let dense = f["dense"] as! [String: Any]
        let wd = WeightNormalization(Dense(units: 3))
        let dm = Sequential(inputShape: [5]) { wd }
        wd.g.assign(ReferenceFixtures.tensor(dense["g"]))
        (wd.layer as! Dense).kernel.assign(ReferenceFixtures.tensor(dense["v"]))
        (wd.layer as! Dense).bias!.assign(ReferenceFixtures.tensor(dense["bias"]))
        #expect(maxDifference(dm(ReferenceFixtures.tensor(dense["x"])), ReferenceFixtures.tensor(dense["y"])) <= Self.tolerance)
        // By hand: v = (3, 4), g = 10 → w = 10·(3, 4)/5 = (6, 8).
        let byHand = WeightNormalization(Dense(units: 1, useBias: false))
        let hm = Sequential(inputShape: [2]) { byHand }
        (byHand.layer as! Dense).kernel.assign(Tensor([[3], [4]]))
        byHand.g.assign(Tensor([10]))
        #expect(byHand.effectiveKernel.isClose(to: Tensor([[6], [8]])))
        #expect(hm(Tensor([[1, 1]])).isClose(to: Tensor([[14]])))
        // The effective kernel's columns have norm g.
        let norms = WeightNormalization.norms(wd.effectiveKernel)
        #expect(maxDifference(norms, wd.g.value) <= 1e-5)
        // Gradients reach g and v.
        let xs = TestData.uniform([2, 5], seed: 1)
        let r = checkGradients([xs, wd.g.value.detached(), (wd.layer as! Dense).kernel.value.detached()]) { t in
            wd.g.value = t[1]; (wd.layer as! Dense).kernel.value = t[2]
            var c = ForwardContext(training: true)
            return dm.forward([t[0]], context: &c)[0]
        }
        #expect(r.passed, "\(r)")
    }

    @Test func batchNormFoldsIntoTheConvolution() throws {
        let conv = Conv2D(filters: 5, kernelSize: 3, strides: 2, padding: .same)
        let bn = BatchNormalization()
        let model = Sequential(inputShape: [9, 7, 3]) { conv; bn }
        bn.gamma!.assign(Tensor.uniform([5], minimum: 0.5, maximum: 2, seed: 1))
        bn.beta!.assign(Tensor.uniform([5], minimum: -1, maximum: 1, seed: 2))
        bn.movingMean.assign(Tensor.uniform([5], minimum: -1, maximum: 1, seed: 3))
        bn.movingVariance.assign(Tensor.uniform([5], minimum: 0.2, maximum: 3, seed: 4))
        conv.bias!.assign(Tensor.uniform([5], minimum: -1, maximum: 1, seed: 5))
        let folded = try foldBatchNormalization(conv, bn, activation: .relu)
        let x = Tensor.uniform([2, 9, 7, 3], minimum: -1, maximum: 1, seed: 6)
        #expect(folded(x).shape == [2, 5, 4, 5])
        #expect(maxDifference(folded(x), model(x).relu()) <= 1e-5)
        // A folded layer works inside a model too (and saves like any Conv2D).
        let m2 = Sequential(inputShape: [9, 7, 3]) { try! foldBatchNormalization(conv, bn) }
        #expect(maxDifference(m2(x), model(x)) <= 1e-5)
        let relu = Conv2D(filters: 5, kernelSize: 3, padding: .same, activation: .relu)
        _ = Sequential(inputShape: [9, 7, 3]) { relu; BatchNormalization() }
        #expect(throws: LayerError.self) { _ = try foldBatchNormalization(relu, bn) }
    }

    @Test func normalizationLayersRoundTripThroughSaveAndLoad() throws {
        RandomSeed.set(5)
        let model = Sequential(inputShape: [6, 5, 4]) {
            WeightNormalization(Conv2D(filters: 8, kernelSize: 3, padding: .same, activation: .relu))
            GroupNormalization(groups: 4)
            InstanceNormalization()
            LayerNormalization()
            Flatten()
            WeightNormalization(Dense(units: 3))
        }
        (model.layers[0] as! WeightNormalization).g.assign(Tensor.uniform([8], minimum: 0.5, maximum: 2, seed: 1))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-concepts-norm-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        let x = Tensor.uniform([2, 6, 5, 4], minimum: -1, maximum: 1, seed: 2)
        #expect(maxDifference(loaded(x), model(x)) == 0)
    }
}
