import OcelliTensor

/// How per-sample losses become the training loss (Keras' default: sum over batch size = mean).
public enum Reduction: String, Sendable { case sumOverBatchSize = "sum_over_batch_size", sum, none }

/// Loss functions with Keras' names, defaults and numerics (probabilities clipped to
/// [1e-7, 1 − 1e-7] when not from logits).
public enum Loss: Equatable, Sendable {
    case categoricalCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0)
    case sparseCategoricalCrossentropy(fromLogits: Bool = false)
    case binaryCrossentropy(fromLogits: Bool = false, labelSmoothing: Float = 0)
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
        case let .sparseCategoricalCrossentropy(fromLogits):
            let idx = yTrue.rank == yPred.rank ? yTrue.squeezingShape(at: [-1]) : yTrue
            if fromLogits { return Tensor.softmaxCrossEntropy(logits: yPred, classIndices: idx) }
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
        case .sparseCategoricalCrossentropy(false):
            return Loss.sparseCategoricalCrossentropy(fromLogits: true).perSample(yTrue, logits)
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
