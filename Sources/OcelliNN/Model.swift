import Foundation
import OcelliTensor

/// The global seed for weight initialization (Keras' `keras.utils.set_random_seed`). Each layer
/// built afterwards draws its own generator from it, in construction order, and so does each
/// `fit` (for shuffling and dropout).
///
/// The sequence is shared by the whole process: models built or trained on several threads at
/// once interleave their draws. `RandomSeed.withSeed(_:_:)` gives a block its own sequence
/// instead, so what it builds and trains is reproducible whatever else runs concurrently.
public enum RandomSeed {
    private final class State: @unchecked Sendable {
        let lock = NSLock()
        var g: SeededGenerator
        init(seed: UInt64) { g = SeededGenerator(seed: seed) }
    }
    private static let global = State(seed: 1337)
    @TaskLocal private static var scoped: State?

    /// Restarts the sequence (the block's own one inside `withSeed`).
    public static func set(_ seed: UInt64) {
        let s = scoped ?? global
        s.lock.lock(); s.g = SeededGenerator(seed: seed); s.lock.unlock()
    }

    /// Runs `body` with a sequence of its own that starts from `seed`: layers built and models
    /// trained inside draw only from it (on the calling task or thread), and the global sequence
    /// is left as it was.
    public static func withSeed<R>(_ seed: UInt64, _ body: () throws -> R) rethrows -> R {
        try $scoped.withValue(State(seed: seed)) { try body() }
    }

    static func next() -> UInt64 {
        let s = scoped ?? global
        s.lock.lock(); defer { s.lock.unlock() }
        return s.g.next()
    }
}

/// A placeholder for a batch of tensors in the functional API: `Input(shape:)`, then layers
/// called on it. Its shape excludes the batch axis.
public final class SymbolicTensor {
    public let shape: [Int]
    let layer: Layer?
    let inputs: [SymbolicTensor]
    public var name: String

    init(shape: [Int], layer: Layer?, inputs: [SymbolicTensor], name: String) {
        self.shape = shape; self.layer = layer; self.inputs = inputs; self.name = name
    }
}

/// A model input of the given per-sample shape.
public func Input(shape: [Int], name: String = "input") -> SymbolicTensor {
    SymbolicTensor(shape: shape, layer: nil, inputs: [], name: name)
}

extension Layer {
    /// Builds the layer for the symbolic inputs' shapes (throwing on incompatible shapes).
    public func apply(_ inputs: [SymbolicTensor]) throws -> SymbolicTensor {
        var g = SeededGenerator(seed: RandomSeed.next())
        try ensureBuilt(inputs.map(\.shape), generator: &g)
        return SymbolicTensor(shape: outputShape, layer: self, inputs: inputs, name: name)
    }

    /// Calls the layer on a symbolic tensor (functional API). Incompatible shapes stop with a
    /// message naming the layer and the shapes; use `apply` to get a thrown error instead.
    public func callAsFunction(_ x: SymbolicTensor) -> SymbolicTensor { callAsFunction([x]) }
    public func callAsFunction(_ xs: [SymbolicTensor]) -> SymbolicTensor {
        do { return try apply(xs) } catch { preconditionFailure("\(error)") }
    }
}

/// A graph of layers from inputs to outputs (Keras' functional `Model`); `Sequential` is the
/// special case of a chain. Layers appear in `layers` in a deterministic topological order.
open class Model {
    public var name: String
    public private(set) var inputs: [SymbolicTensor]
    public private(set) var outputs: [SymbolicTensor]
    /// Every node but the inputs, in the order they run.
    private(set) var nodes: [SymbolicTensor] = []
    /// Per node: the values no later node reads (dropped once it has run, so a forward pass
    /// holds only the live activations).
    private var releaseAfter: [[ObjectIdentifier]] = []
    /// Per node: whether the next node is its only consumer and reads nothing else (a pair
    /// that `Layer.forward(_:fusedWith:context:)` may run in one pass).
    private var fusibleWithNext: [Bool] = []
    public private(set) var layers: [Layer] = []

    // Training configuration (set by compile).
    public internal(set) var optimizer: (any Optimizer)?
    public internal(set) var loss: (any Loss)?
    public internal(set) var metrics: [Metric] = []
    public var stopTraining = false
    var trainSteps = 0
    /// Strings saved with the architecture in `model.json` and restored by `Model.load` (what
    /// the weights mean beyond the graph: a detector's class names, its training data, …).
    public var metadata: [String: String] = [:]
    /// Data-parallel training over several processes (`DataParallel`): `fit` and the Darknet
    /// trainer train this rank's share of each batch and sum the gradients over the ranks.
    public var dataParallel: DataParallel? {
        didSet { movingStatisticsLog = dataParallel.map { _ in MovingStatisticsLog(model: self) } }
    }
    var movingStatisticsLog: MovingStatisticsLog?

    public init(inputs: [SymbolicTensor], outputs: [SymbolicTensor], name: String = "functional") {
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        rebuildGraph()
    }

    public convenience init(inputs: SymbolicTensor, outputs: SymbolicTensor, name: String = "functional") {
        self.init(inputs: [inputs], outputs: [outputs], name: name)
    }

    func rebuildGraph() {
        // Iterative post-order DFS from the outputs: deterministic and stack-safe.
        var order: [SymbolicTensor] = []
        var seen = Set<ObjectIdentifier>()
        var stack: [(SymbolicTensor, Bool)] = outputs.reversed().map { ($0, false) }
        while let (t, expanded) = stack.popLast() {
            if expanded { order.append(t); continue }
            if !seen.insert(ObjectIdentifier(t)).inserted { continue }
            stack.append((t, true))
            for i in t.inputs.reversed() where !seen.contains(ObjectIdentifier(i)) { stack.append((i, false)) }
        }
        for t in order where t.layer == nil {
            precondition(inputs.contains { $0 === t }, "Model: output depends on an Input that is not among the model's inputs")
        }
        nodes = order.filter { $0.layer != nil }
        var lastUse: [ObjectIdentifier: Int] = [:]
        var consumers: [ObjectIdentifier: Int] = [:]
        for (i, n) in nodes.enumerated() {
            for t in n.inputs { lastUse[ObjectIdentifier(t)] = i; consumers[ObjectIdentifier(t), default: 0] += 1 }
        }
        let kept = Set(outputs.map { ObjectIdentifier($0) })
        releaseAfter = Array(repeating: [], count: nodes.count)
        for (id, i) in lastUse where !kept.contains(id) { releaseAfter[i].append(id) }
        fusibleWithNext = nodes.indices.map { i in
            guard i + 1 < nodes.count else { return false }
            let n = nodes[i], next = nodes[i + 1]
            return next.inputs.count == 1 && next.inputs[0] === n && consumers[ObjectIdentifier(n)] == 1
                && !kept.contains(ObjectIdentifier(n)) && !kept.contains(ObjectIdentifier(next))
        }
        var ls: [Layer] = []
        for n in nodes where !ls.contains(where: { $0 === n.layer! }) { ls.append(n.layer!) }
        layers = ls
        // Keras-style unique names: "conv2d", "conv2d_1", …
        var counts: [String: Int] = [:]
        var used = Set(layers.map(\.name).filter { !$0.isEmpty })
        for l in layers where l.name.isEmpty {
            let base = Model.snakeCase(l.typeName)
            var k = counts[base, default: 0]
            var candidate = k == 0 ? base : "\(base)_\(k)"
            while used.contains(candidate) { k += 1; candidate = "\(base)_\(k)" }
            counts[base] = k + 1
            used.insert(candidate)
            l.name = candidate
        }
        for n in nodes { n.name = n.layer!.name }
    }

    /// Keras' to_snake_case: "MaxPooling2D" → "max_pooling2d", "LeakyReLU" → "leaky_re_lu".
    static func snakeCase(_ s: String) -> String {
        func sub(_ pattern: String, _ text: String) -> String {
            let re = try! NSRegularExpression(pattern: pattern)
            return re.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "$1_$2")
        }
        return sub("([a-z])([A-Z])", sub("(.)([A-Z][a-z]+)", s)).lowercased()
    }

    /// Every parameter of every layer, in layer order then the layer's own order.
    public var parameters: [Parameter] { layers.flatMap(\.parameters) }
    /// The parameters an optimizer updates (trainable layers, excluding moving statistics).
    public var trainableParameters: [Parameter] { layers.filter(\.trainable).flatMap { $0.parameters.filter(\.isTrainableVariable) } }

    /// Runs the graph on batches (one tensor per model input).
    public func forward(_ xs: [Tensor], context: inout ForwardContext) -> [Tensor] {
        run(xs, context: &context, logits: false).outputs
    }

    /// The outputs, and for each output made by a softmax the logits before it (so that a
    /// cross-entropy on probabilities can be computed from logits, as Keras' TensorFlow backend
    /// does: exact gradients even for saturated predictions).
    ///
    /// `anySpatialSize` accepts inputs whose height and width differ from the model's (rank and
    /// channels still checked): fully convolutional models on other image sizes.
    func run(_ xs: [Tensor], context: inout ForwardContext, logits wantLogits: Bool,
             anySpatialSize: Bool = false) -> (outputs: [Tensor], logits: [Tensor?]) {
        precondition(xs.count == inputs.count, "\(name): expects \(inputs.count) inputs, got \(xs.count)")
        var values: [ObjectIdentifier: Tensor] = [:]
        var logits: [ObjectIdentifier: Tensor] = [:]
        for (t, x) in zip(inputs, xs) {
            if anySpatialSize {
                precondition(x.rank == t.shape.count + 1 && x.shape.last == t.shape.last,
                             "\(name): input '\(t.name)' expects batches of rank \(t.shape.count + 1) with \(t.shape.last ?? 0) channels, got \(x.shape)")
            } else {
                precondition(Array(x.shape.dropFirst()) == t.shape,
                             "\(name): input '\(t.name)' expects batches of shape [N] + \(t.shape), got \(x.shape)")
            }
            values[ObjectIdentifier(t)] = x
        }
        var i = 0
        while i < nodes.count {
            let n = nodes[i]
            let args = n.inputs.map { values[ObjectIdentifier($0)]! }
            if fusibleWithNext[i], n.layer!.activityRegularizer == nil, nodes[i + 1].layer!.activityRegularizer == nil,
               let y = n.layer!.forward(args, fusedWith: nodes[i + 1].layer!, context: &context) {
                values[ObjectIdentifier(nodes[i + 1])] = y
                for id in releaseAfter[i] + releaseAfter[i + 1] { values[id] = nil }
                i += 2
                continue
            }
            if wantLogits && outputs.contains(where: { $0 === n }) {
                let (y, z) = n.layer!.forwardWithLogits(args, context: &context)
                values[ObjectIdentifier(n)] = y
                if let z { logits[ObjectIdentifier(n)] = z }
            } else {
                values[ObjectIdentifier(n)] = n.layer!.forward(args, context: &context)
            }
            if let r = n.layer!.activityRegularizer, let y = values[ObjectIdentifier(n)] {
                context.losses.append(r.penalty(y) / Float(Swift.max(y.shape.first ?? 1, 1)))
            }
            for id in releaseAfter[i] { values[id] = nil }
            i += 1
        }
        return (outputs.map { values[ObjectIdentifier($0)]! }, outputs.map { logits[ObjectIdentifier($0)] })
    }

    /// One batch through a single-input, single-output model (inference by default).
    public func callAsFunction(_ x: Tensor, training: Bool = false) -> Tensor {
        var ctx = ForwardContext(training: training)
        return forward([x], context: &ctx)[0]
    }

    /// The values of every parameter, in `parameters` order (Keras' get_weights).
    public func getWeights() -> [Tensor] { parameters.map { $0.value.detached() } }

    /// Replaces every parameter's value (Keras' set_weights); shapes must match.
    public func setWeights(_ weights: [Tensor]) throws {
        let ps = parameters
        guard weights.count == ps.count else {
            throw LayerError("\(name): setWeights got \(weights.count) tensors, the model has \(ps.count) parameters")
        }
        for (i, (p, w)) in zip(ps, weights).enumerated() where p.shape != w.shape {
            throw LayerError("\(name): weight \(i) (\(p.name)) has shape \(p.shape), got \(w.shape)")
        }
        for (p, w) in zip(ps, weights) { p.assign(w) }
    }
}

@resultBuilder
public enum LayerBuilder {
    public static func buildExpression(_ l: Layer) -> [Layer] { [l] }
    public static func buildBlock(_ parts: [Layer]...) -> [Layer] { parts.flatMap { $0 } }
    public static func buildOptional(_ p: [Layer]?) -> [Layer] { p ?? [] }
    public static func buildEither(first p: [Layer]) -> [Layer] { p }
    public static func buildEither(second p: [Layer]) -> [Layer] { p }
    public static func buildArray(_ p: [[Layer]]) -> [Layer] { p.flatMap { $0 } }
}

/// A plain stack of single-input layers.
public final class Sequential: Model {
    public let inputShape: [Int]

    /// `Sequential(inputShape: [28, 28, 1]) { Conv2D(...); Flatten(); Dense(10) }`: each layer is
    /// built as it is added, with the previous layer's output shape.
    public init(inputShape: [Int], name: String = "sequential", @LayerBuilder _ layers: () -> [Layer] = { [] }) {
        self.inputShape = inputShape
        let input = Input(shape: inputShape)
        super.init(inputs: [input], outputs: [input], name: name)
        for l in layers() { add(l) }
    }

    /// Appends a layer (stops with a message if it does not fit the current output shape).
    public func add(_ layer: Layer) {
        do { try addChecked(layer) } catch { preconditionFailure("\(error)") }
    }

    /// Appends a layer, throwing if it does not fit the current output shape.
    public func addChecked(_ layer: Layer) throws {
        let out = try layer.apply([outputs[0]])
        setOutputs([out])
    }
}

extension Model {
    func setOutputs(_ o: [SymbolicTensor]) {
        outputs = o
        rebuildGraph()
    }

    func replaceGraph(inputs i: [SymbolicTensor], outputs o: [SymbolicTensor]) {
        inputs = i
        outputs = o
        rebuildGraph()
    }
}
