import OcelliTensor

/// How per-sample losses become the training loss (Keras' default: sum over batch size = mean).
public enum Reduction: String, Sendable { case sumOverBatchSize = "sum_over_batch_size", sum, none }

/// Loss functions with Keras' names, defaults and numerics (probabilities clipped to
/// [1e-7, 1 − 1e-7] when not from logits).
public enum Loss: Equatable, Sendable {
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

    static let epsilon: Float = 1e-7

    /// Per-sample losses: yTrue and yPred [N, ...] → [N] (mean over the non-batch axes for the
    /// element-wise losses, as Keras).
    public func perSample(_ yTrue: Tensor, _ yPred: Tensor) -> Tensor {
        let axes = Array(1..<Swift.max(yPred.rank, 1))
        func meanLast(_ t: Tensor) -> Tensor { t.rank > 1 ? t.mean(axes: [-1]).reshapedToBatch() : t }
        switch self {
        case let .categoricalCrossentropy(fromLogits, ls):
            if fromLogits { return Tensor.softmaxCrossEntropy(logits: yPred, labels: yTrue, labelSmoothing: ls) }
            var t = yTrue
            if ls > 0 { let c = Float(yPred.shape.last!); t = yTrue * (1 - ls) + ls / c }
            let p = (yPred / yPred.sum(axes: [-1], keepDims: true)).clamped(min: Loss.epsilon, max: 1 - Loss.epsilon)
            return -(t * p.log()).sum(axes: [-1])
        case let .sparseCategoricalCrossentropy(fromLogits, ls):
            let idx = yTrue.rank == yPred.rank ? yTrue.squeezingShape(at: [-1]) : yTrue
            if fromLogits { return Tensor.softmaxCrossEntropy(logits: yPred, classIndices: idx, labelSmoothing: ls) }
            if ls > 0 {
                let oneHot = Tensor.oneHot(idx, depth: yPred.shape.last!)
                return Loss.categoricalCrossentropy(fromLogits: false, labelSmoothing: ls).perSample(oneHot, yPred)
            }
            let p = (yPred / yPred.sum(axes: [-1], keepDims: true)).clamped(min: Loss.epsilon, max: 1 - Loss.epsilon)
            return -p.log().takingAlongAxis(idx.expandingShape(at: -1), axis: -1).squeezingShape(at: [-1])
        case let .binaryCrossentropy(fromLogits, ls):
            let t = ls > 0 ? yTrue * (1 - ls) + 0.5 * ls : yTrue
            let bce: Tensor
            if fromLogits {
                // max(x, 0) − x·t + log(1 + e^(−|x|))
                bce = yPred.relu() - yPred * t + (-yPred.abs()).exp().softplusOfLog()
            } else {
                let p = yPred.clamped(min: Loss.epsilon, max: 1 - Loss.epsilon)
                bce = -(t * p.log() + (1 - t) * (1 - p).log())
            }
            return meanLast(bce)
        case let .categoricalFocalCrossentropy(alpha, gamma, fromLogits, ls):
            let c = Float(yPred.shape.last!)
            let t = ls > 0 ? yTrue * (1 - ls) + ls / c : yTrue
            let probabilities = fromLogits ? yPred.softmax() : yPred
            let p = (probabilities / probabilities.sum(axes: [-1], keepDims: true)).clamped(min: Loss.epsilon, max: 1 - Loss.epsilon)
            return ((1 - p).pow(gamma) * alpha * (-t * p.log())).sum(axes: [-1])
        case let .binaryFocalCrossentropy(balance, alpha, gamma, fromLogits, ls):
            let t = ls > 0 ? yTrue * (1 - ls) + 0.5 * ls : yTrue
            let p = fromLogits ? yPred.sigmoid() : yPred
            let bce: Tensor
            if fromLogits {
                bce = yPred.relu() - yPred * t + (-yPred.abs()).exp().softplusOfLog()
            } else {
                let pc = p.clamped(min: Loss.epsilon, max: 1 - Loss.epsilon)
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
            return meanLast(yPred - yTrue * (yPred + Loss.epsilon).log())
        case .kullbackLeiblerDivergence:
            let t = yTrue.clamped(min: Loss.epsilon, max: 1), p = yPred.clamped(min: Loss.epsilon, max: 1)
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
        switch self {
        case let .categoricalCrossentropy(false, ls):
            return Loss.categoricalCrossentropy(fromLogits: true, labelSmoothing: ls).perSample(yTrue, logits)
        case let .sparseCategoricalCrossentropy(false, ls):
            return Loss.sparseCategoricalCrossentropy(fromLogits: true, labelSmoothing: ls).perSample(yTrue, logits)
        case let .categoricalFocalCrossentropy(alpha, gamma, false, ls):
            return Loss.categoricalFocalCrossentropy(alpha: alpha, gamma: gamma, fromLogits: true, labelSmoothing: ls).perSample(yTrue, logits)
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
        switch self {
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
