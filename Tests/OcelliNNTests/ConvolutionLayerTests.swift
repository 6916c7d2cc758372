import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Convolutions (issue 7, part 2) and pooling (part 3).
@Suite struct ConvolutionLayerTests {
    /// Fixture tolerance for sums of a few dozen Float32 products.
    static let tolerance: Float = 1e-5

    @Test func conv2DTransposeMatchesPyTorch() throws {
        for (i, f) in ReferenceFixtures.entries("conv_transpose").enumerated() {
            let x = ReferenceFixtures.tensor(f["x"]), kernel = ReferenceFixtures.tensor(f["kernel"]), y = ReferenceFixtures.tensor(f["y"])
            let s = f["stride"] as! Int, p = f["padding"] as! Int, op = f["output_padding"] as! Int, d = f["dilation"] as! Int
            let layer = Conv2DTranspose(filters: kernel.shape[2], kernelSize: (kernel.shape[0], kernel.shape[1]), strides: (s, s),
                                        padding: .explicit(top: p, bottom: p, left: p, right: p), outputPadding: (op, op),
                                        dilationRate: (d, d))
            let model = Sequential(inputShape: Array(x.shape.dropFirst())) { layer }
            layer.kernel.assign(kernel)
            layer.bias!.assign(ReferenceFixtures.tensor(f["bias"]))
            #expect(layer.outputShape == Array(y.shape.dropFirst()), "case \(i)")
            let diff = maxDifference(model(x), y)
            #expect(diff <= Self.tolerance, "case \(i) (stride \(s), padding \(p), output padding \(op), dilation \(d)): \(diff)")
        }
    }

    @Test func conv2DTransposeMatchesKerasPaddingRules() throws {
        for (i, f) in ReferenceFixtures.entries("keras_conv_transpose").enumerated() {
            let x = ReferenceFixtures.tensor(f["x"]), kernel = ReferenceFixtures.tensor(f["kernel"]), y = ReferenceFixtures.tensor(f["y"])
            let s = f["stride"] as! Int, k = f["kernel_size"] as! Int
            let op = f["output_padding"] as? Int
            let layer = Conv2DTranspose(filters: kernel.shape[2], kernelSize: k, strides: s,
                                        padding: (f["padding"] as! String) == "same" ? .same : .valid, outputPadding: op)
            let model = Sequential(inputShape: Array(x.shape.dropFirst())) { layer }
            layer.kernel.assign(kernel)
            layer.bias!.assign(ReferenceFixtures.tensor(f["bias"]))
            #expect(layer.outputShape == Array(y.shape.dropFirst()), "case \(i): \(layer.outputShape) vs \(y.shape)")
            let diff = maxDifference(model(x), y)
            #expect(diff <= Self.tolerance, "Keras case \(i): \(diff)")
        }
    }

    @Test func conv2DTransposeByHand() {
        // Stride 2, 2x2 kernel of ones: each input pixel becomes a 2x2 block (no overlap).
        let layer = Conv2DTranspose(filters: 1, kernelSize: 2, strides: 2, useBias: false)
        let model = Sequential(inputShape: [2, 2, 1]) { layer }
        layer.kernel.assign(Tensor.ones([2, 2, 1, 1]))
        #expect(layer.outputShape == [4, 4, 1])
        #expect(model(Tensor(shape: [1, 2, 2, 1], scalars: [1, 2, 3, 4])).scalars
                == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // Stride 1, 2x2 kernel [[1, 2], [3, 4]] on a single pixel 10: the kernel scaled (valid: 2x2).
        let one = Conv2DTranspose(filters: 1, kernelSize: 2, useBias: false)
        let m1 = Sequential(inputShape: [1, 1, 1]) { one }
        one.kernel.assign(Tensor(shape: [2, 2, 1, 1], scalars: [1, 2, 3, 4]))
        #expect(m1(Tensor(shape: [1, 1, 1, 1], scalars: [10])).scalars == [10, 20, 30, 40])
    }

    @Test func conv2DTransposeIsTheAdjointOfConv2DAndHasGradients() {
        // ⟨conv(x), y⟩ = ⟨x, convᵀ(y)⟩ for the same kernel (stride 2, valid).
        let x = Tensor.uniform([1, 7, 6, 2], minimum: -1, maximum: 1, seed: 1)
        let w = Tensor.uniform([3, 3, 2, 4], minimum: -1, maximum: 1, seed: 2)  // HWIO: I = 2, O = 4
        let y = Tensor.conv2d(x, filter: w, strides: (2, 2))                    // [1, 3, 2, 4]
        let g = Tensor.uniform(y.shape, minimum: -1, maximum: 1, seed: 3)
        let back = Tensor.conv2dTranspose(g, filter: w, strides: (2, 2), outputSize: (7, 6))
        let lhs = (y * g).sum().scalar, rhs = (x * back).sum().scalar
        #expect(abs(lhs - rhs) < 1e-4, "\(lhs) vs \(rhs)")
        let xs = TestData.uniform([1, 3, 2, 2], seed: 4), ws = TestData.uniform([3, 2, 3, 2], seed: 5), bs = TestData.uniform([3], seed: 6)
        let r = checkGradients([xs, ws, bs]) { t in
            Tensor.conv2dTranspose(t[0], filter: t[1], bias: t[2], strides: (2, 3), crop: (1, 0), outputSize: (6, 7))
        }
        #expect(r.passed, "\(r)")
    }

    @Test func depthwiseConvolutionWithMultiplierMatchesPyTorch() {
        let f = ReferenceFixtures.entry("depthwise")
        let x = ReferenceFixtures.tensor(f["x"])
        // PyTorch padding 1 on a 3x3 kernel, stride 2 = explicit (1, 1, 1, 1).
        let layer = DepthwiseConv2D(kernelSize: (3, 3), strides: (2, 2), padding: .explicit(top: 1, bottom: 1, left: 1, right: 1),
                                    depthMultiplier: 2)
        let model = Sequential(inputShape: [6, 5, 3]) { layer }
        #expect(layer.kernel.shape == [3, 3, 3, 2] && layer.parameterCount == 3 * 3 * 3 * 2 + 6)
        layer.kernel.assign(ReferenceFixtures.tensor(f["kernel"]))
        layer.bias!.assign(ReferenceFixtures.tensor(f["bias"]))
        #expect(maxDifference(model(x), ReferenceFixtures.tensor(f["y"])) <= Self.tolerance)
        let xs = TestData.uniform([1, 4, 4, 2], seed: 1)
        let small = Sequential(inputShape: [4, 4, 2]) { DepthwiseConv2D(kernelSize: 3, padding: .same, depthMultiplier: 3) }
        let dw = small.layers[0] as! DepthwiseConv2D
        let r = checkGradients([xs, dw.kernel.value.detached()]) { t in
            dw.kernel.value = t[1]
            var ctx = ForwardContext(training: false)
            return dw.forward([t[0]], context: &ctx)
        }
        #expect(r.passed, "\(r)")
    }

    @Test func separableConvolutionMatchesKerasAndCostsLess() {
        let f = ReferenceFixtures.entry("separable")
        let x = ReferenceFixtures.tensor(f["x"])
        let layer = SeparableConv2D(filters: 4, kernelSize: 3, padding: .same, depthMultiplier: 2)
        let model = Sequential(inputShape: [5, 6, 3]) { layer }
        layer.depthwiseKernel.assign(ReferenceFixtures.tensor(f["depthwise_kernel"]))
        layer.pointwiseKernel.assign(ReferenceFixtures.tensor(f["pointwise_kernel"]))
        layer.bias!.assign(ReferenceFixtures.tensor(f["bias"]))
        #expect(maxDifference(model(x), ReferenceFixtures.tensor(f["y"])) <= Self.tolerance)
        let r = checkGradients([TestData.uniform([1, 4, 5, 3], seed: 8), layer.depthwiseKernel.value.detached(),
                                layer.pointwiseKernel.value.detached()]) { t in
            let small = SeparableConv2D(filters: 4, kernelSize: 3, strides: 2, padding: .same, depthMultiplier: 2)
            _ = Sequential(inputShape: [4, 5, 3]) { small }
            small.depthwiseKernel.value = t[1]; small.pointwiseKernel.value = t[2]
            var c = ForwardContext(training: false)
            return small.forward([t[0]], context: &c)
        }
        #expect(r.passed, "\(r)")
        // MobileNet's argument: 3x3·C + C·F weights instead of 3x3·C·F.
        let sep = Sequential(inputShape: [14, 14, 512]) { SeparableConv2D(filters: 512, kernelSize: 3, padding: .same, useBias: false) }
        let std = Sequential(inputShape: [14, 14, 512]) { Conv2D(filters: 512, kernelSize: 3, padding: .same, useBias: false) }
        #expect(sep.layers[0].parameterCount == 9 * 512 + 512 * 512)
        #expect(std.layers[0].parameterCount == 9 * 512 * 512)
    }

    @Test func channelShuffleMatchesPyTorchAndByHand() {
        let f = ReferenceFixtures.entry("channel_shuffle")
        let x = ReferenceFixtures.tensor(f["x"])
        let model = Sequential(inputShape: [2, 2, 6]) { ChannelShuffle(groups: 3) }
        #expect(maxDifference(model(x), ReferenceFixtures.tensor(f["y"])) == 0)
        // Channels 0…5 in 3 groups of 2: [0 1 | 2 3 | 4 5] → [0 2 4 1 3 5].
        let hand = Sequential(inputShape: [1, 1, 6]) { ChannelShuffle(groups: 3) }
        #expect(hand(Tensor(shape: [1, 1, 1, 6], scalars: [0, 1, 2, 3, 4, 5])).scalars == [0, 2, 4, 1, 3, 5])
        #expect(throws: LayerError.self) { _ = try ChannelShuffle(groups: 4).apply([Input(shape: [2, 2, 6])]) }
        let r = checkGradients([TestData.uniform([2, 2, 1, 6], seed: 3)]) { t in
            var ctx = ForwardContext(training: false)
            return model.forward([t[0].reshaped([1, 2, 2, 6])], context: &ctx)[0]
        }
        #expect(r.passed, "\(r)")
    }

    @Test func zeroPaddingAndCroppingByHand() {
        let x = Tensor(shape: [1, 2, 2, 1], scalars: [1, 2, 3, 4])
        let pad = Sequential(inputShape: [2, 2, 1]) { ZeroPadding2D(padding: ((1, 0), (0, 2))) }
        #expect(pad.layers[0].outputShape == [3, 4, 1])
        #expect(pad(x).scalars == [0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0])
        let crop = Sequential(inputShape: [3, 4, 1]) { Cropping2D(cropping: ((1, 0), (0, 2))) }
        #expect(crop(pad(x)).scalars == x.scalars)
        #expect(throws: LayerError.self) { _ = try Cropping2D(cropping: ((1, 1), (0, 0))).apply([Input(shape: [2, 2, 1])]) }
        let r = checkGradients([TestData.uniform([1, 3, 4, 2], seed: 1)]) { t in
            var c = ForwardContext(training: false)
            let m = Sequential(inputShape: [3, 4, 2]) { ZeroPadding2D(1); Cropping2D(cropping: ((2, 0), (1, 2))) }
            return m.forward(t, context: &c)[0]
        }
        #expect(r.passed, "\(r)")
    }

    /// The 1x1, dilated and grouped convolutions are Conv2D options: check each against
    /// what it means.
    @Test func pointwiseDilatedAndGroupedConvolutionsMeanWhatTheySay() {
        let x = Tensor.uniform([2, 5, 6, 4], minimum: -1, maximum: 1, seed: 1)
        // 1x1: a matrix product over channels at every pixel.
        let w1 = Tensor.uniform([1, 1, 4, 3], minimum: -1, maximum: 1, seed: 2)
        let pointwise = Tensor.conv2d(x, filter: w1)
        let asMatmul = matmul(x.reshaped([-1, 4]), w1.reshaped([4, 3])).reshaped([2, 5, 6, 3])
        #expect(maxDifference(pointwise, asMatmul) <= 1e-6)
        // Dilation 2 = the kernel with zeros between its taps.
        let w3 = Tensor.uniform([3, 3, 4, 2], minimum: -1, maximum: 1, seed: 3)
        let dilated = Tensor.conv2d(x, filter: w3, padding: .same, dilations: (2, 2))
        let spread = w3.reshaped([3, 1, 3, 1, 4, 2]).padded([(0, 0), (0, 1), (0, 0), (0, 1), (0, 0), (0, 0)])
            .reshaped([6, 6, 4, 2]).sliced(starts: [0, 0], ends: [5, 5])
        #expect(maxDifference(dilated, Tensor.conv2d(x, filter: spread, padding: .same)) <= 1e-5)
        #expect(Sequential(inputShape: [9, 9, 4]) { Conv2D(filters: 2, kernelSize: 3, dilationRate: 3) }.layers[0].outputShape == [3, 3, 2])
        // Groups 2: two independent convolutions on channel halves, outputs concatenated.
        let wg = Tensor.uniform([3, 3, 2, 6], minimum: -1, maximum: 1, seed: 4)
        let grouped = Tensor.conv2d(x, filter: wg, padding: .same, groups: 2)
        let halves = (0..<2).map { g in
            Tensor.conv2d(x.sliced(axis: 3, (2 * g)..<(2 * g + 2)), filter: wg.sliced(axis: 3, (3 * g)..<(3 * g + 3)), padding: .same)
        }
        #expect(maxDifference(grouped, Tensor.concatenate(halves, axis: 3)) <= 1e-5)
        let layer = Conv2D(filters: 6, kernelSize: 3, groups: 2, useBias: false)
        _ = Sequential(inputShape: [5, 6, 4]) { layer }
        #expect(layer.parameterCount == 3 * 3 * 2 * 6)  // 1/groups of the dense convolution
    }

    // MARK: Pooling

    @Test func lpPoolingMatchesPyTorch() {
        for f in ReferenceFixtures.entries("lp_pool") {
            let x = ReferenceFixtures.tensor(f["x"])
            let p = f["p"] as! Int, k = f["k"] as! Int, s = f["s"] as! Int
            let model = Sequential(inputShape: Array(x.shape.dropFirst())) { LpPooling2D(power: Float(p), poolSize: k, strides: s) }
            let d = maxDifference(model(x), ReferenceFixtures.tensor(f["y"]))
            #expect(d <= 1e-5 * 4, "p \(p), kernel \(k), stride \(s): \(d)")
        }
        // By hand: p = 2 over the window [3, 4] is √(9 + 16) = 5.
        let hand = Sequential(inputShape: [1, 2, 1]) { LpPooling2D(power: 2, poolSize: (1, 2)) }
        #expect(hand(Tensor(shape: [1, 1, 2, 1], scalars: [3, 4])).scalars == [5])
        // Large p tends to max pooling.
        let x = Tensor.uniform([1, 4, 4, 2], minimum: 0.5, maximum: 1, seed: 2)
        let lp = Sequential(inputShape: [4, 4, 2]) { LpPooling2D(power: 64, poolSize: 2) }
        #expect(maxDifference(lp(x), Tensor.maxPool2d(x, poolSize: (2, 2))) < 0.03)
        let r = checkGradients([Tensor.uniform([1, 4, 5, 2], minimum: 0.3, maximum: 1.5, seed: 3)]) { t in
            var c = ForwardContext(training: false)
            return Sequential(inputShape: [4, 5, 2]) { LpPooling2D(power: 3, poolSize: (2, 3), strides: (1, 2)) }.forward(t, context: &c)[0]
        }
        #expect(r.passed, "\(r)")
    }

    @Test func adaptiveMaxPoolingMatchesPyTorch() {
        let f = ReferenceFixtures.entry("adaptive_max_pool")
        let x = ReferenceFixtures.tensor(f["x"])
        for (bins, y) in f["bins"] as! [String: Any] {
            #expect(maxDifference(Tensor.adaptiveMaxPool2d(x, bins: Int(bins)!), ReferenceFixtures.tensor(y)) == 0, "bins \(bins)")
        }
    }

    @Test func spatialPyramidPoolingGivesOneLengthForEverySize() throws {
        let model = Sequential(inputShape: [224, 224, 3]) {
            Conv2D(filters: 8, kernelSize: 3, strides: 2, padding: .same, activation: .relu)
            MaxPooling2D(2)
            SpatialPyramidPooling(levels: [1, 2, 4])
            Dense(units: 5, activation: .softmax)
        }
        #expect(model.layers[2].outputShape == [8 * 21])
        let a = model(Tensor.uniform([1, 224, 224, 3], seed: 1))
        let b = model.predictAnySize(Tensor.uniform([2, 240, 320, 3], seed: 2))
        let c = model.predictAnySize(Tensor.uniform([1, 37, 53, 3], seed: 3))
        #expect(a.shape == [1, 5] && b.shape == [2, 5] && c.shape == [1, 5])
        // The same weights: predictAnySize at the model's own size equals the model.
        let x = Tensor.uniform([1, 224, 224, 3], seed: 4)
        #expect(maxDifference(model.predictAnySize(x), model(x)) == 0)
        // Level 1 is global max pooling.
        let spp = Sequential(inputShape: [5, 7, 2]) { SpatialPyramidPooling(levels: [1]) }
        let gmp = Sequential(inputShape: [5, 7, 2]) { GlobalMaxPooling2D() }
        let y = Tensor.uniform([3, 5, 7, 2], seed: 5)
        #expect(spp(y).scalars == gmp(y).scalars)
        let r = checkGradients([TestData.distinct([1, 5, 6, 2], seed: 6)]) { t in
            var c = ForwardContext(training: false)
            return Sequential(inputShape: [5, 6, 2]) { SpatialPyramidPooling(levels: [1, 2, 3]) }.forward(t, context: &c)[0]
        }
        #expect(r.passed, "\(r)")
    }

    @Test func convolutionAndPoolingLayersRoundTripThroughSaveAndLoad() throws {
        RandomSeed.set(3)
        let x = Input(shape: [12, 10, 4])
        var h = DepthwiseConv2D(kernelSize: 3, padding: .same, depthMultiplier: 2)(x)
        h = SeparableConv2D(filters: 6, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(h)
        h = ChannelShuffle(groups: 3)(h)
        h = Conv2DTranspose(filters: 4, kernelSize: 3, strides: 2, padding: .same, outputPadding: 1)(h)
        h = ZeroPadding2D(padding: ((1, 2), (0, 1)))(h)
        h = Cropping2D(cropping: ((0, 1), (1, 0)))(h)
        h = LpPooling2D(power: 2, poolSize: 2)(h)
        let a = GlobalMaxPooling2D()(h)
        let b = SpatialPyramidPooling(levels: [1, 2])(h)
        let y = Dense(units: 3)(Concatenate()([a, b]))
        let model = Model(inputs: x, outputs: y)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-concepts-conv-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        let input = Tensor.uniform([2, 12, 10, 4], minimum: -1, maximum: 1, seed: 7)
        #expect(maxDifference(loaded(input), model(input)) == 0)
    }
}
