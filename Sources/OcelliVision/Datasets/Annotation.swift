import Foundation

// The shared vocabulary of detection data: one annotated object, one annotated image, a data set.
//
// Pixel convention (one for the whole package): boxes are in **continuous, 0-based image pixels**,
// the COCO convention. A box covering pixel columns 0…9 has xmin = 0, xmax = 10. Conversions:
//   VOC (1-based, inclusive: x1…x2)   ->  xmin = x1 − 1, xmax = x2
//   COCO [x, y, w, h]                ->  xmin = x, xmax = x + w
//   YOLO (cx, cy, w, h relative)      ->  xmin = (cx − w/2)·W, xmax = (cx + w/2)·W
// With this rule, VOC's "+1" widths and IoUs equal the continuous ones exactly.

/// One object in an image: its class and its box in continuous 0-based pixels.
public struct ObjectAnnotation: Equatable, Sendable {
    public var classIndex: Int
    public var className: String
    public var xmin: Double
    public var ymin: Double
    public var xmax: Double
    public var ymax: Double
    /// VOC's `difficult` flag: ignored by VOC evaluation (neither true nor false positive).
    public var difficult: Bool
    /// VOC's `truncated` flag (carried through conversions; not used by evaluation).
    public var truncated: Bool
    /// COCO's `iscrowd`: a crowd region, matched by COCO evaluation without counting.
    public var isCrowd: Bool
    /// COCO's `area` (segmentation area) when the source gives one; otherwise nil and the box area is used.
    public var segmentationArea: Double?

    public init(classIndex: Int, className: String, xmin: Double, ymin: Double, xmax: Double, ymax: Double,
                difficult: Bool = false, truncated: Bool = false, isCrowd: Bool = false,
                segmentationArea: Double? = nil) {
        self.classIndex = classIndex
        self.className = className
        self.xmin = xmin
        self.ymin = ymin
        self.xmax = xmax
        self.ymax = ymax
        self.difficult = difficult
        self.truncated = truncated
        self.isCrowd = isCrowd
        self.segmentationArea = segmentationArea
    }

    public var width: Double { xmax - xmin }
    public var height: Double { ymax - ymin }
    /// The area COCO evaluation uses for its small/medium/large ranges.
    public var area: Double { segmentationArea ?? width * height }
}

/// One image of a detection data set and its objects.
public struct AnnotatedImage: Equatable, Sendable {
    /// The image's id: the file name without extension for VOC and YOLO data (`000012`); for COCO data
    /// the same rule applied to `file_name`, with the numeric COCO id kept in `cocoID`.
    public var id: String
    /// Where the pixels are (absolute path).
    public var file: URL
    public var width: Int
    public var height: Int
    public var objects: [ObjectAnnotation]
    public var cocoID: Int?

    public init(id: String, file: URL, width: Int, height: Int, objects: [ObjectAnnotation], cocoID: Int? = nil) {
        self.id = id
        self.file = file
        self.width = width
        self.height = height
        self.objects = objects
        self.cocoID = cocoID
    }
}

/// The on-disk layouts Ocelli reads and writes.
public enum DetectionDatasetFormat: String, CaseIterable, Sendable {
    case voc, yolo, coco
}
