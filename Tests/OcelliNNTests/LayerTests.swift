import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

@Suite struct LayerTests {
    @Test func denseComputesXWPlusBByHand() throws {
        let model = Sequential(inputShape: [2]) { Dense(units: 2) }
        let dense = model.layers[0] as! Dense
        dense.kernel.assign(Tensor([[1, 2], [3, 4]]))
        dense.bias!.assign(Tensor([10, 20]))
        #expect(model(Tensor([[1, 1], [0, 2]])).scalars == [14, 26, 16, 28])
        // Dense on the last axis of a rank-3 input.
        let m3 = Sequential(inputShape: [3, 2]) { Dense(units: 4) }
        #expect(m3(Tensor.ones([5, 3, 2])).shape == [5, 3, 4])
    }

    @Test func conv2DMatchesTheTensorOpAndKnowsItsShapes() {
        let model = Sequential(inputShape: [9, 8, 3]) {
            Conv2D(filters: 5, kernelSize: 3, strides: 2, padding: .same, activation: .relu)
        }
        let conv = model.layers[0] as! Conv2D
        #expect(conv.outputShape == [5, 4, 5])
        #expect(conv.kernel.shape == [3, 3, 3, 5])
        let x = Tensor.uniform([2, 9, 8, 3], minimum: -1, maximum: 1, seed: 3)
        let expected = Tensor.conv2d(x, filter: conv.kernel.value, bias: conv.bias!.value, strides: (2, 2), padding: .same).relu()
        #expect(model(x).isClose(to: expected))
    }

    @Test func poolingFlattenReshape() {
        let model = Sequential(inputShape: [6, 6, 2]) {
            MaxPooling2D(2)
            AveragePooling2D(poolSize: (3, 3), strides: (1, 1), padding: .same)
            Reshape([9, 2])
            Flatten()
        }
        #expect(model.layers.map(\.outputShape) == [[3, 3, 2], [3, 3, 2], [9, 2], [18]])
        #expect(model(Tensor.ones([4, 6, 6, 2])).shape == [4, 18])
        let gap = Sequential(inputShape: [4, 4, 3]) { GlobalAveragePooling2D() }
        #expect(gap(Tensor.ones([2, 4, 4, 3])).scalars == [Float](repeating: 1, count: 6))
    }

    @Test func dropoutOnlyWhileTraining() {
        let layer = Sequential(inputShape: [1000]) { Dropout(0.5) }
        let x = Tensor.ones([1, 1000])
        #expect(layer(x).scalars == x.scalars)
        let y = layer(x, training: true)
        #expect(y.scalars.contains(0) && y.scalars.contains(2))
    }

    @Test func batchNormalizationTrainsAndFreezes() {
        let model = Sequential(inputShape: [2]) { BatchNormalization(momentum: 0.5) }
        let bn = model.layers[0] as! BatchNormalization
        #expect(bn.parameterCount == 8 && bn.trainableParameterCount == 4)
        let x = Tensor([[0, 10], [2, 30]])
        _ = model(x, training: true)
        #expect(bn.movingMean.value.isClose(to: Tensor([0.5, 10])))
        #expect(bn.movingVariance.value.isClose(to: Tensor([1, 50.5])))
        bn.trainable = false
        _ = model(x, training: true)  // frozen: inference mode, statistics unchanged
        #expect(bn.movingMean.value.isClose(to: Tensor([0.5, 10])))
    }

    @Test func activationsAddConcatenateLambda() {
        let input = Input(shape: [3])
        let a = Dense(units: 3, kernelInitializer: .ones, name: "a")(input)
        let b = LeakyReLU(negativeSlope: 0.1)(ActivationLayer(.tanh)(input))
        let sum = Add()([a, b])
        let cat = Concatenate()([sum, input])
        let out = Lambda { $0[0] * 2 }(cat)
        let model = Model(inputs: input, outputs: out)
        #expect(out.shape == [6])
        let x = Tensor([[1, -1, 0.5]])
        let t = x.tanh().leakyRelu(negativeSlope: 0.1)
        let expectedSum = Tensor([[0.5, 0.5, 0.5]]) + t
        #expect(model(x).isClose(to: Tensor.concatenate([expectedSum, x], axis: 1) * 2))
        #expect(model.summary().contains("Connected to"))
    }

    @Test func badShapesAreReportedWithTheLayerName() {
        let model = Sequential(inputShape: [28, 28, 1])
        #expect(throws: LayerError.self) { try model.addChecked(Conv2D(filters: 4, kernelSize: 29, name: "too_big")) }
        do { try model.addChecked(Conv2D(filters: 4, kernelSize: 29, name: "too_big")) } catch {
            #expect("\(error)".contains("too_big") && "\(error)".contains("[28, 28, 1]"))
        }
        #expect(throws: LayerError.self) { try Add().apply([Input(shape: [2]), Input(shape: [3])]) }
    }

    @Test func layerNamesFollowKeras() {
        let m = Sequential(inputShape: [8, 8, 1]) {
            Conv2D(filters: 2, kernelSize: 3); Conv2D(filters: 2, kernelSize: 3); MaxPooling2D(2)
            LeakyReLU(); BatchNormalization(); GlobalAveragePooling2D()
        }
        #expect(m.layers.map(\.name) == ["conv2d", "conv2d_1", "max_pooling2d", "leaky_re_lu", "batch_normalization",
                                         "global_average_pooling2d"])
    }
}

@Suite struct SummaryTests {
    static func convnet() -> Sequential { CourseModels.mnistConvnet() }

    @Test func convnetHasKerasParameterCountAndTable() {
        let s = Self.convnet().summary()
        #expect(s.contains(" Total params: 34,826 (136.04 KB)"))
        #expect(s.contains(" Trainable params: 34,826 (136.04 KB)"))
        #expect(s.contains(" Non-trainable params: 0 (0.00 B)"))
        #expect(s.contains("│ conv2d_1 (Conv2D)               │ (None, 11, 11, 64)     │        18,496 │ 8x8 /2          │"))
        #expect(s.hasPrefix("Model: \"sequential\"\n┏"))
    }

    @Test func seedModelHasTheCourseShapes() {
        let m = CourseModels.mnistSeed()
        #expect(m.layers.map(\.outputShape) == [[26, 26, 32], [26, 26, 32], [26, 26, 10], [26, 26, 10], [1, 1, 10], [10], [10]])
        #expect(m.summary().contains("Total params: 68,260"))
    }

    @Test func receptiveFieldsFollowTheCourseArithmetic() {
        // Three 3x3 convolutions see 7x7; a stride-2 pool doubles the jump.
        let m = Sequential(inputShape: [32, 32, 1]) {
            Conv2D(filters: 1, kernelSize: 3); Conv2D(filters: 1, kernelSize: 3); Conv2D(filters: 1, kernelSize: 3)
            MaxPooling2D(2); Conv2D(filters: 1, kernelSize: 3, dilationRate: 2)
        }
        let s = m.summary()
        #expect(s.contains("7x7 /1") && s.contains("8x8 /2") && s.contains("16x16 /2"))
    }

    @Test func thousandsAndBytes() {
        #expect(1234567.thousands == "1,234,567")
        #expect(999.thousands == "999")
        #expect(readableBytes(139_304) == "136.04 KB")
    }
}
