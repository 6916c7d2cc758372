import Foundation

extension Tensor {
    /// Batch normalization over the last (channel) axis with a hand-written backward.
    ///
    /// Training: normalizes with the batch's mean and (biased) variance over every axis but the
    /// last, and moves the running statistics: `running = momentum·running + (1 − momentum)·batch`
    /// (Keras' convention; its defaults are momentum 0.99, epsilon 1e-3).
    /// Inference: uses the running statistics.
    /// - x: [..., C]; scale (γ), offset (β), runningMean, runningVariance: [C].
    public static func batchNormalization(_ x: Tensor, scale: Tensor, offset: Tensor,
                                          runningMean: inout Tensor, runningVariance: inout Tensor,
                                          training: Bool, momentum: Float = 0.99, epsilon: Float = 1e-3) -> Tensor {
        let c = x.shape.last ?? 0
        for (name, t) in [("scale", scale), ("offset", offset), ("runningMean", runningMean), ("runningVariance", runningVariance)] {
            require(t.shape == [c], "batchNormalization", "\(name) has shape \(t.shape), expected [\(c)] for input \(x.shape)")
        }
        if !training {
            return batchNormInference(x, scale: scale, offset: offset, mean: runningMean, variance: runningVariance, epsilon: epsilon)
        }
        let (y, mean, variance) = batchNormTraining(x, scale: scale, offset: offset, epsilon: epsilon)
        runningMean.updateScalars { r in for i in 0..<c { r[i] = momentum * r[i] + (1 - momentum) * mean.scalars[i] } }
        runningVariance.updateScalars { r in for i in 0..<c { r[i] = momentum * r[i] + (1 - momentum) * variance.scalars[i] } }
        return y
    }

    /// Training-mode batch normalization; returns the output and the batch mean and variance.
    public static func batchNormTraining(_ x: Tensor, scale: Tensor, offset: Tensor,
                                         epsilon: Float = 1e-3) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let c = x.shape.last ?? 0
        require(scale.shape == [c] && offset.shape == [c], "batchNormalization",
                "scale \(scale.shape) and offset \(offset.shape) must be [\(c)] for input \(x.shape)")
        let rows = c == 0 ? 0 : x.count / c
        require(rows > 0, "batchNormalization", "training needs at least one value per channel, input \(x.shape)")
        // Statistics in Double: one pass for the mean, one for the variance (no cancellation).
        var mean = [Double](repeating: 0, count: c), varc = [Double](repeating: 0, count: c)
        x.scalars.withUnsafeBufferPointer { xp in
            for r in 0..<rows { for j in 0..<c { mean[j] += Double(xp[r * c + j]) } }
            for j in 0..<c { mean[j] /= Double(rows) }
            for r in 0..<rows { for j in 0..<c { let d = Double(xp[r * c + j]) - mean[j]; varc[j] += d * d } }
        }
        for j in 0..<c { varc[j] /= Double(rows) }
        let invStd = (0..<c).map { Float(1 / (varc[$0] + Double(epsilon)).squareRoot()) }
        let meanF = mean.map { Float($0) }
        let xhat = Tensor.make(x.shape) { d in
            x.scalars.withUnsafeBufferPointer { xp in
                for r in 0..<rows { for j in 0..<c { d[r * c + j] = (xp[r * c + j] - meanF[j]) * invStd[j] } }
            }
        }
        let y = Tensor.make(x.shape) { d in
            for r in 0..<rows { for j in 0..<c { d[r * c + j] = xhat.scalars[r * c + j] * scale.scalars[j] + offset.scalars[j] } }
        }
        let gamma = scale.scalars
        let out = record(y, [x, scale, offset]) { dy in
            // dβ = Σ g, dγ = Σ g·x̂, dx = γ·invstd/m · (m·g − dβ − x̂·dγ)
            var dBeta = [Float](repeating: 0, count: c), dGamma = [Float](repeating: 0, count: c)
            for r in 0..<rows { for j in 0..<c {
                let gv = dy.scalars[r * c + j]
                dBeta[j] += gv; dGamma[j] += gv * xhat.scalars[r * c + j]
            } }
            let m = Float(rows)
            let dx = Tensor.make(x.shape) { d in
                for r in 0..<rows { for j in 0..<c {
                    let i = r * c + j
                    d[i] = gamma[j] * invStd[j] / m * (m * dy.scalars[i] - dBeta[j] - xhat.scalars[i] * dGamma[j])
                } }
            }
            return [dx, Tensor([Float](dGamma)), Tensor([Float](dBeta))]
        }
        return (out, Tensor(meanF), Tensor(varc.map { Float($0) }))
    }

    /// Inference-mode batch normalization: (x − mean) / √(variance + ε) · scale + offset.
    public static func batchNormInference(_ x: Tensor, scale: Tensor, offset: Tensor, mean: Tensor,
                                          variance: Tensor, epsilon: Float = 1e-3) -> Tensor {
        let c = x.shape.last ?? 0
        for t in [scale, offset, mean, variance] {
            require(t.shape == [c], "batchNormalization", "parameter shape \(t.shape) must be [\(c)] for input \(x.shape)")
        }
        let invStd = variance.scalars.map { 1 / ($0 + epsilon).squareRoot() }
        let mul = (0..<c).map { scale.scalars[$0] * invStd[$0] }
        let add = (0..<c).map { offset.scalars[$0] - mean.scalars[$0] * mul[$0] }
        let y = broadcastScalars(broadcastScalars(x.detached(), Tensor(mul), op: "batchNormalization", *),
                                 Tensor(add), op: "batchNormalization", +)
        let xd = x.detached()
        return record(y, [x, scale, offset]) { dy in
            let rows = c == 0 ? 0 : xd.count / c
            var dGamma = [Float](repeating: 0, count: c), dBeta = [Float](repeating: 0, count: c)
            for r in 0..<rows { for j in 0..<c {
                let gv = dy.scalars[r * c + j]
                dBeta[j] += gv; dGamma[j] += gv * (xd.scalars[r * c + j] - mean.scalars[j]) * invStd[j]
            } }
            return [broadcastScalars(dy, Tensor(mul), op: "batchNormalization", *), Tensor(dGamma), Tensor(dBeta)]
        }
    }
}

extension Tensor {
    /// Darknet's batch normalization in training, fused with an optional leaky activation, with a
    /// hand-written backward: batch statistics over every axis but the last, the *unbiased*
    /// variance (divided by count − 1) and the epsilon outside the square root,
    ///
    ///     y = (x − mean) / (sqrt(var) + 1e-6) · scale + offset,   then leaky: y > 0 ? y : slope·y
    ///
    /// (Darknet's `normalize_cpu`, `scale_bias`, `add_bias`, `activate_array`). The gradient is the
    /// exact derivative of this forward (Darknet's own backward approximates it with the epsilon
    /// inside the root and 1/count in the variance's derivative). Statistics are summed in Double
    /// over fixed blocks of rows, so results do not depend on the thread count.
    /// - x: [..., C]; scale, offset: [C]. Returns the output and the batch mean and variance.
    public static func darknetBatchNormTraining(_ x: Tensor, scale: Tensor, offset: Tensor,
                                                leakySlope: Float? = nil) -> (output: Tensor, mean: Tensor, variance: Tensor) {
        let c = x.shape.last ?? 0
        require(scale.shape == [c] && offset.shape == [c], "darknetBatchNormTraining",
                "scale \(scale.shape) and offset \(offset.shape) must be [\(c)] for input \(x.shape)")
        let rows = c == 0 ? 0 : x.count / c
        require(rows > 0, "darknetBatchNormTraining", "training needs at least one value per channel, input \(x.shape)")
        let xd = x.detached()
        let blockRows = Swift.max(1, 32_768 / c)
        let blocks = (rows + blockRows - 1) / blockRows

        /// `width` sums accumulated by `f(row index, its x values, sums)` over every row, in
        /// Double, block by block in parallel and the blocks added in order (deterministic).
        func rowSums(width: Int, _ f: @escaping (Int, UnsafePointer<Float>, UnsafeMutablePointer<Double>) -> Void) -> [Double] {
            var partial = [Double](repeating: 0, count: blocks * width)
            partial.withUnsafeMutableBufferPointer { pp in
                xd.scalars.withUnsafeBufferPointer { xp in
                    let pb = UnsafeSendable(pp.baseAddress!), xb = UnsafeSendable(xp.baseAddress!)
                    Parallel.run(blocks) { k in
                        let acc = pb.value + k * width
                        for r in (k * blockRows)..<Swift.min(rows, (k + 1) * blockRows) { f(r, xb.value + r * c, acc) }
                    }
                }
            }
            var total = [Double](repeating: 0, count: width)
            for k in 0..<blocks { for j in 0..<width { total[j] += partial[k * width + j] } }
            return total
        }
        let meanD = rowSums(width: c) { _, row, acc in for j in 0..<c { acc[j] += Double(row[j]) } }.map { $0 / Double(rows) }
        let mean = meanD.map { Float($0) }
        let varD = mean.withUnsafeBufferPointer { mp -> [Double] in
            let m = UnsafeSendable(mp.baseAddress!)
            return rowSums(width: c) { _, row, acc in for j in 0..<c { let d = Double(row[j] - m.value[j]); acc[j] += d * d } }
        }.map { $0 / Double(Swift.max(rows - 1, 1)) }
        let variance = varD.map { Float($0) }
        let std = variance.map { $0.squareRoot() }
        let invS = std.map { 1 / ($0 + 1e-6) }
        let gamma = scale.detached().scalars, beta = offset.detached().scalars
        let slope = leakySlope

        /// Runs `body(row range)` over the rows in parallel (elementwise work).
        func eachRows(_ body: @escaping (Range<Int>) -> Void) {
            Parallel.forRanges(rows, minimumChunk: Swift.max(1, 8192 / c)) { body($0) }
        }
        let y = Tensor.make(x.shape) { out in
            let o = UnsafeSendable(out.baseAddress!)
            xd.scalars.withUnsafeBufferPointer { xp in
                let xb = UnsafeSendable(xp.baseAddress!)
                eachRows { range in
                    for r in range {
                        let xr = xb.value + r * c, yr = o.value + r * c
                        for j in 0..<c {
                            var v = (xr[j] - mean[j]) * invS[j] * gamma[j] + beta[j]
                            if let slope, v <= 0 { v *= slope }
                            yr[j] = v
                        }
                    }
                }
            }
        }
        let out = record(y, [x, scale, offset]) { dy in
            // g = dy · leaky'(y₀); dβ = Σ g; dγ = Σ g·x̂;
            // dx = γ/s · (g − dβ/M) − x̂ · γ·dγ / (√var · (M − 1)),  s = √var + ε.
            let dyd = dy.detached()
            var g = [Float](repeating: 0, count: x.count)
            g.withUnsafeMutableBufferPointer { gp in
                let gb = UnsafeSendable(gp.baseAddress!)
                dyd.scalars.withUnsafeBufferPointer { dp in
                    xd.scalars.withUnsafeBufferPointer { xp in
                        let db = UnsafeSendable(dp.baseAddress!), xb = UnsafeSendable(xp.baseAddress!)
                        eachRows { range in
                            for r in range {
                                let i0 = r * c
                                for j in 0..<c {
                                    var v = db.value[i0 + j]
                                    if let slope {
                                        let y0 = (xb.value[i0 + j] - mean[j]) * invS[j] * gamma[j] + beta[j]
                                        if y0 <= 0 { v *= slope }
                                    }
                                    gb.value[i0 + j] = v
                                }
                            }
                        }
                    }
                }
            }
            let gt = Tensor(shape: x.shape, scalars: g)
            var dBetaD = [Double](repeating: 0, count: c), dGammaD = [Double](repeating: 0, count: c)
            gt.scalars.withUnsafeBufferPointer { gp in
                let gb = UnsafeSendable(gp.baseAddress!)
                // Σ g and Σ g·x̂ per channel.
                let sums = rowSums(width: 2 * c) { r, row, acc in
                    for j in 0..<c {
                        let gv = Double(gb.value[r * c + j])
                        acc[j] += gv
                        acc[c + j] += gv * Double((row[j] - mean[j]) * invS[j])
                    }
                }
                dBetaD = Array(sums[0..<c]); dGammaD = Array(sums[c...])
            }
            let m = Float(rows)
            let a = (0..<c).map { gamma[$0] * invS[$0] }
            let dBetaM = dBetaD.map { Float($0) / m }
            let b = (0..<c).map { j -> Float in
                std[j] > 0 && rows > 1 ? gamma[j] * Float(dGammaD[j]) / (std[j] * (m - 1)) : 0
            }
            let dx = Tensor.make(x.shape) { d in
                let dd = UnsafeSendable(d.baseAddress!)
                gt.scalars.withUnsafeBufferPointer { gp in
                    xd.scalars.withUnsafeBufferPointer { xp in
                        let gb = UnsafeSendable(gp.baseAddress!), xb = UnsafeSendable(xp.baseAddress!)
                        eachRows { range in
                            for r in range {
                                let i0 = r * c
                                for j in 0..<c {
                                    let xhat = (xb.value[i0 + j] - mean[j]) * invS[j]
                                    dd.value[i0 + j] = a[j] * (gb.value[i0 + j] - dBetaM[j]) - xhat * b[j]
                                }
                            }
                        }
                    }
                }
            }
            return [dx, Tensor(dGammaD.map { Float($0) }), Tensor(dBetaD.map { Float($0) })]
        }
        return (out, Tensor(mean), Tensor(variance))
    }
}
