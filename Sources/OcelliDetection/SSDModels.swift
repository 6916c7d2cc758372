import OcelliNN
import OcelliTensor

/// SSD detectors as Ocelli models: two outputs, the box offsets [N, D, 4] and the class
/// confidences as logits [N, D, classes + 1] (class 0 the background), D the default boxes in
/// `SSDDefaultBoxes`' order. Train with `MultiBoxLoss`, decode with `SSDPostProcessing`.
public enum SSDModels {
    /// The names `ocelli summary` accepts.
    public static let names = ["ssd300", "ssd-digits"]

    /// The name of the `Model` an architecture builds (what a saved folder records).
    public static func modelName(_ arch: String) -> String? {
        switch arch.lowercased() {
        case "ssd300": return "ssd300"
        case "ssd-digits": return "ssd_digits"
        default: return nil
        }
    }

    /// SSD300 on VGG16 (Liu et al. 2016) in ssd.pytorch's and torchvision's layout: VGG16's
    /// convolutions (pool3 rounding up: 75 → 38; pool5 3x3 stride 1), conv4_3 through
    /// L2 normalisation with a learned scale (20 at first), fc6 as a 3x3 convolution dilated by 6
    /// and fc7 as a 1x1 (1024 channels each), the extra layers conv8_2 (10x10), conv9_2 (5x5),
    /// conv10_2 (3x3), conv11_2 (1x1), and a 3x3 head for offsets and one for confidences on each
    /// of the six maps (4, 6, 6, 6, 4, 4 boxes per cell): 8,732 default boxes
    /// (`SSDDefaultBoxes.ssd300`). Stride-2 extras pad one cell on each side as PyTorch does.
    ///
    /// References: ssd.pytorch with 21 classes (20 + background) 26,285,486 parameters,
    /// torchvision's `ssd300_vgg16(num_classes=91)` 35,641,826 (`classes` 90 here).
    public static func ssd300(classes: Int = 20, inputSize: Int = 300) -> Model {
        let input = Input(shape: [inputSize, inputSize, 3])
        func conv(_ x: SymbolicTensor, _ filters: Int, _ k: Int, strides: Int = 1, padding: Padding = .same, dilation: Int = 1,
                  name: String) -> SymbolicTensor {
            Conv2D(filters: filters, kernelSize: (k, k), strides: (strides, strides), padding: padding,
                   dilationRate: (dilation, dilation), activation: .relu, name: name)(x)
        }
        var x = input
        var sources: [SymbolicTensor] = []
        let vgg: [[Int]] = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
        for (stage, widths) in vgg.enumerated() {
            for (i, w) in widths.enumerated() { x = conv(x, w, 3, name: "conv\(stage + 1)_\(i + 1)") }
            if stage == 3 { sources.append(L2Normalization(name: "conv4_3_norm")(x)) }
            // pool1…pool4 2x2 (pool3 rounds up, as Caffe's and PyTorch's ceil mode), pool5 3x3 stride 1.
            x = stage == 4 ? MaxPooling2D(poolSize: (3, 3), strides: (1, 1), padding: .same, name: "pool5")(x)
                : MaxPooling2D(poolSize: (2, 2), strides: (2, 2), padding: .same, name: "pool\(stage + 1)")(x)
        }
        x = conv(x, 1024, 3, dilation: 6, name: "fc6")
        x = conv(x, 1024, 1, name: "fc7")
        sources.append(x)
        // Extras: (1x1 squeeze, 3x3 output, stride, PyTorch padding).
        let extras: [(Int, Int, Int, Int)] = [(256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0)]
        for (i, (squeeze, out, stride, pad)) in extras.enumerated() {
            x = conv(x, squeeze, 1, name: "conv\(i + 8)_1")
            if pad > 0 { x = ZeroPadding2D(padding: ((pad, pad), (pad, pad)), name: "conv\(i + 8)_2_pad")(x) }
            x = conv(x, out, 3, strides: stride, padding: .valid, name: "conv\(i + 8)_2")
            sources.append(x)
        }
        return head(input: input, sources: sources, boxesPerLocation: [4, 6, 6, 6, 4, 4], classes: classes, name: "ssd300")
    }

    /// The offsets and confidences heads of an SSD: a 3x3 convolution per source map to
    /// boxes·4 and boxes·(classes + 1) channels, each reshaped to [cells·boxes, 4 or classes + 1]
    /// and the maps concatenated in order.
    public static func head(input: SymbolicTensor, sources: [SymbolicTensor], boxesPerLocation: [Int], classes: Int,
                            name: String) -> Model {
        precondition(sources.count == boxesPerLocation.count, "SSDModels.head: \(sources.count) maps, \(boxesPerLocation.count) box counts")
        var offsets: [SymbolicTensor] = [], confidences: [SymbolicTensor] = []
        for (k, (s, boxes)) in zip(sources, boxesPerLocation).enumerated() {
            let loc = Conv2D(filters: boxes * 4, kernelSize: (3, 3), padding: .same, name: "loc_\(k)")(s)
            offsets.append(Reshape([-1, 4], name: "loc_\(k)_flat")(loc))
            let conf = Conv2D(filters: boxes * (classes + 1), kernelSize: (3, 3), padding: .same, name: "conf_\(k)")(s)
            confidences.append(Reshape([-1, classes + 1], name: "conf_\(k)_flat")(conf))
        }
        let loc = sources.count == 1 ? offsets[0] : Concatenate(axis: -2, name: "offsets")(offsets)
        let conf = sources.count == 1 ? confidences[0] : Concatenate(axis: -2, name: "confidences")(confidences)
        return Model(inputs: [input], outputs: [loc, conf], name: name)
    }

    /// The model called `name` (one of `names`), with its default boxes.
    public static func named(_ name: String, classes: Int? = nil) throws -> (model: Model, defaultBoxes: SSDDefaultBoxes) {
        if let classes, !(1...100_000).contains(classes) {
            throw DetectionError("architecture '\(name)': classes must be between 1 and 100000, got \(classes)")
        }
        switch name.lowercased() {
        case "ssd300": return (ssd300(classes: classes ?? 20), SSDDefaultBoxes.ssd300(.voc))
        case "ssd-digits": return try digits(classes: classes ?? 10)
        default: throw DetectionError("unknown SSD architecture '\(name)'; known: \(names.joined(separator: ", "))")
        }
    }
}

extension SSDModels {
    /// A small SSD for the digits data (256x256, ten classes) on a MobileNet-style backbone: a
    /// 3x3/2 convolution, then depthwise-separable blocks (batch norm, ReLU6) down to four maps of
    /// 32, 16, 8 and 4 cells (steps 8, 16, 32, 64), each with 4 boxes per cell (ratios 1 and 2, 1/2)
    /// of scales 0.07, 0.15, 0.3, 0.5 (s'_4 from 0.75): 5,440 default boxes for objects of
    /// about 15 to 130 pixels.
    public static func digits(classes: Int = 10, inputSize: Int = 256, width: Int = 1) throws -> (model: Model, defaultBoxes: SSDDefaultBoxes) {
        guard (64...4096).contains(inputSize) else { throw DetectionError("ssd-digits: the input size must be between 64 and 4096, got \(inputSize)") }
        let input = Input(shape: [inputSize, inputSize, 3])
        func w(_ f: Int) -> Int { f * Swift.max(1, width) }
        var x = Conv2D(filters: w(16), kernelSize: 3, strides: 2, padding: .same, useBias: false, name: "stem")(input)
        x = ReLU(maxValue: 6)(BatchNormalization()(x))                                   // 128
        x = Blocks.depthwiseSeparable(x, filters: w(32))
        x = Blocks.depthwiseSeparable(x, filters: w(64), strides: 2)                       // 64
        x = Blocks.depthwiseSeparable(x, filters: w(64))
        x = Blocks.depthwiseSeparable(x, filters: w(96), strides: 2)                       // 32
        let s0 = Blocks.depthwiseSeparable(x, filters: w(96))
        x = Blocks.depthwiseSeparable(s0, filters: w(128), strides: 2)                     // 16
        let s1 = Blocks.depthwiseSeparable(x, filters: w(128))
        let s2 = Blocks.depthwiseSeparable(s1, filters: w(128), strides: 2)                // 8
        let s3 = Blocks.depthwiseSeparable(s2, filters: w(128), strides: 2)                // 4
        let boxes = try digitsDefaultBoxes(inputSize: inputSize)
        let model = head(input: input, sources: [s0, s1, s2, s3], boxesPerLocation: boxes.boxesPerLocation, classes: classes,
                         name: "ssd_digits")
        return (model, boxes)
    }

    /// The default boxes of `digits` at an input size: four maps of size/8 … size/64 cells.
    public static func digitsDefaultBoxes(inputSize: Int) throws -> SSDDefaultBoxes {
        guard (64...4096).contains(inputSize) else { throw DetectionError("ssd-digits: the input size must be between 64 and 4096, got \(inputSize)") }
        // The stem (a "same" convolution) rounds up; the stride-2 blocks (padding right and bottom) down.
        var maps: [Int] = [], side = (inputSize + 1) / 2
        for k in 0..<5 { side /= 2; if k >= 1 { maps.append(side) } }
        return try SSDDefaultBoxes(imageSize: inputSize, featureMaps: maps, scales: [0.07, 0.15, 0.3, 0.5, 0.75],
                                   aspectRatios: [[2], [2], [2], [2]], steps: [8, 16, 32, 64])
    }
}
