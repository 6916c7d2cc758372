import Foundation
import OcelliNN
import OcelliTensor
import OcelliVision

/// An SSD model with its default boxes and post-processing: detections on images of any size
/// (letterboxed to the model's input, boxes mapped back to the image's pixels) and the
/// validation mAP@0.5 of a data set.
public struct SSDDetector {
    public let model: Model
    public let defaultBoxes: SSDDefaultBoxes
    public var postProcessing: SSDPostProcessing

    public init(model: Model, defaultBoxes: SSDDefaultBoxes, postProcessing: SSDPostProcessing = SSDPostProcessing()) throws {
        guard model.outputs.count == 2, model.outputs[0].shape == [defaultBoxes.count, 4], model.outputs[1].shape.count == 2,
              model.outputs[1].shape[0] == defaultBoxes.count, model.outputs[1].shape[1] >= 2 else {
            throw DetectionError("\(model.name): an SSD model has two outputs, offsets [\(defaultBoxes.count), 4] and confidences [\(defaultBoxes.count), classes + 1]; this one has \(model.outputs.map(\.shape))")
        }
        guard let s = model.inputs.first?.shape, s == [defaultBoxes.imageSize, defaultBoxes.imageSize, 3] else {
            throw DetectionError("\(model.name): the input is \(model.inputs.first?.shape ?? []), the default boxes are laid out for \(defaultBoxes.imageSize)x\(defaultBoxes.imageSize)x3")
        }
        self.model = model; self.defaultBoxes = defaultBoxes; self.postProcessing = postProcessing
    }

    /// A model folder written by `Model.save` (`ocelli train --arch …` writes them) with the
    /// default boxes of its architecture (found by the model's name: ssd300, ssd_digits).
    /// A folder saved while training loads compiled (the MultiBox loss, the optimizer and its
    /// state): `fit` continues it.
    public static func load(from folder: String) throws -> SSDDetector {
        MultiBoxLoss.register()
        let model = try Model.load(from: folder)
        let size = model.inputs.first?.shape.first ?? 0
        let boxes: SSDDefaultBoxes
        switch model.name {
        case "ssd300": boxes = SSDDefaultBoxes.ssd300(.voc)
        case "ssd_digits": boxes = try SSDModels.digitsDefaultBoxes(inputSize: size)
        default:
            throw DetectionError("\(folder): the model '\(model.name)' is not an SSD whose default boxes Ocelli knows (\(SSDModels.names.joined(separator: ", ")))")
        }
        return try SSDDetector(model: model, defaultBoxes: boxes)
    }

    /// Object classes (without the background).
    public var classes: Int { model.outputs[1].shape[1] - 1 }

    /// The metadata key under which a model folder keeps its class names, one per line.
    public static let classNamesKey = "class_names"

    /// The class names saved with the model (`ocelli train --arch` records its data set's), or
    /// nil when the model has none or their count is not `classes`.
    public var classNames: [String]? {
        get {
            guard let text = model.metadata[Self.classNamesKey] else { return nil }
            let names = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            return names.count == classes ? names : nil
        }
        nonmutating set { model.metadata[Self.classNamesKey] = newValue?.joined(separator: "\n") }
    }

    /// Detections on a batch of network inputs [N, size, size, 3] (values in [0, 1]), boxes as
    /// fractions of the input.
    public func detect(inputs: Tensor) -> [[SSDPostProcessing.Detection]] {
        let outs = withoutGradients { () -> [Tensor] in
            var ctx = ForwardContext(training: false)
            return model.forward([inputs], context: &ctx)
        }
        return postProcessing.detections(locations: outs[0], confidences: outs[1], defaultBoxes: defaultBoxes)
    }

    /// Detections on images of any size (letterboxed to the input as Darknet does), boxes in
    /// each image's pixels.
    public func detect(images: [Image]) -> [[SSDPostProcessing.Detection]] {
        guard !images.isEmpty else { return [] }
        let size = defaultBoxes.imageSize
        let fits = images.map { Letterbox(sourceWidth: $0.width, sourceHeight: $0.height, width: size, height: size) }
        let inputs = zip(images, fits).map { image, fit in fit.apply(to: image.channels == 3 ? image : image.rgb()) }
        let found = detect(inputs: Tensor.stack(inputs, axis: 0))
        return zip(found, zip(images, fits)).map { dets, pair in
            let (image, fit) = pair
            return dets.map { d in Self.toImage(d, image: (image.width, image.height), fit: fit, size: size) }
        }
    }

    /// A detection's box from fractions of the letterboxed input to the image's pixels.
    static func toImage(_ d: SSDPostProcessing.Detection, image: (width: Int, height: Int), fit: Letterbox, size: Int) -> SSDPostProcessing.Detection {
        let sx = Double(fit.resizedWidth) / Double(max(1, image.width)), sy = Double(fit.resizedHeight) / Double(max(1, image.height))
        func x(_ v: Double) -> Double { min(max((v * Double(size) - Double(fit.offsetX)) / sx, 0), Double(image.width)) }
        func y(_ v: Double) -> Double { min(max((v * Double(size) - Double(fit.offsetY)) / sy, 0), Double(image.height)) }
        var out = d
        out.box = BoundingBox(xmin: x(d.box.xmin), ymin: y(d.box.ymin), xmax: x(d.box.xmax), ymax: y(d.box.ymax))
        return out
    }

    /// Detections on every image of a data set, in the images' pixels (letterboxed as Darknet).
    public func detect(_ dataset: DetectionDataset, batch: Int = 8) throws -> [ScoredDetection] {
        let size = defaultBoxes.imageSize
        let loader = DetectionLoader(dataset: dataset, batchSize: batch, inputSize: size, resize: .letterbox, shuffle: false,
                                     prefetch: 1, skipBadSamples: true)
        var out: [ScoredDetection] = []
        for k in 0..<loader.batchesPerEpoch {
            guard let b = try loader.batch(k, epoch: 0) else { continue }
            for (row, found) in detect(inputs: b.images).enumerated() {
                let image = dataset.images[b.indices[row]]
                let fit = Letterbox(sourceWidth: image.width, sourceHeight: image.height, width: size, height: size)
                for d in found {
                    let m = Self.toImage(d, image: (image.width, image.height), fit: fit, size: size)
                    out.append(ScoredDetection(imageID: image.id, classIndex: m.classIndex, score: m.score, box: m.box))
                }
            }
        }
        return out
    }

    /// Pascal VOC mAP@0.5 (all points) of the detections on `dataset`.
    public func validationMAP50(_ dataset: DetectionDataset, batch: Int = 8) throws -> Double {
        let found = try detect(dataset, batch: batch)
        return try MeanAveragePrecision.evaluate(detections: found, images: dataset.images, classNames: dataset.classNames,
                                                 metric: .voc, iouThreshold: 0.5, scoreThreshold: 0).map
    }
}

/// Puts a detector's validation mAP@0.5 into `fit`'s logs (as `name`, default "val_map50") at
/// the end of every `every`-th epoch, so that the callbacks after it (EarlyStopping,
/// ModelCheckpoint, CSVLogger, TensorBoard) can monitor it. List it before them: `fit` calls
/// callbacks in order. `SSDValidationMAP` and OcelliDarknet's `DetectionMAP` are this with their
/// detector's evaluation.
open class ValidationMAP: Callback {
    public let name: String, every: Int
    /// (epoch, mAP) of each evaluation.
    public private(set) var history: [(epoch: Int, map: Double)] = []
    private let evaluate: () throws -> Double

    public init(name: String = "val_map50", every: Int = 1, evaluate: @escaping () throws -> Double) {
        self.name = name; self.every = Swift.max(1, every); self.evaluate = evaluate
    }

    open override func onTrainBegin() { history = [] }

    open override func onEpochEnd(_ epoch: Int, logs: inout [String: Float]) {
        guard (epoch + 1) % every == 0 else { return }
        do {
            let m = try evaluate()
            history.append((epoch, m))
            logs[name] = Float(m)
        } catch {
            StandardError.write("error: \(type(of: self)) could not evaluate epoch \(epoch + 1): \(error)\n")
        }
    }
}

/// An SSD's validation mAP@0.5 in `fit`'s logs (see `ValidationMAP`).
public final class SSDValidationMAP: ValidationMAP {
    public let detector: SSDDetector, dataset: DetectionDataset

    public init(detector: SSDDetector, dataset: DetectionDataset, name: String = "val_map50", every: Int = 1) {
        self.detector = detector; self.dataset = dataset
        super.init(name: name, every: every) { try detector.validationMAP50(dataset) }
    }
}
