import Foundation
import OcelliTensor
import OcelliVision

/// How a precision–recall curve becomes one average precision.
public enum VOCAveragePrecisionMetric: String, CaseIterable, Sendable {
    /// VOC2007's 11-point interpolated AP: the mean over recall thresholds 0, 0.1, …, 1 of the best
    /// precision at a recall at least that high.
    case voc07
    /// VOC2010+'s all-point AP: the area under the precision envelope (precision made monotone from
    /// the right), summed where recall changes.
    case allPoint = "voc"
}

/// One class's result of a VOC evaluation: AP and the curve it came from.
public struct ClassAveragePrecision: Equatable, Sendable {
    public var classIndex: Int
    public var className: String
    /// nil when the class has no non-difficult ground truth (it is then left out of the mean).
    public var averagePrecision: Double?
    /// Ground-truth objects that count (not difficult).
    public var positives: Int
    /// Detections of this class, and how many were true / false positives (the rest hit a difficult object).
    public var detections: Int
    public var truePositives: Int
    public var falsePositives: Int
    /// The curve, one point per detection in decreasing score order: cumulative recall, precision, and
    /// the score of that detection.
    public var recall: [Double]
    public var precision: [Double]
    public var scores: [Double]
}

/// The result of a VOC evaluation over all classes.
public struct VOCEvaluationResult: Equatable, Sendable {
    public var metric: VOCAveragePrecisionMetric
    public var iouThreshold: Double
    public var classes: [ClassAveragePrecision]
    /// The mean of the classes' APs (classes without positives left out); 0 when no class has positives.
    public var meanAveragePrecision: Double {
        let aps = classes.compactMap(\.averagePrecision)
        return aps.isEmpty ? 0 : aps.reduce(0, +) / Double(aps.count)
    }
}

/// PASCAL VOC detection evaluation exactly as py-faster-rcnn's `lib/datasets/voc_eval.py`:
///
/// - per class, detections sorted by score, highest first (ties: input order — numpy's `argsort` is a
///   stable insertion sort up to 16 elements and unspecified beyond);
/// - each detection is compared with every ground-truth box of its class in its image (difficult ones
///   included) and takes the one of largest IoU (the first on ties);
/// - IoU > threshold (strictly, `ovmax > ovthresh`): a difficult object → ignored (neither TP nor FP);
///   an object not yet detected → TP; already detected → FP (a duplicate). Otherwise FP;
/// - recall = TP / positives (non-difficult objects), precision = TP / max(TP + FP, ε);
/// - AP by `VOCAveragePrecisionMetric`.
///
/// Boxes use the package's continuous pixels; VOC's "+1" areas equal them (see `BoundingBox`).
public enum VOCEvaluation {
    /// Evaluates `detections` against the ground truth of `images`. Throws when a detection names an
    /// image that is not among `images` or a class index outside `classNames`.
    public static func evaluate(images: [AnnotatedImage], detections: [ScoredDetection], classNames: [String],
                                metric: VOCAveragePrecisionMetric = .voc07, iouThreshold: Double = 0.5) throws -> VOCEvaluationResult {
        let classCount = classNames.count
        var imageIndex: [String: Int] = [:]
        for (i, image) in images.enumerated() { imageIndex[image.id] = i }
        // Ground truth per (class, image), in annotation order.
        var truth = [[Int: [ObjectAnnotation]]](repeating: [:], count: classCount)
        var positives = [Int](repeating: 0, count: classCount)
        for (i, image) in images.enumerated() {
            for object in image.objects {
                guard object.classIndex >= 0 && object.classIndex < classCount else {
                    throw DetectionEvaluationError(message: "image \(image.id): object of class index \(object.classIndex) but there are \(classCount) class names")
                }
                truth[object.classIndex][i, default: []].append(object)
                if !object.difficult { positives[object.classIndex] += 1 }
            }
        }
        var perClass = [[(image: Int, detection: Int)]](repeating: [], count: classCount)
        for (d, det) in detections.enumerated() {
            guard let i = imageIndex[det.imageID] else {
                throw DetectionEvaluationError(entry: d, message: "unknown image id \"\(det.imageID)\" (not an image of the ground truth)")
            }
            guard det.classIndex >= 0 && det.classIndex < classCount else {
                throw DetectionEvaluationError(entry: d, message: "class index \(det.classIndex) is out of range: there are \(classCount) classes")
            }
            perClass[det.classIndex].append((i, d))
        }

        var results: [ClassAveragePrecision] = []
        for c in 0..<classCount {
            let list = perClass[c]
            let order = Array(list.indices).sorted { a, b in
                let sa = detections[list[a].detection].score, sb = detections[list[b].detection].score
                return sa > sb || (sa == sb && a < b)
            }
            var detected: [Int: [Bool]] = [:]
            var tp = [Double](repeating: 0, count: order.count), fp = tp
            var scores = [Double](repeating: 0, count: order.count)
            for (rank, k) in order.enumerated() {
                let (i, d) = list[k]
                let det = detections[d]
                scores[rank] = det.score
                let gts = truth[c][i] ?? []
                var ovmax = -Double.infinity, jmax = 0
                let dArea = (det.xmax - det.xmin) * (det.ymax - det.ymin)
                for (j, g) in gts.enumerated() {
                    let iw = Swift.max(Swift.min(g.xmax, det.xmax) - Swift.max(g.xmin, det.xmin), 0)
                    let ih = Swift.max(Swift.min(g.ymax, det.ymax) - Swift.max(g.ymin, det.ymin), 0)
                    let inter = iw * ih
                    let union = dArea + (g.xmax - g.xmin) * (g.ymax - g.ymin) - inter
                    let overlap = inter / union
                    if overlap > ovmax { ovmax = overlap; jmax = j }  // np.argmax: the first maximum
                }
                if ovmax > iouThreshold {
                    if !gts[jmax].difficult {
                        if detected[i]?[jmax] == true {
                            fp[rank] = 1
                        } else {
                            tp[rank] = 1
                            if detected[i] == nil { detected[i] = [Bool](repeating: false, count: gts.count) }
                            detected[i]![jmax] = true
                        }
                    }
                } else {
                    fp[rank] = 1
                }
            }
            let npos = Double(positives[c])
            var recall = [Double](repeating: 0, count: order.count), precision = recall
            var ctp = 0.0, cfp = 0.0
            for r in 0..<order.count {
                ctp += tp[r]; cfp += fp[r]
                recall[r] = ctp / npos
                precision[r] = ctp / Swift.max(ctp + cfp, Double.ulpOfOne)
            }
            let ap = positives[c] > 0 ? averagePrecision(recall: recall, precision: precision, metric: metric) : nil
            results.append(ClassAveragePrecision(
                classIndex: c, className: classNames[c], averagePrecision: ap, positives: positives[c],
                detections: order.count, truePositives: Int(ctp), falsePositives: Int(cfp),
                recall: recall, precision: precision, scores: scores))
        }
        return VOCEvaluationResult(metric: metric, iouThreshold: iouThreshold, classes: results)
    }

    /// py-faster-rcnn's `voc_ap`: AP of a curve given as cumulative recall and precision per detection.
    public static func averagePrecision(recall: [Double], precision: [Double], metric: VOCAveragePrecisionMetric) -> Double {
        precondition(recall.count == precision.count, "averagePrecision: \(recall.count) recalls but \(precision.count) precisions")
        switch metric {
        case .voc07:
            var ap = 0.0
            for k in 0...10 {
                let t = Double(k) * 0.1  // np.arange(0., 1.1, 0.1): start + k * step
                var p = 0.0, any = false
                for (r, q) in zip(recall, precision) where r >= t {
                    p = any ? Swift.max(p, q) : q
                    any = true
                }
                ap = ap + p / 11
            }
            return ap
        case .allPoint:
            let mrec = [0.0] + recall + [1.0]
            var mpre = [0.0] + precision + [0.0]
            for i in stride(from: mpre.count - 1, to: 0, by: -1) { mpre[i - 1] = Swift.max(mpre[i - 1], mpre[i]) }
            var ap = 0.0
            for i in 0..<(mrec.count - 1) where mrec[i + 1] != mrec[i] {
                ap += (mrec[i + 1] - mrec[i]) * mpre[i + 1]
            }
            return ap
        }
    }
}
