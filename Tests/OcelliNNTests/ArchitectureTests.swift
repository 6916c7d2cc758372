import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Blocks and builders (issue 7, part 7): parameter counts against the reference
/// implementations (Keras Applications' counts recomputed by Scripts/make_concept_fixtures.py).
@Suite struct ArchitectureTests {
    static let counts = ReferenceFixtures.entry("parameter_counts")
    static func reference(_ key: String) -> Int { (counts[key] as! NSNumber).intValue }
    static func convolutions(_ m: Model) -> Int { m.layers.filter { $0 is Conv2D }.count }

    @Test func resnetParameterCountsEqualTorchvisionAndKeras() throws {
        // torchvision (convs without bias; BN running statistics are buffers, not parameters).
        let r50 = try Architectures.resnet(depth: 50)
        #expect(r50.layers.reduce(0) { $0 + $1.trainableParameterCount } == 25_557_032)
        let r18 = try Architectures.resnet(depth: 18)
        #expect(r18.layers.reduce(0) { $0 + $1.trainableParameterCount } == 11_689_512)
        let r34 = try Architectures.resnet(depth: 34)
        #expect(r34.layers.reduce(0) { $0 + $1.trainableParameterCount } == 21_797_672)
        // Keras' ResNet50 (conv biases; summary counts the moving statistics): 25,636,712.
        let keras = try Architectures.resnet(depth: 50, convBias: true)
        #expect(keras.parameters.reduce(0) { $0 + $1.count } == 25_636_712)
        #expect(Self.reference("keras_resnet50") == 25_636_712)
        #expect(r50.summary().contains("Trainable params: 25,557,032"))
        #expect(throws: LayerError.self) { _ = try Architectures.resnet(depth: 20) }
    }

    @Test func mobileNetDenseNetAndWideResNetCountsEqualTheirReferences() throws {
        let m = Architectures.mobileNet(alpha: 1)
        #expect(m.parameters.reduce(0) { $0 + $1.count } == 4_253_864)     // Keras MobileNet(alpha=1.0)
        #expect(Self.reference("keras_mobilenet_1.0") == 4_253_864)
        #expect(m.summary().contains("Total params: 4,253,864"))
        let half = Architectures.mobileNet(alpha: 0.5)
        #expect(half.parameters.reduce(0) { $0 + $1.count } == Self.reference("keras_mobilenet_0.5"))
        let d = try Architectures.denseNet(depth: 121)
        #expect(d.parameters.reduce(0) { $0 + $1.count } == 8_062_504)     // Keras DenseNet121
        #expect(d.layers.reduce(0) { $0 + $1.trainableParameterCount } == 7_978_856)  // torchvision densenet121
        #expect(Self.reference("keras_densenet121") == 8_062_504)
        let w = try Architectures.wideResNet(depth: 28, width: 10)
        #expect(w.layers.reduce(0) { $0 + $1.trainableParameterCount } == 36_479_194)  // the authors' PyTorch layout
        #expect(Self.reference("torch_wrn_28_10") == 36_479_194)
        let w16 = try Architectures.wideResNet(depth: 16, width: 8)
        #expect(w16.layers.reduce(0) { $0 + $1.trainableParameterCount } == Self.reference("torch_wrn_16_8"))
        #expect(throws: LayerError.self) { _ = try Architectures.wideResNet(depth: 27, width: 10) }
    }

    @Test func smallBuildsRunForwardWithTheRightShapes() throws {
        let x = Tensor.uniform([1, 64, 64, 3], seed: 1)
        for model in [try Architectures.resnet(depth: 18, classes: 7, inputShape: [64, 64, 3]),
                      try Architectures.resnet(depth: 50, classes: 7, inputShape: [64, 64, 3]),
                      Architectures.mobileNet(alpha: 0.25, classes: 7, inputShape: [64, 64, 3]),
                      Architectures.tinyDarknet(classes: 7, inputShape: [64, 64, 3])] {
            let y = model(x)
            #expect(y.shape == [1, 7], "\(model.name)")
            #expect(abs(y.sum().scalar - 1) < 1e-4, "\(model.name): softmax rows sum to 1")
        }
        let wrn = try Architectures.wideResNet(depth: 10, width: 1, classes: 3, inputShape: [16, 16, 3])
        #expect(wrn(Tensor.uniform([2, 16, 16, 3], seed: 2)).shape == [2, 3])
        // Stage outputs of ResNet-50 at 224: 56, 28, 14, 7 with 256…2048 channels.
        let r50 = try Architectures.resnet(depth: 50)
        let adds = r50.layers.compactMap { $0 as? Add }.map(\.outputShape)
        #expect(adds.first == [56, 56, 256] && adds.last == [7, 7, 2048] && adds.count == 16)
    }

    @Test func blocksByHand() throws {
        // Squeeze-and-excitation on 64 channels, ratio 16: 64·4 + 4 + 4·64 + 64 parameters; the
        // output is the input scaled per channel by a sigmoid.
        let x = Input(shape: [5, 5, 64])
        let se = Model(inputs: x, outputs: Blocks.squeezeExcitation(x, ratio: 16))
        let seCount = se.parameters.reduce(0) { $0 + $1.count }
        let seExpected = 64 * 4 + 4 + 4 * 64 + 64
        #expect(seCount == seExpected)
        let input = Tensor.uniform([2, 5, 5, 64], minimum: 0.1, maximum: 1, seed: 3)
        let out = se(input)
        let ratio = out / input
        // One factor per (sample, channel), in (0, 1).
        let perChannel = ratio.reshaped([2, 25, 64])
        #expect(maxDifference(perChannel.max(axes: [1]), perChannel.min(axes: [1])) < 1e-5)
        #expect(ratio.scalars.allSatisfy { $0 > 0 && $0 < 1 })
        // Dense block: channels grow by the growth rate per layer; the transition halves them.
        let d = Input(shape: [8, 8, 64])
        let block = Blocks.denseBlock(d, layers: 6, growthRate: 32)
        #expect(block.shape == [8, 8, 64 + 6 * 32])
        #expect(Blocks.transition(block).shape == [4, 4, 128])
        // Basic block: identity shortcut when the shape is kept, a projection when it changes.
        let r = Input(shape: [8, 8, 64])
        let same = Model(inputs: r, outputs: Blocks.residualBasic(r, filters: 64))
        #expect(Self.convolutions(same) == 2)
        let down = Model(inputs: r, outputs: Blocks.residualBasic(r, filters: 128, strides: 2))
        #expect(Self.convolutions(down) == 3 && down.outputs[0].shape == [4, 4, 128])
        let bottleneck = Model(inputs: r, outputs: Blocks.residualBottleneck(r, filters: 16))
        #expect(bottleneck.outputs[0].shape == [8, 8, 64] && Self.convolutions(bottleneck) == 3)
        // Multiply broadcasts and has a gradient for both inputs.
        let g = checkGradients([TestData.uniform([1, 2, 2, 3], seed: 1), TestData.uniform([1, 1, 1, 3], seed: 2)]) { t in
            var c = ForwardContext(training: false)
            return Multiply().forward(t, context: &c)
        }
        #expect(g.passed, "\(g)")
    }

    @Test func namedArchitecturesAndSaveLoad() throws {
        #expect(try Architectures.named("resnet18").name == "resnet18")
        #expect(try Architectures.named("wrn-16-4").name == "wrn-16-4")
        #expect(throws: LayerError.self) { _ = try Architectures.named("alexnet") }
        let model = Architectures.mobileNet(alpha: 0.25, classes: 4, inputShape: [32, 32, 3])
        let x = Input(shape: [8, 8, 16])
        let se = Model(inputs: x, outputs: Blocks.squeezeExcitation(x, ratio: 4))
        for m in [model, se] {
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-concepts-arch-\(getpid())-\(m.name)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try m.save(to: dir)
            let loaded = try Model.load(from: dir)
            let input = Tensor.uniform([1] + m.inputs[0].shape, seed: 5)
            #expect(maxDifference(loaded(input), m(input)) == 0, "\(m.name)")
        }
    }
}
