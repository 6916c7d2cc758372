import COcelliKernels

/// Dropout, nearest-neighbour upsampling and the space/depth rearrangements (TensorFlow's and
/// Darknet's), each with its backward.
extension Tensor {
    /// Inverted dropout: each element is kept with probability 1 − rate and scaled by 1/(1 − rate),
    /// so the expected value is unchanged. The mask comes from `generator` (seeded → reproducible).
    ///
    /// `firstIndex` is the index of x's first element in a larger batch x is a slice of: the mask
    /// is then that batch's (a data-parallel rank's shard of a batch drops what the whole batch
    /// would in one process).
    public static func dropout(_ x: Tensor, rate: Float, using generator: inout SeededGenerator, firstIndex: Int = 0) -> Tensor {
        require(rate >= 0 && rate < 1, "dropout", "rate \(rate) must lie in [0, 1)")
        if rate == 0 { return x }
        // One draw from the generator keys the whole mask; the backward recomputes the same
        // mask from the key instead of keeping one as large as the activations.
        let key = generator.next()
        let y = dropoutMask(x, rate: rate, key: key, base: firstIndex)
        return record(y, [x]) { g in [dropoutMask(g, rate: rate, key: key, base: firstIndex)] }
    }

    /// x times the dropout mask: element i is kept (and scaled by 1/(1 − rate)) when a 32-bit
    /// hash of (i, key) is ≥ rate·2³². Counter-based, so the mask is the same for any split of
    /// the work over threads.
    static func dropoutMask(_ x: Tensor, rate: Float, key: UInt64, base: Int = 0) -> Tensor {
        let scale = 1 / (1 - rate)
        let threshold = UInt32(Swift.min(Double(rate) * 4_294_967_296.0, 4_294_967_295.0))
        let n = x.count
        if n == 0 { return x }
        return Tensor.make(x.shape) { d in
            x.scalars.withUnsafeBufferPointer { s in
                let src = UnsafeSendable(s.baseAddress!), dst = UnsafeSendable(d.baseAddress!)
                Parallel.forRanges(n, minimumChunk: 1 << 16, alignment: 64) { r in
                    ocelli_dropout(src.value, dst.value, r.lowerBound, r.upperBound, base, key, threshold, scale)
                }
            }
        }
    }

    /// A data movement out[i] = in[source[i]] where `source` is a bijection (its backward is the
    /// inverse scatter).
    static func gatherPermutation(_ x: Tensor, _ outShape: [Int], _ source: [Int]) -> Tensor {
        let y = Tensor(shape: outShape, scalars: source.map { x.scalars[$0] })
        let inShape = x.shape
        return record(y, [x]) { g in
            var d = [Float](repeating: 0, count: source.count)
            for (i, s) in source.enumerated() { d[s] = g.scalars[i] }
            return [Tensor(shape: inShape, scalars: d)]
        }
    }

    /// Nearest-neighbour upsampling of NHWC by integer factors (Keras' UpSampling2D, Darknet's
    /// `[upsample]` with stride s).
    public static func upsampleNearest(_ x: Tensor, scale: (Int, Int) = (2, 2)) -> Tensor {
        require(x.rank == 4, "upsampleNearest", "input must be NHWC (rank 4), got shape \(x.shape)")
        require(scale.0 >= 1 && scale.1 >= 1, "upsampleNearest", "scale \(scale) must be ≥ 1")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow) = (h * scale.0, w * scale.1)
        var y = [Float](repeating: 0, count: n * oh * ow * c)
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow {
            let src = ((b * h + oy / scale.0) * w + ox / scale.1) * c, dst = ((b * oh + oy) * ow + ox) * c
            for j in 0..<c { y[dst + j] = x.scalars[src + j] }
        } } }
        let inShape = x.shape
        return record(Tensor(shape: [n, oh, ow, c], scalars: y), [x]) { g in
            var d = [Float](repeating: 0, count: Shape.count(inShape))
            for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow {
                let dst = ((b * h + oy / scale.0) * w + ox / scale.1) * c, src = ((b * oh + oy) * ow + ox) * c
                for j in 0..<c { d[dst + j] += g.scalars[src + j] }
            } } }
            return [Tensor(shape: inShape, scalars: d)]
        }
    }

    /// TensorFlow's space_to_depth: [N, H, W, C] → [N, H/b, W/b, C·b²] with output channel
    /// (dy·b + dx)·C + c taken from pixel (y·b + dy, x·b + dx).
    public static func spaceToDepth(_ x: Tensor, blockSize b: Int) -> Tensor {
        require(x.rank == 4 && b >= 1 && x.shape[1] % b == 0 && x.shape[2] % b == 0, "spaceToDepth",
                "needs NHWC input with height and width divisible by \(b), got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow, oc) = (h / b, w / b, c * b * b)
        var src = [Int](repeating: 0, count: x.count)
        var i = 0
        for bn in 0..<n { for y in 0..<oh { for xx in 0..<ow { for ch in 0..<oc {
            let blk = ch / c, cc = ch % c
            src[i] = ((bn * h + y * b + blk / b) * w + xx * b + blk % b) * c + cc
            i += 1
        } } } }
        return gatherPermutation(x, [n, oh, ow, oc], src)
    }

    /// TensorFlow's depth_to_space, the inverse of `spaceToDepth`.
    public static func depthToSpace(_ x: Tensor, blockSize b: Int) -> Tensor {
        require(x.rank == 4 && b >= 1 && x.shape[3] % (b * b) == 0, "depthToSpace",
                "needs NHWC input with channels divisible by \(b * b), got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow, oc) = (h * b, w * b, c / (b * b))
        var src = [Int](repeating: 0, count: x.count)
        var i = 0
        for bn in 0..<n { for y in 0..<oh { for xx in 0..<ow { for ch in 0..<oc {
            let blk = (y % b) * b + xx % b
            src[i] = ((bn * h + y / b) * w + xx / b) * c + blk * oc + ch
            i += 1
        } } } }
        return gatherPermutation(x, [n, oh, ow, oc], src)
    }

    /// Darknet's `[reorg]` layer (forward_reorg_layer → reorg_cpu with forward = 0), exactly.
    ///
    /// Darknet works on NCHW buffers and its reorg is not TensorFlow's space_to_depth: the output
    /// buffer, enumerated with the *input's* dimensions (C, H, W), reads the input buffer as if it
    /// had dimensions (C/s², H·s, W·s). In NCHW flat indices, for f = i + W·(j + H·(k + C·b)):
    /// c2 = k mod (C/s²), o = k div (C/s²), src = (i·s + o mod s) + W·s·((j·s + o div s) + H·s·(c2 + C/s²·b)),
    /// out[f] = in[src]. The result is then read as [N, C·s², H/s, W/s] (here in NHWC).
    public static func darknetReorg(_ x: Tensor, stride s: Int) -> Tensor {
        require(x.rank == 4 && s >= 1 && x.shape[1] % s == 0 && x.shape[2] % s == 0 && x.shape[3] % (s * s) == 0,
                "darknetReorg", "needs NHWC input with height and width divisible by \(s) and channels by \(s * s), got \(x.shape)")
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (oh, ow, oc) = (h / s, w / s, c * s * s)
        let outC = c / (s * s)
        var src = [Int](repeating: 0, count: x.count)
        var q = 0
        for b in 0..<n { for y in 0..<oh { for xx in 0..<ow { for ch in 0..<oc {
            // This output element's NCHW flat index, decomposed with the input's dimensions.
            let f = xx + ow * (y + oh * (ch + oc * b))
            let i = f % w, j = (f / w) % h, k = (f / (w * h)) % c, bb = f / (w * h * c)
            let c2 = k % outC, off = k / outC
            let w2 = i * s + off % s, h2 = j * s + off / s
            let srcNCHW = w2 + w * s * (h2 + h * s * (c2 + outC * bb))
            // Back to the input's NHWC layout.
            let sx = srcNCHW % w, sy = (srcNCHW / w) % h, sc = (srcNCHW / (w * h)) % c, sb = srcNCHW / (w * h * c)
            src[q] = ((sb * h + sy) * w + sx) * c + sc
            q += 1
        } } } }
        return gatherPermutation(x, [n, oh, ow, oc], src)
    }
}
