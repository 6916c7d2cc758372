import Testing
@testable import OcelliTensor
import OcelliTestSupport

private func u(_ s: [Int], _ seed: UInt64, _ scale: Float = 1) -> Tensor { TestData.uniform(s, seed: seed, scale: scale) }
private func distinct(_ s: [Int], _ seed: UInt64) -> Tensor { TestData.distinct(s, seed: seed) }

/// The fused kernels' hand-written backwards against finite differences.
let kernelCases: [GradCase] = [
    GradCase("conv2d valid + bias", { [u([2, 5, 6, 3], 1), u([3, 3, 3, 4], 2), u([4], 3)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2]) },
    GradCase("conv2d same stride 2", { [u([1, 7, 6, 2], 4), u([3, 3, 2, 3], 5)] }) {
        Tensor.conv2d($0[0], filter: $0[1], strides: (2, 2), padding: .same) },
    GradCase("conv2d explicit asymmetric stride (2,1)", { [u([1, 6, 5, 2], 6), u([2, 3, 2, 3], 7)] }) {
        Tensor.conv2d($0[0], filter: $0[1], strides: (2, 1), padding: .explicit(top: 1, bottom: 0, left: 2, right: 1)) },
    GradCase("conv2d dilation 2", { [u([1, 7, 7, 2], 8), u([3, 3, 2, 2], 9)] }) {
        Tensor.conv2d($0[0], filter: $0[1], padding: .same, dilations: (2, 2)) },
    GradCase("conv2d groups 2", { [u([1, 5, 5, 4], 10), u([3, 3, 2, 6], 11), u([6], 12)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2], padding: .same, groups: 2) },
    GradCase("conv2d depthwise", { [u([2, 5, 5, 3], 13), u([3, 3, 1, 3], 14)] }) {
        Tensor.conv2d($0[0], filter: $0[1], padding: .same, groups: 3) },
    GradCase("conv2d depthwise multiplier 2 stride 2", { [u([1, 6, 6, 2], 15), u([3, 3, 1, 4], 16)] }) {
        Tensor.conv2d($0[0], filter: $0[1], strides: (2, 2), padding: .same, groups: 2) },
    GradCase("conv2d 1x1", { [u([2, 3, 3, 5], 17), u([1, 1, 5, 3], 18), u([3], 19)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2]) },
    GradCase("conv2d full window (a GEMM)", { [u([2, 4, 3, 2], 24), u([4, 3, 2, 3], 25), u([3], 26)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2]) },
    GradCase("conv2d + fused relu", { [u([2, 5, 6, 3], 41), u([3, 3, 3, 4], 42), u([4], 43)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2], activation: .relu) },
    GradCase("conv2d 1x1 + fused leaky 0.1", { [u([2, 3, 3, 5], 54), u([1, 1, 5, 3], 55), u([3], 56)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2], activation: .leaky(0.1)) },
    GradCase("conv2d full window + fused relu", { [u([2, 4, 3, 2], 47), u([4, 3, 2, 3], 48), u([3], 49)] }) {
        Tensor.conv2d($0[0], filter: $0[1], bias: $0[2], activation: .relu) },
    GradCase("conv2d im2col + fused relu", { [u([1, 5, 5, 3], 50), u([3, 3, 3, 2], 51)] }) {
        Tensor.conv2d($0[0], filter: $0[1], padding: .same, algorithm: .im2col, activation: .relu) },
    GradCase("conv2d im2col", { [u([1, 5, 5, 3], 20), u([3, 3, 3, 2], 21)] }) {
        Tensor.conv2d($0[0], filter: $0[1], padding: .same, algorithm: .im2col) },
    GradCase("conv2d padding wider than kernel", { [u([1, 3, 3, 1], 22), u([2, 2, 1, 2], 23)] }) {
        Tensor.conv2d($0[0], filter: $0[1], padding: .explicit(top: 2, bottom: 2, left: 3, right: 1)) },
    GradCase("max pool 2x2", { [distinct([2, 4, 6, 3], 30)] }) { Tensor.maxPool2d($0[0], poolSize: (2, 2)) },
    GradCase("max pool 3x3 stride 2 same", { [distinct([1, 7, 7, 2], 31)] }) {
        Tensor.maxPool2d($0[0], poolSize: (3, 3), strides: (2, 2), padding: .same) },
    GradCase("max pool Darknet size 2 stride 1", { [distinct([1, 5, 5, 2], 32)] }) {
        Tensor.maxPool2d($0[0], poolSize: (2, 2), strides: (1, 1), padding: .darknetMaxPool(size: 2)) },
    GradCase("avg pool same", { [u([2, 5, 5, 2], 33)] }) {
        Tensor.avgPool2d($0[0], poolSize: (2, 2), strides: (2, 2), padding: .same) },
    GradCase("avg pool count pad", { [u([1, 5, 4, 2], 34)] }) {
        Tensor.avgPool2d($0[0], poolSize: (3, 3), strides: (2, 2), padding: .explicit(top: 1, bottom: 1, left: 1, right: 1), countIncludePad: true) },
    GradCase("global avg pool", { [u([2, 3, 4, 5], 35)] }) { Tensor.globalAvgPool2d($0[0]) },
    GradCase("batch norm training", { [u([4, 3, 5], 40, 2), u([5], 41), u([5], 42)] }) {
        Tensor.batchNormTraining($0[0], scale: $0[1], offset: $0[2], epsilon: 1e-3).output },
    GradCase("batch norm inference", { [u([4, 5], 43), u([5], 44), u([5], 45)] }) {
        Tensor.batchNormInference($0[0], scale: $0[1], offset: $0[2], mean: Tensor.uniform([5], seed: 46),
                                  variance: Tensor.uniform([5], minimum: 0.5, maximum: 2, seed: 47), epsilon: 1e-3) },
    GradCase("softmax", { [u([3, 5], 50, 2)] }) { $0[0].softmax() },
    GradCase("log softmax", { [u([2, 2, 4], 51, 2)] }) { $0[0].logSoftmax() },
    GradCase("softmax CE dense", { [u([4, 5], 52, 2)] }) {
        Tensor.softmaxCrossEntropy(logits: $0[0], labels: Tensor.uniform([4, 5], minimum: 0, maximum: 1, seed: 53)) },
    GradCase("softmax CE sparse smoothed", { [u([4, 5], 54, 2)] }) {
        Tensor.softmaxCrossEntropy(logits: $0[0], classIndices: Tensor([0, 4, 2, 2]), labelSmoothing: 0.1) },
    GradCase("dropout (seeded mask)", { [u([4, 6], 55)] }) { x in
        var g = SeededGenerator(seed: 5); return Tensor.dropout(x[0], rate: 0.4, using: &g) },
    GradCase("upsample nearest", { [u([1, 2, 3, 2], 56)] }) { Tensor.upsampleNearest($0[0], scale: (2, 3)) },
    GradCase("space to depth", { [u([1, 4, 4, 2], 57)] }) { Tensor.spaceToDepth($0[0], blockSize: 2) },
    GradCase("depth to space", { [u([1, 2, 2, 8], 58)] }) { Tensor.depthToSpace($0[0], blockSize: 2) },
    GradCase("darknet reorg", { [u([1, 4, 4, 8], 59)] }) { Tensor.darknetReorg($0[0], stride: 2) },
]

@Suite struct KernelGradientTests {
    @Test(arguments: kernelCases)
    func finiteDifferences(_ c: GradCase) {
        let r = checkGradients(c.inputs(), c.f)
        #expect(r.passed, "\(c.name): \(r)")
    }
}

@Suite struct KernelValueTests {
    @Test func softmaxValuesByHand() {
        let s = Tensor([[0, 0], [1000, 0]]).softmax()
        #expect(s.isClose(to: Tensor([[0.5, 0.5], [1, 0]])))
        #expect(Tensor([[1, 2, 3]]).logSoftmax().isClose(to: Tensor([[-2.4076059, -1.4076059, -0.4076059]])))
        // CE with one-hot = −log p; label smoothing spreads ε/C.
        let ce = Tensor.softmaxCrossEntropy(logits: Tensor([[0, 0]]), classIndices: Tensor([1]))
        #expect(ce.isClose(to: Tensor([0.6931472])))
        let sm = Tensor.softmaxCrossEntropy(logits: Tensor([[2, 0]]), labels: Tensor([[1, 0]]), labelSmoothing: 0.2)
        // targets 0.9, 0.1: 0.9·log(1+e⁻²) + 0.1·(2 + log(1+e⁻²))
        #expect(sm.isClose(to: Tensor([0.12692801 + 0.2]), absolute: 1e-5))
    }

    @Test func batchNormTracksRunningStatisticsLikeKeras() {
        let x = Tensor([[1, 10], [3, 20]])
        var mean = Tensor.zeros([2]), variance = Tensor.ones([2])
        let y = Tensor.batchNormalization(x, scale: Tensor.ones([2]), offset: Tensor.zeros([2]),
                                          runningMean: &mean, runningVariance: &variance,
                                          training: true, momentum: 0.9, epsilon: 0)
        #expect(y.isClose(to: Tensor([[-1, -1], [1, 1]])))
        #expect(mean.isClose(to: Tensor([0.2, 1.5])))
        #expect(variance.isClose(to: Tensor([0.9 + 0.1 * 1, 0.9 + 0.1 * 25])))
        let inf = Tensor.batchNormalization(x, scale: Tensor([2, 2]), offset: Tensor([1, 1]),
                                            runningMean: &mean, runningVariance: &variance,
                                            training: false, epsilon: 0)
        #expect(inf.isClose(to: Tensor([[2 * (1 - 0.2) / 1 + 1, 2 * (10 - 1.5) / Float(3.4).squareRoot() + 1],
                                        [2 * (3 - 0.2) / 1 + 1, 2 * (20 - 1.5) / Float(3.4).squareRoot() + 1]]), relative: 1e-5))
    }

    @Test func dropoutIsSeededAndKeepsTheExpectation() {
        var g1 = SeededGenerator(seed: 3), g2 = SeededGenerator(seed: 3)
        let x = Tensor.ones([10000])
        let a = Tensor.dropout(x, rate: 0.3, using: &g1), b = Tensor.dropout(x, rate: 0.3, using: &g2)
        #expect(a.scalars == b.scalars)
        #expect(Set(a.scalars) == [0, 1 / 0.7])
        #expect(abs(a.mean().scalar - 1) < 0.03)
    }

    @Test func dropoutMaskIsThreadIndependentAndWellMixed() {
        let x = Tensor.ones([300_001])
        func draw(_ threads: Int, seed: UInt64 = 8) -> [Float] {
            var g = SeededGenerator(seed: seed)
            return Parallel.withThreadCount(threads) { Tensor.dropout(x, rate: 0.5, using: &g).scalars }
        }
        let one = draw(1), two = draw(2)
        #expect(one == two)
        #expect(one != draw(1, seed: 9))
        // Successive calls on one generator draw different masks.
        var g = SeededGenerator(seed: 8)
        let first = Tensor.dropout(x, rate: 0.5, using: &g).scalars
        let second = Tensor.dropout(x, rate: 0.5, using: &g).scalars
        #expect(first == one && second != first)
        // Kept fraction and independence of neighbours and of successive masks (≈ 5σ bounds).
        let kept = one.map { $0 != 0 }, kept2 = second.map { $0 != 0 }
        let n = Double(kept.count)
        let p = Double(kept.filter { $0 }.count) / n
        #expect(abs(p - 0.5) < 5 * (0.25 / n).squareRoot())
        let pairs = Double((1..<kept.count).filter { kept[$0] && kept[$0 - 1] }.count) / (n - 1)
        #expect(abs(pairs - 0.25) < 5 * (0.1875 / n).squareRoot())
        let both = Double((0..<kept.count).filter { kept[$0] && kept2[$0] }.count) / n
        #expect(abs(both - 0.25) < 5 * (0.1875 / n).squareRoot())
        // The backward multiplies the incoming gradient by the same mask.
        var gb = SeededGenerator(seed: 8)
        let v = Tensor.ones([300_001]).requiringGrad()
        Tensor.dropout(v, rate: 0.5, using: &gb).sum().backward()
        #expect(v.grad?.scalars == one)
    }

    @Test func poolingByHand() {
        let x = Tensor(shape: [1, 4, 4, 1], scalars: (0..<16).map(Float.init))
        #expect(Tensor.maxPool2d(x, poolSize: (2, 2)).scalars == [5, 7, 13, 15])
        #expect(Tensor.avgPool2d(x, poolSize: (2, 2)).scalars == [2.5, 4.5, 10.5, 12.5])
        #expect(Tensor.globalAvgPool2d(x).scalars == [7.5])
        // Keras "same" average excludes the padding; PyTorch-style includes it.
        let s = Tensor.avgPool2d(x, poolSize: (3, 3), strides: (3, 3), padding: .same)
        #expect(s.shape == [1, 2, 2, 1])
        #expect(s.scalars[3] == 12.5)  // window rows 2–3 × cols 2–3 (one padded row and column)
        // Darknet maxpool size 2 stride 1 keeps the size (YOLOv3-tiny's layer 11).
        let d = Tensor.maxPool2d(x, poolSize: (2, 2), strides: (1, 1), padding: .darknetMaxPool(size: 2))
        #expect(d.shape == [1, 4, 4, 1])
        #expect(d.scalars == [5, 6, 7, 7, 9, 10, 11, 11, 13, 14, 15, 15, 13, 14, 15, 15])
    }

    @Test func darknetMaxPoolMatchesTheReferenceOnNegativeInputs() {
        // All negative: a zero-padded pool would wrongly output 0 at the border.
        let x = Tensor.uniform([2, 7, 5, 3], minimum: -2, maximum: -1, seed: 9)
        for (size, stride) in [(2, 1), (2, 2), (3, 2), (3, 1)] {
            let p = size - 1
            let y = Tensor.maxPool2d(x, poolSize: (size, size), strides: (stride, stride), padding: .darknetMaxPool(size: size))
            let oh = (7 + p - size) / stride + 1, ow = (5 + p - size) / stride + 1
            let r = Reference.maxPool(x, size: (size, size), stride: (stride, stride), pad: (p / 2, p / 2), out: (oh, ow))
            #expect(y.shape == r.shape)
            #expect(y.scalars == r.scalars, "size \(size) stride \(stride)")
            #expect(y.scalars.allSatisfy { $0 < 0 })
        }
    }

    @Test func maxPoolBackwardGivesEachWindowsFirstMaximumTheGradient() {
        // Many ties (values in {0, 1, 2}), overlapping windows, padding, and more channels than
        // the kernel's 256-channel block: against a scalar loop written from the definition.
        let (n, h, w, c) = (2, 5, 6, 300)
        let x = Tensor(shape: [n, h, w, c], scalars: (0..<(n * h * w * c)).map { Float(($0 * 7919) % 3) })
        // (2, 2, 0, 1): Keras "same" on odd sizes, windows past the last row and column.
        for (size, stride, pad, after) in [(2, 2, 0, 0), (2, 2, 0, 1), (3, 2, 1, 1), (3, 1, 1, 1)] {
            let padding = Padding.explicit(top: pad, bottom: after, left: pad, right: after)
            let y = Tensor.maxPool2d(x.requiringGrad(), poolSize: (size, size), strides: (stride, stride), padding: padding)
            let (oh, ow) = (y.shape[1], y.shape[2])
            let dy = Tensor.uniform(y.shape, minimum: -1, maximum: 1, seed: 4)
            let leaf = x.requiringGrad()
            Tensor.maxPool2d(leaf, poolSize: (size, size), strides: (stride, stride), padding: padding).backward(dy)
            var expected = [Float](repeating: 0, count: x.count)
            for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for ch in 0..<c {
                var best = -Float.infinity, at = -1
                for iy in (oy * stride - pad)..<(oy * stride - pad + size) where iy >= 0 && iy < h {
                    for ix in (ox * stride - pad)..<(ox * stride - pad + size) where ix >= 0 && ix < w {
                        let i = ((b * h + iy) * w + ix) * c + ch
                        if x.scalars[i] > best { best = x.scalars[i]; at = i }
                    }
                }
                let o = ((b * oh + oy) * ow + ox) * c + ch
                #expect(y.scalars[o] == best)
                expected[at] += dy.scalars[o]
            } } } }
            #expect(leaf.grad!.scalars == expected, "size \(size) stride \(stride) pad \(pad) \(after)")
        }
    }

    @Test func resamplingByHand() {
        let x = Tensor(shape: [1, 2, 2, 1], scalars: [1, 2, 3, 4])
        #expect(Tensor.upsampleNearest(x).scalars == [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4])
        // TF space_to_depth on a 2x2x1 block gives the four pixels in row-major order.
        #expect(Tensor.spaceToDepth(x, blockSize: 2).scalars == [1, 2, 3, 4])
        let y = Tensor.uniform([2, 4, 6, 3], seed: 4)
        #expect(Tensor.depthToSpace(Tensor.spaceToDepth(y, blockSize: 2), blockSize: 2).scalars == y.scalars)
    }

    @Test func darknetReorgMatchesReorgCpuAndDiffersFromSpaceToDepth() {
        for (n, h, w, c, s) in [(1, 4, 4, 4, 2), (2, 6, 4, 8, 2), (1, 26, 26, 64, 2), (1, 6, 6, 18, 3)] {
            let x = Tensor.uniform([n, h, w, c], seed: UInt64(h * w + c))
            let ref = Reference.darknetReorgCPU(Reference.nhwcToNCHW(x), w: w, h: h, c: c, batch: n, stride: s, forward: false)
            let expected = Reference.nchwToNHWC(ref, n: n, c: c * s * s, h: h / s, w: w / s)
            let y = Tensor.darknetReorg(x, stride: s)
            #expect(y.shape == [n, h / s, w / s, c * s * s])
            #expect(y.scalars == expected.scalars, "reorg \(x.shape) stride \(s)")
        }
        let x = Tensor.uniform([1, 4, 4, 4], seed: 1)
        #expect(Tensor.darknetReorg(x, stride: 2).scalars != Tensor.spaceToDepth(x, blockSize: 2).scalars)
    }
}
