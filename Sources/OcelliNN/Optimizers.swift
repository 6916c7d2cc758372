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

/// Gradient-based optimizers with Keras 3's update rules and defaults.
///
/// Shared options (as Keras 3): `weightDecay` (decoupled: w −= lr·wd·w before the update),
/// `clipNorm` (per parameter), `globalClipNorm`, `clipValue`.
public final class Optimizer {
    public enum Kind: Equatable, Sendable {
        /// Keras 3 defaults: learning rate 0.01, momentum 0.
        case sgd(momentum: Float = 0, nesterov: Bool = false)
        case adam(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false)
        case adamax(beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7)
        case rmsprop(rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7, centered: Bool = false)
        /// Keras 3's learning rate default is 0.001; Keras 2's was 1.0.
        case adadelta(rho: Float = 0.95, epsilon: Float = 1e-7)
        case adagrad(initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7)
    }

    public let kind: Kind
    public var schedule: any LearningRateSchedule
    public var weightDecay: Float?
    public var clipNorm: Float?, globalClipNorm: Float?, clipValue: Float?
    public let name: String
    /// Updates applied so far (Keras' `iterations`).
    public private(set) var iterations = 0
    private var slots: [ObjectIdentifier: [Float]] = [:]

    init(kind: Kind, name: String, learningRate: any LearningRateSchedule, weightDecay: Float? = nil,
         clipNorm: Float? = nil, globalClipNorm: Float? = nil, clipValue: Float? = nil) {
        self.kind = kind; self.name = name; self.schedule = learningRate; self.weightDecay = weightDecay
        self.clipNorm = clipNorm; self.globalClipNorm = globalClipNorm; self.clipValue = clipValue
    }

    public static func sgd(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float? = nil,
                           clipNorm: Float? = nil, clipValue: Float? = nil) -> Optimizer {
        Optimizer(kind: .sgd(momentum: momentum, nesterov: nesterov), name: "SGD", learningRate: ConstantLearningRate(learningRate),
                  weightDecay: weightDecay, clipNorm: clipNorm, clipValue: clipValue)
    }
    public static func adam(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                            amsgrad: Bool = false, weightDecay: Float? = nil, clipNorm: Float? = nil, clipValue: Float? = nil) -> Optimizer {
        Optimizer(kind: .adam(beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad), name: "Adam",
                  learningRate: ConstantLearningRate(learningRate), weightDecay: weightDecay, clipNorm: clipNorm, clipValue: clipValue)
    }
    /// Adam with decoupled weight decay (Keras 3 default 0.004).
    public static func adamW(learningRate: Float = 0.001, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                             epsilon: Float = 1e-7, amsgrad: Bool = false) -> Optimizer {
        Optimizer(kind: .adam(beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad), name: "AdamW",
                  learningRate: ConstantLearningRate(learningRate), weightDecay: weightDecay)
    }
    public static func adamax(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) -> Optimizer {
        Optimizer(kind: .adamax(beta1: beta1, beta2: beta2, epsilon: epsilon), name: "Adamax", learningRate: ConstantLearningRate(learningRate))
    }
    public static func rmsprop(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                               centered: Bool = false) -> Optimizer {
        Optimizer(kind: .rmsprop(rho: rho, momentum: momentum, epsilon: epsilon, centered: centered), name: "RMSprop",
                  learningRate: ConstantLearningRate(learningRate))
    }
    public static func adadelta(learningRate: Float = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7) -> Optimizer {
        Optimizer(kind: .adadelta(rho: rho, epsilon: epsilon), name: "Adadelta", learningRate: ConstantLearningRate(learningRate))
    }
    public static func adagrad(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7) -> Optimizer {
        Optimizer(kind: .adagrad(initialAccumulatorValue: initialAccumulatorValue, epsilon: epsilon), name: "Adagrad",
                  learningRate: ConstantLearningRate(learningRate))
    }

    /// Uses a schedule instead of a constant learning rate.
    public func withSchedule(_ s: any LearningRateSchedule) -> Optimizer { schedule = s; return self }

    /// The learning rate of the next update.
    public var learningRate: Float {
        get { schedule(iterations) }
        set { schedule = ConstantLearningRate(newValue) }
    }

    /// Applies one update to every parameter that has a gradient, then clears the gradients.
    public func apply(_ parameters: [Parameter]) {
        let lr = learningRate
        let t = iterations + 1
        var grads: [(Parameter, [Float])] = parameters.compactMap { p in p.grad.map { (p, $0.scalars) } }
        if let c = clipValue { for i in grads.indices { grads[i].1 = grads[i].1.map { Swift.min(Swift.max($0, -c), c) } } }
        if let c = clipNorm {
            for i in grads.indices {
                let norm = grads[i].1.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
                if norm > Double(c) { let s = Float(Double(c) / norm); grads[i].1 = grads[i].1.map { $0 * s } }
            }
        }
        if let c = globalClipNorm {
            let norm = grads.reduce(0.0) { acc, g in acc + g.1.reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
            if norm > Double(c) { let s = Float(Double(c) / norm); for i in grads.indices { grads[i].1 = grads[i].1.map { $0 * s } } }
        }
        for (p, g) in grads {
            p.value.zeroGrad()
            // In place: the parameter's buffer is not shared, so no copy is made.
            p.value.updateScalars { w in
                if let wd = weightDecay, wd > 0 { for i in w.indices { w[i] -= w[i] * wd * lr } }
                update(&w, g, key: ObjectIdentifier(p), lr: lr, t: t)
            }
        }
        iterations += 1
    }

    /// Runs `body` on the parameter's `count` state slots (each n floats, one flat buffer), the
    /// weights and the gradient, as raw pointers so the element loops vectorize.
    private func withState(_ key: ObjectIdentifier, _ count: Int, initial: Float = 0,
                           _ w: inout [Float], _ g: [Float],
                           _ body: ([UnsafeMutablePointer<Float>], UnsafeMutablePointer<Float>, UnsafePointer<Float>) -> Void) {
        let n = w.count
        // Taken out of the dictionary so that the update mutates it in place (no copy).
        var s = slots.removeValue(forKey: key) ?? [Float](repeating: initial, count: count * n)
        s.withUnsafeMutableBufferPointer { sp in
            w.withUnsafeMutableBufferPointer { wp in
                g.withUnsafeBufferPointer { gp in
                    body((0..<count).map { sp.baseAddress! + $0 * n }, wp.baseAddress!, gp.baseAddress!)
                }
            }
        }
        slots[key] = s
    }

    private func update(_ w: inout [Float], _ g: [Float], key: ObjectIdentifier, lr: Float, t: Int) {
        let n = w.count
        if n == 0 { return }
        switch kind {
        case let .sgd(momentum, nesterov):
            if momentum == 0 {
                w.withUnsafeMutableBufferPointer { w in g.withUnsafeBufferPointer { g in for i in 0..<n { w[i] -= lr * g[i] } } }
                return
            }
            withState(key, 1, &w, g) { s, w, g in
                let m = s[0]
                if nesterov {
                    for i in 0..<n { m[i] = momentum * m[i] - lr * g[i]; w[i] += momentum * m[i] - lr * g[i] }
                } else {
                    for i in 0..<n { m[i] = momentum * m[i] - lr * g[i]; w[i] += m[i] }
                }
            }
        case let .adam(b1, b2, eps, amsgrad):
            let alpha = lr * Float((1 - Foundation.pow(Double(b2), Double(t))).squareRoot() / (1 - Foundation.pow(Double(b1), Double(t))))
            withState(key, amsgrad ? 3 : 2, &w, g) { s, w, g in
                let m = s[0], v = s[1]
                if amsgrad {
                    let vMax = s[2]
                    for i in 0..<n {
                        m[i] += (g[i] - m[i]) * (1 - b1)
                        v[i] += (g[i] * g[i] - v[i]) * (1 - b2)
                        vMax[i] = Swift.max(vMax[i], v[i])
                        w[i] -= alpha * m[i] / (vMax[i].squareRoot() + eps)
                    }
                } else {
                    for i in 0..<n {
                        m[i] += (g[i] - m[i]) * (1 - b1)
                        v[i] += (g[i] * g[i] - v[i]) * (1 - b2)
                        w[i] -= alpha * m[i] / (v[i].squareRoot() + eps)
                    }
                }
            }
        case let .adamax(b1, b2, eps):
            let scaled = lr / Float(1 - Foundation.pow(Double(b1), Double(t)))
            withState(key, 2, &w, g) { s, w, g in
                let m = s[0], u = s[1]
                for i in 0..<n {
                    m[i] += (g[i] - m[i]) * (1 - b1)
                    u[i] = Swift.max(b2 * u[i], Swift.abs(g[i]))
                    w[i] -= scaled * m[i] / (u[i] + eps)
                }
            }
        case let .rmsprop(rho, momentum, eps, centered):
            withState(key, 3, &w, g) { s, w, g in
                let ms = s[0], mg = s[1], mom = s[2]
                for i in 0..<n {
                    ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i]
                    var denominator = ms[i]
                    if centered { mg[i] = rho * mg[i] + (1 - rho) * g[i]; denominator -= mg[i] * mg[i] }
                    let increment = lr * g[i] / (denominator + eps).squareRoot()
                    if momentum > 0 { mom[i] = momentum * mom[i] + increment; w[i] -= mom[i] } else { w[i] -= increment }
                }
            }
        case let .adadelta(rho, eps):
            withState(key, 2, &w, g) { s, w, g in
                let acc = s[0], accDelta = s[1]
                for i in 0..<n {
                    acc[i] = rho * acc[i] + (1 - rho) * g[i] * g[i]
                    let delta = -(accDelta[i] + eps).squareRoot() / (acc[i] + eps).squareRoot() * g[i]
                    accDelta[i] = rho * accDelta[i] + (1 - rho) * delta * delta
                    w[i] += lr * delta
                }
            }
        case let .adagrad(initial, eps):
            withState(key, 1, initial: initial, &w, g) { s, w, g in
                let acc = s[0]
                for i in 0..<n {
                    acc[i] += g[i] * g[i]
                    w[i] -= lr * g[i] / (acc[i] + eps).squareRoot()
                }
            }
        }
    }
}
