import Foundation

/// Softmax, log-softmax and the fused softmax cross-entropy, along the last axis.
extension Tensor {
    /// Applies `body(row, out, n)` to each row of length `n` along the last axis.
    private func rowwise(_ op: String, _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        require(rank >= 1 && shape.last! > 0, op, "needs a non-empty last axis, got shape \(shape)")
        let n = shape.last!, rows = count / n
        return scalars.withUnsafeBufferPointer { xp in
            Tensor.make(shape) { d in
                let p = UnsafeSendable((xp.baseAddress!, d.baseAddress!))
                Parallel.forRanges(rows, minimumChunk: Swift.max(1, 8192 / n)) { r in
                    for i in r { body(p.value.0 + i * n, p.value.1 + i * n, n) }
                }
            }
        }
    }

    private static func softmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = x[0]
        for i in 1..<n where x[i] > m { m = x[i] }
        var s: Float = 0
        for i in 0..<n { let e = Foundation.exp(x[i] - m); y[i] = e; s += e }
        let inv = 1 / s
        for i in 0..<n { y[i] *= inv }
    }

    private static func logSoftmaxRow(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = x[0]
        for i in 1..<n where x[i] > m { m = x[i] }
        var s: Float = 0
        for i in 0..<n { s += Foundation.exp(x[i] - m) }
        let lse = m + Foundation.log(s)
        for i in 0..<n { y[i] = x[i] - lse }
    }

    /// exp(x) / Σ exp(x) along the last axis (shifted by the row maximum).
    public func softmax() -> Tensor {
        let y = rowwise("softmax", Tensor.softmaxRow)
        let n = shape.last!
        return Tensor.record(y, [self]) { g in
            // dx = y · (g − Σ g·y)
            [Tensor.make(y.shape) { d in
                for r in 0..<(y.count / n) {
                    var dot: Float = 0
                    for i in 0..<n { dot += g.scalars[r * n + i] * y.scalars[r * n + i] }
                    for i in 0..<n { d[r * n + i] = y.scalars[r * n + i] * (g.scalars[r * n + i] - dot) }
                }
            }]
        }
    }

    /// x − log Σ exp(x) along the last axis.
    public func logSoftmax() -> Tensor {
        let y = rowwise("logSoftmax", Tensor.logSoftmaxRow)
        let n = shape.last!
        return Tensor.record(y, [self]) { g in
            // dx = g − softmax · Σ g
            [Tensor.make(y.shape) { d in
                for r in 0..<(y.count / n) {
                    var s: Float = 0
                    for i in 0..<n { s += g.scalars[r * n + i] }
                    for i in 0..<n { d[r * n + i] = g.scalars[r * n + i] - Foundation.exp(y.scalars[r * n + i]) * s }
                }
            }]
        }
    }

    /// Fused softmax cross-entropy with dense targets: logits and labels [..., C] → loss [...].
    ///
    /// loss = Σ_c y_c · (logΣexp(x) − x_c), with y smoothed to y·(1 − ε) + ε/C when
    /// `labelSmoothing` is ε. The gradient, (softmax·Σy − y)·g, never forms the softmax's Jacobian.
    public static func softmaxCrossEntropy(logits: Tensor, labels: Tensor, labelSmoothing: Float = 0) -> Tensor {
        require(logits.shape == labels.shape, "softmaxCrossEntropy",
                "logits \(logits.shape) and labels \(labels.shape) must have the same shape")
        return softmaxCE(logits, op: "softmaxCrossEntropy", labelSmoothing: labelSmoothing) { r, n in
            Array(labels.scalars[(r * n)..<((r + 1) * n)])
        }
    }

    /// Fused softmax cross-entropy with class indices: logits [..., C], classes [...] → loss [...].
    public static func softmaxCrossEntropy(logits: Tensor, classIndices: Tensor, labelSmoothing: Float = 0) -> Tensor {
        require(Array(logits.shape.dropLast()) == classIndices.shape, "sparseSoftmaxCrossEntropy",
                "class indices \(classIndices.shape) must match the logits' leading axes \(Array(logits.shape.dropLast()))")
        let n = logits.shape.last ?? 0
        for v in classIndices.scalars {
            require(v >= 0 && Int(v) < n && Float(Int(v)) == v, "sparseSoftmaxCrossEntropy",
                    "class index \(v) is not an integer in 0..<\(n)")
        }
        return softmaxCE(logits, op: "sparseSoftmaxCrossEntropy", labelSmoothing: labelSmoothing) { r, n in
            var y = [Float](repeating: 0, count: n); y[Int(classIndices.scalars[r])] = 1; return y
        }
    }

    private static func softmaxCE(_ logits: Tensor, op: String, labelSmoothing ls: Float,
                                  target: (Int, Int) -> [Float]) -> Tensor {
        require(logits.rank >= 1 && (logits.shape.last ?? 0) > 0, op, "logits need a non-empty class axis, got \(logits.shape)")
        require(ls >= 0 && ls <= 1, op, "label smoothing \(ls) must lie in [0, 1]")
        let n = logits.shape.last!, rows = logits.count / n
        var loss = [Float](repeating: 0, count: rows)
        var probs = [Float](repeating: 0, count: logits.count)
        var targets = [Float](repeating: 0, count: logits.count)
        logits.scalars.withUnsafeBufferPointer { xp in
            probs.withUnsafeMutableBufferPointer { pp in
                for r in 0..<rows {
                    let x = xp.baseAddress! + r * n
                    softmaxRow(x, pp.baseAddress! + r * n, n)
                    var m = x[0]
                    for i in 1..<n where x[i] > m { m = x[i] }
                    var s: Double = 0
                    for i in 0..<n { s += Double(Foundation.exp(x[i] - m)) }
                    let lse = Double(m) + Foundation.log(s)
                    let y = target(r, n)
                    var l: Double = 0
                    for i in 0..<n {
                        let t = y[i] * (1 - ls) + ls / Float(n)
                        targets[r * n + i] = t
                        if t != 0 { l += Double(t) * (lse - Double(x[i])) }
                    }
                    loss[r] = Float(l)
                }
            }
        }
        let shape = Array(logits.shape.dropLast())
        return record(Tensor(shape: shape, scalars: loss), [logits]) { g in
            [Tensor.make(logits.shape) { d in
                for r in 0..<rows {
                    var ysum: Float = 0
                    for i in 0..<n { ysum += targets[r * n + i] }
                    let gr = g.scalars[r]
                    for i in 0..<n { d[r * n + i] = gr * (probs[r * n + i] * ysum - targets[r * n + i]) }
                }
            }]
        }
    }
}
