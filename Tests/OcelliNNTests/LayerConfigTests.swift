import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// A layer defined outside OcelliNN, registered for `Model.load`.
final class ScaledIdentity: Layer, ConfigurableLayer {
    let factor: Float
    init(factor: Float, name: String? = nil) { self.factor = factor; super.init(name: name) }
    convenience init(config c: LayerConfig) throws { self.init(factor: try c.float("factor")) }
    override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor { inputs[0] * factor }
    override var config: [String: JSONValue] { ["factor": .number(Double(factor))] }
}

/// Every layer's `init(config:)` reads back what its `config` writes, and bad values in an
/// architecture file are clear errors, not traps.
@Suite struct LayerConfigTests {
    /// One instance of every built-in layer class, with settings other than the defaults.
    static var layers: [Layer] {
        [
            Dense(units: 7, activation: .leakyRelu(negativeSlope: 0.05), useBias: false, kernelInitializer: .orthogonal(gain: 2),
                  biasInitializer: .constant(0.5), kernelRegularizer: .l2(0.001), biasRegularizer: .l1l2(l1: 0.1, l2: 0.2)),
            ActivationLayer(.leakyRelu(negativeSlope: 0.1)),
            Add(), Concatenate(axis: 1), Multiply(), Flatten(), Reshape([2, -1, 3]), UpSampling2D(size: (3, 2)),
            LeakyReLU(negativeSlope: 0.1),
            PReLU(alphaInitializer: .constant(0.25), alphaRegularizer: .l2(0.02), sharedAxes: [1, 2]),
            ELU(alpha: 0.5), ReLU(maxValue: 6), Softmax(log: true),
            Conv2D(filters: 6, kernelSize: (3, 5), strides: (2, 1), padding: .explicit(top: 1, bottom: 2, left: 3, right: 0),
                   dilationRate: (1, 2), groups: 2, activation: .gelu(approximate: true), useBias: false,
                   kernelInitializer: .heNormal, biasInitializer: .randomUniform(minval: -1, maxval: 1),
                   kernelRegularizer: .l1(0.2), biasRegularizer: .l2(0.3)),
            DepthwiseConv2D(kernelSize: (5, 3), strides: (1, 2), padding: .same, depthMultiplier: 2, dilationRate: (2, 2),
                            activation: .relu6, useBias: false, depthwiseInitializer: .lecunNormal, biasInitializer: .ones,
                            depthwiseRegularizer: .l2(0.5)),
            SeparableConv2D(filters: 8, kernelSize: (5, 5), strides: (2, 2), padding: .same, depthMultiplier: 3, dilationRate: (1, 2),
                            activation: .swish, useBias: false, depthwiseInitializer: .heUniform,
                            pointwiseInitializer: .truncatedNormal(mean: 0.1, stddev: 0.2)),
            ChannelShuffle(groups: 3),
            Conv2DTranspose(filters: 4, kernelSize: (4, 2), strides: (2, 3), padding: .same, outputPadding: (1, 2),
                            dilationRate: (1, 1), activation: .sigmoid, useBias: false, kernelInitializer: .glorotNormal,
                            biasInitializer: .randomNormal(mean: 1, stddev: 0.5)),
            ZeroPadding2D(padding: ((1, 2), (3, 4))), Cropping2D(cropping: ((0, 1), (2, 3))),
            MaxPooling2D(poolSize: (3, 3), strides: (1, 2), padding: .same),
            AveragePooling2D(poolSize: (2, 3), padding: .explicit(top: 0, bottom: 1, left: 1, right: 0)),
            GlobalAveragePooling2D(), GlobalMaxPooling2D(),
            LpPooling2D(power: 3, poolSize: (3, 2), strides: (1, 1)), SpatialPyramidPooling(levels: [1, 3]),
            Dropout(rate: 0.25), SpatialDropout2D(rate: 0.3), GaussianNoise(stddev: 0.7), GaussianDropout(rate: 0.4),
            AlphaDropout(rate: 0.05), ActivityRegularization(l1: 0.01, l2: 0.02),
            BatchNormalization(momentum: 0.9, epsilon: 1e-5, center: false, scale: false),
            LayerNormalization(epsilon: 1e-5, center: false),
            L2Normalization(initialScale: 10, epsilon: 1e-8),
            GroupNormalization(groups: 4, epsilon: 1e-5, scale: false),
            InstanceNormalization(epsilon: 1e-4, center: false),
            WeightNormalization(Conv2D(filters: 3, kernelSize: 3, strides: 2, activation: .elu, name: "inner")),
            MarginSoftmax(classes: 5, margin: .arcFace(scale: 32, margin: 0.3)),
        ]
    }

    /// The layer rebuilt from its configuration as an architecture file stores it (JSON text).
    func reloaded(_ layer: Layer) throws -> Layer {
        let text = try JSONEncoder().encode(JSONValue.object(layer.config))
        guard case .object(let values) = try JSONDecoder().decode(JSONValue.self, from: text) else { throw LayerError("not an object") }
        return try LayerRegistry.layer(from: LayerConfig(values, className: layer.typeName, path: "model.json", index: 0))
    }

    @Test func everyBuiltInLayerRoundTrips() throws {
        let layers = Self.layers
        #expect(Set(layers.map(\.typeName)) == Set(LayerRegistry.builtInTypes.keys), "a built-in layer class has no instance here")
        for layer in layers {
            let type = try #require(LayerRegistry.builtInTypes[layer.typeName])
            #expect(ObjectIdentifier(type) == ObjectIdentifier(Swift.type(of: layer)), "\(layer.typeName) maps to \(type)")
            let again = try reloaded(layer)
            #expect(Swift.type(of: again) == Swift.type(of: layer))
            #expect(again.config == layer.config, "\(layer.typeName)")
        }
    }

    /// Variants the list above does not cover: other margins, no output padding, no cap, a Dense
    /// wrapped, and every activation (a leaky ReLU keeps a slope other than Keras' 0.2).
    @Test func variantsRoundTrip() throws {
        let margins: [AngularMargin] = [.normalized(scale: 16), .sphereFace(m: 3), .cosFace(scale: 30, margin: 0.2), .arcFace()]
        var layers: [Layer] = margins.map { MarginSoftmax(classes: 3, margin: $0) }
        layers += [Conv2DTranspose(filters: 2, kernelSize: 3), ReLU(), WeightNormalization(Dense(units: 4, activation: .tanh)),
                   GroupNormalization(groups: -1), Concatenate()]
        for layer in layers {
            #expect(try reloaded(layer).config == layer.config, "\(layer.typeName) \(layer.config)")
        }
        #expect(try (reloaded(MarginSoftmax(classes: 3, margin: .sphereFace(m: 3))) as! MarginSoftmax).margin == .sphereFace(m: 3))
        let activations: [Activation] = [.linear, .relu, .sigmoid, .tanh, .softmax, .elu, .selu, .softplus, .leakyRelu(),
                                         .leakyRelu(negativeSlope: 0.01), .leakyRelu(negativeSlope: 0.3), .relu6, .swish, .mish,
                                         .hardSigmoid, .hardSwish, .logSoftmax, .gelu(), .gelu(approximate: true)]
        for a in activations {
            #expect(try (reloaded(ActivationLayer(a)) as! ActivationLayer).activation == a, "\(a)")
            #expect(try (reloaded(Dense(units: 2, activation: a)) as! Dense).activation == a, "\(a)")
        }
        // Keras' plain name still means its default slope.
        let keras = try LayerRegistry.layer(from: LayerConfig(["activation": .string("leaky_relu")], className: "Activation"))
        #expect((keras as! ActivationLayer).activation == .leakyRelu(negativeSlope: 0.2))
    }

    /// A whole model with a non-default leaky slope saved and loaded computes the same.
    @Test func leakySlopeSurvivesSaveAndLoad() throws {
        let model = RandomSeed.withSeed(4) {
            Sequential(inputShape: [3]) {
                Dense(units: 4, activation: .leakyRelu(negativeSlope: 0.01))
                Dense(units: 2, activation: .leakyRelu(negativeSlope: 0.5))
            }
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-layer-config-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        #expect(loaded.layers.map { ($0 as! Dense).activation } == [.leakyRelu(negativeSlope: 0.01), .leakyRelu(negativeSlope: 0.5)])
        let x = Tensor.uniform([5, 3], minimum: -2, maximum: 2, seed: 1)
        #expect(loaded(x).scalars == model(x).scalars)
    }

    /// The message `LayerRegistry.layer(from:)` throws for `values` read as layer 3 of model.json.
    func failure(_ className: String, _ values: [String: JSONValue]) -> String {
        do {
            let layer = try LayerRegistry.layer(from: LayerConfig(values, className: className, path: "model.json", index: 3))
            return "no error: \(layer.typeName) \(layer.config)"
        } catch let e as FileFormatError {
            return e.description
        } catch {
            return "not a FileFormatError: \(error)"
        }
    }

    @Test func badValuesGiveClearErrors() {
        let conv: [String: JSONValue] = ["filters": .int(4), "kernel_size": .ints([3, 3])]
        func with(_ base: [String: JSONValue], _ key: String, _ v: JSONValue) -> [String: JSONValue] {
            var c = base; c[key] = v; return c
        }
        let cases: [(String, [String: JSONValue], String)] = [
            ("Conv2D", with(conv, "filters", .int(0)), "'filters' must be between 1 and 1048576, got 0"),
            ("Conv2D", with(conv, "kernel_size", .ints([0, 0])), "'kernel_size' must be between 1 and 1048576, got 0"),
            ("Conv2D", with(conv, "filters", .number(1e30)), "'filters' must be an integer, got 1e+30"),
            ("Conv2D", with(conv, "filters", .number(-1e300)), "'filters' must be an integer, got -1e+300"),
            ("Conv2D", with(conv, "filters", .number(2.5)), "'filters' must be an integer, got 2.5"),
            ("Conv2D", with(conv, "filters", .int(1 << 21)), "'filters' must be between 1 and 1048576, got 2097152"),
            ("Conv2D", with(conv, "strides", .int(0)), "'strides' must be between 1 and 1048576, got 0"),
            ("Conv2D", with(conv, "dilation_rate", .ints([1, -2])), "'dilation_rate' must be between 1 and 1048576, got -2"),
            ("Conv2D", with(conv, "groups", .int(0)), "'groups' must be between 1 and 1048576, got 0"),
            ("Conv2D", with(conv, "kernel_size", .ints([1, 2, 3])), "'kernel_size' must be an integer or a pair [a, b], got [1, 2, 3]"),
            ("Conv2D", with(conv, "padding", .string("full")), "'padding' must be \"valid\", \"same\" or [top, bottom, left, right], got \"full\""),
            ("Conv2D", with(conv, "padding", .ints([1, 1, -1, 0])), "'padding' must be between 0 and 1048576, got -1"),
            ("Conv2D", with(conv, "padding", .ints([1, 1, 1])), "'padding' must be \"valid\", \"same\" or [top, bottom, left, right], got [1, 1, 1]"),
            ("Conv2D", with(conv, "use_bias", .int(1)), "'use_bias' must be true or false, got 1"),
            ("Conv2D", with(conv, "activation", .string("swishy")), "unknown activation 'swishy' in 'activation'"),
            ("Conv2D", with(conv, "activation", .object(["class_name": .string("leaky_relu"), "negative_slope": .string("x")])),
             "'activation.negative_slope' must be a number, got \"x\""),
            ("Conv2D", with(conv, "kernel_initializer", .string("magic")), "unknown initializer \"magic\" in 'kernel_initializer'"),
            ("Conv2D", with(conv, "kernel_initializer", .object(["class_name": .string("constant"), "value": .number(1e300)])),
             "'kernel_initializer.value' must be a finite number, got 1e+300"),
            ("Conv2D", with(conv, "kernel_regularizer", .object(["class_name": .string("L3")])),
             "unknown regularizer {\"class_name\": \"L3\"} in 'kernel_regularizer'"),
            ("Conv2D", with(conv, "kernel_regularizer", .object(["class_name": .string("L2"), "l2": .number(-1)])),
             "'kernel_regularizer.l2' must be ≥ 0, got -1"),
            ("Conv2D", with(conv, "activity_regularizer", .string("L2")),
             "'activity_regularizer' must be a regularizer {\"class_name\": \"L1\", \"L2\" or \"L1L2\", …}, got \"L2\""),
            ("Conv2D", with(conv, "name", .int(3)), "'name' must be a string, got 3"),
            ("Conv2D", with(conv, "trainable", .string("yes")), "'trainable' must be true or false, got \"yes\""),
            ("Conv2D", ["kernel_size": .int(3)], "missing integer 'filters'"),
            ("Dense", [:], "missing integer 'units'"),
            ("Dense", ["units": .string("ten")], "'units' must be an integer, got \"ten\""),
            ("MaxPooling2D", ["pool_size": .ints([0, 0])], "'pool_size' must be between 1 and 1048576, got 0"),
            ("MaxPooling2D", ["pool_size": .ints([2, 2]), "strides": .int(0)], "'strides' must be between 1 and 1048576, got 0"),
            ("Dropout", ["rate": .number(1.5)], "'rate' must be in [0, 1), got 1.5"),
            ("Dropout", ["rate": .number(-0.1)], "'rate' must be in [0, 1), got -0.1"),
            ("SpatialDropout2D", [:], "missing number 'rate'"),
            ("GaussianNoise", ["stddev": .number(-1)], "'stddev' must be ≥ 0, got -1"),
            ("LpPooling2D", ["power": .int(0)], "'power' must be > 0, got 0"),
            ("BatchNormalization", ["momentum": .number(2)], "'momentum' must be between 0 and 1, got 2"),
            ("BatchNormalization", ["epsilon": .number(1e300)], "'epsilon' must be a finite number, got 1e+300"),
            ("ReLU", ["max_value": .number(-1)], "'max_value' must be ≥ 0, got -1"),
            ("Softmax", ["axis": .int(1)], "only 'axis' -1 is supported, got 1"),
            ("UpSampling2D", ["interpolation": .string("bilinear")], "only 'interpolation' \"nearest\" is supported, got \"bilinear\""),
            ("UpSampling2D", ["size": .int(0)], "'size' must be between 1 and 1048576, got 0"),
            ("ZeroPadding2D", ["padding": .ints([1, 1])], "'padding' must be [[top, bottom], [left, right]], got [1, 1]"),
            ("Cropping2D", ["cropping": .array([.ints([1, -1]), .ints([0, 0])])], "'cropping' must be between 0 and 1048576, got -1"),
            ("Conv2DTranspose", ["filters": .int(2), "output_padding": .ints([-1, 0])], "'output_padding' must be between 0 and 1048576, got -1"),
            ("Reshape", [:], "missing list of integers 'target_shape'"),
            ("Reshape", ["target_shape": .ints([-1, -1])], "'target_shape' [-1, -1] must be non-empty with at most one -1"),
            ("Reshape", ["target_shape": .ints([0, 4])],
             "'target_shape' [0, 4] must hold sizes from 1 to 1048576 (one may be -1) whose product fits an Int"),
            ("Reshape", ["target_shape": .ints([1 << 20, 1 << 20, 1 << 20, 1 << 20])],
             "'target_shape' [1048576, 1048576, 1048576, 1048576] must hold sizes from 1 to 1048576 (one may be -1) whose product fits an Int"),
            ("Concatenate", ["axis": .int(100)], "'axis' must be between -64 and 64, got 100"),
            ("PReLU", ["shared_axes": .ints([0])], "'shared_axes' must be between 1 and 64, got 0"),
            ("SpatialPyramidPooling", ["levels": .ints([])], "'levels' must hold 1 to 16 levels, got 0"),
            ("ChannelShuffle", ["groups": .int(0)], "'groups' must be between 1 and 1048576, got 0"),
            ("GroupNormalization", ["groups": .int(0)], "'groups' must be positive, or -1 for one group per channel, got 0"),
            ("MarginSoftmax", ["classes": .int(1), "margin": .object(["type": .string("arcface")])], "'classes' must be between 2 and 1048576, got 1"),
            ("MarginSoftmax", ["classes": .int(3), "margin": .object(["type": .string("big")])],
             "unknown margin type 'big' (normalized, sphereface, cosface, arcface)"),
            ("MarginSoftmax", ["classes": .int(3), "margin": .object(["type": .string("sphereface"), "m": .int(0)])],
             "'margin.m' must be between 1 and 64, got 0"),
            ("MarginSoftmax", ["classes": .int(3)], "missing object 'margin'"),
            ("WeightNormalization", ["layer": .object(["class_name": .string("Dropout"), "config": .object(["rate": .number(0.5)])])],
             "wraps Dropout; only Dense and Conv2D can be weight-normalized"),
        ]
        for (cls, values, message) in cases {
            #expect(failure(cls, values) == "model.json: layer 3 (\(cls)): \(message)")
        }
        // A wrapped layer's error says where it is.
        let inner: JSONValue = .object(["class_name": .string("Dense"), "config": .object(["units": .int(0)])])
        #expect(failure("WeightNormalization", ["layer": inner])
                == "model.json: layer 3 (WeightNormalization), its 'layer' (Dense): 'units' must be between 1 and 1048576, got 0")
    }

    @Test func jsonIntegersNeverTrap() {
        #expect(JSONValue.number(3).int == 3)
        #expect(JSONValue.number(-7).int == -7)
        for v in [1e30, -1e30, 9.3e18, .nan, .infinity, -.infinity, 2.5, Double.greatestFiniteMagnitude] {
            #expect(JSONValue.number(v).int == nil, "\(v)")
        }
        #expect(JSONValue.array([.number(1), .number(1e30)]).intArray == nil)
    }

    /// A whole file with numbers no integer holds: an error naming the layer, not a trap.
    @Test func hugeNumbersInAFileGiveErrors() {
        let text = """
        {"class_name": "Sequential", "config": {"name": "m", "inputs": [{"name": "input", "shape": [8, 8, 1]}],
         "layers": [{"class_name": "Conv2D", "config": {"name": "c", "filters": 1e30, "kernel_size": [3, 3]}, "inbound": ["input"]}],
         "outputs": ["c"]}}
        """
        do { _ = try Model.fromArchitecture(Data(text.utf8), path: "model.json"); Issue.record("no error") } catch {
            #expect("\(error)" == "model.json: layer 0 (Conv2D): 'filters' must be an integer, got 1e+30")
        }
        let badInput = text.replacingOccurrences(of: "[8, 8, 1]", with: "[8, 0, 1]")
        do { _ = try Model.fromArchitecture(Data(badInput.utf8), path: "model.json"); Issue.record("no error") } catch {
            #expect("\(error)" == "model.json: input 'input' has shape [8, 0, 1]; it needs 1 to 8 dimensions, each between 1 and 1048576, and at most 2147483647 values")
        }
        let hugeInput = text.replacingOccurrences(of: "[8, 8, 1]", with: "[1048576, 1048576, 1048576, 1048576, 1048576]")
        do { _ = try Model.fromArchitecture(Data(hugeInput.utf8), path: "model.json"); Issue.record("no error") } catch {
            #expect("\(error)".contains("at most 2147483647 values"))
        }
        // Two layers with one name would store their weights under the same keys.
        let twice = text.replacingOccurrences(of: "\"filters\": 1e30", with: "\"filters\": 2")
            .replacingOccurrences(of: "\"inbound\": [\"input\"]}]", with: "\"inbound\": [\"input\"]}, {\"class_name\": \"Dense\", \"config\": {\"name\": \"c\", \"units\": 2}, \"inbound\": [\"c\"]}]")
        do { _ = try Model.fromArchitecture(Data(twice.utf8), path: "model.json"); Issue.record("no error") } catch {
            #expect("\(error)" == "model.json: layer 1 (Dense) is named 'c' like an earlier layer or input: names must be unique (weights are stored by layer name)")
        }
        let sameAsInput = text.replacingOccurrences(of: "\"name\": \"c\", \"filters\": 1e30", with: "\"name\": \"input\", \"filters\": 2")
        do { _ = try Model.fromArchitecture(Data(sameAsInput.utf8), path: "model.json"); Issue.record("no error") } catch {
            #expect("\(error)".contains("layer 0 (Conv2D) is named 'input' like an earlier layer or input"), "\(error)")
        }
    }

    @Test func unknownClassesAndLambdaAreExplained() throws {
        #expect(failure("Transformer", [:])
                == "model.json: layer 3: unknown layer class 'Transformer' (a layer of your own loads once registered with `LayerRegistry.register`)")
        #expect(failure("DarknetFancy", [:])
                == "model.json: layer 3: unknown layer class 'DarknetFancy' (Darknet's layers load once `DarknetLayers.register()` (OcelliDarknet) has run: call it before `Model.load`)")
        // A model with a Lambda saves, and loading it says why it cannot be rebuilt.
        let input = Input(shape: [2])
        let model = Model(inputs: input, outputs: Lambda { $0[0] * 2 }(Dense(units: 2)(input)))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-lambda-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        do { _ = try Model.load(from: dir); Issue.record("no error") } catch {
            #expect("\(error)".hasSuffix("model.json: layer 1 is a Lambda: its closure is code, not data; rebuild this model in Swift and load only its weights"))
        }
    }

    /// A layer of one's own comes back from `Model.load` once registered, by type or by factory.
    @Test func registeredLayersLoad() throws {
        LayerRegistry.register("ScaledIdentity", type: ScaledIdentity.self)
        let model = Sequential(inputShape: [2]) { ScaledIdentity(factor: 3) }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-custom-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        #expect(loaded(Tensor([[1, -2]])).scalars == [3, -6])
        LayerRegistry.register("ScaledByFactory") { c in ScaledIdentity(factor: try c.float("factor") * 2) }
        let doubled = try LayerRegistry.layer(from: LayerConfig(["factor": .number(2)], className: "ScaledByFactory"))
        #expect((doubled as! ScaledIdentity).factor == 4)
        #expect(failure("ScaledIdentity", [:]) == "model.json: layer 3 (ScaledIdentity): missing number 'factor'")
    }
}
