import Foundation
import OcelliDetection
import OcelliTensor
import OcelliVision

// From images to detections and back to pictures: what `ocelli detect` and `ocelli map` do with
// a network, for library users.
extension DarknetNetwork {
    /// The network input for an image: RGB in [0, 1], [height, width, 3], letterboxed (Darknet's
    /// `letterbox_image`) or resized (OpenCV's bilinear `blobFromImage`).
    public func input(for image: Image, fit: InputFit) -> Tensor {
        let rgb = image.channels == 3 ? image : image.rgb()
        switch fit {
        case .letterbox:
            return Letterbox(sourceWidth: rgb.width, sourceHeight: rgb.height, width: width, height: height).apply(to: rgb)
        case .resize:
            return rgb.resized(width: width, height: height, interpolation: .bilinear).tensor()
        }
    }

    /// Runs the network over a data set's images, `batch` at a time, for evaluation: every class
    /// probability above `threshold` after Darknet's per-class NMS becomes a detection (the
    /// network's class j is the data set's class j; image ids are the data set's). YOLOv1 nets
    /// always take the plain resize they were trained on.
    public func detect(images: [AnnotatedImage], threshold: Float = 0.005, nmsThreshold: Float = 0.45,
                       fit: InputFit = .letterbox, batch: Int = 1) throws -> [ScoredDetection] {
        guard batch >= 1 else { throw DarknetError(file: config.file, "detect: the batch must be at least 1 image, got \(batch)") }
        let fit = usesPlainResize ? .resize : fit
        var out: [ScoredDetection] = []
        var start = 0
        while start < images.count {
            let chunk = Array(images[start..<Swift.min(start + batch, images.count)])
            start += chunk.count
            let decoded = try chunk.map { try Image(contentsOf: $0.file.path) }
            let outputs = forward(Tensor.stack(decoded.map { input(for: $0, fit: fit) }, axis: 0))
            for (b, (entry, image)) in zip(chunk, decoded).enumerated() {
                for d in detections(outputs: outputs, batchIndex: b, imageWidth: image.width, imageHeight: image.height,
                                    fit: fit, threshold: threshold, nmsThreshold: nmsThreshold) {
                    out.append(ScoredDetection(imageID: entry.id, classIndex: d.classIndex, score: Double(d.score),
                                               xmin: Double(d.x1), ymin: Double(d.y1), xmax: Double(d.x2), ymax: Double(d.y2)))
                }
            }
        }
        return out
    }
}

extension Image {
    /// The image with Darknet's boxes drawn on it: one box per distinct box with all its labels
    /// ("dog, person"), coloured by class as Darknet does; `classes` is the network's class count.
    public func drawingDetections(_ detections: [Detection], classes: Int) -> Image {
        var canvas = channels == 3 ? self : rgb()
        var groups: [(Detection, [String])] = []
        for d in detections {
            if let i = groups.firstIndex(where: { $0.0.x1 == d.x1 && $0.0.y1 == d.y1 && $0.0.x2 == d.x2 && $0.0.y2 == d.y2 }) {
                groups[i].1.append(d.className)
            } else {
                groups.append((d, [d.className]))
            }
        }
        // A box with a non-finite corner (NaN weights) cannot be drawn; it is left out.
        for (d, labels) in groups where [d.x1, d.y1, d.x2, d.y2].allSatisfy(\.isFinite) {
            let right = Swift.min(Int(d.x2), canvas.width - 1), bottom = Swift.min(Int(d.y2), canvas.height - 1)
            canvas.drawDetection(left: Int(d.x1), top: Int(d.y1), right: right, bottom: bottom,
                                 label: labels.joined(separator: ", "), color: Color(classIndex: d.classIndex, classCount: Swift.max(classes, 1)))
        }
        return canvas
    }
}
