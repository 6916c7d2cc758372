import OcelliTensor

/// Element-wise product of inputs whose shapes broadcast together (e.g. [H, W, C] × [1, 1, C]
/// for squeeze-and-excitation's channel weights).
public final class Multiply: Layer, ConfigurableLayer {
    /// Rebuilds the layer (it has no configuration).
    public convenience init(config: LayerConfig) throws { self.init() }
    public override var inputArity: ClosedRange<Int> { 2...64 }
    public override func computeOutputShape(_ s: [[Int]]) throws -> [Int] {
        var out = s[0]
        for t in s.dropFirst() {
            guard t.count == out.count else { throw LayerError("\(name) (Multiply): inputs of different ranks: \(s)") }
            for i in 0..<t.count {
                guard t[i] == out[i] || t[i] == 1 || out[i] == 1 else {
                    throw LayerError("\(name) (Multiply): shapes \(s) do not broadcast (axis \(i + 1): \(out[i]) vs \(t[i]))")
                }
                out[i] = Swift.max(out[i], t[i])
            }
        }
        return out
    }
    public override func forward(_ inputs: [Tensor], context: inout ForwardContext) -> Tensor {
        inputs.dropFirst().reduce(inputs[0], *)
    }
}

/// The building blocks of the chapter's architectures, on symbolic tensors (functional API):
/// each takes a tensor and returns the block's output, adding its layers to the graph.
public enum Blocks {
    /// PyTorch's padding p on every side (torchvision's layouts).
    static func pad(_ p: Int) -> Padding { .explicit(top: p, bottom: p, left: p, right: p) }

    /// Convolution, batch normalization (PyTorch's momentum 0.1 and ε = 1e-5), optional ReLU.
    public static func convBN(_ x: SymbolicTensor, filters: Int, kernelSize: Int, strides: Int = 1, padding: Padding? = nil,
                              useBias: Bool = false, relu: Bool = true, epsilon: Float = 1e-5) -> SymbolicTensor {
        var y = Conv2D(filters: filters, kernelSize: kernelSize, strides: strides, padding: padding ?? pad(kernelSize / 2),
                       useBias: useBias, kernelInitializer: .heNormal)(x)
        y = BatchNormalization(momentum: 0.9, epsilon: epsilon)(y)
        return relu ? ActivationLayer(.relu)(y) : y
    }

    /// The shortcut of a residual block: the identity, or a 1x1 projection (stride s) with batch
    /// normalization when the shape changes (He et al.'s option B).
    static func shortcut(_ x: SymbolicTensor, filters: Int, strides: Int, useBias: Bool, epsilon: Float) -> SymbolicTensor {
        guard strides != 1 || x.shape[2] != filters else { return x }
        return convBN(x, filters: filters, kernelSize: 1, strides: strides, padding: .valid, useBias: useBias, relu: false, epsilon: epsilon)
    }

    /// ResNet's basic block (ResNet-18/34): 3x3 conv (stride) – BN – ReLU – 3x3 conv – BN, plus the
    /// shortcut, then ReLU.
    public static func residualBasic(_ x: SymbolicTensor, filters: Int, strides: Int = 1, useBias: Bool = false,
                                     epsilon: Float = 1e-5) -> SymbolicTensor {
        var y = convBN(x, filters: filters, kernelSize: 3, strides: strides, useBias: useBias, epsilon: epsilon)
        y = convBN(y, filters: filters, kernelSize: 3, useBias: useBias, relu: false, epsilon: epsilon)
        return ActivationLayer(.relu)(Add()([y, shortcut(x, filters: filters, strides: strides, useBias: useBias, epsilon: epsilon)]))
    }

    /// ResNet's bottleneck block (ResNet-50/101/152): 1x1 conv to `filters`, 3x3 conv (stride, as
    /// torchvision's "v1.5"), 1x1 conv to `expansion`·filters, each with BN; the shortcut; ReLU.
    public static func residualBottleneck(_ x: SymbolicTensor, filters: Int, strides: Int = 1, expansion: Int = 4,
                                          useBias: Bool = false, epsilon: Float = 1e-5) -> SymbolicTensor {
        var y = convBN(x, filters: filters, kernelSize: 1, padding: .valid, useBias: useBias, epsilon: epsilon)
        y = convBN(y, filters: filters, kernelSize: 3, strides: strides, useBias: useBias, epsilon: epsilon)
        y = convBN(y, filters: filters * expansion, kernelSize: 1, padding: .valid, useBias: useBias, relu: false, epsilon: epsilon)
        let s = shortcut(x, filters: filters * expansion, strides: strides, useBias: useBias, epsilon: epsilon)
        return ActivationLayer(.relu)(Add()([y, s]))
    }

    /// Wide ResNet's pre-activation block (Zagoruyko & Komodakis): BN – ReLU – 3x3 conv (stride) –
    /// [dropout] – BN – ReLU – 3x3 conv, plus the identity or a 1x1 projection of the activated input.
    public static func wideBasic(_ x: SymbolicTensor, filters: Int, strides: Int = 1, dropout: Float = 0) -> SymbolicTensor {
        let activated = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(x))
        let equal = strides == 1 && x.shape[2] == filters
        var y = Conv2D(filters: filters, kernelSize: 3, strides: strides, padding: pad(1), useBias: false, kernelInitializer: .heNormal)(activated)
        y = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(y))
        if dropout > 0 { y = Dropout(dropout)(y) }
        y = Conv2D(filters: filters, kernelSize: 3, padding: pad(1), useBias: false, kernelInitializer: .heNormal)(y)
        let s = equal ? x : Conv2D(filters: filters, kernelSize: 1, strides: strides, useBias: false, kernelInitializer: .heNormal)(activated)
        return Add()([y, s])
    }

    /// Squeeze-and-excitation (Hu et al.): global average pooling, Dense(C/ratio, ReLU),
    /// Dense(C, sigmoid), and the input's channels scaled by the result.
    public static func squeezeExcitation(_ x: SymbolicTensor, ratio: Int = 16) -> SymbolicTensor {
        let c = x.shape[2]
        var s = GlobalAveragePooling2D()(x)
        s = Dense(units: Swift.max(1, c / ratio), activation: .relu)(s)
        s = Dense(units: c, activation: .sigmoid)(s)
        return Multiply()([x, Reshape([1, 1, c])(s)])
    }

    /// One layer of a DenseNet dense block (Huang et al., "DenseNet-B"): BN – ReLU – 1x1 conv to
    /// bottleneckWidth·growthRate – BN – ReLU – 3x3 conv to growthRate, concatenated to its input.
    public static func denseLayer(_ x: SymbolicTensor, growthRate: Int, bottleneckWidth: Int = 4) -> SymbolicTensor {
        var y = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(x))
        y = Conv2D(filters: bottleneckWidth * growthRate, kernelSize: 1, useBias: false, kernelInitializer: .heNormal)(y)
        y = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(y))
        y = Conv2D(filters: growthRate, kernelSize: 3, padding: pad(1), useBias: false, kernelInitializer: .heNormal)(y)
        return Concatenate()([x, y])
    }

    /// A dense block: `layers` dense layers, each seeing every earlier feature map; the channels
    /// grow by growthRate per layer.
    public static func denseBlock(_ x: SymbolicTensor, layers: Int, growthRate: Int = 32, bottleneckWidth: Int = 4) -> SymbolicTensor {
        var y = x
        for _ in 0..<layers { y = denseLayer(y, growthRate: growthRate, bottleneckWidth: bottleneckWidth) }
        return y
    }

    /// DenseNet's transition: BN – ReLU – 1x1 conv to ⌊compression·C⌋ channels – 2x2 average pooling.
    public static func transition(_ x: SymbolicTensor, compression: Float = 0.5) -> SymbolicTensor {
        var y = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(x))
        y = Conv2D(filters: Int(Float(x.shape[2]) * compression), kernelSize: 1, useBias: false, kernelInitializer: .heNormal)(y)
        return AveragePooling2D(2)(y)
    }

    /// MobileNet v1's depthwise-separable block in Keras' layout: 3x3 depthwise conv (stride 2:
    /// zero padding bottom/right, then valid) – BN – ReLU6 – 1x1 conv – BN – ReLU6, no biases.
    public static func depthwiseSeparable(_ x: SymbolicTensor, filters: Int, strides: Int = 1, depthMultiplier: Int = 1) -> SymbolicTensor {
        var y = x
        if strides != 1 { y = ZeroPadding2D(padding: ((0, 1), (0, 1)))(y) }
        y = DepthwiseConv2D(kernelSize: 3, strides: strides, padding: strides == 1 ? .same : .valid,
                            depthMultiplier: depthMultiplier, useBias: false)(y)
        y = ReLU(maxValue: 6)(BatchNormalization()(y))
        y = Conv2D(filters: filters, kernelSize: 1, padding: .same, useBias: false)(y)
        return ReLU(maxValue: 6)(BatchNormalization()(y))
    }

    /// Darknet's convolutional layer with batch_normalize=1: convolution without bias, batch
    /// normalization, leaky ReLU (slope 0.1).
    public static func darknetConv(_ x: SymbolicTensor, filters: Int, kernelSize: Int) -> SymbolicTensor {
        var y = Conv2D(filters: filters, kernelSize: kernelSize, padding: .same, useBias: false)(x)
        y = BatchNormalization(momentum: 0.99, epsilon: 1e-5)(y)
        return LeakyReLU(negativeSlope: 0.1)(y)
    }
}
