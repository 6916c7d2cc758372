import OcelliTensor

/// Rebuilds the layers of the "Deep Concepts" chapter from architecture JSON (nil for other
/// class names). Called by `LayerRegistry.make`.
func conceptLayer(_ cls: String, config c: [String: JSONValue], path: String, index: Int) throws -> Layer? {
    func fail(_ message: String) -> FileFormatError { FileFormatError(path, "layer \(index) (\(cls)): \(message)") }
    func int(_ k: String, _ d: Int? = nil) throws -> Int {
        if let v = c[k]?.int { return v }
        if let d { return d }
        throw fail("missing integer '\(k)'")
    }
    func float(_ k: String, _ d: Float? = nil) throws -> Float {
        if let v = c[k]?.double { return Float(v) }
        if let d { return d }
        throw fail("missing number '\(k)'")
    }
    func bool(_ k: String, _ d: Bool) -> Bool { c[k]?.bool ?? d }
    func pair(_ k: String, _ d: (Int, Int)) throws -> (Int, Int) {
        guard let v = c[k], v != .null else { return d }
        if let a = v.intArray, a.count == 2 { return (a[0], a[1]) }
        if let i = v.int { return (i, i) }
        throw fail("'\(k)' must be an integer or a pair")
    }
    func pairs(_ k: String) throws -> ((Int, Int), (Int, Int)) {
        guard case .array(let a)? = c[k], a.count == 2, let p0 = a[0].intArray, let p1 = a[1].intArray, p0.count == 2, p1.count == 2 else {
            throw fail("'\(k)' must be [[top, bottom], [left, right]]")
        }
        return ((p0[0], p0[1]), (p1[0], p1[1]))
    }
    func act() throws -> Activation {
        let name = c["activation"]?.string ?? "linear"
        guard let a = Activation(kerasName: name) else { throw fail("unknown activation '\(name)'") }
        return a
    }
    func initializer(_ k: String, _ d: Initializer) throws -> Initializer {
        guard let v = c[k], v != .null else { return d }
        guard let i = Initializer(keras: v) else { throw fail("unknown initializer \(v)") }
        return i
    }
    func padding() throws -> Padding {
        do { return try paddingFrom(c["padding"], layer: "layer \(index) (\(cls))") } catch { throw FileFormatError(path, "\(error)") }
    }
    func regularizer(_ k: String) -> Regularizer? { c[k].flatMap { Regularizer(keras: $0) } }

    switch cls {
    // Activations
    case "PReLU":
        return PReLU(alphaInitializer: try initializer("alpha_initializer", .zeros), alphaRegularizer: regularizer("alpha_regularizer"),
                     sharedAxes: c["shared_axes"]?.intArray ?? [])
    case "ELU": return ELU(alpha: try float("alpha", 1))
    case "ReLU": return ReLU(maxValue: c["max_value"]?.double.map(Float.init))
    case "Softmax": return Softmax(log: bool("log", false))
    // Convolutions
    case "DepthwiseConv2D":
        return DepthwiseConv2D(kernelSize: try pair("kernel_size", (3, 3)), strides: try pair("strides", (1, 1)), padding: try padding(),
                               depthMultiplier: try int("depth_multiplier", 1), dilationRate: try pair("dilation_rate", (1, 1)),
                               activation: try act(), useBias: bool("use_bias", true),
                               depthwiseInitializer: try initializer("depthwise_initializer", .glorotUniform),
                               biasInitializer: try initializer("bias_initializer", .zeros),
                               depthwiseRegularizer: regularizer("depthwise_regularizer"))
    case "SeparableConv2D":
        return SeparableConv2D(filters: try int("filters"), kernelSize: try pair("kernel_size", (3, 3)), strides: try pair("strides", (1, 1)),
                               padding: try padding(), depthMultiplier: try int("depth_multiplier", 1),
                               dilationRate: try pair("dilation_rate", (1, 1)), activation: try act(), useBias: bool("use_bias", true),
                               depthwiseInitializer: try initializer("depthwise_initializer", .glorotUniform),
                               pointwiseInitializer: try initializer("pointwise_initializer", .glorotUniform))
    case "ChannelShuffle": return ChannelShuffle(groups: try int("groups"))
    case "Conv2DTranspose":
        let op: (Int, Int)? = c["output_padding"].flatMap { $0 == .null ? nil : $0.intArray }.flatMap { $0.count == 2 ? ($0[0], $0[1]) : nil }
        return Conv2DTranspose(filters: try int("filters"), kernelSize: try pair("kernel_size", (3, 3)), strides: try pair("strides", (1, 1)),
                               padding: try padding(), outputPadding: op, dilationRate: try pair("dilation_rate", (1, 1)),
                               activation: try act(), useBias: bool("use_bias", true),
                               kernelInitializer: try initializer("kernel_initializer", .glorotUniform),
                               biasInitializer: try initializer("bias_initializer", .zeros))
    case "ZeroPadding2D": return ZeroPadding2D(padding: try pairs("padding"))
    case "Cropping2D": return Cropping2D(cropping: try pairs("cropping"))
    // Pooling
    case "LpPooling2D":
        return LpPooling2D(power: try float("power"), poolSize: try pair("pool_size", (2, 2)), strides: try pair("strides", try pair("pool_size", (2, 2))))
    case "GlobalMaxPooling2D": return GlobalMaxPooling2D()
    case "SpatialPyramidPooling": return SpatialPyramidPooling(levels: c["levels"]?.intArray ?? [1, 2, 4])
    // Regularization
    case "SpatialDropout2D": return SpatialDropout2D(rate: try float("rate"))
    case "GaussianNoise": return GaussianNoise(stddev: try float("stddev"))
    case "GaussianDropout": return GaussianDropout(rate: try float("rate"))
    case "AlphaDropout": return AlphaDropout(rate: try float("rate"))
    case "ActivityRegularization": return ActivityRegularization(l1: try float("l1", 0), l2: try float("l2", 0))
    // Normalization
    case "LayerNormalization":
        return LayerNormalization(epsilon: try float("epsilon", 1e-3), center: bool("center", true), scale: bool("scale", true))
    case "GroupNormalization":
        return GroupNormalization(groups: try int("groups", 32), epsilon: try float("epsilon", 1e-3), center: bool("center", true), scale: bool("scale", true))
    case "InstanceNormalization":
        return InstanceNormalization(epsilon: try float("epsilon", 1e-3), center: bool("center", true), scale: bool("scale", true))
    case "WeightNormalization":
        guard case .object(let inner)? = c["layer"], let innerClass = inner["class_name"]?.string,
              case .object(let innerConfig)? = inner["config"] else { throw fail("missing the wrapped 'layer'") }
        let wrapped = try LayerRegistry.make(innerClass, config: innerConfig, path: path, index: index)
        wrapped.name = innerConfig["name"]?.string ?? ""
        guard wrapped is Dense || wrapped is Conv2D else { throw fail("wraps \(innerClass); only Dense and Conv2D can be weight-normalized") }
        return WeightNormalization(wrapped)
    case "Multiply": return Multiply()
    case "MarginSoftmax":
        guard let margin = AngularMargin(json: c["margin"]) else { throw fail("missing or unknown 'margin'") }
        return MarginSoftmax(classes: try int("classes"), margin: margin)
    default:
        return nil
    }
}
