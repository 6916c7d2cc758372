import OcelliTensor

/// Applies an activation function.
public final class ActivationLayer: Layer, ConfigurableLayer {
    public let activation: Activation
    public init(_ activation: Activation, name: String? = nil) { self.activation = activation; super.init(name: name) }
    public override var typeName: String { "Activation" }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor { activation(inputs[0]) }
    public override func forwardWithLogits(_ inputs: [Tensor], context: inout ForwardContext) -> (Tensor, Tensor?) {
        (activation(inputs[0]), activation == .softmax ? inputs[0] : nil)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(try c.activation()) }
    public override var config: [String: JSONValue] { ["activation": activation.json] }
}

/// x for x > 0, negativeSlope·x otherwise (Keras' default slope 0.3).
public final class LeakyReLU: Layer, ConfigurableLayer {
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.3, name: String? = nil) { self.negativeSlope = negativeSlope; super.init(name: name) }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].leakyRelu(negativeSlope: negativeSlope)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(negativeSlope: try c.float("negative_slope", default: 0.3)) }
    public override var config: [String: JSONValue] { ["negative_slope": .number(Double(negativeSlope))] }
}

/// Parametric ReLU (He et al. 2015): x for x > 0, α·x otherwise, with α learned per element of
/// the input shape, shared (size 1) over `sharedAxes` (Keras' PReLU).
///
/// For images [H, W, C], `sharedAxes: [1, 2]` gives one α per channel (PyTorch's
/// `PReLU(num_parameters: C)`). Axes count from 1 (axis 0 is the batch), as in Keras.
public final class PReLU: Layer, ConfigurableLayer {
    public let alphaInitializer: Initializer
    public let alphaRegularizer: Regularizer?
    public let sharedAxes: [Int]
    public private(set) var alpha: Parameter!

    public init(alphaInitializer: Initializer = .zeros, alphaRegularizer: Regularizer? = nil,
                sharedAxes: [Int] = [], name: String? = nil) {
        self.alphaInitializer = alphaInitializer; self.alphaRegularizer = alphaRegularizer
        self.sharedAxes = sharedAxes
        super.init(name: name)
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        var shape = s[0]
        for a in sharedAxes {
            guard a >= 1 && a <= shape.count else {
                throw LayerError("\(name) (PReLU): shared axis \(a) is outside the input's axes 1...\(shape.count) (input \(s[0]))")
            }
            shape[a - 1] = 1
        }
        alpha = addParameter("alpha", shape, alphaInitializer, regularizer: alphaRegularizer, generator: &g)
        return s[0]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        return x.relu() - alpha.value * (-x).relu()
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(alphaInitializer: try c.initializer("alpha_initializer", default: .zeros),
                  alphaRegularizer: try c.regularizer("alpha_regularizer"), sharedAxes: try c.ints("shared_axes", default: [], in: 1...64))
    }

    public override var config: [String: JSONValue] {
        ["alpha_initializer": alphaInitializer.keras, "alpha_regularizer": alphaRegularizer?.keras ?? .null,
         "shared_axes": .ints(sharedAxes)]
    }
}

/// Exponential linear unit (Clevert et al.): x for x > 0, α·(eˣ − 1) otherwise.
public final class ELU: Layer, ConfigurableLayer {
    public let alpha: Float
    public init(alpha: Float = 1, name: String? = nil) { self.alpha = alpha; super.init(name: name) }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor { inputs[0].elu(alpha: alpha) }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(alpha: try c.float("alpha", default: 1)) }
    public override var config: [String: JSONValue] { ["alpha": .number(Double(alpha))] }
}

/// Keras' ReLU layer: min(max(x, 0), maxValue) (nil: no cap; 6 gives ReLU6).
public final class ReLU: Layer, ConfigurableLayer {
    public let maxValue: Float?
    public init(maxValue: Float? = nil, name: String? = nil) {
        precondition(maxValue.map { $0 >= 0 } ?? true, "ReLU: maxValue must be ≥ 0, got \(maxValue!)")
        self.maxValue = maxValue; super.init(name: name)
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        guard let m = maxValue else { return inputs[0].relu() }
        return m == 6 ? inputs[0].relu6() : inputs[0].clamped(min: 0, max: m)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(maxValue: try c.optionalFloat("max_value", in: LayerConfig.nonNegative)) }
    public override var config: [String: JSONValue] { ["max_value": maxValue.map { .number(Double($0)) } ?? .null] }
}

/// Softmax over the last axis as a layer (a classifier's output); `log: true` gives log-softmax.
public final class Softmax: Layer, ConfigurableLayer {
    public let log: Bool
    public init(log: Bool = false, name: String? = nil) { self.log = log; super.init(name: name) }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        log ? inputs[0].logSoftmax() : inputs[0].softmax()
    }
    public override func forwardWithLogits(_ inputs: [Tensor], context: inout ForwardContext) -> (Tensor, Tensor?) {
        (forward(inputs, context: &context), log ? nil : inputs[0])
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        try c.require("axis", is: .int(-1))
        self.init(log: try c.bool("log", default: false))
    }
    public override var config: [String: JSONValue] { ["axis": .int(-1), "log": .bool(log)] }
}
