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
    ///
    /// `weightLimit` bounds the network's weights (default 2^28, 1 GiB of floats; YOLOv3 has 62
    /// million): a cfg beyond it is an error before the layer that would exceed it is allocated.
    public init(config: DarknetConfig, width: Int? = nil, height: Int? = nil, weightLimit: Int = 1 << 28) throws {
        DarknetLayers.register()
        self.config = config
        let net = config.net
        let file = config.file
        let w = try width ?? net.int("width", net.int("w", 0))
        let h = try height ?? net.int("height", net.int("h", 0))
        let c = try net.int("channels", net.int("c", 0))
        guard w > 0, h > 0, c > 0 else {
            throw DarknetError(file: file, line: net.line, "[net] needs positive width, height and channels, got \(w) x \(h) x \(c)")
        }
        guard w <= Limits.side, h <= Limits.side, c <= Limits.channels, w * h <= Limits.values / c else {
            throw DarknetError(file: file, line: net.line, "the input \(w) x \(h) x \(c) is too large: width and height at most \(Limits.side), at most \(Limits.values) values")
        }
        self.width = w; self.height = h; self.channels = c

        let input = Input(shape: [h, w, c], name: "input")
        var outputs: [SymbolicTensor] = []     // per Darknet layer index
        var infos: [DarknetLayerInfo] = []
        var heads: [DarknetHead] = []
        var headInputs: [SymbolicTensor] = []
        var weightCount = 0

        guard config.layers.count <= Limits.layers else {
            throw DarknetError(file: file, "the cfg has \(config.layers.count) layers; at most \(Limits.layers) are read")
        }
        for (index, section) in config.layers.enumerated() {
            var builder = DarknetSectionBuilder(section: section, index: index, file: file,
                                                previous: index == 0 ? input : outputs[index - 1], outputs: outputs)
            builder.weightBudget = max(0, min(Limits.weights, weightLimit) - weightCount)
            let built = try builder.build()
            weightCount += built.layer?.parameterCount ?? 0
            guard weightCount <= min(Limits.weights, weightLimit) else {
                throw DarknetError(file: file, line: section.line, "[\(section.type)] (layer \(index)): the network has more than its limit of \(min(Limits.weights, weightLimit)) weights up to this layer")
            }
            if let head = built.head {
                heads.append(head)
                headInputs.append(builder.previous)
            }
            func image3(_ s: [Int]) -> [Int] { s.count == 3 ? s : [1, 1, s.reduce(1, *)] }
            infos.append(DarknetLayerInfo(index: index, type: section.type, inputShape: image3(builder.previous.shape),
                                          outputShape: image3(built.output.shape), bflops: built.bflops, line: built.line,
                                          layer: built.layer))
            outputs.append(built.output)
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
