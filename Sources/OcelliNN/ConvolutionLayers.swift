import OcelliTensor

/// 2-D convolution over NHWC batches with an HWIO kernel [KH, KW, C/groups, filters].
public final class Conv2D: Layer, ConfigurableLayer {
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

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(filters: try c.size("filters"), kernelSize: try c.pair("kernel_size", default: (1, 1)),
                  strides: try c.pair("strides", default: (1, 1)), padding: try c.padding(),
                  dilationRate: try c.pair("dilation_rate", default: (1, 1)), groups: try c.size("groups", default: 1),
                  activation: try c.activation(), useBias: try c.bool("use_bias", default: true),
                  kernelInitializer: try c.initializer("kernel_initializer", default: .glorotUniform),
                  biasInitializer: try c.initializer("bias_initializer", default: .zeros),
                  kernelRegularizer: try c.regularizer("kernel_regularizer"), biasRegularizer: try c.regularizer("bias_regularizer"))
    }

    public override var config: [String: JSONValue] {
        ["filters": .int(filters), "kernel_size": .ints([kernelSize.0, kernelSize.1]),
         "strides": .ints([strides.0, strides.1]), "padding": padJSON(padding),
         "dilation_rate": .ints([dilationRate.0, dilationRate.1]), "groups": .int(groups),
         "activation": activation.json, "use_bias": .bool(useBias),
         "kernel_initializer": kernelInitializer.keras, "bias_initializer": biasInitializer.keras,
         "kernel_regularizer": kernelRegularizer?.keras ?? .null, "bias_regularizer": biasRegularizer?.keras ?? .null]
    }
}

/// Output size of a (dilated) window sliding over `size` cells with padding and stride.
private func windowOutput(_ layer: Layer, _ x: [Int], kernel: (Int, Int), strides: (Int, Int),
                          dilation: (Int, Int), padding: Padding) throws -> (Int, Int) {
    guard x.count == 3 else { throw LayerError("\(layer.name) (\(layer.typeName)): expects [height, width, channels] inputs, got \(x)") }
    let ek = ((kernel.0 - 1) * dilation.0 + 1, (kernel.1 - 1) * dilation.1 + 1)
    let (t, b, l, r) = padding.amounts(height: x[0], width: x[1], kernel: ek, stride: strides)
    guard x[0] + t + b >= ek.0, x[1] + l + r >= ek.1 else {
        throw LayerError("\(layer.name) (\(layer.typeName)): input \(x) is smaller than the kernel \(kernel) (dilation \(dilation)) with padding \(padName(padding))")
    }
    return ((x[0] + t + b - ek.0) / strides.0 + 1, (x[1] + l + r - ek.1) / strides.1 + 1)
}

/// Depthwise 2-D convolution (MobileNet): each input channel convolved with its own
/// `depthMultiplier` filters. Kernel [KH, KW, C, depthMultiplier] (Keras' layout); output
/// channel c·depthMultiplier + m comes from input channel c.
public final class DepthwiseConv2D: Layer, ConfigurableLayer {
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let depthMultiplier: Int
    public let dilationRate: (Int, Int)
    public let activation: Activation
    public let useBias: Bool
    public let depthwiseInitializer, biasInitializer: Initializer
    public let depthwiseRegularizer: Regularizer?
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public init(kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                depthMultiplier: Int = 1, dilationRate: (Int, Int) = (1, 1), activation: Activation = .linear,
                useBias: Bool = true, depthwiseInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros, depthwiseRegularizer: Regularizer? = nil, name: String? = nil) {
        precondition(kernelSize.0 > 0 && kernelSize.1 > 0 && depthMultiplier > 0,
                     "DepthwiseConv2D: kernel size and depth multiplier must be positive")
        self.kernelSize = kernelSize; self.strides = strides; self.padding = padding
        self.depthMultiplier = depthMultiplier; self.dilationRate = dilationRate; self.activation = activation
        self.useBias = useBias; self.depthwiseInitializer = depthwiseInitializer; self.biasInitializer = biasInitializer
        self.depthwiseRegularizer = depthwiseRegularizer
        super.init(name: name)
    }

    /// Square kernel and strides.
    public convenience init(kernelSize: Int, strides: Int = 1, padding: Padding = .valid, depthMultiplier: Int = 1,
                            dilationRate: Int = 1, activation: Activation = .linear, useBias: Bool = true, name: String? = nil) {
        self.init(kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  depthMultiplier: depthMultiplier, dilationRate: (dilationRate, dilationRate),
                  activation: activation, useBias: useBias, name: name)
    }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let (oh, ow) = try windowOutput(self, s[0], kernel: kernelSize, strides: strides, dilation: dilationRate, padding: padding)
        return [oh, ow, s[0][2] * depthMultiplier]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        kernel = addParameter("kernel", [kernelSize.0, kernelSize.1, s[0][2], depthMultiplier], depthwiseInitializer,
                              regularizer: depthwiseRegularizer, generator: &g)
        if useBias { bias = addParameter("bias", [out[2]], biasInitializer, generator: &g) }
        return out
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let c = inputShapes[0][2]
        let w = kernel.value.reshaped([kernelSize.0, kernelSize.1, 1, c * depthMultiplier])
        return activation(Tensor.conv2d(inputs[0], filter: w, bias: bias?.value, strides: strides, padding: padding,
                                        dilations: dilationRate, groups: c))
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        (kernelSize, strides, dilationRate)
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(kernelSize: try c.pair("kernel_size", default: (3, 3)), strides: try c.pair("strides", default: (1, 1)),
                  padding: try c.padding(), depthMultiplier: try c.size("depth_multiplier", default: 1),
                  dilationRate: try c.pair("dilation_rate", default: (1, 1)), activation: try c.activation(),
                  useBias: try c.bool("use_bias", default: true),
                  depthwiseInitializer: try c.initializer("depthwise_initializer", default: .glorotUniform),
                  biasInitializer: try c.initializer("bias_initializer", default: .zeros),
                  depthwiseRegularizer: try c.regularizer("depthwise_regularizer"))
    }

    public override var config: [String: JSONValue] {
        ["kernel_size": .ints([kernelSize.0, kernelSize.1]), "strides": .ints([strides.0, strides.1]),
         "padding": padJSON(padding), "depth_multiplier": .int(depthMultiplier),
         "dilation_rate": .ints([dilationRate.0, dilationRate.1]), "activation": activation.json,
         "use_bias": .bool(useBias), "depthwise_initializer": depthwiseInitializer.keras,
         "bias_initializer": biasInitializer.keras, "depthwise_regularizer": depthwiseRegularizer?.keras ?? .null]
    }
}

/// Depthwise-separable convolution: a depthwise convolution, then a 1x1 (pointwise) one mixing
/// channels, then bias and activation (Keras' SeparableConv2D). Parameters: depthwise kernel
/// [KH, KW, C, depthMultiplier], pointwise kernel [1, 1, C·depthMultiplier, filters], bias.
public final class SeparableConv2D: Layer, ConfigurableLayer {
    public let filters: Int
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let depthMultiplier: Int
    public let dilationRate: (Int, Int)
    public let activation: Activation
    public let useBias: Bool
    public let depthwiseInitializer, pointwiseInitializer: Initializer
    public private(set) var depthwiseKernel: Parameter!
    public private(set) var pointwiseKernel: Parameter!
    public private(set) var bias: Parameter?

    public init(filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                depthMultiplier: Int = 1, dilationRate: (Int, Int) = (1, 1), activation: Activation = .linear,
                useBias: Bool = true, depthwiseInitializer: Initializer = .glorotUniform,
                pointwiseInitializer: Initializer = .glorotUniform, name: String? = nil) {
        precondition(filters > 0 && kernelSize.0 > 0 && kernelSize.1 > 0 && depthMultiplier > 0,
                     "SeparableConv2D: filters, kernel size and depth multiplier must be positive")
        self.filters = filters; self.kernelSize = kernelSize; self.strides = strides; self.padding = padding
        self.depthMultiplier = depthMultiplier; self.dilationRate = dilationRate; self.activation = activation
        self.useBias = useBias; self.depthwiseInitializer = depthwiseInitializer; self.pointwiseInitializer = pointwiseInitializer
        super.init(name: name)
    }

    public convenience init(filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid,
                            depthMultiplier: Int = 1, activation: Activation = .linear, useBias: Bool = true, name: String? = nil) {
        self.init(filters: filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  depthMultiplier: depthMultiplier, activation: activation, useBias: useBias, name: name)
    }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let (oh, ow) = try windowOutput(self, s[0], kernel: kernelSize, strides: strides, dilation: dilationRate, padding: padding)
        return [oh, ow, filters]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        let c = s[0][2]
        depthwiseKernel = addParameter("depthwise_kernel", [kernelSize.0, kernelSize.1, c, depthMultiplier], depthwiseInitializer, generator: &g)
        pointwiseKernel = addParameter("pointwise_kernel", [1, 1, c * depthMultiplier, filters], pointwiseInitializer, generator: &g)
        if useBias { bias = addParameter("bias", [filters], .zeros, generator: &g) }
        return out
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let c = inputShapes[0][2]
        let dw = depthwiseKernel.value.reshaped([kernelSize.0, kernelSize.1, 1, c * depthMultiplier])
        let d = Tensor.conv2d(inputs[0], filter: dw, strides: strides, padding: padding, dilations: dilationRate, groups: c)
        return activation(Tensor.conv2d(d, filter: pointwiseKernel.value, bias: bias?.value))
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        (kernelSize, strides, dilationRate)
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(filters: try c.size("filters"), kernelSize: try c.pair("kernel_size", default: (3, 3)),
                  strides: try c.pair("strides", default: (1, 1)), padding: try c.padding(),
                  depthMultiplier: try c.size("depth_multiplier", default: 1),
                  dilationRate: try c.pair("dilation_rate", default: (1, 1)), activation: try c.activation(),
                  useBias: try c.bool("use_bias", default: true),
                  depthwiseInitializer: try c.initializer("depthwise_initializer", default: .glorotUniform),
                  pointwiseInitializer: try c.initializer("pointwise_initializer", default: .glorotUniform))
    }

    public override var config: [String: JSONValue] {
        ["filters": .int(filters), "kernel_size": .ints([kernelSize.0, kernelSize.1]),
         "strides": .ints([strides.0, strides.1]), "padding": padJSON(padding),
         "depth_multiplier": .int(depthMultiplier), "dilation_rate": .ints([dilationRate.0, dilationRate.1]),
         "activation": activation.json, "use_bias": .bool(useBias),
         "depthwise_initializer": depthwiseInitializer.keras, "pointwise_initializer": pointwiseInitializer.keras]
    }
}

/// ShuffleNet's channel shuffle: channels viewed as [groups, C/groups], transposed, flattened,
/// so that the next grouped convolution sees channels from every group (PyTorch's ChannelShuffle).
public final class ChannelShuffle: Layer, ConfigurableLayer {
    public let groups: Int
    public init(groups: Int, name: String? = nil) {
        precondition(groups > 0, "ChannelShuffle: groups must be positive, got \(groups)")
        self.groups = groups; super.init(name: name)
    }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard let c = s[0].last, c % groups == 0 else {
            throw LayerError("\(name) (ChannelShuffle): groups \(groups) must divide the channels of input \(s[0])")
        }
        return s[0]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        let lead = Array(x.shape.dropLast()), c = x.shape.last!
        let r = lead.count
        return x.reshaped(lead + [groups, c / groups]).permuted(Array(0..<r) + [r + 1, r]).reshaped(x.shape)
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(groups: try c.size("groups")) }
    public override var config: [String: JSONValue] { ["groups": .int(groups)] }
}

/// Transposed convolution (Keras' Conv2DTranspose): kernel [KH, KW, filters, C], output
/// (H − 1)·stride + KH cropped by the padding:
/// - `.valid`: H·stride + max(KH − stride, 0) rows, from the first;
/// - `.same`: H·stride rows, centred as TensorFlow does (the gradient of a "same" convolution);
/// - `.explicit(top, bottom, left, right)`: PyTorch's `padding` (crop top/left, remove bottom/right);
/// - `outputPadding`: extra rows/columns at the end (PyTorch's `output_padding`, Keras' with
///   padding amounts 0 for valid and KH/2 for same).
public final class Conv2DTranspose: Layer, ConfigurableLayer {
    public let filters: Int
    public let kernelSize: (Int, Int)
    public let strides: (Int, Int)
    public let padding: Padding
    public let outputPadding: (Int, Int)?
    public let dilationRate: (Int, Int)
    public let activation: Activation
    public let useBias: Bool
    public let kernelInitializer, biasInitializer: Initializer
    public private(set) var kernel: Parameter!
    public private(set) var bias: Parameter?

    public init(filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                outputPadding: (Int, Int)? = nil, dilationRate: (Int, Int) = (1, 1), activation: Activation = .linear,
                useBias: Bool = true, kernelInitializer: Initializer = .glorotUniform,
                biasInitializer: Initializer = .zeros, name: String? = nil) {
        precondition(filters > 0 && kernelSize.0 > 0 && kernelSize.1 > 0, "Conv2DTranspose: filters and kernel size must be positive")
        self.filters = filters; self.kernelSize = kernelSize; self.strides = strides; self.padding = padding
        self.outputPadding = outputPadding; self.dilationRate = dilationRate; self.activation = activation
        self.useBias = useBias; self.kernelInitializer = kernelInitializer; self.biasInitializer = biasInitializer
        super.init(name: name)
    }

    public convenience init(filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding = .valid,
                            outputPadding: Int? = nil, activation: Activation = .linear, useBias: Bool = true, name: String? = nil) {
        self.init(filters: filters, kernelSize: (kernelSize, kernelSize), strides: (strides, strides), padding: padding,
                  outputPadding: outputPadding.map { ($0, $0) }, activation: activation, useBias: useBias, name: name)
    }

    /// (crop, output size) along one axis.
    func geometry(_ size: Int, _ k: Int, _ s: Int, _ d: Int, _ op: Int?, before: Int, after: Int) -> (Int, Int) {
        let ek = (k - 1) * d + 1
        let full = (size - 1) * s + ek
        switch padding {
        case .explicit:
            return (before, full - before - after + (op ?? 0))
        case .valid:
            if let op { return (0, full + op) }
            return (0, size * s + Swift.max(ek - s, 0))
        case .same:
            let length = op.map { full - 2 * (ek / 2) + $0 } ?? size * s
            return (Swift.max(full - length, 0) / 2, length)
        }
    }

    func geometry(_ x: [Int]) -> (crop: (Int, Int), size: (Int, Int)) {
        var pads = (0, 0, 0, 0)
        if case let .explicit(t, b, l, r) = padding { pads = (t, b, l, r) }
        let (ct, oh) = geometry(x[0], kernelSize.0, strides.0, dilationRate.0, outputPadding?.0, before: pads.0, after: pads.1)
        let (cl, ow) = geometry(x[1], kernelSize.1, strides.1, dilationRate.1, outputPadding?.1, before: pads.2, after: pads.3)
        return ((ct, cl), (oh, ow))
    }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (Conv2DTranspose): expects [height, width, channels] inputs, got \(s[0])") }
        if let op = outputPadding, op.0 >= strides.0 || op.1 >= strides.1 || op.0 < 0 || op.1 < 0 {
            throw LayerError("\(name) (Conv2DTranspose): output padding \(op) must be ≥ 0 and smaller than the strides \(strides)")
        }
        let (_, size) = geometry(s[0])
        guard size.0 > 0 && size.1 > 0 else {
            throw LayerError("\(name) (Conv2DTranspose): input \(s[0]) with padding \(padName(padding)) gives an empty output \(size)")
        }
        return [size.0, size.1, filters]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        kernel = addParameter("kernel", [kernelSize.0, kernelSize.1, filters, s[0][2]], kernelInitializer, generator: &g)
        if useBias { bias = addParameter("bias", [filters], biasInitializer, generator: &g) }
        return out
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let (crop, size) = geometry(Array(inputs[0].shape.dropFirst()))
        return activation(Tensor.conv2dTranspose(inputs[0], filter: kernel.value, bias: bias?.value, strides: strides,
                                                 dilations: dilationRate, crop: (crop.0, crop.1), outputSize: size))
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(filters: try c.size("filters"), kernelSize: try c.pair("kernel_size", default: (3, 3)),
                  strides: try c.pair("strides", default: (1, 1)), padding: try c.padding(),
                  outputPadding: try c.optionalPair("output_padding", in: 0...LayerConfig.sizeLimit),
                  dilationRate: try c.pair("dilation_rate", default: (1, 1)), activation: try c.activation(),
                  useBias: try c.bool("use_bias", default: true),
                  kernelInitializer: try c.initializer("kernel_initializer", default: .glorotUniform),
                  biasInitializer: try c.initializer("bias_initializer", default: .zeros))
    }

    public override var config: [String: JSONValue] {
        ["filters": .int(filters), "kernel_size": .ints([kernelSize.0, kernelSize.1]),
         "strides": .ints([strides.0, strides.1]), "padding": padJSON(padding),
         "output_padding": outputPadding.map { .ints([$0.0, $0.1]) } ?? .null,
         "dilation_rate": .ints([dilationRate.0, dilationRate.1]), "activation": activation.json,
         "use_bias": .bool(useBias), "kernel_initializer": kernelInitializer.keras, "bias_initializer": biasInitializer.keras]
    }
}

/// Zeros around images: ((top, bottom), (left, right)) rows and columns (Keras' ZeroPadding2D).
public final class ZeroPadding2D: Layer, ConfigurableLayer {
    public let padding: ((Int, Int), (Int, Int))
    public init(padding: ((Int, Int), (Int, Int)), name: String? = nil) {
        precondition(padding.0.0 >= 0 && padding.0.1 >= 0 && padding.1.0 >= 0 && padding.1.1 >= 0,
                     "ZeroPadding2D: padding must be ≥ 0")
        self.padding = padding; super.init(name: name)
    }
    /// The same amount on every side.
    public convenience init(_ p: Int = 1) { self.init(padding: ((p, p), (p, p))) }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (ZeroPadding2D): expects [height, width, channels] inputs, got \(s[0])") }
        return [s[0][0] + padding.0.0 + padding.0.1, s[0][1] + padding.1.0 + padding.1.1, s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].padded([(0, 0), padding.0, padding.1, (0, 0)])
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(padding: try c.pairs("padding")) }
    public override var config: [String: JSONValue] {
        ["padding": .array([.ints([padding.0.0, padding.0.1]), .ints([padding.1.0, padding.1.1])])]
    }
}

/// Removes ((top, bottom), (left, right)) rows and columns (Keras' Cropping2D).
public final class Cropping2D: Layer, ConfigurableLayer {
    public let cropping: ((Int, Int), (Int, Int))
    public init(cropping: ((Int, Int), (Int, Int)), name: String? = nil) {
        precondition(cropping.0.0 >= 0 && cropping.0.1 >= 0 && cropping.1.0 >= 0 && cropping.1.1 >= 0,
                     "Cropping2D: cropping must be ≥ 0")
        self.cropping = cropping; super.init(name: name)
    }
    public convenience init(_ c: Int) { self.init(cropping: ((c, c), (c, c))) }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (Cropping2D): expects [height, width, channels] inputs, got \(s[0])") }
        let h = s[0][0] - cropping.0.0 - cropping.0.1, w = s[0][1] - cropping.1.0 - cropping.1.1
        guard h > 0 && w > 0 else { throw LayerError("\(name) (Cropping2D): cropping \(cropping) removes all of input \(s[0])") }
        return [h, w, s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        return x.sliced(starts: [0, cropping.0.0, cropping.1.0, 0],
                        ends: [x.shape[0], x.shape[1] - cropping.0.1, x.shape[2] - cropping.1.1, x.shape[3]])
    }
    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws { self.init(cropping: try c.pairs("cropping")) }
    public override var config: [String: JSONValue] {
        ["cropping": .array([.ints([cropping.0.0, cropping.0.1]), .ints([cropping.1.0, cropping.1.1])])]
    }
}
