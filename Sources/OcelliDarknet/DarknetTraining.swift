import Foundation
import OcelliNN
import OcelliTensor

/// Darknet's learning-rate policy (`get_current_rate` in network.c), as a schedule over the
/// optimizer's steps: update k (counted from 0) is Darknet's batch `firstBatch + k + 1`, the
/// images seen including that batch divided by the batch size.
public struct DarknetLearningRate: LearningRateSchedule, Equatable, Sendable {
    public enum Policy: Equatable, Sendable {
        case constant
        /// rate · scale^(batch / step)
        case step(step: Int, scale: Float)
        /// rate times each scale whose step the batch has reached
        case steps(steps: [Int], scales: [Float])
        /// rate · gamma^batch
        case exp(gamma: Float)
        /// rate · (1 − batch / maxBatches)^power
        case poly
        /// rate / (1 + e^(gamma·(batch − step)))
        case sig(gamma: Float, step: Int)
    }

    public var learningRate: Float
    public var policy: Policy
    /// Batches of warm-up: rate · (batch / burnIn)^power below it.
    public var burnIn: Int
    public var power: Float
    public var maxBatches: Int
    /// Batches trained before the first step of this optimizer (a resumed run: seen / batch).
    public var firstBatch: Int

    public init(learningRate: Float, policy: Policy = .constant, burnIn: Int = 0, power: Float = 4, maxBatches: Int = 0,
                firstBatch: Int = 0) {
        self.learningRate = learningRate; self.policy = policy; self.burnIn = burnIn; self.power = power
        self.maxBatches = maxBatches; self.firstBatch = firstBatch
    }

    /// Darknet's rate at batch number `batch` (images seen / batch size).
    public func rate(atBatch batch: Int) -> Float {
        if batch < burnIn { return learningRate * Float(Foundation.pow(Double(batch) / Double(burnIn), Double(power))) }
        switch policy {
        case .constant: return learningRate
        case .step(let step, let scale): return learningRate * Float(Foundation.pow(Double(scale), Double(batch / Swift.max(1, step))))
        case .steps(let steps, let scales):
            var r = learningRate
            for (s, k) in zip(steps, scales) {
                if s > batch { return r }
                r *= k
            }
            return r
        case .exp(let gamma): return learningRate * Float(Foundation.pow(Double(gamma), Double(batch)))
        case .poly:
            guard maxBatches > 0 else { return learningRate }
            return learningRate * Float(Foundation.pow(Swift.max(0, 1 - Double(batch) / Double(maxBatches)), Double(power)))
        case .sig(let gamma, let step): return learningRate * Float(1 / (1 + Foundation.exp(Double(gamma) * Double(batch - step))))
        }
    }

    public func callAsFunction(_ step: Int) -> Float { rate(atBatch: firstBatch + step + 1) }
}

extension DarknetLearningRate: SavableLearningRateSchedule {
    /// The policy and its numbers as `Model.save` writes them.
    public var savedConfig: SavedObject {
        func n(_ x: Float) -> JSONValue { .number(Double(x)) }
        var c: [String: JSONValue] = ["learning_rate": n(learningRate), "burn_in": .int(burnIn), "power": n(power),
                                      "max_batches": .int(maxBatches), "first_batch": .int(firstBatch)]
        switch policy {
        case .constant: c["policy"] = .string("constant")
        case .step(let step, let scale): c["policy"] = .string("step"); c["step"] = .int(step); c["scale"] = n(scale)
        case .steps(let steps, let scales): c["policy"] = .string("steps"); c["steps"] = .ints(steps); c["scales"] = .array(scales.map(n))
        case .exp(let gamma): c["policy"] = .string("exp"); c["gamma"] = n(gamma)
        case .poly: c["policy"] = .string("poly")
        case .sig(let gamma, let step): c["policy"] = .string("sig"); c["gamma"] = n(gamma); c["step"] = .int(step)
        }
        return SavedObject(className: "DarknetLearningRate", config: c)
    }

    /// The schedule `savedConfig` wrote, every value checked.
    public init(saved: SavedObject) throws {
        let c = saved.config
        func fail(_ why: String) -> SavedObjectError { SavedObjectError("DarknetLearningRate: \(why)") }
        func number(_ k: String) throws -> Float {
            guard let x = c[k]?.double, x.isFinite else { throw fail("'\(k)' must be a finite number, got \(c[k].map { "\($0)" } ?? "nothing")") }
            return Float(x)
        }
        func count(_ k: String) throws -> Int {
            guard let x = c[k]?.int, x >= 0 else { throw fail("'\(k)' must be a non-negative integer, got \(c[k].map { "\($0)" } ?? "nothing")") }
            return x
        }
        let policy: Policy
        switch c["policy"]?.string {
        case "constant": policy = .constant
        case "step": policy = .step(step: try count("step"), scale: try number("scale"))
        case "steps":
            guard case .array(let st)? = c["steps"], case .array(let sc)? = c["scales"], st.count == sc.count else {
                throw fail("'steps' and 'scales' must be lists of one length")
            }
            let steps = try st.map { v -> Int in guard let x = v.int, x >= 0 else { throw fail("'steps' must be non-negative integers") }; return x }
            let scales = try sc.map { v -> Float in guard let x = v.double, x.isFinite else { throw fail("'scales' must be finite numbers") }; return Float(x) }
            policy = .steps(steps: steps, scales: scales)
        case "exp": policy = .exp(gamma: try number("gamma"))
        case "poly": policy = .poly
        case "sig": policy = .sig(gamma: try number("gamma"), step: try count("step"))
        default: throw fail("unknown policy \(c["policy"].map { "\($0)" } ?? "nothing") (constant, step, steps, exp, poly or sig)")
        }
        self.init(learningRate: try number("learning_rate"), policy: policy, burnIn: try count("burn_in"), power: try number("power"),
                  maxBatches: try count("max_batches"), firstBatch: try count("first_batch"))
    }
}

/// Darknet's SGD (`update_convolutional_layer`): momentum on the gradient plus the decay of the
/// kernels (not of biases or batch-norm scales), then a step against it:
///
///     v = momentum·v + g + decay·w   (decay for "kernel" parameters only)
///     w −= rate·v
///
/// which is Darknet's update with its sums over the batch divided by the batch (`g` is the mean
/// gradient: a loss averaged over the batch, as `YoloLoss`'s default). PyTorch's SGD with
/// momentum and weight decay is the same rule; Keras' SGD is not once the rate changes (burn-in).
public final class DarknetSGD: Optimizer {
    public let state: OptimizerState
    public let momentum: Float
    public let decay: Float
    public var name: String { "DarknetSGD" }

    public init(learningRate: Float = 0.001, momentum: Float = 0.9, decay: Float = 0.0001) {
        state = OptimizerState(learningRate: learningRate)
        self.momentum = momentum; self.decay = decay
    }

    public var slotInitialValues: [Float] { [0] }
    public var config: [String: JSONValue] { ["momentum": .number(Double(momentum)), "decay": .number(Double(decay))] }

    /// The optimizer `savedConfig` wrote (`Model.load` through `OptimizerRegistry`, once
    /// `DarknetLayers.register()` has run).
    public convenience init(saved: SavedObject) throws {
        func number(_ k: String) throws -> Float {
            guard let x = saved.config[k]?.double, x.isFinite, x >= 0 else {
                throw SavedObjectError("DarknetSGD: '\(k)' must be a finite number ≥ 0, got \(saved.config[k].map { "\($0)" } ?? "nothing")")
            }
            return Float(x)
        }
        self.init(momentum: try number("momentum"), decay: try number("decay"))
        try restoreShared(saved)
    }

    public func applySingle(_ u: ParameterUpdate) {
        let n = u.count, w = u.weights, g = u.gradient, v = u.slots[0], lr = u.learningRate, m = momentum
        let d = u.parameterName == "kernel" ? decay : 0
        for i in 0..<n {
            v[i] = m * v[i] + g[i] + d * w[i]
            w[i] -= lr * v[i]
        }
    }
}

/// What a cfg's `[net]` says about training, checked: batch and subdivisions, the optimizer's
/// options and the learning-rate policy, `max_batches`, and the data options (augmentation,
/// multi-scale) the trainer passes to the loader.
public struct DarknetTrainingOptions: Equatable, Sendable {
    /// Images per update (`batch=`), split into `subdivisions` forward/backward passes.
    public var batch: Int
    public var subdivisions: Int
    public var momentum: Float
    public var decay: Float
    public var learningRate: DarknetLearningRate
    public var maxBatches: Int
    /// `random=1` in a `[yolo]`/`[region]` section: a new input size every 10 batches.
    public var multiScale: Bool
    public var jitter: Float
    public var hue: Float, saturation: Float, exposure: Float
    public var angle: Float
    /// Horizontal flips (`flip=`, default on).
    public var flip: Bool

    /// Images per forward pass: batch / subdivisions.
    public var miniBatch: Int { batch / subdivisions }
}

extension DarknetNetwork {
    /// The training options of the cfg's `[net]` (Darknet's defaults where a key is missing).
    public func trainingOptions() throws -> DarknetTrainingOptions {
        let net = config.net, file = config.file
        func err(_ message: String) -> DarknetError { DarknetError(file: file, line: net.line, "[net]: \(message)") }
        func positive(_ key: String, _ d: Int, upTo limit: Int = 100_000_000) throws -> Int {
            let v = try net.int(key, d)
            guard v >= 1, v <= limit else { throw err("\(key)=\(v) must be between 1 and \(limit)") }
            return v
        }
        func number(_ key: String, _ d: Float, _ range: ClosedRange<Float>) throws -> Float {
            let v = try net.float(key, d)
            guard v.isFinite, range.contains(v) else { throw err("\(key)=\(v) must be between \(range.lowerBound) and \(range.upperBound)") }
            return v
        }
        let batch = try positive("batch", 1, upTo: 65_536), subdivisions = try positive("subdivisions", 1, upTo: 65_536)
        guard batch % subdivisions == 0 else {
            throw err("batch=\(batch) is not a multiple of subdivisions=\(subdivisions) (each pass takes batch/subdivisions images)")
        }
        let rate = try number("learning_rate", 0.001, 0...10)
        let power = try number("power", 4, 0...100)
        let burnIn = try net.int("burn_in", 0)
        guard (0...100_000_000).contains(burnIn) else { throw err("burn_in=\(burnIn) must be between 0 and 100000000") }
        let maxBatches = try net.int("max_batches", 0)
        guard (0...100_000_000).contains(maxBatches) else { throw err("max_batches=\(maxBatches) must be between 0 and 100000000") }
        let policy: DarknetLearningRate.Policy
        switch net.string("policy", "constant") {
        case "constant": policy = .constant
        case "step": policy = .step(step: try positive("step", 1), scale: try number("scale", 1, 0...1000))
        case "steps":
            let steps = try net.ints("steps") ?? [], scales = try net.floats("scales") ?? []
            guard !steps.isEmpty, steps.count == scales.count else {
                throw err("policy=steps needs steps= and scales= of the same length, got \(steps.count) and \(scales.count)")
            }
            for s in scales where !(s.isFinite && s >= 0) { throw err("scales has \(s); scales must be numbers ≥ 0") }
            for s in steps where !(0...100_000_000).contains(s) { throw err("steps has \(s); steps must be between 0 and 100000000") }
            policy = .steps(steps: steps, scales: scales)
        case "exp": policy = .exp(gamma: try number("gamma", 1, 0...1000))
        case "poly": policy = .poly
        case "sig": policy = .sig(gamma: try number("gamma", 1, -1000...1000), step: try positive("step", 1))
        case let other: throw err("policy=\(other) is not one of constant, step, steps, exp, poly, sig")
        }
        var multiScale = false, jitter: Float = 0.2
        for h in heads {
            let section = config.layers[h.layerIndex]
            if try section.int("random", 0) != 0 { multiScale = true }
            jitter = try section.float("jitter", 0.2)
            guard jitter.isFinite, jitter >= 0, jitter < 0.5 else {
                throw DarknetError(file: file, line: section.line, "[\(section.type)]: jitter=\(jitter) must be at least 0 and below 0.5")
            }
        }
        return DarknetTrainingOptions(
            batch: batch, subdivisions: subdivisions, momentum: try number("momentum", 0.9, 0...1),
            decay: try number("decay", 0.0001, 0...1),
            learningRate: DarknetLearningRate(learningRate: rate, policy: policy, burnIn: burnIn, power: power, maxBatches: maxBatches,
                                              firstBatch: Int(clamping: seen / UInt64(batch))),
            maxBatches: maxBatches, multiScale: multiScale, jitter: jitter,
            hue: try number("hue", 0, 0...1), saturation: try number("saturation", 1, 0...100),
            exposure: try number("exposure", 1, 0...100), angle: try number("angle", 0, 0...360),
            flip: try net.int("flip", 1) != 0)
    }

    /// Darknet's optimizer for this cfg: `DarknetSGD` with `[net]`'s momentum and decay, and its
    /// learning-rate policy from the images seen so far.
    public func darknetOptimizer() throws -> DarknetSGD {
        let o = try trainingOptions()
        return DarknetSGD(momentum: o.momentum, decay: o.decay).withSchedule(o.learningRate)
    }
}
