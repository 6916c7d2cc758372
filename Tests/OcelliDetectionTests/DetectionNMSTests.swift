import Foundation
import Testing
import OcelliTensor
import OcelliVision
import OcelliDetection

/// NMS against OpenCV's NMSBoxes (equal to torchvision's kernel; Scripts/make_detection_eval_fixtures.py)
/// and on hand-worked cases for soft-NMS and Darknet's do_nms_sort.
@Suite("Detection NMS")
struct DetectionNMSTests {
    struct Fixture: Decodable {
        struct Case: Decodable {
            var iou_threshold: Double
            var keep: [Int]
        }
        var boxes: [[Double]]
        var scores: [Double]
        var cases: [Case]
        var classes: [Int]
        var batched_keep_0_5: [Int]
    }

    @Test func greedyMatchesOpenCVAndTorchvision() throws {
        let f = try Fixtures.json("detection/nms_fixture.json", as: Fixture.self)
        let boxes = f.boxes.map { BoundingBox(xmin: $0[0], ymin: $0[1], xmax: $0[2], ymax: $0[3]) }
        #expect(boxes.count == 500)
        for c in f.cases {
            let keep = NonMaximumSuppression.greedy(boxes: boxes, scores: f.scores, iouThreshold: c.iou_threshold)
            #expect(keep == c.keep, "threshold \(c.iou_threshold)")
        }
        let batched = NonMaximumSuppression.batched(boxes: boxes, scores: f.scores, classes: f.classes, iouThreshold: 0.5)
        #expect(batched == f.batched_keep_0_5)
    }

    /// The windowed search must give what the plain O(n²) loop gives, also with wide boxes, duplicates
    /// and equal scores.
    @Test func greedyEqualsNaiveLoop() {
        var g = SeededGenerator(seed: 11)
        for trial in 0..<42 {
            let n = [1, 2, 3, 7, 17, 65, 300][trial % 7]
            var boxes: [BoundingBox] = [], scores: [Double] = []
            for _ in 0..<n {
                let x = Double(Int.random(in: 0..<200, using: &g)), y = Double(Int.random(in: 0..<200, using: &g))
                let w = Double(Int.random(in: 1..<(trial % 2 == 0 ? 40 : 190), using: &g)), h = Double(Int.random(in: 1..<60, using: &g))
                boxes.append(BoundingBox(x: x, y: y, width: w, height: h))
                scores.append(Double(Int.random(in: 0..<10, using: &g)) / 10)  // many ties
            }
            if n > 3 { boxes[2] = boxes[1]; scores[2] = scores[1] }
            let threshold = [0.0, 0.3, 0.45, 0.7, 1.0, -0.1, 0.5][trial % 7 == 6 ? 6 : trial % 6]
            let order = Array(0..<n).sorted { scores[$0] > scores[$1] || (scores[$0] == scores[$1] && $0 < $1) }
            var suppressed = [Bool](repeating: false, count: n), naive: [Int] = []
            for (r, i) in order.enumerated() where !suppressed[i] {
                naive.append(i)
                for j in order[(r + 1)...] where boxes[i].iou(boxes[j]) > threshold { suppressed[j] = true }
            }
            #expect(NonMaximumSuppression.greedy(boxes: boxes, scores: scores, iouThreshold: threshold) == naive,
                    "trial \(trial), \(n) boxes, threshold \(threshold)")
        }
        #expect(NonMaximumSuppression.greedy(boxes: [], scores: [], iouThreshold: 0.5).isEmpty)
    }

    @Test func softNMS() {
        let boxes = [BoundingBox(xmin: 0, ymin: 0, xmax: 10, ymax: 10),   // 0.9
                     BoundingBox(xmin: 0, ymin: 0, xmax: 10, ymax: 5),    // 0.8, IoU 0.5 with box 0
                     BoundingBox(xmin: 20, ymin: 20, xmax: 30, ymax: 30)] // 0.7, apart
        let scores = [0.9, 0.8, 0.7]
        let linear = NonMaximumSuppression.soft(boxes: boxes, scores: scores, method: .linear(iouThreshold: 0.3))
        #expect(linear.map(\.index) == [0, 2, 1])
        #expect(abs(linear[2].score - 0.8 * 0.5) < 1e-12)
        let gaussian = NonMaximumSuppression.soft(boxes: boxes, scores: scores, method: .gaussian(sigma: 0.5))
        #expect(gaussian.map(\.index) == [0, 2, 1])
        #expect(abs(gaussian[2].score - 0.8 * exp(-0.25 / 0.5)) < 1e-12)
        #expect(gaussian[1].score == 0.7)
        // Linear below its threshold changes nothing; a score decayed under scoreThreshold is dropped.
        let mild = NonMaximumSuppression.soft(boxes: boxes, scores: scores, method: .linear(iouThreshold: 0.6))
        #expect(mild.map(\.score) == [0.9, 0.8, 0.7])
        let strict = NonMaximumSuppression.soft(boxes: boxes, scores: scores, method: .linear(iouThreshold: 0.3), scoreThreshold: 0.5)
        #expect(strict.map(\.index) == [0, 2])
    }

    @Test func darknetDoNmsSort() {
        // Centre-size boxes: 0 and 1 overlap (IoU 90/110), 2 is apart, 3 sits on 0 but has objectness 0.
        let boxes: [(x: Float, y: Float, w: Float, h: Float)] = [(5, 5, 10, 10), (6, 5, 10, 10), (50, 50, 10, 10), (5, 5, 10, 10)]
        var probabilities: [Float] = [0.9, 0.2,
                                      0.8, 0.6,
                                      0.0, 0.7,
                                      0.95, 0.0]
        NonMaximumSuppression.darknetSort(boxes: boxes, objectness: [1, 1, 1, 0], probabilities: &probabilities,
                                          classes: 2, threshold: 0.45)
        // Class 0: 0 suppresses 1. Class 1: 2 first (apart), then 1 suppresses 0. Box 3 takes no part.
        #expect(probabilities == [0.9, 0, 0, 0.6, 0, 0.7, 0.95, 0])
        #expect(abs(NonMaximumSuppression.darknetIoU(boxes[0], boxes[1]) - 90.0 / 110.0) < 1e-6)
    }
}
