import Foundation
import OcelliTensor

/// A learning rate as a function of the optimizer's step (0-based, counted before the update).
public protocol LearningRateSchedule {
    func callAsFunction(_ step: Int) -> Float
}

/// Constant values between boundaries: values[i] while step ≤ boundaries[i] (Keras' PiecewiseConstantDecay).
public struct PiecewiseConstantDecay: LearningRateSchedule {
    public let boundaries: [Int], values: [Float]
    public init(boundaries: [Int], values: [Float]) {
        precondition(values.count == boundaries.count + 1, "PiecewiseConstantDecay: needs one more value than boundaries")
        self.boundaries = boundaries; self.values = values
    }
    public func callAsFunction(_ step: Int) -> Float {
        for (i, b) in boundaries.enumerated() where step <= b { return values[i] }
        return values.last!
    }
}

/// initial · rate^(step / decaySteps), floored exponent when `staircase`.
public struct ExponentialDecay: LearningRateSchedule {
    public let initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool
    public init(initialLearningRate: Float, decaySteps: Int, decayRate: Float, staircase: Bool = false) {
        self.initialLearningRate = initialLearningRate; self.decaySteps = decaySteps
        self.decayRate = decayRate; self.staircase = staircase
    }
    public func callAsFunction(_ step: Int) -> Float {
        var p = Double(step) / Double(decaySteps)
        if staircase { p = p.rounded(.down) }
        return initialLearningRate * Float(Foundation.pow(Double(decayRate), p))
    }
}

/// Cosine decay from initial to alpha·initial over decaySteps, after an optional linear warm-up
/// from `initialLearningRate` to `warmupTarget` over `warmupSteps` (Keras 3's CosineDecay).
public struct CosineDecay: LearningRateSchedule {
    public let initialLearningRate: Float, decaySteps: Int, alpha: Float
    public let warmupTarget: Float?, warmupSteps: Int
    public init(initialLearningRate: Float, decaySteps: Int, alpha: Float = 0, warmupTarget: Float? = nil, warmupSteps: Int = 0) {
        self.initialLearningRate = initialLearningRate; self.decaySteps = decaySteps; self.alpha = alpha
        self.warmupTarget = warmupTarget; self.warmupSteps = warmupSteps
    }
    public func callAsFunction(_ step: Int) -> Float {
        if let target = warmupTarget, step < warmupSteps {
            return initialLearningRate + (target - initialLearningRate) * Float(step) / Float(warmupSteps)
        }
        let peak = warmupTarget ?? initialLearningRate
        let s = Double(Swift.min(step - (warmupTarget == nil ? 0 : warmupSteps), decaySteps))
        let cosine = 0.5 * (1 + Foundation.cos(Double.pi * s / Double(decaySteps)))
        return peak * Float((1 - Double(alpha)) * cosine + Double(alpha))
    }
}

/// (initial − end)·(1 − step/decaySteps)^power + end (Keras' PolynomialDecay).
public struct PolynomialDecay: LearningRateSchedule {
    public let initialLearningRate: Float, decaySteps: Int, endLearningRate: Float, power: Float, cycle: Bool
    public init(initialLearningRate: Float, decaySteps: Int, endLearningRate: Float = 0.0001, power: Float = 1, cycle: Bool = false) {
        self.initialLearningRate = initialLearningRate; self.decaySteps = decaySteps
        self.endLearningRate = endLearningRate; self.power = power; self.cycle = cycle
    }
    public func callAsFunction(_ step: Int) -> Float {
        var steps = Double(decaySteps), s = Double(step)
        if cycle { steps *= Swift.max(1, (s / steps).rounded(.up)) } else { s = Swift.min(s, steps) }
        let frac = 1 - s / steps
        return (initialLearningRate - endLearningRate) * Float(Foundation.pow(frac, Double(power))) + endLearningRate
    }
}

/// Linear warm-up from 0 to the wrapped schedule's value over `warmupSteps`, then the schedule.
public struct LinearWarmup: LearningRateSchedule {
    public let warmupSteps: Int
    public let after: any LearningRateSchedule
    public init(warmupSteps: Int, then after: any LearningRateSchedule) { self.warmupSteps = warmupSteps; self.after = after }
    public func callAsFunction(_ step: Int) -> Float {
        step < warmupSteps ? after(0) * Float(step + 1) / Float(warmupSteps) : after(step - warmupSteps)
    }
}

/// A constant learning rate.
public struct ConstantLearningRate: LearningRateSchedule {
    public let value: Float
    public init(_ value: Float) { self.value = value }
    public func callAsFunction(_ step: Int) -> Float { value }
}
