import OcelliTensor

/// Densely connected layer on the last axis: y = activation(x·W + b), W [in, units].
public final class Dense: Layer, ConfigurableLayer {
    public let units: Int
    public let activation: Activation
    public let useBias: Bool
    public let kernelInitializer, biasInitializer: Initializer
    public let kernelRegularizer, biasRegularizer: Regularizer?
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public init(units: Int, activation: Activation = .linear, useBias: Bool = true,
                kernelInitializer: Initializer = .glorotUniform, biasInitializer: Initializer = .zeros,
                kernelRegularizer: Regularizer? = nil, biasRegularizer: Regularizer? = nil, name: String? = nil) {
        precondition(units > 0, "Dense: units must be positive, got \(units)")
        self.units = units; self.activation = activation; self.useBias = useBias
        self.kernelInitializer = kernelInitializer; self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer; self.biasRegularizer = biasRegularizer
        super.init(name: name)
    }

    public convenience init(_ units: Int, activation: Activation = .linear) { self.init(units: units, activation: activation) }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard let last = s[0].last, last > 0 else { throw LayerError("\(name) (Dense): input shape \(s[0]) has no features axis") }
        return Array(s[0].dropLast()) + [units]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        kernel = addParameter("kernel", [s[0].last!, units], kernelInitializer, regularizer: kernelRegularizer, generator: &g)
        if useBias { bias = addParameter("bias", [units], biasInitializer, regularizer: biasRegularizer, generator: &g) }
        return out
    }

    func preActivation(_ x: Tensor) -> Tensor {
        let flat = x.rank == 2 ? x : x.reshaped([-1, x.shape.last!])
        var y = matmul(flat, kernel.value)
        if let b = bias { y = y + b.value }
        return x.rank == 2 ? y : y.reshaped(Array(x.shape.dropLast()) + [units])
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        activation(preActivation(inputs[0]))
    }

    public override func forwardWithLogits(_ inputs: [Tensor], context: inout ForwardContext) -> (Tensor, Tensor?) {
        let z = preActivation(inputs[0])
        return (activation(z), activation == .softmax ? z : nil)
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(units: try c.size("units"), activation: try c.activation(), useBias: try c.bool("use_bias", default: true),
                  kernelInitializer: try c.initializer("kernel_initializer", default: .glorotUniform),
                  biasInitializer: try c.initializer("bias_initializer", default: .zeros),
                  kernelRegularizer: try c.regularizer("kernel_regularizer"), biasRegularizer: try c.regularizer("bias_regularizer"))
    }

    public override var config: [String: JSONValue] {
        ["units": .int(units), "activation": activation.json, "use_bias": .bool(useBias),
         "kernel_initializer": kernelInitializer.keras, "bias_initializer": biasInitializer.keras,
         "kernel_regularizer": kernelRegularizer?.keras ?? .null, "bias_regularizer": biasRegularizer?.keras ?? .null]
    }
}

/// A closure over tensors as a layer. Its output shape is given or found by a trial run.
/// (Architecture JSON stores only its name: `Model.load` refuses it, since the closure is code.)
public final class Lambda: Layer {
    public let function: ([Tensor]) -> Tensor
    let declaredOutputShape: [Int]?
    public init(outputShape: [Int]? = nil, name: String? = nil, _ function: @escaping ([Tensor]) -> Tensor) {
        self.function = function; self.declaredOutputShape = outputShape
        super.init(name: name)
    }
    public override var inputArity: ClosedRange<Int> { 1...64 }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        if let d = declaredOutputShape { return d }
        let probe = withoutGradients { function(s.map { Tensor.zeros([1] + $0) }) }
        return Array(probe.shape.dropFirst())
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor { function(inputs) }
}
