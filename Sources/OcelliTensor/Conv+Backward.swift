import COcelliKernels

// The convolution backward pass: filter and input gradients behind Tensor.conv2d.
extension Tensor {
    // MARK: Backward

    /// Gradients of a convolution with respect to its input and its filter.
    ///
    /// dFilter = colsᵀ · dY (im2col, chunked by images). dInput: for stride 1 it is itself a
    /// convolution of dY with the flipped, transposed filter (so it runs on the fast forward
    /// kernels); otherwise dCols = dY · Wᵀ is gathered back to pixels (col2im in gather form,
    /// which parallelises over input rows without write conflicts).
    static func convBackward(_ x: [Float], _ w: [Float], _ dy: [Float], _ g: ConvGeometry,
                             needInput: Bool, needFilter: Bool) -> ([Float]?, [Float]?) {
        if g.isDepthwise { return depthwiseBackward(x, w, dy, g, needInput: needInput, needFilter: needFilter) }
        let dw = needFilter ? filterGradient(x, dy, g) : nil
        guard needInput else { return (nil, dw) }
        // Stride 1: the input gradient is a convolution itself (fast kernels). Strided:
        // dCols = dY · Wᵀ per group of images, gathered back to pixels.
        if g.sh == 1 && g.sw == 1 { return (transposedConvStride1(dy, w, g), dw) }
        let (oh, ow, kdim) = (g.oh, g.ow, g.kdim)
        var dx = [Float](repeating: 0, count: x.count)
        let chunk = imagesPerChunk(g)
        var cols = [Float](repeating: 0, count: chunk * oh * ow * kdim)
        dy.withUnsafeBufferPointer { gp in
            w.withUnsafeBufferPointer { wp in
                cols.withUnsafeMutableBufferPointer { cp in
                    dx.withUnsafeMutableBufferPointer { dxp in
                        var n0 = 0
                        while n0 < g.n {
                            let n1 = Swift.min(g.n, n0 + chunk)
                            let rows = (n1 - n0) * oh * ow
                            for gi in 0..<g.groups {
                                GEMM.sgemm(m: rows, n: kdim, k: g.og,
                                           a: gp.baseAddress! + n0 * oh * ow * g.o + gi * g.og, rsA: g.o, csA: 1,
                                           b: wp.baseAddress! + gi * g.og, rsB: 1, csB: g.o,
                                           c: cp.baseAddress!, ldc: kdim)
                                col2imGather(cp.baseAddress!, g, n0, n1, gi, dxp.baseAddress!)
                            }
                            n0 = n1
                        }
                    }
                }
            }
        }
        return (dx, dw)
    }

    /// dX for stride 1: a convolution of dY ([N, OH, OW, O]) with W'[ky, kx, o, c] =
    /// W[KH−1−ky, KW−1−kx, c, o] and padding (K−1)·d − pad on each side.
    static func transposedConvStride1(_ dy: [Float], _ w: [Float], _ g: ConvGeometry) -> [Float] {
        // Transposed, flipped filter, per group: [KH, KW, O/groups, C] (HWIO with groups).
        var wt = [Float](repeating: 0, count: w.count)
        for ky in 0..<g.kh { for kx in 0..<g.kw { for gi in 0..<g.groups {
            for ci in 0..<g.cg { for oc in 0..<g.og {
                let src = (((g.kh - 1 - ky) * g.kw + (g.kw - 1 - kx)) * g.cg + ci) * g.o + gi * g.og + oc
                let dst = ((ky * g.kw + kx) * g.og + oc) * g.c + gi * g.cg + ci
                wt[dst] = w[src]
            } }
        } } }
        let t = ConvGeometry(n: g.n, h: g.oh, w: g.ow, c: g.o, kh: g.kh, kw: g.kw, o: g.c, sh: 1, sw: 1,
                             dh: g.dh, dw: g.dw,
                             pt: (g.kh - 1) * g.dh - g.pt, pb: (g.kh - 1) * g.dh - g.pb,
                             pl: (g.kw - 1) * g.dw - g.pl, pr: (g.kw - 1) * g.dw - g.pr, groups: g.groups)
        precondition(t.oh == g.h && t.ow == g.w)
        if t.pt < 0 || t.pb < 0 || t.pl < 0 || t.pr < 0 {
            // Padding wider than the dilated kernel (unusual): the reference loop handles it.
            return naiveForward(dy, wt, nil, t)
        }
        return convForward(dy, wt, nil, t, .automatic)
    }

    /// dX[n, iy, ix, c] = Σ dCols[(n, oy, ox), (ky, kx, c)] over the windows that cover (iy, ix).
    static func col2imGather(_ cols: UnsafePointer<Float>, _ g: ConvGeometry, _ n0: Int, _ n1: Int, _ gi: Int,
                             _ dx: UnsafeMutablePointer<Float>) {
        let (oh, ow, kdim, cg) = (g.oh, g.ow, g.kdim, g.cg)
        let p = UnsafeSendable((cols, dx))
        Parallel.forRanges((n1 - n0) * g.h, minimumChunk: 4) { r in
            let (cols, dx) = p.value
            for row in r {
                let nl = row / g.h, iy = row % g.h
                for ix in 0..<g.w {
                    let dst = dx + (((n0 + nl) * g.h + iy) * g.w + ix) * g.c + gi * cg
                    for ky in 0..<g.kh {
                        let ty = iy + g.pt - ky * g.dh
                        if ty < 0 || ty % g.sh != 0 { continue }
                        let oy = ty / g.sh
                        if oy >= oh { continue }
                        for kx in 0..<g.kw {
                            let tx = ix + g.pl - kx * g.dw
                            if tx < 0 || tx % g.sw != 0 { continue }
                            let ox = tx / g.sw
                            if ox >= ow { continue }
                            let src = cols + ((nl * oh + oy) * ow + ox) * kdim + (ky * g.kw + kx) * cg
                            for c in 0..<cg { dst[c] += src[c] }
                        }
                    }
                }
            }
        }
    }

    static func depthwiseBackward(_ x: [Float], _ w: [Float], _ dy: [Float], _ g: ConvGeometry,
                                  needInput: Bool, needFilter: Bool) -> ([Float]?, [Float]?) {
        let (oh, ow, o, mult) = (g.oh, g.ow, g.o, g.og)
        let wc = w.count
        var dx = [Float](repeating: 0, count: needInput ? x.count : 0)
        // The filter gradient of each sample apart, then summed in sample order: the same result
        // for any number of threads.
        var dwPer = [Float](repeating: 0, count: needFilter ? g.n * wc : 0)
        x.withUnsafeBufferPointer { xb in w.withUnsafeBufferPointer { wb in dy.withUnsafeBufferPointer { dyb in
        dx.withUnsafeMutableBufferPointer { dxb in dwPer.withUnsafeMutableBufferPointer { dwb in
            let xp = UnsafeSendable(xb.baseAddress), wp = UnsafeSendable(wb.baseAddress), dyp = UnsafeSendable(dyb.baseAddress)
            let dxp = UnsafeSendable(dxb.baseAddress), dwp = UnsafeSendable(dwb.baseAddress)
            Parallel.forRanges(g.n) { samples in
                guard let xs = xp.value, let ws = wp.value, let dys = dyp.value else { return }
                for n in samples {
                    let dwn = dwp.value.map { $0 + n * wc }
                    for oy in 0..<oh { for ox in 0..<ow {
                        let gy = dys + ((n * oh + oy) * ow + ox) * o
                        for ky in 0..<g.kh {
                            let iy = oy * g.sh + ky * g.dh - g.pt
                            if iy < 0 || iy >= g.h { continue }
                            for kx in 0..<g.kw {
                                let ix = ox * g.sw + kx * g.dw - g.pl
                                if ix < 0 || ix >= g.w { continue }
                                let xi = ((n * g.h + iy) * g.w + ix) * g.c, wi = (ky * g.kw + kx) * o
                                let wk = ws + wi, xk = xs + xi
                                if mult == 1 {
                                    // One output channel per input channel: contiguous, vectorised.
                                    if needInput, let d = dxp.value { let dk = d + xi; for j in 0..<o { dk[j] += gy[j] * wk[j] } }
                                    if let dwn { let dk = dwn + wi; for j in 0..<o { dk[j] += gy[j] * xk[j] } }
                                } else {
                                    if needInput, let d = dxp.value { let dk = d + xi; for j in 0..<o { dk[j / mult] += gy[j] * wk[j] } }
                                    if let dwn { let dk = dwn + wi; for j in 0..<o { dk[j] += gy[j] * xk[j / mult] } }
                                }
                            }
                        }
                    } }
                }
            }
        } } } } }
        guard needFilter else { return (needInput ? dx : nil, nil) }
        var dw = [Float](repeating: 0, count: wc)
        for n in 0..<g.n { for i in 0..<wc { dw[i] += dwPer[n * wc + i] } }
        return (needInput ? dx : nil, dw)
    }
}
