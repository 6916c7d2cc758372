import Foundation
import OcelliTensor
import OcelliVision

/// The settings of a COCO box evaluation (pycocotools' `Params` for `iouType='bbox'`).
public struct COCOEvaluationParameters: Equatable, Sendable {
    /// IoU thresholds: 0.50, 0.55, …, 0.95, computed as numpy's `linspace` does (i·step + start, the
    /// last one exactly `stop`) so that comparisons with IoUs agree to the bit.
    public var iouThresholds: [Double]
    /// Recall thresholds: 0, 0.01, …, 1 (101 points), also as `linspace`.
    public var recallThresholds: [Double]
    /// Object-area ranges: all, small (< 32²), medium (32²…96²), large (> 96²), inclusive at both ends.
    public var areaRanges: [(label: String, minimum: Double, maximum: Double)]
    /// The most detections per image and class that count: 1, 10, 100.
    public var maxDetections: [Int]

    public init() {
        iouThresholds = Self.linspace(0.5, 0.95, 10)
        recallThresholds = Self.linspace(0, 1, 101)
        areaRanges = [("all", 0, 1e5 * 1e5), ("small", 0, 32 * 32), ("medium", 32 * 32, 96 * 96), ("large", 96 * 96, 1e5 * 1e5)]
        maxDetections = [1, 10, 100]
    }

    /// numpy's `linspace(start, stop, num)` with `endpoint=True`.
    static func linspace(_ start: Double, _ stop: Double, _ num: Int) -> [Double] {
        let step = (stop - start) / Double(num - 1)
        var y = (0..<num).map { Double($0) * step + start }
        y[num - 1] = stop
        return y
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.iouThresholds == b.iouThresholds && a.recallThresholds == b.recallThresholds && a.maxDetections == b.maxDetections
            && a.areaRanges.elementsEqual(b.areaRanges) { $0.label == $1.label && $0.minimum == $1.minimum && $0.maximum == $1.maximum }
    }
}

/// The result of a COCO evaluation: pycocotools' `eval['precision']`, `eval['recall']` and `stats`.
public struct COCOEvaluationResult: Sendable {
    public var parameters: COCOEvaluationParameters
    public var classNames: [String]
    /// Interpolated precision, row-major [T, R, K, A, M] (IoU thresholds, recall thresholds, classes,
    /// area ranges, max detections); −1 where a class has no ground truth in that area range.
    public var precision: [Double]
    /// Recall reached, row-major [T, K, A, M]; −1 as for `precision`.
    public var recall: [Double]

    var T: Int { parameters.iouThresholds.count }
    var R: Int { parameters.recallThresholds.count }
    var K: Int { classNames.count }
    var A: Int { parameters.areaRanges.count }
    var M: Int { parameters.maxDetections.count }

    public func precision(iou t: Int, recall r: Int, class k: Int, area a: Int, maxDetections m: Int) -> Double {
        precision[(((t * R + r) * K + k) * A + a) * M + m]
    }

    public func recall(iou t: Int, class k: Int, area a: Int, maxDetections m: Int) -> Double {
        recall[((t * K + k) * A + a) * M + m]
    }

    /// pycocotools' `_summarize`: the mean of the entries above −1 for the given IoU threshold (nil:
    /// all of them), area label and max detections; −1 when there are none.
    public func summarize(averagePrecision: Bool, iouThreshold: Double? = nil, area: String = "all",
                          maxDetections: Int = 100, classes: [Int]? = nil) -> Double {
        let ts = iouThreshold.map { v in parameters.iouThresholds.indices.filter { Swift.abs(parameters.iouThresholds[$0] - v) < 1e-12 } }
            ?? Array(parameters.iouThresholds.indices)
        let as_ = parameters.areaRanges.indices.filter { parameters.areaRanges[$0].label == area }
        let ms = parameters.maxDetections.indices.filter { parameters.maxDetections[$0] == maxDetections }
        let ks = classes ?? Array(0..<K)
        var sum = 0.0, count = 0
        for t in ts {
            for k in ks {
                for a in as_ {
                    for m in ms {
                        if averagePrecision {
                            for r in 0..<R {
                                let v = precision(iou: t, recall: r, class: k, area: a, maxDetections: m)
                                if v > -1 { sum += v; count += 1 }
                            }
                        } else {
                            let v = recall(iou: t, class: k, area: a, maxDetections: m)
                            if v > -1 { sum += v; count += 1 }
                        }
                    }
                }
            }
        }
        return count == 0 ? -1 : sum / Double(count)
    }

    /// The 12 numbers of `COCOeval.summarize()` for boxes: AP@[.5:.95], AP@.5, AP@.75, AP small, medium,
    /// large; AR with 1, 10, 100 detections, AR small, medium, large.
    public var stats: [Double] { Self.statDefinitions.map { summarize(averagePrecision: $0.ap, iouThreshold: $0.iou, area: $0.area, maxDetections: $0.maxDets) } }

    static let statDefinitions: [(ap: Bool, iou: Double?, area: String, maxDets: Int)] = [
        (true, nil, "all", 100), (true, 0.5, "all", 100), (true, 0.75, "all", 100),
        (true, nil, "small", 100), (true, nil, "medium", 100), (true, nil, "large", 100),
        (false, nil, "all", 1), (false, nil, "all", 10), (false, nil, "all", 100),
        (false, nil, "small", 100), (false, nil, "medium", 100), (false, nil, "large", 100),
    ]

    /// The 12 lines `COCOeval.summarize()` prints, in its layout, e.g.
    /// ` Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ] = 0.512`.
    public var summaryLines: [String] {
        let values = stats
        let first = parameters.iouThresholds.first ?? 0, last = parameters.iouThresholds.last ?? 0
        return Self.statDefinitions.enumerated().map { i, d in
            let title = d.ap ? "Average Precision" : "Average Recall"
            let kind = d.ap ? "(AP)" : "(AR)"
            let iou = d.iou.map { String(format: "%0.2f", $0) } ?? String(format: "%0.2f:%0.2f", first, last)
            return " " + title.padding(toLength: 18, withPad: " ", startingAt: 0) + " " + kind + " @[ IoU="
                + iou.padding(toLength: Swift.max(9, iou.count), withPad: " ", startingAt: 0)
                + " | area=" + String(repeating: " ", count: Swift.max(0, 6 - d.area.count)) + d.area
                + " | maxDets=" + String(format: "%3d", d.maxDets) + " ] = " + String(format: "%0.3f", values[i])
        }
    }

    /// Per class: AP@[.5:.95] and AP@.5 (area all, 100 detections); nil for a class without ground truth.
    public var perClass: [(className: String, ap: Double?, ap50: Double?)] {
        (0..<K).map { k in
            let ap = summarize(averagePrecision: true, classes: [k])
            let ap50 = summarize(averagePrecision: true, iouThreshold: 0.5, classes: [k])
            return (classNames[k], ap < 0 ? nil : ap, ap50 < 0 ? nil : ap50)
        }
    }
}

/// COCO box evaluation exactly as pycocotools' `COCOeval(iouType='bbox')` `evaluate()` + `accumulate()`:
///
/// - per image and class, detections sorted by score (stable) and cut to the largest `maxDetections`;
///   IoU = intersection / union, or intersection / detection area for a crowd object;
/// - per area range, objects that are crowds or whose area (`ObjectAnnotation.area`: COCO's `area`
///   field when given) lies outside the range are "ignored" and sorted last; at each IoU threshold each
///   detection, best first, takes the unmatched object (crowds may be matched again) of largest IoU
///   ≥ min(threshold, 1 − 1e-10), preferring non-ignored ones; a detection matched to an ignored object,
///   or unmatched and outside the area range, is ignored;
/// - per class, area range and max detections, the images' detections are merged in image order and
///   sorted by score (stable); precision is made monotone and read at the 101 recall thresholds.
///
/// Images are taken in `cocoID` order when every image has one (pycocotools sorts image ids),
/// otherwise in the given order. Differences: a detection matched to an object counts as matched even
/// if that object's COCO id is 0 (pycocotools stores ids and tests them for non-zero).
public enum COCOEvaluation {
    /// Evaluates `detections` against `images`. Throws for a detection naming an unknown image or a
    /// class index outside `classNames`.
    public static func evaluate(images: [AnnotatedImage], detections: [ScoredDetection], classNames: [String],
                                parameters: COCOEvaluationParameters = COCOEvaluationParameters()) throws -> COCOEvaluationResult {
        let K = classNames.count
        let T = parameters.iouThresholds.count, R = parameters.recallThresholds.count
        let A = parameters.areaRanges.count, M = parameters.maxDetections.count
        let maxDet = parameters.maxDetections.max() ?? 100

        let order: [Int]
        if images.allSatisfy({ $0.cocoID != nil }) {
            order = images.indices.sorted { images[$0].cocoID! < images[$1].cocoID! || (images[$0].cocoID! == images[$1].cocoID! && $0 < $1) }
        } else {
            order = Array(images.indices)
        }
        var position: [String: Int] = [:]  // image id -> position in evaluation order
        for (p, i) in order.enumerated() { position[images[i].id] = p }

        // Per class: per image position, the detection indices (input order) and objects.
        var detsByClass = [[Int: [Int]]](repeating: [:], count: K)
        for (d, det) in detections.enumerated() {
            guard let p = position[det.imageID] else {
                throw DetectionEvaluationError(entry: d, message: "unknown image id \"\(det.imageID)\" (not an image of the ground truth)")
            }
            guard det.classIndex >= 0 && det.classIndex < K else {
                throw DetectionEvaluationError(entry: d, message: "class index \(det.classIndex) is out of range: there are \(K) classes")
            }
            detsByClass[det.classIndex][p, default: []].append(d)
        }
        var gtsByClass = [[Int: [ObjectAnnotation]]](repeating: [:], count: K)
        for (p, i) in order.enumerated() {
            for object in images[i].objects {
                guard object.classIndex >= 0 && object.classIndex < K else {
                    throw DetectionEvaluationError(message: "image \(images[i].id): object of class index \(object.classIndex) but there are \(K) class names")
                }
                gtsByClass[object.classIndex][p, default: []].append(object)
            }
        }

        var precision = [Double](repeating: -1, count: T * R * K * A * M)
        var recall = [Double](repeating: -1, count: T * K * A * M)
        let thresholds = parameters.iouThresholds.map { Swift.min($0, 1 - 1e-10) }

        for k in 0..<K {
            let positions = Set(detsByClass[k].keys).union(gtsByClass[k].keys).sorted()
            // Per area range: every image's records, concatenated in image order.
            var records = [[ImageRecord]](repeating: [], count: A)
            for p in positions {
                let gts = gtsByClass[k][p] ?? []
                var dts = detsByClass[k][p] ?? []
                // Stable sort by score, highest first; keep the best maxDet.
                dts = dts.enumerated().sorted { a, b in
                    let sa = detections[a.element].score, sb = detections[b.element].score
                    return sa > sb || (sa == sb && a.offset < b.offset)
                }.map(\.element)
                if dts.count > maxDet { dts.removeLast(dts.count - maxDet) }
                let D = dts.count, G = gts.count
                // IoU [D, G] with gts in annotation order.
                var ious = [Double](repeating: 0, count: D * G)
                for (di, d) in dts.enumerated() {
                    let det = detections[d]
                    let dArea = (det.xmax - det.xmin) * (det.ymax - det.ymin)
                    for (gi, g) in gts.enumerated() {
                        let w = Swift.min(det.xmax, g.xmax) - Swift.max(det.xmin, g.xmin)
                        if w <= 0 { continue }
                        let h = Swift.min(det.ymax, g.ymax) - Swift.max(det.ymin, g.ymin)
                        if h <= 0 { continue }
                        let inter = w * h
                        let union = g.isCrowd ? dArea : dArea + (g.xmax - g.xmin) * (g.ymax - g.ymin) - inter
                        ious[di * G + gi] = inter / union
                    }
                }
                let dAreas = dts.map { d -> Double in
                    let det = detections[d]
                    return (det.xmax - det.xmin) * (det.ymax - det.ymin)
                }
                let scores = dts.map { detections[$0].score }
                for a in 0..<A {
                    let range = parameters.areaRanges[a]
                    let ignore = gts.map { $0.isCrowd || $0.area < range.minimum || $0.area > range.maximum }
                    // gts with ignored ones last (stable).
                    let gtOrder = gts.indices.filter { !ignore[$0] } + gts.indices.filter { ignore[$0] }
                    let crowd = gtOrder.map { gts[$0].isCrowd }
                    let gtIgnore = gtOrder.map { ignore[$0] }
                    var matched = [Bool](repeating: false, count: T * D)
                    var dtIgnore = [Bool](repeating: false, count: T * D)
                    var gtMatched = [Bool](repeating: false, count: G)
                    for t in 0..<T {
                        for g in 0..<G { gtMatched[g] = false }
                        for di in 0..<D {
                            var best = thresholds[t]
                            var m = -1
                            for (gi, g) in gtOrder.enumerated() {
                                if gtMatched[gi] && !crowd[gi] { continue }
                                if m > -1 && !gtIgnore[m] && gtIgnore[gi] { break }
                                let v = ious[di * G + g]
                                if v < best { continue }
                                best = v
                                m = gi
                            }
                            if m == -1 { continue }
                            dtIgnore[t * D + di] = gtIgnore[m]
                            matched[t * D + di] = true
                            gtMatched[m] = true
                        }
                    }
                    // Unmatched detections outside the area range are ignored.
                    for di in 0..<D where dAreas[di] < range.minimum || dAreas[di] > range.maximum {
                        for t in 0..<T where !matched[t * D + di] { dtIgnore[t * D + di] = true }
                    }
                    let npig = gtIgnore.reduce(0) { $0 + ($1 ? 0 : 1) }
                    if D == 0 && G == 0 { continue }
                    records[a].append(ImageRecord(scores: scores, matched: matched, ignored: dtIgnore, positives: npig))
                }
            }

            for a in 0..<A {
                let recs = records[a]
                let npig = recs.reduce(0) { $0 + $1.positives }
                if npig == 0 { continue }
                for (m, maxDets) in parameters.maxDetections.enumerated() {
                    // Concatenate each image's best maxDets detections, in image order.
                    var scores: [Double] = [], source: [(record: Int, index: Int)] = []
                    for (ri, rec) in recs.enumerated() {
                        for di in 0..<Swift.min(maxDets, rec.scores.count) {
                            scores.append(rec.scores[di])
                            source.append((ri, di))
                        }
                    }
                    let sorted = Array(scores.indices).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
                    let nd = sorted.count
                    var rc = [Double](repeating: 0, count: nd), pr = rc
                    for t in 0..<T {
                        var tp = 0.0, fp = 0.0
                        for (n, s) in sorted.enumerated() {
                            let (ri, di) = source[s]
                            let rec = recs[ri]
                            let D = rec.scores.count
                            if !rec.ignored[t * D + di] {
                                if rec.matched[t * D + di] { tp += 1 } else { fp += 1 }
                            }
                            rc[n] = tp / Double(npig)
                            pr[n] = tp / (fp + tp + Double.ulpOfOne)  // np.spacing(1)
                        }
                        recall[((t * K + k) * A + a) * M + m] = nd > 0 ? rc[nd - 1] : 0
                        if nd > 1 {
                            for i in stride(from: nd - 1, to: 0, by: -1) where pr[i] > pr[i - 1] { pr[i - 1] = pr[i] }
                        }
                        // np.searchsorted(rc, recThrs, side='left'); recall thresholds past the last
                        // detection's recall get precision 0 (pycocotools' q starts as zeros).
                        var i = 0
                        for (r, threshold) in parameters.recallThresholds.enumerated() {
                            while i < nd && rc[i] < threshold { i += 1 }
                            precision[(((t * R + r) * K + k) * A + a) * M + m] = i < nd ? pr[i] : 0
                        }
                    }
                }
            }
        }
        return COCOEvaluationResult(parameters: parameters, classNames: classNames, precision: precision, recall: recall)
    }

    struct ImageRecord {
        var scores: [Double]
        var matched: [Bool]   // [T, D]
        var ignored: [Bool]   // [T, D]
        var positives: Int
    }
}
