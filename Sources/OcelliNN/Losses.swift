import OcelliTensor

/// How per-sample losses become the training loss (Keras' default: sum over batch size = mean).
public enum Reduction: String, Sendable { case sumOverBatchSize = "sum_over_batch_size", sum, none }

/// What a loss sees of one batch's forward pass.
public struct ModelOutputs {
    /// One tensor per model output, [N, ...].
    public let outputs: [Tensor]
    /// Per output: the logits before its softmax when a softmax made it, else nil. A
    /// cross-entropy on probabilities computed from them stays exact where the probabilities
    /// saturate (Keras' TensorFlow backend does the same).
    public let logits: [Tensor?]
    /// True when the outputs come from a training step (the weights will be updated), false in
    /// `evaluate`: a loss that counts what it has trained on (Darknet's `seen`) counts only then.
    public let training: Bool

    public init(outputs: [Tensor], logits: [Tensor?]? = nil, training: Bool = false) {
        self.outputs = outputs
        self.logits = logits ?? outputs.map { _ in nil }
        self.training = training
    }

    /// The first (for most models the only) output.
    public var prediction: Tensor { outputs[0] }
}

/// A training objective for `compile`/`fit`/`evaluate`: the loss of one batch, from the model's
/// outputs and the batch's targets.
///
/// `Target` is whatever the data source yields beside the inputs: a tensor for Keras' losses
/// (`KerasLoss`), a batch of boxes for a detector's loss, class labels for an embedding loss.
/// The result is a scalar recorded on the tape (for Keras' losses the mean over the batch); its
/// gradient trains the model. The model adds its regularization penalties itself.
///
/// ```swift
/// struct Centered: Loss {                     // a loss written outside the library
///     var name: String { "centered_mse" }
///     func batchLoss(target: Tensor, outputs: ModelOutputs) throws -> Tensor {
///         (outputs.prediction - target).square().mean()
///     }
/// }
/// model.compile(optimizer: .adam(), loss: Centered())
/// ```
public protocol Loss<Target> {
    associatedtype Target
    /// The name in logs and in a saved model's compile configuration.
    var name: String { get }
    /// The batch's loss: a scalar tensor recorded on the tape.
    func batchLoss(target: Target, outputs: ModelOutputs) throws -> Tensor
    /// What `Model.save` writes so that `Model.load` can rebuild this loss (`LossRegistry`), or
    /// nil when it cannot be saved: the loaded model then needs `compile` again, and says so.
    var savedConfig: SavedObject? { get }
}

extension Loss {
    public var savedConfig: SavedObject? { nil }
}

/// Keras' losses, with Keras' names, defaults and numerics (probabilities clipped to
/// [1e-7, 1 − 1e-7] when not from logits): `.categoricalCrossentropy()`, `.meanSquaredError`, …
public struct KerasLoss: Loss, Equatable, Sendable {
    public typealias Target = Tensor

    public enum Function: Equatable, Sendable {
        case categoricalCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0)
        /// Integer class labels; `labelSmoothing` as in the categorical loss (an Ocelli extension:
        /// Keras' sparse loss has none).
        case sparseCategoricalCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0)
        case binaryCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0)
        /// Focal loss (Lin et al.) on softmax outputs, Keras 3's CategoricalFocalCrossentropy:
        /// Σ −α·(1 − p)^γ·t·log p over classes.
        case categoricalFocalCrossentropy(alpha: Float = 0.25, gamma: Float = 2, fromLogits: Bool = false, labelSmoothing: Float = 0)
        /// Focal loss on sigmoid outputs, Keras 3's BinaryFocalCrossentropy: mean over the last axis
        /// of (1 − p_t)^γ·BCE, times α_t = α·t + (1 − α)·(1 − t) when `applyClassBalancing`
        /// (with logits, balancing on and α = 0.25 this is torchvision's `sigmoid_focal_loss`).
        case binaryFocalCrossentropy(applyClassBalancing: Bool = false, alpha: Float = 0.25, gamma: Float = 2,
                                     fromLogits: Bool = false, labelSmoothing: Float = 0)
        case meanSquaredError, meanAbsoluteError, hinge, squaredHinge, poisson, kullbackLeiblerDivergence
        case huber(delta: Float = 1)
    }

    public let function: Function
    public init(_ function: Function) { self.function = function }

    public var name: String { kerasName }

    public func batchLoss(target: Tensor, outputs: ModelOutputs) -> Tensor {
        perSample(target, outputs.prediction, logits: outputs.logits.first ?? nil).mean()
    }

    static let epsilon: Float = 1e-7

    /// Per-sample losses: yTrue and yPred [N, ...] → [N] (mean over the non-batch axes for the
    /// element-wise losses, as Keras).
    public func perSample(_ yTrue: Tensor, _ yPred: Tensor) -> Tensor {
        let axes = Array(1..<Swift.max(yPred.rank, 1))
        func meanLast(_ t: Tensor) -> Tensor { t.rank > 1 ? t.mean(axes: [-1]).reshapedToBatch() : t }
        switch function {
        case let .categoricalCrossentropy(fromLogits, ls):
            if fromLogits { return Tensor.softmaxCrossEntropy(logits: yPred, labels: yTrue, labelSmoothing: ls) }
            var t = yTrue
            if ls > 0 { let c = Float(yPred.shape.last!); t = yTrue * (1 - ls) + ls / c }
            let p = (yPred / yPred.sum(axes: [-1], keepDims: true)).clamped(min: KerasLoss.epsilon, max: 1 - KerasLoss.epsilon)
            return -(t * p.log()).sum(axes: [-1])
        case let .sparseCategoricalCrossentropy(fromLogits, ls):
            let idx = yTrue.rank == yPred.rank ? yTrue.squeezingShape(at: [-1]) : yTrue
            if fromLogits { return Tensor.softmaxCrossEntropy(logits: yPred, classIndices: idx, labelSmoothing: ls) }
            if ls > 0 {
                let oneHot = Tensor.oneHot(idx, depth: yPred.shape.last!)
                return KerasLoss.categoricalCrossentropy(fromLogits: false, labelSmoothing: ls).perSample(oneHot, yPred)
            }
            let p = (yPred / yPred.sum(axes: [-1], keepDims: true)).clamped(min: KerasLoss.epsilon, max: 1 - KerasLoss.epsilon)
            return -p.log().takingAlongAxis(idx.expandingShape(at: -1), axis: -1).squeezingShape(at: [-1])
        case let .binaryCrossentropy(fromLogits, ls):
            let t = ls > 0 ? yTrue * (1 - ls) + 0.5 * ls : yTrue
            let bce: Tensor
            if fromLogits {
                // max(x, 0) − x·t + log(1 + e^(−|x|))
                bce = yPred.relu() - yPred * t + (-yPred.abs()).exp().softplusOfLog()
            } else {
                let p = yPred.clamped(min: KerasLoss.epsilon, max: 1 - KerasLoss.epsilon)
                bce = -(t * p.log() + (1 - t) * (1 - p).log())
            }
            return meanLast(bce)
        case let .categoricalFocalCrossentropy(alpha, gamma, fromLogits, ls):
            let c = Float(yPred.shape.last!)
            let t = ls > 0 ? yTrue * (1 - ls) + ls / c : yTrue
            let probabilities = fromLogits ? yPred.softmax() : yPred
            let p = (probabilities / probabilities.sum(axes: [-1], keepDims: true)).clamped(min: KerasLoss.epsilon, max: 1 - KerasLoss.epsilon)
            return ((1 - p).pow(gamma) * alpha * (-t * p.log())).sum(axes: [-1])
        case let .binaryFocalCrossentropy(balance, alpha, gamma, fromLogits, ls):
            let t = ls > 0 ? yTrue * (1 - ls) + 0.5 * ls : yTrue
            let p = fromLogits ? yPred.sigmoid() : yPred
            let bce: Tensor
            if fromLogits {
                bce = yPred.relu() - yPred * t + (-yPred.abs()).exp().softplusOfLog()
            } else {
                let pc = p.clamped(min: KerasLoss.epsilon, max: 1 - KerasLoss.epsilon)
                bce = -(t * pc.log() + (1 - t) * (1 - pc).log())
            }
            let pt = t * p + (1 - t) * (1 - p)
            var focal = (1 - pt).pow(gamma) * bce
            if balance { focal = focal * (t * alpha + (1 - t) * (1 - alpha)) }
            return meanLast(focal)
        case .meanSquaredError: return (yPred - yTrue).square().mean(axes: axes).reshapedToBatch()
        case .meanAbsoluteError: return (yPred - yTrue).abs().mean(axes: axes).reshapedToBatch()
        case .hinge:
            return meanLast((1 - signedLabels(yTrue) * yPred).relu())
        case .squaredHinge:
            return meanLast((1 - signedLabels(yTrue) * yPred).relu().square())
        case .poisson:
            return meanLast(yPred - yTrue * (yPred + KerasLoss.epsilon).log())
        case .kullbackLeiblerDivergence:
            let t = yTrue.clamped(min: KerasLoss.epsilon, max: 1), p = yPred.clamped(min: KerasLoss.epsilon, max: 1)
            return (t * (t / p).log()).sum(axes: [-1])
        case .huber(let d):
            let e = (yPred - yTrue).abs()
            let quadratic = e.clamped(min: 0, max: d)
            let linear = e - quadratic
            return meanLast(0.5 * quadratic.square() + d * linear)
        }
    }

    /// Per-sample losses, from `logits` (the input of the softmax that made `yPred`) when the loss
    /// is a cross-entropy on probabilities: the same value without clipping, and gradients that
    /// do not vanish for confidently wrong predictions (Keras' TensorFlow backend does the same).
    public func perSample(_ yTrue: Tensor, _ yPred: Tensor, logits: Tensor?) -> Tensor {
        guard let logits else { return perSample(yTrue, yPred) }
        switch function {
        case let .categoricalCrossentropy(false, ls):
            return KerasLoss.categoricalCrossentropy(fromLogits: true, labelSmoothing: ls).perSample(yTrue, logits)
        case let .sparseCategoricalCrossentropy(false, ls):
            return KerasLoss.sparseCategoricalCrossentropy(fromLogits: true, labelSmoothing: ls).perSample(yTrue, logits)
        case let .categoricalFocalCrossentropy(alpha, gamma, false, ls):
            return KerasLoss.categoricalFocalCrossentropy(alpha: alpha, gamma: gamma, fromLogits: true, labelSmoothing: ls).perSample(yTrue, logits)
        default:
            return perSample(yTrue, yPred)
        }
    }

    /// Keras' hinge losses take labels in {0, 1} or {−1, 1}; 0/1 labels are mapped to ±1.
    private func signedLabels(_ y: Tensor) -> Tensor {
        y.scalars.allSatisfy { $0 == 0 || $0 == 1 } ? y * 2 - 1 : y
    }

    /// The reduced loss.
    public func callAsFunction(_ yTrue: Tensor, _ yPred: Tensor, reduction: Reduction = .sumOverBatchSize) -> Tensor {
        let l = perSample(yTrue, yPred)
        switch reduction {
        case .sumOverBatchSize: return l.mean()
        case .sum: return l.sum()
        case .none: return l
        }
    }

    public var kerasName: String {
        switch function {
        case .categoricalCrossentropy: return "categorical_crossentropy"
        case .sparseCategoricalCrossentropy: return "sparse_categorical_crossentropy"
        case .binaryCrossentropy: return "binary_crossentropy"
        case .categoricalFocalCrossentropy: return "categorical_focal_crossentropy"
        case .binaryFocalCrossentropy: return "binary_focal_crossentropy"
        case .meanSquaredError: return "mean_squared_error"
        case .meanAbsoluteError: return "mean_absolute_error"
        case .hinge: return "hinge"
        case .squaredHinge: return "squared_hinge"
        case .poisson: return "poisson"
        case .kullbackLeiblerDivergence: return "kl_divergence"
        case .huber: return "huber"
        }
    }
}

extension Tensor {
    /// log(1 + self) for self = e^(−|x|) ∈ (0, 1].
    fileprivate func softplusOfLog() -> Tensor { (self + 1).log() }
    /// [N, 1…] → [N].
    fileprivate func reshapedToBatch() -> Tensor { rank <= 1 ? self : reshaped([shape[0]]) }
}

// Keras' losses spelled as in Keras: `compile(optimizer: .adam(), loss: .categoricalCrossentropy())`.
extension Loss where Self == KerasLoss {
    public static func categoricalCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0) -> KerasLoss {
        KerasLoss(.categoricalCrossentropy(fromLogits: fromLogits, labelSmoothing: labelSmoothing))
    }
    public static func sparseCategoricalCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0) -> KerasLoss {
        KerasLoss(.sparseCategoricalCrossentropy(fromLogits: fromLogits, labelSmoothing: labelSmoothing))
    }
    public static func binaryCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0) -> KerasLoss {
        KerasLoss(.binaryCrossentropy(fromLogits: fromLogits, labelSmoothing: labelSmoothing))
    }
    public static func categoricalFocalCrossentropy(alpha: Float = 0.25, gamma: Float = 2, fromLogits: Bool = false,
                                                    labelSmoothing: Float = 0) -> KerasLoss {
        KerasLoss(.categoricalFocalCrossentropy(alpha: alpha, gamma: gamma, fromLogits: fromLogits, labelSmoothing: labelSmoothing))
    }
    public static func binaryFocalCrossentropy(applyClassBalancing: Bool = false, alpha: Float = 0.25, gamma: Float = 2,
                                               fromLogits: Bool = false, labelSmoothing: Float = 0) -> KerasLoss {
        KerasLoss(.binaryFocalCrossentropy(applyClassBalancing: applyClassBalancing, alpha: alpha, gamma: gamma,
                                           fromLogits: fromLogits, labelSmoothing: labelSmoothing))
    }
    public static var meanSquaredError: KerasLoss { KerasLoss(.meanSquaredError) }
    public static var meanAbsoluteError: KerasLoss { KerasLoss(.meanAbsoluteError) }
    public static var hinge: KerasLoss { KerasLoss(.hinge) }
    public static var squaredHinge: KerasLoss { KerasLoss(.squaredHinge) }
    public static var poisson: KerasLoss { KerasLoss(.poisson) }
    public static var kullbackLeiblerDivergence: KerasLoss { KerasLoss(.kullbackLeiblerDivergence) }
    public static func huber(delta: Float = 1) -> KerasLoss { KerasLoss(.huber(delta: delta)) }
}

// Saved as Keras names a loss in `compile_config`: the function's name and its options.
extension KerasLoss {
    public var savedConfig: SavedObject? {
        var c: [String: JSONValue] = [:]
        switch function {
        case let .categoricalCrossentropy(l, s), let .sparseCategoricalCrossentropy(l, s), let .binaryCrossentropy(l, s):
            c = ["from_logits": .bool(l), "label_smoothing": .number(Double(s))]
        case let .categoricalFocalCrossentropy(a, g, l, s):
            c = ["alpha": .number(Double(a)), "gamma": .number(Double(g)), "from_logits": .bool(l), "label_smoothing": .number(Double(s))]
        case let .binaryFocalCrossentropy(b, a, g, l, s):
            c = ["apply_class_balancing": .bool(b), "alpha": .number(Double(a)), "gamma": .number(Double(g)),
                 "from_logits": .bool(l), "label_smoothing": .number(Double(s))]
        case .huber(let d): c = ["delta": .number(Double(d))]
        case .meanSquaredError, .meanAbsoluteError, .hinge, .squaredHinge, .poisson, .kullbackLeiblerDivergence: break
        }
        return SavedObject(className: kerasName, config: c)
    }

    /// Rebuilds a loss from `savedConfig`; nil for a name that is not one of Keras' losses.
    public init?(saved: SavedObject) throws {
        let c = saved.config
        func bool(_ k: String, _ d: Bool) throws -> Bool {
            guard let v = c[k] else { return d }
            guard let b = v.bool else { throw SavedObjectError("loss '\(saved.className)': '\(k)' must be true or false, got \(v)") }
            return b
        }
        func float(_ k: String, _ d: Float) throws -> Float {
            guard let v = c[k] else { return d }
            guard let x = v.double, x.isFinite else { throw SavedObjectError("loss '\(saved.className)': '\(k)' must be a finite number, got \(v)") }
            return Float(x)
        }
        switch saved.className {
        case "categorical_crossentropy":
            self = .categoricalCrossentropy(fromLogits: try bool("from_logits", false), labelSmoothing: try float("label_smoothing", 0))
        case "sparse_categorical_crossentropy":
            self = .sparseCategoricalCrossentropy(fromLogits: try bool("from_logits", false), labelSmoothing: try float("label_smoothing", 0))
        case "binary_crossentropy":
            self = .binaryCrossentropy(fromLogits: try bool("from_logits", false), labelSmoothing: try float("label_smoothing", 0))
        case "categorical_focal_crossentropy":
            self = .categoricalFocalCrossentropy(alpha: try float("alpha", 0.25), gamma: try float("gamma", 2),
                                                 fromLogits: try bool("from_logits", false), labelSmoothing: try float("label_smoothing", 0))
        case "binary_focal_crossentropy":
            self = .binaryFocalCrossentropy(applyClassBalancing: try bool("apply_class_balancing", false), alpha: try float("alpha", 0.25),
                                            gamma: try float("gamma", 2), fromLogits: try bool("from_logits", false),
                                            labelSmoothing: try float("label_smoothing", 0))
        case "mean_squared_error": self = .meanSquaredError
        case "mean_absolute_error": self = .meanAbsoluteError
        case "hinge": self = .hinge
        case "squared_hinge": self = .squaredHinge
        case "poisson": self = .poisson
        case "kl_divergence": self = .kullbackLeiblerDivergence
        case "huber": self = .huber(delta: try float("delta", 1))
        default: return nil
        }
    }
}
