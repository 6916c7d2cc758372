import OcelliTensor

/// Textbook implementations, in Double, that the fast kernels are compared against.
public enum Reference {
    /// C = op(A)·op(B) for row-major A [m,k] (or [k,m] when transposed) and B [k,n] (or [n,k]).
    public static func gemm(_ a: [Float], _ b: [Float], m: Int, n: Int, k: Int,
                            transposeA: Bool = false, transposeB: Bool = false) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n {
                var s = 0.0
                for p in 0..<k {
                    let av = transposeA ? a[p * m + i] : a[i * k + p]
                    let bv = transposeB ? b[j * k + p] : b[p * n + j]
                    s += Double(av) * Double(bv)
                }
                c[i * n + j] = Float(s)
            }
        }
        return c
    }

    public struct Conv {
        public var stride = (1, 1), dilation = (1, 1), groups = 1
        public var pad = (top: 0, bottom: 0, left: 0, right: 0)
        public init() {}
    }

    /// NHWC × HWIO convolution with groups, in Double. Returns [N, OH, OW, O].
    public static func conv2d(_ x: Tensor, _ w: Tensor, bias: Tensor? = nil, _ p: Conv) -> Tensor {
        let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cg, o) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let og = o / p.groups
        let oh = (h + p.pad.top + p.pad.bottom - (kh - 1) * p.dilation.0 - 1) / p.stride.0 + 1
        let ow = (wd + p.pad.left + p.pad.right - (kw - 1) * p.dilation.1 - 1) / p.stride.1 + 1
        var out = [Float](repeating: 0, count: n * oh * ow * o)
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for oc in 0..<o {
            let g = oc / og
            var s = Double(bias?.scalars[oc] ?? 0)
            for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * p.stride.0 + ky * p.dilation.0 - p.pad.top
                let ix = ox * p.stride.1 + kx * p.dilation.1 - p.pad.left
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                for ci in 0..<cg {
                    s += Double(x.scalars[((b * h + iy) * wd + ix) * c + g * cg + ci])
                       * Double(w.scalars[((ky * kw + kx) * cg + ci) * o + oc])
                }
            } }
            out[((b * oh + oy) * ow + ox) * o + oc] = Float(s)
        } } } }
        return Tensor(shape: [n, oh, ow, o], scalars: out)
    }

    /// Gradients of Σ dy·conv2d(x, w) with respect to x and w, in Double.
    public static func conv2dBackward(_ x: Tensor, _ w: Tensor, _ dy: Tensor, _ p: Conv) -> (dx: Tensor, dw: Tensor) {
        let (n, h, wd, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let (kh, kw, cg, o) = (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        let (oh, ow) = (dy.shape[1], dy.shape[2])
        let og = o / p.groups
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        for b in 0..<n { for oy in 0..<oh { for ox in 0..<ow { for oc in 0..<o {
            let g = oc / og
            let gv = Double(dy.scalars[((b * oh + oy) * ow + ox) * o + oc])
            for ky in 0..<kh { for kx in 0..<kw {
                let iy = oy * p.stride.0 + ky * p.dilation.0 - p.pad.top
                let ix = ox * p.stride.1 + kx * p.dilation.1 - p.pad.left
                guard iy >= 0, iy < h, ix >= 0, ix < wd else { continue }
                for ci in 0..<cg {
                    let xi = ((b * h + iy) * wd + ix) * c + g * cg + ci
                    let wi = ((ky * kw + kx) * cg + ci) * o + oc
                    dx[xi] += gv * Double(w.scalars[wi])
                    dw[wi] += gv * Double(x.scalars[xi])
                }
            } }
        } } } }
        return (Tensor(shape: x.shape, scalars: dx.map { Float($0) }), Tensor(shape: w.shape, scalars: dw.map { Float($0) }))
    }

    /// Darknet's reorg_cpu transcribed on NCHW buffers (forward flag as in Darknet).
    public static func darknetReorgCPU(_ x: [Float], w: Int, h: Int, c: Int, batch: Int, stride: Int, forward: Bool) -> [Float] {
        var out = [Float](repeating: 0, count: x.count)
        let outC = c / (stride * stride)
        for b in 0..<batch { for k in 0..<c { for j in 0..<h { for i in 0..<w {
            let inIndex = i + w * (j + h * (k + c * b))
            let c2 = k % outC
            let offset = k / outC
            let w2 = i * stride + offset % stride
            let h2 = j * stride + offset / stride
            let outIndex = w2 + w * stride * (h2 + h * stride * (c2 + outC * b))
            if forward { out[outIndex] = x[inIndex] } else { out[inIndex] = x[outIndex] }
        } } } }
        return out
    }

    public static func nhwcToNCHW(_ t: Tensor) -> [Float] { t.permuted([0, 3, 1, 2]).scalars }
    public static func nchwToNHWC(_ s: [Float], n: Int, c: Int, h: Int, w: Int) -> Tensor {
        Tensor(shape: [n, c, h, w], scalars: s).permuted([0, 2, 3, 1])
    }

    /// Max over a window with −∞ padding (Darknet's and everyone's semantics).
    public static func maxPool(_ x: Tensor, size: (Int, Int), stride: (Int, Int),
                               pad: (top: Int, left: Int), out: (Int, Int)) -> Tensor {
        let (n, h, w, c) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        var y = [Float](repeating: -.infinity, count: n * out.0 * out.1 * c)
        for b in 0..<n { for oy in 0..<out.0 { for ox in 0..<out.1 { for ch in 0..<c {
            var m = -Float.infinity
            for ky in 0..<size.0 { for kx in 0..<size.1 {
                let iy = oy * stride.0 + ky - pad.top, ix = ox * stride.1 + kx - pad.left
                if iy >= 0 && iy < h && ix >= 0 && ix < w { m = max(m, x.scalars[((b * h + iy) * w + ix) * c + ch]) }
            } }
            y[((b * out.0 + oy) * out.1 + ox) * c + ch] = m
        } } } }
        return Tensor(shape: [n, out.0, out.1, c], scalars: y)
    }
}

extension Tensor {
    /// The largest absolute element-wise difference (∞ when shapes differ).
    public func maxAbsDifference(_ other: Tensor) -> Float {
        guard shape == other.shape else { return .infinity }
        return zip(scalars, other.scalars).map { Swift.abs($0 - $1) }.max() ?? 0
    }
}
