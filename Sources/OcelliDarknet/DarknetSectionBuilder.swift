import Foundation
import OcelliNN
import OcelliTensor

/// What one cfg section became: its output, the Ocelli layer computing it, the line Darknet
/// prints for it with its cost, and the head it declares.
struct BuiltSection {
    var output: SymbolicTensor
    var layer: Layer? = nil
    var line: String
    var bflops = 0.0
    var head: DarknetHead? = nil
}

/// Builds one cfg section on top of the layers before it: one method per section type behind the
/// one switch in `build()`. Adding a section type is one method and one `case`.
struct DarknetSectionBuilder {
    let section: DarknetSection
    /// Darknet's layer index (the section's position after `[net]`).
    let index: Int
    let file: String
    /// The output of the layer before (the network's input for layer 0).
    let previous: SymbolicTensor
    /// The outputs of layers 0..<index, for routes and shortcuts.
    let outputs: [SymbolicTensor]
    /// The weights this layer may have (the network's limit less the layers before).
    var weightBudget = Limits.weights

    func build() throws -> BuiltSection {
        switch section.type {
        case "convolutional": return try convolutional()
        case "maxpool": return try maxpool()
        case "avgpool": return try avgpool()
        case "route": return try route()
        case "shortcut": return try shortcut()
        case "upsample": return try upsample()
        case "reorg": return try reorg()
        case "connected": return try connected()
        case "dropout": return try dropout()
        case "softmax": return try softmax()
        case "cost": return BuiltSection(output: previous, line: "cost                                           \(fmt(flat(inShape), 4))")
        case "yolo": return try yolo()
        case "region": return try region()
        case "detection": return try detection()
        default: throw err("unsupported section")
        }
    }

    // MARK: - Section types

    private func convolutional() throws -> BuiltSection {
        let x = try image()
        let filters = try section.int("filters", 1, in: 1...Limits.channels), size = try section.int("size", 1, in: 1...Limits.kernel)
        let stride = try section.int("stride", 1, in: 1...Limits.kernel), groups = try section.int("groups", 1, in: 1...Limits.channels)
        let dilation = try section.int("dilation", 1, in: 1...Limits.kernel)
        var padding = try section.int("padding", 0, in: 0...Limits.side)
        if try section.int("pad", 0) != 0 { padding = size / 2 }
        // The kernel's values, checked before any is allocated.
        let kernelValues = size * size * (x[2] / groups) * filters
        guard kernelValues <= weightBudget else {
            throw err("a \(size)x\(size) kernel from \(x[2] / groups) to \(filters) channels holds \(kernelValues) values, more than the \(weightBudget) the network's weight limit leaves for this layer")
        }
        guard filters > 0, size > 0, stride > 0, groups > 0, dilation > 0, padding >= 0 else {
            throw err("filters, size, stride, groups and dilation must be positive and padding ≥ 0")
        }
        if try section.int("binary", 0) != 0 || (try section.int("xnor", 0)) != 0 {
            throw err("binary / xnor convolutions are not supported")
        }
        let conv = DarknetConvolutional(filters: filters, size: size, stride: stride, padding: padding, groups: groups,
                                        dilation: dilation, batchNormalize: try section.int("batch_normalize", 0) != 0,
                                        activation: try activation(.logistic), name: "conv_\(index)")
        let out = try apply(conv, [previous])
        let o = out.shape
        let bflops = 2.0 * Double(filters * size * size * x[2] / groups) * Double(o[0] * o[1]) / 1e9
        let line = "conv  \(fmt(filters, 5)) \(fmt(size, 2)) x\(fmt(size, 2)) /\(fmt(stride, 2))  \(dims(x))   ->  \(dims(o))  \(String(format: "%5.3f", bflops)) BFLOPs"
        return BuiltSection(output: out, layer: conv, line: line, bflops: bflops)
    }

    private func maxpool() throws -> BuiltSection {
        let x = try image()
        let stride = try section.int("stride", 1, in: 1...Limits.kernel)
        let size = try section.int("size", stride, in: 1...Limits.kernel)
        let padding = try section.int("padding", size - 1, in: 0...Limits.side)
        guard stride > 0, size > 0, padding >= 0 else { throw err("size and stride must be positive and padding ≥ 0") }
        let pool = MaxPooling2D(poolSize: (size, size), strides: (stride, stride),
                                padding: .darknetMaxPool(size: size, padding: padding), name: "maxpool_\(index)")
        let out = try apply(pool, [previous])
        return BuiltSection(output: out, layer: pool, line: "max          \(size) x \(size) / \(stride)  \(dims(x))   ->  \(dims(out.shape))")
    }

    private func avgpool() throws -> BuiltSection {
        let x = try image()
        let pool = DarknetAvgPool(name: "avgpool_\(index)")
        let out = try apply(pool, [previous])
        return BuiltSection(output: out, layer: pool, line: "avg                     \(dims(x))   ->  \(fmt(x[2], 4))")
    }

    private func route() throws -> BuiltSection {
        guard let raw = try section.ints("layers"), !raw.isEmpty else { throw err("needs layers=…") }
        guard try section.int("groups", 1) == 1 else {
            throw err("groups= (a route that keeps a part of the channels, as in yolov4-tiny) is not supported")
        }
        let sources = try raw.map { try layerIndex($0, "layers") }
        let tensors = sources.map { outputs[$0] }
        let line = "route " + sources.map { " \($0)" }.joined()
        if tensors.count == 1 { return BuiltSection(output: tensors[0], line: line) }
        let first = tensors[0].shape
        for (i, t) in zip(sources, tensors) where t.shape.count != 3 || t.shape[0] != first[0] || t.shape[1] != first[1] {
            throw err("layer \(i) has output \(t.shape); a route concatenates maps of the same height and width as layer \(sources[0]) (\(first))")
        }
        let concat = Concatenate(axis: -1, name: "route_\(index)")
        return BuiltSection(output: try apply(concat, tensors), layer: concat, line: line)
    }

    private func shortcut() throws -> BuiltSection {
        guard let fromRaw = try section.ints("from"), fromRaw.count == 1 else { throw err("needs from=<one layer>") }
        let from = try layerIndex(fromRaw[0], "from")
        let sc = DarknetShortcut(alpha: try section.float("alpha", 1), beta: try section.float("beta", 1),
                                 activation: try activation(.linear), name: "shortcut_\(index)")
        let out = try apply(sc, [previous, outputs[from]])
        let f = outputs[from].shape
        return BuiltSection(output: out, layer: sc, line: "res  \(fmt(from, 3))                \(dims(f))   ->  \(dims(out.shape))")
    }

    private func upsample() throws -> BuiltSection {
        let x = try image()
        let stride = try section.int("stride", 2)
        guard stride > 0 else { throw err("Ocelli supports upsampling by a positive stride only (a negative stride downsamples in Darknet)") }
        guard stride <= Limits.kernel else { throw err("stride must be between 1 and \(Limits.kernel), got \(stride)") }
        guard try section.float("scale", 1) == 1 else { throw err("scale other than 1 is not supported") }
        let up = UpSampling2D(size: (stride, stride), name: "upsample_\(index)")
        let out = try apply(up, [previous])
        return BuiltSection(output: out, layer: up, line: "upsample           \(fmt(stride, 2))x  \(dims(x))   ->  \(dims(out.shape))")
    }

    private func reorg() throws -> BuiltSection {
        let x = try image()
        let stride = try section.int("stride", 1)
        guard (1...64).contains(stride) else { throw err("stride must be between 1 and 64, got \(stride)") }
        guard try section.int("reverse", 0) == 0, try section.int("flatten", 0) == 0, try section.int("extra", 0) == 0 else {
            throw err("only the forward reorg is supported (reverse, flatten and extra must be 0)")
        }
        let reorg = DarknetReorg(stride: stride, name: "reorg_\(index)")
        let out = try apply(reorg, [previous])
        return BuiltSection(output: out, layer: reorg, line: "reorg              /\(fmt(stride, 2))  \(dims(x))   ->  \(dims(out.shape))")
    }

    private func connected() throws -> BuiltSection {
        let outputsCount = try section.int("output", 1, in: 1...Limits.side)
        guard flat(inShape) <= weightBudget / outputsCount else {
            throw err("\(flat(inShape)) inputs to \(outputsCount) outputs: the network would have more weights than its limit")
        }
        let fc = DarknetConnected(outputs: outputsCount, batchNormalize: try section.int("batch_normalize", 0) != 0,
                                  activation: try activation(.logistic), name: "connected_\(index)")
        let out = try apply(fc, [previous])
        return BuiltSection(output: out, layer: fc,
                            line: "connected                            \(fmt(flat(inShape), 4))  ->  \(fmt(outputsCount, 4))",
                            bflops: 2.0 * Double(flat(inShape) * outputsCount) / 1e9)
    }

    private func dropout() throws -> BuiltSection {
        let p = try section.float("probability", 0.5)
        guard p >= 0, p < 1 else { throw err("probability must be in [0, 1), got \(p)") }
        let d = Dropout(rate: p, name: "dropout_\(index)")
        let out = try apply(d, [previous])
        return BuiltSection(output: out, layer: d,
                            line: "dropout       p = \(String(format: "%.2f", p))               \(fmt(flat(inShape), 4))  ->  \(fmt(flat(inShape), 4))")
    }

    private func softmax() throws -> BuiltSection {
        guard try section.int("groups", 1) == 1 else { throw err("only groups=1 is supported") }
        guard try section.float("temperature", 1) == 1 else { throw err("only temperature=1 is supported") }
        let sm = ActivationLayer(.softmax, name: "softmax_\(index)")
        let out = try apply(sm, [previous])
        return BuiltSection(output: out, layer: sm, line: "softmax                                        \(fmt(flat(inShape), 4))")
    }

    private func yolo() throws -> BuiltSection {
        let x = try image()
        let classes = try section.int("classes", 20, in: 1...Limits.classes), total = try section.int("num", 1, in: 1...Limits.anchors)
        let mask = try section.ints("mask") ?? Array(0..<total)
        let anchorValues = try section.floats("anchors") ?? []
        guard anchorValues.count >= 2 * total, anchorValues.count % 2 == 0 else {
            throw err("anchors has \(anchorValues.count) numbers; num=\(total) needs \(2 * total)")
        }
        for m in mask where m < 0 || m >= total { throw err("mask index \(m) is outside 0..<\(total)") }
        guard x[2] == mask.count * (5 + classes) else {
            throw err("the input has \(x[2]) channels; \(mask.count) anchors × (5 + \(classes) classes) needs \(mask.count * (5 + classes)) (the filters= of the convolution before it)")
        }
        guard anchorValues.allSatisfy({ $0 > 0 }) else { throw err("anchors must be positive widths and heights") }
        let anchors = (0..<(anchorValues.count / 2)).map { (anchorValues[2 * $0], anchorValues[2 * $0 + 1]) }
        let head = YoloHead(layerIndex: index, classes: classes, anchors: anchors, mask: mask,
                            ignoreThreshold: try section.float("ignore_thresh", 0.5),
                            truthThreshold: try section.float("truth_thresh", 1),
                            gridHeight: x[0], gridWidth: x[1])
        return BuiltSection(output: previous, line: "yolo", head: .yolo(head))
    }

    private func region() throws -> BuiltSection {
        let x = try image()
        let classes = try section.int("classes", 20, in: 1...Limits.classes), coords = try section.int("coords", 4)
        let num = try section.int("num", 1, in: 1...Limits.anchors)
        let background = try section.int("background", 0) != 0
        guard coords == 4 else { throw err("coords=\(coords): only 4 is supported") }
        guard section.raw("tree") == nil, section.raw("map") == nil else { throw err("tree= and map= (YOLO9000) are not supported") }
        let anchorValues = try section.floats("anchors") ?? []
        guard anchorValues.count >= 2 * num else { throw err("anchors has \(anchorValues.count) numbers; num=\(num) needs \(2 * num)") }
        guard x[2] == num * (coords + 1 + classes) else {
            throw err("the input has \(x[2]) channels; \(num) anchors × (\(coords) + 1 + \(classes) classes) needs \(num * (coords + 1 + classes))")
        }
        guard anchorValues.allSatisfy({ $0 > 0 }) else { throw err("anchors must be positive widths and heights") }
        let anchors = (0..<num).map { (anchorValues[2 * $0], anchorValues[2 * $0 + 1]) }
        let head = RegionHead(layerIndex: index, classes: classes, coords: coords, anchors: anchors,
                              softmax: try section.int("softmax", 0) != 0, background: background,
                              gridHeight: x[0], gridWidth: x[1])
        return BuiltSection(output: previous, line: "detection", head: .region(head))
    }

    private func detection() throws -> BuiltSection {
        let classes = try section.int("classes", 1, in: 1...Limits.classes), coords = try section.int("coords", 1, in: 1...Limits.anchors)
        let num = try section.int("num", 1, in: 1...Limits.anchors), side = try section.int("side", 7, in: 1...Limits.kernel)
        let expected = side * side * ((1 + coords) * num + classes)
        guard flat(inShape) == expected else {
            throw err("the input has \(flat(inShape)) values; side \(side), num \(num), coords \(coords), classes \(classes) needs \(expected)")
        }
        let head = DetectionHead(layerIndex: index, classes: classes, coords: coords, num: num, side: side,
                                 sqrt: try section.int("sqrt", 0) != 0, softmax: try section.int("softmax", 0) != 0)
        return BuiltSection(output: previous, line: "Detection Layer", head: .detection(head))
    }

    // MARK: - Shared by the sections

    private var inShape: [Int] { previous.shape }

    private func err(_ message: String) -> DarknetError {
        DarknetError(file: file, line: section.line, "[\(section.type)] (layer \(index)): \(message)")
    }

    /// The input as an image [height, width, channels], or an error naming the section.
    private func image() throws -> [Int] {
        guard inShape.count == 3 else { throw err("needs an image input [height, width, channels], got \(inShape)") }
        return inShape
    }

    private func apply(_ layer: Layer, _ args: [SymbolicTensor]) throws -> SymbolicTensor {
        // The output's size is checked before the layer allocates anything.
        let shape: [Int]
        do { shape = try layer.computeOutputShape(args.map(\.shape)) } catch { throw err("\(error)") }
        var values = 1
        for d in shape {
            let (v, overflow) = values.multipliedReportingOverflow(by: d)
            guard d > 0, !overflow, v <= Limits.values else {
                throw err("the output \(shape) holds more than \(Limits.values) values (lower width/height or filters)")
            }
            values = v
        }
        do { return try layer.apply(args) } catch { throw err("\(error)") }
    }

    private func flat(_ s: [Int]) -> Int { s.reduce(1, *) }

    /// A `layers=`/`from=` reference (absolute, or relative when negative) checked to be earlier.
    private func layerIndex(_ raw: Int, _ key: String) throws -> Int {
        let i = raw < 0 ? index + raw : raw
        guard i >= 0, i < index else {
            throw err("\(key) refers to layer \(raw) (\(i)); only layers 0…\(index - 1) come before it")
        }
        return i
    }

    private func activation(_ d: DarknetActivation) throws -> DarknetActivation {
        try DarknetActivation(cfg: section.string("activation", d.rawValue), section: section, option: section.raw("activation"))
    }

    private func fmt(_ v: Int, _ width: Int) -> String {
        let s = String(v)
        return s.count >= width ? s : String(repeating: " ", count: width - s.count) + s
    }

    /// Darknet's "w x h x c" with its column widths.
    private func dims(_ s: [Int]) -> String {
        s.count == 3 ? "\(fmt(s[1], 4)) x\(fmt(s[0], 4)) x\(fmt(s[2], 4))" : fmt(s.reduce(1, *), 4)
    }
}

/// The largest values a cfg may give, so that a typo (`size=100000`, `filters=1e11`) is an error
/// that names the key rather than an allocation of terabytes. Darknet's own cfgs stay far inside.
enum Limits {
    /// An image side (width, height) or a padding.
    static let side = 65_536
    /// Channels, filters, groups.
    static let channels = 65_536
    /// A kernel or pooling size, a stride, a dilation.
    static let kernel = 1_024
    static let classes = 100_000
    static let anchors = 1_000
    /// Layers in a cfg (Darknet's largest have a few hundred).
    static let layers = 10_000
    /// The values of one layer's output (per image): 2^30 (4 GiB of floats).
    static let values = 1 << 30
    /// The weights of one layer, and of the whole network: 2^28 (1 GiB of floats; YOLOv3 has
    /// 62 million).
    static let weights = 1 << 28
}
