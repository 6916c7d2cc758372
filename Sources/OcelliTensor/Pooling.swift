import COcelliKernels

extension Padding {
    /// Darknet's `[maxpool]` rule: `padding` cells in total (default size − 1), the window starting
    /// at −padding/2, so the output is (H + padding − size) / stride + 1.
    public static func darknetMaxPool(size: Int, padding: Int? = nil) -> Padding {
        let p = padding ?? (size - 1)
        return .explicit(top: p / 2, bottom: p - p / 2, left: p / 2, right: p - p / 2)
    }
}

struct PoolGeometry {
    var n, h, w, c, kh, kw, sh, sw, pt, pb, pl, pr: Int
    var oh: Int { (h + pt + pb - kh) / sh + 1 }
    var ow: Int { (w + pl + pr - kw) / sw + 1 }

    init(_ x: Tensor, _ size: (Int, Int), _ strides: (Int, Int), _ padding: Padding, op: String) {
        require(x.rank == 4, op, "input must be NHWC (rank 4), got shape \(x.shape)")
        require(size.0 >= 1 && size.1 >= 1 && strides.0 >= 1 && strides.1 >= 1, op,
                "pool size \(size) and strides \(strides) must be ≥ 1")
        (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        (kh, kw, sh, sw) = (size.0, size.1, strides.0, strides.1)
        (pt, pb, pl, pr) = padding.amounts(height: h, width: w, kernel: size, stride: strides)
        require(oh > 0 && ow > 0, op, "input \(x.shape) is smaller than the pool window \(size)")
    }

    /// The input rows and columns of output cell (oy, ox)'s window that lie inside the input
    /// (padded cells are left out: they never win a max and avg pooling counts them apart).
    @inline(__always)
    func window(_ oy: Int, _ ox: Int) -> (rows: Range<Int>, columns: Range<Int>) {
        let y0 = oy * sh - pt, x0 = ox * sw - pl
        return (Swift.max(0, y0)..<Swift.min(h, y0 + kh), Swift.max(0, x0)..<Swift.min(w, x0 + kw))
    }
}

extension Tensor {
    /// Max pooling over NHWC windows. Padded cells count as −∞ (so they never win), which is
    /// also Darknet's behaviour: use `Padding.darknetMaxPool(size:)` for its layer.
    public static func maxPool2d(_ input: Tensor, poolSize: (Int, Int), strides: (Int, Int)? = nil,
                                 padding: Padding = .valid) -> Tensor {
        let g = PoolGeometry(input, poolSize, strides ?? poolSize, padding, op: "maxPool2d")
        let (oh, ow, c) = (g.oh, g.ow, g.c)
        let outCount = g.n * oh * ow * c
        var out = uninitializedScalars(outCount)  // every element is written
        if outCount == 0 { return Tensor(shape: [g.n, oh, ow, c], scalars: out) }
        input.scalars.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                let p = UnsafeSendable((xp.baseAddress!, op.baseAddress!))
                Parallel.forRanges(g.n * oh, minimumChunk: Swift.max(1, 16_384 / Swift.max(1, ow * c))) { r in
                    ocelli_maxpool_forward(p.value.0, p.value.1, g.h, g.w, c, oh, ow, g.kh, g.kw, g.sh, g.sw,
                                           g.pt, g.pl, r.lowerBound, r.upperBound)
                }
            }
        }
        let x = input.detached()
        let y = Tensor(shape: [g.n, oh, ow, c], scalars: out)
        return record(y, [input]) { dy in
            // The gradient goes to the first cell of each window (row-major) holding the maximum,
            // found again here instead of storing indices during the forward pass. Images are
            // independent (their windows never overlap): split over them.
            [Tensor.make(x.shape) { dx in
                x.scalars.withUnsafeBufferPointer { xs in
                    y.scalars.withUnsafeBufferPointer { ys in
                        dy.scalars.withUnsafeBufferPointer { gs in
                            let p = UnsafeSendable((xs.baseAddress!, ys.baseAddress!, gs.baseAddress!, dx.baseAddress!))
                            Parallel.forRanges(g.n) { images in
                                let (xs, ys, gs, ds) = p.value
                                ocelli_maxpool_backward(xs, ys, gs, ds, g.h, g.w, c, oh, ow, g.kh, g.kw, g.sh, g.sw,
                                                        g.pt, g.pl, images.lowerBound, images.upperBound)
                            }
                        }
                    }
                }
            }]
        }
    }

    /// Average pooling over NHWC windows. With `countIncludePad` false (Keras/TensorFlow), a
    /// window near the border averages only the cells inside the input; true counts padded zeros
    /// (PyTorch's default).
    public static func avgPool2d(_ input: Tensor, poolSize: (Int, Int), strides: (Int, Int)? = nil,
                                 padding: Padding = .valid, countIncludePad: Bool = false) -> Tensor {
        let g = PoolGeometry(input, poolSize, strides ?? poolSize, padding, op: "avgPool2d")
        let (oh, ow, c) = (g.oh, g.ow, g.c)
        // Divisor of each output cell.
        var divisor = [Float](repeating: 0, count: oh * ow)
        for oy in 0..<oh { for ox in 0..<ow {
            let y0 = oy * g.sh - g.pt, x0 = ox * g.sw - g.pl
            if countIncludePad {
                let y1 = Swift.min(y0 + g.kh, g.h + g.pb), x1 = Swift.min(x0 + g.kw, g.w + g.pr)
                divisor[oy * ow + ox] = Float((y1 - y0) * (x1 - x0))
            } else {
                let ys = Swift.max(0, Swift.min(g.h, y0 + g.kh) - Swift.max(0, y0)), xs = Swift.max(0, Swift.min(g.w, x0 + g.kw) - Swift.max(0, x0))
                divisor[oy * ow + ox] = Float(Swift.max(1, ys * xs))
            }
        } }
        var out = [Float](repeating: 0, count: g.n * oh * ow * c)
        input.scalars.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                let p = UnsafeSendable((xp.baseAddress!, op.baseAddress!))
                Parallel.forRanges(g.n * oh, minimumChunk: 4) { r in
                    let (x, o) = p.value
                    for row in r {
                        let n = row / oh, oy = row % oh
                        for ox in 0..<ow {
                            let dst = o + ((n * oh + oy) * ow + ox) * c
                            let (ys, xs) = g.window(oy, ox)
                            for iy in ys { for ix in xs {
                                let src = x + ((n * g.h + iy) * g.w + ix) * c
                                for j in 0..<c { dst[j] += src[j] }
                            } }
                            let inv = 1 / divisor[oy * ow + ox]
                            for j in 0..<c { dst[j] *= inv }
                        }
                    }
                }
            }
        }
        let inShape = input.shape
        return record(Tensor(shape: [g.n, oh, ow, c], scalars: out), [input]) { dy in
            var dx = [Float](repeating: 0, count: Shape.count(inShape))
            for n in 0..<g.n { for oy in 0..<oh { for ox in 0..<ow {
                let (ys, xs) = g.window(oy, ox)
                let inv = 1 / divisor[oy * ow + ox]
                let gi = ((n * oh + oy) * ow + ox) * c
                for iy in ys { for ix in xs {
                    let b = ((n * g.h + iy) * g.w + ix) * c
                    for j in 0..<c { dx[b + j] += dy.scalars[gi + j] * inv }
                } }
            } } }
            return [Tensor(shape: inShape, scalars: dx)]
        }
    }

    /// The mean over height and width: [N, H, W, C] → [N, C] (or [N, 1, 1, C] with keepDims).
    public static func globalAvgPool2d(_ input: Tensor, keepDims: Bool = false) -> Tensor {
        require(input.rank == 4, "globalAvgPool2d", "input must be NHWC (rank 4), got shape \(input.shape)")
        let (n, h, w, c) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let hw = h * w
        var out = reduceKernel(input.scalars, n, hw, c, .sum)
        let inv = 1 / Float(Swift.max(hw, 1))
        for i in out.indices { out[i] *= inv }
        let inShape = input.shape
        return record(Tensor(shape: keepDims ? [n, 1, 1, c] : [n, c], scalars: out), [input]) { dy in
            var dx = [Float](repeating: 0, count: Shape.count(inShape))
            for b in 0..<n { for p in 0..<hw { for j in 0..<c {
                dx[(b * hw + p) * c + j] = dy.scalars[b * c + j] * inv
            } } }
            return [Tensor(shape: inShape, scalars: dx)]
        }
    }
}
