import OcelliTensor

/// Builders for the chapter's classification networks. Each returns a functional `Model` whose
/// parameter count equals its reference implementation's (stated per builder).
///
/// Ocelli counts batch normalization's moving mean and variance as parameters (as Keras'
/// `summary()` does); PyTorch keeps them as buffers, so torchvision's `parameters()` count is
/// Ocelli's `trainableParameterCount`.
public enum Architectures {
    /// The names `ocelli summary` accepts.
    public static let names = ["resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "wrn-28-10", "wrn-16-8",
                               "densenet121", "densenet169", "mobilenet", "mobilenet-0.5", "darknet19", "tiny-darknet"]

    /// The architecture called `name` (one of `names`; "wrn-D-K" and "mobilenet-α" take any numbers).
    public static func named(_ name: String, classes: Int? = nil, inputShape: [Int]? = nil) throws -> Model {
        let n = name.lowercased()
        // Sizes from a user are checked here: the builders below stop (a precondition) on shapes
        // their downsampling cannot take.
        if let classes, !(1...1_000_000).contains(classes) {
            throw LayerError("architecture '\(name)': classes must be between 1 and 1000000, got \(classes)")
        }
        if let inputShape {
            let minimum = n.hasPrefix("darknet19") ? 32 : n.hasPrefix("mobilenet") ? 31 : n.hasPrefix("densenet") ? 29
                : n.hasPrefix("tiny") ? 16 : 1
            guard inputShape.count == 3, inputShape.allSatisfy({ (1...LayerConfig.sizeLimit).contains($0) }) else {
                throw LayerError("architecture '\(name)': the input shape \(inputShape) needs 3 sizes from 1 to \(LayerConfig.sizeLimit)")
            }
            guard inputShape[0] >= minimum, inputShape[1] >= minimum else {
                throw LayerError("architecture '\(name)' needs an input of at least \(minimum) x \(minimum) (its downsampling), got \(inputShape[0]) x \(inputShape[1])")
            }
        }
        if n.hasPrefix("resnet"), let depth = Int(n.dropFirst(6)) {
            return try resnet(depth: depth, classes: classes ?? 1000, inputShape: inputShape ?? [224, 224, 3])
        }
        if n.hasPrefix("densenet"), let depth = Int(n.dropFirst(8)) {
            return try denseNet(depth: depth, classes: classes ?? 1000, inputShape: inputShape ?? [224, 224, 3])
        }
        if n.hasPrefix("wrn-") {
            let parts = n.split(separator: "-")
            guard parts.count == 3, let d = Int(parts[1]), let k = Int(parts[2]), (1...1_000).contains(d), (1...64).contains(k) else {
                throw LayerError("architecture '\(name)': write a wide ResNet as wrn-DEPTH-WIDTH (depth up to 1000, width up to 64), e.g. wrn-28-10")
            }
            return try wideResNet(depth: d, width: k, classes: classes ?? 10, inputShape: inputShape ?? [32, 32, 3])
        }
        if n == "mobilenet" || n.hasPrefix("mobilenet-") {
            let alpha = n == "mobilenet" ? 1 : Float(n.dropFirst(10))
            guard let alpha, alpha > 0, alpha <= 4 else { throw LayerError("architecture '\(name)': write mobilenet-ALPHA with 0 < ALPHA ≤ 4, e.g. mobilenet-0.5") }
            return mobileNet(alpha: alpha, classes: classes ?? 1000, inputShape: inputShape ?? [224, 224, 3])
        }
        if n == "darknet19" { return darknet19(classes: classes ?? 1000, inputShape: inputShape ?? [256, 256, 3]) }
        if n == "tiny-darknet" || n == "tiny" { return tinyDarknet(classes: classes ?? 1000, inputShape: inputShape ?? [224, 224, 3]) }
        throw LayerError("unknown architecture '\(name)'; known: \(names.joined(separator: ", "))")
    }

    /// ResNet (He et al. 2016) in torchvision's layout: 7x7/2 conv, 3x3/2 max pooling, four
    /// stages of basic (18, 34) or bottleneck (50, 101, 152) blocks, global average pooling, a
    /// dense classifier. Convolutions have no bias unless `convBias` (Keras Applications' variant).
    ///
    /// References (1000 classes): torchvision resnet18 11,689,512, resnet34 21,797,672, resnet50
    /// 25,557,032 trainable parameters; Keras' ResNet50 (conv biases) 25,636,712 in total.
    public static func resnet(depth: Int, classes: Int = 1000, inputShape: [Int] = [224, 224, 3], convBias: Bool = false) throws -> Model {
        let stages: [Int], bottleneck: Bool
        switch depth {
        case 18: (stages, bottleneck) = ([2, 2, 2, 2], false)
        case 34: (stages, bottleneck) = ([3, 4, 6, 3], false)
        case 50: (stages, bottleneck) = ([3, 4, 6, 3], true)
        case 101: (stages, bottleneck) = ([3, 4, 23, 3], true)
        case 152: (stages, bottleneck) = ([3, 8, 36, 3], true)
        default: throw LayerError("resnet: depth must be 18, 34, 50, 101 or 152, got \(depth)")
        }
        let eps: Float = convBias ? 1.001e-5 : 1e-5
        let input = Input(shape: inputShape)
        var x = Blocks.convBN(input, filters: 64, kernelSize: 7, strides: 2, useBias: convBias, epsilon: eps)
        x = MaxPooling2D(poolSize: (3, 3), strides: (2, 2), padding: Blocks.pad(1))(x)
        for (stage, blocks) in stages.enumerated() {
            let filters = 64 << stage
            for b in 0..<blocks {
                let strides = b == 0 && stage > 0 ? 2 : 1
                x = bottleneck ? Blocks.residualBottleneck(x, filters: filters, strides: strides, useBias: convBias, epsilon: eps)
                               : Blocks.residualBasic(x, filters: filters, strides: strides, useBias: convBias, epsilon: eps)
            }
        }
        x = GlobalAveragePooling2D()(x)
        x = Dense(units: classes, activation: .softmax)(x)
        return Model(inputs: input, outputs: x, name: "resnet\(depth)")
    }

    /// Wide ResNet WRN-depth-width for CIFAR-sized images (Zagoruyko & Komodakis 2016): a 3x3
    /// conv to 16 channels, three groups of (depth − 4)/6 pre-activation blocks with 16k, 32k
    /// and 64k channels (strides 1, 2, 2), BN – ReLU – global average pooling – dense.
    /// Reference: the authors' PyTorch layout (no conv biases), WRN-28-10 with 10 classes has
    /// 36,479,194 trainable parameters (checked by Scripts/make_concept_fixtures.py).
    public static func wideResNet(depth: Int, width: Int, classes: Int = 10, inputShape: [Int] = [32, 32, 3],
                                  dropout: Float = 0) throws -> Model {
        guard (depth - 4) % 6 == 0, depth >= 10, width >= 1 else {
            throw LayerError("wideResNet: depth must be 6n + 4 (10, 16, 22, 28, 40…) and width ≥ 1, got WRN-\(depth)-\(width)")
        }
        let n = (depth - 4) / 6
        let input = Input(shape: inputShape)
        var x = Conv2D(filters: 16, kernelSize: 3, padding: Blocks.pad(1), useBias: false, kernelInitializer: .heNormal)(input)
        for (group, channels) in [16 * width, 32 * width, 64 * width].enumerated() {
            for b in 0..<n {
                x = Blocks.wideBasic(x, filters: channels, strides: b == 0 && group > 0 ? 2 : 1, dropout: dropout)
            }
        }
        x = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(x))
        x = GlobalAveragePooling2D()(x)
        x = Dense(units: classes, activation: .softmax)(x)
        return Model(inputs: input, outputs: x, name: "wrn-\(depth)-\(width)")
    }

    /// DenseNet-BC (Huang et al. 2017) in torchvision's layout: 7x7/2 conv to 64, 3x3/2 max
    /// pooling, dense blocks with growth rate 32 and bottleneck width 4, transitions halving the
    /// channels, BN – ReLU – global average pooling – dense.
    /// References (1000 classes): DenseNet-121 7,978,856 trainable parameters (torchvision),
    /// 8,062,504 in total (Keras, whose count includes the moving statistics).
    public static func denseNet(depth: Int, classes: Int = 1000, inputShape: [Int] = [224, 224, 3],
                                growthRate: Int = 32, compression: Float = 0.5) throws -> Model {
        let blocks: [Int]
        switch depth {
        case 121: blocks = [6, 12, 24, 16]
        case 169: blocks = [6, 12, 32, 32]
        case 201: blocks = [6, 12, 48, 32]
        default: throw LayerError("denseNet: depth must be 121, 169 or 201, got \(depth)")
        }
        let input = Input(shape: inputShape)
        var x = Blocks.convBN(input, filters: 2 * growthRate, kernelSize: 7, strides: 2)
        x = MaxPooling2D(poolSize: (3, 3), strides: (2, 2), padding: Blocks.pad(1))(x)
        for (i, layers) in blocks.enumerated() {
            x = Blocks.denseBlock(x, layers: layers, growthRate: growthRate)
            if i + 1 < blocks.count { x = Blocks.transition(x, compression: compression) }
        }
        x = ActivationLayer(.relu)(BatchNormalization(momentum: 0.9, epsilon: 1e-5)(x))
        x = GlobalAveragePooling2D()(x)
        x = Dense(units: classes, activation: .softmax)(x)
        return Model(inputs: input, outputs: x, name: "densenet\(depth)")
    }

    /// MobileNet v1 (Howard et al. 2017) in Keras Applications' layout with width multiplier α:
    /// a 3x3/2 conv to 32α channels, 13 depthwise-separable blocks, global average pooling,
    /// dropout, a dense classifier. Reference: Keras' MobileNet(alpha=1.0), 224x224, 1000
    /// classes: 4,253,864 parameters in total.
    public static func mobileNet(alpha: Float = 1, depthMultiplier: Int = 1, classes: Int = 1000,
                                 inputShape: [Int] = [224, 224, 3], dropout: Float = 1e-3) -> Model {
        func width(_ f: Int) -> Int { Int(Float(f) * alpha) }
        let input = Input(shape: inputShape)
        var x = Conv2D(filters: width(32), kernelSize: 3, strides: 2, padding: .same, useBias: false)(input)
        x = ReLU(maxValue: 6)(BatchNormalization()(x))
        let plan: [(Int, Int)] = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                                  (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
        for (filters, strides) in plan {
            x = Blocks.depthwiseSeparable(x, filters: width(filters), strides: strides, depthMultiplier: depthMultiplier)
        }
        x = GlobalAveragePooling2D()(x)
        if dropout > 0 { x = Dropout(dropout)(x) }
        x = Dense(units: classes, activation: .softmax)(x)
        return Model(inputs: input, outputs: x, name: "mobilenet_\(alpha)")
    }

    /// Darknet-19 (Redmon & Farhadi 2017, YOLOv2's classifier; the course's table): 3x3 and 1x1
    /// convolutions with batch normalization and leaky ReLU, five 2x2 max poolings, a 1x1 conv to
    /// the classes, global average pooling, softmax. Reference: Darknet's darknet19.cfg.
    public static func darknet19(classes: Int = 1000, inputShape: [Int] = [256, 256, 3]) -> Model {
        let plan: [[(Int, Int)]] = [[(32, 3)], [(64, 3)], [(128, 3), (64, 1), (128, 3)], [(256, 3), (128, 1), (256, 3)],
                                    [(512, 3), (256, 1), (512, 3), (256, 1), (512, 3)],
                                    [(1024, 3), (512, 1), (1024, 3), (512, 1), (1024, 3)]]
        return darknetClassifier(plan, classes: classes, inputShape: inputShape, name: "darknet19")
    }

    /// Darknet's tiny classifier ("Tiny Darknet", tiny.cfg): squeeze (1x1) and expand (3x3) pairs,
    /// a 1x1 conv to the classes, global average pooling, softmax.
    public static func tinyDarknet(classes: Int = 1000, inputShape: [Int] = [224, 224, 3]) -> Model {
        let plan: [[(Int, Int)]] = [[(16, 3)], [(32, 3)], [(16, 1), (128, 3), (16, 1), (128, 3)],
                                    [(32, 1), (256, 3), (32, 1), (256, 3)],
                                    [(64, 1), (512, 3), (64, 1), (512, 3), (128, 1)]]
        return darknetClassifier(plan, classes: classes, inputShape: inputShape, name: "tiny_darknet")
    }

    /// Stages of (filters, kernel) Darknet convolutions separated by 2x2 max pooling.
    static func darknetClassifier(_ stages: [[(Int, Int)]], classes: Int, inputShape: [Int], name: String) -> Model {
        let input = Input(shape: inputShape)
        var x = input
        for (i, stage) in stages.enumerated() {
            if i > 0 { x = MaxPooling2D(2)(x) }
            for (filters, k) in stage { x = Blocks.darknetConv(x, filters: filters, kernelSize: k) }
        }
        x = Conv2D(filters: classes, kernelSize: 1, padding: .same)(x)
        x = GlobalAveragePooling2D()(x)
        x = ActivationLayer(.softmax)(x)
        return Model(inputs: input, outputs: x, name: name)
    }
}
