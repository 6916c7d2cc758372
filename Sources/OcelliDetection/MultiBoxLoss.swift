import Foundation
import OcelliNN
import OcelliTensor
import OcelliVision

/// SSD's MultiBox loss (Liu et al. 2016; torchvision's `SSD.compute_loss`):
///
///     L = (L_conf + α·L_loc) / N
///
/// N the number of matched default boxes in the batch (at least 1); L_loc the smooth-L1 (β = 1)
/// between predicted and encoded offsets over matched boxes; L_conf the softmax cross-entropy
/// over matched boxes (their truth's class) and the hard negatives: per image, the
/// `negativesPerPositive`·(matches) unmatched boxes of largest background cross-entropy.
///
/// Classes: 0 is the background, a truth of data-set class c is class c + 1, so the
/// confidences have `classes + 1` channels. Outputs: two model outputs (offsets [N, D, 4],
/// confidence logits [N, D, classes + 1]) or one [N, D, 4 + classes + 1].
public final class MultiBoxLoss: Loss {
    public typealias Target = DetectionBatch
    public let defaultBoxes: SSDDefaultBoxes
    public let classes: Int
    public var coder = SSDBoxCoder()
    public var matcher = SSDMatcher()
    public var negativesPerPositive = 3
    /// α, the weight of the location term.
    public var locationWeight: Float = 1
    public var name: String { "multibox" }
    /// The last batch's terms, each divided by N: (location, confidence, N).
    public private(set) var lastTerms: (location: Float, confidence: Float, matched: Int) = (0, 0, 0)

    private let centers: Tensor, corners: Tensor
    /// The default boxes' centre form in Double (the targets are computed in Double).
    private let centersDouble: [Double]

    public init(defaultBoxes: SSDDefaultBoxes, classes: Int) {
        self.defaultBoxes = defaultBoxes
        self.classes = classes
        centersDouble = defaultBoxes.centerFormDouble()
        centers = Tensor(shape: [defaultBoxes.count, 4], scalars: centersDouble.map { Float($0) })
        corners = SSDBoxCoder.corners(fromCenters: centers)
    }

    /// One truth: corners as fractions of the image, and its SSD class (1 … classes).
    public struct Truth: Equatable, Sendable {
        public var box: BoundingBox
        public var label: Int
        public init(box: BoundingBox, label: Int) { self.box = box; self.label = label }
    }

    /// A batch's truths: its boxes over the input size, data-set class c as label c + 1; boxes
    /// without area or with non-finite corners are left out.
    public static func truths(_ batch: DetectionBatch) -> [[Truth]] {
        let w = Double(batch.width), h = Double(batch.height)
        return batch.objects.map { objects in
            objects.compactMap { o in
                let b = BoundingBox(xmin: o.xmin / w, ymin: o.ymin / h, xmax: o.xmax / w, ymax: o.ymax / h)
                guard [b.xmin, b.ymin, b.xmax, b.ymax].allSatisfy(\.isFinite), b.width > 0, b.height > 0 else { return nil }
                return Truth(box: b, label: o.classIndex + 1)
            }
        }
    }

    /// What each default box is trained toward, per image: the matched truth (−1: none), the
    /// class (0: background) and the encoded offsets [D, 4] (zero where unmatched). The IoU
    /// matrix and the matching run on tensors; the offsets, constants of the loss, are encoded
    /// in Double (as `SSDBoxCoder.encode`) so that they are exact to Float's rounding.
    public func targets(_ truths: [Truth]) -> (matches: [Int], labels: [Int], offsets: Tensor) {
        let d = defaultBoxes.count
        let t = Tensor(shape: [truths.count, 4], scalars: truths.flatMap { [Float($0.box.xmin), Float($0.box.ymin), Float($0.box.xmax), Float($0.box.ymax)] })
        let matches = matcher.match(truths: t, defaults: corners)
        let labels = matches.map { $0 < 0 ? 0 : truths[$0].label }
        let sxy = Double(coder.centerVariance), swh = Double(coder.sizeVariance)
        var offsets = [Float](repeating: 0, count: d * 4)
        for (i, m) in matches.enumerated() where m >= 0 {
            let b = truths[m].box
            let gw = b.xmax - b.xmin, gh = b.ymax - b.ymin, gx = b.xmin + 0.5 * gw, gy = b.ymin + 0.5 * gh
            let dx = centersDouble[i * 4], dy = centersDouble[i * 4 + 1], dw = centersDouble[i * 4 + 2], dh = centersDouble[i * 4 + 3]
            offsets[i * 4] = Float((gx - dx) / dw / sxy)
            offsets[i * 4 + 1] = Float((gy - dy) / dh / sxy)
            offsets[i * 4 + 2] = Float(Foundation.log(gw / dw) / swh)
            offsets[i * 4 + 3] = Float(Foundation.log(gh / dh) / swh)
        }
        return (matches, labels, Tensor(shape: [d, 4], scalars: offsets))
    }

    /// The two terms, each divided by N, recorded on the tape (for `compile`/`fit` and checks).
    /// - Parameters: locations [N, D, 4]; confidences [N, D, classes + 1] (logits); truths per image.
    public func terms(locations: Tensor, confidences: Tensor, truths: [[Truth]]) throws -> (location: Tensor, confidence: Tensor, matched: Int) {
        let n = truths.count, d = centers.shape[0], k = classes + 1
        guard locations.shape == [n, d, 4] else {
            throw TrainingError("multibox loss: the offsets have shape \(locations.shape); expected [\(n), \(d), 4] (\(d) default boxes)")
        }
        guard confidences.shape == [n, d, k] else {
            throw TrainingError("multibox loss: the confidences have shape \(confidences.shape); expected [\(n), \(d), \(k)] (\(classes) classes and the background)")
        }
        for (i, image) in truths.enumerated() {
            for t in image where !(1...classes).contains(t.label) {
                throw TrainingError("multibox loss: image \(i) has a truth of class \(t.label - 1); the model has \(classes) classes")
            }
        }
        var labels = [Float](), positive = [Float](), offsets = [Float]()
        labels.reserveCapacity(n * d); positive.reserveCapacity(n * d); offsets.reserveCapacity(n * d * 4)
        for image in truths {
            let r = targets(image)
            labels += r.labels.map(Float.init)
            positive += r.matches.map { $0 >= 0 ? 1 : 0 }
            offsets += r.offsets.scalars
        }
        let matched = Int(positive.reduce(0, +))
        // Cross-entropy of every default box against its class (background for the unmatched).
        let ce = Tensor.softmaxCrossEntropy(logits: confidences, classIndices: Tensor(shape: [n, d], scalars: labels))
        // Hard negatives: per image, the unmatched boxes of largest loss, 3 per match.
        var chosen = positive
        let values = ce.scalars
        for i in 0..<n {
            let row = i * d
            let positives = Int(positive[row..<(row + d)].reduce(0, +))
            let negatives = (0..<d).filter { positive[row + $0] == 0 }
            let take = Swift.min(negatives.count, negativesPerPositive * positives)
            guard take > 0 else { continue }
            // Largest loss first; ties in index order.
            let ranked = negatives.sorted { values[row + $0] > values[row + $1] || (values[row + $0] == values[row + $1] && $0 < $1) }
            for j in ranked.prefix(take) { chosen[row + j] = 1 }
        }
        let scale = 1 / Float(Swift.max(1, matched))
        let confidence = (ce * Tensor(shape: [n, d], scalars: chosen)).sum() * scale
        let diff = locations - Tensor(shape: [n, d, 4], scalars: offsets)
        let a = diff.abs()
        let smooth = select(a .< 1, diff.square() * 0.5, a - 0.5)
        let location = (smooth * Tensor(shape: [n, d, 1], scalars: positive)).sum() * scale
        return (location, confidence, matched)
    }

    /// The model's outputs as (offsets, confidences).
    func split(_ outputs: ModelOutputs) throws -> (Tensor, Tensor) {
        switch outputs.outputs.count {
        case 2: return (outputs.outputs[0], outputs.outputs[1])
        case 1:
            let z = outputs.outputs[0]
            guard z.rank == 3, z.shape[2] == 4 + classes + 1 else {
                throw TrainingError("multibox loss: the output has shape \(z.shape); expected [N, D, \(4 + classes + 1)] (4 offsets, \(classes) classes and the background)")
            }
            let parts = z.split(sizes: [4, classes + 1], axis: 2)
            return (parts[0], parts[1])
        default:
            throw TrainingError("multibox loss: the model has \(outputs.outputs.count) outputs; expected the offsets and the confidences (2), or both in one")
        }
    }

    public func batchLoss(target: DetectionBatch, outputs: ModelOutputs) throws -> Tensor {
        let (loc, conf) = try split(outputs)
        let t = try terms(locations: loc, confidences: conf, truths: Self.truths(target))
        lastTerms = (t.location.scalar, t.confidence.scalar, t.matched)
        return t.confidence + t.location * locationWeight
    }
}

/// SSD's inference: offsets decoded against the default boxes, softmax over the classes, per
/// class the boxes above `scoreThreshold`, greedy NMS at `nmsThreshold` within each class, and
/// the `topK` highest of all classes (the paper's 0.01, 0.45, 200).
public struct SSDPostProcessing: Equatable, Sendable {
    public var scoreThreshold: Double = 0.01
    public var nmsThreshold: Double = 0.45
    public var topK: Int = 200
    /// Boxes of a class kept before NMS (torchvision's `topk_candidates`; nil: all above the threshold).
    public var candidatesPerClass: Int? = 400
    public var coder = SSDBoxCoder()

    public init(scoreThreshold: Double = 0.01, nmsThreshold: Double = 0.45, topK: Int = 200, candidatesPerClass: Int? = 400) {
        self.scoreThreshold = scoreThreshold; self.nmsThreshold = nmsThreshold; self.topK = topK
        self.candidatesPerClass = candidatesPerClass
    }

    /// One detection: the box as fractions of the image, the data-set class (SSD class − 1), the score.
    public struct Detection: Equatable, Sendable {
        public var box: BoundingBox
        public var classIndex: Int
        public var score: Double
    }

    /// Detections of each image of a batch: offsets [N, D, 4] and confidence logits [N, D, C + 1].
    public func detections(locations: Tensor, confidences: Tensor, defaultBoxes: SSDDefaultBoxes) -> [[Detection]] {
        let centers = defaultBoxes.centerForm()
        let n = locations.shape[0], d = centers.shape[0], k = confidences.shape[2]
        return withoutGradients {
            let boxes = SSDBoxCoder.corners(fromCenters: coder.decode(locations, defaults: centers.reshaped([1, d, 4]))).scalars
            let probabilities = confidences.softmax().scalars
            return (0..<n).map { i in
                var candidates: [BoundingBox] = [], scores: [Double] = [], labels: [Int] = []
                for c in 1..<k {
                    var mine = (0..<d).filter { Double(probabilities[(i * d + $0) * k + c]) > scoreThreshold }
                    if let cap = candidatesPerClass, mine.count > cap {
                        mine = Array(mine.sorted { probabilities[(i * d + $0) * k + c] > probabilities[(i * d + $1) * k + c] }.prefix(cap))
                    }
                    for j in mine {
                        let b = (i * d + j) * 4
                        candidates.append(BoundingBox(xmin: Double(boxes[b]), ymin: Double(boxes[b + 1]), xmax: Double(boxes[b + 2]), ymax: Double(boxes[b + 3])))
                        scores.append(Double(probabilities[(i * d + j) * k + c]))
                        labels.append(c - 1)
                    }
                }
                let kept = NonMaximumSuppression.batched(boxes: candidates, scores: scores, classes: labels, iouThreshold: nmsThreshold)
                return kept.prefix(topK).map { Detection(box: candidates[$0], classIndex: labels[$0], score: scores[$0]) }
            }
        }
    }
}

extension MultiBoxLoss {
    /// What `Model.save` writes: the default-box layout and every option, so that a saved SSD
    /// loads compiled (`Model.load` after `MultiBoxLoss.register()`) and training continues.
    public var savedConfig: SavedObject? {
        let b = defaultBoxes
        var config: [String: JSONValue] = [
            "classes": .int(classes), "image_size": .int(b.imageSize), "feature_maps": .ints(b.featureMaps),
            "scales": .array(b.scales.map { .number($0) }),
            "aspect_ratios": .array(b.aspectRatios.map { .array($0.map { .number($0) }) }), "clip": .bool(b.clip),
            "center_variance": .number(Double(coder.centerVariance)), "size_variance": .number(Double(coder.sizeVariance)),
            "match_threshold": .number(Double(matcher.threshold)), "negatives_per_positive": .int(negativesPerPositive),
            "location_weight": .number(Double(locationWeight)),
        ]
        if let steps = b.steps { config["steps"] = .array(steps.map { .number($0) }) }
        return SavedObject(className: "MultiBoxLoss", config: config)
    }

    /// Rebuilds the loss from `savedConfig`; every value checked.
    public convenience init(saved: SavedObject) throws {
        let c = saved.config
        func fail(_ key: String, _ expected: String) -> SavedObjectError {
            SavedObjectError("loss 'MultiBoxLoss': '\(key)' must be \(expected), got \(c[key].map { "\($0)" } ?? "nothing")")
        }
        func numbers(_ v: JSONValue?) -> [Double]? {
            guard case .array(let a)? = v else { return nil }
            let d = a.compactMap(\.double)
            return d.count == a.count ? d : nil
        }
        func number(_ key: String, in range: ClosedRange<Double>) throws -> Double {
            guard let d = c[key]?.double, d.isFinite, range.contains(d) else { throw fail(key, "a number in \(range)") }
            return d
        }
        guard let classes = c["classes"]?.int, (1...100_000).contains(classes) else { throw fail("classes", "an integer from 1 to 100000") }
        guard let size = c["image_size"]?.int else { throw fail("image_size", "an integer") }
        guard let maps = c["feature_maps"]?.intArray else { throw fail("feature_maps", "a list of integers") }
        guard let scales = numbers(c["scales"]) else { throw fail("scales", "a list of numbers") }
        guard case .array(let ratioLists)? = c["aspect_ratios"] else { throw fail("aspect_ratios", "a list of lists of numbers") }
        let ratios = ratioLists.compactMap { numbers($0) }
        guard ratios.count == ratioLists.count else { throw fail("aspect_ratios", "a list of lists of numbers") }
        var steps: [Double]?
        if let s = c["steps"], s != .null {
            guard let v = numbers(s) else { throw fail("steps", "a list of numbers") }
            steps = v
        }
        guard let clip = c["clip"]?.bool else { throw fail("clip", "true or false") }
        let boxes: SSDDefaultBoxes
        do { boxes = try SSDDefaultBoxes(imageSize: size, featureMaps: maps, scales: scales, aspectRatios: ratios, steps: steps, clip: clip) } catch {
            throw SavedObjectError("loss 'MultiBoxLoss': \(error)")
        }
        self.init(defaultBoxes: boxes, classes: classes)
        coder = SSDBoxCoder(centerVariance: Float(try number("center_variance", in: 1e-6...100)),
                            sizeVariance: Float(try number("size_variance", in: 1e-6...100)))
        matcher = SSDMatcher(threshold: Float(try number("match_threshold", in: 0...1)))
        guard let negatives = c["negatives_per_positive"]?.int, (0...10_000).contains(negatives) else {
            throw fail("negatives_per_positive", "an integer from 0 to 10000")
        }
        negativesPerPositive = negatives
        locationWeight = Float(try number("location_weight", in: 0...1e6))
    }

    /// Makes `Model.load` rebuild a saved MultiBox loss (so an SSD folder loads compiled, with its
    /// optimizer's state). Safe to call any number of times, from any thread.
    public static func register() {
        LossRegistry.register("MultiBoxLoss") { try MultiBoxLoss(saved: $0) }
    }
}
