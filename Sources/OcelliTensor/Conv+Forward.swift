import COcelliKernels

// The convolution forward kernels (direct, dot, im2col, depthwise, naive) behind Tensor.conv2d.
extension Tensor {
    // MARK: Forward

    static func convForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry,
                            _ algorithm: ConvolutionAlgorithm, activation: FusedActivation = .linear) -> [Float] {
        let algo = algorithm == .automatic ? automaticAlgorithm(g) : algorithm
        if algorithm == .automatic, let t = winogradTile(g) {
            // Deep 3x3 stride-1 layers in training (and the input gradients of such layers,
            // which are stride-1 convolutions too): Winograd, the filter transformed per call.
            return winogradForward(x, t.transformFilter(w, channels: g.c, filters: g.o), bias, g, t, activation: activation)
        }
        var out: [Float]
        if g.isPointwise && algorithm == .automatic && g.c > 64 {
            // Deep 1x1 layers: one GEMM. (Shallow ones go to the direct kernel, which reads the
            // pixels in place instead of packing them.)
            out = pointwise(x, w, bias, g)
        } else {
            switch algo {
            case .direct: return directForward(x, w, bias, g, activation: activation)
            case .im2col: return im2colForward(x, w, bias, g, activation: activation)
            case .naive: out = g.isDepthwise ? depthwiseForward(x, w, bias, g) : naiveForward(x, w, bias, g)
            case .dot: out = dotForward(x, w, bias, g)
            default: return im2colForward(x, w, bias, g, activation: activation)
            }
        }
        if activation != .linear {
            out.withUnsafeMutableBufferPointer { finishRows($0.baseAddress!, count: $0.count, activation) }
        }
        return out
    }

    /// The kernel `.automatic` runs for a geometry. Measured here: the direct kernel wins up to 64
    /// input channels per group (3x3, 104² and 26² images); im2col + GEMM wins on deep layers
    /// (13x13x512→1024). Four or fewer output channels would leave the direct kernel's 16-wide
    /// panels mostly empty: dot products along the input channels do better.
    static func automaticAlgorithm(_ g: ConvGeometry) -> ConvolutionAlgorithm {
        g.isDepthwise ? .naive : (g.og <= 4 && g.cg >= 8 ? .dot : (g.cg <= 64 ? .direct : .im2col))
    }

    private static func pointwise(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry) -> [Float] {
        let p = g.n * g.h * g.w
        var out = [Float](repeating: 0, count: p * g.o)
        if let bias { for r in 0..<p { for j in 0..<g.o { out[r * g.o + j] = bias[j] } } }
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    GEMM.sgemm(m: p, n: g.o, k: g.c, a: xp.baseAddress!, rsA: g.c, csA: 1,
                               b: wp.baseAddress!, rsB: g.o, csB: 1, c: op.baseAddress!, ldc: g.o,
                               accumulate: bias != nil)
                }
            }
        }
        return out
    }

    /// The direct NHWC kernel (C, 6 pixels × 16 channels per tile), split by output rows.
    /// The direct kernel's weight layout: per group, 16-channel panels over the whole K.
    static func packDirectWeights(_ w: [Float], _ g: ConvGeometry) -> [Float] {
        let panels = (g.og + 15) / 16
        var packed = [Float](repeating: 0, count: g.groups * panels * g.kdim * 16)
        w.withUnsafeBufferPointer { wp in
            packed.withUnsafeMutableBufferPointer { pp in
                for gi in 0..<g.groups {
                    ocelli_pack_conv_weights(g.kdim, g.og, wp.baseAddress! + gi * g.og, g.o,
                                             pp.baseAddress! + gi * panels * g.kdim * 16)
                }
            }
        }
        return packed
    }

    static func directForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry,
                              packedWeights: [Float]? = nil, activation: FusedActivation = .linear) -> [Float] {
        let (oh, ow) = (g.oh, g.ow)
        var out = uninitializedScalars(g.n * oh * ow * g.o)  // every element is written
        out.withUnsafeMutableBufferPointer { op in
            let ob = UnsafeSendable(op.baseAddress!)
            withDirectKernel(x, packedWeights ?? packDirectWeights(w, g), bias, g, activation) { run in
                Parallel.forRanges(g.n * oh, minimumChunk: Swift.max(1, 4096 / Swift.max(1, ow * g.o / 16))) { r in
                    var row = r.lowerBound
                    while row < r.upperBound {
                        let n = row / oh, y0 = row % oh
                        let y1 = Swift.min(oh, y0 + (r.upperBound - row))
                        run(n, y0, y1, ob.value)
                        row += y1 - y0
                    }
                }
            }
        }
        return out
    }

    /// The direct kernel followed by a 2x2 stride-2 max pool (even output sizes): each pair of
    /// conv rows goes to a per-thread buffer and is pooled into one output row from there.
    static func directForwardMaxPooled(_ x: [Float], _ bias: [Float]?, _ g: ConvGeometry,
                                       packedWeights packed: [Float], activation: FusedActivation) -> [Float] {
        let (oh, ow, o) = (g.oh, g.ow, g.o)
        let (ph, pw) = (oh / 2, ow / 2)
        var out = uninitializedScalars(g.n * ph * pw * o)  // every element is written
        out.withUnsafeMutableBufferPointer { op in
            let ob = UnsafeSendable(op.baseAddress!)
            withDirectKernel(x, packed, bias, g, activation) { run in
                Parallel.forRanges(g.n * ph, minimumChunk: Swift.max(1, 2048 / Swift.max(1, ow * o / 16))) { r in
                    let rowFloats = ow * o
                    let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 2 * rowFloats)
                    defer { buffer.deallocate() }
                    for prow in r {
                        let n = prow / ph, y0 = 2 * (prow % ph)
                        // Rows are written at ((n·OH + y)·OW)·O from the base: shift it so rows
                        // y0 and y0 + 1 land in the buffer.
                        run(n, y0, y0 + 2, buffer - (n * oh + y0) * rowFloats)
                        ocelli_maxpool2x2_rows(buffer, buffer + rowFloats, ob.value + prow * pw * o, pw, o)
                    }
                }
            }
        }
        return out
    }

    /// Sets up the direct kernel's operands once and hands `body` a function that computes
    /// output rows y0..<y1 of image n — every group, the bias, and the activation (in the
    /// kernel's store when it can, else in a pass over those rows) — into an output laid out as
    /// [N, OH, OW, O] from the given base.
    static func withDirectKernel(_ x: [Float], _ packed: [Float], _ bias: [Float]?, _ g: ConvGeometry,
                                 _ activation: FusedActivation,
                                 _ body: (_ run: (Int, Int, Int, UnsafeMutablePointer<Float>) -> Void) -> Void) {
        let panels = (g.og + 15) / 16
        let zeros = [Float](repeating: 0, count: g.cg + 16)
        // The kernel applies max(v, slope·v) as it stores each tile: relu and leaky slopes in [0, 1].
        let fusedInKernel = activation.storesAsMax
        let slope = fusedInKernel ? activation.slope : 1
        let biasScalars = bias ?? []
        x.withUnsafeBufferPointer { xp in
            packed.withUnsafeBufferPointer { pp in
                zeros.withUnsafeBufferPointer { zp in
                    biasScalars.withUnsafeBufferPointer { bp in
                        let ptrs = UnsafeSendable((xp.baseAddress!, pp.baseAddress!, zp.baseAddress!,
                                                   bias == nil ? nil : bp.baseAddress))
                        body { n, y0, y1, out in
                            let (xb, pb, zb, bb) = ptrs.value
                            for gi in 0..<g.groups {
                                ocelli_conv2d_direct(xb + gi * g.cg, n, g.h, g.w, g.cg, g.c,
                                                     pb + gi * panels * g.kdim * 16, g.og, g.kh, g.kw,
                                                     g.sh, g.sw, g.dh, g.dw, g.pt, g.pl,
                                                     out + gi * g.og, g.oh, g.ow, g.o, y0, y1,
                                                     bb.map { $0 + gi * g.og }, zb, slope)
                            }
                            if !fusedInKernel {
                                finishRows(out + (n * g.oh + y0) * g.ow * g.o, count: (y1 - y0) * g.ow * g.o, activation)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Dot-product kernel (C): the filter is rearranged to [group][O/groups][KH][KW][C/groups].
    static func dotForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry) -> [Float] {
        let (oh, ow) = (g.oh, g.ow)
        var out = uninitializedScalars(g.n * oh * ow * g.o)  // every element is written
        var wt = [Float](repeating: 0, count: w.count)
        for t in 0..<(g.kh * g.kw) { for ci in 0..<g.cg { for oc in 0..<g.o {
            let gi = oc / g.og, ol = oc % g.og
            wt[((gi * g.og + ol) * g.kh * g.kw + t) * g.cg + ci] = w[(t * g.cg + ci) * g.o + oc]
        } } }
        let biasScalars = bias ?? []
        x.withUnsafeBufferPointer { xp in
            wt.withUnsafeBufferPointer { wp in
                biasScalars.withUnsafeBufferPointer { bp in
                    out.withUnsafeMutableBufferPointer { op in
                        let p = UnsafeSendable((xp.baseAddress!, wp.baseAddress!, op.baseAddress!,
                                                bias == nil ? nil : bp.baseAddress))
                        Parallel.forRanges(g.n * oh, minimumChunk: 2) { r in
                            let (xb, wb, ob, bb) = p.value
                            for row in r {
                                let n = row / oh, oy = row % oh
                                for gi in 0..<g.groups {
                                    ocelli_conv2d_dot(xb + gi * g.cg, n, g.h, g.w, g.cg, g.c,
                                                      wb + gi * g.og * g.kdim, g.og, g.kh, g.kw,
                                                      g.sh, g.sw, g.dh, g.dw, g.pt, g.pl,
                                                      ob + gi * g.og, oh, ow, g.o, oy, oy + 1,
                                                      bb.map { $0 + gi * g.og })
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// Lays out the receptive fields of output pixels `rows` (flat over N·OH·OW) for group `gi`
    /// as rows of a matrix: cols[p, (ky, kx, c)], zero where the window leaves the input.
    static func im2col(_ x: UnsafePointer<Float>, _ g: ConvGeometry, rows: Range<Int>, group gi: Int,
                       _ cols: UnsafeMutablePointer<Float>) {
        let (oh, ow, kdim, cg) = (g.oh, g.ow, g.kdim, g.cg)
        let rowLength = g.kw * cg
        for p in rows {
            let n = p / (oh * ow), oy = (p / ow) % oh, ox = p % ow
            var dst = cols + (p - rows.lowerBound) * kdim
            let x0 = ox * g.sw - g.pl
            let wholeRow = g.dw == 1 && cg == g.c && x0 >= 0 && x0 + g.kw <= g.w
            for ky in 0..<g.kh {
                let iy = oy * g.sh + ky * g.dh - g.pt
                if iy < 0 || iy >= g.h {
                    dst.update(repeating: 0, count: rowLength)
                } else if wholeRow {
                    dst.update(from: x + ((n * g.h + iy) * g.w + x0) * g.c, count: rowLength)
                } else {
                    for kx in 0..<g.kw {
                        let ix = x0 + kx * g.dw
                        if ix >= 0 && ix < g.w {
                            (dst + kx * cg).update(from: x + ((n * g.h + iy) * g.w + ix) * g.c + gi * cg, count: cg)
                        } else {
                            (dst + kx * cg).update(repeating: 0, count: cg)
                        }
                    }
                }
                dst += rowLength
            }
        }
    }

    /// Output pixels per im2col chunk: a multiple of 6 whose columns (~256 KB) stay in L2.
    static func im2colChunkRows(_ g: ConvGeometry) -> Int {
        let rows: Int = Swift.max(6, 65_536 / Swift.max(1, g.kdim)) / 6 * 6
        return Swift.min(rows, g.n * g.oh * g.ow)
    }

    /// Output pixels per chunk of the filter gradient. Each chunk is one product
    /// dW += colsᵀ · dY whose depth is the chunk's rows and which reads and writes all of dW, so
    /// the chunks are tall — at least 510 rows unless their columns would pass 16 MB — or the
    /// traffic of dW outweighs the arithmetic (12-row chunks on a 3x3x512→1024 layer moved
    /// 40 MB per 12 rows). Fixed by the geometry alone, so the sums do not depend on the threads.
    static func filterGradientChunkRows(_ g: ConvGeometry) -> Int {
        let total = g.n * g.oh * g.ow
        let tall = Swift.min(512, (4 << 20) / Swift.max(1, g.kdim)) / 6 * 6
        return Swift.max(1, Swift.min(total, Swift.max(im2colChunkRows(g), tall)))
    }

    /// Rows per chunk of the im2col forward: as `im2colChunkRows`, but tall chunks when the weights
    /// are large. (Each output row is one GEMM over the full K whatever the chunk, so the result
    /// does not depend on it; the filter gradient keeps the fixed chunks its partial sums need.)
    static func im2colForwardChunkRows(_ g: ConvGeometry) -> Int {
        let total = g.n * g.oh * g.ow
        var rows = im2colChunkRows(g)
        if g.kdim * g.o > 1 << 16 {
            // Large weights (deep layers): every chunk streams all of them from memory, so use
            // few, tall chunks — a multiple of the thread count, at most 288 rows each.
            let threads = Parallel.threadCount
            let count = threads * ((total + threads * 288 - 1) / (threads * 288))
            rows = Swift.max(rows, ((total + count - 1) / count + 5) / 6 * 6)
        }
        return Swift.min(rows, total)
    }

    /// im2col + GEMM, in chunks of output pixels spread over the threads; each chunk's columns
    /// are built and consumed while they sit in cache, and every output row is computed by one
    /// single-threaded GEMM over the full K (so the result does not depend on the thread count).
    static func im2colForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry,
                              packedWeights: [PackedMatrix]? = nil, activation: FusedActivation = .linear) -> [Float] {
        let kdim = g.kdim
        let total = g.n * g.oh * g.ow
        var out = uninitializedScalars(total * g.o)  // every row and group is written by a GEMM
        let chunk = im2colForwardChunkRows(g)
        let chunks = (total + chunk - 1) / chunk
        // Each group's weights are packed once and shared by every chunk and thread.
        let packed = (packedWeights ?? (0..<g.groups).map {
            PackedMatrix(k: kdim, n: g.og, scalars: w, offset: $0 * g.og, rsB: g.o, csB: 1)
        })
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                let p = UnsafeSendable((xp.baseAddress!, op.baseAddress!))
                Parallel.forRanges(chunks) { range in
                    let (xb, ob) = p.value
                    let cols = UnsafeMutablePointer<Float>.allocate(capacity: chunk * kdim)
                    defer { cols.deallocate() }
                    for c in range {
                        let rows = (c * chunk)..<Swift.min(total, (c + 1) * chunk)
                        for gi in 0..<g.groups {
                            im2col(xb, g, rows: rows, group: gi, cols)
                            GEMM.sgemmPacked(m: rows.count, a: cols, rsA: kdim, csA: 1, packed: packed[gi],
                                             c: ob + rows.lowerBound * g.o + gi * g.og, ldc: g.o)
                        }
                        // Bias and activation while the chunk's rows are in cache.
                        let first = ob + rows.lowerBound * g.o
                        if let bias { addBias(first, rows: rows.count, bias) }
                        if activation != .linear { finishRows(first, count: rows.count * g.o, activation) }
                    }
                }
            }
        }
        return out
    }

    /// Images per chunk for the strided input gradient (bounded memory, ~64 MB of columns).
    static func imagesPerChunk(_ g: ConvGeometry) -> Int {
        let perImage: Int = Swift.max(1, g.oh * g.ow * g.kdim)
        return Swift.max(1, Swift.min(g.n, (16 << 20) / perImage))
    }

    /// dFilter = Σ colsᵀ · dY over chunks of output pixels. The chunks are grouped into a number
    /// of partial sums fixed by the shape (not the thread count), added in order at the end, so
    /// the result is bitwise reproducible whatever the threads.
    static func filterGradient(_ x: [Float], _ dy: [Float], _ g: ConvGeometry) -> [Float] {
        let kdim = g.kdim, wcount = kdim * g.o
        let total = g.n * g.oh * g.ow
        let chunk = filterGradientChunkRows(g)
        let chunks = (total + chunk - 1) / chunk
        // Independent partial sums (added in order at the end): a power of two, so that two or
        // four threads share them evenly; at most 64 MB of them.
        let most = Swift.max(1, Swift.min(8, chunks, (16 << 20) / Swift.max(1, wcount)))
        var partials = 1
        while partials * 2 <= most { partials *= 2 }
        var acc = [Float](repeating: 0, count: partials * wcount)
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { gp in
                acc.withUnsafeMutableBufferPointer { ap in
                    let p = UnsafeSendable((xp.baseAddress!, gp.baseAddress!, ap.baseAddress!))
                    Parallel.forRanges(partials) { range in
                        let (xb, gb, ab) = p.value
                        let cols = UnsafeMutablePointer<Float>.allocate(capacity: chunk * kdim)
                        defer { cols.deallocate() }
                        for s in range {
                            let dw = ab + s * wcount
                            for c in (s * chunks / partials)..<((s + 1) * chunks / partials) {
                                let rows = (c * chunk)..<Swift.min(total, (c + 1) * chunk)
                                for gi in 0..<g.groups {
                                    // A 1x1 stride-1 convolution's columns are its input pixels.
                                    let a: UnsafePointer<Float>
                                    if g.isPointwise { a = xb + rows.lowerBound * g.c } else {
                                        im2col(xb, g, rows: rows, group: gi, cols)
                                        a = UnsafePointer(cols)
                                    }
                                    // dW[(ky,kx,c), o] += colsᵀ · dY[rows, o]
                                    ocelli_sgemm(kdim, g.og, rows.count, a, 1, kdim,
                                                 gb + rows.lowerBound * g.o + gi * g.og, g.o, 1,
                                                 dw + gi * g.og, g.o, 1)
                                }
                            }
                        }
                    }
                }
            }
        }
        if partials == 1 { return acc }
        var dw = Array(acc[0..<wcount])
        for s in 1..<partials { for i in 0..<wcount { dw[i] += acc[s * wcount + i] } }
        return dw
    }

    /// Adds `bias` to `rows` rows of bias.count values starting at `p`.
    static func addBias(_ p: UnsafeMutablePointer<Float>, rows: Int, _ bias: [Float]) {
        let o = bias.count
        bias.withUnsafeBufferPointer { bp in
            for r in 0..<rows {
                let row = p + r * o
                for j in 0..<o { row[j] += bp[j] }
            }
        }
    }

    /// Applies a fused activation in place to `count` values.
    static func finishRows(_ p: UnsafeMutablePointer<Float>, count: Int, _ activation: FusedActivation) {
        if activation == .linear { return }
        let slope = activation.slope
        var i = 0
        let s = SIMD8<Float>(repeating: slope)
        while i + 8 <= count {
            let raw = UnsafeMutableRawPointer(p + i)
            let v = raw.loadUnaligned(as: SIMD8<Float>.self)
            raw.storeBytes(of: v.replacing(with: v * s, where: v .< 0), as: SIMD8<Float>.self)
            i += 8
        }
        while i < count { if p[i] < 0 { p[i] *= slope }; i += 1 }
    }

    static func addBias(_ out: inout [Float], _ bias: [Float]) {
        let o = bias.count
        out.withUnsafeMutableBufferPointer { op in
            bias.withUnsafeBufferPointer { bp in
                for r in 0..<(op.count / o) {
                    let row = op.baseAddress! + r * o
                    for j in 0..<o { row[j] += bp[j] }
                }
            }
        }
    }

    /// Depthwise (groups == C): each input channel c feeds output channels c·m ..< (c+1)·m.
    static func depthwiseForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry) -> [Float] {
        let (oh, ow, o, mult) = (g.oh, g.ow, g.o, g.og)
        var out = [Float](repeating: 0, count: g.n * oh * ow * o)
        x.withUnsafeBufferPointer { xp in
            w.withUnsafeBufferPointer { wp in
                out.withUnsafeMutableBufferPointer { op in
                    let p = UnsafeSendable((xp.baseAddress!, wp.baseAddress!, op.baseAddress!))
                    Parallel.forRanges(g.n * oh, minimumChunk: 4) { r in
                        let (xb, wb, ob) = p.value
                        for row in r {
                            let n = row / oh, oy = row % oh
                            for ox in 0..<ow {
                                let dst = ob + ((n * oh + oy) * ow + ox) * o
                                if let bias { for j in 0..<o { dst[j] = bias[j] } }
                                for ky in 0..<g.kh {
                                    let iy = oy * g.sh + ky * g.dh - g.pt
                                    if iy < 0 || iy >= g.h { continue }
                                    for kx in 0..<g.kw {
                                        let ix = ox * g.sw + kx * g.dw - g.pl
                                        if ix < 0 || ix >= g.w { continue }
                                        let src = xb + ((n * g.h + iy) * g.w + ix) * g.c
                                        let wr = wb + (ky * g.kw + kx) * o
                                        if mult == 1 {
                                            for j in 0..<o { dst[j] += src[j] * wr[j] }
                                        } else {
                                            for j in 0..<o { dst[j] += src[j / mult] * wr[j] }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The textbook loop, any geometry; the reference the fast kernels are tested against.
    static func naiveForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry) -> [Float] {
        let (oh, ow) = (g.oh, g.ow)
        var out = [Float](repeating: 0, count: g.n * oh * ow * g.o)
        for n in 0..<g.n { for oy in 0..<oh { for ox in 0..<ow { for oc in 0..<g.o {
            let gi = oc / g.og
            var acc: Float = bias?[oc] ?? 0
            for ky in 0..<g.kh { for kx in 0..<g.kw {
                let iy = oy * g.sh + ky * g.dh - g.pt, ix = ox * g.sw + kx * g.dw - g.pl
                if iy < 0 || iy >= g.h || ix < 0 || ix >= g.w { continue }
                for ci in 0..<g.cg {
                    acc += x[((n * g.h + iy) * g.w + ix) * g.c + gi * g.cg + ci] * w[((ky * g.kw + kx) * g.cg + ci) * g.o + oc]
                }
            } }
            out[((n * oh + oy) * ow + ox) * g.o + oc] = acc
        } } } }
        return out
    }
}
