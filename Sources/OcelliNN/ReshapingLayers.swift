import OcelliTensor

/// [d1, d2, …] → [d1·d2·…].
public final class Flatten: Layer, ConfigurableLayer {
    /// Rebuilds the layer (it has no configuration).
    public convenience init(config: LayerConfig) throws { self.init() }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] { [s[0].reduce(1, *)] }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].reshaped([inputs[0].shape[0], -1])
    }
}

/// Reshapes each sample to `targetShape` (one entry may be -1).
public final class Reshape: Layer, ConfigurableLayer {
    public let targetShape: [Int]
    public init(_ targetShape: [Int], name: String? = nil) { self.targetShape = targetShape; super.init(name: name) }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let n = s[0].reduce(1, *)
        var t = targetShape
        if let i = t.firstIndex(of: -1) {
            let known = t.filter { $0 != -1 }.reduce(1, *)
            guard known > 0, n % known == 0 else { throw LayerError("\(name) (Reshape): cannot reshape \(s[0]) to \(targetShape)") }
            t[i] = n / known
        }
        guard t.reduce(1, *) == n else { throw LayerError("\(name) (Reshape): cannot reshape \(s[0]) (\(n) values) to \(targetShape)") }
        return t
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].reshaped([inputs[0].shape[0]] + outputShape)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        let t = try c.ints("target_shape", in: -1...LayerConfig.sizeLimit)
        var count = 1
        for d in t where d != -1 {
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            guard d != 0, !overflow else { throw c.error("'target_shape' \(t) must hold sizes from 1 to \(LayerConfig.sizeLimit) (one may be -1) whose product fits an Int") }
            count = product
        }
        guard !t.isEmpty, t.filter({ $0 == -1 }).count <= 1 else { throw c.error("'target_shape' \(t) must be non-empty with at most one -1") }
        self.init(t)
    }
    public override var config: [String: JSONValue] { ["target_shape": .ints(targetShape)] }
}

/// Nearest-neighbour upsampling of [H, W, C] by integer factors (Keras' UpSampling2D with
/// interpolation "nearest"; Darknet's `[upsample]`).
public final class UpSampling2D: Layer, ConfigurableLayer {
    public let size: (Int, Int)
    public init(size: (Int, Int) = (2, 2), name: String? = nil) {
        precondition(size.0 >= 1 && size.1 >= 1, "UpSampling2D: size must be ≥ 1, got \(size)")
        self.size = size
        super.init(name: name)
    }
    public convenience init(_ size: Int) { self.init(size: (size, size)) }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (UpSampling2D): expects [height, width, channels] inputs, got \(s[0])") }
        return [s[0][0] * size.0, s[0][1] * size.1, s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        Tensor.upsampleNearest(inputs[0], scale: size)
    }
    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? { nil }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        try c.require("interpolation", is: .string("nearest"))
        self.init(size: try c.pair("size", default: (2, 2)))
    }
    public override var config: [String: JSONValue] { ["size": .ints([size.0, size.1]), "interpolation": .string("nearest")] }
}
