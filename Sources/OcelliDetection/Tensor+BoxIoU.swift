import OcelliTensor
import OcelliVision

/// Which overlap measure `Tensor.boxIoU` computes.
public enum BoxOverlap: String, CaseIterable, Sendable {
    case iou, giou, diou
}

extension Tensor {
    /// IoU, GIoU or DIoU of boxes `a` and `b`, element-wise and differentiable (composed from tape
    /// ops, for IoU-based box losses such as `1 − giou`).
    ///
    /// - Parameters:
    ///   - a, b: [..., 4] corners (xmin, ymin, xmax, ymax); shapes broadcast.
    ///   - epsilon: added to the union and to the enclosing box's area / squared diagonal, as
    ///     torchvision's `generalized_box_iou_loss` does (1e-7), so that empty boxes give finite values.
    /// - Returns: [...] (the last axis reduced). Same definitions as `BoundingBox.iou/giou/diou`.
    public static func boxIoU(_ a: Tensor, _ b: Tensor, _ kind: BoxOverlap = .iou, epsilon: Float = 1e-7) -> Tensor {
        precondition(a.shape.last == 4 && b.shape.last == 4, "Tensor.boxIoU: boxes must be [..., 4], got \(a.shape) and \(b.shape)")
        let axis = a.rank - 1, axisB = b.rank - 1
        let ac = a.split(count: 4, axis: axis), bc = b.split(count: 4, axis: axisB)
        let (ax0, ay0, ax1, ay1) = (ac[0], ac[1], ac[2], ac[3])
        let (bx0, by0, bx1, by1) = (bc[0], bc[1], bc[2], bc[3])
        let iw = (Tensor.minimum(ax1, bx1) - Tensor.maximum(ax0, bx0)).relu()
        let ih = (Tensor.minimum(ay1, by1) - Tensor.maximum(ay0, by0)).relu()
        let inter = iw * ih
        let areaA = (ax1 - ax0) * (ay1 - ay0), areaB = (bx1 - bx0) * (by1 - by0)
        let union = areaA + areaB - inter
        let iou = inter / (union + epsilon)
        let cw = Tensor.maximum(ax1, bx1) - Tensor.minimum(ax0, bx0)
        let ch = Tensor.maximum(ay1, by1) - Tensor.minimum(ay0, by0)
        let result: Tensor
        switch kind {
        case .iou:
            result = iou
        case .giou:
            let c = cw * ch
            result = iou - (c - union) / (c + epsilon)
        case .diou:
            let diagonal = cw.square() + ch.square() + epsilon
            let dx = (ax0 + ax1 - bx0 - bx1) * 0.5, dy = (ay0 + ay1 - by0 - by1) * 0.5
            result = iou - (dx.square() + dy.square()) / diagonal
        }
        return result.squeezingShape(at: [result.rank - 1])
    }
}
