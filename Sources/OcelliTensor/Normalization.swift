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
