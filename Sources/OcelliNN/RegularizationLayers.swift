import OcelliTensor

/// Inverted dropout while training; the identity at inference.
public final class Dropout: Layer, ConfigurableLayer {
    public let rate: Float
    public init(rate: Float, name: String? = nil) {
        precondition(rate >= 0 && rate < 1, "Dropout: rate must lie in [0, 1), got \(rate)")
        self.rate = rate; super.init(name: name)
    }
    public convenience init(_ rate: Float) { self.init(rate: rate) }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        guard context.training else { return inputs[0] }
        let x = inputs[0]
        // A data-parallel shard takes the mask the whole batch would have in one process.
        let first = context.shard.map { $0.offset * (x.count / Swift.max(x.shape.first ?? 1, 1)) } ?? 0
        return Tensor.dropout(x, rate: rate, using: &context.generator, firstIndex: first)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(rate: try c.rate("rate", default: 0.5)) }
    public override var config: [String: JSONValue] { ["rate": .number(Double(rate))] }
}

/// A mask of 0 and 1/(1 − rate) (kept with probability 1 − rate), drawn from the context's generator.
private func keepMask(_ shape: [Int], rate: Float, scale: Float, context: inout ForwardContext) -> Tensor {
    let u = context.drawPerSample(shape) { s, g in Tensor.uniform(s, using: &g) }
    return Tensor(shape: shape, scalars: u.scalars.map { $0 >= rate ? scale : 0 })
}

/// Dropout of whole feature maps (Tompson et al.): each channel of each sample is zeroed with
/// probability `rate` (the others scaled by 1/(1 − rate)) while training; the identity otherwise.
/// Input [H, W, C]: the mask is [N, 1, 1, C], as Keras' SpatialDropout2D.
public final class SpatialDropout2D: Layer, ConfigurableLayer {
    public let rate: Float
    public init(rate: Float, name: String? = nil) {
        precondition(rate >= 0 && rate < 1, "SpatialDropout2D: rate must lie in [0, 1), got \(rate)")
        self.rate = rate; super.init(name: name)
    }
    public convenience init(_ rate: Float) { self.init(rate: rate) }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (SpatialDropout2D): expects [height, width, channels] inputs, got \(s[0])") }
        return s[0]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        guard context.training, rate > 0 else { return x }
        return x * keepMask([x.shape[0], 1, 1, x.shape[3]], rate: rate, scale: 1 / (1 - rate), context: &context)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(rate: try c.rate("rate")) }
    public override var config: [String: JSONValue] { ["rate": .number(Double(rate))] }
}

/// Adds N(0, stddev²) noise while training (Keras' GaussianNoise); the identity otherwise.
public final class GaussianNoise: Layer, ConfigurableLayer {
    public let stddev: Float
    public init(stddev: Float, name: String? = nil) {
        precondition(stddev >= 0, "GaussianNoise: stddev must be ≥ 0, got \(stddev)")
        self.stddev = stddev; super.init(name: name)
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        guard context.training, stddev > 0 else { return x }
        return x + context.drawPerSample(x.shape) { s, g in Tensor.normal(s, standardDeviation: stddev, using: &g) }
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(stddev: try c.float("stddev", in: LayerConfig.nonNegative)) }
    public override var config: [String: JSONValue] { ["stddev": .number(Double(stddev))] }
}

/// Multiplies by N(1, rate/(1 − rate)) noise while training (Keras' GaussianDropout: the same
/// mean and variance as dropout at `rate`); the identity otherwise.
public final class GaussianDropout: Layer, ConfigurableLayer {
    public let rate: Float
    public init(rate: Float, name: String? = nil) {
        precondition(rate >= 0 && rate < 1, "GaussianDropout: rate must lie in [0, 1), got \(rate)")
        self.rate = rate; super.init(name: name)
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        guard context.training, rate > 0 else { return x }
        let sd = (rate / (1 - rate)).squareRoot()
        return x * context.drawPerSample(x.shape) { s, g in Tensor.normal(s, mean: 1, standardDeviation: sd, using: &g) }
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(rate: try c.rate("rate")) }
    public override var config: [String: JSONValue] { ["rate": .number(Double(rate))] }
}

/// Dropout for SELU networks (Klambauer et al.): dropped units are set to SELU's negative
/// saturation −λα and the result is scaled and shifted (a·x + b) so that zero mean and unit
/// variance are kept. Training only; Keras 3's formula.
public final class AlphaDropout: Layer, ConfigurableLayer {
    public let rate: Float
    public init(rate: Float, name: String? = nil) {
        precondition(rate >= 0 && rate < 1, "AlphaDropout: rate must lie in [0, 1), got \(rate)")
        self.rate = rate; super.init(name: name)
    }
    public convenience init(_ rate: Float) { self.init(rate: rate) }

    /// The affine correction (a, b) and the value dropped units take (α′ = −λα).
    public var coefficients: (a: Float, b: Float, alphaPrime: Float) {
        let alphaPrime: Float = -1.6732632423543772848170429916717 * 1.0507009873554804934193349852946
        let a = 1 / ((1 - rate) * (1 + rate * alphaPrime * alphaPrime)).squareRoot()
        return (a, -a * alphaPrime * rate, alphaPrime)
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        guard context.training, rate > 0 else { return x }
        let (a, b, alphaPrime) = coefficients
        let kept = keepMask(x.shape, rate: rate, scale: 1, context: &context)
        return (x * kept + alphaPrime * (1 - kept)) * a + b
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(rate: try c.rate("rate")) }
    public override var config: [String: JSONValue] { ["rate": .number(Double(rate))] }
}

/// The identity, adding l1·Σ|x| + l2·Σx² of its input (divided by the batch size) to the
/// training loss (Keras' ActivityRegularization). Any layer can do the same through its
/// `activityRegularizer`.
public final class ActivityRegularization: Layer, ConfigurableLayer {
    public let l1, l2: Float
    public init(l1: Float = 0, l2: Float = 0, name: String? = nil) {
        self.l1 = l1; self.l2 = l2
        super.init(name: name)
        activityRegularizer = .l1l2(l1: l1, l2: l2)
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor { inputs[0] }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(l1: try c.float("l1", default: 0, in: LayerConfig.nonNegative), l2: try c.float("l2", default: 0, in: LayerConfig.nonNegative))
    }
    public override var config: [String: JSONValue] { ["l1": .number(Double(l1)), "l2": .number(Double(l2))] }
}
