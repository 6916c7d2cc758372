import Foundation
import OcelliTensor

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
