import Foundation
import Testing
import OcelliTensor
import OcelliVision
import OcelliDetection

/// Box conversions and the IoU family, on values worked out by hand.
@Suite("Detection boxes")
struct DetectionBoxesTests {
    static func close(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool { abs(a - b) <= tolerance }

    @Test func conversions() {
        // VOC 1-based inclusive pixels 1…10 are continuous 0…10: ten pixels wide.
        let voc = BoundingBox(vocX1: 1, y1: 1, x2: 10, y2: 20)
        #expect(voc == BoundingBox(xmin: 0, ymin: 0, xmax: 10, ymax: 20))
        #expect(voc.width == 10 && voc.height == 20 && voc.area == 200)
        #expect(voc.voc == (1, 1, 10, 20))
        let xywh = BoundingBox(x: 3, y: 4, width: 10, height: 6)
        #expect(xywh == BoundingBox(xmin: 3, ymin: 4, xmax: 13, ymax: 10))
        #expect(xywh.xywh == (3, 4, 10, 6))
        #expect(xywh.cxcywh == (8, 7, 10, 6))
        #expect(BoundingBox(centerX: 8, centerY: 7, width: 10, height: 6) == xywh)
        // YOLO: relative centre and size in a 200 x 100 image.
        let yolo = BoundingBox(yoloCenterX: 0.5, centerY: 0.25, width: 0.1, height: 0.2, imageWidth: 200, imageHeight: 100)
        #expect(Self.close(yolo.xmin, 90) && Self.close(yolo.ymin, 15) && Self.close(yolo.xmax, 110) && Self.close(yolo.ymax, 35))
        let relative = yolo.relative(imageWidth: 200, imageHeight: 100)
        #expect(Self.close(relative.xmin, 0.45) && Self.close(relative.ymin, 0.15) && Self.close(relative.xmax, 0.55) && Self.close(relative.ymax, 0.35))
        let back = relative.absolute(imageWidth: 200, imageHeight: 100)
        #expect(Self.close(back.xmin, 90) && Self.close(back.xmax, 110) && Self.close(back.ymin, 15) && Self.close(back.ymax, 35))
        #expect(BoundingBox(xmin: -5, ymin: 3, xmax: 250, ymax: 40).clipped(width: 200, height: 30)
                == BoundingBox(xmin: 0, ymin: 3, xmax: 200, ymax: 30))
        // An inverted box has no area.
        #expect(BoundingBox(xmin: 5, ymin: 5, xmax: 1, ymax: 9).area == 0)
    }

    @Test func vocPlusOneIoUEqualsContinuousIoU() {
        // The devkit: boxes (1,1)-(10,10) and (6,6)-(15,15), inclusive: intersection 5 x 5, areas 100.
        let a = BoundingBox(vocX1: 1, y1: 1, x2: 10, y2: 10), b = BoundingBox(vocX1: 6, y1: 6, x2: 15, y2: 15)
        let devkit = 25.0 / (100 + 100 - 25)
        #expect(a.iou(b) == devkit)
    }

    @Test func iouFamily() {
        let a = BoundingBox(xmin: 0, ymin: 0, xmax: 10, ymax: 10)
        let b = BoundingBox(xmin: 5, ymin: 5, xmax: 15, ymax: 15)
        // Intersection 25, union 175, enclosing box 15 x 15 = 225.
        #expect(Self.close(a.iou(b), 1.0 / 7))
        #expect(Self.close(a.giou(b), 1.0 / 7 - 50.0 / 225))
        // Centres (5,5) and (10,10): ρ² = 50; enclosing diagonal² = 450.
        #expect(Self.close(a.diou(b), 1.0 / 7 - 50.0 / 450))
        // Same aspect ratio: no CIoU penalty beyond DIoU.
        #expect(Self.close(a.ciou(b), a.diou(b)))
        // Different aspect: a 10 x 10 and c 20 x 10 sharing the left edge.
        let c = BoundingBox(xmin: 0, ymin: 0, xmax: 20, ymax: 10)
        let v = 4 / (Double.pi * Double.pi) * pow(atan(2.0) - atan(1.0), 2)
        let alpha = v / (1 - 0.5 + v)
        #expect(Self.close(a.iou(c), 0.5))
        #expect(Self.close(a.diou(c), 0.5 - 25.0 / 500))
        #expect(Self.close(a.ciou(c), 0.5 - 25.0 / 500 - alpha * v))
        // Disjoint boxes: IoU 0, GIoU negative: −(C − U)/C = −(3 − 2)/3.
        let d = BoundingBox(xmin: 0, ymin: 0, xmax: 1, ymax: 1), e = BoundingBox(xmin: 2, ymin: 0, xmax: 3, ymax: 1)
        #expect(d.iou(e) == 0)
        #expect(Self.close(d.giou(e), -1.0 / 3))
        // Identical boxes: everything is 1.
        #expect(a.iou(a) == 1 && a.giou(a) == 1 && a.diou(a) == 1 && a.ciou(a) == 1)
        // Touching edges do not intersect; empty boxes give 0, not NaN.
        #expect(a.iou(BoundingBox(xmin: 10, ymin: 0, xmax: 20, ymax: 10)) == 0)
        let empty = BoundingBox(xmin: 3, ymin: 3, xmax: 3, ymax: 3)
        #expect(empty.iou(empty) == 0)
    }

    @Test func pairwiseIoUMatchesOneByOne() {
        var g = SeededGenerator(seed: 7)
        func random() -> BoundingBox {
            let x = Double.random(in: 0..<100, using: &g), y = Double.random(in: 0..<100, using: &g)
            return BoundingBox(x: x, y: y, width: Double.random(in: 1..<40, using: &g), height: Double.random(in: 1..<40, using: &g))
        }
        let a = (0..<7).map { _ in random() }, b = (0..<17).map { _ in random() }
        let m = BoundingBox.pairwiseIoU(a, b)
        #expect(m.count == 7 * 17)
        for i in 0..<7 {
            for j in 0..<17 { #expect(m[i * 17 + j] == a[i].iou(b[j])) }
        }
        #expect(BoundingBox.pairwiseIoU([], b).isEmpty)
    }
}
