import OcelliTensor

/// Activation functions by their Keras names.
public enum Activation: Equatable, Sendable {
    case linear, relu, sigmoid, tanh, softmax, elu, selu, softplus
    /// Keras 3's `leaky_relu` activation defaults to a slope of 0.2 (the LeakyReLU layer to 0.3).
    case leakyRelu(negativeSlope: Float = 0.2)

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
        }
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
        default: return nil
        }
    }
}
