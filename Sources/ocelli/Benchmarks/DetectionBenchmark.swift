import Dispatch
import Foundation
import Ocelli


/// Timings of NMS and COCO evaluation, for `ocelli bench detection` and the comparison with
/// torchvision / OpenCV and pycocotools (Benchmarks/bench_detection_peers.py).
public enum DetectionBenchmark {
    /// What `ocelli bench detection` reports (milliseconds: the fastest of the repetitions).
    public struct Report: Encodable, Sendable {
        public var nms_boxes: Int
        public var nms_iou_threshold: Double
        public var nms_kept: Int
        public var nms_ms: Double
        public var coco_images: Int
        public var coco_objects: Int
        public var coco_detections: Int
        public var coco_eval_ms: Double
        public var coco_stats: [Double]
    }

    static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// Runs both measurements: greedy NMS over `boxes` (fastest of `repetitions`), and COCO evaluation
    /// (evaluate + accumulate + the 12 stats; fastest of `max(1, repetitions / 4)`).
    public static func run(boxes: [BoundingBox], scores: [Double], iouThreshold: Double,
                           images: [AnnotatedImage], detections: [ScoredDetection], classNames: [String],
                           repetitions: Int = 20) throws -> Report {
        var kept: [Int] = []
        var nmsMs = Double.infinity
        for _ in 0..<Swift.max(1, repetitions) {
            nmsMs = Swift.min(nmsMs, milliseconds { kept = NonMaximumSuppression.greedy(boxes: boxes, scores: scores, iouThreshold: iouThreshold) })
        }
        var stats: [Double] = []
        var cocoMs = Double.infinity
        for _ in 0..<Swift.max(1, repetitions / 4) {
            cocoMs = Swift.min(cocoMs, try milliseconds {
                stats = try COCOEvaluation.evaluate(images: images, detections: detections, classNames: classNames).stats
            })
        }
        return Report(nms_boxes: boxes.count, nms_iou_threshold: iouThreshold, nms_kept: kept.count, nms_ms: nmsMs,
                      coco_images: images.count, coco_objects: images.reduce(0) { $0 + $1.objects.count },
                      coco_detections: detections.count, coco_eval_ms: cocoMs, coco_stats: stats)
    }

    /// `count` boxes clustered around 60 objects of a 1000 x 1000 image (as a detector's raw output
    /// before NMS), with uniform scores; seeded.
    public static func syntheticBoxes(count: Int, seed: UInt64 = 1) -> (boxes: [BoundingBox], scores: [Double]) {
        var g = SeededGenerator(seed: seed)
        let objects = (0..<60).map { _ in
            (Double.random(in: 0..<1000, using: &g), Double.random(in: 0..<1000, using: &g),
             Double.random(in: 20..<200, using: &g), Double.random(in: 20..<200, using: &g))
        }
        var boxes: [BoundingBox] = [], scores: [Double] = []
        for _ in 0..<count {
            let (cx, cy, w, h) = objects[Int.random(in: 0..<objects.count, using: &g)]
            let x = cx + w * 0.3 * Double.random(in: -1..<1, using: &g), y = cy + h * 0.3 * Double.random(in: -1..<1, using: &g)
            let bw = w * Double.random(in: 0.7..<1.3, using: &g), bh = h * Double.random(in: 0.7..<1.3, using: &g)
            boxes.append(BoundingBox(centerX: x, centerY: y, width: bw, height: bh))
            scores.append(Double.random(in: 0..<1, using: &g))
        }
        return (boxes, scores)
    }

    /// A COCO-like evaluation set: `imageCount` images of 640 x 480 with up to 15 objects of
    /// `classCount` classes in all three area ranges (some crowds), and jittered, duplicated and
    /// false detections (about 20 per image); seeded.
    public static func syntheticCOCO(imageCount: Int, classCount: Int = 10, seed: UInt64 = 1)
        -> (images: [AnnotatedImage], detections: [ScoredDetection], classNames: [String]) {
        var g = SeededGenerator(seed: seed)
        let names = (0..<classCount).map { "class\($0)" }
        var images: [AnnotatedImage] = [], detections: [ScoredDetection] = []
        for i in 0..<imageCount {
            let id = String(format: "%012d", i + 1)
            var objects: [ObjectAnnotation] = []
            for _ in 0..<Int.random(in: 0...15, using: &g) {
                let side = [Double.random(in: 6..<32, using: &g), Double.random(in: 32..<96, using: &g),
                            Double.random(in: 96..<300, using: &g)][Int.random(in: 0..<3, using: &g)]
                let aspect = exp(Double.random(in: -0.5..<0.5, using: &g))
                let w = side * aspect, h = side / aspect
                let x = Double.random(in: 0..<Swift.max(1, 640 - w), using: &g), y = Double.random(in: 0..<Swift.max(1, 480 - h), using: &g)
                let c = Int.random(in: 0..<classCount, using: &g)
                objects.append(ObjectAnnotation(classIndex: c, className: names[c], xmin: x, ymin: y, xmax: x + w, ymax: y + h,
                                                isCrowd: Double.random(in: 0..<1, using: &g) < 0.03))
            }
            for o in objects {
                for _ in 0..<[0, 1, 1, 2][Int.random(in: 0..<4, using: &g)] {
                    let w = o.width * exp(Double.random(in: -0.2..<0.2, using: &g)), h = o.height * exp(Double.random(in: -0.2..<0.2, using: &g))
                    let x = o.xmin + o.width * 0.15 * Double.random(in: -1..<1, using: &g)
                    let y = o.ymin + o.height * 0.15 * Double.random(in: -1..<1, using: &g)
                    let c = Double.random(in: 0..<1, using: &g) < 0.9 ? o.classIndex : Int.random(in: 0..<classCount, using: &g)
                    detections.append(ScoredDetection(imageID: id, classIndex: c, score: Double.random(in: 0..<1, using: &g),
                                                      box: BoundingBox(x: x, y: y, width: w, height: h)))
                }
            }
            for _ in 0..<Int.random(in: 0...12, using: &g) {
                let w = Double.random(in: 5..<250, using: &g), h = Double.random(in: 5..<250, using: &g)
                detections.append(ScoredDetection(imageID: id, classIndex: Int.random(in: 0..<classCount, using: &g),
                                                  score: Double.random(in: 0..<0.6, using: &g),
                                                  box: BoundingBox(x: Double.random(in: 0..<(640 - w), using: &g),
                                                                   y: Double.random(in: 0..<(480 - h), using: &g), width: w, height: h)))
            }
            images.append(AnnotatedImage(id: id, file: URL(fileURLWithPath: "/synthetic/\(id).jpg"), width: 640, height: 480,
                                         objects: objects, cocoID: i + 1))
        }
        return (images, detections, names)
    }

    /// Reads the boxes file the peers script writes: `{"boxes": [[x1, y1, x2, y2], …], "scores": […]}`.
    public static func readBoxes(path: String) throws -> (boxes: [BoundingBox], scores: [Double]) {
        struct File: Decodable {
            var boxes: [[Double]]
            var scores: [Double]
        }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        guard file.boxes.count == file.scores.count, file.boxes.allSatisfy({ $0.count == 4 }) else {
            throw DetectionEvaluationError(file: path, message: "expected as many [x1, y1, x2, y2] boxes as scores")
        }
        return (file.boxes.map { BoundingBox(xmin: $0[0], ymin: $0[1], xmax: $0[2], ymax: $0[3]) }, file.scores)
    }

    /// Reads a COCO ground-truth file whose category ids are 0…K−1 (as the peers script writes it),
    /// for benchmarking without the data-set readers.
    public static func readCOCOGroundTruth(path: String) throws -> (images: [AnnotatedImage], classNames: [String]) {
        struct File: Decodable {
            struct Image: Decodable { var id: Int; var width: Int; var height: Int }
            struct Annotation: Decodable { var image_id: Int; var category_id: Int; var bbox: [Double]; var area: Double?; var iscrowd: Int? }
            struct Category: Decodable { var id: Int; var name: String }
            var images: [Image]
            var annotations: [Annotation]
            var categories: [Category]
        }
        let file = try JSONDecoder().decode(File.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
        let categories = file.categories.sorted { $0.id < $1.id }
        guard categories.map(\.id) == Array(categories.indices) else {
            throw DetectionEvaluationError(file: path, message: "expected category ids 0…\(categories.count - 1)")
        }
        var objects: [Int: [ObjectAnnotation]] = [:]
        for a in file.annotations {
            guard a.bbox.count == 4, a.category_id >= 0 && a.category_id < categories.count else {
                throw DetectionEvaluationError(file: path, message: "bad annotation for image \(a.image_id)")
            }
            objects[a.image_id, default: []].append(ObjectAnnotation(
                classIndex: a.category_id, className: categories[a.category_id].name, xmin: a.bbox[0], ymin: a.bbox[1],
                xmax: a.bbox[0] + a.bbox[2], ymax: a.bbox[1] + a.bbox[3], isCrowd: (a.iscrowd ?? 0) != 0, segmentationArea: a.area))
        }
        let images = file.images.map { i in
            AnnotatedImage(id: String(i.id), file: URL(fileURLWithPath: "/coco/\(i.id).jpg"), width: i.width, height: i.height,
                           objects: objects[i.id] ?? [], cocoID: i.id)
        }
        return (images, categories.map(\.name))
    }
}
