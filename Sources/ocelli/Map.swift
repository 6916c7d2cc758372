import ArgumentParser
import Foundation
import Ocelli

/// `ocelli map`: the mAP of detections over a VOC, YOLO or COCO data set.
struct Map: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Evaluate detections: VOC2007 11-point, VOC all-point or COCO mAP, per class.",
        discussion: """
            The detections file is in COCO's results format: [{"image_id": …, "category_id": …, \
            "bbox": [x, y, w, h], "score": …}, …]. For VOC and YOLO data, image_id is the image file's name \
            without extension and category_id the class index in the data set's labels (labels.txt in the \
            data set's folder, or --names); for COCO data, image_id and category_id are COCO's ids. Boxes are \
            in continuous 0-based pixels (VOC's x1…x2 is x = x1 − 1, w = x2 − x1 + 1).
            """)

    @Option(help: "Detections in COCO results format (JSON).")
    var detections: String?

    @Option(help: "Instead of --detections: a Darknet .cfg to run over the data set's images (with --weights).")
    var cfg: String?

    @Option(help: "Instead of --detections or --cfg: an Ocelli SSD model folder (ocelli train --arch … writes BACKUP/<arch>_best).")
    var model: String?

    @Option(help: "The Darknet .weights for --cfg.")
    var weights: String?

    @Option(help: "With --cfg or --model: the score threshold of the detections kept for evaluation (Darknet's map uses 0.005).")
    var thresh: Float = 0.005

    @Option(help: "With --cfg or --model: NMS IoU threshold (Darknet's do_nms_sort; per class for an SSD).")
    var nms: Float = 0.45

    @Flag(help: "With --cfg: resize images to the network input instead of letterboxing them.")
    var noLetterbox = false

    @Option(help: "With --cfg or --model: images per forward pass.")
    var batch: Int = 4

    @Option(help: "With --cfg: also write the detections in COCO results format to this file.")
    var saveDetections: String?

    @Option(help: "The data set: a VOC, YOLO or COCO folder (or a COCO .json / YOLO list file).")
    var data: String

    @Option(help: "The split to evaluate (VOC ImageSets/Main/<split>.txt, YOLO <split>.txt, COCO instances_<split>.json); default: the whole data set.")
    var split: String?

    @Option(help: "voc07 (11-point), voc (all-point) or coco (IoU 0.50:0.95, pycocotools).")
    var metric: String = "voc07"

    @Option(help: "IoU threshold for VOC metrics (a match needs IoU > it) and for the counts.")
    var iou: Double = 0.5

    @Option(help: "Score threshold for the TP/FP/FN, precision, recall and F1 line.")
    var scoreThreshold: Double = 0.25

    @Option(help: "Class names file (one per line, index order), instead of the data set's labels.")
    var names: String?

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @Option(help: "Write precision-recall curves (SVG, one per class and pr_all.svg) into this folder.")
    var prCurves: String?

    func validate() throws {
        guard MeanAveragePrecisionMetric(rawValue: metric) != nil else {
            throw ValidationError("--metric must be voc07, voc or coco, got '\(metric)'")
        }
        guard iou > 0 && iou < 1 else { throw ValidationError("--iou must be between 0 and 1, got \(iou)") }
        guard [detections != nil, cfg != nil, model != nil].filter({ $0 }).count == 1 else {
            throw ValidationError("give one of --detections FILE, --cfg CFG --weights W, or --model DIR")
        }
        guard cfg == nil || weights != nil else { throw ValidationError("--cfg needs --weights") }
        guard (1...1_024).contains(batch) else { throw ValidationError("--batch must be between 1 and 1024, got \(batch)") }
        guard thresh >= 0 && thresh < 1 else { throw ValidationError("--thresh must be in [0, 1), got \(thresh)") }
        guard nms >= 0 && nms <= 1 else { throw ValidationError("--nms must be in [0, 1], got \(nms)") }
        guard scoreThreshold >= 0 && scoreThreshold <= 1 else { throw ValidationError("--score-threshold must be in [0, 1], got \(scoreThreshold)") }
    }

    func run() throws {
        try refuseOverwritingInputs([("--save-detections", saveDetections), ("--pr-curves", prCurves)],
                                    inputs: [data, detections, cfg.map { BundledData.cfgNamed($0) ?? $0 }, weights, names, model])
        let dataset = try loadEvaluationData(path: data, split: split, names: names)
        let found: [ScoredDetection]
        if let cfg, let weights {
            found = try Map.detect(cfg: cfg, weights: weights, images: dataset.images, classCount: dataset.classNames.count,
                                   threshold: thresh, nms: nms, fit: noLetterbox ? .resize : .letterbox, batch: batch)
            if let saveDetections {
                do { try writeAtomically(DetectionsFile.encode(found), to: saveDetections) } catch { throw failure("\(error)") }
            }
        } else if let model {
            let detector: SSDDetector
            do { detector = try SSDDetector.load(from: model) } catch { throw failure("\(error)") }
            guard detector.classes == dataset.classNames.count else {
                throw failure("\(model) predicts \(detector.classes) classes, the data set has \(dataset.classNames.count): class indices must correspond (use --names)")
            }
            if let saved = detector.classNames, saved != dataset.classNames {
                printError("warning: \(model) was trained on the classes \(saved.prefix(5).joined(separator: ", "))\(saved.count > 5 ? ", …" : ""); the data set's are \(dataset.classNames.prefix(5).joined(separator: ", "))\(dataset.classNames.count > 5 ? ", …" : ""): they are matched by index")
            }
            var post = detector.postProcessing
            post.scoreThreshold = Double(thresh); post.nmsThreshold = Double(nms)
            var d = detector
            d.postProcessing = post
            let began = Date()
            do {
                found = try d.detect(DetectionDataset(classNames: dataset.classNames, images: dataset.images, format: .voc), batch: batch)
            } catch { throw failure("\(error)") }
            printError("\(dataset.images.count) images through \(model) in \(String(format: "%.1f", Date().timeIntervalSince(began))) s")
            if let saveDetections {
                do { try writeAtomically(DetectionsFile.encode(found), to: saveDetections) } catch { throw failure("\(error)") }
            }
        } else {
            guard let detections else { throw failure("give --detections, --cfg or --model") }
            found = try DetectionsFile.read(path: detections, images: dataset.images, classCount: dataset.classNames.count,
                                            categoryIDs: dataset.categoryIDs)
        }
        try Map.report(detections: found, dataset: dataset, metric: MeanAveragePrecisionMetric(rawValue: metric)!,
                       iouThreshold: iou, scoreThreshold: scoreThreshold, json: json, prCurves: prCurves)
    }

    /// Runs a Darknet network over the images: every class probability above `threshold` after
    /// do_nms_sort becomes a detection (the network's class j is the data set's class j).
    static func detect(cfg: String, weights: String, images: [AnnotatedImage], classCount: Int, threshold: Float,
                       nms: Float, fit: InputFit, batch: Int) throws -> [ScoredDetection] {
        let network = try DarknetNetwork(cfg: BundledData.cfgNamed(cfg) ?? cfg)
        for w in network.config.warnings { printError("warning: \(w)") }
        guard let classes = network.heads.first?.classes else {
            throw ValidationError("\(cfg) has no [yolo], [region] or [detection] layer to detect with")
        }
        guard classes == classCount else {
            throw ValidationError("\(cfg) predicts \(classes) classes, the data set has \(classCount): class indices must correspond (use --names)")
        }
        try network.loadWeights(weights)
        let began = Date()
        let out = try network.detect(images: images, threshold: threshold, nmsThreshold: nms, fit: fit, batch: batch)
        printError("\(images.count) images through \((cfg as NSString).lastPathComponent) in \(String(format: "%.1f", Date().timeIntervalSince(began))) s")
        return out
    }

    /// Evaluates `detections` on `dataset` and prints the result (text, or one JSON object), writing
    /// precision-recall SVGs to `prCurves` when given. This is also the end of the model path
    /// (`ocelli map --cfg CFG --weights W`, wired in OcelliDarknet's CLI): it only has to produce
    /// `[ScoredDetection]` — image ids = `AnnotatedImage.id`, class indices into `dataset.classNames`,
    /// boxes in the image's pixels, every class probability above Darknet's 0.005 after do_nms_sort.
    static func report(detections: [ScoredDetection], dataset: EvaluationData, metric: MeanAveragePrecisionMetric,
                       iouThreshold: Double, scoreThreshold: Double, json: Bool, prCurves: String?) throws {
        let result = try MeanAveragePrecision.evaluate(detections: detections, images: dataset.images,
                                                       classNames: dataset.classNames, metric: metric,
                                                       iouThreshold: iouThreshold, scoreThreshold: scoreThreshold)
        if let prCurves { try result.writePrecisionRecallCurves(to: prCurves) }
        if json {
            print(result.json)
        } else {
            let objects = dataset.images.reduce(0) { $0 + $1.objects.count }
            print("\(dataset.images.count) images, \(objects) objects, \(detections.count) detections, \(dataset.classNames.count) classes")
            print("")
            print(result.text, terminator: "")
            if let prCurves { print("precision-recall curves: \(prCurves)/pr_all.svg and one per class") }
        }
    }
}

/// Ground truth for evaluation: images, class names, and (COCO data) the category id of each class.
struct EvaluationData {
    var images: [AnnotatedImage]
    var classNames: [String]
    /// COCO data: results files name categories by COCO id, mapped through this; nil: class indices.
    var categoryIDs: [Int]?
}

/// Reads a data set for `map` and `anchors`. With `names`, the class list is that file's and each
/// object's class index is re-derived from its class name (an error names an object whose class is
/// not in the file).
func loadEvaluationData(path: String, split: String?, names: String?) throws -> EvaluationData {
    var dataset = try DetectionDataset.load(URL(fileURLWithPath: path), split: split)
    var categoryIDs: [Int]? = dataset.format == .coco ? dataset.categoryIDs : nil
    if let names {
        dataset = try dataset.relabeled(to: try ClassNames.read(names), namesFile: names)
        categoryIDs = nil
    }
    let data = EvaluationData(images: dataset.images, classNames: dataset.classNames, categoryIDs: categoryIDs)
    return data
}

/// `ocelli bench detection`: NMS on 10,000 boxes and a COCO evaluation of 5,000 images.
struct BenchDetection: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detection",
        abstract: "Time greedy NMS and COCO evaluation (Benchmarks/bench_detection_peers.py compares them with torchvision/OpenCV and pycocotools).")

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @Option(help: "Boxes for NMS: {\"boxes\": [[x1,y1,x2,y2],…], \"scores\": […]} (default: 10,000 synthetic boxes).")
    var boxes: String?

    @Option(help: "IoU threshold for NMS.")
    var iou: Double = 0.5

    @Option(help: "COCO ground truth with category ids 0…K−1 (default: 5,000 synthetic images).")
    var cocoGt: String?

    @Option(help: "COCO results for --coco-gt.")
    var cocoDetections: String?

    @Option(help: "Repetitions (the fastest is reported).")
    var repetitions: Int = 20

    func validate() throws {
        if (cocoGt == nil) != (cocoDetections == nil) { throw ValidationError("--coco-gt and --coco-detections go together") }
        if !(1...100_000).contains(repetitions) { throw ValidationError("--repetitions must be between 1 and 100000, got \(repetitions)") }
        if !(iou > 0 && iou < 1) { throw ValidationError("--iou must be between 0 and 1, got \(iou)") }
    }

    func run() throws {
        let nms = try boxes.map { try DetectionBenchmark.readBoxes(path: $0) } ?? DetectionBenchmark.syntheticBoxes(count: 10_000)
        let coco: (images: [AnnotatedImage], detections: [ScoredDetection], classNames: [String])
        if let cocoGt, let cocoDetections {
            let gt = try DetectionBenchmark.readCOCOGroundTruth(path: cocoGt)
            let dets = try DetectionsFile.read(path: cocoDetections, images: gt.images, classCount: gt.classNames.count)
            coco = (gt.images, dets, gt.classNames)
        } else {
            coco = DetectionBenchmark.syntheticCOCO(imageCount: 5000)
        }
        let report = try DetectionBenchmark.run(boxes: nms.boxes, scores: nms.scores, iouThreshold: iou, images: coco.images,
                                                detections: coco.detections, classNames: coco.classNames, repetitions: repetitions)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(data: try encoder.encode(report), encoding: .utf8)!)
        } else {
            print(String(format: "NMS: %d boxes, IoU %.2f: %d kept in %.3f ms", report.nms_boxes, report.nms_iou_threshold, report.nms_kept, report.nms_ms))
            print(String(format: "COCO evaluation: %d images, %d objects, %d detections in %.1f ms; AP %.4f, AP50 %.4f",
                         report.coco_images, report.coco_objects, report.coco_detections, report.coco_eval_ms,
                         report.coco_stats[0], report.coco_stats[1]))
        }
    }
}
