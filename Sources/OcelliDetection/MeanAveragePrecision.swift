import Foundation
import OcelliTensor
import OcelliVision

/// Which mAP to compute.
public enum MeanAveragePrecisionMetric: String, CaseIterable, Sendable {
    /// VOC2007 11-point AP at one IoU threshold.
    case voc07
    /// VOC2010+ all-point AP at one IoU threshold.
    case voc
    /// COCO: AP averaged over IoU 0.50:0.05:0.95, 101 recall points, area ranges, max detections.
    case coco
}

/// The mAP of a set of detections over a data set, ready to print (`text`) or serialise (`json`).
/// This is what `ocelli map` shows, whether the detections come from a file or from a model.
public struct MeanAveragePrecision: Sendable {
    /// One row of the per-class table.
    public struct ClassRow: Equatable, Sendable {
        public var className: String
        /// AP (VOC: at `iouThreshold`; COCO: AP@[.5:.95]); nil when the class has no ground truth.
        public var ap: Double?
        /// COCO only: AP at IoU 0.5.
        public var ap50: Double?
        /// Ground-truth objects that count (VOC: not difficult; COCO: not crowd).
        public var positives: Int
        public var detections: Int
        /// At `scoreThreshold`, IoU `iouThreshold` (VOC matching).
        public var counts: DetectionCounts
    }

    public var metric: MeanAveragePrecisionMetric
    /// The VOC IoU threshold (and the one used for the counts at `scoreThreshold`).
    public var iouThreshold: Double
    public var scoreThreshold: Double
    public var classes: [ClassRow]
    /// The headline: VOC mean AP, or COCO AP@[.5:.95].
    public var map: Double
    /// COCO only: AP@.5 and AP@.75.
    public var map50: Double?
    public var map75: Double?
    /// The full VOC result (curves) when `metric` is voc07 or voc.
    public var voc: VOCEvaluationResult?
    /// The full COCO result when `metric` is coco.
    public var coco: COCOEvaluationResult?

    /// Counts of all classes at `scoreThreshold`.
    public var totalCounts: DetectionCounts { DetectionCounts.total(classes.map(\.counts)) }

    /// Evaluates `detections` against the ground truth in `images`. Throws for detections naming an
    /// unknown image or class. `scoreThreshold` only affects the TP/FP/FN counts.
    public static func evaluate(detections: [ScoredDetection], images: [AnnotatedImage], classNames: [String],
                                metric: MeanAveragePrecisionMetric, iouThreshold: Double = 0.5,
                                scoreThreshold: Double = 0.25) throws -> MeanAveragePrecision {
        let counts = try DetectionCounts.perClass(images: images, detections: detections, classCount: classNames.count,
                                                  scoreThreshold: scoreThreshold, iouThreshold: iouThreshold)
        var detectionsPerClass = [Int](repeating: 0, count: classNames.count)
        for d in detections where d.classIndex >= 0 && d.classIndex < classNames.count { detectionsPerClass[d.classIndex] += 1 }
        switch metric {
        case .voc07, .voc:
            let result = try VOCEvaluation.evaluate(images: images, detections: detections, classNames: classNames,
                                                    metric: metric == .voc07 ? .voc07 : .allPoint, iouThreshold: iouThreshold)
            let rows = result.classes.map { c in
                ClassRow(className: c.className, ap: c.averagePrecision, ap50: nil, positives: c.positives,
                         detections: c.detections, counts: counts[c.classIndex])
            }
            return MeanAveragePrecision(metric: metric, iouThreshold: iouThreshold, scoreThreshold: scoreThreshold,
                                        classes: rows, map: result.meanAveragePrecision, map50: nil, map75: nil, voc: result, coco: nil)
        case .coco:
            let result = try COCOEvaluation.evaluate(images: images, detections: detections, classNames: classNames)
            var positives = [Int](repeating: 0, count: classNames.count)
            for image in images {
                for o in image.objects where !o.isCrowd && o.classIndex >= 0 && o.classIndex < classNames.count { positives[o.classIndex] += 1 }
            }
            let perClass = result.perClass
            let rows = classNames.indices.map { k in
                ClassRow(className: classNames[k], ap: perClass[k].ap, ap50: perClass[k].ap50, positives: positives[k],
                         detections: detectionsPerClass[k], counts: counts[k])
            }
            let stats = result.stats
            return MeanAveragePrecision(metric: metric, iouThreshold: iouThreshold, scoreThreshold: scoreThreshold,
                                        classes: rows, map: stats[0], map50: stats[1], map75: stats[2], voc: nil, coco: result)
        }
    }

    /// The per-class table, the mean, the counts at the score threshold and, for COCO, pycocotools'
    /// 12 summary lines.
    public var text: String {
        let nameWidth = Swift.max(12, classes.map(\.className.count).max() ?? 0)
        func ap(_ v: Double?) -> String { v.map { String(format: "%8.4f", $0) } ?? "       -" }
        var lines: [String] = []
        let isCOCO = metric == .coco
        let apTitle = isCOCO ? "AP" : String(format: "AP@%.2f", iouThreshold)
        lines.append("class".padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                     + apTitle.leftPadded(9) + (isCOCO ? "AP50".leftPadded(9) : "")
                     + "positives".leftPadded(11) + "detections".leftPadded(12))
        for row in classes {
            lines.append(row.className.padding(toLength: nameWidth, withPad: " ", startingAt: 0)
                         + " " + ap(row.ap) + (isCOCO ? " " + ap(row.ap50) : "")
                         + String(row.positives).leftPadded(11) + String(row.detections).leftPadded(12))
        }
        let name: String
        switch metric {
        case .voc07: name = "VOC2007 11-point"
        case .voc: name = "VOC all-point"
        case .coco: name = "COCO"
        }
        if isCOCO {
            lines.append(String(format: "mAP@[.5:.95] = %.4f   mAP@.5 = %.4f   mAP@.75 = %.4f   (%@)", map, map50 ?? -1, map75 ?? -1, name))
        } else {
            lines.append(String(format: "mAP@%.2f = %.4f   (%@)", iouThreshold, map, name))
        }
        let t = totalCounts
        lines.append(String(format: "at score >= %g, IoU > %.2f: TP = %d, FP = %d, FN = %d, precision = %.4f, recall = %.4f, F1 = %.4f",
                            scoreThreshold, iouThreshold, t.truePositives, t.falsePositives, t.falseNegatives,
                            t.precision, t.recall, t.f1))
        if let coco {
            lines.append("")
            lines += coco.summaryLines
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One JSON object: `metric`, `map` (and `map50`, `map75`, `stats` for COCO), `per_class`, and the
    /// counts at the score threshold.
    public var json: String {
        func num(_ v: Double?) -> String {
            guard let v, v.isFinite else { return "null" }
            return "\(v)"
        }
        var fields: [String] = ["\"metric\":\"\(metric.rawValue)\"", "\"map\":\(num(map))"]
        if metric == .coco {
            fields.append("\"map50\":\(num(map50))")
            fields.append("\"map75\":\(num(map75))")
            if let coco { fields.append("\"stats\":[" + coco.stats.map { num($0) }.joined(separator: ",") + "]") }
        } else {
            fields.append("\"iou\":\(num(iouThreshold))")
        }
        let rows = classes.map { r in
            "{\"class\":\(DetectionsFile.jsonString(r.className)),\"ap\":\(num(r.ap))"
                + (metric == .coco ? ",\"ap50\":\(num(r.ap50))" : "")
                + ",\"positives\":\(r.positives),\"detections\":\(r.detections),\"tp\":\(r.counts.truePositives),"
                + "\"fp\":\(r.counts.falsePositives),\"fn\":\(r.counts.falseNegatives)}"
        }
        fields.append("\"per_class\":[" + rows.joined(separator: ",") + "]")
        let t = totalCounts
        fields.append("\"score_threshold\":\(num(scoreThreshold))")
        fields.append("\"tp\":\(t.truePositives),\"fp\":\(t.falsePositives),\"fn\":\(t.falseNegatives),"
                      + "\"precision\":\(num(t.precision)),\"recall\":\(num(t.recall)),\"f1\":\(num(t.f1))")
        return "{" + fields.joined(separator: ",") + "}"
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}
