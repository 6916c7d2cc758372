import Foundation

/// The reductions share one kernel: the reduced axes are brought into one contiguous block
/// (a copy only when they are not adjacent), so the tensor is viewed as [outer, reduced, inner]
/// and reduced in a fixed order (deterministic whatever the thread count).
enum ReduceKind { case sum, max, min }

extension Tensor {
    /// Normalized, sorted axes (nil or empty means every axis).
    func reductionAxes(_ axes: [Int]?, op: String) -> [Int] {
        guard let axes, !axes.isEmpty else { return Array(0..<rank) }
        return check { () throws(ShapeError) in try Shape.normalizeAxes(axes, rank: rank, op: op) }.sorted()
    }

    func keptShape(_ axes: [Int], keepDims: Bool) -> [Int] {
        keepDims ? shape.enumerated().map { axes.contains($0.offset) ? 1 : $0.element }
                 : shape.enumerated().filter { !axes.contains($0.offset) }.map { $0.element }
    }

    /// This tensor's values arranged as [outer, reduced, inner] for `axes`.
    func reductionView(_ axes: [Int]) -> (scalars: [Float], outer: Int, reduced: Int, inner: Int) {
        if axes.isEmpty { return (scalars, count, 1, 1) }
        let contiguous = axes.last! - axes.first! + 1 == axes.count
        if contiguous {
            let outer = Shape.count(Array(shape[..<axes.first!]))
            let red = Shape.count(Array(shape[axes.first!...axes.last!]))
            let inner = Shape.count(Array(shape[(axes.last! + 1)...]))
            return (scalars, outer, red, inner)
        }
        let kept = (0..<rank).filter { !axes.contains($0) }
        let p = permutedScalars(kept + axes)
        return (p, Shape.count(kept.map { shape[$0] }), Shape.count(axes.map { shape[$0] }), 1)
    }

    static func reduceKernel(_ x: [Float], _ outer: Int, _ red: Int, _ inner: Int, _ kind: ReduceKind) -> [Float] {
        let n = outer * inner
        return x.withUnsafeBufferPointer { src in
            [Float](unsafeUninitializedCapacity: n) { dst, initialized in
                let s = src.baseAddress!, d = dst.baseAddress!
                if red == 0 {
                    let v: Float = kind == .sum ? 0 : (kind == .max ? -.infinity : .infinity)
                    for i in 0..<n { d[i] = v }
                } else if inner == 1 {
                    for o in 0..<outer {
                        let row = s + o * red
                        switch kind {
                        case .sum:
                            // Blocks of 4096 summed in eight SIMD lanes, blocks added in Double:
                            // vectorized, and accurate to ~1e-7 relative even for millions of terms.
                            var total = 0.0
                            var start = 0
                            while start < red {
                                let end = Swift.min(red, start + 4096)
                                var acc = SIMD8<Float>(repeating: 0)
                                var i = start
                                while i + 8 <= end {
                                    acc += UnsafeRawPointer(row + i).loadUnaligned(as: SIMD8<Float>.self)
                                    i += 8
                                }
                                var t = acc.sum()
                                while i < end { t += row[i]; i += 1 }
                                total += Double(t)
                                start = end
                            }
                            d[o] = Float(total)
                        case .max:
                            var m = row[0]; for i in 1..<red where row[i] > m || row[i].isNaN { m = row[i] }; d[o] = m
                        case .min:
                            var m = row[0]; for i in 1..<red where row[i] < m || row[i].isNaN { m = row[i] }; d[o] = m
                        }
                    }
                } else {
                    // Column sums accumulate in Double (vectorized conversions): exact enough for
                    // bias gradients over hundreds of thousands of pixels.
                    var wide = [Double](repeating: 0, count: kind == .sum ? inner : 0)
                    for o in 0..<outer {
                        let acc = d + o * inner, base = s + o * red * inner
                        if kind == .sum {
                            wide.withUnsafeMutableBufferPointer { w in
                                for j in 0..<inner { w[j] = 0 }
                                for r in 0..<red {
                                    let row = base + r * inner
                                    for j in 0..<inner { w[j] += Double(row[j]) }
                                }
                                for j in 0..<inner { acc[j] = Float(w[j]) }
                            }
                            continue
                        }
                        for j in 0..<inner { acc[j] = base[j] }
                        for r in 1..<red {
                            let row = base + r * inner
                            if kind == .max {
                                for j in 0..<inner where row[j] > acc[j] || row[j].isNaN { acc[j] = row[j] }
                            } else {
                                for j in 0..<inner where row[j] < acc[j] || row[j].isNaN { acc[j] = row[j] }
                            }
                        }
                    }
                }
                initialized = n
            }
        }
    }

    /// Sum over `axes` (all axes when nil).
    public func sum(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = reductionAxes(axes, op: "sum")
        let v = reductionView(ax)
        let y = Tensor(shape: keptShape(ax, keepDims: keepDims), scalars: Tensor.reduceKernel(v.scalars, v.outer, v.reduced, v.inner, .sum))
        let inShape = shape, keep = keptShape(ax, keepDims: true)
        return Tensor.record(y, [self]) { g in [g.reshaped(keep).broadcast(to: inShape)] }
    }
    public func sum(axis: Int, keepDims: Bool = false) -> Tensor { sum(axes: [axis], keepDims: keepDims) }

    /// Mean over `axes` (all axes when nil).
    public func mean(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = reductionAxes(axes, op: "mean")
        let n = Shape.count(ax.map { shape[$0] })
        return sum(axes: ax, keepDims: keepDims) * (1 / Float(Swift.max(n, 1)))
    }
    public func mean(axis: Int, keepDims: Bool = false) -> Tensor { mean(axes: [axis], keepDims: keepDims) }

    private func extremum(_ axes: [Int]?, keepDims: Bool, kind: ReduceKind, op: String) -> Tensor {
        let ax = reductionAxes(axes, op: op)
        require(ax.allSatisfy { shape[$0] > 0 }, op, "cannot reduce an empty axis of shape \(shape)")
        let v = reductionView(ax)
        let y = Tensor(shape: keptShape(ax, keepDims: keepDims), scalars: Tensor.reduceKernel(v.scalars, v.outer, v.reduced, v.inner, kind))
        let x = detached(), keep = keptShape(ax, keepDims: true)
        return Tensor.record(y, [self]) { g in
            // The gradient is shared equally between tied extrema (as PyTorch's amax/amin).
            let yb = y.detached().reshaped(keep).broadcast(to: x.shape)
            let mask = Tensor.zipScalars(x, yb) { $0 == $1 ? 1 : 0 }
            let ties = mask.sum(axes: ax, keepDims: true)
            return [Tensor.broadcastScalars(mask, (g.reshaped(keep) / ties).broadcast(to: x.shape), op: op, *)]
        }
    }

    /// Maximum over `axes` (all axes when nil).
    public func max(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        extremum(axes, keepDims: keepDims, kind: .max, op: "max")
    }
    public func max(axis: Int, keepDims: Bool = false) -> Tensor { max(axes: [axis], keepDims: keepDims) }
    /// Minimum over `axes` (all axes when nil).
    public func min(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        extremum(axes, keepDims: keepDims, kind: .min, op: "min")
    }
    public func min(axis: Int, keepDims: Bool = false) -> Tensor { min(axes: [axis], keepDims: keepDims) }

    /// Index of the first maximum along `axis`, as Float values.
    public func argmax(axis: Int = -1, keepDims: Bool = false) -> Tensor { argExtremum(axis, keepDims, greater: true) }
    /// Index of the first minimum along `axis`, as Float values.
    public func argmin(axis: Int = -1, keepDims: Bool = false) -> Tensor { argExtremum(axis, keepDims, greater: false) }

    private func argExtremum(_ axis: Int, _ keepDims: Bool, greater: Bool) -> Tensor {
        let op = greater ? "argmax" : "argmin"
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: rank, op: op) }
        require(shape[ax] > 0, op, "cannot reduce an empty axis of shape \(shape)")
        let outer = Shape.count(Array(shape[..<ax])), red = shape[ax], inner = Shape.count(Array(shape[(ax + 1)...]))
        var out = [Float](repeating: 0, count: outer * inner)
        scalars.withUnsafeBufferPointer { s in
            for o in 0..<outer {
                for j in 0..<inner {
                    var best = s[o * red * inner + j], bi = 0
                    for r in 1..<red {
                        let v = s[(o * red + r) * inner + j]
                        if greater ? v > best : v < best { best = v; bi = r }
                    }
                    out[o * inner + j] = Float(bi)
                }
            }
        }
        return Tensor(shape: keptShape([ax], keepDims: keepDims), scalars: out)
    }

    /// Population variance (divides by N, as NumPy's default and Keras) over `axes`.
    public func variance(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = reductionAxes(axes, op: "variance")
        let centered = self - mean(axes: ax, keepDims: true)
        return centered.square().mean(axes: ax, keepDims: keepDims)
    }

    public func variance(axis: Int, keepDims: Bool = false) -> Tensor { variance(axes: [axis], keepDims: keepDims) }

    /// log Σ exp(x) over `axes`, shifted by the maximum so that it never overflows.
    public func logSumExp(axes: [Int]? = nil, keepDims: Bool = false) -> Tensor {
        let ax = reductionAxes(axes, op: "logSumExp")
        let m = withoutGradients { self.max(axes: ax, keepDims: true) }
        let safeM = m.mapScalars { $0.isFinite ? $0 : 0 }
        let r = (self - safeM).exp().sum(axes: ax, keepDims: true).log() + safeM
        return keepDims ? r : r.reshaped(keptShape(ax, keepDims: false))
    }

    public func logSumExp(axis: Int, keepDims: Bool = false) -> Tensor { logSumExp(axes: [axis], keepDims: keepDims) }
}
