import Foundation
import OcelliTensor

/// SSD's default boxes (Liu et al. 2016): at every cell of each of m feature maps, boxes of the
/// map's scale s_k with aspect ratio 1, one of scale s'_k = √(s_k·s_{k+1}) with ratio 1, and for
/// each extra ratio r a pair (s_k√r, s_k/√r) and (s_k/√r, s_k√r). Coordinates are fractions of
/// the image: centre (cx, cy) and size (w, h).
///
/// Order (torchvision's `DefaultBoxGenerator` and ssd.pytorch's `PriorBox` alike): map by map,
/// cell by cell in rows, and at each cell [s_k, s'_k, (r₁ wide, r₁ tall), (r₂ wide, r₂ tall), …].
///
/// ```swift
/// let boxes = SSDDefaultBoxes.ssd300(.voc)
/// boxes.count                    // 8732 = 38²·4 + 19²·6 + 10²·6 + 5²·6 + 3²·4 + 1²·4
/// let d = boxes.centerForm()     // [8732, 4]: cx, cy, w, h
/// ```
public struct SSDDefaultBoxes: Equatable, Sendable {
    /// The network's input side in pixels (used with `steps`).
    public var imageSize: Int
    /// The side of each (square) feature map, |f_k|.
    public var featureMaps: [Int]
    /// s_1 … s_m and s_{m+1} (the last only gives s'_m).
    public var scales: [Double]
    /// The extra aspect ratios of each map (2 gives 2 and 1/2; the paper's SSD300: [2], [2, 3], …).
    public var aspectRatios: [[Double]]
    /// Pixels between cell centres per map: centres at (i + 0.5)·step / imageSize (ssd.pytorch's and
    /// torchvision's SSD300: 8, 16, 32, 64, 100, 300). Nil: (i + 0.5) / |f_k|, the paper's.
    public var steps: [Double]?
    /// Widths and heights clamped to [0, 1] (torchvision's `clip`; centres are not clamped).
    public var clip: Bool

    public init(imageSize: Int, featureMaps: [Int], scales: [Double], aspectRatios: [[Double]], steps: [Double]? = nil,
                clip: Bool = true) throws {
        func fail(_ why: String) -> DetectionError { DetectionError("SSD default boxes: \(why)") }
        guard (1...65_536).contains(imageSize) else { throw fail("imageSize \(imageSize) must be between 1 and 65536") }
        guard !featureMaps.isEmpty, featureMaps.count <= 64 else { throw fail("give between 1 and 64 feature maps, got \(featureMaps.count)") }
        for f in featureMaps where !(1...4096).contains(f) { throw fail("feature map side \(f) must be between 1 and 4096") }
        guard scales.count == featureMaps.count + 1 else {
            throw fail("\(featureMaps.count) feature maps need \(featureMaps.count + 1) scales (the last for s'_m), got \(scales.count)")
        }
        for s in scales where !(s.isFinite && s > 0 && s <= 100) { throw fail("scale \(s) must be a number in (0, 100]") }
        guard aspectRatios.count == featureMaps.count else {
            throw fail("\(featureMaps.count) feature maps need \(featureMaps.count) lists of aspect ratios, got \(aspectRatios.count)")
        }
        for rs in aspectRatios {
            guard rs.count <= 16 else { throw fail("at most 16 extra aspect ratios per map, got \(rs.count)") }
            for r in rs where !(r.isFinite && r > 0 && r <= 1000) { throw fail("aspect ratio \(r) must be a number in (0, 1000]") }
        }
        if let steps {
            guard steps.count == featureMaps.count else { throw fail("\(featureMaps.count) feature maps need \(featureMaps.count) steps, got \(steps.count)") }
            for s in steps where !(s.isFinite && s > 0 && s <= 65_536) { throw fail("step \(s) must be a number in (0, 65536]") }
        }
        self.imageSize = imageSize; self.featureMaps = featureMaps; self.scales = scales
        self.aspectRatios = aspectRatios; self.steps = steps; self.clip = clip
    }

    /// The paper's scales: s_k = s_min + (s_max − s_min)(k − 1)/(m − 1) for k = 1…m, and
    /// s_{m+1} = 1 (torchvision's choice for s'_m).
    public init(imageSize: Int, featureMaps: [Int], minScale: Double = 0.2, maxScale: Double = 0.9, aspectRatios: [[Double]],
                steps: [Double]? = nil, clip: Bool = true) throws {
        let m = featureMaps.count
        var scales = m > 1 ? (0..<m).map { minScale + (maxScale - minScale) * Double($0) / Double(m - 1) } : [minScale]
        scales.append(m > 1 ? 1 : maxScale)
        try self.init(imageSize: imageSize, featureMaps: featureMaps, scales: scales, aspectRatios: aspectRatios, steps: steps, clip: clip)
    }

    /// The scale sets the SSD300 implementations use (ssd.pytorch's min/max sizes over 300).
    public enum ScaleSet: String, Sendable, CaseIterable {
        /// 0.1, 0.2, 0.37, 0.54, 0.71, 0.88 and 1.05 (Pascal VOC).
        case voc
        /// 0.07, 0.15, 0.33, 0.51, 0.69, 0.87 and 1.05 (COCO; torchvision's `ssd300_vgg16`).
        case coco

        public var scales: [Double] {
            switch self {
            case .voc: return [0.1, 0.2, 0.37, 0.54, 0.71, 0.88, 1.05]
            case .coco: return [0.07, 0.15, 0.33, 0.51, 0.69, 0.87, 1.05]
            }
        }
    }

    /// SSD300's layout: maps 38, 19, 10, 5, 3, 1 (conv4_3, fc7, conv8_2 … conv11_2), ratios [2],
    /// [2, 3], [2, 3], [2, 3], [2], [2], steps 8, 16, 32, 64, 100, 300: 8,732 boxes.
    public static func ssd300(_ scales: ScaleSet = .voc) -> SSDDefaultBoxes {
        // Constants checked by the initialiser's rules: cannot fail.
        SSDDefaultBoxes(unchecked: 300, [38, 19, 10, 5, 3, 1], scales.scales, [[2], [2, 3], [2, 3], [2, 3], [2], [2]],
                        [8, 16, 32, 64, 100, 300], true)
    }

    private init(unchecked imageSize: Int, _ maps: [Int], _ scales: [Double], _ ratios: [[Double]], _ steps: [Double]?, _ clip: Bool) {
        self.imageSize = imageSize; featureMaps = maps; self.scales = scales; aspectRatios = ratios; self.steps = steps; self.clip = clip
    }

    /// Boxes at each cell of each map: 2 + 2·(extra ratios).
    public var boxesPerLocation: [Int] { aspectRatios.map { 2 + 2 * $0.count } }

    /// All the default boxes.
    public var count: Int { zip(featureMaps, boxesPerLocation).reduce(0) { $0 + $1.0 * $1.0 * $1.1 } }

    /// The (w, h) of the boxes at one cell of map k, in order.
    public func sizes(ofMap k: Int) -> [(Double, Double)] {
        let s = scales[k], sPrime = (scales[k] * scales[k + 1]).squareRoot()
        var out = [(s, s), (sPrime, sPrime)]
        for r in aspectRatios[k] {
            let q = r.squareRoot()
            out += [(s * q, s / q), (s / q, s * q)]
        }
        return clip ? out.map { (Swift.min(Swift.max($0.0, 0), 1), Swift.min(Swift.max($0.1, 0), 1)) } : out
    }

    /// [count, 4]: cx, cy, w, h as fractions of the image (computed in Double, stored as Float).
    public func centerForm() -> Tensor {
        Tensor(shape: [count, 4], scalars: centerFormDouble().map { Float($0) })
    }

    /// `centerForm` in Double, flat.
    public func centerFormDouble() -> [Double] {
        var out = [Double]()
        out.reserveCapacity(count * 4)
        for (k, f) in featureMaps.enumerated() {
            let cells = steps.map { Double(imageSize) / $0[k] } ?? Double(f)
            let wh = sizes(ofMap: k)
            for i in 0..<f {
                let cy = (Double(i) + 0.5) / cells
                for j in 0..<f {
                    let cx = (Double(j) + 0.5) / cells
                    for (w, h) in wh { out += [cx, cy, w, h] }
                }
            }
        }
        return out
    }

    /// [count, 4]: xmin, ymin, xmax, ymax as fractions of the image.
    public func cornerForm() -> Tensor { SSDBoxCoder.corners(fromCenters: centerForm()) }
}

/// SSD's box encoding against default boxes d (all in centre form), with variances (σ_xy, σ_wh):
///
///     t_x = (g_cx − d_cx) / d_w / σ_xy     t_w = log(g_w / d_w) / σ_wh
///
/// (torchvision's `BoxCoder(weights: 10, 10, 5, 5)` for the default 0.1, 0.2), and the decoding
/// back. Both work on whole tensors ([..., 4] against [..., 4] with broadcasting) and are
/// differentiable.
public struct SSDBoxCoder: Equatable, Sendable {
    public var centerVariance: Float
    public var sizeVariance: Float

    public init(centerVariance: Float = 0.1, sizeVariance: Float = 0.2) {
        self.centerVariance = centerVariance; self.sizeVariance = sizeVariance
    }

    /// Offsets of boxes `truths` (centre form) from `defaults` (centre form).
    public func encode(_ truths: Tensor, defaults: Tensor) -> Tensor {
        let g = truths.split(count: 4, axis: truths.rank - 1), d = defaults.split(count: 4, axis: defaults.rank - 1)
        let tx = (g[0] - d[0]) / d[2] / centerVariance
        let ty = (g[1] - d[1]) / d[3] / centerVariance
        let tw = (g[2] / d[2]).log() / sizeVariance
        let th = (g[3] / d[3]).log() / sizeVariance
        return Tensor.concatenate([tx, ty, tw, th], axis: truths.rank - 1)
    }

    /// Boxes (centre form) from offsets against `defaults`.
    public func decode(_ offsets: Tensor, defaults: Tensor) -> Tensor {
        let t = offsets.split(count: 4, axis: offsets.rank - 1), d = defaults.split(count: 4, axis: defaults.rank - 1)
        let cx = t[0] * centerVariance * d[2] + d[0]
        let cy = t[1] * centerVariance * d[3] + d[1]
        let w = (t[2] * sizeVariance).exp() * d[2]
        let h = (t[3] * sizeVariance).exp() * d[3]
        return Tensor.concatenate([cx, cy, w, h], axis: offsets.rank - 1)
    }

    /// Corner form (xmin, ymin, xmax, ymax) of centre-form boxes.
    public static func corners(fromCenters b: Tensor) -> Tensor {
        let c = b.split(count: 4, axis: b.rank - 1)
        let hw = c[2] * 0.5, hh = c[3] * 0.5
        return Tensor.concatenate([c[0] - hw, c[1] - hh, c[0] + hw, c[1] + hh], axis: b.rank - 1)
    }

    /// Centre form of corner-form boxes.
    public static func centers(fromCorners b: Tensor) -> Tensor {
        let c = b.split(count: 4, axis: b.rank - 1)
        let w = c[2] - c[0], h = c[3] - c[1]
        return Tensor.concatenate([c[0] + w * 0.5, c[1] + h * 0.5, w, h], axis: b.rank - 1)
    }
}

/// SSD's matching: every default box whose best IoU with a truth is at least `threshold` takes
/// that truth; then each truth takes its own best default box whatever the IoU (a later truth
/// wins a box two truths prefer, as in torchvision's `SSDMatcher` and ssd.pytorch's `match`).
public struct SSDMatcher: Equatable, Sendable {
    public var threshold: Float

    public init(threshold: Float = 0.5) { self.threshold = threshold }

    /// For each default box, the index of its truth, or −1 (background).
    /// - Parameters:
    ///   - truths: [T, 4] corner form; defaults: [D, 4] corner form (the same units).
    public func match(truths: Tensor, defaults: Tensor) -> [Int] {
        let d = defaults.shape[0], t = truths.shape[0]
        guard t > 0 else { return Array(repeating: -1, count: d) }
        let iou = withoutGradients {
            Tensor.boxIoU(truths.reshaped([t, 1, 4]), defaults.reshaped([1, d, 4]), epsilon: 0)  // [T, D]
        }
        let best = iou.max(axis: 0).scalars, bestTruth = iou.argmax(axis: 0).scalars  // per default box
        var matches = (0..<d).map { best[$0] >= threshold ? Int(bestTruth[$0]) : -1 }
        let bestDefault = iou.argmax(axis: 1).scalars  // per truth
        for j in 0..<t { matches[Int(bestDefault[j])] = j }
        return matches
    }
}

/// An error in a detector's configuration or targets.
public struct DetectionError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
