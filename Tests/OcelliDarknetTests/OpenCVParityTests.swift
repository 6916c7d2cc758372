import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

struct OpenCVReference: Decodable {
    struct Sampled: Decodable { var shape: [Int]; var indices: [Int]; var values: [Float]; var channel_sums: [Double] }
    struct Blob: Decodable { var sum: Double; var indices: [Int]; var values: [Float] }
    struct Det: Decodable { var class_id: Int; var score: Float; var x1: Float; var y1: Float; var x2: Float; var y2: Float }
    struct ImageCase: Decodable {
        var image: String; var width: Int; var height: Int; var blob: Blob; var heads: [Sampled]
        /// OpenCV's detections keep class scores above `threshold`.
        var threshold: Float; var detections: [Det]
        /// The [yolo] layers' decoded rows, sampled (synthetic weights only).
        var yolo_rows: Rows?
    }
    struct Tiny: Decodable { var images: [ImageCase] }
    struct RandomTiny: Decodable { var cfg: String; var weights_bytes: Int; var nms_threshold: Float; var images: [ImageCase] }
    struct Rows: Decodable { var count: Int; var indices: [Int]; var rows: [[Float]] }
    struct Random: Decodable { var cfg: String; var weights_bytes: Int; var head: Sampled; var region_rows: Rows }
    var yolov3_tiny: Tiny
    var yolov3_tiny_random: RandomTiny
    var yolov2_tiny_voc: Random
    var yolov2_voc: Random

    static let shared: OpenCVReference = {
        let data = try! Data(contentsOf: Paths.fixture("opencv_reference.json"))
        return try! JSONDecoder().decode(OpenCVReference.self, from: data)
    }()
}

/// OpenCV's blobFromImage: bilinear resize of the 8-bit image, RGB, / 255.
func opencvBlob(_ path: String, size: Int) throws -> Tensor {
    let image = try Image(contentsOf: path)
    return image.resized(width: size, height: size, interpolation: .bilinear).tensor().reshaped([1, size, size, 3])
}

func expectSampled(_ t: Tensor, _ ref: OpenCVReference.Sampled, _ what: String, tolerance: Float = 1e-3) {
    #expect(Array(t.shape.dropFirst()) == ref.shape, "\(what)")
    var worst: Float = 0
    for (i, v) in zip(ref.indices, ref.values) { worst = max(worst, abs(t.scalars[i] - v)) }
    #expect(worst <= tolerance, "\(what): max |Ocelli − OpenCV| = \(worst) over \(ref.indices.count) samples")
    let c = ref.shape.last!
    var sums = [Double](repeating: 0, count: c)
    for (i, v) in t.scalars.enumerated() { sums[i % c] += Double(v) }
    let cells = Double(t.count / c)
    let sumWorst = zip(sums, ref.channel_sums).map { abs($0 - $1) / cells }.max() ?? 0
    #expect(sumWorst <= Double(tolerance), "\(what): channel means differ by up to \(sumWorst)")
}

/// yolov3-tiny as `ocelli detect` runs it, photo by photo against OpenCV: the input blob, both
/// heads, then decoding, threshold and NMS. `net` is prepared for inference; `unprepared` has the
/// same weights and packs on first use, and must agree with it bitwise.
func expectYoloV3TinyParity(_ net: DarknetNetwork, unprepared: DarknetNetwork, _ images: [OpenCVReference.ImageCase],
                            nmsThreshold: Float = 0.45) throws {
    for (i, ref) in images.enumerated() {
        let blob = try opencvBlob(Paths.image(ref.image), size: 416)
        let inputWorst = zip(ref.blob.indices, ref.blob.values).map { abs(blob.scalars[$0] - $1) }.max()!
        #expect(inputWorst < 1e-6, "\(ref.image): input differs from OpenCV's blob by \(inputWorst)")
        let outputs = net.forward(blob)
        if i == 0 { #expect(unprepared.forward(blob).map(\.scalars) == outputs.map(\.scalars)) }
        for (k, head) in ref.heads.enumerated() { expectSampled(outputs[k], head, "\(ref.image) head \(k)") }
        if let rows = ref.yolo_rows { expectYoloRows(net, outputs, rows, ref) }
        let dets = net.detections(outputs: outputs, imageWidth: ref.width, imageHeight: ref.height, fit: .resize,
                                  threshold: ref.threshold, nmsThreshold: nmsThreshold)
            .sorted { ($0.classIndex, -$0.score) < ($1.classIndex, -$1.score) }
        #expect(dets.map(\.classIndex) == ref.detections.map(\.class_id), "\(ref.image)")
        for (d, r) in zip(dets, ref.detections) {
            #expect(abs(d.score - r.score) < 0.005, "\(ref.image): score \(d.score) vs \(r.score)")
            let dx = [abs(d.x1 - r.x1), abs(d.y1 - r.y1), abs(d.x2 - r.x2), abs(d.y2 - r.y2)].max()!
            #expect(dx <= 1, "\(ref.image): class \(d.classIndex) box off by \(dx) px")
        }
    }
}

/// Every box the [yolo] heads decode (threshold 0) against OpenCV's rows: x, y, w, h relative to
/// the image, objectness, objectness × class probability. Both list a head's boxes cell by cell,
/// anchors within a cell, heads in cfg order, so row r is box r.
func expectYoloRows(_ net: DarknetNetwork, _ outputs: [Tensor], _ ref: OpenCVReference.Rows, _ image: OpenCVReference.ImageCase) {
    let boxes = net.boxes(outputs: outputs, imageWidth: image.width, imageHeight: image.height, fit: .resize, threshold: 0)
    #expect(boxes.count == ref.count, "\(image.image): \(boxes.count) boxes, OpenCV has \(ref.count) rows")
    guard boxes.count == ref.count else { return }
    var worst: Float = 0, compared = 0, zeroedAbove = 0
    for (r, row) in zip(ref.indices, ref.rows) {
        let b = boxes[r]
        // w and h are exp(raw) · anchor: compare relatively (raw values agree to 1e-3).
        func rel(_ a: Float, _ e: Float) -> Float { abs(a - e) / max(1, abs(e)) }
        worst = max(worst, abs(b.x - row[0]), abs(b.y - row[1]), rel(b.w, row[2]), rel(b.h, row[3]), abs(b.objectness - row[4]))
        // OpenCV zeroes class scores at or below its region layer's default threshold, 0.2, so
        // a zero there only bounds Ocelli's score.
        for (j, p) in row.dropFirst(5).enumerated() {
            if p != 0 {
                worst = max(worst, abs(b.probabilities[j] - p))
                compared += 1
            } else if b.probabilities[j] > 0.2 + 1e-3 {
                zeroedAbove += 1
            }
        }
    }
    #expect(compared > 0 && zeroedAbove == 0, "\(image.image): \(compared) scores compared, \(zeroedAbove) above 0.2 that OpenCV zeroed")
    #expect(worst <= 1e-3, "\(image.image): decoded yolo rows differ by \(worst)")
}

@Suite(.serialized) struct OpenCVParityTests {
    @Test(.enabled(if: TestFiles.realWeightsAvailable, Comment(rawValue: TestFiles.realWeightsReason)))
    func yolov3TinyOnEveryPhoto() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        try net.loadWeights(Paths.tinyWeights)
        net.prepareForInference()  // as `ocelli detect` does; a network that packs on first use agrees bitwise
        let unprepared = try DarknetNetwork(cfg: Paths.tinyCfg)
        try unprepared.loadWeights(Paths.tinyWeights)
        try expectYoloV3TinyParity(net, unprepared: unprepared, OpenCVReference.shared.yolov3_tiny.images)
    }

    /// The real-weights test's paths without the 34 MB file, plus a sample of the decoded [yolo]
    /// rows. Synthetic weights give objectness about 0.5 everywhere, so the fixture records a
    /// threshold per photo that keeps 10 to 40 detections, none of them near a decision (a score
    /// at the threshold, an IoU at the NMS threshold, two overlapping scores nearly tied).
    @Test func yolov3TinyRandomWeights() throws {
        let ref = OpenCVReference.shared.yolov3_tiny_random
        let net = try DarknetNetwork(cfg: Paths.cfg(ref.cfg))
        let weights = syntheticWeights(net)
        #expect(weights.count == ref.weights_bytes)
        try net.loadWeights(weights)
        net.prepareForInference()
        let unprepared = try DarknetNetwork(cfg: Paths.cfg(ref.cfg))
        try unprepared.loadWeights(weights)
        try expectYoloV3TinyParity(net, unprepared: unprepared, ref.images, nmsThreshold: ref.nms_threshold)
    }

    func randomWeights(_ ref: OpenCVReference.Random) throws {
        let net = try DarknetNetwork(cfg: Paths.cfg(ref.cfg))
        let weights = syntheticWeights(net)
        #expect(weights.count == ref.weights_bytes)
        try net.loadWeights(weights)
        let outputs = net.forward(try opencvBlob(Paths.image("dog.jpg"), size: 416))
        expectSampled(outputs[0], ref.head, ref.cfg)
        // The region layer's decoded rows: OpenCV orders them cell-major then anchor; Darknet
        // (and Ocelli) anchor-major then cell.
        guard case .region(let head) = net.heads[0] else { Issue.record("no region head"); return }
        let boxes = net.boxes(outputs: outputs, imageWidth: 416, imageHeight: 416, fit: .resize, threshold: 0)
        let cells = head.gridWidth * head.gridHeight, num = head.anchors.count
        #expect(boxes.count == ref.region_rows.count)
        var worst: Float = 0, compared = 0, suppressed = 0
        for (r, row) in zip(ref.region_rows.indices, ref.region_rows.rows) {
            let b = boxes[(r % num) * cells + r / num]
            // w and h are exp(raw) · anchor: compare relatively (raw values agree to 1e-3).
            func rel(_ a: Float, _ e: Float) -> Float { abs(a - e) / max(1, abs(e)) }
            worst = max(worst, abs(b.x - row[0]), abs(b.y - row[1]), rel(b.w, row[2]), rel(b.h, row[3]), abs(b.objectness - row[4]))
            // OpenCV's region layer also runs NMS (and zeroes scores ≤ the cfg's thresh), so its
            // zeros are not comparable; every score it keeps must equal Ocelli's.
            for (j, p) in row.dropFirst(5).enumerated() {
                if p != 0 {
                    worst = max(worst, abs(b.probabilities[j] - p))
                    compared += 1
                } else if b.probabilities[j] > 0.6 + 1e-3 {
                    suppressed += 1
                }
            }
        }
        // Either scores were compared, or every score OpenCV zeroed is at or below its threshold.
        #expect(compared > 0 || suppressed == 0, "\(ref.cfg): \(suppressed) scores above 0.6 that OpenCV zeroed")
        #expect(worst <= 1e-3, "\(ref.cfg): decoded region rows differ by \(worst)")
    }

    @Test func yolov2TinyVocRandomWeights() throws { try randomWeights(OpenCVReference.shared.yolov2_tiny_voc) }
    @Test func yolov2VocRandomWeights() throws { try randomWeights(OpenCVReference.shared.yolov2_voc) }
}
