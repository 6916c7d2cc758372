import Foundation

/// The smooth and piecewise-linear activations of the "Deep Concepts" chapter, each with its
/// derivative next to it (computed from the input x, the output y and the output gradient g).
extension Tensor {
    /// min(max(x, 0), 6) (MobileNet's ReLU6).
    public func relu6() -> Tensor {
        unary({ Swift.min(Swift.max($0, 0), 6) }, { x, _, g in x > 0 && x < 6 ? g : 0 })
    }

    /// Swish / SiLU: x·σ(x) (Ramachandran et al.; Keras' `silu`, PyTorch's `SiLU`).
    public func swish() -> Tensor {
        unary({ x in x * Tensor.sigmoidScalar(x) },
              { x, _, g in let s = Tensor.sigmoidScalar(x); return g * s * (1 + x * (1 - s)) })
    }

    /// Mish: x·tanh(softplus(x)) (Misra 2019).
    public func mish() -> Tensor {
        unary({ x in x * Foundation.tanh(Tensor.softplusScalar(x)) },
              { x, _, g in
                  let t = Foundation.tanh(Tensor.softplusScalar(x))
                  return g * (t + x * (1 - t * t) * Tensor.sigmoidScalar(x))
              })
    }

    /// GELU: x·Φ(x) with Φ the standard normal CDF, exactly through erf, or with the tanh
    /// approximation 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) when `approximate` (Keras'
    /// `gelu(approximate=True)`, PyTorch's `approximate="tanh"`).
    public func gelu(approximate: Bool = false) -> Tensor {
        if approximate {
            let c: Float = 0.7978845608028654  // √(2/π)
            let k: Float = 0.044715
            return unary({ x in 0.5 * x * (1 + Foundation.tanh(c * (x + k * x * x * x))) },
                         { x, _, g in
                             let t = Foundation.tanh(c * (x + k * x * x * x))
                             return g * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * c * (1 + 3 * k * x * x))
                         })
        }
        let invSqrt2: Float = 0.7071067811865476, invSqrt2Pi: Float = 0.3989422804014327
        return unary({ x in 0.5 * x * (1 + Foundation.erf(x * invSqrt2)) },
                     { x, _, g in
                         let cdf = 0.5 * (1 + Foundation.erf(x * invSqrt2))
                         return g * (cdf + x * invSqrt2Pi * Foundation.exp(-0.5 * x * x))
                     })
    }

    /// Keras 3's hard sigmoid: relu6(x + 3) / 6, i.e. 0 below −3, 1 above 3, x/6 + 1/2 between
    /// (Keras 2 used 0.2·x + 0.5 clipped at ±2.5).
    public func hardSigmoid() -> Tensor {
        unary({ x in Swift.min(Swift.max(x / 6 + 0.5, 0), 1) }, { x, _, g in x > -3 && x < 3 ? g / 6 : 0 })
    }

    /// Hard swish (MobileNet v3, Keras' `hard_silu`): x·hardSigmoid(x).
    public func hardSwish() -> Tensor {
        unary({ x in x * Swift.min(Swift.max(x / 6 + 0.5, 0), 1) },
              { x, _, g in x <= -3 ? 0 : (x >= 3 ? g : g * (x / 3 + 0.5)) })
    }

    /// The Gauss error function, element-wise.
    public func erf() -> Tensor {
        unary({ Foundation.erf($0) }, { x, _, g in g * 1.1283791670955126 * Foundation.exp(-x * x) })
    }

    @inline(__always)
    static func sigmoidScalar(_ x: Float) -> Float {
        x >= 0 ? 1 / (1 + Foundation.exp(-x)) : Foundation.exp(x) / (1 + Foundation.exp(x))
    }

    @inline(__always)
    static func softplusScalar(_ x: Float) -> Float {
        Swift.max(x, 0) + Foundation.log1p(Foundation.exp(-Swift.abs(x)))
    }
}
