import Foundation

/// A seeded pseudo-random generator (xoshiro256**, seeded through SplitMix64).
///
/// The same seed gives the same sequence on every platform; Ocelli uses it for initialization,
/// shuffling, dropout masks and augmentation so that a seed fixes a whole training run.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    public init(seed: UInt64) {
        var sm = seed
        func splitMix() -> UInt64 {
            sm &+= 0x9E37_79B9_7F4A_7C15
            var z = sm
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
    }

    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform Float in [0, 1) with 24 random bits.
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A standard normal sample (Box–Muller in Double, rounded to Float).
    public mutating func nextNormal() -> Float {
        var u1 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
        return Float((-2 * Foundation.log(u1)).squareRoot() * Foundation.cos(2 * Double.pi * u2))
    }
}

extension Tensor {
    /// Uniform samples in [minimum, maximum).
    public static func uniform(_ shape: [Int], minimum: Float = 0, maximum: Float = 1,
                               using generator: inout SeededGenerator) -> Tensor {
        let n = Shape.count(shape)
        let span = maximum - minimum
        return Tensor(shape: shape, scalars: (0..<n).map { _ in minimum + span * generator.nextUnitFloat() })
    }

    public static func uniform(_ shape: [Int], minimum: Float = 0, maximum: Float = 1, seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        return uniform(shape, minimum: minimum, maximum: maximum, using: &g)
    }

    /// Normal samples with the given mean and standard deviation.
    public static func normal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                              using generator: inout SeededGenerator) -> Tensor {
        let n = Shape.count(shape)
        return Tensor(shape: shape, scalars: (0..<n).map { _ in mean + standardDeviation * generator.nextNormal() })
    }

    public static func normal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1, seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        return normal(shape, mean: mean, standardDeviation: standardDeviation, using: &g)
    }

    /// Normal samples redrawn until they fall within two standard deviations of the mean
    /// (TensorFlow's and Keras' `truncated_normal`).
    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                       using generator: inout SeededGenerator) -> Tensor {
        let n = Shape.count(shape)
        return Tensor(shape: shape, scalars: (0..<n).map { _ in
            var z = generator.nextNormal()
            while Swift.abs(z) > 2 { z = generator.nextNormal() }
            return mean + standardDeviation * z
        })
    }

    public static func truncatedNormal(_ shape: [Int], mean: Float = 0, standardDeviation: Float = 1,
                                       seed: UInt64) -> Tensor {
        var g = SeededGenerator(seed: seed)
        return truncatedNormal(shape, mean: mean, standardDeviation: standardDeviation, using: &g)
    }
}
