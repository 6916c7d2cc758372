import OcelliTensor

/// Helpers shared by the layer families.
extension Layer {
    func addParameter(_ name: String, _ shape: [Int], _ initializer: Initializer,
                      regularizer: Regularizer? = nil, generator: inout SeededGenerator) -> Parameter {
        let p = Parameter(name, initializer.make(shape, using: &generator), regularizer: regularizer)
        parameters.append(p)
        return p
    }
}

/// Padding in architecture JSON: Keras' "valid" and "same", and explicit cells as
/// [top, bottom, left, right] (Darknet's layers pad explicitly).
func padJSON(_ p: Padding) -> JSONValue {
    switch p {
    case .same: return .string("same")
    case .valid: return .string("valid")
    case let .explicit(t, b, l, r): return .ints([t, b, l, r])
    }
}

func padName(_ p: Padding) -> String {
    switch p {
    case .same: return "same"
    case .valid: return "valid"
    case let .explicit(t, b, l, r): return "explicit(\(t), \(b), \(l), \(r))"
    }
}

func paddingFrom(_ s: String, layer: String) throws -> Padding {
    switch s.lowercased() {
    case "same": return .same
    case "valid": return .valid
    default: throw LayerError("\(layer): padding must be \"valid\" or \"same\", got \"\(s)\"")
    }
}

func paddingFrom(_ v: JSONValue?, layer: String) throws -> Padding {
    guard let v else { return .valid }
    if let a = v.intArray {
        guard a.count == 4, a.allSatisfy({ $0 >= 0 }) else {
            throw LayerError("\(layer): explicit padding must be [top, bottom, left, right], got \(a)")
        }
        return .explicit(top: a[0], bottom: a[1], left: a[2], right: a[3])
    }
    guard let s = v.string else { throw LayerError("\(layer): padding must be a string or four integers, got \(v)") }
    return try paddingFrom(s, layer: layer)
}

/// Densely connected layer on the last axis: y = activation(x·W + b), W [in, units].
public final class Dense: Layer {
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

    public override var config: [String: JSONValue] {
        ["units": .int(units), "activation": .string(activation.kerasName), "use_bias": .bool(useBias),
         "kernel_initializer": kernelInitializer.keras, "bias_initializer": biasInitializer.keras,
         "kernel_regularizer": kernelRegularizer?.keras ?? .null, "bias_regularizer": biasRegularizer?.keras ?? .null]
    }
}

/// 2-D convolution over NHWC batches with an HWIO kernel [KH, KW, C/groups, filters].
public final class Conv2D: Layer {
    public let filters: Int
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let dilationRate: (Int, Int)
    public let groups: Int
    public let activation: Activation
    public let useBias: Bool
    public let kernelInitializer, biasInitializer: Initializer
    public let kernelRegularizer, biasRegularizer: Regularizer?
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public init(filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                dilationRate: (Int, Int) = (1, 1), groups: Int = 1, activation: Activation = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros, kernelRegularizer: Regularizer? = nil,
                biasRegularizer: Regularizer? = nil, name: String? = nil) {
        precondition(filters > 0 && kernelSize.0 > 0 && kernelSize.1 > 0, "Conv2D: filters and kernel size must be positive")
        self.filters = filters; self.kernelSize = kernelSize; self.strides = strides; self.padding = padding
        self.dilationRate = dilationRate; self.groups = groups; self.activation = activation; self.useBias = useBias
        self.kernelInitializer = kernelInitializer; self.biasInitializer = biasInitializer
        self.kernelRegularizer = kernelRegularizer; self.biasRegularizer = biasRegularizer
        super.init(name: name)
    }

    /// Square kernel and strides: `Conv2D(filters: 32, kernelSize: 3, activation: .relu)`.
    public convenience init(filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid,
                            dilationRate: Int = 1, groups: Int = 1, activation: Activation = .linear,
                            useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                            kernelRegularizer: Regularizer? = nil, name: String? = nil) {
        self.init(filters: filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  dilationRate: (dilationRate, dilationRate), groups: groups, activation: activation, useBias: useBias,
                  kernelInitializer: kernelInitializer, kernelRegularizer: kernelRegularizer, name: name)
    }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let x = s[0]
        guard x.count == 3 else { throw LayerError("\(name) (Conv2D): expects [height, width, channels] inputs, got \(x)") }
        guard x[2] % groups == 0, filters % groups == 0 else {
            throw LayerError("\(name) (Conv2D): groups \(groups) must divide input channels \(x[2]) and filters \(filters)")
        }
        let ek = ((kernelSize.0 - 1) * dilationRate.0 + 1, (kernelSize.1 - 1) * dilationRate.1 + 1)
        let (t, b, l, r) = padding.amounts(height: x[0], width: x[1], kernel: ek, stride: strides)
        let oh = (x[0] + t + b - ek.0) / strides.0 + 1, ow = (x[1] + l + r - ek.1) / strides.1 + 1
        guard oh > 0 && ow > 0, x[0] + t + b >= ek.0, x[1] + l + r >= ek.1 else {
            throw LayerError("\(name) (Conv2D): input \(x) is smaller than the kernel \(kernelSize) with padding \(padName(padding))")
        }
        return [oh, ow, filters]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        kernel = addParameter("kernel", [kernelSize.0, kernelSize.1, s[0][2] / groups, filters], kernelInitializer,
                              regularizer: kernelRegularizer, generator: &g)
        if useBias { bias = addParameter("bias", [filters], biasInitializer, regularizer: biasRegularizer, generator: &g) }
        return out
    }

    func preActivation(_ x: Tensor, fused: FusedActivation = .linear) -> Tensor {
        Tensor.conv2d(x, filter: kernel.value, bias: bias?.value, strides: strides,
                      padding: padding, dilations: dilationRate, groups: groups, activation: fused)
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        // relu and leaky relu run inside the convolution kernel (one pass over the output).
        switch activation {
        case .relu: return preActivation(inputs[0], fused: .relu)
        case .leakyRelu(let a) where (0...1).contains(a): return preActivation(inputs[0], fused: .leaky(a))
        default: return activation(preActivation(inputs[0]))
        }
    }

    public override func forwardWithLogits(_ inputs: [Tensor], context: inout ForwardContext) -> (Tensor, Tensor?) {
        let z = preActivation(inputs[0])
        return (activation(z), activation == .softmax ? z : nil)
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        (kernelSize, strides, dilationRate)
    }

    public override var config: [String: JSONValue] {
        ["filters": .int(filters), "kernel_size": .ints([kernelSize.0, kernelSize.1]),
         "strides": .ints([strides.0, strides.1]), "padding": padJSON(padding),
         "dilation_rate": .ints([dilationRate.0, dilationRate.1]), "groups": .int(groups),
         "activation": .string(activation.kerasName), "use_bias": .bool(useBias),
         "kernel_initializer": kernelInitializer.keras, "bias_initializer": biasInitializer.keras,
         "kernel_regularizer": kernelRegularizer?.keras ?? .null, "bias_regularizer": biasRegularizer?.keras ?? .null]
    }
}

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

    public override var config: [String: JSONValue] {
        ["pool_size": .ints([poolSize.0, poolSize.1]), "strides": .ints([strides.0, strides.1]), "padding": padJSON(padding)]
    }
}

public final class MaxPooling2D: Pooling2D {
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(poolSize: poolSize, strides: strides, padding: padding, isMax: true, name: name)
    }
    public convenience init(_ size: Int, strides: Int? = nil, padding: Padding = .valid) {
        self.init(poolSize: (size, size), strides: strides.map { ($0, $0) }, padding: padding)
    }
}

public final class AveragePooling2D: Pooling2D {
    public init(poolSize: (Int, Int) = (2, 2), strides: (Int, Int)? = nil, padding: Padding = .valid, name: String? = nil) {
        super.init(poolSize: poolSize, strides: strides, padding: padding, isMax: false, name: name)
    }
    public convenience init(_ size: Int, strides: Int? = nil, padding: Padding = .valid) {
        self.init(poolSize: (size, size), strides: strides.map { ($0, $0) }, padding: padding)
    }
}

/// Mean over height and width: [H, W, C] → [C].
public final class GlobalAveragePooling2D: Layer {
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (GlobalAveragePooling2D): expects [height, width, channels], got \(s[0])") }
        return [s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        Tensor.globalAvgPool2d(inputs[0])
    }
}

/// Nearest-neighbour upsampling of [H, W, C] by integer factors (Keras' UpSampling2D with
/// interpolation "nearest"; Darknet's `[upsample]`).
public final class UpSampling2D: Layer {
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
    public override var config: [String: JSONValue] { ["size": .ints([size.0, size.1]), "interpolation": .string("nearest")] }
}

/// [d1, d2, …] → [d1·d2·…].
public final class Flatten: Layer {
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] { [s[0].reduce(1, *)] }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].reshaped([inputs[0].shape[0], -1])
    }
}

/// Reshapes each sample to `targetShape` (one entry may be -1).
public final class Reshape: Layer {
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
    public override var config: [String: JSONValue] { ["target_shape": .ints(targetShape)] }
}

/// Inverted dropout while training; the identity at inference.
public final class Dropout: Layer {
    public let rate: Float
    public init(rate: Float, name: String? = nil) {
        precondition(rate >= 0 && rate < 1, "Dropout: rate must lie in [0, 1), got \(rate)")
        self.rate = rate; super.init(name: name)
    }
    public convenience init(_ rate: Float) { self.init(rate: rate) }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        context.training ? Tensor.dropout(inputs[0], rate: rate, using: &context.generator) : inputs[0]
    }
    public override var config: [String: JSONValue] { ["rate": .number(Double(rate))] }
}

/// Batch normalization over the last axis (Keras defaults: momentum 0.99, epsilon 1e-3).
public final class BatchNormalization: Layer {
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
        var mean = movingMean.value, variance = movingVariance.value
        let y = Tensor.batchNormalization(inputs[0], scale: gm, offset: bt, runningMean: &mean, runningVariance: &variance,
                                          training: training, momentum: momentum, epsilon: epsilon)
        if training { movingMean.value = mean; movingVariance.value = variance }
        return y
    }

    public override var config: [String: JSONValue] {
        ["momentum": .number(Double(momentum)), "epsilon": .number(Double(epsilon)), "center": .bool(center), "scale": .bool(scale)]
    }
}

/// Applies an activation function.
public final class ActivationLayer: Layer {
    public let activation: Activation
    public init(_ activation: Activation, name: String? = nil) { self.activation = activation; super.init(name: name) }
    public override var typeName: String { "Activation" }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor { activation(inputs[0]) }
    public override func forwardWithLogits(_ inputs: [Tensor], context: inout ForwardContext) -> (Tensor, Tensor?) {
        (activation(inputs[0]), activation == .softmax ? inputs[0] : nil)
    }
    public override var config: [String: JSONValue] { ["activation": .string(activation.kerasName)] }
}

/// x for x > 0, negativeSlope·x otherwise (Keras' default slope 0.3).
public final class LeakyReLU: Layer {
    public let negativeSlope: Float
    public init(negativeSlope: Float = 0.3, name: String? = nil) { self.negativeSlope = negativeSlope; super.init(name: name) }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].leakyRelu(negativeSlope: negativeSlope)
    }
    public override var config: [String: JSONValue] { ["negative_slope": .number(Double(negativeSlope))] }
}

/// Element-wise sum of inputs of one shape (residual connections).
public final class Add: Layer {
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
public final class Concatenate: Layer {
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
    public override var config: [String: JSONValue] { ["axis": .int(axis)] }
}

/// A closure over tensors as a layer. Its output shape is given or found by a trial run.
/// (Architecture JSON stores only its name: reloading needs the closure from code.)
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
