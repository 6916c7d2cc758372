import OcelliNN
import OcelliTensor
import OcelliVision

/// The course's YOLOv2 loss in Keras: keras-yolo2's `custom_loss` (experiencor/keras-yolo2,
/// frontend.py), as a `Loss` over a `DetectionBatch`.
///
/// The model's output is [N, H, W, anchors, 5 + classes] (or its last two axes flattened): x, y
/// through a sigmoid plus the cell, w, h as exp times the anchor (grid cells), objectness through
/// a sigmoid, class logits. The loss is the sum of four terms, each normalised by its mask count:
///
/// - xy and wh: ½·Σ coord_scale·(true − pred)² at the responsible anchors (absolute grid units;
///   no square root on w and h);
/// - confidence: ½·Σ (IoU(pred, true)·object − pred_conf)², weighted object_scale at responsible
///   anchors and no_object_scale where the prediction's best IoU with every true box of the image
///   is below 0.6 — the target is the IoU itself, and the gradient flows through it;
/// - class: softmax cross-entropy of the true class at responsible anchors, times class_scale.
///
/// During the first `warmupBatches` training batches every anchor also regresses toward its cell's
/// centre and its own shape, the coordinate mask is 1 everywhere, and 10 is added to the loss.
/// `lastTerms` holds the four terms of the last batch. keras-yolo2's warm-up counter also counted
/// validation batches; here `seen` counts training batches only.
public final class KerasYolo2Loss: Loss {
    public typealias Target = DetectionBatch

    /// The anchors (w, h) in grid cells.
    public let anchors: [(Float, Float)]
    public let classes: Int
    public var objectScale: Float, noObjectScale: Float, coordScale: Float, classScale: Float
    public var warmupBatches: Int
    /// True boxes per image for the no-object mask (keras-yolo2's `max_box_per_image`); further
    /// boxes overwrite the first ones, as its generator does.
    public var maxBoxes: Int
    /// Training batches seen so far.
    public var seen: Int
    /// The last batch's terms.
    public private(set) var lastTerms: (xy: Float, wh: Float, confidence: Float, classes: Float) = (0, 0, 0, 0)

    public init(anchors: [(Float, Float)], classes: Int, objectScale: Float = 5, noObjectScale: Float = 1,
                coordScale: Float = 1, classScale: Float = 1, warmupBatches: Int = 0, maxBoxes: Int = 50, seen: Int = 0) {
        self.anchors = anchors; self.classes = classes
        self.objectScale = objectScale; self.noObjectScale = noObjectScale; self.coordScale = coordScale; self.classScale = classScale
        self.warmupBatches = warmupBatches; self.maxBoxes = maxBoxes; self.seen = seen
    }

    public var name: String { "yolo2_loss" }

    /// keras-yolo2's two target tensors for a batch on an H × W grid: `yTrue` [N, H, W, B, 5 + C]
    /// (x, y, w, h in grid units at the responsible cell and anchor — the anchor of the best shape
    /// IoU, the first on a tie —, objectness 1, the class bits, which add up when two objects
    /// share a slot) and `trueBoxes` [N, maxBoxes, 4] (every box, a ring buffer).
    public func targets(_ batch: DetectionBatch, gridHeight h: Int, gridWidth w: Int) throws -> (yTrue: [Float], trueBoxes: [Float]) {
        let b = anchors.count, e = 5 + classes
        var y = [Float](repeating: 0, count: batch.count * h * w * b * e)
        var boxes = [Float](repeating: 0, count: batch.count * maxBoxes * 4)
        let cellW = Float(batch.width) / Float(w), cellH = Float(batch.height) / Float(h)
        for (n, objects) in batch.objects.enumerated() {
            var slot = 0
            for o in objects {
                guard o.classIndex >= 0 && o.classIndex < classes else {
                    throw TrainingError("yolo2 loss: a box has class \(o.classIndex); the model predicts classes 0..<\(classes)")
                }
                let cx = Float(o.xmin + o.xmax) / 2 / cellW, cy = Float(o.ymin + o.ymax) / 2 / cellH
                let bw = Float(o.xmax - o.xmin) / cellW, bh = Float(o.ymax - o.ymin) / cellH
                guard cx.isFinite, cy.isFinite, bw > 0, bh > 0, bw.isFinite, bh.isFinite else { continue }
                let gx = Int(cx), gy = Int(cy)
                guard gx >= 0, gx < w, gy >= 0, gy < h else { continue }  // keras-yolo2 drops these too
                var best = -1, bestIoU: Float = -1
                for (k, a) in anchors.enumerated() {
                    let inter = Swift.min(bw, a.0) * Swift.min(bh, a.1)
                    let iou = inter / (bw * bh + a.0 * a.1 - inter)
                    if bestIoU < iou { best = k; bestIoU = iou }
                }
                let base = (((n * h + gy) * w + gx) * b + best) * e
                y[base] = cx; y[base + 1] = cy; y[base + 2] = bw; y[base + 3] = bh; y[base + 4] = 1
                y[base + 5 + o.classIndex] += 1
                let t = (n * maxBoxes + slot) * 4
                boxes[t] = cx; boxes[t + 1] = cy; boxes[t + 2] = bw; boxes[t + 3] = bh
                slot = (slot + 1) % maxBoxes
            }
        }
        return (y, boxes)
    }

    /// The loss of raw predictions [N, H, W, B, 5 + C] against keras-yolo2's targets; `warm`:
    /// a warm-up batch. Returns the total and the four terms.
    public func loss(predictions p: Tensor, yTrue: [Float], trueBoxes: [Float], warm: Bool)
        -> (total: Tensor, xy: Tensor, wh: Tensor, confidence: Tensor, classes: Tensor) {
        let (n, h, w, b, e) = (p.shape[0], p.shape[1], p.shape[2], p.shape[3], p.shape[4])
        let count = n * h * w * b
        var grid = [Float](repeating: 0, count: h * w * 2)
        for j in 0..<h { for i in 0..<w { grid[(j * w + i) * 2] = Float(i); grid[(j * w + i) * 2 + 1] = Float(j) } }
        let cellGrid = Tensor(shape: [1, h, w, 1, 2], scalars: grid)
        let anchorWH = Tensor(shape: [1, 1, 1, b, 2], scalars: anchors.flatMap { [$0.0, $0.1] })

        let predXY = p.sliced(axis: 4, 0..<2).sigmoid() + cellGrid
        let predWH = p.sliced(axis: 4, 2..<4).exp() * anchorWH
        let predConf = p.sliced(axis: 4, 4..<5).sigmoid()
        let predClass = p.sliced(axis: 4, 5..<e)

        // Constants from the targets.
        var trueXY = [Float](repeating: 0, count: count * 2), trueWH = trueXY
        var object = [Float](repeating: 0, count: count), onehot = [Float](repeating: 0, count: count * (e - 5))
        for s in 0..<count {
            let base = s * e
            trueXY[2 * s] = yTrue[base]; trueXY[2 * s + 1] = yTrue[base + 1]
            trueWH[2 * s] = yTrue[base + 2]; trueWH[2 * s + 1] = yTrue[base + 3]
            object[s] = yTrue[base + 4]
            // argmax of the class bits, the first on a tie (tf.argmax)
            var best = 0
            for k in 1..<(e - 5) where yTrue[base + 5 + k] > yTrue[base + 5 + best] { best = k }
            onehot[s * (e - 5) + best] = 1
        }
        // The no-object mask: the best IoU of each predicted box with the image's true boxes.
        let px = predXY.scalars, pwh = predWH.scalars
        let slots = trueBoxes.count / Swift.max(1, n * 4)
        var confMask = [Float](repeating: 0, count: count)
        for s in 0..<count {
            let img = s / (h * w * b)
            var best: Float = 0
            for t in 0..<slots {
                let q = (img * slots + t) * 4
                let (tx, ty, tw, th) = (trueBoxes[q], trueBoxes[q + 1], trueBoxes[q + 2], trueBoxes[q + 3])
                let ix = Swift.max(Swift.min(px[2 * s] + pwh[2 * s] / 2, tx + tw / 2) - Swift.max(px[2 * s] - pwh[2 * s] / 2, tx - tw / 2), 0)
                let iy = Swift.max(Swift.min(px[2 * s + 1] + pwh[2 * s + 1] / 2, ty + th / 2) - Swift.max(px[2 * s + 1] - pwh[2 * s + 1] / 2, ty - th / 2), 0)
                let inter = ix * iy
                let iou = inter / (pwh[2 * s] * pwh[2 * s + 1] + tw * th - inter)
                if iou > best { best = iou }
            }
            confMask[s] = (best < 0.6 ? 1 : 0) * (1 - object[s]) * noObjectScale + object[s] * objectScale
        }
        var coordMask = object.map { $0 * coordScale }
        let classMask = object.map { $0 * classScale }
        if warm {
            for s in 0..<count where coordMask[s] < coordScale / 2 {
                let cell = s / b, i = cell % w, j = (cell / w) % h
                trueXY[2 * s] += 0.5 + Float(i); trueXY[2 * s + 1] += 0.5 + Float(j)
                trueWH[2 * s] += anchors[s % b].0; trueWH[2 * s + 1] += anchors[s % b].1
            }
            coordMask = Array(repeating: 1, count: count)
        }
        func positives(_ m: [Float]) -> Float { Float(m.reduce(0) { $0 + ($1 > 0 ? 1 : 0) }) + 1e-6 }

        // The confidence target: the IoU of the predicted and the true box at each slot (with its gradient).
        let tXY = Tensor(shape: [n, h, w, b, 2], scalars: trueXY), tWH = Tensor(shape: [n, h, w, b, 2], scalars: trueWH)
        let yXY = Tensor(shape: [n, h, w, b, 2], scalars: (0..<count).flatMap { [yTrue[$0 * e], yTrue[$0 * e + 1]] })
        let yWH = Tensor(shape: [n, h, w, b, 2], scalars: (0..<count).flatMap { [yTrue[$0 * e + 2], yTrue[$0 * e + 3]] })
        let intersect = (Tensor.minimum(predXY + predWH / 2, yXY + yWH / 2) - Tensor.maximum(predXY - predWH / 2, yXY - yWH / 2)).relu()
        let interArea = intersect.sliced(axis: 4, 0..<1) * intersect.sliced(axis: 4, 1..<2)
        let predArea = predWH.sliced(axis: 4, 0..<1) * predWH.sliced(axis: 4, 1..<2)
        let trueArea = yWH.sliced(axis: 4, 0..<1) * yWH.sliced(axis: 4, 1..<2)
        let iou = interArea / (predArea + trueArea - interArea)
        let trueConf = iou * Tensor(shape: [n, h, w, b, 1], scalars: object)

        let coord = Tensor(shape: [n, h, w, b, 1], scalars: coordMask)
        let lossXY = ((tXY - predXY).square() * coord).sum() / positives(coordMask) / 2
        let lossWH = ((tWH - predWH).square() * coord).sum() / positives(coordMask) / 2
        let lossConf = ((trueConf - predConf).square() * Tensor(shape: [n, h, w, b, 1], scalars: confMask)).sum() / positives(confMask) / 2
        let crossEntropy = -(Tensor(shape: [n, h, w, b, e - 5], scalars: onehot) * predClass.logSoftmax()).sum(axes: [4], keepDims: true)
        let lossClass = (crossEntropy * Tensor(shape: [n, h, w, b, 1], scalars: classMask)).sum() / positives(classMask)
        var total = lossXY + lossWH + lossConf + lossClass
        if warm { total = total + 10 }
        return (total, lossXY, lossWH, lossConf, lossClass)
    }

    public func batchLoss(target: DetectionBatch, outputs: ModelOutputs) throws -> Tensor {
        var p = outputs.prediction
        let (b, e) = (anchors.count, 5 + classes)
        if p.rank == 4 && p.shape[3] == b * e { p = p.reshaped([p.shape[0], p.shape[1], p.shape[2], b, e]) }
        guard p.rank == 5, p.shape[3] == b, p.shape[4] == e, p.shape[0] == target.count else {
            throw TrainingError("yolo2 loss: the output has shape \(p.shape); expected [\(target.count), height, width, \(b), \(e)] (\(b) anchors, 5 + \(classes) classes)")
        }
        let (yTrue, trueBoxes) = try targets(target, gridHeight: p.shape[1], gridWidth: p.shape[2])
        let r = loss(predictions: p, yTrue: yTrue, trueBoxes: trueBoxes, warm: seen < warmupBatches)
        if outputs.training { seen += 1 }
        lastTerms = (r.xy.scalar, r.wh.scalar, r.confidence.scalar, r.classes.scalar)
        return r.total
    }
}
