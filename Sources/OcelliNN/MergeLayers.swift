import OcelliTensor

/// Element-wise sum of inputs of one shape (residual connections).
public final class Add: Layer, ConfigurableLayer {
    /// Rebuilds the layer (it has no configuration).
    public convenience init(config: LayerConfig) throws { self.init() }
    public override var inputArity: ClosedRange<Int> { 2...64 }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        for t in s where t != s[0] { throw LayerError("\(name) (Add): input shapes differ: \(s)") }
        return s[0]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs.dropFirst().reduce(inputs[0], +)
    }
}

/// Joins inputs along an axis (default: the last, channels).
public final class Concatenate: Layer, ConfigurableLayer {
    public let axis: Int
    public init(axis: Int = -1, name: String? = nil) { self.axis = axis; super.init(name: name) }
    public override var inputArity: ClosedRange<Int> { 1...64 }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let rank = s[0].count
        let ax = axis < 0 ? axis + rank : axis
        guard ax >= 0 && ax < rank else { throw LayerError("\(name) (Concatenate): axis \(axis) out of range for \(s[0])") }
        var out = s[0]; out[ax] = 0
        for t in s {
            var a = t, b = s[0]
            guard a.count == rank else { throw LayerError("\(name) (Concatenate): ranks differ: \(s)") }
            a[ax] = 0; b[ax] = 0
            guard a == b else { throw LayerError("\(name) (Concatenate): shapes \(s) differ outside axis \(axis)") }
            out[ax] += t[ax]
        }
        return out
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let rank = inputs[0].rank
        return Tensor.concatenate(inputs, axis: axis < 0 ? axis + rank : axis + 1)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(axis: try c.int("axis", default: -1, in: -64...64)) }
    public override var config: [String: JSONValue] { ["axis": .int(axis)] }
}
