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

}
