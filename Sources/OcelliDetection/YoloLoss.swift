import OcelliNN
import OcelliTensor
import OcelliVision

/// Darknet's YOLO training loss over a network's heads, as a `Loss` for `compile`/`fit`: the
/// model's outputs are the heads' logits in order ([N, H, W, anchors·(5 + classes)] each, as
/// `DarknetNetwork.model` gives them), the targets a `DetectionBatch` (the `DetectionLoader`'s).
///
/// Each head is a `[yolo]` (YOLOv3) or `[region]` (YOLOv2) loss with Darknet's exact deltas (see
/// YoloLayerLosses.swift for the sign convention). `reduction: .batchMean` divides the sum by the
/// batch size, which with SGD is Darknet's update (Darknet sums the deltas over the batch and
/// divides the learning rate by it); `.sum` is Darknet's own sum.
///
/// ```swift
/// let network = try DarknetNetwork(cfg: "digits.cfg")
/// network.model.compile(optimizer: .sgd(learningRate: 1e-3, momentum: 0.9), loss: try network.yoloLoss())
/// try network.model.fit(loader, epochs: 10)
/// print(loss.lastStatistics)   // Darknet's per-head line: Avg IOU, Class, Obj, No Obj, .5R, .75R, count
/// ```
public final class YoloLoss: Loss {
    public typealias Target = DetectionBatch

    /// One head's loss.
    public enum Head: Sendable {
        case yolo(YoloLayerLoss)
        case region(RegionLayerLoss)
    }

    public enum Reduction: String, Sendable {
        /// The sum over the batch divided by the batch size (the default).
        case batchMean
        /// Darknet's sum over the batch.
        case sum
    }

    public let heads: [Head]
    public var reduction: Reduction
    /// Images trained on so far (Darknet's `seen`); training steps add their batch before the
    /// loss is computed. `[region]` heads pull every prediction toward its anchor while it is
    /// below 12,800.
    public var seen: Int
    /// Each head's statistics for the last batch, in head order.
    public private(set) var lastStatistics: [YoloLossStatistics] = []

    public init(heads: [Head], reduction: Reduction = .batchMean, seen: Int = 0) {
        self.heads = heads; self.reduction = reduction; self.seen = seen
    }

    public var name: String { "yolo_loss" }

    /// The truths of a detection batch as Darknet reads them: centre and size relative to the
    /// batch's input size; boxes that are empty or not finite are left out.
    public static func truths(_ batch: DetectionBatch) -> [[TruthBox]] {
        let (w, h) = (Float(batch.width), Float(batch.height))
        return batch.objects.map { objects in
            objects.compactMap { o in
                let t = TruthBox(x: Float(o.xmin + o.xmax) / 2 / w, y: Float(o.ymin + o.ymax) / 2 / h,
                                 w: Float(o.xmax - o.xmin) / w, h: Float(o.ymax - o.ymin) / h, classIndex: o.classIndex)
                guard t.x.isFinite, t.y.isFinite, t.w > 0, t.h > 0, t.w.isFinite, t.h.isFinite else { return nil }
                return t
            }
        }
    }

    public func batchLoss(target: DetectionBatch, outputs: ModelOutputs) throws -> Tensor {
        guard outputs.outputs.count == heads.count else {
            throw TrainingError("yolo loss: the model has \(outputs.outputs.count) outputs for \(heads.count) heads")
        }
        let truths = Self.truths(target)
        if outputs.training { seen += target.count }
        var total: Tensor?
        var statistics: [YoloLossStatistics] = []
        for (k, (head, z)) in zip(heads, outputs.outputs).enumerated() {
            guard z.rank == 4, z.shape[0] == truths.count else {
                throw TrainingError("yolo loss: output \(k) has shape \(z.shape); expected [\(truths.count), height, width, channels]")
            }
            let (n, gh, gw, channels) = (z.shape[0], z.shape[1], z.shape[2], z.shape[3])
            let r: YoloTargets, anchors: Int, classes: Int
            switch head {
            case .yolo(let l):
                (anchors, classes) = (l.mask.count, l.classes)
                guard channels == anchors * (5 + classes) else {
                    throw TrainingError("yolo loss: output \(k) has \(channels) channels; \(anchors) anchors × (5 + \(classes) classes) need \(anchors * (5 + classes))")
                }
                try Self.checkClasses(truths, classes)
                r = l.targets(logits: z.scalars, batch: n, height: gh, width: gw, truths: truths,
                              inputWidth: target.width, inputHeight: target.height)
            case .region(let l):
                (anchors, classes) = (l.anchors.count, l.classes)
                guard channels == anchors * (5 + classes) else {
                    throw TrainingError("yolo loss: output \(k) has \(channels) channels; \(anchors) anchors × (5 + \(classes) classes) need \(anchors * (5 + classes))")
                }
                try Self.checkClasses(truths, classes)
                r = l.targets(logits: z.scalars, batch: n, height: gh, width: gw, truths: truths, seen: seen)
            }
            statistics.append(r.statistics)
            let part = r.loss(z, anchors: anchors, entries: 5 + classes, divisor: reduction == .sum ? 1 : Float(Swift.max(1, n)))
            total = total.map { $0 + part } ?? part
        }
        lastStatistics = statistics
        return total ?? Tensor(0)
    }

    private static func checkClasses(_ truths: [[TruthBox]], _ classes: Int) throws {
        for t in truths.joined() where t.classIndex < 0 || t.classIndex >= classes {
            throw TrainingError("yolo loss: a box has class \(t.classIndex); the head predicts classes 0..<\(classes)")
        }
    }
}
