import Foundation
import OcelliTensor
import OcelliVision

/// Anchor boxes found by k-means over the training boxes' sizes (YOLOv2's "dimension clusters").
public struct AnchorClusters: Sendable {
    /// The centroids (width, height), sorted by area, smallest first.
    public var anchors: [(width: Double, height: Double)]
    /// The mean over the boxes of the IoU with their best anchor (boxes and anchors centred together).
    public var meanIoU: Double
    /// For each box, the index (into `anchors`) of its best anchor.
    public var assignments: [Int]
    /// Lloyd iterations of the winning restart.
    public var iterations: Int

    public init(anchors: [(width: Double, height: Double)], meanIoU: Double, assignments: [Int], iterations: Int) {
        self.anchors = anchors
        self.meanIoU = meanIoU
        self.assignments = assignments
        self.iterations = iterations
    }

    /// Darknet cfg format, e.g. `10,13,  16,30,  33,23` (rounded to `decimals` places; 0 for input
    /// pixels, YOLOv3 style; 2 or more for grid cells, YOLOv2 style).
    public func cfgLine(decimals: Int = 0) -> String {
        anchors.map { a in
            decimals == 0 ? "\(Int(a.width.rounded())),\(Int(a.height.rounded()))"
                : String(format: "%.\(decimals)f,%.\(decimals)f", a.width, a.height)
        }.joined(separator: ",  ")
    }
}

/// k-means over box sizes with distance 1 − IoU, boxes centred at the origin (Redmon & Farhadi 2017).
///
/// k-means++ seeding (each new centre drawn with probability ∝ distance² to the nearest one chosen),
/// Lloyd iterations (assign each box to the anchor of largest IoU, move each anchor to the mean width
/// and height of its boxes; an anchor left without boxes jumps to the box farthest from its own anchor)
/// until no assignment changes, and several seeded restarts keeping the best mean IoU. Darknet's
/// `calc_anchors` is one such run from `k` random boxes.
public enum AnchorClustering {
    /// IoU of two boxes of sizes `a` and `b` sharing a centre: min(w)·min(h) / (area a + area b − that).
    @inline(__always)
    public static func iou(_ a: (width: Double, height: Double), _ b: (width: Double, height: Double)) -> Double {
        let inter = Swift.min(a.width, b.width) * Swift.min(a.height, b.height)
        let union = a.width * a.height + b.width * b.height - inter
        return union > 0 ? inter / union : 0
    }

    /// The mean over `sizes` of the best IoU with any of `anchors`.
    public static func meanIoU(sizes: [(width: Double, height: Double)], anchors: [(width: Double, height: Double)]) -> Double {
        guard !sizes.isEmpty, !anchors.isEmpty else { return 0 }
        var sum = 0.0
        for s in sizes { sum += anchors.map { iou(s, $0) }.max()! }
        return sum / Double(sizes.count)
    }

    /// The boxes' sizes scaled to a network input: each box's width and height relative to its image,
    /// times `scaleWidth` and `scaleHeight` (416 for input pixels, YOLOv3; 13 for grid cells, YOLOv2).
    /// Boxes with a non-positive width or height are left out.
    public static func sizes(of images: [AnnotatedImage], scaleWidth: Double, scaleHeight: Double) -> [(width: Double, height: Double)] {
        var out: [(width: Double, height: Double)] = []
        for image in images where image.width > 0 && image.height > 0 {
            for o in image.objects where o.width > 0 && o.height > 0 {
                out.append((o.width / Double(image.width) * scaleWidth, o.height / Double(image.height) * scaleHeight))
            }
        }
        return out
    }

    /// The best of `restarts` seeded k-means runs on `sizes` (at least `k` of them).
    public static func kmeans(sizes: [(width: Double, height: Double)], k: Int, restarts: Int = 10, seed: UInt64 = 0,
                              maxIterations: Int = 1000) -> AnchorClusters {
        precondition(k >= 1, "AnchorClustering.kmeans: k must be at least 1, got \(k)")
        precondition(sizes.count >= k, "AnchorClustering.kmeans: \(sizes.count) boxes cannot make \(k) clusters")
        precondition(restarts >= 1, "AnchorClustering.kmeans: restarts must be at least 1, got \(restarts)")
        let n = sizes.count
        let w = sizes.map(\.width), h = sizes.map(\.height)
        var best: AnchorClusters?
        for restart in 0..<restarts {
            var generator = SeededGenerator(seed: seed &+ UInt64(restart) &* 0x9E37_79B9_7F4A_7C15)
            var cw = [Double](), ch = [Double]()
            // k-means++ seeding with distance 1 − IoU.
            let first = Int.random(in: 0..<n, using: &generator)
            cw.append(w[first]); ch.append(h[first])
            var nearest = [Double](repeating: 0, count: n)
            for i in 0..<n { nearest[i] = 1 - iou((w[i], h[i]), (cw[0], ch[0])) }
            while cw.count < k {
                var total = 0.0
                for d in nearest { total += d * d }
                var pick = 0
                if total > 0 {
                    var r = Double.random(in: 0..<total, using: &generator)
                    pick = n - 1
                    for i in 0..<n {
                        r -= nearest[i] * nearest[i]
                        if r < 0 { pick = i; break }
                    }
                } else {
                    pick = Int.random(in: 0..<n, using: &generator)
                }
                cw.append(w[pick]); ch.append(h[pick])
                let c = cw.count - 1
                for i in 0..<n { nearest[i] = Swift.min(nearest[i], 1 - iou((w[i], h[i]), (cw[c], ch[c]))) }
            }
            // Lloyd iterations.
            var assignment = [Int](repeating: -1, count: n)
            var bestIoU = [Double](repeating: 0, count: n)
            var iterations = 0
            while iterations < maxIterations {
                var changed = false
                for i in 0..<n {
                    var bj = 0, bv = -1.0
                    for j in 0..<k {
                        let v = iou((w[i], h[i]), (cw[j], ch[j]))
                        if v > bv { bv = v; bj = j }
                    }
                    bestIoU[i] = bv
                    if assignment[i] != bj { assignment[i] = bj; changed = true }
                }
                if !changed { break }
                iterations += 1
                var sw = [Double](repeating: 0, count: k), sh = sw, count = [Int](repeating: 0, count: k)
                for i in 0..<n {
                    sw[assignment[i]] += w[i]; sh[assignment[i]] += h[i]; count[assignment[i]] += 1
                }
                for j in 0..<k {
                    if count[j] > 0 {
                        cw[j] = sw[j] / Double(count[j]); ch[j] = sh[j] / Double(count[j])
                    } else {
                        // An empty cluster takes the box worst served by its anchor.
                        var far = 0
                        for i in 1..<n where bestIoU[i] < bestIoU[far] { far = i }
                        cw[j] = w[far]; ch[j] = h[far]
                        bestIoU[far] = 1
                    }
                }
            }
            // The final anchors' assignments and IoUs (the loop may have stopped at maxIterations).
            var sum = 0.0
            for i in 0..<n {
                var bj = 0, bv = -1.0
                for j in 0..<k {
                    let v = iou((w[i], h[i]), (cw[j], ch[j]))
                    if v > bv { bv = v; bj = j }
                }
                assignment[i] = bj
                sum += bv
            }
            let mean = sum / Double(n)
            if best == nil || mean > best!.meanIoU {
                // Sort by area and renumber the assignments.
                let areas: [Double] = (0..<k).map { cw[$0] * ch[$0] }
                let order = (0..<k).sorted { (a: Int, b: Int) -> Bool in areas[a] < areas[b] || (areas[a] == areas[b] && a < b) }
                var rename = [Int](repeating: 0, count: k)
                for (newIndex, old) in order.enumerated() { rename[old] = newIndex }
                best = AnchorClusters(anchors: order.map { (cw[$0], ch[$0]) }, meanIoU: mean,
                                      assignments: assignment.map { rename[$0] }, iterations: iterations)
            }
        }
        return best!
    }

    /// Mean IoU for every k in `ks` (each the best of `restarts`), for the "mean IoU vs k" curve.
    public static func sweep(sizes: [(width: Double, height: Double)], ks: ClosedRange<Int>, restarts: Int = 10,
                             seed: UInt64 = 0) -> [(k: Int, clusters: AnchorClusters)] {
        ks.filter { $0 >= 1 && $0 <= sizes.count }.map { ($0, kmeans(sizes: sizes, k: $0, restarts: restarts, seed: seed)) }
    }
}
