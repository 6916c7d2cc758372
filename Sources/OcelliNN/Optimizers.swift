import Foundation
import OcelliTensor

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
    /// The parameter's name in its layer ("kernel", "bias", "gamma", …): an optimizer that
    /// treats kernels differently (Darknet's decay) reads it.
    public let parameterName: String

    public init(count: Int, weights: UnsafeMutablePointer<Float>, gradient: UnsafePointer<Float>,
                slots: [UnsafeMutablePointer<Float>], learningRate: Float, step: Int, parameterName: String = "") {
        self.count = count; self.weights = weights; self.gradient = gradient; self.slots = slots
        self.learningRate = learningRate; self.step = step; self.parameterName = parameterName
    }
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
                                                        slots: slots, learningRate: lr, step: t, parameterName: p.name))
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

    /// Applies the shared options (the learning rate or schedule, weight decay, clipping) and the
    /// step count of a saved configuration: an optimizer registered with `OptimizerRegistry`
    /// calls it after building itself from its own hyper-parameters.
    public func restoreShared(_ saved: SavedObject) throws {
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
    case let s as any SavableLearningRateSchedule:
        return s.savedConfig.json
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
        if let registered = try ScheduleRegistry.make(saved) { return registered }
        throw fail("is the schedule '\(saved.className)', which Ocelli does not know: register it with ScheduleRegistry.register before loading, or compile the loaded model again with it")
    }
}
