import Foundation
import OcelliNN
import OcelliTensor

/// Darknet's activation functions (`activation=` in a cfg), with Darknet's constants.
public enum DarknetActivation: String, CaseIterable, Sendable {
    case linear, leaky, relu, logistic, tanh, elu, selu, mish, swish, relie, ramp, loggy

    /// Applies the activation (differentiable: every case is built from recorded tensor ops).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .linear: return x
        case .leaky: return x.leakyRelu(negativeSlope: 0.1)
        case .relu: return x.relu()
        case .logistic: return x.sigmoid()
        case .tanh: return x.tanh()
        case .elu: return x.elu()
        case .selu: return x.selu()
        case .mish: return x * x.softplus().tanh()
        case .swish: return x * x.sigmoid()
        case .relie: return x.leakyRelu(negativeSlope: 0.01)
        case .ramp: return x.relu() + 0.1 * x
        case .loggy: return 2 * x.sigmoid() - 1
        }
    }

    /// The activation at `key` of a saved layer's configuration; `default` when not given.
    init(config c: LayerConfig, _ key: String = "activation", default d: DarknetActivation) throws {
        let name = try c.string(key, default: d.rawValue)
        guard let a = DarknetActivation(rawValue: name) else {
            throw c.error("unknown Darknet activation '\(name)' (\(DarknetActivation.allCases.map(\.rawValue).joined(separator: ", ")))")
        }
        self = a
    }

    init(cfg value: String, section: DarknetSection, option: DarknetOption?) throws {
        guard let a = DarknetActivation(rawValue: value) else {
            let supported = DarknetActivation.allCases.map(\.rawValue).joined(separator: ", ")
            if let option { throw section.fail(option, "an activation Ocelli supports (\(supported))") }
            throw DarknetError(file: section.file, line: section.line, "unsupported activation '\(value)'")
        }
        self = a
    }
}

/// The batch-norm parameters of a Darknet `[convolutional]` or `[connected]` layer (`scales`,
/// `rolling_mean`, `rolling_variance`; the offset is the layer's `biases`) and what both layers do
/// with them: the training forward with Darknet's rolling update, and the inference folding.
struct DarknetBatchNormParameters {
    let scales: Parameter
    let rollingMean: Parameter
    let rollingVariance: Parameter

    init(count: Int) {
        scales = Parameter("scales", Tensor.ones([count]))
        rollingMean = Parameter("rolling_mean", Tensor.zeros([count]), trainableVariable: false)
        rollingVariance = Parameter("rolling_variance", Tensor.ones([count]), trainableVariable: false)
    }

    var all: [Parameter] { [scales, rollingMean, rollingVariance] }

    /// Batch statistics (one fused pass, with the leaky activation when `leakySlope` is given);
    /// the rolling averages move 1% toward them (Darknet's 0.99 / 0.01).
    func training(_ z: Tensor, biases: Tensor, leakySlope: Float? = nil, context: inout ForwardContext) -> Tensor {
        let (y, mean, variance) = Tensor.darknetBatchNormTraining(z, scale: scales.value, offset: biases, leakySlope: leakySlope)
        context.updateMovingStatistic(rollingMean, toward: mean, keep: 0.99, take: 0.01)
        context.updateMovingStatistic(rollingVariance, toward: variance, keep: 0.99, take: 0.01)
        return y
    }

    /// Rolling statistics in recorded ops (differentiable inference).
    func inference(_ z: Tensor, biases: Tensor) -> Tensor {
        (z - rollingMean.value) / (rollingVariance.value.sqrt() + 1e-6) * scales.value + biases
    }

    func fold(kernel: Tensor, biases: Tensor) -> (Tensor, Tensor) {
        foldDarknetBatchNorm(kernel: kernel, biases: biases, scales: scales.value, mean: rollingMean.value,
                             variance: rollingVariance.value)
    }
}

/// The inference form of Darknet's batch normalization folded into the preceding weights:
/// `k = scale / (sqrt(var) + 1e-6)`, weights·k and `bias − mean·k`. `kernel` has the output
/// channels last.
func foldDarknetBatchNorm(kernel: Tensor, biases: Tensor, scales: Tensor, mean: Tensor, variance: Tensor) -> (Tensor, Tensor) {
    let k = scales.scalars.indices.map { scales.scalars[$0] / (variance.scalars[$0].squareRoot() + 1e-6) }
    let o = k.count
    var w = kernel.detached().scalars
    w.withUnsafeMutableBufferPointer { p in
        var i = 0
        while i < p.count {
            for j in 0..<o { p[i + j] *= k[j] }
            i += o
        }
    }
    let b = (0..<o).map { biases.scalars[$0] - mean.scalars[$0] * k[$0] }
    return (Tensor(shape: kernel.shape, scalars: w), Tensor(b))
}

/// Something derived from a layer's parameters (folded, packed weights), remembered with the
/// parameter versions it came from and rebuilt when any of them changes.
final class DerivedWeights<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var versions: [Int] = []
    private var value: T?

    func get(_ parameters: [Parameter], make: () -> T) -> T {
        let now = parameters.map(\.version)
        lock.lock(); defer { lock.unlock() }
        if let value, versions == now { return value }
        let v = make()
        value = v
        versions = now
        return v
    }
}

/// Darknet's `[convolutional]` section as one layer: convolution (padding `padding` cells on
/// every side), optional batch normalization with Darknet's formula, activation.
///
/// Parameters, in order: `kernel` [size, size, channels / groups, filters] (HWIO), `biases`
/// [filters] (the batch-norm offset when batch-normalised), then when batch-normalised `scales`,
/// `rolling_mean`, `rolling_variance` (the last two are not trained). Inference runs one
/// convolution with the batch norm folded into the kernel and bias.
public final class DarknetConvolutional: Layer, ConfigurableLayer {
    public let filters: Int
    public let size: Int
    public let stride: Int
    public let padding: Int
    public let groups: Int
    public let dilation: Int
    public let batchNormalize: Bool
    public let activation: DarknetActivation
    public private(set) var kernel: Parameter!
    public private(set) var biases: Parameter!
    var batchNorm: DarknetBatchNormParameters?
    public var scales: Parameter? { batchNorm?.scales }
    public var rollingMean: Parameter? { batchNorm?.rollingMean }
    public var rollingVariance: Parameter? { batchNorm?.rollingVariance }
    private let prepared = DerivedWeights<PreparedConvolution>()

    public init(filters: Int, size: Int, stride: Int = 1, padding: Int = 0, groups: Int = 1, dilation: Int = 1,
                batchNormalize: Bool = false, activation: DarknetActivation = .logistic, name: String? = nil) {
        precondition(filters > 0 && size > 0 && stride > 0 && padding >= 0 && groups > 0 && dilation > 0,
                     "DarknetConvolutional: filters, size, stride, groups, dilation must be positive and padding ≥ 0")
        self.filters = filters; self.size = size; self.stride = stride; self.padding = padding
        self.groups = groups; self.dilation = dilation
        self.batchNormalize = batchNormalize; self.activation = activation
        super.init(name: name)
    }

    public override var typeName: String { "DarknetConvolutional" }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let x = s[0]
        guard x.count == 3 else { throw LayerError("\(name) (convolutional): expects [height, width, channels] inputs, got \(x)") }
        guard x[2] % groups == 0, filters % groups == 0 else {
            throw LayerError("\(name) (convolutional): groups \(groups) must divide the input channels \(x[2]) and filters \(filters)")
        }
        let extent = (size - 1) * dilation + 1
        let oh = (x[0] + 2 * padding - extent) / stride + 1, ow = (x[1] + 2 * padding - extent) / stride + 1
        guard x[0] + 2 * padding >= extent, x[1] + 2 * padding >= extent, oh > 0, ow > 0 else {
            throw LayerError("\(name) (convolutional): input \(x) is smaller than the \(size)x\(size) kernel with padding \(padding)")
        }
        return [oh, ow, filters]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        let shape = [size, size, s[0][2] / groups, filters]
        // Darknet's initialisation: uniform in ±sqrt(2 / (size·size·c/groups)).
        let limit = (2 / Float(size * size * s[0][2] / groups)).squareRoot()
        kernel = Parameter("kernel", Tensor.uniform(shape, minimum: -limit, maximum: limit, using: &g))
        biases = Parameter("biases", Tensor.zeros([filters]))
        parameters = [kernel, biases]
        if batchNormalize {
            batchNorm = DarknetBatchNormParameters(count: filters)
            parameters += batchNorm!.all
        }
        return out
    }

    var pad: Padding { .explicit(top: padding, bottom: padding, left: padding, right: padding) }

    /// The kernel and bias of the convolution that equals this layer at inference.
    public func inferenceWeights() -> (kernel: Tensor, bias: Tensor) {
        guard let batchNorm else { return (kernel.value.detached(), biases.value.detached()) }
        return batchNorm.fold(kernel: kernel.value, biases: biases.value)
    }

    /// The inference convolution: batch norm folded in, weights packed once (rebuilt when a
    /// parameter changes).
    public var preparedConvolution: PreparedConvolution {
        prepared.get(parameters) {
            let (k, b) = inferenceWeights()
            return PreparedConvolution(filter: k, bias: b, strides: (stride, stride), padding: pad,
                                       dilations: (dilation, dilation), groups: groups)
        }
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0]
        let recording = GradMode.isEnabled && (x.requiresGrad || trainable)
        // A frozen layer (`trainable = false`: --freeze, stopbackward) runs as at inference, its
        // batch norm on the rolling statistics, which stay as they are.
        let training = context.training && trainable
        if !training && recording {
            // Inference statistics, but differentiable (saliency maps, fine-tuning with frozen
            // batch norm): the unfolded formula in recorded ops.
            let z = Tensor.conv2d(x, filter: kernel.value, bias: batchNormalize ? nil : biases.value, strides: (stride, stride),
                                  padding: pad, dilations: (dilation, dilation), groups: groups)
            return activation(batchNorm?.inference(z, biases: biases.value) ?? z)
        }
        guard training else {
            let conv = preparedConvolution
            guard let fused = fusedActivation else { return activation(conv(x)) }
            return conv(x, activation: fused)
        }
        guard let batchNorm else {
            return activation(Tensor.conv2d(x, filter: kernel.value, bias: biases.value, strides: (stride, stride),
                                            padding: pad, dilations: (dilation, dilation), groups: groups))
        }
        let z = Tensor.conv2d(x, filter: kernel.value, strides: (stride, stride), padding: pad,
                              dilations: (dilation, dilation), groups: groups)
        if activation == .leaky { return batchNorm.training(z, biases: biases.value, leakySlope: 0.1, context: &context) }
        return activation(batchNorm.training(z, biases: biases.value, context: &context))
    }

    /// The activation as the inference kernels apply it while storing, if they can.
    var fusedActivation: FusedActivation? {
        switch activation {
        case .linear: return .linear
        case .leaky: return .leaky(0.1)
        case .relu: return .relu
        case .relie: return .leaky(0.01)
        default: return nil
        }
    }

    /// Inference: a thin convolution and the 2x2 stride-2 max pool after it in one pass
    /// (YOLOv3-tiny's and YOLOv2-tiny's first layers), when the direct kernel runs it.
    public override func forward(_ inputs: [Tensor], fusedWith next: Layer, context: inout ForwardContext) -> Tensor? {
        let x = inputs[0]
        guard !context.training, !(GradMode.isEnabled && (x.requiresGrad || trainable)),
              let pool = next as? MaxPooling2D, pool.poolSize == (2, 2), pool.strides == (2, 2), x.rank == 4,
              let fused = fusedActivation else { return nil }
        // The pool must take the conv map's even rows and columns from the top-left corner.
        guard let y = preparedConvolution.maxPooled2x2(x, activation: fused) else { return nil }
        let (t, _, l, _) = pool.padding.amounts(height: 2 * y.shape[1], width: 2 * y.shape[2], kernel: (2, 2), stride: (2, 2))
        guard t == 0, l == 0, (try? pool.computeOutputShape([[2 * y.shape[1], 2 * y.shape[2], y.shape[3]]])) == Array(y.shape.dropFirst())
        else { return nil }
        return y
    }

    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        ((size, size), (stride, stride), (dilation, dilation))
    }

    /// Reads what `config` writes (architecture files, `Model.load` once `DarknetLayers.register()` ran).
    public convenience init(config c: LayerConfig) throws {
        self.init(filters: try c.size("filters"), size: try c.size("size"), stride: try c.size("stride", default: 1),
                  padding: try c.int("padding", default: 0, in: 0...LayerConfig.sizeLimit), groups: try c.size("groups", default: 1),
                  dilation: try c.size("dilation", default: 1), batchNormalize: try c.bool("batch_normalize", default: false),
                  activation: try DarknetActivation(config: c, default: .logistic))
    }

    public override var config: [String: JSONValue] {
        ["filters": .int(filters), "size": .int(size), "stride": .int(stride), "padding": .int(padding),
         "groups": .int(groups), "dilation": .int(dilation), "batch_normalize": .bool(batchNormalize),
         "activation": .string(activation.rawValue)]
    }
}

/// Darknet's `[connected]` section: a fully connected layer on the flattened input.
///
/// Darknet flattens channel-major (C, H, W); Ocelli tensors are (H, W, C), so the weights reader
/// permutes the kernel's rows once at load time. Parameters: `kernel` [inputs, outputs],
/// `biases`, and when batch-normalised `scales`, `rolling_mean`, `rolling_variance`.
public final class DarknetConnected: Layer, ConfigurableLayer {
    public let outputs: Int
    public let batchNormalize: Bool
    public let activation: DarknetActivation
    public private(set) var kernel: Parameter!
    public private(set) var biases: Parameter!
    var batchNorm: DarknetBatchNormParameters?
    public var scales: Parameter? { batchNorm?.scales }
    public var rollingMean: Parameter? { batchNorm?.rollingMean }
    public var rollingVariance: Parameter? { batchNorm?.rollingVariance }
    private let folded = DerivedWeights<(Tensor, Tensor)>()

    public init(outputs: Int, batchNormalize: Bool = false, activation: DarknetActivation = .logistic, name: String? = nil) {
        precondition(outputs > 0, "DarknetConnected: outputs must be positive")
        self.outputs = outputs; self.batchNormalize = batchNormalize; self.activation = activation
        super.init(name: name)
    }

    public override var typeName: String { "DarknetConnected" }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] { [outputs] }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let inputs = s[0].reduce(1, *)
        let limit = (2 / Float(inputs)).squareRoot()
        kernel = Parameter("kernel", Tensor.uniform([inputs, outputs], minimum: -limit, maximum: limit, using: &g))
        biases = Parameter("biases", Tensor.zeros([outputs]))
        parameters = [kernel, biases]
        if batchNormalize {
            batchNorm = DarknetBatchNormParameters(count: outputs)
            parameters += batchNorm!.all
        }
        return [outputs]
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0].reshaped([inputs[0].shape[0], -1])
        let recording = GradMode.isEnabled && (x.requiresGrad || trainable)
        guard let batchNorm else { return activation(Tensor.matmul(x, kernel.value) + biases.value) }
        if context.training && trainable { return activation(batchNorm.training(Tensor.matmul(x, kernel.value), biases: biases.value, context: &context)) }
        if recording { return activation(batchNorm.inference(Tensor.matmul(x, kernel.value), biases: biases.value)) }
        let (k, b) = folded.get(parameters) { batchNorm.fold(kernel: kernel.value, biases: biases.value) }
        return activation(Tensor.matmul(x, k) + b)
    }

    /// Reads what `config` writes (architecture files, `Model.load` once `DarknetLayers.register()` ran).
    public convenience init(config c: LayerConfig) throws {
        self.init(outputs: try c.size("output"), batchNormalize: try c.bool("batch_normalize", default: false),
                  activation: try DarknetActivation(config: c, default: .logistic))
    }

    public override var config: [String: JSONValue] {
        ["output": .int(outputs), "batch_normalize": .bool(batchNormalize), "activation": .string(activation.rawValue)]
    }
}

/// Darknet's `[reorg]` (reorg_cpu, forward): [H, W, C] → [H/s, W/s, C·s²] in Darknet's own
/// channel order, which is not TensorFlow's space_to_depth.
public final class DarknetReorg: Layer, ConfigurableLayer {
    public let stride: Int
    public init(stride: Int, name: String? = nil) {
        precondition(stride >= 1, "DarknetReorg: stride must be ≥ 1")
        self.stride = stride; super.init(name: name)
    }
    public override var typeName: String { "DarknetReorg" }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        let x = s[0]
        guard x.count == 3, x[0] % stride == 0, x[1] % stride == 0, x[2] % (stride * stride) == 0 else {
            throw LayerError("\(name) (reorg): needs [height, width, channels] with height and width divisible by \(stride) and channels by \(stride * stride), got \(x)")
        }
        return [x[0] / stride, x[1] / stride, x[2] * stride * stride]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        Tensor.darknetReorg(inputs[0], stride: stride)
    }
    public override var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? {
        ((stride, stride), (stride, stride), (1, 1))
    }
    /// Reads what `config` writes (architecture files, `Model.load` once `DarknetLayers.register()` ran).
    public convenience init(config c: LayerConfig) throws { self.init(stride: try c.size("stride")) }
    public override var config: [String: JSONValue] { ["stride": .int(stride)] }
}

/// Darknet's `[shortcut]`: `activation(alpha · x + beta · from)` for inputs of equal shape.
public final class DarknetShortcut: Layer, ConfigurableLayer {
    public let alpha: Float
    public let beta: Float
    public let activation: DarknetActivation
    public init(alpha: Float = 1, beta: Float = 1, activation: DarknetActivation = .linear, name: String? = nil) {
        self.alpha = alpha; self.beta = beta; self.activation = activation
        super.init(name: name)
    }
    public override var typeName: String { "DarknetShortcut" }
    public override var inputArity: ClosedRange<Int> { 2...2 }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0] == s[1] else {
            throw LayerError("\(name) (shortcut): adds outputs of equal shape only, got \(s[0]) and \(s[1])")
        }
        return s[0]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let a = alpha == 1 ? inputs[0] : inputs[0] * alpha
        let b = beta == 1 ? inputs[1] : inputs[1] * beta
        return activation(a + b)
    }
    /// Reads what `config` writes (architecture files, `Model.load` once `DarknetLayers.register()` ran).
    public convenience init(config c: LayerConfig) throws {
        self.init(alpha: try c.float("alpha", default: 1), beta: try c.float("beta", default: 1),
                  activation: try DarknetActivation(config: c, default: .linear))
    }

    public override var config: [String: JSONValue] {
        ["alpha": .number(Double(alpha)), "beta": .number(Double(beta)), "activation": .string(activation.rawValue)]
    }
}

/// Darknet's `[avgpool]`: the mean of each channel over the whole map, [H, W, C] → [1, 1, C].
public final class DarknetAvgPool: Layer, ConfigurableLayer {
    /// Rebuilds the layer (it has no configuration).
    public convenience init(config: LayerConfig) throws { self.init() }
    public override var typeName: String { "DarknetAvgPool" }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 3 else { throw LayerError("\(name) (avgpool): expects [height, width, channels] inputs, got \(s[0])") }
        return [1, 1, s[0][2]]
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs[0].mean(axes: [1, 2], keepDims: true)
    }
}

/// OcelliDarknet's layers for `Model.load`: a saved model built from a Darknet cfg holds
/// `DarknetConvolutional`, `DarknetShortcut`… layers, which OcelliNN cannot know. Call
/// `DarknetLayers.register()` once before loading such a model (the `ocelli` tool does at start;
/// `DarknetNetwork` does when it builds a network).
public enum DarknetLayers {
    /// The Darknet layer classes by the class name they write.
    static let types: [String: any ConfigurableLayer.Type] = [
        "DarknetConvolutional": DarknetConvolutional.self, "DarknetConnected": DarknetConnected.self,
        "DarknetReorg": DarknetReorg.self, "DarknetShortcut": DarknetShortcut.self, "DarknetAvgPool": DarknetAvgPool.self,
    ]

    private static let registration: Void = {
        for (name, type) in types { LayerRegistry.register(name, type: type) }
        OptimizerRegistry.register("DarknetSGD") { try DarknetSGD(saved: $0) }
        ScheduleRegistry.register("DarknetLearningRate") { try DarknetLearningRate(saved: $0) }
    }()

    /// Registers the Darknet layers with `LayerRegistry`, and Darknet's optimizer and learning-rate
    /// schedule with `OptimizerRegistry` and `ScheduleRegistry`, so that `Model.load` rebuilds them.
    /// Safe to call any number of times, from any thread: the registration runs once.
    public static func register() { _ = registration }
}
