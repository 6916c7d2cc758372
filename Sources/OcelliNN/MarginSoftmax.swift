import Foundation
import OcelliTensor

/// The angular margins of face-recognition heads: logits from the angle θ between a feature
/// and each class's weight vector, with a margin on the true class's angle.
public enum AngularMargin: Equatable, Sendable {
    /// NormFace: s·cos θ for every class (no margin).
    case normalized(scale: Float = 30)
    /// A-Softmax / SphereFace (Liu et al. 2017): ‖x‖·ψ(θ) for the true class, ‖x‖·cos θ for the
    /// others, ψ(θ) = (−1)ᵏ·cos(mθ) − 2k for θ ∈ [kπ/m, (k+1)π/m] (integer m ≥ 1; without the
    /// paper's λ annealing).
    case sphereFace(m: Int = 4)
    /// CosFace / AM-Softmax (Wang et al. 2018): s·(cos θ − m) for the true class.
    case cosFace(scale: Float = 64, margin: Float = 0.35)
    /// ArcFace (Deng et al. 2019): s·cos(θ + m) for the true class, falling back to
    /// s·(cos θ − m·sin m) once θ + m would pass π (insightface's rule, keeps the logit monotonic).
    case arcFace(scale: Float = 64, margin: Float = 0.5)

    var json: JSONValue {
        switch self {
        case .normalized(let s): return .object(["type": .string("normalized"), "scale": .number(Double(s))])
        case .sphereFace(let m): return .object(["type": .string("sphereface"), "m": .int(m)])
        case let .cosFace(s, m): return .object(["type": .string("cosface"), "scale": .number(Double(s)), "margin": .number(Double(m))])
        case let .arcFace(s, m): return .object(["type": .string("arcface"), "scale": .number(Double(s)), "margin": .number(Double(m))])
        }
    }

    /// Reads what `json` writes (`c` is the margin's object).
    init(config c: LayerConfig) throws {
        let scale = { (d: Float) in try c.float("scale", default: d, in: LayerConfig.positive) }
        let margin = { (d: Float) in try c.float("margin", default: d) }
        switch try c.string("type") {
        case "normalized": self = .normalized(scale: try scale(30))
        case "sphereface": self = .sphereFace(m: try c.int("m", default: 4, in: 1...64))
        case "cosface": self = .cosFace(scale: try scale(64), margin: try margin(0.35))
        case "arcface": self = .arcFace(scale: try scale(64), margin: try margin(0.5))
        case let type: throw c.error("unknown margin type '\(type)' (normalized, sphereface, cosface, arcface)")
        }
    }
}

/// A classification head with an angular margin: inputs [features [D], one-hot labels
/// [classes]], output logits [classes] for softmax cross-entropy (from logits). The weight
/// "kernel" [D, classes] has no bias; its columns are normalised in the forward pass. With
/// all-zero labels (inference) no margin is applied.
public final class MarginSoftmax: Layer, ConfigurableLayer {
    public let classes: Int
    public let margin: AngularMargin
    public private(set) var kernel: Parameter!

    public init(classes: Int, margin: AngularMargin, name: String? = nil) {
        precondition(classes > 1, "MarginSoftmax: needs at least 2 classes, got \(classes)")
        if case .sphereFace(let m) = margin { precondition(m >= 1, "MarginSoftmax: SphereFace's m must be ≥ 1, got \(m)") }
        self.classes = classes; self.margin = margin
        super.init(name: name)
    }

    public override var inputArity: ClosedRange<Int> { 2...2 }

    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        guard s[0].count == 1, s[1] == [classes] else {
            throw LayerError("\(name) (MarginSoftmax): expects features [D] and one-hot labels [\(classes)], got \(s[0]) and \(s[1])")
        }
        return [classes]
    }

    public override func build(inputShapes s: [[Int]], generator g: inout SeededGenerator) throws -> [Int] {
        let out = try computeOutputShape(s)
        kernel = addParameter("kernel", [s[0][0], classes], .glorotUniform, generator: &g)
        return out
    }

    /// cos θ between each feature row and each class column: [N, classes].
    public func cosines(_ features: Tensor) -> Tensor {
        let xNorm = (features.square().sum(axes: [1], keepDims: true) + 1e-12).sqrt()
        let w = kernel.value
        let wNorm = (w.square().sum(axes: [0], keepDims: true) + 1e-12).sqrt()
        return matmul(features / xNorm, w / wNorm).clamped(min: -1, max: 1)
    }

    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        let x = inputs[0], y = inputs[1]
        let cos = cosines(x)
        switch margin {
        case .normalized(let s):
            return cos * s
        case let .cosFace(s, m):
            return (cos - y * m) * s
        case let .arcFace(s, m):
            let sin = (1 - cos.square()).clamped(min: 1e-7, max: 1).sqrt()
            let phi = cos * Foundation.cos(m) - sin * Foundation.sin(m)
            // Where θ + m > π, cos(θ + m) stops decreasing: use cos θ − m·sin m instead.
            let threshold = Foundation.cos(Float.pi - m), fallback = Foundation.sin(Float.pi - m) * m
            let target = select(withoutGradients { cos .> threshold }, phi, cos - fallback)
            return (y * target + (1 - y) * cos) * s
        case .sphereFace(let m):
            let xNorm = (x.square().sum(axes: [1], keepDims: true) + 1e-12).sqrt()
            // k = ⌊mθ/π⌋ is piecewise constant: computed without gradient.
            let k = withoutGradients {
                Tensor(shape: cos.shape, scalars: cos.scalars.map { c in
                    Foundation.floor(Float(m) * Foundation.acos(Swift.min(Swift.max(c, -1), 1)) / Float.pi)
                })
            }
            let sign = Tensor(shape: k.shape, scalars: k.scalars.map { Int($0) % 2 == 0 ? 1 : -1 })
            let psi = sign * MarginSoftmax.chebyshev(cos, m) - k * 2
            return (y * psi + (1 - y) * cos) * xNorm
        }
    }

    /// cos(mθ) as the Chebyshev polynomial T_m(cos θ): T₀ = 1, T₁ = c, T_{n+1} = 2c·T_n − T_{n−1}.
    static func chebyshev(_ c: Tensor, _ m: Int) -> Tensor {
        if m == 0 { return Tensor.ones(c.shape) }
        var previous = Tensor.ones(c.shape), current = c
        if m == 1 { return c }
        for _ in 2...m { (previous, current) = (current, c * current * 2 - previous) }
        return current
    }

    /// Reads what `config` writes (architecture files, `Model.load`).
    public convenience init(config c: LayerConfig) throws {
        self.init(classes: try c.int("classes", in: 2...LayerConfig.sizeLimit), margin: try AngularMargin(config: c.nested("margin")))
    }

    public override var config: [String: JSONValue] { ["classes": .int(classes), "margin": margin.json] }
}
