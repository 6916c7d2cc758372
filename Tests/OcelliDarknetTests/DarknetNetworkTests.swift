import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

@Suite struct DarknetNetworkTests {
    /// Every cfg Darknet ships here builds, with the layer count, output shapes and (where a
    /// published number exists) the parameter count of the original.
    @Test func everyCfgBuilds() throws {
        let expectations: [(String, [[Int]], Int?)] = [
            ("yolov3-tiny.cfg", [[13, 13, 255], [26, 26, 255]], 8_858_734),
            ("yolov2-tiny-voc.cfg", [[13, 13, 125]], nil),
            ("yolov2-tiny.cfg", [[13, 13, 425]], nil),
            ("yolov2-voc.cfg", [[13, 13, 125]], nil),
            ("yolov2.cfg", [[19, 19, 425]], nil),
            ("yolov3.cfg", [[19, 19, 255], [38, 38, 255], [76, 76, 255]], 62_001_757),
            ("yolov3-voc.cfg", [[13, 13, 75], [26, 26, 75], [52, 52, 75]], nil),
            ("darknet19.cfg", [[1, 1, 1000]], nil),
            ("darknet19_448.cfg", [[1, 1, 1000]], nil),
            ("tiny.cfg", [[1, 1, 1000]], nil),
            ("yolov1-tiny.cfg", [[1470]], nil),
        ]
        for (name, shapes, params) in expectations {
            let net = try DarknetNetwork(cfg: Paths.cfg(name))
            #expect(net.model.outputs.map(\.shape) == shapes, "\(name)")
            if let params { #expect(net.model.parameters.reduce(0) { $0 + $1.count } == params, "\(name)") }
        }
    }

    @Test func darknetTableLines() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        let lines = net.darknetTable().split(separator: "\n").map(String.init)
        #expect(lines[0] == "layer     filters    size              input                output")
        #expect(lines[1] == "    0 conv     16  3 x 3 / 1   416 x 416 x   3   ->   416 x 416 x  16  0.150 BFLOPs")
        #expect(lines[2] == "    1 max          2 x 2 / 2   416 x 416 x  16   ->   208 x 208 x  16")
        #expect(lines[12] == "   11 max          2 x 2 / 1    13 x  13 x 512   ->    13 x  13 x 512")
        #expect(lines[17] == "   16 yolo")
        #expect(lines[18] == "   17 route  13")
        #expect(lines[20] == "   19 upsample            2x    13 x  13 x 128   ->    26 x  26 x 128")
        #expect(lines[21] == "   20 route  19 8")
        #expect(lines[13] == "   12 conv   1024  3 x 3 / 1    13 x  13 x 512   ->    13 x  13 x1024  1.595 BFLOPs")
        #expect(lines[22] == "   21 conv    256  3 x 3 / 1    26 x  26 x 384   ->    26 x  26 x 256  1.196 BFLOPs")
        #expect(lines.last == "Total BFLOPs 5.565")
        // pjreddie's darknet prints these lines for yolov2-voc.cfg.
        let v2 = try DarknetNetwork(cfg: Paths.cfg("yolov2-voc.cfg"))
        let table = v2.darknetTable()
        #expect(table.contains("   27 reorg              / 2    26 x  26 x  64   ->    13 x  13 x 256\n"), "\(table)")
        #expect(table.contains("   28 route  27 24\n"))
        #expect(table.contains("   29 conv   1024  3 x 3 / 1    13 x  13 x1280   ->    13 x  13 x1024  3.987 BFLOPs\n"))
        #expect(table.contains("   31 detection\n"))
    }

    /// Route concatenation order, reorg and the region head follow Darknet's indices.
    @Test func routesAndShortcuts() throws {
        let net = try DarknetNetwork(cfg: Paths.cfg("yolov3.cfg"), width: 320, height: 320)
        #expect(net.model.outputs.map(\.shape) == [[10, 10, 255], [20, 20, 255], [40, 40, 255]])
        #expect(net.layers.filter { $0.type == "shortcut" }.count == 23)
        let v2 = try DarknetNetwork(cfg: Paths.cfg("yolov2-voc.cfg"))
        #expect(v2.layers[28].outputShape == [13, 13, 1280])     // route 27 24: 256 (reorg) then 1024
    }

    /// Darknet's batch norm in training composed of recorded ops: the naive reference of the fused
    /// kernel (unbiased variance, epsilon outside the root).
    static func referenceBatchNorm(_ z: Tensor, scales: Tensor, biases: Tensor) -> Tensor {
        let axes = Array(0..<(z.rank - 1))
        let count = Float(z.count / z.shape[z.rank - 1])
        let centered = z - z.mean(axes: axes)
        let variance = centered.square().sum(axes: axes) * (1 / Swift.max(count - 1, 1))
        return centered / (variance.sqrt() + 1e-6) * scales + biases
    }

    @Test func trainingBatchNormGradients() throws {
        let z = TestData.uniform([2, 3, 3, 4], seed: 3, scale: 2)
        let scales = TestData.uniform([4], seed: 4) + 1.5
        let biases = TestData.uniform([4], seed: 5)
        for slope: Float? in [nil, 0.1] {
            let r = checkGradients([z, scales, biases], absolute: 2e-3, relative: 2e-2) { xs in
                Tensor.darknetBatchNormTraining(xs[0], scale: xs[1], offset: xs[2], leakySlope: slope).output
            }
            #expect(r.passed, "leaky \(String(describing: slope)): \(r)")
        }
        // The fused kernel equals the composed reference, values and gradients, on a map large
        // enough for several blocks of rows and both threads.
        let big = TestData.uniform([3, 37, 41, 24], seed: 6, scale: 3) + 0.5
        let gamma = TestData.uniform([24], seed: 7) + 1.5, beta = TestData.uniform([24], seed: 8)
        let weights = TestData.uniform(big.shape, seed: 9)
        func run(_ fused: Bool) -> [[Float]] {
            let (x, g, b) = (big.requiringGrad(), gamma.requiringGrad(), beta.requiringGrad())
            let y = fused ? Tensor.darknetBatchNormTraining(x, scale: g, offset: b, leakySlope: 0.1).output
                          : Self.referenceBatchNorm(x, scales: g, biases: b).leakyRelu(negativeSlope: 0.1)
            (y * weights).sum().backward()
            return [y.scalars, x.grad!.scalars, g.grad!.scalars, b.grad!.scalars]
        }
        let (fused, reference) = (run(true), run(false))
        for (k, (f, r)) in zip(fused, reference).enumerated() {
            let worst = zip(f, r).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(worst < 2e-4, "output/dx/dscale/dbias \(k): differs by \(worst)")
        }
        #expect(Parallel.withThreadCount(1) { run(true) } == fused, "the thread count changes the result")
        for a in [DarknetActivation.mish, .swish, .loggy, .ramp, .logistic, .elu] {
            let x = TestData.awayFromZero([17], seed: 9) * 3
            let g = checkGradients([x]) { xs in a(xs[0]) }
            #expect(g.passed, "\(a): \(g)")
        }
    }

    /// The batch statistics stay exact when the mean is far larger than the spread (the sums are
    /// taken relative to a shift), and the unbiased variance is Darknet's.
    @Test func trainingBatchNormStatisticsWithLargeMean() {
        let x = TestData.uniform([4, 33, 29, 8], seed: 11, scale: 0.5) + 1000
        let (_, mean, variance) = Tensor.darknetBatchNormTraining(x, scale: Tensor.ones([8]), offset: Tensor.zeros([8]))
        let rows = x.count / 8
        for j in 0..<8 {
            let values = (0..<rows).map { Double(x.scalars[$0 * 8 + j]) }
            let m = values.reduce(0, +) / Double(rows)
            let v = values.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(rows - 1)
            #expect(abs(Double(mean.scalars[j]) - m) < 1e-4, "channel \(j): mean \(mean.scalars[j]) vs \(m)")
            #expect(abs(Double(variance.scalars[j]) - v) / v < 1e-4, "channel \(j): variance \(variance.scalars[j]) vs \(v)")
        }
    }

    /// A conv layer in training mode updates Darknet's rolling statistics and, at inference, equals
    /// the folded convolution.
    @Test func convolutionalInferenceEqualsUnfolded() throws {
        let conv = DarknetConvolutional(filters: 5, size: 3, padding: 1, batchNormalize: true, activation: .leaky)
        let model = Sequential(inputShape: [6, 7, 3]) { conv }
        _ = model
        conv.scales!.assign(TestData.uniform([5], seed: 1) + 1.2)
        conv.biases.assign(TestData.uniform([5], seed: 2))
        conv.rollingMean!.assign(TestData.uniform([5], seed: 3))
        conv.rollingVariance!.assign(TestData.uniform([5], seed: 4) + 1.5)
        let x = TestData.uniform([2, 6, 7, 3], seed: 5)
        let y = withoutGradients { conv(x) }          // the folded, packed, fused path
        let recorded = conv(x)                        // the differentiable inference path
        #expect(recorded.requiresGrad && recorded.isClose(to: y, absolute: 1e-5, relative: 1e-5))
        let z = Tensor.conv2d(x, filter: conv.kernel.value, padding: .explicit(top: 1, bottom: 1, left: 1, right: 1))
        let reference = ((z - conv.rollingMean!.value) / (conv.rollingVariance!.value.sqrt() + 1e-6) * conv.scales!.value
            + conv.biases.value).leakyRelu(negativeSlope: 0.1)
        #expect(y.isClose(to: reference, absolute: 1e-5, relative: 1e-5))
        // Changing a parameter invalidates the folded weights.
        conv.scales!.assign(conv.scales!.value * 2)
        let y2 = withoutGradients { conv(x) }
        #expect(!y2.isClose(to: y, absolute: 1e-3, relative: 0))
        // Training: rolling mean moves 1% toward the batch mean.
        let before = conv.rollingMean!.value
        _ = conv(x, training: true)
        let batchMean = z.mean(axes: [0, 1, 2])
        #expect(conv.rollingMean!.value.isClose(to: before * 0.99 + batchMean * 0.01, absolute: 1e-5, relative: 1e-5))
    }

    /// A thin convolution followed by a 2x2/2 max pool runs in one fused pass at inference; the
    /// result is bitwise the unfused one (same kernel, same maxima), for Darknet's pool padding
    /// and Keras' valid pool, with and without a consumer that keeps the fusion off.
    @Test func convolutionFusedWithMaxPoolEqualsTheTwoLayers() throws {
        for (h, w, pad) in [(12, 10, Padding.darknetMaxPool(size: 2)), (8, 6, .valid), (7, 9, .darknetMaxPool(size: 2))] {
            let conv = DarknetConvolutional(filters: 20, size: 3, padding: 1, batchNormalize: true, activation: .leaky)
            let input = Input(shape: [h, w, 3])
            let pooled = MaxPooling2D(poolSize: (2, 2), strides: (2, 2), padding: pad)(conv(input))
            let model = Model(inputs: input, outputs: pooled)
            conv.scales!.assign(TestData.uniform([20], seed: 1) + 1.2)
            conv.biases.assign(TestData.uniform([20], seed: 2))
            conv.rollingVariance!.assign(TestData.uniform([20], seed: 4) + 1.5)
            let x = TestData.uniform([2, h, w, 3], seed: 5)
            let fused = withoutGradients { model(x) }
            var ctx = ForwardContext(training: false)
            let separate = withoutGradients {
                let y = conv.forward([x], context: &ctx)
                return Tensor.maxPool2d(y, poolSize: (2, 2), strides: (2, 2), padding: pad)
            }
            #expect(fused.shape == separate.shape && fused.scalars == separate.scalars, "\(h)x\(w) \(pad)")
            #expect(withoutGradients { conv.forward([x], fusedWith: model.layers.last!, context: &ctx) } != nil || h % 2 == 1,
                    "\(h)x\(w): the fused path should run")
        }
    }

    /// In this process (where `DarknetNetwork` registered the Darknet layers); a fresh process is
    /// `DarknetSavedModelTests.savedDarknetModelLoadsInAFreshProcess`.
    @Test func savedModelReloadsWithDarknetLayers() throws {
        let net = try DarknetNetwork(cfg: Paths.cfg("yolov2-tiny-voc.cfg"), width: 64, height: 64)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-darknet-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try net.model.save(to: dir)
        let loaded = try Model.load(from: dir)
        let x = TestData.uniform([1, 64, 64, 3], seed: 1, scale: 0.5) + 0.5
        #expect(loaded(x).isClose(to: net.model(x), absolute: 1e-5, relative: 1e-5))
        #expect(loaded.summary().contains("DarknetConvolutional"))
    }

    /// Darknet's optimizer and learning-rate policy survive `Model.save` / `Model.load` (with
    /// compile): the same class, hyper-parameters, schedule and step count.
    @Test func savedModelKeepsDarknetsOptimizerAndSchedule() throws {
        let net = try DarknetNetwork(cfg: Paths.cfg("yolov2-tiny-voc.cfg"), width: 32, height: 32)
        let schedules = [DarknetLearningRate(learningRate: 0.002, policy: .steps(steps: [900, 1100], scales: [0.1, 0.1]), burnIn: 100,
                                             power: 4, maxBatches: 1200, firstBatch: 7),
                         DarknetLearningRate(learningRate: 0.01, policy: .poly, maxBatches: 500),
                         DarknetLearningRate(learningRate: 0.1, policy: .sig(gamma: 0.5, step: 30)),
                         DarknetLearningRate(learningRate: 0.1, policy: .step(step: 10, scale: 0.5)),
                         DarknetLearningRate(learningRate: 0.1, policy: .exp(gamma: 0.99))]
        for schedule in schedules {
            let sgd = DarknetSGD(momentum: 0.85, decay: 0.0007)
            sgd.withSchedule(schedule)
            net.model.compile(optimizer: sgd, loss: KerasLoss.meanSquaredError)
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-darknet-sgd-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try net.model.save(to: dir)
            let loaded = try Model.load(from: dir)
            let opt = try #require(loaded.optimizer as? DarknetSGD)
            #expect(opt.momentum == 0.85 && opt.decay == 0.0007)
            #expect(opt.schedule as? DarknetLearningRate == schedule)
            #expect((0..<1300).allSatisfy { opt.schedule($0) == schedule($0) })
        }
        // A damaged schedule is a clear error, not a trap.
        let bad = SavedObject(className: "DarknetLearningRate", config: ["policy": .string("steps"), "steps": .ints([1]), "scales": .array([])])
        #expect(throws: SavedObjectError.self) { try DarknetLearningRate(saved: bad) }
    }
}
