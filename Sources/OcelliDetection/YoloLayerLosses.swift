import Foundation
import OcelliTensor

// Darknet's two YOLO training losses, one head at a time, transcribed from pjreddie's
// `forward_yolo_layer` (src/yolo_layer.c, YOLOv3) and `forward_region_layer` (src/region_layer.c,
// YOLOv2) with their order of assignment, so that every delta equals Darknet's.
//
// Sign convention. Darknet's `delta` is the *negative* gradient of ½·Σ scale·(target − output)²
// with respect to the layer's outputs after their activation (logistic x, y, objectness and
// classes; softmax classes in [region]). What reaches the logits differs by layer:
//
// - `[yolo]` hands delta to the logits as it is, without the logistic's derivative: for the
//   logistic entries that is the negative gradient of the binary cross-entropy with respect to
//   the logits, for w and h (no activation) of the square;
// - `[region]` multiplies the x, y and objectness deltas by the logistic's derivative σ(1 − σ)
//   first (pjreddie's `backward_region_layer_gpu`; AlexeyAB's forward does it in place; the CPU
//   backward of pjreddie's is commented out): the square *through* the sigmoid. Its softmax class
//   deltas go as they are: the cross-entropy's gradient.
//
// So the loss here, a function of the logits that autodiff can train, is
//
//     Σ scale·BCE(target, σ(z))        over [yolo]'s logistic entries (x, y, objectness, classes)
//   + Σ ½·scale·(target − σ(z))²       over [region]'s x, y and objectness
//   + Σ ½·scale·(z − target)²          over w and h (and [region]'s classes without softmax)
//   + Σ scale·CE(onehot, softmax(z_c)) over matched [region] class blocks,
//
// whose gradient with respect to z is what Darknet gives the logits: −delta, times σ(1 − σ) for
// [region]'s logistic entries. Darknet's printed loss is another number, Σ delta²
// (`YoloLossStatistics.darknetCost`).

/// A ground-truth box as Darknet's loss layers see it: centre and size relative to the network
/// input (0…1), and the class.
public struct TruthBox: Equatable, Sendable {
    public var x: Float, y: Float, w: Float, h: Float
    public var classIndex: Int

    public init(x: Float, y: Float, w: Float, h: Float, classIndex: Int) {
        self.x = x; self.y = y; self.w = w; self.h = h; self.classIndex = classIndex
    }
}

/// What Darknet prints for a head after each batch ("Region Avg IOU: …" / "Region 16 Avg IOU: …").
public struct YoloLossStatistics: Equatable, Sendable {
    /// Mean IoU of each matched truth with the prediction responsible for it.
    public var averageIoU: Float = 0
    /// Mean probability of the true class at the responsible predictions.
    public var classProbability: Float = 0
    /// Mean objectness at the responsible predictions.
    public var objectness: Float = 0
    /// Mean objectness over every prediction of the head.
    public var noObjectness: Float = 0
    /// Share of matched truths predicted with IoU > 0.5 and > 0.75.
    public var recall50: Float = 0
    public var recall75: Float = 0
    /// Truths this head is responsible for.
    public var count: Int = 0
    /// Darknet's loss for the head: Σ delta² over the batch.
    public var darknetCost: Float = 0

    public init() {}

    /// Darknet's printed averages from its running sums (IoU, class, objectness, any-objectness,
    /// recall .5 and .75) over the matched truths and all `predictions`; the cost from `delta`.
    init(sums: (iou: Float, cls: Float, obj: Float, anyObj: Float, recall: Float, recall75: Float), count: Int,
         classCount: Int, predictions: Int, delta: [Float]) {
        if count > 0 {
            averageIoU = sums.iou / Float(count); objectness = sums.obj / Float(count)
            recall50 = sums.recall / Float(count); recall75 = sums.recall75 / Float(count)
        }
        if classCount > 0 { classProbability = sums.cls / Float(classCount) }
        noObjectness = sums.anyObj / Float(Swift.max(1, predictions))
        self.count = count
        darknetCost = delta.reduce(0) { $0 + $1 * $1 }
    }
}

/// The per-element targets a head's loss trains toward, with Darknet's deltas.
struct YoloTargets {
    /// How an element's logit is trained: cross-entropy on the logistic, the square through the
    /// logistic, or the square of the logit itself.
    enum Kind: UInt8 { case none, logistic, sigmoidSquare, linear }
    var kind: [Kind]
    var target: [Float]
    var weight: [Float]
    /// Softmax class blocks of [region] heads: first class element → (class, scale).
    var softmaxBlocks: [Int: (classIndex: Int, scale: Float)] = [:]
    var delta: [Float]
    var statistics = YoloLossStatistics()

    init(count: Int) {
        kind = Array(repeating: .none, count: count)
        target = Array(repeating: 0, count: count)
        weight = Array(repeating: 0, count: count)
        delta = Array(repeating: 0, count: count)
    }

    /// Element `e`'s output `p` (after its activation) trained toward `t` with `scale`: Darknet's
    /// delta = scale·(t − p).
    mutating func set(_ e: Int, _ k: Kind, target t: Float, scale: Float, output p: Float) {
        kind[e] = k; target[e] = t; weight[e] = scale
        delta[e] = scale * (t - p)
    }

    mutating func clear(_ e: Int) {
        kind[e] = .none; target[e] = 0; weight[e] = 0; delta[e] = 0
    }

    /// The differentiable loss of logits `z` (shape [N, H, W, anchors·(5 + classes)]) whose
    /// gradient is −delta; `divisor` divides it (1 for Darknet's sum).
    func loss(_ z: Tensor, anchors: Int, entries: Int, divisor: Float) -> Tensor {
        let shape = z.shape
        var logisticWeight = [Float](repeating: 0, count: kind.count), linearWeight = logisticWeight
        var sigmoidWeight = logisticWeight
        for e in kind.indices {
            switch kind[e] {
            case .logistic: logisticWeight[e] = weight[e]
            case .sigmoidSquare: sigmoidWeight[e] = weight[e]
            case .linear: linearWeight[e] = weight[e]
            case .none: break
            }
        }
        let t = Tensor(shape: shape, scalars: target)
        var total = (Tensor(shape: shape, scalars: linearWeight) * (z - t).square()).sum() * 0.5
        if logisticWeight.contains(where: { $0 != 0 }) {
            total = total + (Tensor(shape: shape, scalars: logisticWeight) * (z.softplus() - t * z)).sum()
        }
        if sigmoidWeight.contains(where: { $0 != 0 }) {
            total = total + (Tensor(shape: shape, scalars: sigmoidWeight) * (z.sigmoid() - t).square()).sum() * 0.5
        }
        if !softmaxBlocks.isEmpty {
            let classes = entries - 5
            var w = [Float](repeating: 0, count: kind.count / entries * classes)
            for (start, block) in softmaxBlocks {
                let anchorIndex = start / entries  // the block's (b, j, i, a) in order
                w[anchorIndex * classes + block.classIndex] = block.scale
            }
            let blocks = z.reshaped([shape[0], shape[1], shape[2], anchors, entries]).sliced(axis: 4, 5..<entries)
            total = total - (Tensor(shape: blocks.shape, scalars: w) * blocks.logSoftmax()).sum()
        }
        return divisor == 1 ? total : total / divisor
    }
}

/// Darknet's box IoU on centre boxes (box.c: overlap on each axis, 0 when disjoint).
@inline(__always)
func darknetIoU(_ ax: Float, _ ay: Float, _ aw: Float, _ ah: Float, _ bx: Float, _ by: Float, _ bw: Float, _ bh: Float) -> Float {
    func overlap(_ x1: Float, _ w1: Float, _ x2: Float, _ w2: Float) -> Float {
        Swift.min(x1 + w1 / 2, x2 + w2 / 2) - Swift.max(x1 - w1 / 2, x2 - w2 / 2)
    }
    let w = overlap(ax, aw, bx, bw), h = overlap(ay, ah, by, bh)
    if w < 0 || h < 0 { return 0 }
    let intersection = w * h
    let union = aw * ah + bw * bh - intersection
    return union > 0 ? intersection / union : 0
}

@inline(__always) private func logistic(_ x: Float) -> Float { 1 / (1 + Foundation.exp(-x)) }

/// The cell of a truth's centre, clamped into the grid (Darknet truncates `x · grid`).
@inline(__always) private func cell(_ v: Float, _ n: Int) -> Int {
    guard v.isFinite else { return 0 }
    return Swift.min(n - 1, Swift.max(0, Int(v * Float(n))))
}

/// The loss of one Darknet `[yolo]` head (YOLOv3): logistic x, y, objectness and classes, anchors
/// in input pixels, `mask` choosing this head's anchors among all of the cfg's.
public struct YoloLayerLoss: Sendable {
    /// Every anchor of the cfg (w, h) in input pixels.
    public var anchors: [(Float, Float)]
    /// The anchors this head predicts (indices into `anchors`).
    public var mask: [Int]
    public var classes: Int
    /// A prediction whose best IoU with a truth exceeds it is not pushed toward "no object".
    public var ignoreThreshold: Float
    /// A prediction whose best IoU exceeds it is trained toward that truth too (1: never).
    public var truthThreshold: Float
    /// Truths per image the layer reads (Darknet's `max=`, 90).
    public var maxBoxes: Int

    public init(anchors: [(Float, Float)], mask: [Int], classes: Int, ignoreThreshold: Float = 0.5,
                truthThreshold: Float = 1, maxBoxes: Int = 90) {
        self.anchors = anchors; self.mask = mask; self.classes = classes
        self.ignoreThreshold = ignoreThreshold; self.truthThreshold = truthThreshold; self.maxBoxes = maxBoxes
    }

    /// Darknet's deltas and the loss targets for logits [N, H, W, mask.count·(5 + classes)] (NHWC)
    /// and each image's truths, for a network input of `inputWidth` × `inputHeight` pixels.
    func targets(logits x: [Float], batch: Int, height gh: Int, width gw: Int, truths: [[TruthBox]],
                 inputWidth: Int, inputHeight: Int) -> YoloTargets {
        let a = mask.count, e = 5 + classes, c = a * e
        let (netW, netH) = (Float(inputWidth), Float(inputHeight))
        var out = x
        for base in Swift.stride(from: 0, to: out.count, by: e) {
            out[base] = logistic(out[base]); out[base + 1] = logistic(out[base + 1])
            for k in 4..<e { out[base + k] = logistic(out[base + k]) }
        }
        var r = YoloTargets(count: x.count)
        var avgIoU: Float = 0, avgCat: Float = 0, avgObj: Float = 0, avgAnyObj: Float = 0
        var recall: Float = 0, recall75: Float = 0, count = 0, classCount = 0

        func box(_ base: Int, _ n: Int, _ i: Int, _ j: Int) -> (Float, Float, Float, Float) {
            ((Float(i) + out[base]) / Float(gw), (Float(j) + out[base + 1]) / Float(gh),
             Foundation.exp(out[base + 2]) * anchors[n].0 / netW, Foundation.exp(out[base + 3]) * anchors[n].1 / netH)
        }
        func deltaBox(_ t: TruthBox, _ base: Int, _ n: Int, _ i: Int, _ j: Int, _ scale: Float) -> Float {
            let p = box(base, n, i, j)
            let iou = darknetIoU(p.0, p.1, p.2, p.3, t.x, t.y, t.w, t.h)
            r.set(base, .logistic, target: t.x * Float(gw) - Float(i), scale: scale, output: out[base])
            r.set(base + 1, .logistic, target: t.y * Float(gh) - Float(j), scale: scale, output: out[base + 1])
            r.set(base + 2, .linear, target: Foundation.log(t.w * netW / anchors[n].0), scale: scale, output: out[base + 2])
            r.set(base + 3, .linear, target: Foundation.log(t.h * netH / anchors[n].1), scale: scale, output: out[base + 3])
            return iou
        }
        // `counted`: Darknet passes no avg_cat from the truth_thresh branch.
        func deltaClass(_ index: Int, _ cls: Int, counted: Bool) {
            if r.delta[index] != 0 {  // Darknet's quirk: a block already trained keeps its other classes
                r.set(index + cls, .logistic, target: 1, scale: 1, output: out[index + cls])
                if counted { avgCat += out[index + cls] }
                return
            }
            for k in 0..<classes {
                r.set(index + k, .logistic, target: k == cls ? 1 : 0, scale: 1, output: out[index + k])
                if k == cls && counted { avgCat += out[index + k] }
            }
        }

        for b in 0..<batch {
            let boxes = Array(truths[b].prefix(maxBoxes))
            for j in 0..<gh { for i in 0..<gw { for n in 0..<a {
                let base = ((b * gh + j) * gw + i) * c + n * e
                let p = box(base, mask[n], i, j)
                var bestIoU: Float = 0, bestT = 0
                for (ti, t) in boxes.enumerated() {
                    let iou = darknetIoU(p.0, p.1, p.2, p.3, t.x, t.y, t.w, t.h)
                    if iou > bestIoU { bestIoU = iou; bestT = ti }
                }
                let obj = base + 4
                avgAnyObj += out[obj]
                r.set(obj, .logistic, target: 0, scale: 1, output: out[obj])
                if bestIoU > ignoreThreshold { r.clear(obj) }
                if bestIoU > truthThreshold {
                    let t = boxes[bestT]
                    r.set(obj, .logistic, target: 1, scale: 1, output: out[obj])
                    deltaClass(base + 5, t.classIndex, counted: false)
                    _ = deltaBox(t, base, mask[n], i, j, 2 - t.w * t.h)
                }
            } } }
            for t in boxes {
                let i = cell(t.x, gw), j = cell(t.y, gh)
                var bestIoU: Float = 0, bestN = 0
                for n in anchors.indices {
                    let iou = darknetIoU(0, 0, anchors[n].0 / netW, anchors[n].1 / netH, 0, 0, t.w, t.h)
                    if iou > bestIoU { bestIoU = iou; bestN = n }
                }
                guard let m = mask.firstIndex(of: bestN) else { continue }
                let base = ((b * gh + j) * gw + i) * c + m * e
                let iou = deltaBox(t, base, bestN, i, j, 2 - t.w * t.h)
                avgObj += out[base + 4]
                r.set(base + 4, .logistic, target: 1, scale: 1, output: out[base + 4])
                deltaClass(base + 5, t.classIndex, counted: true)
                count += 1; classCount += 1
                if iou > 0.5 { recall += 1 }
                if iou > 0.75 { recall75 += 1 }
                avgIoU += iou
            }
        }
        r.statistics = YoloLossStatistics(sums: (avgIoU, avgCat, avgObj, avgAnyObj, recall, recall75), count: count,
                                          classCount: classCount, predictions: gw * gh * a * batch, delta: r.delta)
        return r
    }
}

/// The loss of one Darknet `[region]` head (YOLOv2): logistic x, y and objectness, softmax classes
/// (with `softmax=1`), anchors in grid cells, the scales and switches of the cfg.
public struct RegionLayerLoss: Sendable {
    /// The anchors (w, h) in grid cells.
    public var anchors: [(Float, Float)]
    public var classes: Int
    public var softmax: Bool
    /// A prediction whose best IoU with a truth exceeds it is not pushed toward "no object".
    public var threshold: Float
    public var coordScale: Float
    public var objectScale: Float
    public var noObjectScale: Float
    public var classScale: Float
    /// The objectness target is the IoU of the prediction with its truth instead of 1.
    public var rescore: Bool
    /// The responsible anchor is chosen by the anchors' shapes (else by the predicted boxes').
    public var biasMatch: Bool
    /// Truths per image the layer reads (Darknet: 30).
    public var maxBoxes: Int

    public init(anchors: [(Float, Float)], classes: Int, softmax: Bool = true, threshold: Float = 0.5,
                coordScale: Float = 1, objectScale: Float = 1, noObjectScale: Float = 1, classScale: Float = 1,
                rescore: Bool = false, biasMatch: Bool = false, maxBoxes: Int = 30) {
        self.anchors = anchors; self.classes = classes; self.softmax = softmax; self.threshold = threshold
        self.coordScale = coordScale; self.objectScale = objectScale; self.noObjectScale = noObjectScale
        self.classScale = classScale; self.rescore = rescore; self.biasMatch = biasMatch; self.maxBoxes = maxBoxes
    }

    /// Darknet's deltas and the loss targets for logits [N, H, W, anchors·(5 + classes)] (NHWC);
    /// `seen` is the images trained on including this batch (below 12,800 every prediction is
    /// also pulled toward its anchor, scale 0.01).
    func targets(logits x: [Float], batch: Int, height gh: Int, width gw: Int, truths: [[TruthBox]], seen: Int) -> YoloTargets {
        let a = anchors.count, e = 5 + classes, c = a * e
        var out = x
        for base in Swift.stride(from: 0, to: out.count, by: e) {
            out[base] = logistic(out[base]); out[base + 1] = logistic(out[base + 1]); out[base + 4] = logistic(out[base + 4])
            if softmax {
                var m = -Float.infinity
                for k in 5..<e { m = Swift.max(m, out[base + k]) }
                var sum: Float = 0
                for k in 5..<e { let v = Foundation.exp(out[base + k] - m); out[base + k] = v; sum += v }
                for k in 5..<e { out[base + k] /= sum }
            }
        }
        var r = YoloTargets(count: x.count)
        var avgIoU: Float = 0, avgCat: Float = 0, avgObj: Float = 0, avgAnyObj: Float = 0
        var recall: Float = 0, recall75: Float = 0, count = 0, classCount = 0

        func box(_ base: Int, _ n: Int, _ i: Int, _ j: Int) -> (Float, Float, Float, Float) {
            ((Float(i) + out[base]) / Float(gw), (Float(j) + out[base + 1]) / Float(gh),
             Foundation.exp(out[base + 2]) * anchors[n].0 / Float(gw), Foundation.exp(out[base + 3]) * anchors[n].1 / Float(gh))
        }
        func deltaBox(_ t: TruthBox, _ base: Int, _ n: Int, _ i: Int, _ j: Int, _ scale: Float) -> Float {
            let p = box(base, n, i, j)
            let iou = darknetIoU(p.0, p.1, p.2, p.3, t.x, t.y, t.w, t.h)
            r.set(base, .sigmoidSquare, target: t.x * Float(gw) - Float(i), scale: scale, output: out[base])
            r.set(base + 1, .sigmoidSquare, target: t.y * Float(gh) - Float(j), scale: scale, output: out[base + 1])
            r.set(base + 2, .linear, target: Foundation.log(t.w * Float(gw) / anchors[n].0), scale: scale, output: out[base + 2])
            r.set(base + 3, .linear, target: Foundation.log(t.h * Float(gh) / anchors[n].1), scale: scale, output: out[base + 3])
            return iou
        }
        func deltaClass(_ index: Int, _ cls: Int) {
            if !softmax && r.delta[index] != 0 {  // Darknet's `tag` quirk, logistic-free classes only
                r.set(index + cls, .linear, target: 1, scale: classScale, output: out[index + cls])
                return
            }
            for k in 0..<classes {
                if softmax {
                    r.kind[index + k] = .none; r.weight[index + k] = 0; r.target[index + k] = k == cls ? 1 : 0
                    r.delta[index + k] = classScale * ((k == cls ? 1 : 0) - out[index + k])
                } else {
                    r.set(index + k, .linear, target: k == cls ? 1 : 0, scale: classScale, output: out[index + k])
                }
                if k == cls { avgCat += out[index + k] }
            }
            if softmax { r.softmaxBlocks[index] = (cls, classScale) }
        }

        for b in 0..<batch {
            let boxes = Array(truths[b].prefix(maxBoxes))
            for j in 0..<gh { for i in 0..<gw { for n in 0..<a {
                let base = ((b * gh + j) * gw + i) * c + n * e
                let p = box(base, n, i, j)
                var bestIoU: Float = 0
                for t in boxes { bestIoU = Swift.max(bestIoU, darknetIoU(p.0, p.1, p.2, p.3, t.x, t.y, t.w, t.h)) }
                let obj = base + 4
                avgAnyObj += out[obj]
                r.set(obj, .sigmoidSquare, target: 0, scale: noObjectScale, output: out[obj])
                if bestIoU > threshold { r.clear(obj) }
                if seen < 12_800 {
                    let prior = TruthBox(x: (Float(i) + 0.5) / Float(gw), y: (Float(j) + 0.5) / Float(gh),
                                         w: anchors[n].0 / Float(gw), h: anchors[n].1 / Float(gh), classIndex: 0)
                    _ = deltaBox(prior, base, n, i, j, 0.01)
                }
            } } }
            for t in boxes {
                let i = cell(t.x, gw), j = cell(t.y, gh)
                var bestIoU: Float = 0, bestN = 0
                for n in 0..<a {
                    var (w, h) = (Float(0), Float(0))
                    if biasMatch {
                        (w, h) = (anchors[n].0 / Float(gw), anchors[n].1 / Float(gh))
                    } else {
                        let p = box(((b * gh + j) * gw + i) * c + n * e, n, i, j)
                        (w, h) = (p.2, p.3)
                    }
                    let iou = darknetIoU(0, 0, w, h, 0, 0, t.w, t.h)
                    if iou > bestIoU { bestIoU = iou; bestN = n }
                }
                let base = ((b * gh + j) * gw + i) * c + bestN * e
                let iou = deltaBox(t, base, bestN, i, j, coordScale * (2 - t.w * t.h))
                if iou > 0.5 { recall += 1 }
                if iou > 0.75 { recall75 += 1 }
                avgIoU += iou
                avgObj += out[base + 4]
                r.set(base + 4, .sigmoidSquare, target: rescore ? iou : 1, scale: objectScale, output: out[base + 4])
                deltaClass(base + 5, t.classIndex)
                count += 1; classCount += 1
            }
        }
        r.statistics = YoloLossStatistics(sums: (avgIoU, avgCat, avgObj, avgAnyObj, recall, recall75), count: count,
                                          classCount: classCount, predictions: gw * gh * a * batch, delta: r.delta)
        return r
    }
}
