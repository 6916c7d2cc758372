import Foundation
import OcelliTensor
import OcelliVision

/// True positives, false positives and false negatives of detections kept at a score threshold, with
/// the precision, recall and F1 they give (Darknet's "for conf_thresh = 0.25, precision = …" line).
public struct DetectionCounts: Equatable, Sendable {
    public var truePositives: Int
    public var falsePositives: Int
    public var falseNegatives: Int

    public init(truePositives: Int = 0, falsePositives: Int = 0, falseNegatives: Int = 0) {
        self.truePositives = truePositives
        self.falsePositives = falsePositives
        self.falseNegatives = falseNegatives
    }

    /// TP / (TP + FP); 0 when nothing was detected.
    public var precision: Double { truePositives + falsePositives == 0 ? 0 : Double(truePositives) / Double(truePositives + falsePositives) }
    /// TP / (TP + FN); 0 when there is nothing to find.
    public var recall: Double { truePositives + falseNegatives == 0 ? 0 : Double(truePositives) / Double(truePositives + falseNegatives) }
    /// The harmonic mean of precision and recall; 0 when both are 0.
    public var f1: Double { precision + recall == 0 ? 0 : 2 * precision * recall / (precision + recall) }

    static func + (a: Self, b: Self) -> Self {
        Self(truePositives: a.truePositives + b.truePositives, falsePositives: a.falsePositives + b.falsePositives,
             falseNegatives: a.falseNegatives + b.falseNegatives)
    }

    /// Counts per class (index = class) of the detections with score ≥ `scoreThreshold`, matched with
    /// VOC's rule (best first; IoU > `iouThreshold` with an unmatched object of the class → TP; with a
    /// difficult object → not counted; otherwise FP). FN = non-difficult objects left unmatched.
    public static func perClass(images: [AnnotatedImage], detections: [ScoredDetection], classCount: Int,
                                scoreThreshold: Double, iouThreshold: Double = 0.5) throws -> [DetectionCounts] {
        let names = (0..<classCount).map { "\($0)" }
        let kept = detections.filter { $0.score >= scoreThreshold }
        let result = try VOCEvaluation.evaluate(images: images, detections: kept, classNames: names,
                                                metric: .allPoint, iouThreshold: iouThreshold)
        return result.classes.map { c in
            DetectionCounts(truePositives: c.truePositives, falsePositives: c.falsePositives,
                            falseNegatives: c.positives - c.truePositives)
        }
    }

    /// The counts of all classes together.
    public static func total(_ counts: [DetectionCounts]) -> DetectionCounts { counts.reduce(DetectionCounts(), +) }
}
