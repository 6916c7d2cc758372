import OcelliTensor

/// Activation functions by their Keras names.
public enum Activation: Equatable, Sendable {
    case linear, relu, sigmoid, tanh, softmax, elu, selu, softplus
    /// Keras 3's `leaky_relu` activation defaults to a slope of 0.2 (the LeakyReLU layer to 0.3).
    case leakyRelu(negativeSlope: Float = 0.2)
    /// ReLU capped at 6 (MobileNet), x·σ(x) (Swish/SiLU), x·tanh(softplus x) (Mish), Keras 3's
    /// hard sigmoid relu6(x + 3)/6, hard swish, and log-softmax over the last axis.
    case relu6, swish, mish, hardSigmoid, hardSwish, logSoftmax
    /// x·Φ(x), exact (erf) or with the tanh approximation (Keras' `approximate=True`).
    case gelu(approximate: Bool = false)

    public func callAsFunction(_ x: Tensor) -> Tensor {
        switch self {
        case .linear: return x
        case .relu: return x.relu()
        case .sigmoid: return x.sigmoid()
        case .tanh: return x.tanh()
        case .softmax: return x.softmax()
        case .elu: return x.elu()
        case .selu: return x.selu()
        case .softplus: return x.softplus()
        case .leakyRelu(let a): return x.leakyRelu(negativeSlope: a)
        case .relu6: return x.relu6()
        case .swish: return x.swish()
        case .mish: return x.mish()
        case .hardSigmoid: return x.hardSigmoid()
        case .hardSwish: return x.hardSwish()
        case .logSoftmax: return x.logSoftmax()
        case .gelu(let approximate): return x.gelu(approximate: approximate)
        }
    }

    public var kerasName: String {
        switch self {
        case .linear: return "linear"
        case .relu: return "relu"
        case .sigmoid: return "sigmoid"
        case .tanh: return "tanh"
        case .softmax: return "softmax"
        case .elu: return "elu"
        case .selu: return "selu"
        case .softplus: return "softplus"
        case .leakyRelu: return "leaky_relu"
        case .relu6: return "relu6"
        case .swish: return "silu"
        case .mish: return "mish"
        case .hardSigmoid: return "hard_sigmoid"
        case .hardSwish: return "hard_silu"
        case .logSoftmax: return "log_softmax"
        // Keras passes `approximate` as an argument, not in the name; Ocelli's JSON keeps it in the name.
        case .gelu(let approximate): return approximate ? "gelu_approximate" : "gelu"
        }
    }

    /// The activation in architecture JSON: its Keras name, or for a leaky ReLU whose slope is not
    /// Keras' 0.2, {"class_name": "leaky_relu", "negative_slope": s} (read by `LayerConfig.activation`).
    var json: JSONValue {
        if case .leakyRelu(let s) = self, s != 0.2 {
            return .object(["class_name": .string("leaky_relu"), "negative_slope": .number(Double(s))])
        }
        return .string(kerasName)
    }

    public init?(kerasName: String) {
        switch kerasName {
        case "linear", "None": self = .linear
        case "relu": self = .relu
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        case "elu": self = .elu
        case "selu": self = .selu
        case "softplus": self = .softplus
        case "leaky_relu": self = .leakyRelu()
        case "relu6": self = .relu6
        case "silu", "swish": self = .swish
        case "mish": self = .mish
        case "hard_sigmoid": self = .hardSigmoid
        case "hard_silu", "hard_swish": self = .hardSwish
        case "log_softmax": self = .logSoftmax
        case "gelu": self = .gelu()
        case "gelu_approximate": self = .gelu(approximate: true)
        default: return nil
        }
    }
}
