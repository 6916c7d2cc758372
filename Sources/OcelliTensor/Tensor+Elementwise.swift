import Foundation

// MARK: - Element-wise kernels (no recording)

extension Tensor {
    /// Applies `f` to every element, splitting large tensors over the threads.
    @inline(__always)
    func mapScalars(_ f: (Float) -> Float) -> Tensor {
        let n = count
        return scalars.withUnsafeBufferPointer { src in
            Tensor.make(shape) { dst in
                // Small tensors: a plain loop here, where `f` is inlined and vectorized.
                if n < 1 << 16 {
                    for i in 0..<n { dst[i] = f(src[i]) }
                    return
                }
                let s = UnsafeSendable(src.baseAddress), d = UnsafeSendable(dst.baseAddress)
                Parallel.forRanges(n, minimumChunk: 1 << 16) { r in
                    let sp = s.value!, dp = d.value!
                    for i in r { dp[i] = f(sp[i]) }
                }
            }
        }
    }

    /// `f(a[i], b[i])` over two tensors of the same shape.
    @inline(__always)
    static func zipScalars(_ a: Tensor, _ b: Tensor, _ f: (Float, Float) -> Float) -> Tensor {
        let n = a.count
        return a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                Tensor.make(a.shape) { dst in
                    if n < 1 << 16 {
                        for i in 0..<n { dst[i] = f(pa[i], pb[i]) }
                        return
                    }
                    let x = UnsafeSendable((pa.baseAddress, pb.baseAddress, dst.baseAddress))
                    Parallel.forRanges(n, minimumChunk: 1 << 16) { r in
                        let (ap, bp, dp) = (x.value.0!, x.value.1!, x.value.2!)
                        for i in r { dp[i] = f(ap[i], bp[i]) }
                    }
                }
            }
        }
    }

    /// `f(a[i], b[i], c[i])` over three tensors of the same shape.
    @inline(__always)
    static func zipScalars(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ f: (Float, Float, Float) -> Float) -> Tensor {
        let n = a.count
        return a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                c.scalars.withUnsafeBufferPointer { pc in
                    Tensor.make(a.shape) { dst in
                        let (ap, bp, cp, dp) = (pa.baseAddress!, pb.baseAddress!, pc.baseAddress!, dst.baseAddress!)
                        for i in 0..<n { dp[i] = f(ap[i], bp[i], cp[i]) }
                    }
                }
            }
        }
    }

    /// `f(a, b)` with NumPy broadcasting. Adjacent dimensions that are contiguous (or broadcast)
    /// in both operands are merged first, so a bias over the last axis runs as rows × channels.
    @inline(__always)
    static func broadcastScalars(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float) -> Tensor {
        if a.shape == b.shape { return zipScalars(a, b, f) }
        let outShape = check { () throws(ShapeError) in try Shape.broadcast(a.shape, b.shape, op: op) }
        if b.count == 1 && outShape == a.shape {
            let v = b.scalars[0]
            return a.mapScalars { f($0, v) }
        }
        if a.count == 1 && outShape == b.shape {
            let v = a.scalars[0]
            return b.mapScalars { f(v, $0) }
        }
        let rank = outShape.count
        func alignedStrides(_ s: [Int]) -> [Int] {
            let st = Shape.strides(s)
            return (0..<rank).map { i in
                let j = i - (rank - s.count)
                return j < 0 || s[j] == 1 ? 0 : st[j]
            }
        }
        // Merge dimensions.
        var dims: [Int] = [], sa: [Int] = [], sb: [Int] = []
        let fa = alignedStrides(a.shape), fb = alignedStrides(b.shape)
        for i in 0..<rank {
            if outShape[i] == 1 { continue }
            if let last = dims.last, sa.last! == fa[i] * outShape[i], sb.last! == fb[i] * outShape[i] {
                dims[dims.count - 1] = last * outShape[i]
                sa[sa.count - 1] = fa[i]; sb[sb.count - 1] = fb[i]
            } else {
                dims.append(outShape[i]); sa.append(fa[i]); sb.append(fb[i])
            }
        }
        if dims.isEmpty { dims = [1]; sa = [0]; sb = [0] }
        let inner = dims.last!, ia = sa.last!, ib = sb.last!
        let outer = Shape.count(Array(dims.dropLast()))
        let od = Array(dims.dropLast()), osa = Array(sa.dropLast()), osb = Array(sb.dropLast())
        return a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                Tensor.make(outShape) { dst in
                    let x = UnsafeSendable((pa.baseAddress!, pb.baseAddress!, dst.baseAddress!))
                    Parallel.forRanges(outer, minimumChunk: Swift.max(1, (1 << 16) / Swift.max(1, inner))) { r in
                        let (ap, bp, dp) = x.value
                        for row in r {
                            // Offsets of this row in a and b.
                            var rem = row, offA = 0, offB = 0
                            for d in stride(from: od.count - 1, through: 0, by: -1) {
                                let ix = rem % od[d]; rem /= od[d]
                                offA += ix * osa[d]; offB += ix * osb[d]
                            }
                            let o = dp + row * inner, pA = ap + offA, pB = bp + offB
                            if ia == 1 && ib == 1 {
                                for i in 0..<inner { o[i] = f(pA[i], pB[i]) }
                            } else if ia == 1 && ib == 0 {
                                let v = pB[0]; for i in 0..<inner { o[i] = f(pA[i], v) }
                            } else if ia == 0 && ib == 1 {
                                let v = pA[0]; for i in 0..<inner { o[i] = f(v, pB[i]) }
                            } else {
                                for i in 0..<inner { o[i] = f(pA[i &* ia], pB[i &* ib]) }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The gradient of a broadcast operand: `self` summed over the axes that were broadcast to
    /// reach its shape, reshaped to `shape`.
    public func sumToShape(_ target: [Int]) -> Tensor {
        if shape == target { return self }
        let lead = rank - target.count
        var axes = Array(0..<Swift.max(0, lead))
        for (i, d) in target.enumerated() where d == 1 && shape[lead + i] != 1 { axes.append(lead + i) }
        return sum(axes: axes).reshaped(target)
    }
}

// MARK: - Unary ops

extension Tensor {
    /// A unary op whose derivative is computed from the input `x`, the output `y` and the
    /// output gradient `g`.
    @inline(__always)
    func unary(_ f: (Float) -> Float, _ df: @escaping (_ x: Float, _ y: Float, _ g: Float) -> Float) -> Tensor {
        let y = mapScalars(f)
        let x = self.detached(), yd = y
        return Tensor.record(y, [self]) { g in [Tensor.zipScalars(x, yd, g, df)] }
    }

    public static prefix func - (x: Tensor) -> Tensor { x.unary({ -$0 }, { _, _, g in -g }) }
    public func abs() -> Tensor { unary({ Swift.abs($0) }, { x, _, g in x > 0 ? g : (x < 0 ? -g : 0) }) }
    public func exp() -> Tensor { unary({ Foundation.exp($0) }, { _, y, g in g * y }) }
    public func log() -> Tensor { unary({ Foundation.log($0) }, { x, _, g in g / x }) }
    public func sqrt() -> Tensor { unary({ $0.squareRoot() }, { _, y, g in g * 0.5 / y }) }
    public func rsqrt() -> Tensor { unary({ 1 / $0.squareRoot() }, { _, y, g in -0.5 * g * y * y * y }) }
    public func square() -> Tensor { unary({ $0 * $0 }, { x, _, g in 2 * x * g }) }
    /// Every element raised to a constant power.
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return square() }
        return unary({ Foundation.pow($0, p) }, { x, _, g in g * p * Foundation.pow(x, p - 1) })
    }
    public func sigmoid() -> Tensor {
        unary({ x in x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x)) },
              { _, y, g in g * y * (1 - y) })
    }
    public func tanh() -> Tensor { unary({ Foundation.tanh($0) }, { _, y, g in g * (1 - y * y) }) }
    public func relu() -> Tensor {
        // Hand-vectorized: the most frequent activation of all.
        let y = Tensor.make(shape) { d in
            scalars.withUnsafeBufferPointer { s in Tensor.simdMap(s, d) { $0.replacing(with: 0, where: $0 .< 0) } }
        }
        let x = detached()
        return Tensor.record(y, [self]) { g in
            [Tensor.make(x.shape) { d in
                x.scalars.withUnsafeBufferPointer { xs in
                    g.scalars.withUnsafeBufferPointer { gs in
                        let n = d.count
                        var i = 0
                        while i + 8 <= n {
                            let xv = UnsafeRawPointer(xs.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                            let gv = UnsafeRawPointer(gs.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(d.baseAddress! + i).storeBytes(of: gv.replacing(with: 0, where: xv .<= 0), as: SIMD8<Float>.self)
                            i += 8
                        }
                        while i < n { d[i] = xs[i] > 0 ? gs[i] : 0; i += 1 }
                    }
                }
            }]
        }
    }

    /// d[i] = f(s[i]) in SIMD8 blocks (and a scalar tail through the same function).
    @inline(__always)
    static func simdMap(_ s: UnsafeBufferPointer<Float>, _ d: UnsafeMutableBufferPointer<Float>,
                        _ f: (SIMD8<Float>) -> SIMD8<Float>) {
        let n = s.count
        var i = 0
        while i + 8 <= n {
            let v = UnsafeRawPointer(s.baseAddress! + i).loadUnaligned(as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(d.baseAddress! + i).storeBytes(of: f(v), as: SIMD8<Float>.self)
            i += 8
        }
        while i < n {
            var v = SIMD8<Float>(repeating: 0); v[0] = s[i]
            d[i] = f(v)[0]
            i += 1
        }
    }
    /// `x` for positive inputs, `negativeSlope·x` otherwise (Keras' default slope is 0.3, Darknet's 0.1).
    public func leakyRelu(negativeSlope: Float = 0.3) -> Tensor {
        unary({ $0 > 0 ? $0 : negativeSlope * $0 }, { x, _, g in x > 0 ? g : negativeSlope * g })
    }
    public func elu(alpha: Float = 1) -> Tensor {
        unary({ $0 > 0 ? $0 : alpha * (Foundation.exp($0) - 1) }, { x, y, g in x > 0 ? g : g * (y + alpha) })
    }
    /// Scaled ELU with the constants of Klambauer et al. (as Keras and PyTorch).
    public func selu() -> Tensor {
        let alpha: Float = 1.6732632423543772848170429916717
        let scale: Float = 1.0507009873554804934193349852946
        return unary({ $0 > 0 ? scale * $0 : scale * alpha * (Foundation.exp($0) - 1) },
                     { x, y, g in x > 0 ? scale * g : g * (y + scale * alpha) })
    }
    /// log(1 + eˣ), computed without overflow.
    public func softplus() -> Tensor {
        unary({ x in Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x))) },
              { x, _, g in g * (x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))) })
    }
    /// Every element limited to [minimum, maximum]; the gradient passes where the input is inside
    /// (boundaries included, as PyTorch).
    public func clamped(min lo: Float, max hi: Float) -> Tensor {
        precondition(lo <= hi, "clamped: min \(lo) is greater than max \(hi)")
        return unary({ Swift.min(Swift.max($0, lo), hi) }, { x, _, g in x >= lo && x <= hi ? g : 0 })
    }
}

// MARK: - Binary ops with broadcasting

extension Tensor {
    @inline(__always)
    static func binary(_ a: Tensor, _ b: Tensor, op: String, _ f: (Float, Float) -> Float,
                       _ pullback: @escaping (_ a: Tensor, _ b: Tensor, _ g: Tensor) -> (Tensor?, Tensor?)) -> Tensor {
        let y = broadcastScalars(a, b, op: op, f)
        let ad = a.detached(), bd = b.detached()
        let needA = a.node != nil, needB = b.node != nil
        return record(y, [a, b]) { g in
            let (ga, gb) = pullback(ad, bd, g)
            return [needA ? ga?.sumToShape(ad.shape) : nil, needB ? gb?.sumToShape(bd.shape) : nil]
        }
    }

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, op: "add", +) { _, _, g in (g, g) }
    }
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, op: "subtract", -) { _, _, g in (g, -g) }
    }
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, op: "multiply", *) { a, b, g in
            (broadcastScalars(g, b, op: "multiply", *), broadcastScalars(g, a, op: "multiply", *))
        }
    }
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        binary(a, b, op: "divide", /) { a, b, g in
            let ga = broadcastScalars(g, b, op: "divide", /)
            let gb = broadcastScalars(ga, broadcastScalars(a, b, op: "divide", /), op: "divide", { -$0 * $1 })
            return (ga, gb)
        }
    }
    /// Element-wise maximum; where both are equal the gradient goes to `a`.
    public static func maximum(_ a: Tensor, _ b: Tensor) -> Tensor {
        binary(a, b, op: "maximum", { Swift.max($0, $1) }) { a, b, g in
            let m = broadcastScalars(a, b, op: "maximum", { $0 >= $1 ? 1 : 0 })
            return (broadcastScalars(g, m, op: "maximum", *), broadcastScalars(g, m, op: "maximum", { $0 * (1 - $1) }))
        }
    }
    /// Element-wise minimum; where both are equal the gradient goes to `a`.
    public static func minimum(_ a: Tensor, _ b: Tensor) -> Tensor {
        binary(a, b, op: "minimum", { Swift.min($0, $1) }) { a, b, g in
            let m = broadcastScalars(a, b, op: "minimum", { $0 <= $1 ? 1 : 0 })
            return (broadcastScalars(g, m, op: "minimum", *), broadcastScalars(g, m, op: "minimum", { $0 * (1 - $1) }))
        }
    }
    /// `a` raised to the power `b`, element-wise with broadcasting (∂/∂b uses log a, so a > 0 there).
    public static func pow(_ a: Tensor, _ b: Tensor) -> Tensor {
        binary(a, b, op: "pow", { Foundation.pow($0, $1) }) { a, b, g in
            let y = broadcastScalars(a, b, op: "pow", { Foundation.pow($0, $1) })
            let ga = broadcastScalars(broadcastScalars(g, b, op: "pow", *),
                                      broadcastScalars(a, b, op: "pow", { Foundation.pow($0, $1 - 1) }), op: "pow", *)
            let gb = broadcastScalars(broadcastScalars(g, y, op: "pow", *), a, op: "pow", { $0 * Foundation.log($1) })
            return (ga, gb)
        }
    }

    public static func + (a: Tensor, b: Float) -> Tensor { a + Tensor(b) }
    public static func + (a: Float, b: Tensor) -> Tensor { Tensor(a) + b }
    public static func - (a: Tensor, b: Float) -> Tensor { a - Tensor(b) }
    public static func - (a: Float, b: Tensor) -> Tensor { Tensor(a) - b }
    public static func * (a: Tensor, b: Float) -> Tensor { a * Tensor(b) }
    public static func * (a: Float, b: Tensor) -> Tensor { Tensor(a) * b }
    public static func / (a: Tensor, b: Float) -> Tensor { a / Tensor(b) }
    public static func / (a: Float, b: Tensor) -> Tensor { Tensor(a) / b }
    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }
    public static func /= (a: inout Tensor, b: Tensor) { a = a / b }
}

// MARK: - Comparisons (masks of 0 and 1, not differentiable)

infix operator .== : ComparisonPrecedence
infix operator .!= : ComparisonPrecedence
infix operator .< : ComparisonPrecedence
infix operator .<= : ComparisonPrecedence
infix operator .> : ComparisonPrecedence
infix operator .>= : ComparisonPrecedence

extension Tensor {
    public static func .== (a: Tensor, b: Tensor) -> Tensor { broadcastScalars(a, b, op: "equal") { $0 == $1 ? 1 : 0 } }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { broadcastScalars(a, b, op: "notEqual") { $0 != $1 ? 1 : 0 } }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { broadcastScalars(a, b, op: "less") { $0 < $1 ? 1 : 0 } }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { broadcastScalars(a, b, op: "lessEqual") { $0 <= $1 ? 1 : 0 } }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { broadcastScalars(a, b, op: "greater") { $0 > $1 ? 1 : 0 } }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { broadcastScalars(a, b, op: "greaterEqual") { $0 >= $1 ? 1 : 0 } }
    public static func .== (a: Tensor, b: Float) -> Tensor { a .== Tensor(b) }
    public static func .!= (a: Tensor, b: Float) -> Tensor { a .!= Tensor(b) }
    public static func .< (a: Tensor, b: Float) -> Tensor { a .< Tensor(b) }
    public static func .<= (a: Tensor, b: Float) -> Tensor { a .<= Tensor(b) }
    public static func .> (a: Tensor, b: Float) -> Tensor { a .> Tensor(b) }
    public static func .>= (a: Tensor, b: Float) -> Tensor { a .>= Tensor(b) }
}

/// Picks `a` where `mask` is non-zero and `b` elsewhere, with broadcasting over all three.
public func select(_ mask: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
    let shape = check { () throws(ShapeError) in
        try Shape.broadcast(try Shape.broadcast(mask.shape, a.shape, op: "select"), b.shape, op: "select")
    }
    let m = mask.broadcast(to: shape).detached(), ab = a.broadcast(to: shape), bb = b.broadcast(to: shape)
    let y = Tensor.zipScalars(m, ab.detached(), bb.detached()) { $0 != 0 ? $1 : $2 }
    let sa = a.shape, sb = b.shape
    return Tensor.record(y, [a, b]) { g in
        [Tensor.zipScalars(g, m) { $1 != 0 ? $0 : 0 }.sumToShape(sa),
         Tensor.zipScalars(g, m) { $1 != 0 ? 0 : $0 }.sumToShape(sb)]
    }
}
