import OcelliDetection
import OcelliNN

extension DarknetNetwork {
    /// Darknet's training loss for this network's heads, with the options of their cfg sections
    /// (`[yolo]`: `ignore_thresh`, `truth_thresh`, `max`; `[region]`: `thresh`, `coord_scale`,
    /// `object_scale`, `noobject_scale`, `class_scale`, `rescore`, `bias_match`, `softmax`), each
    /// checked; `seen` starts at the weights file's.
    public func yoloLoss(reduction: YoloLoss.Reduction = .batchMean) throws -> YoloLoss {
        guard !heads.isEmpty else {
            throw DarknetError(file: config.file, "the network has no [yolo] or [region] layer to train")
        }
        let parts = try heads.map { head -> YoloLoss.Head in
            let section = config.layers[head.layerIndex]
            func err(_ message: String) -> DarknetError {
                DarknetError(file: config.file, line: section.line, "[\(section.type)] (layer \(head.layerIndex)): \(message)")
            }
            func unit(_ key: String, _ d: Float) throws -> Float {
                let v = try section.float(key, d)
                guard v.isFinite, v >= 0 else { throw err("\(key)=\(v) must be a number ≥ 0") }
                return v
            }
            func positiveAnchors(_ anchors: [(Float, Float)]) throws {
                for (w, h) in anchors where !(w > 0 && h > 0 && w.isFinite && h.isFinite) {
                    throw err("anchors must be positive to train with, got \(w),\(h)")
                }
            }
            switch head {
            case .yolo(let y):
                try positiveAnchors(y.anchors)
                let maxBoxes = try section.int("max", 90)
                guard (1...10_000).contains(maxBoxes) else { throw err("max=\(maxBoxes) must be between 1 and 10000") }
                return .yolo(YoloLayerLoss(anchors: y.anchors, mask: y.mask, classes: y.classes,
                                           ignoreThreshold: try unit("ignore_thresh", 0.5), truthThreshold: try unit("truth_thresh", 1),
                                           maxBoxes: maxBoxes))
            case .region(let r):
                try positiveAnchors(r.anchors)
                guard !r.background else { throw err("background=1 is not supported for training") }
                return .region(RegionLayerLoss(anchors: r.anchors, classes: r.classes, softmax: r.softmax,
                                               threshold: try unit("thresh", 0.5), coordScale: try unit("coord_scale", 1),
                                               objectScale: try unit("object_scale", 1), noObjectScale: try unit("noobject_scale", 1),
                                               classScale: try unit("class_scale", 1), rescore: try section.int("rescore", 0) != 0,
                                               biasMatch: try section.int("bias_match", 0) != 0))
            case .detection:
                throw err("training a YOLOv1 [detection] layer is not supported")
            }
        }
        return YoloLoss(heads: parts, reduction: reduction, seen: Int(clamping: seen))
    }
}
