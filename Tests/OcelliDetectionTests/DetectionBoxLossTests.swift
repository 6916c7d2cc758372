import Foundation
import Testing
import OcelliTensor
import OcelliTestSupport
import OcelliVision
import OcelliDetection

/// The differentiable IoU family: values equal BoundingBox's, gradients equal finite differences.
@Suite("Detection box losses")
struct DetectionBoxLossTests {
    // Overlapping pairs and one disjoint pair; every min/max decision is at least 0.1 from a tie, so
    // the finite differences (step 1e-2) never cross a kink.
    static let a: [[Float]] = [[0, 0, 2, 3], [1, 1, 4, 2.5], [0, 0, 1, 1]]
    static let b: [[Float]] = [[0.5, 0.4, 2.6, 3.3], [0.2, 1.3, 3.1, 2.9], [1.5, 0.2, 2.5, 1.3]]

    static func tensor(_ rows: [[Float]]) -> Tensor { Tensor(shape: [rows.count, 4], scalars: rows.flatMap { $0 }) }
    static func box(_ r: [Float]) -> BoundingBox { BoundingBox(xmin: Double(r[0]), ymin: Double(r[1]), xmax: Double(r[2]), ymax: Double(r[3])) }

    @Test(arguments: BoxOverlap.allCases)
    func valuesAndGradients(kind: BoxOverlap) {
        let values = Tensor.boxIoU(Self.tensor(Self.a), Self.tensor(Self.b), kind)
        #expect(values.shape == [3])
        for i in 0..<3 {
            let p = Self.box(Self.a[i]), q = Self.box(Self.b[i])
            let expected: Double
            switch kind {
            case .iou: expected = p.iou(q)
            case .giou: expected = p.giou(q)
            case .diou: expected = p.diou(q)
            }
            #expect(abs(Double(values.scalars[i]) - expected) < 1e-5, "\(kind) pair \(i): \(values.scalars[i]) vs \(expected)")
        }
        let check = checkGradients([Self.tensor(Self.a), Self.tensor(Self.b)]) { xs in Tensor.boxIoU(xs[0], xs[1], kind) }
        #expect(check.passed, "\(check)")
    }

    @Test func broadcastsOneBoxAgainstMany() {
        let one = Tensor(shape: [1, 4], scalars: [0, 0, 2, 2])
        let many = Self.tensor(Self.b)
        let v = Tensor.boxIoU(one, many, .giou)
        #expect(v.shape == [3])
        for i in 0..<3 {
            #expect(abs(Double(v.scalars[i]) - BoundingBox(xmin: 0, ymin: 0, xmax: 2, ymax: 2).giou(Self.box(Self.b[i]))) < 1e-5)
        }
    }
}
