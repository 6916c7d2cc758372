import Foundation
import OcelliTensor
import OcelliVision

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
    /// Sorted once by score; areas precomputed; the boxes also kept in one flat array sorted by xmin.
    /// A kept box A only visits the boxes B whose xmin lies in (A.xmin + t·A.w − maxW, A.xmax − t·A.w)
    /// (t the threshold, maxW the widest box): IoU > t needs a horizontal overlap > t·max(A.w, B.w), which
    /// nothing outside that window has. Boxes already kept or suppressed are compacted out of the array
    /// whenever they make up a quarter of it.
    public static func greedy(boxes: [BoundingBox], scores: [Double], iouThreshold: Double) -> [Int] {
        precondition(boxes.count == scores.count, "NonMaximumSuppression.greedy: \(boxes.count) boxes but \(scores.count) scores")
        let n = boxes.count
        if n == 0 { return [] }
        let order = stableOrder(scores)                // rank -> box index
        // Every IoU is ≥ 0: a negative threshold suppresses everything but the best box.
        if iouThreshold < 0 { return [order[0]] }
        var live: [Candidate] = []                     // by xmin; entries of boxes not yet decided
        live.reserveCapacity(n)
        var maxWidth = 0.0
        for (r, i) in order.enumerated() {
            let b = boxes[i]
            live.append(Candidate(x0: b.xmin, y0: b.ymin, x1: b.xmax, y1: b.ymax, area: b.area, rank: r))
            maxWidth = Swift.max(maxWidth, b.width)
        }
        live.sort { $0.x0 < $1.x0 || ($0.x0 == $1.x0 && $0.rank < $1.rank) }
        var decided = [Bool](repeating: false, count: n)  // by rank: kept or suppressed
        var kept: [Int] = []
        var dead = 0
        let t = iouThreshold
        for r in 0..<n where !decided[r] {
            decided[r] = true
            dead += 1
            let a = boxes[order[r]]
            kept.append(order[r])
            // The window, widened by a millionth (and more than rounding) so that no candidate is lost.
            let margin = 1e-9 * (Swift.abs(a.xmin) + Swift.abs(a.xmax) + maxWidth)
            let aArea = a.area, slack = Swift.max(0, t * Swift.max(0, a.width) * 0.999999 - margin)
            let lowest = a.xmin + slack - maxWidth, highest = a.xmax - slack
            live.withUnsafeBufferPointer { live in
            decided.withUnsafeMutableBufferPointer { decided in
                // First candidate: the first entry with x0 > lowest (binary search).
                var lo = 0, hi = live.count
                while lo < hi {
                    let mid = (lo + hi) / 2
                    if live[mid].x0 <= lowest { lo = mid + 1 } else { hi = mid }
                }
                var q = lo
                while q < live.count && live[q].x0 < highest {
                    let b = live[q]
                    q += 1
                    if decided[b.rank] { continue }
                    let w = Swift.min(a.xmax, b.x1) - Swift.max(a.xmin, b.x0)
                    let h = Swift.min(a.ymax, b.y1) - Swift.max(a.ymin, b.y0)
                    if w > 0 && h > 0 {
                        let inter = w * h
                        let union = aArea + b.area - inter
                        if union > 0 && inter / union > iouThreshold { decided[b.rank] = true; dead += 1 }
                    }
                }
            }}
            if dead * 4 > live.count {
                live.removeAll { decided[$0.rank] }
                dead = 0
            }
        }
        return kept
    }

    struct Candidate {
        var x0: Double, y0: Double, x1: Double, y1: Double, area: Double
        var rank: Int
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
        guard n > 1, classes > 0 else { return }
        // Flat corners and areas, computed as box_iou does (x ± w/2), so the O(m²) loop of each
        // class touches plain Float arrays; only detections with a non-zero probability of the
        // class take part (suppressing a zero changes nothing).
        var left = [Float](repeating: 0, count: n), right = left, top = left, bottom = left, area = left
        for (i, b) in boxes.enumerated() {
            left[i] = b.x - b.w / 2; right[i] = b.x + b.w / 2
            top[i] = b.y - b.h / 2; bottom[i] = b.y + b.h / 2
            area[i] = b.w * b.h
        }
        var order: [Int] = []
        order.reserveCapacity(n)
        probabilities.withUnsafeMutableBufferPointer { p in
            for k in 0..<classes {
                order.removeAll(keepingCapacity: true)
                for i in 0..<n where objectness[i] != 0 && p[i * classes + k] != 0 { order.append(i) }
                guard order.count > 1 else { continue }
                order.sort { a, b in
                    let pa = p[a * classes + k], pb = p[b * classes + k]
                    return pa > pb || (pa == pb && a < b)
                }
                let m = order.count
                for r in 0..<m {
                    let i = order[r]
                    if p[i * classes + k] == 0 { continue }
                    let (li, ri, ti, bi, ai) = (left[i], right[i], top[i], bottom[i], area[i])
                    for c in (r + 1)..<m {
                        let j = order[c]
                        if p[j * classes + k] == 0 { continue }
                        let w = Swift.min(ri, right[j]) - Swift.max(li, left[j])
                        let h = Swift.min(bi, bottom[j]) - Swift.max(ti, top[j])
                        let inter: Float = (w < 0 || h < 0) ? 0 : w * h
                        if inter / (ai + area[j] - inter) > threshold { p[j * classes + k] = 0 }
                    }
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
