import OcelliTensor

/// A trainable (or frozen) tensor of a layer, updated in place by optimizers.
public final class Parameter {
    /// Keras-style name, e.g. "kernel", "bias", "gamma".
    public let name: String
    /// The current value; a leaf of the autodiff tape so `backward()` fills its gradient.
    public var value: Tensor { didSet { version &+= 1 } }
    /// Counts changes of `value` (assignments, optimizer steps, in-place mutations), so a layer
    /// can cache something derived from it (a batch-norm-folded kernel) and know when it is stale.
    public private(set) var version = 0
    /// Regularization penalty added to the loss (nil for none).
    public var regularizer: Regularizer?
    /// Moving statistics (batch-norm means) are parameters that no optimizer touches.
    public let isTrainableVariable: Bool

    public init(_ name: String, _ value: Tensor, regularizer: Regularizer? = nil, trainableVariable: Bool = true) {
        self.name = name
        self.value = trainableVariable ? value.requiringGrad() : value.detached()
        self.regularizer = regularizer
        self.isTrainableVariable = trainableVariable
    }

    public var shape: [Int] { value.shape }
    public var count: Int { value.count }
    public var grad: Tensor? { value.grad }

    /// Replaces the value (same shape), keeping it a gradient leaf.
    public func assign(_ t: Tensor) {
        precondition(t.shape == value.shape, "Parameter \(name): shape \(t.shape) does not match \(value.shape)")
        value.assign(t)
    }
}

/// The context a layer runs in: training (dropout active, batch statistics) or inference.
public struct ForwardContext {
    public var training: Bool
    public var generator: SeededGenerator
    /// Extra loss terms layers add during this pass (activity regularizers, center loss), summed
    /// into the training loss by `trainStep`.
    public var losses: [Tensor] = []
    /// Set on a data-parallel rank: its batch is rows `shard.offset ..< offset + n` of a batch of
    /// `shard.batch`. Layers that draw random numbers per sample draw those of the whole batch
    /// (the same masks as one process training the whole batch).
    public var shard: (offset: Int, batch: Int)?
    /// Set on a data-parallel rank: moving statistics (batch-norm averages) are recorded here
    /// instead of updated, and every rank replays all ranks' updates in one order.
    public var movingStatistics: MovingStatisticsLog?
    public init(training: Bool, seed: UInt64 = 0) {
        self.training = training
        self.generator = SeededGenerator(seed: seed)
    }

    /// Random numbers for a batch `shape` ([N, ...]) from `draw`: on a data-parallel rank, those
    /// of the whole batch's shape, sliced to this rank's rows.
    public mutating func drawPerSample(_ shape: [Int], _ draw: ([Int], inout SeededGenerator) -> Tensor) -> Tensor {
        guard let shard, let n = shape.first, shard.batch > n else { return draw(shape, &generator) }
        let all = draw([shard.batch] + shape.dropFirst(), &generator)
        return all.sliced(axis: 0, shard.offset..<(shard.offset + n)).detached()
    }

    /// Moves a moving statistic toward a batch's value: `p = p·keep + statistic·take`, now, or
    /// (data-parallel) recorded for the ranks' replay.
    public func updateMovingStatistic(_ p: Parameter, toward statistic: Tensor, keep: Float, take: Float) {
        if let log = movingStatistics {
            log.record(p, statistic: statistic, keep: keep, take: take)
        } else {
            p.value = MovingStatisticsLog.moved(p.value, toward: statistic, keep: keep, take: take)
        }
    }
}

/// A layer: configuration at `init`, weights created by `build(inputShapes:)` with known input
/// shapes (Sequential and the functional API call it when the layer is added, so a model's
/// weights exist as soon as the model does), then `forward` on batches.
///
/// Shapes exclude the batch axis; images are [H, W, C].
open class Layer {
    public var name: String
    /// False freezes the layer: its parameters get no updates.
    public var trainable = true
    public private(set) var inputShapes: [[Int]] = []
    public private(set) var outputShape: [Int] = []
    public private(set) var isBuilt = false
    /// The layer's parameters in a fixed order (weights files map onto it).
    public var parameters: [Parameter] = []
    /// A penalty on the layer's output added to the training loss, divided by the batch size
    /// (Keras 3's `activity_regularizer`).
    public var activityRegularizer: Regularizer?

    public init(name: String? = nil) {
        self.name = name ?? ""
    }

    /// The Keras class name shown by `summary()` and stored in architecture JSON.
    open var typeName: String { String(describing: type(of: self)) }

    /// Number of inputs the layer takes (1 for most; Add/Concatenate take several).
    open var inputArity: ClosedRange<Int> { 1...1 }

    /// Creates the parameters for these input shapes and returns the output shape.
    open func build(inputShapes: [[Int]], generator: inout SeededGenerator) throws -> [Int] {
        try computeOutputShape(inputShapes)
    }

    /// The output shape for these input shapes (throws a LayerError for incompatible shapes).
    open func computeOutputShape(_ inputShapes: [[Int]]) throws -> [Int] { inputShapes[0] }

    /// The layer's computation on batches (leading axis = batch).
    open func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        fatalError("\(typeName) must override forward(_:context:)")
    }

    /// The output and, when the layer ends in a softmax, the logits before it (nil otherwise).
    /// This layer and `next` (which consumes only this layer's output, and is its only consumer)
    /// in one pass, or nil to run them one after the other. Inference kernels override it to
    /// avoid writing and re-reading the intermediate map (a convolution and its max pool).
    open func forward(_ inputs: [Tensor], fusedWith next: Layer, context: inout ForwardContext) -> Tensor? { nil }

    open func forwardWithLogits(_ inputs: [Tensor], context: inout ForwardContext) -> (Tensor, Tensor?) {
        (forward(inputs, context: &context), nil)
    }

    /// The configuration stored in architecture JSON (Keras-style keys).
    open var config: [String: JSONValue] { [:] }

    /// Receptive-field arithmetic: (kernel, stride) of this layer along height and width,
    /// (1, 1) for layers that do not move pixels.
    open var spatialFootprint: (kernel: (Int, Int), stride: (Int, Int), dilation: (Int, Int))? { nil }

    final func ensureBuilt(_ shapes: [[Int]], generator: inout SeededGenerator) throws {
        guard inputArity.contains(shapes.count) else {
            throw LayerError("\(name) (\(typeName)) takes \(inputArity) inputs, got \(shapes.count)")
        }
        if isBuilt {
            guard shapes == inputShapes else {
                throw LayerError("\(name) (\(typeName)) was built for input shapes \(inputShapes), called with \(shapes)")
            }
            return
        }
        outputShape = try build(inputShapes: shapes, generator: &generator)
        inputShapes = shapes
        isBuilt = true
    }

    /// Applies the layer to one batch outside a model (training = false by default).
    public func callAsFunction(_ x: Tensor, training: Bool = false) -> Tensor {
        var ctx = ForwardContext(training: training)
        precondition(isBuilt, "\(name) (\(typeName)) is not built: add it to a model or call build(inputShapes:) first")
        return forward([x], context: &ctx)
    }

    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }
    public var trainableParameterCount: Int {
        trainable ? parameters.filter(\.isTrainableVariable).reduce(0) { $0 + $1.count } : 0
    }
}

/// A model-construction error: what was received, what was expected.
public struct LayerError: Error, CustomStringConvertible {
    public let description: String
    public init(_ message: String) { description = message }
}

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
