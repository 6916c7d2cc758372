import Foundation
import OcelliDetection
import OcelliTensor
import OcelliNN
import OcelliVision

extension DarknetNetwork {
    /// Pascal VOC mAP@0.5 (all-points interpolation) of this network's detections on `dataset`:
    /// letterboxed inputs, threshold 0.005 and NMS 0.45 (Darknet's `detector map`).
    public func validationMAP50(_ dataset: DetectionDataset, batch: Int = 4) throws -> Double {
        let detections = try detect(images: dataset.images, threshold: 0.005, nmsThreshold: 0.45, fit: .letterbox, batch: batch)
        let result = try MeanAveragePrecision.evaluate(detections: detections, images: dataset.images, classNames: dataset.classNames,
                                                       metric: .voc, iouThreshold: 0.5)
        return result.map
    }
}

/// Puts the validation mAP@0.5 of a Darknet network into `fit`'s logs (as `name`, default
/// "val_map50") at the end of every `every`-th epoch, so that the callbacks after it —
/// EarlyStopping, ModelCheckpoint, CSVLogger, TensorBoard — can monitor it:
///
///     let map = DetectionMAP(network: net, dataset: val)
///     try net.model.fit(loader, epochs: 50, callbacks: [
///         map, EarlyStopping(monitor: "val_map50", patience: 5),
///         ModelCheckpoint(path: "best.safetensors", monitor: "val_map50", saveBestOnly: true)])
///
/// List it before the callbacks that read it: `fit` calls them in order.
public final class DetectionMAP: ValidationMAP {
    public let network: DarknetNetwork, dataset: DetectionDataset

    public init(network: DarknetNetwork, dataset: DetectionDataset, name: String = "val_map50", every: Int = 1) {
        self.network = network; self.dataset = dataset
        super.init(name: name, every: every) { try network.validationMAP50(dataset) }
    }
}
