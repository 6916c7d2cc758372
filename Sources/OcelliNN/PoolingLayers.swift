import OcelliTensor

/// Max or average pooling over NHWC windows (strides default to the pool size, as Keras).
public class Pooling2D: Layer {
    public let poolSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    let isMax: Bool

    init(poolSize: (Int, Int), strides: (Int, Int)?, padding: Padding, isMax: Bool, name: String?) {
        self.poolSize = poolSize; self.strides = strides ?? poolSize; self.padding = padding; self.isMax = isMax
        super.init(name: name)
    }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let x = s[0]
        guard x.count == 3 else { throw LayerError("\(name) (\(typeName)): expects [height, width, channels] inputs, got \(x)") }
        let (t, b, l, r) = padding.amounts(height: x[0], width: x[1], kernel: poolSize, stride: strides)
        let oh = (x[0] + t + b - poolSize.0) / strides.0 + 1, ow = (x[1] + l + r - poolSize.1) / strides.1 + 1
        guard x[0] + t + b >= poolSize.0, x[1] + l + r >= poolSize.1 else {
            throw LayerError("\(name) (\(typeName)): input \(x) is smaller than the pool \(poolSize)")
        }
        return [oh, ow, x[2]]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        isMax ? Tensor.maxPool2d(inputs[0], poolSize: poolSize, strides: strides, padding: padding)
              : Tensor.avgPool2d(inputs[0], poolSize: poolSize, strides: strides, padding: padding)
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        (poolSize, strides, (1, 1))
    }

    /// The pool size, strides (default: the pool size) and padding `config` writes.
    static func read(_ c: LayerConfig) throws -> (poolSize: (Int, Int), strides: (Int, Int), padding: Padding) {
        let size = try c.pair("pool_size", default: (2, 2))
        return (size, try c.pair("strides", default: size), try c.padding())
    }

    public override var config: [String: JSONValue] {
        ["pool_size": .ints([poolSize.0, poolSize.1]), "strides": .ints([strides.0, strides.1]), "padding": padJSON(padding)]
    }
}

public final class MaxPooling2D: Pooling2D, ConfigurableLayer {
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(poolSize: poolSize, strides: strides, padding: padding, isMax: true, name: name)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        let (size, strides, padding) = try Pooling2D.read(c)
        self.init(poolSize: size, strides: strides, padding: padding)
    }
    public convenience init(_ size: Int, strides: Int? = nil, padding: Padding = .valid) {
        self.init(poolSize: (size, size), strides: strides.map { ($0, $0) }, padding: padding)
    }
}

public final class AveragePooling2D: Pooling2D, ConfigurableLayer {
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(poolSize: poolSize, strides: strides, padding: padding, isMax: false, name: name)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        let (size, strides, padding) = try Pooling2D.read(c)
        self.init(poolSize: size, strides: strides, padding: padding)
    }
    public convenience init(_ size: Int, strides: Int? = nil, padding: Padding = .valid) {
        self.init(poolSize: (size, size), strides: strides.map { ($0, $0) }, padding: padding)
    }
}

/// Mean over height and width: [H, W, C] → [C].
public final class GlobalAveragePooling2D: Layer, ConfigurableLayer {
    /// Rebuilds the layer (it has no configuration).
    public convenience init(config: LayerConfig) throws { self.init() }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (GlobalAveragePooling2D): expects [height, width, channels], got \(s[0])") }
        return [s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        Tensor.globalAvgPool2d(inputs[0])
    }
}

/// Power-average pooling (PyTorch's LPPool2d): (Σ_window xᵖ)^(1/p). p = 1 is sum pooling
/// (average pooling times the window area), p → ∞ tends to max pooling. No padding; strides
/// default to the pool size. With odd p, windows with a negative sum give NaN, as in PyTorch.
public final class LpPooling2D: Layer, ConfigurableLayer {
    public let power: Float
    public let poolSize: (Int, Int)
    public let strides: (Int, Int)

    public init(power: Float, poolSize: (Int, Int), strides: (Int, Int)? = nil, name: String? = nil) {
        precondition(power > 0, "LpPooling2D: power must be positive, got \(power)")
        precondition(poolSize.0 > 0 && poolSize.1 > 0, "LpPooling2D: pool size must be positive")
        self.power = power; self.poolSize = poolSize; self.strides = strides ?? poolSize
        super.init(name: name)
    }

    public convenience init(power: Float, poolSize: Int, strides: Int? = nil) {
        self.init(power: power, poolSize: (poolSize, poolSize), strides: strides.map { ($0, $0) })
    }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let x = s[0]
        guard x.count == 3 else { throw LayerError("\(name) (LpPooling2D): expects [height, width, channels] inputs, got \(x)") }
        guard x[0] >= poolSize.0, x[1] >= poolSize.1 else {
            throw LayerError("\(name) (LpPooling2D): input \(x) is smaller than the pool \(poolSize)")
        }
        return [(x[0] - poolSize.0) / strides.0 + 1, (x[1] - poolSize.1) / strides.1 + 1, x[2]]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let area = Float(poolSize.0 * poolSize.1)
        let sums = Tensor.avgPool2d(inputs[0].pow(power), poolSize: poolSize, strides: strides) * area
        return power == 1 ? sums : sums.relu().pow(1 / power)
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        (poolSize, strides, (1, 1))
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        let size = try c.pair("pool_size", default: (2, 2))
        self.init(power: try c.float("power", in: LayerConfig.positive), poolSize: size, strides: try c.pair("strides", default: size))
    }

    public override var config: [String: JSONValue] {
        ["power": .number(Double(power)), "pool_size": .ints([poolSize.0, poolSize.1]), "strides": .ints([strides.0, strides.1])]
    }
}

/// Maximum over height and width: [H, W, C] → [C].
public final class GlobalMaxPooling2D: Layer, ConfigurableLayer {
    /// Rebuilds the layer (it has no configuration).
    public convenience init(config: LayerConfig) throws { self.init() }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (GlobalMaxPooling2D): expects [height, width, channels], got \(s[0])") }
        return [s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].max(axes: [1, 2])
    }
}

extension Tensor {
    /// Adaptive max pooling of NHWC into `bins` × `bins` cells: cell (i, j) is the maximum over
    /// rows ⌊i·H/bins⌋ ..< ⌈(i+1)·H/bins⌉ and likewise for columns (PyTorch's
    /// AdaptiveMaxPool2d), so every input size gives the same output size. [N, bins, bins, C].
    public static func adaptiveMaxPool2d(_ x: Tensor, bins: Int) -> Tensor {
        precondition(x.rank == 4, "adaptiveMaxPool2d: input must be NHWC, got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        precondition(h >= 1 && w >= 1 && bins >= 1, "adaptiveMaxPool2d: bins \(bins) and input \(x.shape) must be non-empty")
        var cells: [Tensor] = []
        for i in 0..<bins {
            let r0 = i * h / bins, r1 = ((i + 1) * h + bins - 1) / bins
            for j in 0..<bins {
                let c0 = j * w / bins, c1 = ((j + 1) * w + bins - 1) / bins
                cells.append(x.sliced(starts: [0, r0, c0, 0], ends: [n, r1, c1, c]).max(axes: [1, 2]))
            }
        }
        return Tensor.stack(cells, axis: 1).reshaped([n, bins, bins, c])
    }
}

/// Spatial pyramid pooling (He et al. 2014): max pooling into 1x1, 2x2, 4x4… grids (adaptive
/// bins, as PyTorch's AdaptiveMaxPool2d), flattened per level and concatenated: a vector of
/// C·Σ levels² values whatever the input's height and width.
///
/// The layer itself accepts any spatial size at run time. A `Model` fixes its input shape when
/// built, so to run one set of weights on several image sizes call
/// `Model.predictAnySize(_:)`, which skips the model's input-shape check (layers before the
/// pyramid must be convolutions, pooling or element-wise layers).
public final class SpatialPyramidPooling: Layer, ConfigurableLayer {
    public let levels: [Int]
    public init(levels: [Int] = [1, 2, 4], name: String? = nil) {
        precondition(!levels.isEmpty && levels.allSatisfy { $0 > 0 }, "SpatialPyramidPooling: levels must be positive, got \(levels)")
        self.levels = levels; super.init(name: name)
    }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (SpatialPyramidPooling): expects [height, width, channels], got \(s[0])") }
        return [s[0][2] * levels.reduce(0) { $0 + $1 * $1 }]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0], n = x.shape[0]
        return Tensor.concatenate(levels.map { Tensor.adaptiveMaxPool2d(x, bins: $0).reshaped([n, -1]) }, axis: 1)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        let levels = try c.ints("levels", default: [1, 2, 4], in: 1...1024)
        guard (1...16).contains(levels.count) else { throw c.error("'levels' must hold 1 to 16 levels, got \(levels.count)") }
        self.init(levels: levels)
    }
    public override var config: [String: JSONValue] { ["levels": .ints(levels)] }
}

extension Model {
    /// Inference on one batch whose height and width may differ from the model's input shape
    /// (rank and channels must match): for fully convolutional models and models that end in
    /// `SpatialPyramidPooling` or global pooling. Layers whose weights depend on the spatial
    /// size (Dense after Flatten) fail with their own shape error.
    public func predictAnySize(_ x: Tensor) -> Tensor {
        precondition(inputs.count == 1 && outputs.count == 1, "\(name): predictAnySize needs one input and one output")
        var context = ForwardContext(training: false)
        return withoutGradients { run([x], context: &context, logits: false, anySpatialSize: true).outputs[0] }
    }
}
