import Foundation

/// Non-maximum suppression: keep the best-scoring box of each cluster of overlapping boxes.
///
/// `greedy` is `torchvision.ops.nms` (and OpenCV's `NMSBoxes` without a score threshold): boxes in
/// decreasing score order (ties: input order), each kept box removes every later box whose IoU with
/// it is greater than the threshold. `batched` does that per class (`torchvision.ops.batched_nms`).
/// `darknetSort` is Darknet's `do_nms_sort`; `soft` is soft-NMS (Bodla et al. 2017).
public enum NonMaximumSuppression {
    /// How soft-NMS decays the scores of boxes overlapping a selected one.
    public enum SoftMethod: Equatable, Sendable {
        /// score × (1 − IoU) when IoU > `iouThreshold`, unchanged otherwise.
        case linear(iouThreshold: Double)
        /// score × exp(−IoU² / sigma).
        case gaussian(sigma: Double)
    }

    /// Greedy NMS. Returns the indices of the kept boxes in decreasing score order.
    ///
    /// Sorted once by score; areas precomputed; flat coordinate arrays. Each kept box only visits the
    /// boxes whose left edge lies within (its xmin − the widest box's width, its xmax): boxes are also
    /// sorted by xmin, and anything outside that window cannot overlap it.
    public static func greedy(boxes: [BoundingBox], scores: [Double], iouThreshold: Double) -> [Int] {
        precondition(boxes.count == scores.count, "NonMaximumSuppression.greedy: \(boxes.count) boxes but \(scores.count) scores")
        let n = boxes.count
        if n == 0 { return [] }
        // rank[i]: position of box i in score order.
        let order = stableOrder(scores)
        var rank = [Int](repeating: 0, count: n)
        for (r, i) in order.enumerated() { rank[i] = r }

        // Boxes by xmin, in flat arrays.
        let byX = (0..<n).sorted { boxes[$0].xmin < boxes[$1].xmin || (boxes[$0].xmin == boxes[$1].xmin && $0 < $1) }
        var x0 = [Double](repeating: 0, count: n), y0 = x0, x1 = x0, y1 = x0, area = x0
        var rankX = [Int](repeating: 0, count: n), positionX = rankX
        var maxWidth = 0.0
        for (p, i) in byX.enumerated() {
            let b = boxes[i]
            x0[p] = b.xmin; y0[p] = b.ymin; x1[p] = b.xmax; y1[p] = b.ymax
            area[p] = b.area
            rankX[p] = rank[i]
            positionX[i] = p
            maxWidth = Swift.max(maxWidth, b.width)
        }
        var suppressed = [Bool](repeating: false, count: n)  // by score rank
        var kept: [Int] = []
        kept.reserveCapacity(n)
        x0.withUnsafeBufferPointer { x0 in
        y0.withUnsafeBufferPointer { y0 in
        x1.withUnsafeBufferPointer { x1 in
        y1.withUnsafeBufferPointer { y1 in
        area.withUnsafeBufferPointer { area in
        rankX.withUnsafeBufferPointer { rankX in
        suppressed.withUnsafeMutableBufferPointer { suppressed in
            for r in 0..<n where !suppressed[r] {
                let i = order[r]
                kept.append(i)
                let p = positionX[i]
                let ax0 = x0[p], ay0 = y0[p], ax1 = x1[p], ay1 = y1[p], aArea = area[p]
                // First candidate: the first box with xmin > ax0 − maxWidth (binary search).
                let lowest = ax0 - maxWidth
                var lo = 0, hi = p
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if x0[mid] <= lowest { lo = mid + 1 } else { hi = mid }
                }
                var q = lo
                while q < n && x0[q] < ax1 {
                    let rq = rankX[q]
                    if rq > r && !suppressed[rq] {
                        let w = Swift.min(ax1, x1[q]) - Swift.max(ax0, x0[q])
                        let h = Swift.min(ay1, y1[q]) - Swift.max(ay0, y0[q])
                        if w > 0 && h > 0 {
                            let inter = w * h
                            let union = aArea + area[q] - inter
                            if union > 0 && inter / union > iouThreshold { suppressed[rq] = true }
                        }
                    }
                    q += 1
                }
            }
        }}}}}}}
        return kept
    }

    /// Greedy NMS within each class (boxes of different classes never suppress each other). Returns the
    /// kept indices in decreasing score order (ties: input order), as `torchvision.ops.batched_nms`.
    public static func batched(boxes: [BoundingBox], scores: [Double], classes: [Int], iouThreshold: Double) -> [Int] {
        precondition(boxes.count == scores.count && boxes.count == classes.count,
                     "NonMaximumSuppression.batched: \(boxes.count) boxes, \(scores.count) scores, \(classes.count) classes")
        var members: [Int: [Int]] = [:]
        for (i, c) in classes.enumerated() { members[c, default: []].append(i) }
        var kept: [Int] = []
        for (_, indices) in members {
            let k = greedy(boxes: indices.map { boxes[$0] }, scores: indices.map { scores[$0] }, iouThreshold: iouThreshold)
            kept += k.map { indices[$0] }
        }
        return kept.sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    }

    /// Class-agnostic greedy NMS: boxes of every class compete (the class is ignored).
    public static func classAgnostic(boxes: [BoundingBox], scores: [Double], iouThreshold: Double) -> [Int] {
        greedy(boxes: boxes, scores: scores, iouThreshold: iouThreshold)
    }

    /// Soft-NMS: repeatedly selects the highest-scoring remaining box and decays the scores of the
    /// others by their overlap with it; boxes whose score falls below `scoreThreshold` are dropped.
    /// Returns the selected boxes' indices with their decayed scores, in selection order.
    public static func soft(boxes: [BoundingBox], scores: [Double], method: SoftMethod,
                            scoreThreshold: Double = 0.001) -> [(index: Int, score: Double)] {
        precondition(boxes.count == scores.count, "NonMaximumSuppression.soft: \(boxes.count) boxes but \(scores.count) scores")
        var remaining = Array(boxes.indices).filter { scores[$0] >= scoreThreshold }
        var current = scores
        var result: [(index: Int, score: Double)] = []
        while !remaining.isEmpty {
            // The best remaining box (ties: the lower index).
            var best = 0
            for k in 1..<remaining.count {
                let a = remaining[k], b = remaining[best]
                if current[a] > current[b] || (current[a] == current[b] && a < b) { best = k }
            }
            let i = remaining.remove(at: best)
            result.append((i, current[i]))
            let box = boxes[i]
            remaining = remaining.filter { j in
                let iou = box.iou(boxes[j])
                switch method {
                case .linear(let threshold):
                    if iou > threshold { current[j] *= 1 - iou }
                case .gaussian(let sigma):
                    current[j] *= exp(-(iou * iou) / sigma)
                }
                return current[j] >= scoreThreshold
            }
        }
        return result
    }

    /// Darknet's `do_nms_sort` (src/box.c), in Darknet's own arithmetic (Float, centre-size boxes).
    ///
    /// Detections with objectness 0 take no part. For each class k: the detections sorted by their
    /// probability of k, highest first; each detection whose probability of k is still non-zero sets to
    /// 0 the probability of k of every later detection whose `box_iou` with it is greater than `threshold`.
    /// Only `probabilities` change. Darknet also reorders its array (qsort, per class); here the order
    /// is kept and ties in a class's probability are broken by array order.
    ///
    /// - Parameters:
    ///   - boxes: centre x, centre y, width, height (any units, the same for all).
    ///   - probabilities: row-major [boxes.count, classes], objectness × class probability.
    public static func darknetSort(boxes: [(x: Float, y: Float, w: Float, h: Float)], objectness: [Float],
                                   probabilities: inout [Float], classes: Int, threshold: Float) {
        let n = boxes.count
        precondition(objectness.count == n && probabilities.count == n * classes,
                     "NonMaximumSuppression.darknetSort: \(n) boxes, \(objectness.count) objectness values, "
                     + "\(probabilities.count) probabilities for \(classes) classes")
        let active = (0..<n).filter { objectness[$0] != 0 }
        for k in 0..<classes {
            let order = active.sorted { a, b in
                let pa = probabilities[a * classes + k], pb = probabilities[b * classes + k]
                return pa > pb || (pa == pb && a < b)
            }
            for (r, i) in order.enumerated() where probabilities[i * classes + k] != 0 {
                let a = boxes[i]
                for j in order[(r + 1)...] where probabilities[j * classes + k] != 0 {
                    if darknetIoU(a, boxes[j]) > threshold { probabilities[j * classes + k] = 0 }
                }
            }
        }
    }

    /// Darknet's `box_iou`: centre-size boxes, Float, intersection 0 when either overlap is negative.
    public static func darknetIoU(_ a: (x: Float, y: Float, w: Float, h: Float), _ b: (x: Float, y: Float, w: Float, h: Float)) -> Float {
        func overlap(_ x1: Float, _ w1: Float, _ x2: Float, _ w2: Float) -> Float {
            let left = Swift.max(x1 - w1 / 2, x2 - w2 / 2)
            let right = Swift.min(x1 + w1 / 2, x2 + w2 / 2)
            return right - left
        }
        let w = overlap(a.x, a.w, b.x, b.w), h = overlap(a.y, a.h, b.y, b.h)
        let inter: Float = (w < 0 || h < 0) ? 0 : w * h
        let union = a.w * a.h + b.w * b.h - inter
        return inter / union
    }

    /// Indices sorted by decreasing score, ties in index order.
    static func stableOrder(_ scores: [Double]) -> [Int] {
        Array(scores.indices).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
    }
}
