import Foundation
import Testing
import OcelliDetection
import OcelliNN
import OcelliTensor
import OcelliTestSupport
import OcelliVision

/// SSD's default boxes, matching, encoding and MultiBox loss against torchvision's own code
/// (Fixtures/ssd_reference.json, made by Scripts/make_ssd_fixtures.py).
@Suite struct SSDTests {
    struct Reference: Decodable {
        struct Sampled: Decodable { var count: Int; var every: Int; var boxes: [[Double]] }
        struct Image: Decodable {
            var truths: [[Double]]; var labels: [Int]; var matches: [Int]; var classes: [Int]; var offsets: [[Double]]
        }
        struct LossCase: Decodable {
            var locations: [[[Double]]]; var confidences: [[[Double]]]; var classes: Int
            var bbox_regression: Double; var classification: Double
        }
        struct Small: Decodable {
            var image: Int; var maps: [Int]; var scales: [Double]; var ratios: [[Double]]; var steps: [Double]
            var boxes: [[Double]]; var images: [Image]; var loss: LossCase
        }
        var reference: String
        var ssd300: [String: Sampled]
        var small: Small
    }

    static let reference: Reference = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/ssd_reference.json")
        do { return try JSONDecoder().decode(Reference.self, from: Data(contentsOf: url)) } catch {
            fatalError("cannot read \(url.path): \(error) (Scripts/make_ssd_fixtures.py writes it)")
        }
    }()

    static func small() throws -> SSDDefaultBoxes {
        let s = reference.small
        return try SSDDefaultBoxes(imageSize: s.image, featureMaps: s.maps, scales: s.scales, aspectRatios: s.ratios, steps: s.steps)
    }

    static func truths(_ image: Reference.Image) -> [MultiBoxLoss.Truth] {
        zip(image.truths, image.labels).map { MultiBoxLoss.Truth(box: BoundingBox(xmin: $0[0], ymin: $0[1], xmax: $0[2], ymax: $0[3]), label: $1) }
    }

    static func largestDifference(_ a: [Float], _ b: [Double]) -> Double {
        zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    }

    @Test func ssd300HasThePapersBoxesInTorchvisionsOrder() {
        for set in SSDDefaultBoxes.ScaleSet.allCases {
            let boxes = SSDDefaultBoxes.ssd300(set)
            #expect(boxes.count == 8732)
            #expect(boxes.boxesPerLocation == [4, 6, 6, 6, 4, 4])
            let ref = Self.reference.ssd300[set.rawValue]!
            #expect(ref.count == 8732)
            let all = boxes.centerForm()
            #expect(all.shape == [8732, 4])
            let sampled = stride(from: 0, to: 8732, by: ref.every).flatMap { Array(all.scalars[($0 * 4)..<($0 * 4 + 4)]) }
            let worst = Self.largestDifference(sampled, ref.boxes.flatMap { $0 })
            #expect(worst <= 1e-6, "\(set): largest difference \(worst)")
        }
    }

    @Test func smallLayoutEqualsTorchvision() throws {
        let boxes = try Self.small()
        #expect(boxes.count == Self.reference.small.boxes.count)
        let worst = Self.largestDifference(boxes.centerForm().scalars, Self.reference.small.boxes.flatMap { $0 })
        #expect(worst <= 1e-6, "largest difference \(worst)")
    }

    @Test func matchesLabelsAndOffsetsEqualTorchvision() throws {
        let loss = MultiBoxLoss(defaultBoxes: try Self.small(), classes: 4)
        for (i, image) in Self.reference.small.images.enumerated() {
            let r = loss.targets(Self.truths(image))
            #expect(r.matches == image.matches, "image \(i)")
            #expect(r.labels == image.classes, "image \(i)")
            let worst = Self.largestDifference(r.offsets.scalars, image.offsets.flatMap { $0 })
            #expect(worst <= 1e-6, "image \(i): largest offset difference \(worst)")
        }
        // Each truth has a box of its own even below the threshold (the small third truth of image 0).
        let first = Self.reference.small.images[0]
        for j in first.labels.indices { #expect(first.matches.contains(j)) }
    }

    @Test func multiBoxLossEqualsTorchvision() throws {
        let c = Self.reference.small.loss
        let loss = MultiBoxLoss(defaultBoxes: try Self.small(), classes: c.classes)
        let d = loss.defaultBoxes.count, n = c.locations.count
        let loc = Tensor(shape: [n, d, 4], scalars: c.locations.flatMap { $0.flatMap { $0.map(Float.init) } })
        let conf = Tensor(shape: [n, d, c.classes + 1], scalars: c.confidences.flatMap { $0.flatMap { $0.map(Float.init) } })
        let t = try loss.terms(locations: loc, confidences: conf, truths: Self.reference.small.images.map(Self.truths))
        #expect(abs(Double(t.location.scalar) - c.bbox_regression) <= 1e-5 * max(1, c.bbox_regression), "location \(t.location.scalar) vs \(c.bbox_regression)")
        #expect(abs(Double(t.confidence.scalar) - c.classification) <= 1e-5 * max(1, c.classification), "confidence \(t.confidence.scalar) vs \(c.classification)")
        // Through Loss: one output of offsets and confidences side by side.
        let z = Tensor.concatenate([loc, conf], axis: 2)
        let batch = DetectionBatch(images: Tensor.zeros([n, 1, 1, 3]), boxes: Tensor.zeros([n, 1, 5]), counts: Array(repeating: 0, count: n),
                                   objects: Self.reference.small.images.map { image in
                                       zip(image.truths, image.labels).map { b, label in
                                           ObjectAnnotation(classIndex: label - 1, className: "c\(label - 1)",
                                                            xmin: b[0] * 64, ymin: b[1] * 64, xmax: b[2] * 64, ymax: b[3] * 64)
                                       }
                                   },
                                   indices: Array(0..<n), width: 64, height: 64, epoch: 0, index: 0)
        let total = try loss.batchLoss(target: batch, outputs: ModelOutputs(outputs: [z]))
        #expect(abs(Double(total.scalar) - (c.bbox_regression + c.classification)) <= 1e-4, "total \(total.scalar)")
    }

    @Test func multiBoxGradientsMatchFiniteDifferences() throws {
        let c = Self.reference.small.loss
        let loss = MultiBoxLoss(defaultBoxes: try Self.small(), classes: c.classes)
        let d = loss.defaultBoxes.count
        let image = Self.reference.small.images[0]
        let loc = Tensor(shape: [1, d, 4], scalars: c.locations[0].flatMap { $0.map(Float.init) })
        let conf = Tensor(shape: [1, d, c.classes + 1], scalars: c.confidences[0].flatMap { $0.map(Float.init) })
        let result = checkGradients([loc, conf], step: 1e-2) { xs in
            let t = try! loss.terms(locations: xs[0], confidences: xs[1], truths: [Self.truths(image)])
            return t.location * 0.7 + t.confidence
        }
        #expect(result.passed, "\(result)")
    }

    @Test func decodeInvertsEncode() {
        let coder = SSDBoxCoder()
        let defaults = SSDDefaultBoxes.ssd300(.voc).centerForm().sliced(axis: 0, 100..<140).detached()
        var values = [Float]()
        for i in 0..<40 {
            let f = Float(i)
            let cx: Float = 0.1 + f * 0.02, cy: Float = 0.8 - f * 0.015
            let w: Float = 0.05 + Float(i % 7) * 0.04, h: Float = 0.3 - Float(i % 5) * 0.03
            values += [cx, cy, w, h]
        }
        let truths = Tensor(shape: [40, 4], scalars: values)
        let back = coder.decode(coder.encode(truths, defaults: defaults), defaults: defaults)
        var worst: Float = 0
        for (a, b) in zip(back.scalars, truths.scalars) { worst = max(worst, Swift.abs(a - b)) }
        #expect(worst <= 1e-6, "largest difference \(worst)")
    }

    @Test func postProcessingKeepsConfidentBoxesPerClass() {
        // Four default boxes; box 0 and 1 (nearly the same) are class 1, box 2 class 2, box 3 background.
        let defaults = try! SSDDefaultBoxes(imageSize: 2, featureMaps: [2], scales: [0.5, 0.5], aspectRatios: [[]], steps: nil)
        #expect(defaults.count == 8)
        let d = defaults.count
        var logits = [Float](repeating: 0, count: d * 3)
        for j in 0..<d { logits[j * 3] = 8 }          // background everywhere…
        logits[0 * 3] = 0; logits[0 * 3 + 1] = 9      // …but box 0: class 0 (SSD class 1), very sure
        logits[1 * 3] = 0; logits[1 * 3 + 1] = 8      // box 1 (the same place as box 0): suppressed by NMS
        logits[6 * 3] = 0; logits[6 * 3 + 2] = 7      // box 6: class 1
        let conf = Tensor(shape: [1, d, 3], scalars: logits)
        let loc = Tensor.zeros([1, d, 4])
        let found = SSDPostProcessing().detections(locations: loc, confidences: conf, defaultBoxes: defaults)[0]
        let confident = found.filter { $0.score > 0.5 }
        #expect(confident.count == 2)
        #expect(confident.map(\.classIndex) == [0, 1])
        #expect(abs(confident[0].box.xmin - 0) < 1e-6 && abs(confident[0].box.xmax - 0.5) < 1e-6)
        // Everything kept is above the threshold and at most top-k.
        #expect(found.allSatisfy { $0.score > 0.01 })
        let capped = SSDPostProcessing(scoreThreshold: 0.0001, topK: 3).detections(locations: loc, confidences: conf, defaultBoxes: defaults)[0]
        #expect(capped.count == 3)
        #expect(capped.map(\.score) == capped.map(\.score).sorted(by: >))
    }

    /// SSD300's parameters equal ssd.pytorch's (21 classes with the background) and torchvision's
    /// `ssd300_vgg16(num_classes=91)`; its outputs cover the 8,732 default boxes.
    @Test func ssd300MatchesTheReferenceImplementations() {
        let voc = SSDModels.ssd300(classes: 20)
        #expect(voc.parameters.reduce(0) { $0 + $1.count } == 26_285_486)
        #expect(voc.outputs.map(\.shape) == [[8732, 4], [8732, 21]])
        let coco = SSDModels.ssd300(classes: 90)
        #expect(coco.parameters.reduce(0) { $0 + $1.count } == 35_641_826)
        #expect(coco.outputs.map(\.shape) == [[8732, 4], [8732, 91]])
    }

    /// A small SSD trained through `compile`/`fit` with the MultiBox loss fits one batch: the
    /// heads, the loss and its gradient work together.
    @Test func aSmallSSDLearnsThroughFit() throws {
        let boxes = try Self.small()
        let model = RandomSeed.withSeed(3) { () -> Model in
            let input = Input(shape: [64, 64, 3])
            var x = input
            for f in [16, 32, 32] { x = Conv2D(filters: f, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(x) }
            let s0 = Conv2D(filters: 32, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(x)   // 4x4
            let s1 = Conv2D(filters: 32, kernelSize: 3, strides: 2, padding: .same, activation: .relu)(s0)  // 2x2
            let s2 = Conv2D(filters: 32, kernelSize: 2, activation: .relu)(s1)                              // 1x1
            return SSDModels.head(input: input, sources: [s0, s1, s2], boxesPerLocation: boxes.boxesPerLocation, classes: 4, name: "tiny_ssd")
        }
        let loss = MultiBoxLoss(defaultBoxes: boxes, classes: 4)
        model.compile(optimizer: .adam(learningRate: 0.003), loss: loss)
        let objects = Self.reference.small.images.prefix(2).map { image in
            zip(image.truths, image.labels).map { b, label in
                ObjectAnnotation(classIndex: label - 1, className: "c\(label - 1)", xmin: b[0] * 64, ymin: b[1] * 64, xmax: b[2] * 64, ymax: b[3] * 64)
            }
        }
        let batch = DetectionBatch(images: Tensor.uniform([2, 64, 64, 3], seed: 5), boxes: Tensor.zeros([2, 1, 5]), counts: [3, 2],
                                   objects: Array(objects), indices: [0, 1], width: 64, height: 64, epoch: 0, index: 0)
        struct OneBatch: BatchSource {
            let b: DetectionBatch
            var batchCount: Int { 1 }
            func batch(_ index: Int, pass: Int) throws -> Batch<DetectionBatch> { Batch(inputs: [b.images], targets: b) }
        }
        let history = try Parallel.withThreadCount(1) { try model.fit(OneBatch(b: batch), epochs: 60, verbose: .silent) }
        let losses = history.history["loss"]!
        #expect(losses.last! < losses.first! * 0.2, "loss \(losses.first!) → \(losses.last!)")
        #expect(loss.lastTerms.matched == Self.reference.small.images.prefix(2).reduce(0) { $0 + $1.matches.filter { $0 >= 0 }.count })
    }

    /// SSD's L2Norm: every position's channels scaled to norm γ (20 at first); its gradient
    /// (input and γ) against finite differences; its configuration read back.
    @Test func l2NormalizationScalesEachPositionToGamma() throws {
        let m = Sequential(inputShape: [3, 3, 4])
        m.add(L2Normalization())
        let layer = m.layers[0] as! L2Normalization
        let x = TestData.awayFromZero([2, 3, 3, 4], seed: 1)
        let y = m(x)
        for p in 0..<(2 * 9) {
            let v = y.scalars[(p * 4)..<(p * 4 + 4)]
            #expect(abs(v.reduce(0) { $0 + $1 * $1 }.squareRoot() - 20) < 1e-3)
        }
        let gamma = TestData.awayFromZero([4], seed: 2)
        let result = checkGradients([x, gamma], step: 1e-2) { xs in
            let norm = xs[0].square().sum(axis: 3, keepDims: true).sqrt() + layer.epsilon
            return xs[0] / norm * xs[1]
        }
        #expect(result.passed, "\(result)")
        var ctx = ForwardContext(training: true)
        let g = x.requiringGrad()
        layer.forward([g], context: &ctx).sum().backward()
        #expect(g.grad != nil && layer.gamma.grad != nil)
        let copy = try L2Normalization(config: LayerConfig(layer.config, className: "L2Normalization"))
        #expect(copy.initialScale == 20 && copy.epsilon == 1e-10)
    }

    @Test func badLayoutsAreClearErrors() {
        #expect(throws: DetectionError.self) {
            try SSDDefaultBoxes(imageSize: 300, featureMaps: [38, 19], scales: [0.1, 0.2], aspectRatios: [[2], [2]])
        }
        #expect(throws: DetectionError.self) {
            try SSDDefaultBoxes(imageSize: 300, featureMaps: [38], scales: [0.1, .nan], aspectRatios: [[2]])
        }
        #expect(throws: DetectionError.self) {
            try SSDDefaultBoxes(imageSize: 300, featureMaps: [0], scales: [0.1, 0.2], aspectRatios: [[2]])
        }
        let loss = MultiBoxLoss(defaultBoxes: SSDDefaultBoxes.ssd300(), classes: 20)
        #expect(throws: TrainingError.self) {
            try loss.terms(locations: Tensor.zeros([1, 10, 4]), confidences: Tensor.zeros([1, 10, 21]), truths: [[]])
        }
        // The paper's s_min/s_max: 0.2 … 0.9 over six maps.
        let paper = try! SSDDefaultBoxes(imageSize: 300, featureMaps: [38, 19, 10, 5, 3, 1],
                                         aspectRatios: [[2], [2, 3], [2, 3], [2, 3], [2], [2]])
        #expect(zip(paper.scales, [0.2, 0.34, 0.48, 0.62, 0.76, 0.9, 1.0]).allSatisfy { abs($0 - $1) < 1e-12 })
    }
}
