import OcelliTensor

/// Batch normalization over the last axis (Keras defaults: momentum 0.99, epsilon 1e-3).
public final class BatchNormalization: Layer, ConfigurableLayer {
    public let momentum, epsilon: Float
    public let center, scale: Bool
    public private(set) var gamma: Parameter?, beta: Parameter?
    public private(set) var movingMean: Parameter!, movingVariance: Parameter!

    public init(momentum: Float = 0.99, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, name: String? = nil) {
        self.momentum = momentum; self.epsilon = epsilon; self.center = center; self.scale = scale
        super.init(name: name)
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        guard let c = s[0].last else { throw LayerError("\(name) (BatchNormalization): input has no channel axis") }
        if scale { gamma = addParameter("gamma", [c], .ones, generator: &g) }
        if center { beta = addParameter("beta", [c], .zeros, generator: &g) }
        movingMean = Parameter("moving_mean", Tensor.zeros([c]), trainableVariable: false)
        movingVariance = Parameter("moving_variance", Tensor.ones([c]), trainableVariable: false)
        parameters += [movingMean, movingVariance]
        return s[0]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let c = outputShape.last!
        let gm = gamma?.value ?? Tensor.ones([c]), bt = beta?.value ?? Tensor.zeros([c])
        // A frozen layer runs in inference mode, as in Keras.
        let training = context.training && trainable
        if training {
            // Keras' update: moving = momentum·moving + (1 − momentum)·batch.
            let (y, mean, variance) = Tensor.batchNormTraining(inputs[0], scale: gm, offset: bt, epsilon: epsilon)
            context.updateMovingStatistic(movingMean, toward: mean, keep: momentum, take: 1 - momentum)
            context.updateMovingStatistic(movingVariance, toward: variance, keep: momentum, take: 1 - momentum)
            return y
        }
        var mean = movingMean.value, variance = movingVariance.value
        return Tensor.batchNormalization(inputs[0], scale: gm, offset: bt, runningMean: &mean, runningVariance: &variance,
                                         training: false, momentum: momentum, epsilon: epsilon)
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(momentum: try c.float("momentum", default: 0.99, in: 0...1), epsilon: try c.float("epsilon", default: 1e-3, in: LayerConfig.nonNegative),
                  center: try c.bool("center", default: true), scale: try c.bool("scale", default: true))
    }

    public override var config: [String: JSONValue] {
        ["momentum": .number(Double(momentum)), "epsilon": .number(Double(epsilon)), "center": .bool(center), "scale": .bool(scale)]
    }
}

/// Each position's channel vector scaled to unit L2 norm, then by a learned per-channel γ
/// (ParseNet; SSD's L2Norm on conv4_3, γ initialised to 20): y = γ · x / (‖x‖₂ + ε) over the last
/// axis, ε = 1e-10 as ssd.pytorch.
public final class L2Normalization: Layer, ConfigurableLayer {
    public let initialScale: Float
    public let epsilon: Float
    public private(set) var gamma: Parameter!

    public init(initialScale: Float = 20, epsilon: Float = 1e-10, name: String? = nil) {
        self.initialScale = initialScale; self.epsilon = epsilon
        super.init(name: name)
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        guard let c = s[0].last, c > 0 else { throw LayerError("\(name) (L2Normalization): input has no channel axis") }
        gamma = addParameter("gamma", [c], .constant(initialScale), generator: &g)
        return s[0]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        let norm = x.square().sum(axis: x.rank - 1, keepDims: true).sqrt() + epsilon
        return x / norm * gamma.value
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(initialScale: try c.float("initial_scale", default: 20, in: -1e6...1e6),
                  epsilon: try c.float("epsilon", default: 1e-10, in: LayerConfig.nonNegative))
    }

    public override var config: [String: JSONValue] {
        ["initial_scale": .number(Double(initialScale)), "epsilon": .number(Double(epsilon))]
    }
}

/// (x − mean) / √(variance + ε) over `axes` of a batch (population variance).
private func standardize(_ x: Tensor, axes: [Int], epsilon: Float) -> Tensor {
    let centered = x - x.mean(axes: axes, keepDims: true)
    return centered * (centered.square().mean(axes: axes, keepDims: true) + epsilon).rsqrt()
}

/// Layer normalization (Ba et al.): each sample normalized over its last axis, then scaled by
/// γ and shifted by β (both [C]). Keras' defaults: epsilon 1e-3 (PyTorch's LayerNorm: 1e-5).
public final class LayerNormalization: Layer, ConfigurableLayer {
    public let epsilon: Float
    public let center, scale: Bool
    public private(set) var gamma: Parameter?, beta: Parameter?

    public init(epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, name: String? = nil) {
        self.epsilon = epsilon; self.center = center; self.scale = scale
        super.init(name: name)
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        guard let c = s[0].last, c > 0 else { throw LayerError("\(name) (LayerNormalization): input \(s[0]) has no features axis") }
        if scale { gamma = addParameter("gamma", [c], .ones, generator: &g) }
        if center { beta = addParameter("beta", [c], .zeros, generator: &g) }
        return s[0]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        var y = standardize(inputs[0], axes: [-1], epsilon: epsilon)
        if let gamma { y = y * gamma.value }
        if let beta { y = y + beta.value }
        return y
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        try c.require("axis", is: .int(-1))
        self.init(epsilon: try c.float("epsilon", default: 1e-3, in: LayerConfig.nonNegative),
                  center: try c.bool("center", default: true), scale: try c.bool("scale", default: true))
    }

    public override var config: [String: JSONValue] {
        ["axis": .int(-1), "epsilon": .number(Double(epsilon)), "center": .bool(center), "scale": .bool(scale)]
    }
}

/// Group normalization (Wu & He): the channels (last axis) split into `groups` groups of
/// consecutive channels; each sample's group normalized over its positions and channels, then
/// γ and β per channel. groups = 1 is layer normalization over all axes, groups = C instance
/// normalization. Keras 3's defaults: 32 groups, epsilon 1e-3 (PyTorch's GroupNorm: 1e-5).
public class GroupNormalization: Layer, ConfigurableLayer {
    public let groups: Int
    public let epsilon: Float
    public let center, scale: Bool
    public private(set) var gamma: Parameter?, beta: Parameter?

    public init(groups: Int = 32, epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, name: String? = nil) {
        precondition(groups > 0 || groups == -1, "GroupNormalization: groups must be positive (or -1 for one per channel), got \(groups)")
        self.groups = groups; self.epsilon = epsilon; self.center = center; self.scale = scale
        super.init(name: name)
    }

    func groupCount(_ c: Int) -> Int { groups == -1 ? c : groups }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        guard s[0].count >= 2, let c = s[0].last else {
            throw LayerError("\(name) (\(typeName)): expects inputs with positions and channels, e.g. [height, width, channels], got \(s[0])")
        }
        guard c % groupCount(c) == 0 else {
            throw LayerError("\(name) (\(typeName)): groups \(groupCount(c)) must divide the \(c) channels of input \(s[0])")
        }
        if scale { gamma = addParameter("gamma", [c], .ones, generator: &g) }
        if center { beta = addParameter("beta", [c], .zeros, generator: &g) }
        return s[0]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        let c = x.shape.last!, gc = groupCount(c)
        let grouped = x.reshaped(Array(x.shape.dropLast()) + [gc, c / gc])
        let r = grouped.rank
        // Reduce over every axis but the batch (0) and the group (r − 2).
        let axes = Array(1..<(r - 2)) + [r - 1]
        var y = standardize(grouped, axes: axes, epsilon: epsilon).reshaped(x.shape)
        if let gamma { y = y * gamma.value }
        if let beta { y = y + beta.value }
        return y
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public required convenience init(config c: LayerConfig) throws {
        try c.require("axis", is: .int(-1))
        let groups = try c.int("groups", default: 32, in: -1...LayerConfig.sizeLimit)
        guard groups != 0 else { throw c.error("'groups' must be positive, or -1 for one group per channel, got 0") }
        self.init(groups: groups, epsilon: try c.float("epsilon", default: 1e-3, in: LayerConfig.nonNegative),
                  center: try c.bool("center", default: true), scale: try c.bool("scale", default: true))
    }

    public override var config: [String: JSONValue] {
        ["groups": .int(groups), "axis": .int(-1), "epsilon": .number(Double(epsilon)), "center": .bool(center), "scale": .bool(scale)]
    }
}

/// Instance normalization (Ulyanov et al.): each channel of each sample normalized over its
/// positions (group normalization with one group per channel: `GroupNormalization(groups: -1)`), with γ and β per channel.
public final class InstanceNormalization: GroupNormalization {
    public init(epsilon: Float = 1e-3, center: Bool = true, scale: Bool = true, name: String? = nil) {
        super.init(groups: -1, epsilon: epsilon, center: center, scale: scale, name: name)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public required convenience init(config c: LayerConfig) throws {
        self.init(epsilon: try c.float("epsilon", default: 1e-3, in: LayerConfig.nonNegative),
                  center: try c.bool("center", default: true), scale: try c.bool("scale", default: true))
    }
    public override var config: [String: JSONValue] {
        ["epsilon": .number(Double(epsilon)), "center": .bool(center), "scale": .bool(scale)]
    }
}

/// Weight normalization (Salimans & Kingma): wraps a Dense or Conv2D layer and reparameterises
/// its kernel as w = g · v / ‖v‖, the norm taken per output unit (over every kernel axis but the
/// last), so direction v and length g are learned separately. Parameters: g [units], then the
/// wrapped layer's (kernel = v, bias). g starts at ‖v‖ (PyTorch's `weight_norm`), so the
/// wrapped layer computes what it did before wrapping.
public final class WeightNormalization: Layer, ConfigurableLayer {
    public let layer: Layer
    public private(set) var g: Parameter!

    public init(_ layer: Layer, name: String? = nil) {
        precondition(layer is Dense || layer is Conv2D, "WeightNormalization: wraps Dense or Conv2D, got \(layer.typeName)")
        self.layer = layer
        super.init(name: name)
    }

    public override func build(inputShapes s: [[Int]], generator gen: inout SeededGenerator) throws -> [Int] {
        if layer.name.isEmpty { layer.name = Model.snakeCase(layer.typeName) }
        try layer.ensureBuilt(s, generator: &gen)
        let v = kernel.value.detached()
        let p = Parameter("g", WeightNormalization.norms(v))
        g = p
        parameters = [p] + layer.parameters
        return layer.outputShape
    }

    var kernel: Parameter { (layer as? Dense)?.kernel ?? (layer as! Conv2D).kernel }

    /// ‖v‖ per output unit: v [..., units] → [units].
    static func norms(_ v: Tensor) -> Tensor {
        v.square().sum(axes: Array(0..<(v.rank - 1))).sqrt()
    }

    /// The effective kernel g · v / ‖v‖.
    public var effectiveKernel: Tensor {
        let v = kernel.value
        return v * (g.value / WeightNormalization.norms(v))
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let w = effectiveKernel, x = inputs[0]
        if let d = layer as? Dense {
            let flat = x.rank == 2 ? x : x.reshaped([-1, x.shape.last!])
            var y = matmul(flat, w)
            if let b = d.bias { y = y + b.value }
            return d.activation(x.rank == 2 ? y : y.reshaped(Array(x.shape.dropLast()) + [d.units]))
        }
        let c = layer as! Conv2D
        return c.activation(Tensor.conv2d(x, filter: w, bias: c.bias?.value, strides: c.strides, padding: c.padding,
                                          dilations: c.dilationRate, groups: c.groups))
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? { layer.spatialFootprint }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        let inner = try c.layer("layer")
        let wrapped = try LayerRegistry.layer(from: inner)
        guard wrapped is Dense || wrapped is Conv2D else {
            throw c.error("wraps \(inner.className); only Dense and Conv2D can be weight-normalized")
        }
        self.init(wrapped)
    }

    public override var config: [String: JSONValue] {
        var inner = layer.config
        inner["name"] = .string(layer.name)
        return ["layer": .object(["class_name": .string(layer.typeName), "config": .object(inner)])]
    }
}

/// Folds an inference-mode batch normalization into the convolution before it: a new Conv2D
/// (with bias) whose output equals bn(conv(x)) with the moving statistics,
/// w′ = w·γ/√(σ² + ε) per output channel, b′ = β + (b − μ)·γ/√(σ² + ε).
/// The convolution's activation must be linear (the normalization comes before it); the new
/// layer takes `activation`.
public func foldBatchNormalization(_ conv: Conv2D, _ bn: BatchNormalization, activation: Activation = .linear) throws -> Conv2D {
    guard conv.isBuilt, bn.isBuilt else { throw LayerError("foldBatchNormalization: \(conv.name) and \(bn.name) must be built (in a model)") }
    guard conv.activation == .linear else {
        throw LayerError("foldBatchNormalization: \(conv.name) applies \(conv.activation.kerasName) before the normalization; only a linear convolution folds")
    }
    guard bn.inputShapes[0] == conv.outputShape else {
        throw LayerError("foldBatchNormalization: \(bn.name) normalizes \(bn.inputShapes[0]), \(conv.name) outputs \(conv.outputShape)")
    }
    let o = conv.filters
    let gamma = bn.gamma?.value.detached() ?? Tensor.ones([o]), beta = bn.beta?.value.detached() ?? Tensor.zeros([o])
    let factor = gamma * (bn.movingVariance.value.detached() + bn.epsilon).rsqrt()
    let bias = conv.bias?.value.detached() ?? Tensor.zeros([o])
    let folded = Conv2D(filters: o, kernelSize: conv.kernelSize, strides: conv.strides, padding: conv.padding,
                        dilationRate: conv.dilationRate, groups: conv.groups, activation: activation, useBias: true,
                        name: conv.name.isEmpty ? nil : conv.name + "_folded")
    var gen = SeededGenerator(seed: 0)
    try folded.ensureBuilt(conv.inputShapes, generator: &gen)
    folded.kernel.assign(withoutGradients { conv.kernel.value.detached() * factor })
    folded.bias!.assign(withoutGradients { beta + (bias - bn.movingMean.value.detached()) * factor })
    return folded
}
