import Foundation
import OcelliNN
import OcelliTensor

/// One Darknet layer as the cfg describes it: its type, shapes (Darknet's w × h × c) and cost.
public struct DarknetLayerInfo {
    public var index: Int
    /// The section type (`convolutional`, `maxpool`, `route`, …).
    public var type: String
    /// [height, width, channels] in and out (flat layers: [1, 1, n]).
    public var inputShape: [Int]
    public var outputShape: [Int]
    /// Darknet's BFLOPs of this layer (convolutions only, as Darknet counts them).
    public var bflops: Double
    /// The line Darknet prints for the layer when it loads the cfg (without the index).
    public var line: String
    /// The Ocelli layer that computes it (nil for a route of one layer, `[cost]` and the heads).
    public var layer: Layer?
}

/// A Darknet network: the cfg, the Ocelli model it became, its heads and its Darknet layer table.
///
/// The model's input is [height, width, channels] from `[net]`; its outputs are the raw inputs of
/// the heads in cfg order (the logits a YOLO loss trains and `decode` turns into boxes), or the
/// last layer's output for a classifier without heads.
public final class DarknetNetwork {
    public let config: DarknetConfig
    public let model: Model
    public let width: Int
    public let height: Int
    public let channels: Int
    public let layers: [DarknetLayerInfo]
    public let heads: [DarknetHead]
    /// Images seen in training (from a weights file; written back by `saveWeights`).
    public var seen: UInt64 = 0

    /// Parses and builds a cfg file.
    public convenience init(cfg path: String, width: Int? = nil, height: Int? = nil) throws {
        try self.init(config: DarknetConfig.load(path), width: width, height: height)
    }

    /// Builds the network of `config`; `width`/`height` override `[net]`'s input size (multiples of
    /// 32 for YOLO networks).
    public init(config: DarknetConfig, width: Int? = nil, height: Int? = nil) throws {
        _ = DarknetLayerRegistration.done
        self.config = config
        let net = config.net
        let file = config.file
        let w = try width ?? net.int("width", net.int("w", 0))
        let h = try height ?? net.int("height", net.int("h", 0))
        let c = try net.int("channels", net.int("c", 0))
        guard w > 0, h > 0, c > 0 else {
            throw DarknetError(file: file, line: net.line, "[net] needs positive width, height and channels, got \(w) x \(h) x \(c)")
        }
        self.width = w; self.height = h; self.channels = c

        let input = Input(shape: [h, w, c], name: "input")
        var outputs: [SymbolicTensor] = []     // per Darknet layer index
        var infos: [DarknetLayerInfo] = []
        var heads: [DarknetHead] = []
        var headInputs: [SymbolicTensor] = []

        func fmt(_ v: Int, _ width: Int) -> String {
            let s = String(v)
            return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
        }
        func dims(_ s: [Int]) -> String { "\(fmt(s[1], 4)) x\(fmt(s[0], 4)) x\(fmt(s[2], 4))" }

        for (index, section) in config.layers.enumerated() {
            let previous = index == 0 ? input : outputs[index - 1]
            let inShape = previous.shape
            func err(_ message: String) -> DarknetError { DarknetError(file: file, line: section.line, "[\(section.type)] (layer \(index)): \(message)") }
            func image() throws -> [Int] {
                guard inShape.count == 3 else { throw err("needs an image input [height, width, channels], got \(inShape)") }
                return inShape
            }
            func apply(_ layer: Layer, _ args: [SymbolicTensor]) throws -> SymbolicTensor {
                do { return try layer.apply(args) } catch { throw err("\(error)") }
            }
            func flat(_ s: [Int]) -> Int { s.reduce(1, *) }
            func layerIndex(_ raw: Int, _ key: String) throws -> Int {
                let i = raw < 0 ? index + raw : raw
                guard i >= 0, i < index else {
                    throw err("\(key) refers to layer \(raw) (\(i)); only layers 0…\(index - 1) come before it")
                }
                return i
            }
            func activation(_ d: DarknetActivation) throws -> DarknetActivation {
                try DarknetActivation(cfg: section.string("activation", d.rawValue), section: section, option: section.raw("activation"))
            }

            var out: SymbolicTensor
            var line: String
            var bflops = 0.0
            var layer: Layer?
            switch section.type {
            case "convolutional":
                let x = try image()
                let filters = try section.int("filters", 1), size = try section.int("size", 1)
                let stride = try section.int("stride", 1), groups = try section.int("groups", 1)
                let dilation = try section.int("dilation", 1)
                var padding = try section.int("padding", 0)
                if try section.int("pad", 0) != 0 { padding = size / 2 }
                guard filters > 0, size > 0, stride > 0, groups > 0, dilation > 0, padding >= 0 else {
                    throw err("filters, size, stride, groups and dilation must be positive and padding ≥ 0")
                }
                if try section.int("binary", 0) != 0 || (try section.int("xnor", 0)) != 0 {
                    throw err("binary / xnor convolutions are not supported")
                }
                let conv = DarknetConvolutional(filters: filters, size: size, stride: stride, padding: padding, groups: groups,
                                                dilation: dilation, batchNormalize: try section.int("batch_normalize", 0) != 0,
                                                activation: try activation(.logistic), name: "conv_\(index)")
                out = try apply(conv, [previous])
                layer = conv
                let o = out.shape
                bflops = 2.0 * Double(filters * size * size * x[2] / groups) * Double(o[0] * o[1]) / 1e9
                line = "conv  \(fmt(filters, 5)) \(fmt(size, 2)) x\(fmt(size, 2)) /\(fmt(stride, 2))  \(dims(x))   ->  \(dims(o))  \(String(format: "%5.3f", bflops)) BFLOPs"
            case "maxpool":
                let x = try image()
                let stride = try section.int("stride", 1)
                let size = try section.int("size", stride)
                let padding = try section.int("padding", size - 1)
                guard stride > 0, size > 0, padding >= 0 else { throw err("size and stride must be positive and padding ≥ 0") }
                let pool = MaxPooling2D(poolSize: (size, size), strides: (stride, stride),
                                        padding: .darknetMaxPool(size: size, padding: padding), name: "maxpool_\(index)")
                out = try apply(pool, [previous])
                layer = pool
                line = "max          \(size) x \(size) / \(stride)  \(dims(x))   ->  \(dims(out.shape))"
            case "avgpool":
                let x = try image()
                let pool = DarknetAvgPool(name: "avgpool_\(index)")
                out = try apply(pool, [previous])
                layer = pool
                line = "avg                     \(dims(x))   ->  \(fmt(x[2], 4))"
            case "route":
                guard let raw = try section.ints("layers"), !raw.isEmpty else { throw err("needs layers=…") }
                let sources = try raw.map { try layerIndex($0, "layers") }
                let tensors = sources.map { outputs[$0] }
                if tensors.count == 1 {
                    out = tensors[0]
                } else {
                    let first = tensors[0].shape
                    for (i, t) in zip(sources, tensors) where t.shape.count != 3 || t.shape[0] != first[0] || t.shape[1] != first[1] {
                        throw err("layer \(i) has output \(t.shape); a route concatenates maps of the same height and width as layer \(sources[0]) (\(first))")
                    }
                    let concat = Concatenate(axis: -1, name: "route_\(index)")
                    out = try apply(concat, tensors)
                    layer = concat
                }
                line = "route " + sources.map { " \($0)" }.joined()
            case "shortcut":
                guard let fromRaw = try section.ints("from"), fromRaw.count == 1 else { throw err("needs from=<one layer>") }
                let from = try layerIndex(fromRaw[0], "from")
                let sc = DarknetShortcut(alpha: try section.float("alpha", 1), beta: try section.float("beta", 1),
                                         activation: try activation(.linear), name: "shortcut_\(index)")
                out = try apply(sc, [previous, outputs[from]])
                layer = sc
                let f = outputs[from].shape
                line = "res  \(fmt(from, 3))                \(dims(f))   ->  \(dims(out.shape))"
            case "upsample":
                let x = try image()
                let stride = try section.int("stride", 2)
                guard stride > 0 else { throw err("Ocelli supports upsampling by a positive stride only (a negative stride downsamples in Darknet)") }
                guard try section.float("scale", 1) == 1 else { throw err("scale other than 1 is not supported") }
                let up = UpSampling2D(size: (stride, stride), name: "upsample_\(index)")
                out = try apply(up, [previous])
                layer = up
                line = "upsample           \(fmt(stride, 2))x  \(dims(x))   ->  \(dims(out.shape))"
            case "reorg":
                let x = try image()
                let stride = try section.int("stride", 1)
                guard try section.int("reverse", 0) == 0, try section.int("flatten", 0) == 0, try section.int("extra", 0) == 0 else {
                    throw err("only the forward reorg is supported (reverse, flatten and extra must be 0)")
                }
                let reorg = DarknetReorg(stride: stride, name: "reorg_\(index)")
                out = try apply(reorg, [previous])
                layer = reorg
                line = "reorg              /\(fmt(stride, 2))  \(dims(x))   ->  \(dims(out.shape))"
            case "connected":
                let outputsCount = try section.int("output", 1)
                guard outputsCount > 0 else { throw err("output must be positive") }
                let fc = DarknetConnected(outputs: outputsCount, batchNormalize: try section.int("batch_normalize", 0) != 0,
                                          activation: try activation(.logistic), name: "connected_\(index)")
                out = try apply(fc, [previous])
                layer = fc
                bflops = 2.0 * Double(flat(inShape) * outputsCount) / 1e9
                line = "connected                            \(fmt(flat(inShape), 4))  ->  \(fmt(outputsCount, 4))"
            case "dropout":
                let p = try section.float("probability", 0.5)
                guard p >= 0, p < 1 else { throw err("probability must be in [0, 1), got \(p)") }
                let d = Dropout(rate: p, name: "dropout_\(index)")
                out = try apply(d, [previous])
                layer = d
                line = "dropout       p = \(String(format: "%.2f", p))               \(fmt(flat(inShape), 4))  ->  \(fmt(flat(inShape), 4))"
            case "softmax":
                guard try section.int("groups", 1) == 1 else { throw err("only groups=1 is supported") }
                guard try section.float("temperature", 1) == 1 else { throw err("only temperature=1 is supported") }
                let sm = ActivationLayer(.softmax, name: "softmax_\(index)")
                out = try apply(sm, [previous])
                layer = sm
                line = "softmax                                        \(fmt(flat(inShape), 4))"
            case "cost":
                out = previous
                line = "cost                                           \(fmt(flat(inShape), 4))"
            case "yolo":
                let x = try image()
                let classes = try section.int("classes", 20), total = try section.int("num", 1)
                let mask = try section.ints("mask") ?? Array(0..<total)
                let anchorValues = try section.floats("anchors") ?? []
                guard anchorValues.count >= 2 * total, anchorValues.count % 2 == 0 else {
                    throw err("anchors has \(anchorValues.count) numbers; num=\(total) needs \(2 * total)")
                }
                for m in mask where m < 0 || m >= total { throw err("mask index \(m) is outside 0..<\(total)") }
                guard x[2] == mask.count * (5 + classes) else {
                    throw err("the input has \(x[2]) channels; \(mask.count) anchors × (5 + \(classes) classes) needs \(mask.count * (5 + classes)) (the filters= of the convolution before it)")
                }
                let anchors = (0..<(anchorValues.count / 2)).map { (anchorValues[2 * $0], anchorValues[2 * $0 + 1]) }
                heads.append(.yolo(YoloHead(layerIndex: index, classes: classes, anchors: anchors, mask: mask,
                                            ignoreThreshold: try section.float("ignore_thresh", 0.5),
                                            truthThreshold: try section.float("truth_thresh", 1),
                                            gridHeight: x[0], gridWidth: x[1])))
                headInputs.append(previous)
                out = previous
                line = "yolo"
            case "region":
                let x = try image()
                let classes = try section.int("classes", 20), coords = try section.int("coords", 4), num = try section.int("num", 1)
                let background = try section.int("background", 0) != 0
                guard coords == 4 else { throw err("coords=\(coords): only 4 is supported") }
                guard section.raw("tree") == nil, section.raw("map") == nil else { throw err("tree= and map= (YOLO9000) are not supported") }
                let anchorValues = try section.floats("anchors") ?? []
                guard anchorValues.count >= 2 * num else { throw err("anchors has \(anchorValues.count) numbers; num=\(num) needs \(2 * num)") }
                guard x[2] == num * (coords + 1 + classes) else {
                    throw err("the input has \(x[2]) channels; \(num) anchors × (\(coords) + 1 + \(classes) classes) needs \(num * (coords + 1 + classes))")
                }
                let anchors = (0..<num).map { (anchorValues[2 * $0], anchorValues[2 * $0 + 1]) }
                heads.append(.region(RegionHead(layerIndex: index, classes: classes, coords: coords, anchors: anchors,
                                                softmax: try section.int("softmax", 0) != 0, background: background,
                                                gridHeight: x[0], gridWidth: x[1])))
                headInputs.append(previous)
                out = previous
                line = "detection"
            case "detection":
                let classes = try section.int("classes", 1), coords = try section.int("coords", 1)
                let num = try section.int("num", 1), side = try section.int("side", 7)
                let expected = side * side * ((1 + coords) * num + classes)
                guard flat(inShape) == expected else {
                    throw err("the input has \(flat(inShape)) values; side \(side), num \(num), coords \(coords), classes \(classes) needs \(expected)")
                }
                heads.append(.detection(DetectionHead(layerIndex: index, classes: classes, coords: coords, num: num, side: side,
                                                      sqrt: try section.int("sqrt", 0) != 0,
                                                      softmax: try section.int("softmax", 0) != 0)))
                headInputs.append(previous)
                out = previous
                line = "Detection Layer"
            default:
                throw err("unsupported section")
            }
            func image3(_ s: [Int]) -> [Int] { s.count == 3 ? s : [1, 1, flat(s)] }
            infos.append(DarknetLayerInfo(index: index, type: section.type, inputShape: image3(inShape),
                                          outputShape: image3(out.shape), bflops: bflops, line: line, layer: layer))
            outputs.append(out)
        }
        guard let last = outputs.last else { throw DarknetError(file: file, "the cfg has no layers after [net]") }
        self.layers = infos
        self.heads = heads
        self.model = Model(inputs: [input], outputs: headInputs.isEmpty ? [last] : headInputs,
                           name: ((file as NSString).lastPathComponent as NSString).deletingPathExtension)
    }

    /// Darknet's BFLOPs for one image.
    public var totalBFLOPs: Double { layers.reduce(0) { $0 + $1.bflops } }

    /// The table Darknet prints as it loads the cfg, with the total at the end.
    public func darknetTable() -> String {
        var s = "layer     filters    size              input                output\n"
        for l in layers {
            let i = String(l.index)
            s += String(repeating: " ", count: max(0, 5 - i.count)) + i + " " + l.line + "\n"
        }
        s += "Total BFLOPs " + String(format: "%.3f", totalBFLOPs) + "\n"
        return s
    }

    /// The convolutional and connected layers, in the order their weights are stored.
    public var weightedLayers: [(index: Int, layer: Layer)] {
        layers.compactMap { info in
            guard let l = info.layer, l is DarknetConvolutional || l is DarknetConnected else { return nil }
            return (info.index, l)
        }
    }

    /// Folds batch norm into every convolution and packs its weights for inference now (the
    /// packing split over the cores) instead of layer by layer during the first forward pass,
    /// which then takes as long as the next ones. Weights changed later are prepared again on use.
    public func prepareForInference() {
        PreparedConvolution.prepare(layers.compactMap { info in
            guard let c = info.layer as? DarknetConvolutional, let shape = c.inputShapes.first else { return nil }
            return (c.preparedConvolution, inputShape: [1] + shape)
        })
    }

    /// Runs the model on a batch [N, height, width, channels] (inference) and returns the heads'
    /// raw inputs (or the classifier's output).
    public func forward(_ batch: Tensor) -> [Tensor] {
        withoutGradients {
            var ctx = ForwardContext(training: false)
            return model.forward([batch], context: &ctx)
        }
    }
}
