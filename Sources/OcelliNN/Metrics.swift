import OcelliTensor

/// Training and evaluation metrics, averaged over the samples seen (Keras' stateful metrics).
public enum Metric: Equatable, Sendable {
    /// Keras' "accuracy": picks categorical, sparse or binary from the label and output shapes.
    case accuracy
    case categoricalAccuracy, sparseCategoricalAccuracy
    case binaryAccuracy(threshold: Float = 0.5)
    case topKCategoricalAccuracy(k: Int = 5)
    case sparseTopKCategoricalAccuracy(k: Int = 5)
    case meanSquaredError, meanAbsoluteError

    /// The name in logs and History (Keras' names).
    public var name: String {
        switch self {
        case .accuracy: return "accuracy"
        case .categoricalAccuracy: return "categorical_accuracy"
        case .sparseCategoricalAccuracy: return "sparse_categorical_accuracy"
        case .binaryAccuracy: return "binary_accuracy"
        case .topKCategoricalAccuracy: return "top_k_categorical_accuracy"
        case .sparseTopKCategoricalAccuracy: return "sparse_top_k_categorical_accuracy"
        case .meanSquaredError: return "mean_squared_error"
        case .meanAbsoluteError: return "mean_absolute_error"
        }
    }

    /// Per-sample values [N] (no gradients).
    public func values(_ yTrue: Tensor, _ yPred: Tensor) -> [Float] {
        let n = yPred.shape.first ?? 0
        let c = yPred.rank >= 2 ? yPred.shape.last! : 1
        func rowArgmax(_ t: Tensor) -> [Int] {
            let k = t.shape.last!
            return (0..<(t.count / k)).map { r in
                var best = 0
                for j in 1..<k where t.scalars[r * k + j] > t.scalars[r * k + best] { best = j }
                return best
            }
        }
        func sparseLabels() -> [Int] { yTrue.scalars.map { Int($0) } }
        func topK(_ labels: [Int], _ k: Int) -> [Float] {
            (0..<n).map { r in
                let row = Array(yPred.scalars[(r * c)..<((r + 1) * c)])
                let target = row[labels[r]]
                let better = row.filter { $0 > target }.count
                return better < k ? 1 : 0
            }
        }
        switch self {
        case .accuracy:
            if c == 1 || yTrue.shape == yPred.shape && c == 1 { return Metric.binaryAccuracy().values(yTrue, yPred) }
            if yTrue.shape == yPred.shape { return Metric.categoricalAccuracy.values(yTrue, yPred) }
            return Metric.sparseCategoricalAccuracy.values(yTrue, yPred)
        case .categoricalAccuracy:
            return zip(rowArgmax(yTrue), rowArgmax(yPred)).map { $0 == $1 ? 1 : 0 }
        case .sparseCategoricalAccuracy:
            return zip(sparseLabels(), rowArgmax(yPred)).map { $0 == $1 ? 1 : 0 }
        case .binaryAccuracy(let th):
            let per = zip(yTrue.scalars, yPred.scalars).map { t, p -> Float in ((p > th ? 1 : 0) == t) ? 1 : 0 }
            let m = per.count / Swift.max(n, 1)
            return (0..<n).map { r in per[(r * m)..<((r + 1) * m)].reduce(0, +) / Float(m) }
        case .topKCategoricalAccuracy(let k): return topK(rowArgmax(yTrue), k)
        case .sparseTopKCategoricalAccuracy(let k): return topK(sparseLabels(), k)
        case .meanSquaredError, .meanAbsoluteError:
            let m = yPred.count / Swift.max(n, 1)
            return (0..<n).map { r in
                var s: Float = 0
                for j in 0..<m {
                    let d = yPred.scalars[r * m + j] - yTrue.scalars[r * m + j]
                    s += self == .meanSquaredError ? d * d : Swift.abs(d)
                }
                return s / Float(m)
            }
        }
    }
}

extension Metric {
    /// As a saved model's compile configuration lists it: the name, or the name and its option.
    var savedConfig: JSONValue {
        switch self {
        case .binaryAccuracy(let t): return .object(["class_name": .string(name), "config": .object(["threshold": .number(Double(t))])])
        case .topKCategoricalAccuracy(let k), .sparseTopKCategoricalAccuracy(let k):
            return .object(["class_name": .string(name), "config": .object(["k": .int(k)])])
        default: return .string(name)
        }
    }

    /// The metric `savedConfig` wrote; nil for an unknown name or a bad option.
    init?(saved: JSONValue) {
        let name: String
        var config: [String: JSONValue] = [:]
        if let s = saved.string { name = s } else if let o = SavedObject(json: saved) { name = o.className; config = o.config } else { return nil }
        func k() -> Int? {
            guard let v = config["k"] else { return 5 }
            guard let d = v.double, d >= 1, d < 1e9, d == d.rounded() else { return nil }
            return Int(d)
        }
        switch name {
        case "accuracy": self = .accuracy
        case "categorical_accuracy": self = .categoricalAccuracy
        case "sparse_categorical_accuracy": self = .sparseCategoricalAccuracy
        case "binary_accuracy":
            let t = config["threshold"]?.double ?? 0.5
            guard t.isFinite else { return nil }
            self = .binaryAccuracy(threshold: Float(t))
        case "top_k_categorical_accuracy": guard let k = k() else { return nil }; self = .topKCategoricalAccuracy(k: k)
        case "sparse_top_k_categorical_accuracy": guard let k = k() else { return nil }; self = .sparseTopKCategoricalAccuracy(k: k)
        case "mean_squared_error": self = .meanSquaredError
        case "mean_absolute_error": self = .meanAbsoluteError
        default: return nil
        }
    }
}
