import OcelliTensor

/// Central finite differences against the tape's gradients.
///
/// The function's output is projected to a scalar L = Σ wᵢ·f(x)ᵢ with fixed random weights,
/// and L is summed in Double so that Float's rounding of the sum does not swamp the difference
/// quotient. Step h = 1e-2 (error O(h²) for smooth ops); inputs must keep 2h away from kinks.
/// Tolerance: |analytic − numeric| ≤ absolute + relative·|numeric| (1e-3 and 1e-2 by default).
public struct GradientCheckResult: CustomStringConvertible {
    public var worst: Double = 0
    public var detail = "ok"
    public var passed = true
    public var description: String { passed ? "passed (worst excess \(worst))" : detail }
}

public func checkGradients(_ inputs: [Tensor], step h: Float = 1e-2, absolute: Double = 1e-3,
                           relative: Double = 1e-2, seed: UInt64 = 99,
                           _ f: ([Tensor]) -> Tensor) -> GradientCheckResult {
    let leaves = inputs.map { $0.requiringGrad() }
    let out = f(leaves)
    let weights = Tensor.uniform(out.shape, minimum: -1, maximum: 1, seed: seed)
    out.backward(weights)

    func loss(_ xs: [Tensor]) -> Double {
        let y = withoutGradients { f(xs) }
        precondition(y.shape == weights.shape, "function output shape changed")
        var s = 0.0
        for (a, b) in zip(y.scalars, weights.scalars) { s += Double(a) * Double(b) }
        return s
    }
    var result = GradientCheckResult()
    for (k, x) in inputs.enumerated() {
        let analytic = leaves[k].grad ?? Tensor.zeros(x.shape)
        guard analytic.shape == x.shape else {
            result.passed = false
            result.detail = "input \(k): gradient shape \(analytic.shape) differs from input shape \(x.shape)"
            return result
        }
        for i in 0..<x.count {
            var plus = inputs, minus = inputs
            var xp = x, xm = x
            xp.updateScalars { $0[i] += h }
            xm.updateScalars { $0[i] -= h }
            plus[k] = xp; minus[k] = xm
            let numeric = (loss(plus) - loss(minus)) / (Double(xp.scalars[i]) - Double(xm.scalars[i]))
            let a = Double(analytic.scalars[i])
            let excess = abs(a - numeric) - (absolute + relative * abs(numeric))
            result.worst = max(result.worst, excess)
            if excess > 0 && result.passed {
                result.passed = false
                result.detail = "input \(k) element \(i): analytic \(a), numeric \(numeric)"
            }
        }
    }
    return result
}

public enum TestData {
    /// Uniform values in ±[0.1, 1]: at least 0.1 away from 0, the kink of relu, abs, clamp…
    public static func awayFromZero(_ shape: [Int], seed: UInt64) -> Tensor {
        let u = Tensor.uniform(shape, minimum: -1, maximum: 1, seed: seed)
        return Tensor(shape: shape, scalars: u.scalars.map { ($0 < 0 ? -1 : 1) * (0.1 + 0.9 * abs($0)) })
    }

    /// Distinct values spaced 0.1 apart in a seeded order: max/min never tie within 2h.
    public static func distinct(_ shape: [Int], seed: UInt64) -> Tensor {
        let n = shape.reduce(1, *)
        var g = SeededGenerator(seed: seed)
        var values = (0..<n).map { Float($0) * 0.1 - Float(n) * 0.05 }
        values.shuffle(using: &g)
        return Tensor(shape: shape, scalars: values)
    }

    public static func uniform(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
        Tensor.uniform(shape, minimum: -scale, maximum: scale, seed: seed)
    }
}
