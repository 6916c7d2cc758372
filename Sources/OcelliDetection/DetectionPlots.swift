import Foundation
import OcelliNN
import OcelliTensor

/// SVG charts for detection evaluation and anchors, drawn with `SVGChart` (the house style of
/// every Ocelli plot).
public enum DetectionPlots {
    private typealias Frame = SVGChart.Panel

    /// One precision–recall curve.
    public struct Curve: Sendable {
        public var name: String
        public var recall: [Double]
        public var precision: [Double]
        public var averagePrecision: Double?

        public init(name: String, recall: [Double], precision: [Double], averagePrecision: Double?) {
            self.name = name
            self.recall = recall
            self.precision = precision
            self.averagePrecision = averagePrecision
        }
    }

    /// Precision (y) against recall (x), both 0…1, one line per curve, with a legend giving each AP.
    public static func precisionRecallSVG(_ curves: [Curve], title: String = "precision-recall", width: Int = 480, height: Int = 400) -> String {
        let frame = Frame(x0: 0, width: Double(width), height: Double(height), xRange: (0, 1), yRange: (0, 1))
        var body = frame.axes(title: title, xLabel: "recall", yLabel: "precision", xTicks: 5, yTicks: 5)
        for (i, c) in curves.enumerated() {
            let color = SVGChart.color(i)
            // Start at recall 0 with the first precision so that a one-point curve still shows.
            var points = c.recall.isEmpty ? [] : [(0.0, c.precision[0])]
            points += zip(c.recall, c.precision).map { ($0, $1) }
            body += frame.polyline(points, color: color, strokeWidth: 1.5, title: c.name)
            let label = c.name + (c.averagePrecision.map { String(format: " (AP %.3f)", $0) } ?? "")
            // The legend sits bottom-left, where precision-recall curves rarely go.
            let shown = Swift.min(curves.count, 20)
            if i < shown {
                body += String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\" font-family=\"sans-serif\" font-size=\"11\">%@</text>\n",
                               frame.left + 8, frame.top + frame.plotH - 8 - 13 * Double(shown - 1 - i), color, SVGChart.escape(label))
            }
        }
        return SVGChart.document(width: width, height: height, body: body)
    }

    /// Anchors: the boxes' (w, h) as grey dots with the centroids as coloured crosses, and, when
    /// `sweep` is given, a second panel of mean IoU against the number of clusters.
    public static func anchorsSVG(sizes: [(width: Double, height: Double)], anchors: [(width: Double, height: Double)],
                                  meanIoU: Double, sweep: [(k: Int, meanIoU: Double)] = [], unit: String = "pixels",
                                  panelWidth: Int = 420, panelHeight: Int = 400) -> String {
        let maxW = Swift.max(1e-9, (sizes.map(\.width) + anchors.map(\.width)).max() ?? 1)
        let maxH = Swift.max(1e-9, (sizes.map(\.height) + anchors.map(\.height)).max() ?? 1)
        let scatter = Frame(x0: 0, width: Double(panelWidth), height: Double(panelHeight), xRange: (0, maxW * 1.05), yRange: (0, maxH * 1.05))
        var body = scatter.axes(title: String(format: "h vs w: %d boxes, %d anchors, mean IoU %.4f", sizes.count, anchors.count, meanIoU),
                                xLabel: "w (\(unit))", yLabel: "h (\(unit))", xTicks: 5, yTicks: 5)
        // At most ~5000 dots: evenly strided, so large data sets stay a small file.
        let stride = Swift.max(1, sizes.count / 5000)
        for i in Swift.stride(from: 0, to: sizes.count, by: stride) {
            body += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"1.5\" fill=\"#7f7f7f\" fill-opacity=\"0.5\"/>\n",
                           scatter.px(sizes[i].width), scatter.py(sizes[i].height))
        }
        for (i, a) in anchors.enumerated() {
            let x = scatter.px(a.width), y = scatter.py(a.height), color = SVGChart.color(i)
            body += String(format: "<path d=\"M%.1f,%.1f l10,10 m0,-10 l-10,10\" stroke=\"%@\" stroke-width=\"2.5\"><title>%.2f x %.2f</title></path>\n",
                           x - 5, y - 5, color, a.width, a.height)
        }
        var total = panelWidth
        if !sweep.isEmpty {
            let ks = sweep.map(\.k)
            let lo = Double(ks.min()!), hi = Double(Swift.max(ks.max()!, ks.min()! + 1))
            let curve = Frame(x0: Double(panelWidth), width: Double(panelWidth), height: Double(panelHeight),
                              xRange: (lo, hi), yRange: (0, 1))
            body += curve.axes(title: "mean IoU vs number of anchors", xLabel: "k", yLabel: "mean IoU",
                               xTicks: Swift.min(10, Int(hi - lo)), yTicks: 5)
            body += curve.polyline(sweep.map { (Double($0.k), $0.meanIoU) }, color: SVGChart.color(0))
            for s in sweep {
                body += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#1f77b4\"><title>k = %d: %.4f</title></circle>\n",
                               curve.px(Double(s.k)), curve.py(s.meanIoU), s.k, s.meanIoU)
            }
            total += panelWidth
        }
        return SVGChart.document(width: total, height: panelHeight, body: body)
    }
}

extension MeanAveragePrecision {
    /// The precision–recall curve of every class: VOC's per-detection curve, or for COCO the
    /// interpolated precision at IoU 0.5 over the 101 recall thresholds (area all, 100 detections).
    public var precisionRecallCurves: [DetectionPlots.Curve] {
        if let voc {
            return voc.classes.map { DetectionPlots.Curve(name: $0.className, recall: $0.recall, precision: $0.precision, averagePrecision: $0.averagePrecision) }
        }
        guard let coco else { return [] }
        let p = coco.parameters
        let m = p.maxDetections.firstIndex(of: 100) ?? p.maxDetections.count - 1
        return coco.classNames.indices.map { k in
            let ps = p.recallThresholds.indices.map { coco.precision(iou: 0, recall: $0, class: k, area: 0, maxDetections: m) }
            let valid = !ps.contains(-1)
            return DetectionPlots.Curve(name: coco.classNames[k], recall: valid ? p.recallThresholds : [],
                                        precision: valid ? ps : [], averagePrecision: classes[k].ap50)
        }
    }

    /// Writes `pr_all.svg` (every class) and `pr_<class>.svg` per class into `directory` (created if
    /// needed). Returns the paths written.
    @discardableResult
    public func writePrecisionRecallCurves(to directory: String) throws -> [String] {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw DetectionEvaluationError(file: directory, message: "cannot create the folder for the precision-recall curves: \(folderFailureReason(directory, error))")
        }
        let curves = precisionRecallCurves
        var written: [String] = []
        let all = (directory as NSString).appendingPathComponent("pr_all.svg")
        try SVGChart.write(DetectionPlots.precisionRecallSVG(curves, title: "precision-recall (\(metric.rawValue))"), to: all)
        written.append(all)
        for c in curves {
            let safe = String(c.name.map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" ? $0 : "_" })
            let path = (directory as NSString).appendingPathComponent("pr_\(safe).svg")
            try SVGChart.write(DetectionPlots.precisionRecallSVG([c], title: c.name), to: path)
            written.append(path)
        }
        return written
    }
}
