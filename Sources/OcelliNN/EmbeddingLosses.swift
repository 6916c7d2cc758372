import Foundation
import OcelliTensor

/// Losses on embeddings and margins (FaceNet's triplet loss, Hadsell's contrastive loss,
/// torchvision's focal loss), as functions of tensors. Each returns a recorded scalar (or
/// per-sample values) whose gradient reaches the embeddings. `TripletLoss` and `ContrastiveLoss`
/// wrap the first two as `Loss`es, so an embedding model trains through `compile`/`fit`.
public enum EmbeddingLoss {
    /// How triplets are chosen inside a batch (Hermans et al., "In Defense of the Triplet Loss").
    public enum Mining: Sendable {
        /// Every valid (anchor, positive, negative) triplet; the loss is the mean over the
        /// triplets with a positive loss (FaceNet's "batch all").
        case batchAll
        /// For each anchor, its farthest positive and nearest negative; the mean over anchors.
        case batchHard
    }

    /// Euclidean distances between the rows of x [N, D] ([N, N]); `squared` skips the root.
    /// A small ε inside the root keeps the gradient finite where a distance is 0 (the diagonal).
    public static func pairwiseDistances(_ x: Tensor, squared: Bool = false) -> Tensor {
        precondition(x.rank == 2, "pairwiseDistances: embeddings must be [N, D], got \(x.shape)")
        let n = x.shape[0]
        let diff = x.reshaped([n, 1, -1]) - x.reshaped([1, n, -1])
        let d2 = diff.square().sum(axes: [2])
        return squared ? d2 : (d2 + 1e-12).sqrt()
    }

    /// The triplet loss of FaceNet (Schroff et al.) with online mining over a batch:
    /// max(d(a, p) − d(a, n) + margin, 0), with d Euclidean (or squared Euclidean).
    ///
    /// - embeddings: [N, D]; labels: N class ids. Anchors without a positive or a negative in
    ///   the batch do not count.
    public static func tripletLoss(embeddings: Tensor, labels: [Int], margin: Float = 1, mining: Mining = .batchAll,
                                   squared: Bool = false) -> Tensor {
        precondition(embeddings.rank == 2 && embeddings.shape[0] == labels.count,
                     "tripletLoss: embeddings [N, D] and N labels expected, got \(embeddings.shape) and \(labels.count) labels")
        let n = labels.count
        let d = pairwiseDistances(embeddings, squared: squared)
        var positive = [Float](repeating: 0, count: n * n), negative = [Float](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0..<n {
            if i != j && labels[i] == labels[j] { positive[i * n + j] = 1 }
            if labels[i] != labels[j] { negative[i * n + j] = 1 }
        } }
        switch mining {
        case .batchAll:
            // loss[a, p, n] = d[a, p] − d[a, n] + margin for valid triplets.
            let ap = d.reshaped([n, n, 1]), an = d.reshaped([n, 1, n])
            var valid = [Float](repeating: 0, count: n * n * n)
            for a in 0..<n { for p in 0..<n where positive[a * n + p] == 1 { for q in 0..<n where negative[a * n + q] == 1 {
                valid[(a * n + p) * n + q] = 1
            } } }
            let losses = (ap - an + margin).relu() * Tensor(shape: [n, n, n], scalars: valid)
            let active = withoutGradients { losses.scalars.filter { $0 > 1e-16 }.count }
            return losses.sum() / Float(Swift.max(active, 1))
        case .batchHard:
            let pos = Tensor(shape: [n, n], scalars: positive), neg = Tensor(shape: [n, n], scalars: negative)
            let hardestPositive = (d * pos).max(axes: [1])
            // Non-negatives pushed beyond every distance so the minimum ignores them.
            let far = withoutGradients { d.max().scalar } + 1
            let hardestNegative = (d + (1 - neg) * far).min(axes: [1])
            let validAnchors = (0..<n).map { a in
                (0..<n).contains { positive[a * n + $0] == 1 } && (0..<n).contains { negative[a * n + $0] == 1 } ? Float(1) : 0
            }
            let count = validAnchors.reduce(0, +)
            let losses = (hardestPositive - hardestNegative + margin).relu() * Tensor(validAnchors)
            return losses.sum() / Swift.max(count, 1)
        }
    }

    /// PyTorch's TripletMarginLoss on given triplets: max(‖a − p + ε‖ₚ − ‖a − n + ε‖ₚ + margin, 0)
    /// per row (ε = 1e-6, p = 2), averaged.
    public static func tripletMarginLoss(anchor: Tensor, positive: Tensor, negative: Tensor, margin: Float = 1,
                                         epsilon: Float = 1e-6) -> Tensor {
        precondition(anchor.shape == positive.shape && anchor.shape == negative.shape && anchor.rank == 2,
                     "tripletMarginLoss: anchor, positive and negative must be [N, D] of one shape, got \(anchor.shape), \(positive.shape), \(negative.shape)")
        let dp = (anchor - positive + epsilon).square().sum(axes: [1]).sqrt()
        let dn = (anchor - negative + epsilon).square().sum(axes: [1]).sqrt()
        return (dp - dn + margin).relu().mean()
    }

    /// The contrastive loss of Hadsell, Chopra and LeCun: ½·y·d² + ½·(1 − y)·max(margin − d, 0)²
    /// per pair, d = ‖x₁ − x₂‖, y = 1 for similar pairs, 0 for dissimilar; averaged.
    public static func contrastiveLoss(_ x1: Tensor, _ x2: Tensor, similar: Tensor, margin: Float = 1) -> Tensor {
        precondition(x1.shape == x2.shape && x1.rank == 2 && similar.shape == [x1.shape[0]],
                     "contrastiveLoss: pairs [N, D] and N labels expected, got \(x1.shape), \(x2.shape), \(similar.shape)")
        let d2 = (x1 - x2).square().sum(axes: [1])
        let d = (d2 + 1e-12).sqrt()
        return (similar * d2 * 0.5 + (1 - similar) * (margin - d).relu().square() * 0.5).mean()
    }

    /// torchvision's `sigmoid_focal_loss` (RetinaNet), element-wise:
    /// α_t·(1 − p_t)^γ·BCE(logits, targets), with α_t = α·t + (1 − α)·(1 − t) (α < 0: none).
    public static func sigmoidFocalLoss(logits: Tensor, targets: Tensor, alpha: Float = 0.25, gamma: Float = 2) -> Tensor {
        let p = logits.sigmoid()
        let ce = logits.relu() - logits * targets + ((-logits.abs()).exp() + 1).log()
        let pt = p * targets + (1 - p) * (1 - targets)
        var loss = ce * (1 - pt).pow(gamma)
        if alpha >= 0 { loss = loss * (targets * alpha + (1 - targets) * (1 - alpha)) }
        return loss
    }
}

/// Center loss (Wen et al., ECCV 2016): ½·‖xᵢ − c_yᵢ‖² averaged over the batch, with one learned
/// centre per class. The centres are not trained by the optimizer but moved towards their
/// class's features after each batch: c_j ← c_j − α·Σ_{i: yᵢ = j}(c_j − xᵢ) / (1 + n_j).
/// Combine with softmax cross-entropy: L = L_softmax + λ·L_center.
public final class CenterLoss {
    /// [classes, features].
    public private(set) var centers: Tensor
    public let alpha: Float

    public init(classes: Int, features: Int, alpha: Float = 0.5) {
        precondition(classes > 0 && features > 0 && alpha >= 0 && alpha <= 1,
                     "CenterLoss: classes and features must be positive, alpha in [0, 1]")
        centers = Tensor.zeros([classes, features]); self.alpha = alpha
    }

    /// ½·mean‖xᵢ − c_yᵢ‖², recorded so its gradient xᵢ − c_yᵢ reaches the features.
    public func loss(_ features: Tensor, labels: [Int]) -> Tensor {
        precondition(features.rank == 2 && features.shape[0] == labels.count && features.shape[1] == centers.shape[1],
                     "CenterLoss: features [N, \(centers.shape[1])] and N labels expected, got \(features.shape) and \(labels.count) labels")
        for l in labels { precondition(l >= 0 && l < centers.shape[0], "CenterLoss: label \(l) outside 0..<\(centers.shape[0])") }
        let c = centers.gathering(atIndices: labels, alongAxis: 0)
        return (features - c).square().sum(axes: [1]).mean() * 0.5
    }

    /// Moves each class's centre towards the mean of its features in this batch.
    public func update(_ features: Tensor, labels: [Int]) {
        let f = features.detached()
        let (k, d) = (centers.shape[0], centers.shape[1])
        var delta = [Float](repeating: 0, count: k * d), counts = [Float](repeating: 0, count: k)
        for (i, l) in labels.enumerated() {
            counts[l] += 1
            for j in 0..<d { delta[l * d + j] += centers.scalars[l * d + j] - f.scalars[i * d + j] }
        }
        var c = centers.scalars
        for l in 0..<k where counts[l] > 0 {
            for j in 0..<d { c[l * d + j] -= alpha * delta[l * d + j] / (1 + counts[l]) }
        }
        centers = Tensor(shape: [k, d], scalars: c)
    }
}

/// FaceNet's triplet loss with online mining as a `Loss` for `compile`/`fit`: the model's output
/// is the embeddings [N, D], the targets are the N class labels (a tensor [N] or [N, 1] of
/// integer values), and triplets are mined inside each batch (`EmbeddingLoss.tripletLoss`).
///
/// ```swift
/// model.compile(optimizer: .adam(), loss: .triplet(margin: 0.5, mining: .batchHard))
/// try model.fit(x: images, y: labels, batchSize: 64)
/// ```
public struct TripletLoss: Loss, Sendable {
    public typealias Target = Tensor
    public var margin: Float
    public var mining: EmbeddingLoss.Mining
    public var squared: Bool

    public init(margin: Float = 1, mining: EmbeddingLoss.Mining = .batchAll, squared: Bool = false) {
        self.margin = margin; self.mining = mining; self.squared = squared
    }

    public var name: String { "triplet_loss" }

    public func batchLoss(target: Tensor, outputs: ModelOutputs) throws -> Tensor {
        let embeddings = outputs.prediction
        guard embeddings.rank == 2 else {
            throw TrainingError("triplet loss: the model's output must be embeddings [N, D], got \(embeddings.shape)")
        }
        let labels = try classLabels(target, count: embeddings.shape[0], loss: "triplet loss")
        return EmbeddingLoss.tripletLoss(embeddings: embeddings, labels: labels, margin: margin, mining: mining, squared: squared)
    }

    public var savedConfig: SavedObject? {
        SavedObject(className: "TripletLoss", config: ["margin": .number(Double(margin)),
                                                       "mining": .string(mining == .batchAll ? "batch_all" : "batch_hard"),
                                                       "squared": .bool(squared)])
    }

    /// Rebuilds the loss from `savedConfig`.
    init(saved: SavedObject) throws {
        let c = saved.config
        guard let margin = c["margin"]?.double, margin.isFinite, margin >= 0 else {
            throw SavedObjectError("loss 'TripletLoss': 'margin' must be a number ≥ 0, got \(c["margin"] ?? .null)")
        }
        let mining: EmbeddingLoss.Mining
        switch c["mining"]?.string ?? "batch_all" {
        case "batch_all": mining = .batchAll
        case "batch_hard": mining = .batchHard
        case let other: throw SavedObjectError("loss 'TripletLoss': 'mining' must be batch_all or batch_hard, got \(other)")
        }
        self.init(margin: Float(margin), mining: mining, squared: c["squared"]?.bool ?? false)
    }
}

/// Hadsell, Chopra and LeCun's contrastive loss as a `Loss` for a siamese model with two outputs
/// (the embeddings of the two images of each pair, [N, D] each); the targets are 1 for a similar
/// pair and 0 for a dissimilar one ([N] or [N, 1]).
public struct ContrastiveLoss: Loss, Sendable {
    public typealias Target = Tensor
    public var margin: Float

    public init(margin: Float = 1) { self.margin = margin }

    public var name: String { "contrastive_loss" }

    public func batchLoss(target: Tensor, outputs: ModelOutputs) throws -> Tensor {
        guard outputs.outputs.count == 2 else {
            throw TrainingError("contrastive loss: the model needs two outputs (the embeddings of each pair's two images), it has \(outputs.outputs.count)")
        }
        let a = outputs.outputs[0], b = outputs.outputs[1]
        guard a.rank == 2, a.shape == b.shape else {
            throw TrainingError("contrastive loss: the two outputs must be embeddings of one shape [N, D], got \(a.shape) and \(b.shape)")
        }
        guard target.count == a.shape[0] else {
            throw TrainingError("contrastive loss: \(target.count) targets for \(a.shape[0]) pairs")
        }
        return EmbeddingLoss.contrastiveLoss(a, b, similar: target.reshaped([a.shape[0]]), margin: margin)
    }

    public var savedConfig: SavedObject? { SavedObject(className: "ContrastiveLoss", config: ["margin": .number(Double(margin))]) }

    /// Rebuilds the loss from `savedConfig`.
    init(saved: SavedObject) throws {
        guard let margin = saved.config["margin"]?.double, margin.isFinite, margin >= 0 else {
            throw SavedObjectError("loss 'ContrastiveLoss': 'margin' must be a number ≥ 0, got \(saved.config["margin"] ?? .null)")
        }
        self.init(margin: Float(margin))
    }
}

extension Loss where Self == TripletLoss {
    /// FaceNet's triplet loss with online mining (`TripletLoss`).
    public static func triplet(margin: Float = 1, mining: EmbeddingLoss.Mining = .batchAll, squared: Bool = false) -> TripletLoss {
        TripletLoss(margin: margin, mining: mining, squared: squared)
    }
}

extension Loss where Self == ContrastiveLoss {
    /// The contrastive loss of a siamese model (`ContrastiveLoss`).
    public static func contrastive(margin: Float = 1) -> ContrastiveLoss { ContrastiveLoss(margin: margin) }
}

/// The integer class labels in `target` ([N] or [N, 1]), checked.
private func classLabels(_ target: Tensor, count: Int, loss: String) throws -> [Int] {
    guard target.count == count else { throw TrainingError("\(loss): \(target.count) labels for \(count) embeddings") }
    return try target.scalars.map { v in
        guard v.isFinite, v.rounded() == v, abs(v) < 1e9 else { throw TrainingError("\(loss): labels must be integers, got \(v)") }
        return Int(v)
    }
}
