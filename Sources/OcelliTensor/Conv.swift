import COcelliKernels

/// How a convolution or pooling window is padded.
public enum Padding: Equatable, Sendable {
    /// No padding: windows lie wholly inside the input.
    case valid
    /// TensorFlow's "same": output size ceil(input / stride), the odd cell of padding at the end.
    case same
    /// Explicit cells of padding on each side.
    case explicit(top: Int, bottom: Int, left: Int, right: Int)

    /// Padding on (top, bottom, left, right) for a window of `kernel` cells (dilated extent).
    public func amounts(height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int)) -> (Int, Int, Int, Int) {
        switch self {
        case .valid: return (0, 0, 0, 0)
        case let .explicit(t, b, l, r): return (t, b, l, r)
        case .same:
            func split(_ size: Int, _ k: Int, _ s: Int) -> (Int, Int) {
                let out = (size + s - 1) / s
                let total = Swift.max((out - 1) * s + k - size, 0)
                return (total / 2, total - total / 2)
            }
            let (t, b) = split(height, kernel.0, stride.0), (l, r) = split(width, kernel.1, stride.1)
            return (t, b, l, r)
        }
    }
}

/// Which kernel a convolution runs; `.automatic` picks by shape.
public enum ConvolutionAlgorithm: String, Sendable, CaseIterable {
    /// automatic: by shape. direct: the 6-pixel × 16-channel SIMD kernel. im2col: columns +
    /// GEMM. dot: per-output dot products along input channels (for ≤ 4 output channels, e.g.
    /// the input gradient of a first layer). naive: the reference loop.
    case automatic, direct, im2col, dot, naive
}

/// The geometry of one 2-D convolution (NHWC input, HWIO kernel).
struct ConvGeometry {
    var n, h, w, c: Int
    var kh, kw, o: Int
    var sh, sw, dh, dw: Int
    var pt, pb, pl, pr: Int
    var groups: Int
    var oh: Int { (h + pt + pb - (kh - 1) * dh - 1) / sh + 1 }
    var ow: Int { (w + pl + pr - (kw - 1) * dw - 1) / sw + 1 }
    var cg: Int { c / groups }
    var og: Int { o / groups }
    var kdim: Int { kh * kw * cg }
    var isDepthwise: Bool { groups == c && groups > 1 }
    var isPointwise: Bool {
        kh == 1 && kw == 1 && sh == 1 && sw == 1 && pt == 0 && pb == 0 && pl == 0 && pr == 0 && groups == 1
    }
}

extension Tensor {
    /// 2-D convolution (cross-correlation, as every framework) of an NHWC input with an HWIO kernel.
    ///
    /// - input: [N, H, W, C]; filter: [KH, KW, C / groups, O]; bias: [O] or nil.
    /// - groups: C and O must both divide by it; `groups == C` is a depthwise convolution.
    /// - returns: [N, OH, OW, O] with OH = (H + padTop + padBottom − dilation·(KH−1) − 1) / stride + 1.
    public static func conv2d(_ input: Tensor, filter: Tensor, bias: Tensor? = nil,
                              strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                              dilations: (Int, Int) = (1, 1), groups: Int = 1,
                              algorithm: ConvolutionAlgorithm = .automatic,
                              activation: FusedActivation = .linear) -> Tensor {
        require(input.rank == 4, "conv2d", "input must be NHWC (rank 4), got shape \(input.shape)")
        if case .leaky(let a) = activation {
            require((0...1).contains(a), "conv2d", "a fused leaky slope must lie in [0, 1], got \(a)")
        }
        require(filter.rank == 4, "conv2d", "filter must be HWIO (rank 4), got shape \(filter.shape)")
        require(groups >= 1 && input.shape[3] % groups == 0 && filter.shape[3] % groups == 0, "conv2d",
                "groups \(groups) must divide input channels \(input.shape[3]) and filters \(filter.shape[3])")
        require(filter.shape[2] * groups == input.shape[3], "conv2d",
                "filter \(filter.shape) expects \(filter.shape[2] * groups) input channels (groups \(groups)), input \(input.shape) has \(input.shape[3])")
        require(strides.0 >= 1 && strides.1 >= 1 && dilations.0 >= 1 && dilations.1 >= 1, "conv2d",
                "strides \(strides) and dilations \(dilations) must be ≥ 1")
        if let b = bias { require(b.shape == [filter.shape[3]], "conv2d", "bias shape \(b.shape) must be [\(filter.shape[3])]") }
        let (kh, kw) = (filter.shape[0], filter.shape[1])
        let pads = padding.amounts(height: input.shape[1], width: input.shape[2],
                                   kernel: ((kh - 1) * dilations.0 + 1, (kw - 1) * dilations.1 + 1), stride: strides)
        let g = ConvGeometry(n: input.shape[0], h: input.shape[1], w: input.shape[2], c: input.shape[3],
                             kh: kh, kw: kw, o: filter.shape[3], sh: strides.0, sw: strides.1,
                             dh: dilations.0, dw: dilations.1, pt: pads.0, pb: pads.1, pl: pads.2, pr: pads.3,
                             groups: groups)
        require(g.oh > 0 && g.ow > 0, "conv2d",
                "input \(input.shape) is smaller than the dilated kernel \(filter.shape) with padding \(padding)")
        if g.oh == 1 && g.ow == 1 && g.kh == g.h && g.kw == g.w && g.pt + g.pb + g.pl + g.pr == 0
            && g.groups == 1 && algorithm == .automatic {
            // The window covers the whole input (a "dense" convolution, like the course's
            // 26x26 layer): one GEMM [N, H·W·C] × [H·W·C, O], forward and backward.
            var y = matmul(input.reshaped([g.n, -1]), filter.reshaped([-1, g.o]))
            if let bias { y = y + bias }
            switch activation {
            case .linear: break
            case .relu: y = y.relu()
            case .leaky(let a): y = y.leakyRelu(negativeSlope: a)
            }
            return y.reshaped([g.n, 1, 1, g.o])
        }
        let y = Tensor(shape: [g.n, g.oh, g.ow, g.o],
                       scalars: convForward(input.scalars, filter.scalars, bias?.scalars, g, algorithm, activation: activation))
        let x = input.detached(), f = filter.detached()
        let needX = input.node != nil, needF = filter.node != nil, needB = bias?.node != nil
        var inputs = [input, filter]
        if let b = bias { inputs.append(b) }
        return record(y, inputs) { dyIn in
            // A first layer (no input gradient) with a small window: filter and bias gradients
            // in one pass over dy, the fused activation's gradient applied on the fly.
            if !needX && needF,
               let (dw, db) = smallFilterGradient(x.scalars, dyIn.scalars, activation == .linear ? nil : y.scalars,
                                                  activation, g) {
                var r: [Tensor?] = [nil, Tensor(shape: f.shape, scalars: dw)]
                if bias != nil { r.append(needB ? Tensor(shape: [g.o], scalars: db) : nil) }
                return r
            }
            // Through the fused activation first: relu and leaky (slope in [0, 1]) keep the
            // sign, so the output tells where the pre-activation was positive.
            let dy = activation == .linear ? dyIn : activationGradient(dyIn, output: y, activation)
            let (dx, df) = convBackward(x.scalars, f.scalars, dy.scalars, g, needInput: needX, needFilter: needF)
            var r: [Tensor?] = [dx.map { Tensor(shape: x.shape, scalars: $0) }, df.map { Tensor(shape: f.shape, scalars: $0) }]
            if bias != nil { r.append(needB ? Tensor(shape: [g.o], scalars: columnSums(dy.scalars, columns: g.o)) : nil) }
            return r
        }
    }

    /// Filter and bias gradients for windows of at most 12 values (KH·KW·C ≤ 12, one group) by
    /// the one-pass C kernel; nil for other geometries. `y` is the output of the fused
    /// activation (nil for linear). Pixel rows are split into a number of partial sums fixed by
    /// the shape, added in order: the same bits for any thread count.
    static func smallFilterGradient(_ x: [Float], _ dy: [Float], _ y: [Float]?, _ activation: FusedActivation,
                                    _ g: ConvGeometry) -> (dW: [Float], db: [Float])? {
        guard g.groups == 1, g.kdim <= 12, g.n * g.oh * g.ow > 0 else { return nil }
        let slope = activation.slope
        let rows = g.n * g.oh, wcount = g.kdim * g.o, stride = wcount + g.o
        let partials = Swift.max(1, Swift.min(8, rows * g.ow * g.o / 65_536))
        var acc = [Float](repeating: 0, count: partials * stride)
        let yScalars = y ?? []
        x.withUnsafeBufferPointer { xp in
            dy.withUnsafeBufferPointer { gp in
                yScalars.withUnsafeBufferPointer { yp in
                    acc.withUnsafeMutableBufferPointer { ap in
                        let p = UnsafeSendable((xp.baseAddress!, gp.baseAddress!, y == nil ? nil : yp.baseAddress, ap.baseAddress!))
                        Parallel.forRanges(partials) { range in
                            let (xb, gb, yb, ab) = p.value
                            for s in range {
                                let done = ocelli_conv_filter_grad_small(
                                    xb, g.h, g.w, g.c, gb, yb, slope, g.o, g.oh, g.ow, g.kh, g.kw, g.sh, g.sw, g.dh, g.dw,
                                    g.pt, g.pl, s * rows / partials, (s + 1) * rows / partials,
                                    ab + s * stride, ab + s * stride + wcount)
                                precondition(done == 1)
                            }
                        }
                    }
                }
            }
        }
        for s in 1..<partials { for i in 0..<stride { acc[i] += acc[s * stride + i] } }
        return (Array(acc[0..<wcount]), Array(acc[wcount..<stride]))
    }

    /// dz = dy where the output of a fused relu/leaky is positive, dy·slope elsewhere.
    static func activationGradient(_ dy: Tensor, output y: Tensor, _ activation: FusedActivation) -> Tensor {
        if activation == .linear { return dy }
        let slope = activation.slope
        let n = dy.count
        return Tensor.make(dy.shape) { d in
            dy.scalars.withUnsafeBufferPointer { gs in
                y.scalars.withUnsafeBufferPointer { ys in
                    let p = UnsafeSendable((gs.baseAddress!, ys.baseAddress!, d.baseAddress!))
                    Parallel.forRanges(n, minimumChunk: 1 << 16, alignment: 8) { r in
                        let (g, y, d) = p.value
                        let s = SIMD8<Float>(repeating: slope)
                        var i = r.lowerBound
                        while i + 8 <= r.upperBound {
                            let gv = UnsafeRawPointer(g + i).loadUnaligned(as: SIMD8<Float>.self)
                            let yv = UnsafeRawPointer(y + i).loadUnaligned(as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(d + i).storeBytes(of: gv.replacing(with: gv * s, where: yv .<= 0),
                                                                      as: SIMD8<Float>.self)
                            i += 8
                        }
                        while i < r.upperBound { d[i] = y[i] > 0 ? g[i] : g[i] * slope; i += 1 }
                    }
                }
            }
        }
    }

    /// Sums of the columns of a row-major [rows, columns] matrix (a bias gradient). The rows are
    /// split into a number of partial sums fixed by the shape, added in order: bitwise the same
    /// for any thread count.
    static func columnSums(_ m: [Float], columns: Int) -> [Float] {
        let rows = columns == 0 ? 0 : m.count / columns
        let partials = Swift.max(1, Swift.min(8, rows * columns / 32_768))
        var acc = [Float](repeating: 0, count: partials * columns)
        m.withUnsafeBufferPointer { mp in
            acc.withUnsafeMutableBufferPointer { ap in
                let p = UnsafeSendable((mp.baseAddress!, ap.baseAddress!))
                Parallel.forRanges(partials) { range in
                    let (src, dst) = p.value
                    for s in range {
                        let sum = dst + s * columns
                        for r in (s * rows / partials)..<((s + 1) * rows / partials) {
                            let row = src + r * columns
                            for j in 0..<columns { sum[j] += row[j] }
                        }
                    }
                }
            }
        }
        if partials == 1 { return acc }
        var out = Array(acc[0..<columns])
        for s in 1..<partials { for j in 0..<columns { out[j] += acc[s * columns + j] } }
        return out
    }

    // MARK: Forward

    static func convForward(_ x: [Float], _ w: [Float], _ bias: [Float]?, _ g: ConvGeometry,
                            _ algorithm: ConvolutionAlgorithm, activation: FusedActivation = .linear) -> [Float] {
        let algo = algorithm == .automatic ? automaticAlgorithm(g) : algorithm
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
        let chunk = im2colChunkRows(g)
        let chunks = (total + chunk - 1) / chunk
        let partials = Swift.max(1, Swift.min(8, chunks, (16 << 20) / Swift.max(1, wcount)))
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
        var dx = [Float](repeating: 0, count: needInput ? x.count : 0)
        var dw = [Float](repeating: 0, count: needFilter ? w.count : 0)
        for n in 0..<g.n { for oy in 0..<oh { for ox in 0..<ow {
            let gy = ((n * oh + oy) * ow + ox) * o
            for ky in 0..<g.kh {
                let iy = oy * g.sh + ky * g.dh - g.pt
                if iy < 0 || iy >= g.h { continue }
                for kx in 0..<g.kw {
                    let ix = ox * g.sw + kx * g.dw - g.pl
                    if ix < 0 || ix >= g.w { continue }
                    let xi = ((n * g.h + iy) * g.w + ix) * g.c, wi = (ky * g.kw + kx) * o
                    for j in 0..<o {
                        if needInput { dx[xi + j / mult] += dy[gy + j] * w[wi + j] }
                        if needFilter { dw[wi + j] += dy[gy + j] * x[xi + j / mult] }
                    }
                }
            }
        } } }
        return (needInput ? dx : nil, needFilter ? dw : nil)
    }
}
