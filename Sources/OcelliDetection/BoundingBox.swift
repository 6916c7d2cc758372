import Foundation
import OcelliTensor
import OcelliVision

/// An axis-aligned box stored as corners (xyxy), in the package's one pixel convention: continuous,
/// 0-based pixels (a box over pixel columns 0…9 has xmin = 0, xmax = 10), or in relative units
/// (fractions of the image size) after `relative(imageWidth:imageHeight:)`.
///
/// The other layouts are explicit conversions:
///
///     xywh    (x, y, w, h), top-left corner and size (COCO)      xmin = x,          xmax = x + w
///     cxcywh  (cx, cy, w, h), centre and size (YOLO, Darknet)     xmin = cx − w / 2, xmax = cx + w / 2
///     VOC     (x1, y1, x2, y2), 1-based inclusive pixels          xmin = x1 − 1,     xmax = x2
///
/// With the VOC rule, the devkit's "+1" widths (x2 − x1 + 1) equal `width`, so its IoUs equal `iou(_:)`.
public struct BoundingBox: Equatable, Hashable, Sendable, CustomStringConvertible {
    public var xmin: Double
    public var ymin: Double
    public var xmax: Double
    public var ymax: Double

    /// A box from its corners (xyxy).
    public init(xmin: Double, ymin: Double, xmax: Double, ymax: Double) {
        self.xmin = xmin
        self.ymin = ymin
        self.xmax = xmax
        self.ymax = ymax
    }

    /// A box from its top-left corner and size (xywh, COCO's `bbox`).
    public init(x: Double, y: Double, width: Double, height: Double) {
        self.init(xmin: x, ymin: y, xmax: x + width, ymax: y + height)
    }

    /// A box from its centre and size (cxcywh, YOLO's and Darknet's layout).
    public init(centerX: Double, centerY: Double, width: Double, height: Double) {
        self.init(xmin: centerX - width / 2, ymin: centerY - height / 2,
                  xmax: centerX + width / 2, ymax: centerY + height / 2)
    }

    /// A box from VOC's 1-based inclusive pixel corners: x1…x2 covers x2 − x1 + 1 pixels.
    public init(vocX1 x1: Double, y1: Double, x2: Double, y2: Double) {
        self.init(xmin: x1 - 1, ymin: y1 - 1, xmax: x2, ymax: y2)
    }

    /// A box from a YOLO label line's relative centre and size, in pixels of a `imageWidth` x `imageHeight` image.
    public init(yoloCenterX cx: Double, centerY cy: Double, width w: Double, height h: Double,
                imageWidth: Int, imageHeight: Int) {
        let W = Double(imageWidth), H = Double(imageHeight)
        self.init(xmin: (cx - w / 2) * W, ymin: (cy - h / 2) * H, xmax: (cx + w / 2) * W, ymax: (cy + h / 2) * H)
    }

    /// The box of an annotated object.
    public init(_ object: ObjectAnnotation) {
        self.init(xmin: object.xmin, ymin: object.ymin, xmax: object.xmax, ymax: object.ymax)
    }

    public var width: Double { xmax - xmin }
    public var height: Double { ymax - ymin }
    /// Width × height; 0 for an empty or inverted box.
    public var area: Double { Swift.max(0, width) * Swift.max(0, height) }
    public var centerX: Double { (xmin + xmax) / 2 }
    public var centerY: Double { (ymin + ymax) / 2 }

    /// (x, y, w, h): top-left corner and size.
    public var xywh: (x: Double, y: Double, width: Double, height: Double) { (xmin, ymin, width, height) }
    /// (cx, cy, w, h): centre and size.
    public var cxcywh: (centerX: Double, centerY: Double, width: Double, height: Double) { (centerX, centerY, width, height) }
    /// VOC's 1-based inclusive corners (x1, y1, x2, y2).
    public var voc: (x1: Double, y1: Double, x2: Double, y2: Double) { (xmin + 1, ymin + 1, xmax, ymax) }

    /// The box in fractions of the image size (pixels divided by width and height).
    public func relative(imageWidth: Int, imageHeight: Int) -> BoundingBox {
        let W = Double(imageWidth), H = Double(imageHeight)
        return BoundingBox(xmin: xmin / W, ymin: ymin / H, xmax: xmax / W, ymax: ymax / H)
    }

    /// A relative box back in pixels of a `imageWidth` x `imageHeight` image.
    public func absolute(imageWidth: Int, imageHeight: Int) -> BoundingBox {
        let W = Double(imageWidth), H = Double(imageHeight)
        return BoundingBox(xmin: xmin * W, ymin: ymin * H, xmax: xmax * W, ymax: ymax * H)
    }

    /// The box clipped to `0…width` x `0…height`.
    public func clipped(width: Double, height: Double) -> BoundingBox {
        BoundingBox(xmin: Swift.min(Swift.max(xmin, 0), width), ymin: Swift.min(Swift.max(ymin, 0), height),
                    xmax: Swift.min(Swift.max(xmax, 0), width), ymax: Swift.min(Swift.max(ymax, 0), height))
    }

    /// The area both boxes cover (0 when they do not overlap).
    public func intersectionArea(_ other: BoundingBox) -> Double {
        let w = Swift.min(xmax, other.xmax) - Swift.max(xmin, other.xmin)
        let h = Swift.min(ymax, other.ymax) - Swift.max(ymin, other.ymin)
        return w > 0 && h > 0 ? w * h : 0
    }

    /// Intersection over union; 0 when the union is empty.
    public func iou(_ other: BoundingBox) -> Double {
        let inter = intersectionArea(other)
        let union = area + other.area - inter
        return union > 0 ? inter / union : 0
    }

    /// The smallest box holding both.
    public func enclosing(_ other: BoundingBox) -> BoundingBox {
        BoundingBox(xmin: Swift.min(xmin, other.xmin), ymin: Swift.min(ymin, other.ymin),
                    xmax: Swift.max(xmax, other.xmax), ymax: Swift.max(ymax, other.ymax))
    }

    /// Generalized IoU (Rezatofighi et al. 2019): IoU − (C − U) / C with C the enclosing box's area.
    /// In [−1, 1]; negative for boxes that do not overlap, growing as they approach.
    public func giou(_ other: BoundingBox) -> Double {
        let inter = intersectionArea(other)
        let union = area + other.area - inter
        let c = enclosing(other).area
        let iou = union > 0 ? inter / union : 0
        return c > 0 ? iou - (c - union) / c : iou
    }

    /// Distance IoU (Zheng et al. 2020): IoU − ρ² / c², with ρ the distance between the centres and
    /// c the diagonal of the enclosing box.
    public func diou(_ other: BoundingBox) -> Double {
        iou(other) - centerPenalty(other)
    }

    /// Complete IoU (Zheng et al. 2020): DIoU − α·v, with v = 4/π² (atan(w₂/h₂) − atan(w₁/h₁))² the
    /// aspect-ratio term and α = v / (1 − IoU + v) (torchvision's `complete_box_iou`, without its epsilon).
    public func ciou(_ other: BoundingBox) -> Double {
        let iou = iou(other)
        let v = aspectPenalty(other)
        let alpha = v > 0 ? v / (1 - iou + v) : 0
        return iou - centerPenalty(other) - alpha * v
    }

    func centerPenalty(_ other: BoundingBox) -> Double {
        let c = enclosing(other)
        let diagonal = c.width * c.width + c.height * c.height
        guard diagonal > 0 else { return 0 }
        let dx = centerX - other.centerX, dy = centerY - other.centerY
        return (dx * dx + dy * dy) / diagonal
    }

    func aspectPenalty(_ other: BoundingBox) -> Double {
        guard height > 0 && other.height > 0 else { return 0 }
        let d = atan(other.width / other.height) - atan(width / height)
        return 4 / (Double.pi * Double.pi) * d * d
    }

    public var description: String { "[\(xmin), \(ymin), \(xmax), \(ymax)]" }

    /// The IoU of every box in `a` with every box in `b`, row-major: element `i * b.count + j` is
    /// `a[i].iou(b[j])`. Areas are computed once; the inner loop runs over flat coordinate arrays.
    public static func pairwiseIoU(_ a: [BoundingBox], _ b: [BoundingBox]) -> [Double] {
        let n = a.count, m = b.count
        guard n > 0 && m > 0 else { return [] }
        let bx0 = b.map(\.xmin), by0 = b.map(\.ymin), bx1 = b.map(\.xmax), by1 = b.map(\.ymax)
        let bArea = b.map(\.area)
        var result = [Double](repeating: 0, count: n * m)
        result.withUnsafeMutableBufferPointer { out in
            for i in 0..<n {
                let box = a[i], aArea = box.area
                let row = out.baseAddress! + i * m
                for j in 0..<m {
                    let w = Swift.min(box.xmax, bx1[j]) - Swift.max(box.xmin, bx0[j])
                    let h = Swift.min(box.ymax, by1[j]) - Swift.max(box.ymin, by0[j])
                    let inter = w > 0 && h > 0 ? w * h : 0
                    let union = aArea + bArea[j] - inter
                    row[j] = union > 0 ? inter / union : 0
                }
            }
        }
        return result
    }
}
