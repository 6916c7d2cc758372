import Foundation
import OcelliTensor

/// How a parameter's first value is drawn. Names and defaults are Keras 3's.
public enum Initializer: Equatable, Sendable {
    case zeros, ones
    case constant(Float)
    /// Uniform in [minval, maxval] (Keras default ±0.05).
    case randomUniform(minval: Float = -0.05, maxval: Float = 0.05)
    /// Normal (Keras default stddev 0.05).
    case randomNormal(mean: Float = 0, stddev: Float = 0.05)
    /// Normal redrawn beyond two standard deviations (Keras default stddev 0.05).
    case truncatedNormal(mean: Float = 0, stddev: Float = 0.05)
    /// Uniform ±√(6 / (fanIn + fanOut)): Keras' default for kernels.
    case glorotUniform
    /// Truncated normal with stddev √(2 / (fanIn + fanOut)) / 0.8796 (so the truncated draw has that variance).
    case glorotNormal
    case heUniform, heNormal, lecunUniform, lecunNormal
    /// A (semi-)orthogonal matrix from the QR decomposition of a normal one, times `gain`.
    case orthogonal(gain: Float = 1)

    /// Keras' fans: a Dense kernel [in, out] has fanIn = in, fanOut = out; a conv kernel
    /// [KH, KW, in, out] has fanIn = KH·KW·in and fanOut = KH·KW·out.
    public static func fans(_ shape: [Int]) -> (fanIn: Double, fanOut: Double) {
        switch shape.count {
        case 0: return (1, 1)
        case 1: return (Double(shape[0]), Double(shape[0]))
        case 2: return (Double(shape[0]), Double(shape[1]))
        default:
            let receptive = Double(shape.dropLast(2).reduce(1, *))
            return (receptive * Double(shape[shape.count - 2]), receptive * Double(shape[shape.count - 1]))
        }
    }

    public func make(_ shape: [Int], using g: inout SeededGenerator) -> Tensor {
        let (fanIn, fanOut) = Initializer.fans(shape)
        // 0.87962566103423978 is the stddev of a standard normal truncated at ±2.
        let truncationCorrection = 0.87962566103423978
        func scaledUniform(_ scale: Double) -> Tensor {
            let limit = Float((3 * scale).squareRoot())
            return Tensor.uniform(shape, minimum: -limit, maximum: limit, using: &g)
        }
        func scaledNormal(_ scale: Double) -> Tensor {
            Tensor.truncatedNormal(shape, standardDeviation: Float(scale.squareRoot() / truncationCorrection), using: &g)
        }
        switch self {
        case .zeros: return Tensor.zeros(shape)
        case .ones: return Tensor.ones(shape)
        case .constant(let v): return Tensor.full(shape, v)
        case let .randomUniform(lo, hi): return Tensor.uniform(shape, minimum: lo, maximum: hi, using: &g)
        case let .randomNormal(m, s): return Tensor.normal(shape, mean: m, standardDeviation: s, using: &g)
        case let .truncatedNormal(m, s): return Tensor.truncatedNormal(shape, mean: m, standardDeviation: s, using: &g)
        case .glorotUniform: return scaledUniform(2 / (fanIn + fanOut))
        case .glorotNormal: return scaledNormal(2 / (fanIn + fanOut))
        case .heUniform: return scaledUniform(2 / fanIn)
        case .heNormal: return scaledNormal(2 / fanIn)
        case .lecunUniform: return scaledUniform(1 / fanIn)
        case .lecunNormal: return scaledNormal(1 / fanIn)
        case .orthogonal(let gain): return Initializer.orthogonalMatrix(shape, gain: gain, using: &g)
        }
    }

    /// Keras' orthogonal: flatten to [prod(shape[..<-1]), shape[-1]], QR of a normal matrix of
    /// the taller orientation, Q with its columns' signs fixed by R's diagonal.
    static func orthogonalMatrix(_ shape: [Int], gain: Float, using g: inout SeededGenerator) -> Tensor {
        let cols = shape.last ?? 1
        let rows = Swift.max(1, shape.count <= 1 ? 1 : shape.dropLast().reduce(1, *))
        let (m, n) = (Swift.max(rows, cols), Swift.min(rows, cols))
        let a = Tensor.normal([m, n], using: &g).scalars.map(Double.init)
        // Modified Gram–Schmidt on the columns of a (m x n, m ≥ n).
        var q = a
        for j in 0..<n {
            for k in 0..<j {
                var dot = 0.0
                for i in 0..<m { dot += q[i * n + k] * q[i * n + j] }
                for i in 0..<m { q[i * n + j] -= dot * q[i * n + k] }
            }
            var norm = 0.0
            for i in 0..<m { norm += q[i * n + j] * q[i * n + j] }
            norm = norm.squareRoot()
            for i in 0..<m { q[i * n + j] /= Swift.max(norm, 1e-30) }
        }
        // Gram–Schmidt gives R a positive diagonal, which is the sign fix Keras applies to Q.
        var out = [Float](repeating: 0, count: rows * cols)
        for i in 0..<rows { for j in 0..<cols {
            out[i * cols + j] = gain * Float(rows >= cols ? q[i * n + j] : q[j * n + i])
        } }
        return Tensor(shape: shape, scalars: out)
    }

    var keras: JSONValue {
        switch self {
        case .zeros: return .string("zeros")
        case .ones: return .string("ones")
        case .constant(let v): return .object(["class_name": .string("constant"), "value": .number(Double(v))])
        case let .randomUniform(a, b): return .object(["class_name": .string("random_uniform"), "minval": .number(Double(a)), "maxval": .number(Double(b))])
        case let .randomNormal(m, s): return .object(["class_name": .string("random_normal"), "mean": .number(Double(m)), "stddev": .number(Double(s))])
        case let .truncatedNormal(m, s): return .object(["class_name": .string("truncated_normal"), "mean": .number(Double(m)), "stddev": .number(Double(s))])
        case .glorotUniform: return .string("glorot_uniform")
        case .glorotNormal: return .string("glorot_normal")
        case .heUniform: return .string("he_uniform")
        case .heNormal: return .string("he_normal")
        case .lecunUniform: return .string("lecun_uniform")
        case .lecunNormal: return .string("lecun_normal")
        case .orthogonal(let gain): return .object(["class_name": .string("orthogonal"), "gain": .number(Double(gain))])
        }
    }

    init?(keras v: JSONValue) {
        if let s = v.string {
            switch s {
            case "zeros": self = .zeros
            case "ones": self = .ones
            case "glorot_uniform": self = .glorotUniform
            case "glorot_normal": self = .glorotNormal
            case "he_uniform": self = .heUniform
            case "he_normal": self = .heNormal
            case "lecun_uniform": self = .lecunUniform
            case "lecun_normal": self = .lecunNormal
            case "random_uniform": self = .randomUniform()
            case "random_normal": self = .randomNormal()
            case "truncated_normal": self = .truncatedNormal()
            case "orthogonal": self = .orthogonal()
            default: return nil
            }
            return
        }
        guard case .object(let o) = v, let c = o["class_name"]?.string else { return nil }
        func f(_ k: String, _ d: Float) -> Float { o[k]?.double.map(Float.init) ?? d }
        switch c {
        case "constant": self = .constant(f("value", 0))
        case "random_uniform": self = .randomUniform(minval: f("minval", -0.05), maxval: f("maxval", 0.05))
        case "random_normal": self = .randomNormal(mean: f("mean", 0), stddev: f("stddev", 0.05))
        case "truncated_normal": self = .truncatedNormal(mean: f("mean", 0), stddev: f("stddev", 0.05))
        case "orthogonal": self = .orthogonal(gain: f("gain", 1))
        default: return nil
        }
    }
}

/// A penalty on a parameter, added to the training loss (Keras 3 defaults: 0.01).
public enum Regularizer: Equatable, Sendable {
    case l1(Float = 0.01)
    case l2(Float = 0.01)
    case l1l2(l1: Float = 0, l2: Float = 0)

    /// The penalty as a recorded scalar (so its gradient reaches the parameter).
    public func penalty(_ w: Tensor) -> Tensor {
        switch self {
        case .l1(let a): return w.abs().sum() * a
        case .l2(let a): return w.square().sum() * a
        case let .l1l2(a, b): return w.abs().sum() * a + w.square().sum() * b
        }
    }

    var keras: JSONValue {
        switch self {
        case .l1(let a): return .object(["class_name": .string("L1"), "l1": .number(Double(a))])
        case .l2(let a): return .object(["class_name": .string("L2"), "l2": .number(Double(a))])
        case let .l1l2(a, b): return .object(["class_name": .string("L1L2"), "l1": .number(Double(a)), "l2": .number(Double(b))])
        }
    }

    init?(keras v: JSONValue) {
        guard case .object(let o) = v, let c = o["class_name"]?.string else { return nil }
        func f(_ k: String, _ d: Float) -> Float { o[k]?.double.map(Float.init) ?? d }
        switch c {
        case "L1": self = .l1(f("l1", 0.01))
        case "L2": self = .l2(f("l2", 0.01))
        case "L1L2": self = .l1l2(l1: f("l1", 0), l2: f("l2", 0))
        default: return nil
        }
    }
}
