import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliTestSupport
import OcelliVision
@testable import OcelliDetection

/// Darknet's [yolo] and [region] losses against Scripts/make_yolo_loss_fixtures.py (a numpy
/// transcription of pjreddie's forward_yolo_layer and forward_region_layer): the deltas, Darknet's
/// cost and printed statistics, and the loss's gradient (what Darknet hands the logits: −delta,
/// times σ(1 − σ) for [region]'s x, y and objectness).
@Suite struct YoloLossTests {
    struct Case: Decodable {
        var name: String
        var batch: Int, grid_h: Int, grid_w: Int, net_w: Int, net_h: Int, classes: Int, num: Int
        var anchors: [Float]
        var mask: [Int]?
        var ignore_thresh: Float?, truth_thresh: Float?
        var thresh: Float?, coord_scale: Float?, object_scale: Float?, noobject_scale: Float?, class_scale: Float?
        var rescore: Int?, bias_match: Int?, seen: Int?
        var input: [Float]
        var truths: [[[Float]]]
        var delta: [Float]
        var cost: Float
        var stats: [String: Float]
    }
    struct File: Decodable { var yolo: [Case]; var region: [Case] }

    static let file: File = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/yolo_losses.json")
        do { return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)) } catch {
            fatalError("cannot read \(url.path): \(error) (Scripts/make_yolo_loss_fixtures.py writes it)")
        }
    }()

    static func truths(_ c: Case) -> [[TruthBox]] {
        c.truths.map { $0.map { TruthBox(x: $0[0], y: $0[1], w: $0[2], h: $0[3], classIndex: Int($0[4])) } }
    }

    static func anchors(_ c: Case) -> [(Float, Float)] { (0..<c.num).map { (c.anchors[2 * $0], c.anchors[2 * $0 + 1]) } }

    static func targets(_ c: Case, yolo: Bool) -> YoloTargets {
        if yolo {
            let l = YoloLayerLoss(anchors: anchors(c), mask: c.mask!, classes: c.classes, ignoreThreshold: c.ignore_thresh!,
                                  truthThreshold: c.truth_thresh!)
            return l.targets(logits: c.input, batch: c.batch, height: c.grid_h, width: c.grid_w, truths: truths(c),
                             inputWidth: c.net_w, inputHeight: c.net_h)
        }
        let l = region(c)
        return l.targets(logits: c.input, batch: c.batch, height: c.grid_h, width: c.grid_w, truths: truths(c), seen: c.seen!)
    }

    static func region(_ c: Case) -> RegionLayerLoss {
        RegionLayerLoss(anchors: anchors(c), classes: c.classes, softmax: true, threshold: c.thresh!, coordScale: c.coord_scale!,
                        objectScale: c.object_scale!, noObjectScale: c.noobject_scale!, classScale: c.class_scale!,
                        rescore: c.rescore! != 0, biasMatch: c.bias_match! != 0)
    }

    func check(_ c: Case, yolo: Bool) {
        let r = Self.targets(c, yolo: yolo)
        #expect(r.delta.count == c.delta.count)
        var worst: Float = 0, worstAt = 0
        for (k, (a, b)) in zip(r.delta, c.delta).enumerated() where abs(a - b) / max(1, abs(b)) > worst {
            worst = abs(a - b) / max(1, abs(b)); worstAt = k
        }
        #expect(worst <= 1e-5, "\(c.name): delta \(worstAt) is \(r.delta[worstAt]), Darknet's \(c.delta[worstAt])")
        #expect(abs(r.statistics.darknetCost - c.cost) <= 1e-4 * max(1, c.cost), "\(c.name): cost \(r.statistics.darknetCost) vs \(c.cost)")
        let s = r.statistics
        let mine: [String: Float] = ["avg_iou": s.averageIoU, "class": s.classProbability, "obj": s.objectness,
                                     "no_obj": s.noObjectness, "recall50": s.recall50, "recall75": s.recall75, "count": Float(s.count)]
        for (key, value) in c.stats where key != "recall75" || yolo {
            #expect(abs((mine[key] ?? .nan) - value) <= 1e-5, "\(c.name): \(key) \(mine[key] ?? .nan) vs \(value)")
        }
        // The loss's gradient with respect to the logits is what Darknet's backward passes on.
        let entries = 5 + c.classes, anchors = yolo ? c.mask!.count : c.num
        let z = Tensor(shape: [c.batch, c.grid_h, c.grid_w, anchors * entries], scalars: c.input).requiringGrad()
        r.loss(z, anchors: anchors, entries: entries, divisor: 1).backward()
        let gradient = z.grad!.scalars
        var gradWorst: Float = 0
        for (e, (g, d)) in zip(gradient, c.delta).enumerated() {
            var expected = -d
            if !yolo && [0, 1, 4].contains(e % entries) {
                let p = 1 / (1 + Foundation.exp(-c.input[e]))
                expected *= p * (1 - p)
            }
            gradWorst = max(gradWorst, abs(g - expected) / max(1, abs(expected)))
        }
        #expect(gradWorst <= 1e-5, "\(c.name): gradient differs from Darknet's by \(gradWorst)")
    }

    @Test func yoloLayerMatchesDarknet() {
        #expect(Self.file.yolo.count >= 3)
        for c in Self.file.yolo { check(c, yolo: true) }
    }

    @Test func regionLayerMatchesDarknet() {
        #expect(Self.file.region.count >= 3)
        for c in Self.file.region { check(c, yolo: false) }
    }

    /// The loss, with its targets fixed, against finite differences (both head types).
    @Test func gradientsMatchFiniteDifferences() {
        for (c, yolo) in [(Self.file.yolo[0], true), (Self.file.region[0], false)] {
            let r = Self.targets(c, yolo: yolo)
            let entries = 5 + c.classes, anchors = yolo ? c.mask!.count : c.num
            let z = Tensor(shape: [c.batch, c.grid_h, c.grid_w, anchors * entries], scalars: c.input)
            let result = checkGradients([z], step: 1e-2, absolute: 2e-3, relative: 2e-2) { t in
                r.loss(t[0], anchors: anchors, entries: entries, divisor: 1)
            }
            #expect(result.passed, "\(c.name): \(result)")
        }
    }

    @Test func lossThroughTheProtocolChecksItsInputs() throws {
        let c = Self.file.yolo[0]
        let loss = YoloLoss(heads: [.yolo(YoloLayerLoss(anchors: Self.anchors(c), mask: c.mask!, classes: c.classes))])
        let z = Tensor(shape: [c.batch, c.grid_h, c.grid_w, c.mask!.count * (5 + c.classes)], scalars: c.input)
        var batch = DetectionBatch(images: Tensor.zeros([c.batch, 1, 1, 3]), boxes: Tensor.zeros([c.batch, 1, 5]),
                                   counts: Array(repeating: 0, count: c.batch), objects: Array(repeating: [], count: c.batch),
                                   indices: Array(0..<c.batch), width: c.net_w, height: c.net_h, epoch: 0, index: 0)
        // No truths: only the no-object terms; seen counts training batches only.
        _ = try loss.batchLoss(target: batch, outputs: ModelOutputs(outputs: [z], training: true))
        _ = try loss.batchLoss(target: batch, outputs: ModelOutputs(outputs: [z]))
        #expect(loss.seen == c.batch && loss.lastStatistics.count == 1 && loss.lastStatistics[0].count == 0)
        // A class the head does not predict, and a wrong number of outputs, are errors.
        batch.objects[0] = [ObjectAnnotation(classIndex: c.classes, className: "x", xmin: 1, ymin: 1, xmax: 9, ymax: 9)]
        #expect(throws: TrainingError.self) { try loss.batchLoss(target: batch, outputs: ModelOutputs(outputs: [z])) }
        #expect(throws: TrainingError.self) { try loss.batchLoss(target: batch, outputs: ModelOutputs(outputs: [z, z])) }
        // Truths from pixel boxes: centre and size relative to the input; empty boxes dropped.
        batch.objects[0] = [ObjectAnnotation(classIndex: 1, className: "a", xmin: 10, ymin: 20, xmax: 30, ymax: 60),
                            ObjectAnnotation(classIndex: 0, className: "b", xmin: 5, ymin: 5, xmax: 5, ymax: 9)]
        let t = YoloLoss.truths(batch)[0]
        #expect(t == [TruthBox(x: 20 / Float(c.net_w), y: 40 / Float(c.net_h), w: 20 / Float(c.net_w), h: 40 / Float(c.net_h), classIndex: 1)])
    }
}

/// keras-yolo2's custom_loss against the numpy transcription (checked against the original under
/// TensorFlow): the four terms and the total, in and after warm-up; the gradient against finite
/// differences; the targets from a detection batch.
@Suite struct KerasYolo2LossTests {
    struct Case: Decodable {
        var name: String
        var batch: Int, grid_h: Int, grid_w: Int, boxes: Int, classes: Int
        var anchors: [Float]
        var object_scale: Float, no_object_scale: Float, coord_scale: Float, class_scale: Float
        var warmup_batches: Int, seen: Int, max_boxes: Int
        var y_pred: [Float], y_true: [Float], true_boxes: [Float]
        var loss_xy: Float, loss_wh: Float, loss_conf: Float, loss_class: Float, loss: Float
    }
    struct File: Decodable { var cases: [Case] }

    static let cases: [Case] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/keras_yolo2_loss.json")
        do { return try JSONDecoder().decode(File.self, from: Data(contentsOf: url)).cases } catch {
            fatalError("cannot read \(url.path): \(error) (Scripts/make_yolo_loss_fixtures.py writes it)")
        }
    }()

    static func loss(_ c: Case) -> KerasYolo2Loss {
        KerasYolo2Loss(anchors: (0..<c.boxes).map { (c.anchors[2 * $0], c.anchors[2 * $0 + 1]) }, classes: c.classes,
                       objectScale: c.object_scale, noObjectScale: c.no_object_scale, coordScale: c.coord_scale,
                       classScale: c.class_scale, warmupBatches: c.warmup_batches, maxBoxes: c.max_boxes, seen: c.seen)
    }

    @Test func termsMatchKerasYolo2() {
        #expect(Self.cases.count == 2)
        for c in Self.cases {
            let l = Self.loss(c)
            let p = Tensor(shape: [c.batch, c.grid_h, c.grid_w, c.boxes, 5 + c.classes], scalars: c.y_pred)
            let r = l.loss(predictions: p, yTrue: c.y_true, trueBoxes: c.true_boxes, warm: l.seen < l.warmupBatches)
            for (name, mine, theirs) in [("xy", r.xy.scalar, c.loss_xy), ("wh", r.wh.scalar, c.loss_wh), ("conf", r.confidence.scalar, c.loss_conf),
                                         ("class", r.classes.scalar, c.loss_class), ("total", r.total.scalar, c.loss)] {
                #expect(abs(mine - theirs) <= 1e-5 * max(1, abs(theirs)), "\(c.name) \(name): \(mine) vs \(theirs)")
            }
        }
    }

    @Test func gradientMatchesFiniteDifferences() {
        for c in Self.cases {
            let l = Self.loss(c)
            // The first image, with its w/h logits scaled down: the fixture's wild ones make the
            // loss about 1,000, where float32 differences cannot resolve the gradient.
            let e = 5 + c.classes, per = c.grid_h * c.grid_w * c.boxes * e
            let scaled = c.y_pred[0..<per].enumerated().map { [2, 3].contains($0.offset % e) ? $0.element * 0.3 : $0.element }
            let p = Tensor(shape: [1, c.grid_h, c.grid_w, c.boxes, e], scalars: scaled)
            let yTrue = Array(c.y_true[0..<per]), boxes = Array(c.true_boxes[0..<(c.max_boxes * 4)])
            // A small step: the IoU inside the confidence target has kinks (min/max) near some
            // slots, where a 1e-2 step straddles them.
            let r = checkGradients([p], step: 1e-3, absolute: 3e-3, relative: 2e-2) { t in
                l.loss(predictions: t[0], yTrue: yTrue, trueBoxes: boxes, warm: l.seen < l.warmupBatches).total
            }
            #expect(r.passed, "\(c.name): \(r)")
        }
    }

    @Test func targetsFromADetectionBatch() throws {
        let l = KerasYolo2Loss(anchors: [(1, 1), (3, 2)], classes: 3, maxBoxes: 2)
        let objects = [ObjectAnnotation(classIndex: 2, className: "c", xmin: 8, ymin: 8, xmax: 24, ymax: 40),   // 1 x 2 cells at (1, 1.5)
                       ObjectAnnotation(classIndex: 0, className: "a", xmin: 40, ymin: 0, xmax: 88, ymax: 32),  // 3 x 2 cells at (4, 1)
                       ObjectAnnotation(classIndex: 1, className: "b", xmin: 0, ymin: 0, xmax: 16, ymax: 16)]   // the third: the ring wraps
        let batch = DetectionBatch(images: Tensor.zeros([1, 1, 1, 3]), boxes: Tensor.zeros([1, 1, 5]), counts: [3], objects: [objects],
                                   indices: [0], width: 96, height: 64, epoch: 0, index: 0)
        let (y, boxes) = try l.targets(batch, gridHeight: 4, gridWidth: 6)
        func slot(_ j: Int, _ i: Int, _ a: Int) -> [Float] { let b = ((j * 6 + i) * 2 + a) * 8; return Array(y[b..<(b + 8)]) }
        #expect(slot(1, 1, 0) == [1, 1.5, 1, 2, 1, 0, 0, 1])  // shape IoU 0.5 with anchor (1, 1), 1/3 with (3, 2)
        #expect(slot(1, 4, 1) == [4, 1, 3, 2, 1, 1, 0, 0])
        #expect(boxes == [0.5, 0.5, 1, 1, 4, 1, 3, 2])
    }
}
