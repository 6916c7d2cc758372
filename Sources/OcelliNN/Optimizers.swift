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

/// One parameter's update, as `Optimizer.applySingle` sees it: raw buffers so that the
/// element loops vectorize.
public struct ParameterUpdate {
    /// Elements of the parameter.
    public let count: Int
    /// The weights, updated in place.
    public let weights: UnsafeMutablePointer<Float>
    /// The gradient (after clipping).
    public let gradient: UnsafePointer<Float>
    /// The optimizer's per-element state of this parameter: one buffer of `count` floats per
    /// entry of `slotInitialValues`, kept between steps.
    public let slots: [UnsafeMutablePointer<Float>]
    /// The learning rate of this step.
    public let learningRate: Float
    /// The step, counted from 1 (Adam's bias correction uses it).
    public let step: Int
}

/// A gradient-based optimizer. A conformer implements only its per-parameter update
/// (`applySingle`, mlx-swift's shape) and says how much state it keeps per element; the
/// learning-rate schedule, weight decay, gradient clipping, the step count and the state
/// buffers are shared (`OptimizerState`), as are `apply` and saving.
///
/// ```swift
/// final class SignSGD: Optimizer {              // an optimizer written outside the library
///     let state = OptimizerState(learningRate: 0.01)
///     var name: String { "SignSGD" }
///     func applySingle(_ u: ParameterUpdate) {
///         for i in 0..<u.count { u.weights[i] -= u.learningRate * (u.gradient[i] > 0 ? 1 : -1) }
///     }
/// }
/// ```
public protocol Optimizer: AnyObject {
    /// The class name in logs and in a saved model (Keras' names: "SGD", "Adam", …).
    var name: String { get }
    /// The schedule, shared options, step count and per-parameter state.
    var state: OptimizerState { get }
    /// The initial value of each state buffer kept per parameter element (Adam: [0, 0] for
    /// its two moments). Default: none.
    var slotInitialValues: [Float] { get }
    /// Updates one parameter in place.
    func applySingle(_ update: ParameterUpdate)
    /// The hyper-parameters `Model.save` writes (beside the shared options); `Model.load`
    /// rebuilds the optimizer from them through `OptimizerRegistry`.
    var config: [String: JSONValue] { get }
}

extension Optimizer {
    public var slotInitialValues: [Float] { [] }
    public var config: [String: JSONValue] { [:] }

    /// The schedule (a constant learning rate unless `withSchedule` set one).
    public var schedule: any LearningRateSchedule {
        get { state.schedule }
        set { state.schedule = newValue }
    }
    /// Decoupled weight decay (w −= lr·wd·w before the update), as Keras 3.
    public var weightDecay: Float? {
        get { state.weightDecay }
        set { state.weightDecay = newValue }
    }
    /// Clips each parameter's gradient to this norm.
    public var clipNorm: Float? {
        get { state.clipNorm }
        set { state.clipNorm = newValue }
    }
    /// Scales all gradients together so their joint norm is at most this.
    public var globalClipNorm: Float? {
        get { state.globalClipNorm }
        set { state.globalClipNorm = newValue }
    }
    /// Clips each gradient element to ±this.
    public var clipValue: Float? {
        get { state.clipValue }
        set { state.clipValue = newValue }
    }
    /// Updates applied so far (Keras' `iterations`).
    public var iterations: Int { state.iterations }

    /// Uses a schedule instead of a constant learning rate.
    @discardableResult
    public func withSchedule(_ s: any LearningRateSchedule) -> Self { state.schedule = s; return self }

    /// The learning rate of the next update.
    public var learningRate: Float {
        get { state.schedule(state.iterations) }
        set { state.schedule = ConstantLearningRate(newValue) }
    }

    /// Applies one update to every parameter that has a gradient, then clears the gradients.
    public func apply(_ parameters: [Parameter]) {
        let lr = learningRate
        let t = state.iterations + 1
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
        let initial = slotInitialValues
        for (p, g) in grads {
            p.value.zeroGrad()
            // In place: the parameter's buffer is not shared, so no copy is made.
            p.value.updateScalars { w in
                if let wd = weightDecay, wd > 0 { for i in w.indices { w[i] -= w[i] * wd * lr } }
                let n = w.count
                if n == 0 { return }
                state.withSlots(ObjectIdentifier(p), initial: initial, count: n) { slots in
                    w.withUnsafeMutableBufferPointer { wp in
                        g.withUnsafeBufferPointer { gp in
                            applySingle(ParameterUpdate(count: n, weights: wp.baseAddress!, gradient: gp.baseAddress!,
                                                        slots: slots, learningRate: lr, step: t))
                        }
                    }
                }
            }
        }
        state.iterations += 1
    }
}

/// What every optimizer shares: the learning-rate schedule, weight decay and clipping options
/// (Keras 3's), the step count and each parameter's state buffers.
public final class OptimizerState {
    public var schedule: any LearningRateSchedule
    public var weightDecay: Float?
    public var clipNorm: Float?, globalClipNorm: Float?, clipValue: Float?
    /// Updates applied so far (Keras' `iterations`).
    public internal(set) var iterations = 0
    /// Per parameter: its state buffers, one flat array of slots × elements.
    var slots: [ObjectIdentifier: [Float]] = [:]

    public init(learningRate: Float, weightDecay: Float? = nil, clipNorm: Float? = nil, globalClipNorm: Float? = nil,
                clipValue: Float? = nil) {
        self.schedule = ConstantLearningRate(learningRate); self.weightDecay = weightDecay
        self.clipNorm = clipNorm; self.globalClipNorm = globalClipNorm; self.clipValue = clipValue
    }

    /// Runs `body` on the parameter's state buffers (created with their initial values on
    /// first use), mutated in place.
    func withSlots(_ key: ObjectIdentifier, initial: [Float], count n: Int, _ body: ([UnsafeMutablePointer<Float>]) -> Void) {
        if initial.isEmpty { body([]); return }
        // Taken out of the dictionary so that the update mutates it in place (no copy).
        var s = slots.removeValue(forKey: key) ?? initial.flatMap { [Float](repeating: $0, count: n) }
        s.withUnsafeMutableBufferPointer { sp in body((0..<initial.count).map { sp.baseAddress! + $0 * n }) }
        slots[key] = s
    }
}

// MARK: - Keras' optimizers (Keras 3's update rules and defaults)

/// Stochastic gradient descent with optional (Nesterov) momentum; Keras 3 defaults: learning
/// rate 0.01, momentum 0.
public final class SGD: Optimizer {
    public let state: OptimizerState
    public let momentum: Float, nesterov: Bool
    public var name: String { "SGD" }
    public init(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float? = nil,
                clipNorm: Float? = nil, clipValue: Float? = nil) {
        state = OptimizerState(learningRate: learningRate, weightDecay: weightDecay, clipNorm: clipNorm, clipValue: clipValue)
        self.momentum = momentum; self.nesterov = nesterov
    }
    public var slotInitialValues: [Float] { momentum == 0 ? [] : [0] }
    public var config: [String: JSONValue] { ["momentum": .number(Double(momentum)), "nesterov": .bool(nesterov)] }
    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, lr = u.learningRate, momentum = momentum
        if momentum == 0 {
            for i in 0..<n { w[i] -= lr * g[i] }
            return
        }
        let m = u.slots[0]
        if nesterov {
            for i in 0..<n { m[i] = momentum * m[i] - lr * g[i]; w[i] += momentum * m[i] - lr * g[i] }
        } else {
            for i in 0..<n { m[i] = momentum * m[i] - lr * g[i]; w[i] += m[i] }
        }
    }
}

/// Adam (and AdamW: Adam with decoupled weight decay, Keras 3 default 0.004).
public final class Adam: Optimizer {
    public let state: OptimizerState
    public let beta1: Float, beta2: Float, epsilon: Float, amsgrad: Bool
    public let name: String
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7, amsgrad: Bool = false,
                weightDecay: Float? = nil, clipNorm: Float? = nil, clipValue: Float? = nil, name: String = "Adam") {
        state = OptimizerState(learningRate: learningRate, weightDecay: weightDecay, clipNorm: clipNorm, clipValue: clipValue)
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon; self.amsgrad = amsgrad; self.name = name
    }
    public var slotInitialValues: [Float] { amsgrad ? [0, 0, 0] : [0, 0] }
    public var config: [String: JSONValue] {
        ["beta_1": .number(Double(beta1)), "beta_2": .number(Double(beta2)), "epsilon": .number(Double(epsilon)), "amsgrad": .bool(amsgrad)]
    }
    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, b1 = beta1, b2 = beta2, eps = epsilon
        let alpha = u.learningRate * Float((1 - Foundation.pow(Double(b2), Double(u.step))).squareRoot() / (1 - Foundation.pow(Double(b1), Double(u.step))))
        let m = u.slots[0], v = u.slots[1]
        if amsgrad {
            let vMax = u.slots[2]
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
}

/// Adamax: Adam with the infinity norm.
public final class Adamax: Optimizer {
    public let state: OptimizerState
    public let beta1: Float, beta2: Float, epsilon: Float
    public var name: String { "Adamax" }
    public init(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) {
        state = OptimizerState(learningRate: learningRate)
        self.beta1 = beta1; self.beta2 = beta2; self.epsilon = epsilon
    }
    public var slotInitialValues: [Float] { [0, 0] }
    public var config: [String: JSONValue] { ["beta_1": .number(Double(beta1)), "beta_2": .number(Double(beta2)), "epsilon": .number(Double(epsilon))] }
    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, b1 = beta1, b2 = beta2, eps = epsilon
        let scaled = u.learningRate / Float(1 - Foundation.pow(Double(b1), Double(u.step)))
        let m = u.slots[0], v = u.slots[1]
        for i in 0..<n {
            m[i] += (g[i] - m[i]) * (1 - b1)
            v[i] = Swift.max(b2 * v[i], Swift.abs(g[i]))
            w[i] -= scaled * m[i] / (v[i] + eps)
        }
    }
}

/// RMSprop, optionally centered and with momentum.
public final class RMSprop: Optimizer {
    public let state: OptimizerState
    public let rho: Float, momentum: Float, epsilon: Float, centered: Bool
    public var name: String { "RMSprop" }
    public init(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7, centered: Bool = false) {
        state = OptimizerState(learningRate: learningRate)
        self.rho = rho; self.momentum = momentum; self.epsilon = epsilon; self.centered = centered
    }
    public var slotInitialValues: [Float] { [0, 0, 0] }
    public var config: [String: JSONValue] {
        ["rho": .number(Double(rho)), "momentum": .number(Double(momentum)), "epsilon": .number(Double(epsilon)), "centered": .bool(centered)]
    }
    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, lr = u.learningRate, rho = rho, momentum = momentum, eps = epsilon
        let ms = u.slots[0], mg = u.slots[1], mom = u.slots[2]
        for i in 0..<n {
            ms[i] = rho * ms[i] + (1 - rho) * g[i] * g[i]
            var denominator = ms[i]
            if centered { mg[i] = rho * mg[i] + (1 - rho) * g[i]; denominator -= mg[i] * mg[i] }
            let increment = lr * g[i] / (denominator + eps).squareRoot()
            if momentum > 0 { mom[i] = momentum * mom[i] + increment; w[i] -= mom[i] } else { w[i] -= increment }
        }
    }
}

/// Adadelta; Keras 3's learning rate default is 0.001 (Keras 2's was 1.0).
public final class Adadelta: Optimizer {
    public let state: OptimizerState
    public let rho: Float, epsilon: Float
    public var name: String { "Adadelta" }
    public init(learningRate: Float = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7) {
        state = OptimizerState(learningRate: learningRate)
        self.rho = rho; self.epsilon = epsilon
    }
    public var slotInitialValues: [Float] { [0, 0] }
    public var config: [String: JSONValue] { ["rho": .number(Double(rho)), "epsilon": .number(Double(epsilon))] }
    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, lr = u.learningRate, rho = rho, eps = epsilon
        let acc = u.slots[0], accDelta = u.slots[1]
        for i in 0..<n {
            acc[i] = rho * acc[i] + (1 - rho) * g[i] * g[i]
            let delta = -(accDelta[i] + eps).squareRoot() / (acc[i] + eps).squareRoot() * g[i]
            accDelta[i] = rho * accDelta[i] + (1 - rho) * delta * delta
            w[i] += lr * delta
        }
    }
}

/// Adagrad.
public final class Adagrad: Optimizer {
    public let state: OptimizerState
    public let initialAccumulatorValue: Float, epsilon: Float
    public var name: String { "Adagrad" }
    public init(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7) {
        state = OptimizerState(learningRate: learningRate)
        self.initialAccumulatorValue = initialAccumulatorValue; self.epsilon = epsilon
    }
    public var slotInitialValues: [Float] { [initialAccumulatorValue] }
    public var config: [String: JSONValue] {
        ["initial_accumulator_value": .number(Double(initialAccumulatorValue)), "epsilon": .number(Double(epsilon))]
    }
    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, lr = u.learningRate, eps = epsilon
        let acc = u.slots[0]
        for i in 0..<n {
            acc[i] += g[i] * g[i]
            w[i] -= lr * g[i] / (acc[i] + eps).squareRoot()
        }
    }
}

// Keras' optimizers spelled as in Keras: `compile(optimizer: .adam(learningRate: 1e-3), …)`.
extension Optimizer where Self == SGD {
    public static func sgd(learningRate: Float = 0.01, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float? = nil,
                           clipNorm: Float? = nil, clipValue: Float? = nil) -> SGD {
        SGD(learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay, clipNorm: clipNorm, clipValue: clipValue)
    }
}
extension Optimizer where Self == Adam {
    public static func adam(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7,
                            amsgrad: Bool = false, weightDecay: Float? = nil, clipNorm: Float? = nil, clipValue: Float? = nil) -> Adam {
        Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad, weightDecay: weightDecay,
             clipNorm: clipNorm, clipValue: clipValue)
    }
    /// Adam with decoupled weight decay (Keras 3 default 0.004).
    public static func adamW(learningRate: Float = 0.001, weightDecay: Float = 0.004, beta1: Float = 0.9, beta2: Float = 0.999,
                             epsilon: Float = 1e-7, amsgrad: Bool = false) -> Adam {
        Adam(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon, amsgrad: amsgrad, weightDecay: weightDecay, name: "AdamW")
    }
}
extension Optimizer where Self == Adamax {
    public static func adamax(learningRate: Float = 0.001, beta1: Float = 0.9, beta2: Float = 0.999, epsilon: Float = 1e-7) -> Adamax {
        Adamax(learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon)
    }
}
extension Optimizer where Self == RMSprop {
    public static func rmsprop(learningRate: Float = 0.001, rho: Float = 0.9, momentum: Float = 0, epsilon: Float = 1e-7,
                               centered: Bool = false) -> RMSprop {
        RMSprop(learningRate: learningRate, rho: rho, momentum: momentum, epsilon: epsilon, centered: centered)
    }
}
extension Optimizer where Self == Adadelta {
    public static func adadelta(learningRate: Float = 0.001, rho: Float = 0.95, epsilon: Float = 1e-7) -> Adadelta {
        Adadelta(learningRate: learningRate, rho: rho, epsilon: epsilon)
    }
}
extension Optimizer where Self == Adagrad {
    public static func adagrad(learningRate: Float = 0.001, initialAccumulatorValue: Float = 0.1, epsilon: Float = 1e-7) -> Adagrad {
        Adagrad(learningRate: learningRate, initialAccumulatorValue: initialAccumulatorValue, epsilon: epsilon)
    }
}

// MARK: - Saving

extension Optimizer {
    /// The optimizer's class, hyper-parameters and shared options, as `Model.save` writes them
    /// (the state buffers go to the weights file, the step count here).
    public var savedConfig: SavedObject {
        var c = config
        c["learning_rate"] = savedSchedule(state.schedule)
        if let v = weightDecay { c["weight_decay"] = .number(Double(v)) }
        if let v = clipNorm { c["clipnorm"] = .number(Double(v)) }
        if let v = globalClipNorm { c["global_clipnorm"] = .number(Double(v)) }
        if let v = clipValue { c["clipvalue"] = .number(Double(v)) }
        c["iterations"] = .int(state.iterations)
        return SavedObject(className: name, config: c)
    }

    /// Applies the shared options and the step count of a saved configuration.
    func restoreShared(_ saved: SavedObject) throws {
        let c = saved.config
        func number(_ k: String) throws -> Float? {
            guard let v = c[k], v != .null else { return nil }
            guard let d = v.double, d.isFinite else { throw SavedObjectError("optimizer \(saved.className): '\(k)' must be a finite number, got \(v)") }
            return Float(d)
        }
        if let lr = c["learning_rate"] { state.schedule = try decodeSchedule(lr, optimizer: saved.className) }
        weightDecay = try number("weight_decay")
        clipNorm = try number("clipnorm")
        globalClipNorm = try number("global_clipnorm")
        clipValue = try number("clipvalue")
        if let v = c["iterations"] {
            guard let d = v.double, d >= 0, d < 1e15, d == d.rounded() else {
                throw SavedObjectError("optimizer \(saved.className): 'iterations' must be a non-negative integer, got \(v)")
            }
            state.iterations = Int(d)
        }
    }
}

/// Keras' optimizers from a saved configuration; nil for another class name.
func kerasOptimizer(_ saved: SavedObject) throws -> (any Optimizer)? {
    let c = saved.config
    func f(_ k: String, _ d: Float) throws -> Float {
        guard let v = c[k] else { return d }
        guard let x = v.double, x.isFinite else { throw SavedObjectError("optimizer \(saved.className): '\(k)' must be a finite number, got \(v)") }
        return Float(x)
    }
    func b(_ k: String, _ d: Bool) throws -> Bool {
        guard let v = c[k] else { return d }
        guard let x = v.bool else { throw SavedObjectError("optimizer \(saved.className): '\(k)' must be true or false, got \(v)") }
        return x
    }
    let o: any Optimizer
    switch saved.className {
    case "SGD": o = SGD(momentum: try f("momentum", 0), nesterov: try b("nesterov", false))
    case "Adam", "AdamW":
        o = Adam(beta1: try f("beta_1", 0.9), beta2: try f("beta_2", 0.999), epsilon: try f("epsilon", 1e-7),
                 amsgrad: try b("amsgrad", false), name: saved.className)
    case "Adamax": o = Adamax(beta1: try f("beta_1", 0.9), beta2: try f("beta_2", 0.999), epsilon: try f("epsilon", 1e-7))
    case "RMSprop":
        o = RMSprop(rho: try f("rho", 0.9), momentum: try f("momentum", 0), epsilon: try f("epsilon", 1e-7), centered: try b("centered", false))
    case "Adadelta": o = Adadelta(rho: try f("rho", 0.95), epsilon: try f("epsilon", 1e-7))
    case "Adagrad": o = Adagrad(initialAccumulatorValue: try f("initial_accumulator_value", 0.1), epsilon: try f("epsilon", 1e-7))
    default: return nil
    }
    try o.restoreShared(saved)
    return o
}

/// A schedule as saved: a number for a constant rate, else Keras' `{"class_name", "config"}`.
func savedSchedule(_ s: any LearningRateSchedule) -> JSONValue {
    func n(_ x: Float) -> JSONValue { .number(Double(x)) }
    let (cls, c): (String, [String: JSONValue])
    switch s {
    case let s as ConstantLearningRate: return n(s.value)
    case let s as PiecewiseConstantDecay:
        (cls, c) = ("PiecewiseConstantDecay", ["boundaries": .ints(s.boundaries), "values": .array(s.values.map(n))])
    case let s as ExponentialDecay:
        (cls, c) = ("ExponentialDecay", ["initial_learning_rate": n(s.initialLearningRate), "decay_steps": .int(s.decaySteps),
                                         "decay_rate": n(s.decayRate), "staircase": .bool(s.staircase)])
    case let s as CosineDecay:
        (cls, c) = ("CosineDecay", ["initial_learning_rate": n(s.initialLearningRate), "decay_steps": .int(s.decaySteps), "alpha": n(s.alpha),
                                    "warmup_target": s.warmupTarget.map(n) ?? .null, "warmup_steps": .int(s.warmupSteps)])
    case let s as PolynomialDecay:
        (cls, c) = ("PolynomialDecay", ["initial_learning_rate": n(s.initialLearningRate), "decay_steps": .int(s.decaySteps),
                                        "end_learning_rate": n(s.endLearningRate), "power": n(s.power), "cycle": .bool(s.cycle)])
    case let s as LinearWarmup:
        (cls, c) = ("LinearWarmup", ["warmup_steps": .int(s.warmupSteps), "after": savedSchedule(s.after)])
    default:
        // A schedule written outside the library: its type name, so that loading says which one is missing.
        (cls, c) = (String(describing: type(of: s)), [:])
    }
    return .object(["class_name": .string(cls), "config": .object(c)])
}

/// The schedule `savedSchedule` wrote.
func decodeSchedule(_ v: JSONValue, optimizer: String) throws -> any LearningRateSchedule {
    func fail(_ why: String) -> SavedObjectError { SavedObjectError("optimizer \(optimizer): learning_rate \(why)") }
    if let x = v.double {
        guard x.isFinite else { throw fail("must be finite, got \(x)") }
        return ConstantLearningRate(Float(x))
    }
    guard let saved = SavedObject(json: v) else { throw fail("must be a number or a schedule {class_name, config}, got \(v)") }
    let c = saved.config
    func f(_ k: String) throws -> Float {
        guard let x = c[k]?.double, x.isFinite else { throw fail("\(saved.className): '\(k)' must be a finite number") }
        return Float(x)
    }
    func i(_ k: String) throws -> Int {
        guard let x = c[k]?.double, x >= 0, x < 1e15, x == x.rounded() else { throw fail("\(saved.className): '\(k)' must be a non-negative integer") }
        return Int(x)
    }
    func positive(_ k: String) throws -> Int {
        let x = try i(k)
        guard x > 0 else { throw fail("\(saved.className): '\(k)' must be positive") }
        return x
    }
    switch saved.className {
    case "PiecewiseConstantDecay":
        guard case .array(let bs)? = c["boundaries"], case .array(let vs)? = c["values"], vs.count == bs.count + 1 else {
            throw fail("PiecewiseConstantDecay needs boundaries and one more value")
        }
        let boundaries = try bs.map { x -> Int in guard let d = x.double, abs(d) < 1e15 else { throw fail("boundaries must be integers") }; return Int(d) }
        let values = try vs.map { x -> Float in guard let d = x.double, d.isFinite else { throw fail("values must be finite numbers") }; return Float(d) }
        return PiecewiseConstantDecay(boundaries: boundaries, values: values)
    case "ExponentialDecay":
        return ExponentialDecay(initialLearningRate: try f("initial_learning_rate"), decaySteps: try positive("decay_steps"),
                                decayRate: try f("decay_rate"), staircase: c["staircase"]?.bool ?? false)
    case "CosineDecay":
        let target: Float? = (c["warmup_target"] ?? .null) == .null ? nil : try f("warmup_target")
        return CosineDecay(initialLearningRate: try f("initial_learning_rate"), decaySteps: try positive("decay_steps"), alpha: try f("alpha"),
                           warmupTarget: target, warmupSteps: try i("warmup_steps"))
    case "PolynomialDecay":
        return PolynomialDecay(initialLearningRate: try f("initial_learning_rate"), decaySteps: try positive("decay_steps"),
                               endLearningRate: try f("end_learning_rate"), power: try f("power"), cycle: c["cycle"]?.bool ?? false)
    case "LinearWarmup":
        guard let after = c["after"] else { throw fail("LinearWarmup needs 'after'") }
        return LinearWarmup(warmupSteps: try i("warmup_steps"), then: try decodeSchedule(after, optimizer: optimizer))
    default:
        throw fail("is the schedule '\(saved.className)', which Ocelli does not know: compile the loaded model again with it")
    }
}
