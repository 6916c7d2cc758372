import Foundation
import COcelliKernels

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
        let leaky: Int32 = leakySlope == nil ? 0 : 1, slope = leakySlope ?? 1

        /// Two per-channel sums over every row: `add(rows, scratch, s1, s2)` adds one block's rows
        /// into its own Double sums (kernels in batchnorm.c), the blocks run in parallel and are
        /// added in order, so the result does not depend on the thread count.
        func blockSums(_ add: @escaping (Range<Int>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Double>,
                                         UnsafeMutablePointer<Double>) -> Void) -> (first: [Double], second: [Double]) {
            var partial = [Double](repeating: 0, count: blocks * 2 * c)
            partial.withUnsafeMutableBufferPointer { pp in
                let pb = UnsafeSendable(pp.baseAddress!)
                Parallel.run(blocks) { k in
                    let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * c)
                    defer { scratch.deallocate() }
                    let acc = pb.value + k * 2 * c
                    add((k * blockRows)..<Swift.min(rows, (k + 1) * blockRows), scratch, acc, acc + c)
                }
            }
            var first = [Double](repeating: 0, count: c), second = [Double](repeating: 0, count: c)
            for k in 0..<blocks {
                for j in 0..<c { first[j] += partial[k * 2 * c + j]; second[j] += partial[k * 2 * c + c + j] }
            }
            return (first, second)
        }
        /// Runs `body(row range)` over the rows in parallel (elementwise work).
        func eachRows(_ body: @escaping (Range<Int>) -> Void) {
            Parallel.forRanges(rows, minimumChunk: Swift.max(1, 8192 / c)) { body($0) }
        }

        // One pass of sums shifted by the first row (no cancellation when |mean| ≫ std).
        let shift = ChannelVectors(Array(xd.scalars[0..<c]))
        let sums = xd.scalars.withUnsafeBufferPointer { xp in
            let xb = UnsafeSendable(xp.baseAddress!)
            return blockSums { r, scratch, s1, s2 in ocelli_bn_sums(xb.value, r.lowerBound, r.upperBound, c, shift[0], scratch, s1, s2) }
        }
        let n = Double(rows)
        let mean = (0..<c).map { Float(Double(xd.scalars[$0]) + sums.first[$0] / n) }   // shift = row 0
        let variance = (0..<c).map { j -> Float in
            let centred = sums.second[j] - sums.first[j] * sums.first[j] / n
            return Float(Swift.max(0, centred / Double(Swift.max(rows - 1, 1))))
        }
        let std = variance.map { $0.squareRoot() }
        let invS = std.map { 1 / ($0 + 1e-6) }
        let gamma = scale.detached().scalars, beta = offset.detached().scalars
        // Vectors 0: mean, 1: mul = γ/s, 2: β, 3: 1/s.
        let p = ChannelVectors(mean, (0..<c).map { gamma[$0] * invS[$0] }, beta, invS)

        let y = Tensor.make(x.shape) { out in
            let o = UnsafeSendable(out.baseAddress!)
            xd.scalars.withUnsafeBufferPointer { xp in
                let xb = UnsafeSendable(xp.baseAddress!)
                eachRows { r in ocelli_bn_apply(xb.value, o.value, r.lowerBound, r.upperBound, c, p[0], p[1], p[2], leaky, slope) }
            }
        }
        let out = record(y, [x, scale, offset]) { dy in
            // g = dy · leaky'(y₀); dβ = Σ g; dγ = Σ g·x̂;
            // dx = γ/s · (g − dβ/M) − x̂ · γ·dγ / (√var · (M − 1)),  s = √var + ε.
            let dyd = dy.detached()
            let (dBetaD, dGammaD) = dyd.scalars.withUnsafeBufferPointer { dp in
                xd.scalars.withUnsafeBufferPointer { xp in
                    let db = UnsafeSendable(dp.baseAddress!), xb = UnsafeSendable(xp.baseAddress!)
                    return blockSums { r, scratch, sg, sgx in
                        ocelli_bn_backward_sums(xb.value, db.value, r.lowerBound, r.upperBound, c, p[0], p[1], p[2], p[3],
                                                leaky, slope, scratch, sg, sgx)
                    }
                }
            }
            let m = Float(rows)
            let q = ChannelVectors(dBetaD.map { Float($0) / m }, (0..<c).map { j -> Float in
                std[j] > 0 && rows > 1 ? gamma[j] * Float(dGammaD[j]) / (std[j] * (m - 1)) : 0
            })
            let dx = Tensor.make(x.shape) { d in
                let dd = UnsafeSendable(d.baseAddress!)
                dyd.scalars.withUnsafeBufferPointer { dp in
                    xd.scalars.withUnsafeBufferPointer { xp in
                        let db = UnsafeSendable(dp.baseAddress!), xb = UnsafeSendable(xp.baseAddress!)
                        eachRows { r in
                            ocelli_bn_backward_dx(xb.value, db.value, dd.value, r.lowerBound, r.upperBound, c,
                                                  p[0], p[1], p[2], p[3], q[0], q[1], leaky, slope)
                        }
                    }
                }
            }
            return [dx, Tensor(dGammaD.map { Float($0) }), Tensor(dBetaD.map { Float($0) })]
        }
        return (out, Tensor(mean), Tensor(variance))
    }
}

/// Per-channel vectors kept at fixed addresses for the C kernels while a closure (a backward)
/// holds them: vector k at `self[k]`.
final class ChannelVectors: @unchecked Sendable {
    private let storage: UnsafeMutablePointer<Float>
    private let width: Int

    init(_ vectors: [Float]...) {
        width = vectors.first?.count ?? 0
        storage = .allocate(capacity: Swift.max(1, vectors.count * width))
        for (k, v) in vectors.enumerated() { (storage + k * width).initialize(from: v, count: width) }
    }
    deinit { storage.deallocate() }

    subscript(k: Int) -> UnsafeMutablePointer<Float> { storage + k * width }
}
