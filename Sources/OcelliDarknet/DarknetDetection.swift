import Foundation
import OcelliTensor
import OcelliVision
import OcelliDetection

/// One box predicted by a YOLO head, in Darknet's form: centre and size relative to the image
/// (0…1), objectness, and one probability per class (objectness × class probability, zero where
/// it is not above the threshold).
public struct DarknetBox: Equatable, Sendable {
    public var x: Float
    public var y: Float
    public var w: Float
    public var h: Float
    public var objectness: Float
    public var probabilities: [Float]

    /// Box corners in pixels of a `width` × `height` image, clipped to the image.
    public func corners(width: Int, height: Int) -> (x1: Float, y1: Float, x2: Float, y2: Float) {
        let W = Float(width), H = Float(height)
        return (min(max((x - w / 2) * W, 0), W), min(max((y - h / 2) * H, 0), H),
                min(max((x + w / 2) * W, 0), W), min(max((y + h / 2) * H, 0), H))
    }
}

/// A final detection: one class of one box, in image pixels.
public struct Detection: Equatable, Sendable {
    public var classIndex: Int
    public var className: String
    public var score: Float
    public var x1: Float
    public var y1: Float
    public var x2: Float
    public var y2: Float

    public init(classIndex: Int, className: String, score: Float, x1: Float, y1: Float, x2: Float, y2: Float) {
        self.classIndex = classIndex; self.className = className; self.score = score
        self.x1 = x1; self.y1 = y1; self.x2 = x2; self.y2 = y2
    }
}

/// How an image was fitted to the network input, so boxes can be mapped back.
public enum InputFit: Sendable, Equatable {
    /// Darknet's letterbox (aspect kept, grey bars): pjreddie's `detect`.
    case letterbox
    /// A plain resize to the input size: AlexeyAB's default and OpenCV's `blobFromImage`.
    case resize
}

@inline(__always) func logistic(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

extension DarknetNetwork {
    /// YOLOv1 networks (`[detection]`) see plainly resized images and their boxes are not letterbox
    /// corrected; `detect` and `map` feed them resized images whatever the requested fit.
    public var usesPlainResize: Bool {
        heads.contains { if case .detection = $0 { return true } else { return false } }
    }

    /// The boxes of every head for image `b` of a batch, as Darknet's `get_network_boxes`:
    /// `[yolo]` heads keep boxes whose objectness is above `threshold`; `[region]` heads give every
    /// box, with objectness zeroed below it. Boxes are corrected from the network input back to
    /// the `imageWidth` × `imageHeight` image for the given fit.
    public func boxes(outputs: [Tensor], batchIndex b: Int = 0, imageWidth: Int, imageHeight: Int,
                      fit: InputFit = .letterbox, threshold: Float = 0.5) -> [DarknetBox] {
        precondition(outputs.count == heads.count, "boxes: \(heads.count) heads, got \(outputs.count) outputs")
        var out: [DarknetBox] = []
        for (head, t) in zip(heads, outputs) {
            switch head {
            case .yolo(let y): decodeYolo(y, t, b, threshold, &out)
            case .region(let r): decodeRegion(r, t, b, threshold, &out)
            case .detection(let d): decodeDetection(d, t, b, threshold, &out)
            }
        }
        // A box with a NaN or infinite value is reported, never drawn or written.
        let before = out.count
        out.removeAll { !($0.x.isFinite && $0.y.isFinite && $0.w.isFinite && $0.h.isFinite && $0.objectness.isFinite
                          && $0.probabilities.allSatisfy(\.isFinite)) }
        if out.count < before {
            StandardError.write("warning: \(before - out.count) boxes of \(config.file) have NaN or infinite values and are left out (the network's output is not finite: damaged weights, or a training that diverged)\n")
        }
        if fit == .letterbox, heads.contains(where: { if case .detection = $0 { return false } else { return true } }) {
            let lb = Letterbox(sourceWidth: imageWidth, sourceHeight: imageHeight, width: width, height: height)
            for i in out.indices {
                let c = lb.darknetSourceBox(x: out[i].x, y: out[i].y, width: out[i].w, height: out[i].h)
                out[i].x = c.x; out[i].y = c.y; out[i].w = c.width; out[i].h = c.height
            }
        }
        return out
    }

    private func decodeYolo(_ head: YoloHead, _ t: Tensor, _ b: Int, _ thresh: Float, _ out: inout [DarknetBox]) {
        let (gh, gw) = (head.gridHeight, head.gridWidth)
        let entries = 5 + head.classes, c = head.mask.count * entries
        precondition(t.shape.count == 4 && Array(t.shape.dropFirst()) == [gh, gw, c], "yolo head \(head.layerIndex): expected [N, \(gh), \(gw), \(c)], got \(t.shape)")
        t.scalars.withUnsafeBufferPointer { p in
            let base = b * gh * gw * c
            for i in 0..<(gh * gw) {
                let row = i / gw, col = i % gw
                for n in 0..<head.mask.count {
                    let e = base + i * c + n * entries
                    let objectness = logistic(p[e + 4])
                    guard objectness > thresh else { continue }
                    let anchor = head.anchors[head.mask[n]]
                    var probs = [Float](repeating: 0, count: head.classes)
                    for j in 0..<head.classes {
                        let prob = objectness * logistic(p[e + 5 + j])
                        probs[j] = prob > thresh ? prob : 0
                    }
                    out.append(DarknetBox(x: (Float(col) + logistic(p[e])) / Float(gw),
                                          y: (Float(row) + logistic(p[e + 1])) / Float(gh),
                                          w: Foundation.exp(p[e + 2]) * anchor.0 / Float(width),
                                          h: Foundation.exp(p[e + 3]) * anchor.1 / Float(height),
                                          objectness: objectness, probabilities: probs))
                }
            }
        }
    }

    private func decodeRegion(_ head: RegionHead, _ t: Tensor, _ b: Int, _ thresh: Float, _ out: inout [DarknetBox]) {
        let (gh, gw) = (head.gridHeight, head.gridWidth)
        let entries = head.coords + 1 + head.classes, c = head.anchors.count * entries
        precondition(t.shape.count == 4 && Array(t.shape.dropFirst()) == [gh, gw, c], "region head \(head.layerIndex): expected [N, \(gh), \(gw), \(c)], got \(t.shape)")
        let classOffset = head.coords + (head.background ? 0 : 1)
        t.scalars.withUnsafeBufferPointer { p in
            let base = b * gh * gw * c
            var classes = [Float](repeating: 0, count: head.classes)
            // Darknet's order: anchor-major, then cells.
            for n in 0..<head.anchors.count {
                for i in 0..<(gh * gw) {
                    let row = i / gw, col = i % gw
                    let e = base + i * c + n * entries
                    let scale = head.background ? 1 : logistic(p[e + head.coords])
                    let objectness: Float = scale > thresh ? scale : 0
                    var probs = [Float](repeating: 0, count: head.classes)
                    if objectness != 0 {
                        if head.softmax {
                            var m = -Float.infinity
                            for j in 0..<head.classes { m = max(m, p[e + classOffset + j]) }
                            var sum: Float = 0
                            for j in 0..<head.classes { classes[j] = Foundation.exp(p[e + classOffset + j] - m); sum += classes[j] }
                            for j in 0..<head.classes { classes[j] /= sum }
                        } else {
                            for j in 0..<head.classes { classes[j] = logistic(p[e + classOffset + j]) }
                        }
                        for j in 0..<head.classes {
                            let prob = scale * classes[j]
                            probs[j] = prob > thresh ? prob : 0
                        }
                    }
                    let anchor = head.anchors[n]
                    out.append(DarknetBox(x: (Float(col) + logistic(p[e])) / Float(gw),
                                          y: (Float(row) + logistic(p[e + 1])) / Float(gh),
                                          w: Foundation.exp(p[e + 2]) * anchor.0 / Float(gw),
                                          h: Foundation.exp(p[e + 3]) * anchor.1 / Float(gh),
                                          objectness: objectness, probabilities: probs))
                }
            }
        }
    }

    /// YOLOv1 (`detection_layer.c` get_detection_detections): class probabilities per cell, then
    /// per cell and box a confidence and x, y, w, h (squared when `sqrt`), relative to the image.
    private func decodeDetection(_ head: DetectionHead, _ t: Tensor, _ b: Int, _ thresh: Float, _ out: inout [DarknetBox]) {
        let side = head.side, cells = side * side
        let total = cells * ((1 + head.coords) * head.num + head.classes)
        precondition(t.count / t.shape[0] == total, "detection head \(head.layerIndex): expected \(total) values per image, got \(t.count / t.shape[0])")
        // The previous layer is flat ([connected]), so its values are in Darknet's own order.
        t.scalars.withUnsafeBufferPointer { all in
            let p = UnsafeBufferPointer(rebasing: all[(b * total)..<((b + 1) * total)])
            for i in 0..<cells {
                let row = i / side, col = i % side
                for n in 0..<head.num {
                    let pIndex = cells * head.classes + i * head.num + n
                    let scale = p[pIndex]
                    let boxIndex = cells * (head.classes + head.num) + (i * head.num + n) * 4
                    var box = DarknetBox(x: (p[boxIndex] + Float(col)) / Float(side), y: (p[boxIndex + 1] + Float(row)) / Float(side),
                                         w: p[boxIndex + 2], h: p[boxIndex + 3], objectness: scale, probabilities: [])
                    if head.sqrt { box.w *= box.w; box.h *= box.h }
                    // forward_detection_layer's softmax over each cell's classes (when softmax=1).
                    var classProbs = (0..<head.classes).map { p[i * head.classes + $0] }
                    if head.softmax {
                        let top = classProbs.max() ?? 0
                        classProbs = classProbs.map { Foundation.exp($0 - top) }
                        let sum = classProbs.reduce(0, +)
                        classProbs = classProbs.map { $0 / sum }
                    }
                    box.probabilities = classProbs.map { c in
                        let prob = scale * c
                        return prob > thresh ? prob : 0
                    }
                    out.append(box)
                }
            }
        }
    }
}

/// Darknet's `do_nms_sort`: boxes with zero objectness are dropped; then for each class the
/// boxes are sorted by that class' probability and every later box overlapping an earlier kept one
/// with IoU > `threshold` loses that class (its probability becomes 0).
public func darknetNMS(_ boxes: inout [DarknetBox], classes: Int, threshold: Float) {
    boxes.removeAll { $0.objectness == 0 }
    guard boxes.count > 1, classes > 0 else { return }
    var probabilities = [Float](repeating: 0, count: boxes.count * classes)
    for (i, b) in boxes.enumerated() { for k in 0..<min(classes, b.probabilities.count) { probabilities[i * classes + k] = b.probabilities[k] } }
    NonMaximumSuppression.darknetSort(boxes: boxes.map { ($0.x, $0.y, $0.w, $0.h) }, objectness: boxes.map(\.objectness),
                                      probabilities: &probabilities, classes: classes, threshold: threshold)
    for i in boxes.indices { for k in 0..<min(classes, boxes[i].probabilities.count) { boxes[i].probabilities[k] = probabilities[i * classes + k] } }
    // Darknet leaves the array in the last class' order; Ocelli orders by the best class
    // probability, highest first.
    boxes.sort { ($0.probabilities.max() ?? 0) > ($1.probabilities.max() ?? 0) }
}

extension DarknetNetwork {
    /// Final detections in image pixels: one per box and class whose probability is above
    /// `threshold` (as Darknet prints them), after per-class NMS at `nmsThreshold` (0 disables it).
    public func detections(outputs: [Tensor], batchIndex: Int = 0, imageWidth: Int, imageHeight: Int,
                           fit: InputFit = .letterbox, threshold: Float = 0.5, nmsThreshold: Float = 0.45,
                           classNames: [String] = []) -> [Detection] {
        var boxes = self.boxes(outputs: outputs, batchIndex: batchIndex, imageWidth: imageWidth, imageHeight: imageHeight,
                               fit: fit, threshold: threshold)
        let classes = heads.first?.classes ?? 0
        if nmsThreshold > 0 { darknetNMS(&boxes, classes: classes, threshold: nmsThreshold) }
        var out: [Detection] = []
        for box in boxes {
            let c = box.corners(width: imageWidth, height: imageHeight)
            for (j, p) in box.probabilities.enumerated() where p > threshold {
                out.append(Detection(classIndex: j, className: j < classNames.count ? classNames[j] : String(j), score: p,
                                     x1: c.x1, y1: c.y1, x2: c.x2, y2: c.y2))
            }
        }
        return out
    }
}
