import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Activations (issue 7, part 1) and the regularisation layers (part 4).
@Suite struct ActivationLayerTests {
    /// Fixture tolerance: Float32 against PyTorch/Keras float32, 2e-6 absolute + a few ulps.
    static let tolerance: Float = 1e-5

    @Test func activationsMatchPyTorchAndKeras() throws {
        let f = ReferenceFixtures.entry("activations")
        let x = ReferenceFixtures.tensor(f["x"])
        let cases: [(String, Activation)] = [
            ("gelu", .gelu()), ("gelu_tanh", .gelu(approximate: true)), ("gelu_keras_approximate", .gelu(approximate: true)),
            ("silu", .swish), ("mish", .mish), ("selu", .selu), ("hard_sigmoid_keras", .hardSigmoid),
            ("hard_silu_keras", .hardSwish), ("relu6", .relu6),
        ]
        for (key, activation) in cases {
            let d = maxDifference(activation(x), ReferenceFixtures.tensor(f[key]))
            #expect(d <= Self.tolerance, "\(key): max difference \(d)")
        }
        #expect(maxDifference(x.elu(alpha: 0.7), ReferenceFixtures.tensor(f["elu_0.7"])) <= Self.tolerance)
        let ls = ReferenceFixtures.entry("log_softmax")
        #expect(maxDifference(Activation.logSoftmax(ReferenceFixtures.tensor(ls["x"])), ReferenceFixtures.tensor(ls["y"])) <= Self.tolerance)
    }

    @Test func activationValuesByHand() throws {
        let x = Tensor([-4, -3, 0, 1.5, 3, 4])
        #expect(x.hardSigmoid().scalars == [0, 0, 0.5, 0.75, 1, 1])       // Keras 3: relu6(x + 3) / 6
        #expect(x.relu6().scalars == [0, 0, 0, 1.5, 3, 4])
        #expect(Tensor([7]).relu6().scalars == [6])
        #expect(Tensor([0]).swish().scalars == [0] && Tensor([0]).gelu().scalars == [0] && Tensor([0]).mish().scalars == [0])
        // GELU(1) = Φ(1) = 0.8413447; swish(1) = σ(1) = 0.7310586.
        #expect(abs(Tensor([1]).gelu().scalar - 0.8413447) < 1e-6)
        #expect(abs(Tensor([1]).swish().scalar - 0.7310586) < 1e-6)
        // log-softmax of equal logits is −log n.
        #expect(Tensor([[2, 2, 2, 2]]).logSoftmax().isClose(to: Tensor([[-1.3862944, -1.3862944, -1.3862944, -1.3862944]])))
    }

    @Test func activationGradientsMatchFiniteDifferences() throws {
        let x = TestData.awayFromZero([3, 7], seed: 3) * 2.5  // in ±[0.25, 2.5]: away from the kinks at 0 and ±3
        let ops: [(String, (Tensor) -> Tensor)] = [
            ("gelu", { $0.gelu() }), ("gelu tanh", { $0.gelu(approximate: true) }), ("swish", { $0.swish() }),
            ("mish", { $0.mish() }), ("hardSigmoid", { $0.hardSigmoid() }), ("hardSwish", { $0.hardSwish() }),
            ("relu6", { $0.relu6() }), ("elu 0.7", { $0.elu(alpha: 0.7) }), ("selu", { $0.selu() }),
            ("logSoftmax", { $0.logSoftmax() }), ("erf", { $0.erf() }),
        ]
        for (name, op) in ops {
            let r = checkGradients([x]) { op($0[0]) }
            #expect(r.passed, "\(name): \(r)")
        }
    }

    @Test func preluMatchesPyTorchAndHasGradientsForInputAndSlopes() throws {
        let f = ReferenceFixtures.entry("prelu")
        let x = ReferenceFixtures.tensor(f["x"])
        let model = Sequential(inputShape: [4, 5, 3]) { PReLU(sharedAxes: [1, 2]) }
        let prelu = model.layers[0] as! PReLU
        #expect(prelu.alpha.shape == [1, 1, 3] && prelu.alpha.value.scalars == [0, 0, 0])  // Keras: zeros
        prelu.alpha.assign(ReferenceFixtures.tensor(f["alpha"]).reshaped([1, 1, 3]))
        #expect(maxDifference(model(x), ReferenceFixtures.tensor(f["y"])) <= Self.tolerance)
        // Unshared: one slope per element.
        let full = Sequential(inputShape: [2, 3]) { PReLU(alphaInitializer: .constant(0.25)) }
        #expect((full.layers[0] as! PReLU).alpha.shape == [2, 3])
        #expect(full(Tensor([[[-4, 2, 0], [1, -1, -8]]])).scalars == [-1, 2, 0, 1, -0.25, -2])
        let xs = TestData.awayFromZero([2, 3, 2, 3], seed: 5)
        let small = Sequential(inputShape: [3, 2, 3]) { PReLU(sharedAxes: [1, 2]) }
        let layer = small.layers[0] as! PReLU
        let r = checkGradients([xs, Tensor([0.1, -0.4, 0.7]).reshaped([1, 1, 3])]) { t in
            layer.alpha.value = t[1]
            var ctx = ForwardContext(training: false)
            return layer.forward([t[0]], context: &ctx)
        }
        #expect(r.passed, "\(r)")
        #expect(throws: LayerError.self) { _ = try PReLU(sharedAxes: [4]).apply([Input(shape: [3, 2, 3])]) }
    }

    @Test func activationLayersRoundTripThroughSaveAndLoad() throws {
        let model = Sequential(inputShape: [4, 4, 3]) {
            PReLU(alphaInitializer: .constant(0.2), sharedAxes: [1, 2])
            ELU(alpha: 0.5)
            ReLU(maxValue: 6)
            ActivationLayer(.gelu(approximate: true))
            ActivationLayer(.mish)
            ActivationLayer(.swish)
            ActivationLayer(.hardSigmoid)
            AlphaDropout(0.1)
            SpatialDropout2D(0.2)
            GaussianNoise(stddev: 0.1)
            GaussianDropout(rate: 0.1)
            ActivityRegularization(l1: 0.01)
            Flatten()
            Dense(units: 4, activation: .logSoftmax)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-concepts-act-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        #expect(loaded.layers.map(\.typeName) == model.layers.map(\.typeName))
        let x = Tensor.uniform([2, 4, 4, 3], minimum: -2, maximum: 2, seed: 9)
        #expect(maxDifference(loaded(x), model(x)) == 0)
        #expect((loaded.layers[11] as! ActivityRegularization).activityRegularizer == .l1l2(l1: 0.01, l2: 0))
    }

    /// Klambauer et al.: with lecun_normal weights, SELU keeps activations near zero mean and
    /// unit variance through a deep network (ReLU with the same weights does not).
    @Test func seluNetworkSelfNormalises() throws {
        let depth = 24
        let selu = RandomSeed.withSeed(11) {
            Sequential(inputShape: [256]) {
                for _ in 0..<depth { Dense(units: 256, activation: .selu, kernelInitializer: .lecunNormal) }
            }
        }
        let relu = RandomSeed.withSeed(11) {
            Sequential(inputShape: [256]) {
                for _ in 0..<depth { Dense(units: 256, activation: .relu, kernelInitializer: .lecunNormal) }
            }
        }
        let x = Tensor.normal([256, 256], seed: 4)
        func moments(_ t: Tensor) -> (Float, Float) { (t.mean().scalar, t.variance().scalar) }
        let (m, v) = moments(selu(x))
        #expect(abs(m) < 0.1 && abs(v - 1) < 0.15, "SELU after \(depth) layers: mean \(m), variance \(v)")
        let (_, rv) = moments(relu(x))
        #expect(abs(rv - 1) > 0.5, "ReLU with lecun_normal should not self-normalise, variance \(rv)")
    }

    @Test func alphaDropoutKeepsZeroMeanUnitVariance() throws {
        let layer = AlphaDropout(0.2)
        let model = Sequential(inputShape: [100_000]) { layer }
        let x = Tensor.normal([2, 100_000], seed: 8)
        #expect(model(x).scalars == x.scalars)  // inference: identity
        let y = model(x, training: true)
        let (a, b, alphaPrime) = layer.coefficients
        // Dropped units all take the value a·α′ + b.
        let dropped = y.scalars.filter { abs($0 - (a * alphaPrime + b)) < 1e-6 }.count
        #expect(abs(Float(dropped) / 200_000 - 0.2) < 0.01)
        #expect(abs(y.mean().scalar) < 0.01 && abs(y.variance().scalar - 1) < 0.02)
        // Keras 3's AlphaDropout(0.2) maps a kept 5 to 4.7035580 (a = 0.8789036, b = 0.3090400).
        #expect(abs(a * 5 + b - 4.703558) < 1e-5 && abs(a - 0.8789036) < 1e-6)
        let xs = TestData.awayFromZero([2, 10], seed: 2)
        let small = Sequential(inputShape: [10]) { AlphaDropout(0.3) }
        let r = checkGradients([xs]) { t in
            var ctx = ForwardContext(training: true, seed: 5)
            return small.forward(t, context: &ctx)[0]
        }
        #expect(r.passed, "\(r)")
    }

    @Test func spatialDropoutDropsWholeFeatureMaps() throws {
        let model = Sequential(inputShape: [3, 4, 64]) { SpatialDropout2D(0.5) }
        let x = Tensor.ones([2, 3, 4, 64])
        #expect(model(x).scalars == x.scalars)
        let y = model(x, training: true)
        var zeroChannels = 0
        for n in 0..<2 {
            for c in 0..<64 {
                let values = Set((0..<12).map { y.scalars[(n * 12 + $0) * 64 + c] })
                #expect(values == [0] || values == [2], "channel \(c) of sample \(n) is not dropped or kept whole: \(values)")
                if values == [0] { zeroChannels += 1 }
            }
        }
        #expect(zeroChannels > 32 && zeroChannels < 96)
        let xs = TestData.awayFromZero([2, 2, 2, 4], seed: 4)
        let small = Sequential(inputShape: [2, 2, 4]) { SpatialDropout2D(0.5) }
        let r = checkGradients([xs]) { t in
            var ctx = ForwardContext(training: true, seed: 1)
            return small.forward(t, context: &ctx)[0]
        }
        #expect(r.passed, "\(r)")
    }

    @Test func gaussianNoiseAndDropoutHaveTheirMoments() throws {
        let x = Tensor.full([1, 200_000], 2)
        let noise = Sequential(inputShape: [200_000]) { GaussianNoise(stddev: 0.5) }
        let drop = Sequential(inputShape: [200_000]) { GaussianDropout(rate: 0.2) }
        #expect(noise(x).scalars == x.scalars && drop(x).scalars == x.scalars)
        let n = noise(x, training: true), d = drop(x, training: true)
        #expect(abs(n.mean().scalar - 2) < 0.01 && abs(n.variance().scalar - 0.25) < 0.01)
        // 2·N(1, 0.2/0.8): mean 2, variance 4·0.25 = 1.
        #expect(abs(d.mean().scalar - 2) < 0.01 && abs(d.variance().scalar - 1) < 0.02)
        // Seeded: the same context seed gives the same noise.
        var c1 = ForwardContext(training: true, seed: 3), c2 = ForwardContext(training: true, seed: 3)
        #expect(noise.forward([x], context: &c1)[0].scalars == noise.forward([x], context: &c2)[0].scalars)
        // Gradients with the noise fixed by the seed: 1 for additive noise, the noise for multiplicative.
        for layer in [GaussianNoise(stddev: 0.3), GaussianDropout(rate: 0.3)] as [Layer] {
            let m = Sequential(inputShape: [6]) { layer }
            let r = checkGradients([TestData.uniform([2, 6], seed: 7)]) { t in
                var ctx = ForwardContext(training: true, seed: 11)
                return m.forward(t, context: &ctx)[0]
            }
            #expect(r.passed, "\(layer.typeName): \(r)")
        }
    }

    @Test func activityRegularizerAddsItsPenaltyToTheTrainingLoss() throws {
        // Identity network: loss = MSE(y, x) = 0, so the reported loss is the penalty alone:
        // l2 · Σ x² / batch = 0.5 · (1 + 4 + 9 + 16) / 2 = 7.5.
        let model = Sequential(inputShape: [2]) {
            Dense(units: 2, useBias: false, kernelInitializer: .constant(0))
            ActivityRegularization(l2: 0.5)
        }
        (model.layers[0] as! Dense).kernel.assign(Tensor([[1, 0], [0, 1]]))
        model.compile(optimizer: .sgd(learningRate: 0), loss: .meanSquaredError)
        let x = Tensor([[1, 2], [3, 4]])
        #expect(abs(try model.trainStep(x, x).loss - 7.5) < 1e-5)
        // The same through a layer's own activity regularizer (L1: 0.1 · 10 / 2 = 0.5).
        let dense = Dense(units: 2, useBias: false)
        dense.activityRegularizer = .l1(0.1)
        let m2 = Sequential(inputShape: [2]) { dense }
        dense.kernel.assign(Tensor([[1, 0], [0, 1]]))
        m2.compile(optimizer: .sgd(learningRate: 0), loss: .meanSquaredError)
        #expect(abs(try m2.trainStep(x, x).loss - 0.5) < 1e-5)
    }
}
