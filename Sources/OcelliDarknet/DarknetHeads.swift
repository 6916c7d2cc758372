/// A YOLOv3 `[yolo]` head: anchors in input pixels, `mask` picking this head's anchors, sigmoid
/// x, y, objectness and classes.
public struct YoloHead: Equatable, Sendable {
    /// Darknet's index of the `[yolo]` layer.
    public var layerIndex: Int
    public var classes: Int
    /// Every anchor of the cfg as (w, h) pairs in input pixels (`anchors=`; `num` pairs).
    public var anchors: [(Float, Float)]
    /// The anchors this head predicts (indices into `anchors`).
    public var mask: [Int]
    public var ignoreThreshold: Float
    public var truthThreshold: Float
    /// The grid: the shape of the head's input, [height, width, mask.count · (5 + classes)].
    public var gridHeight: Int
    public var gridWidth: Int

    public static func == (a: YoloHead, b: YoloHead) -> Bool {
        a.layerIndex == b.layerIndex && a.classes == b.classes && a.mask == b.mask
            && a.anchors.map(\.0) == b.anchors.map(\.0) && a.anchors.map(\.1) == b.anchors.map(\.1)
            && a.gridHeight == b.gridHeight && a.gridWidth == b.gridWidth
    }
}

/// A YOLOv2 `[region]` head: anchors in grid cells, sigmoid x, y and objectness, softmax classes.
public struct RegionHead: Equatable, Sendable {
    public var layerIndex: Int
    public var classes: Int
    public var coords: Int
    /// The anchors as (w, h) in grid cells (`num` pairs).
    public var anchors: [(Float, Float)]
    public var softmax: Bool
    public var background: Bool
    public var gridHeight: Int
    public var gridWidth: Int

    public static func == (a: RegionHead, b: RegionHead) -> Bool {
        a.layerIndex == b.layerIndex && a.classes == b.classes && a.coords == b.coords && a.softmax == b.softmax
            && a.anchors.map(\.0) == b.anchors.map(\.0) && a.anchors.map(\.1) == b.anchors.map(\.1)
            && a.background == b.background && a.gridHeight == b.gridHeight && a.gridWidth == b.gridWidth
    }
}

/// A YOLOv1 `[detection]` head: `side`×`side` cells, each with class probabilities and `num`
/// boxes with a confidence.
public struct DetectionHead: Equatable, Sendable {
    public var layerIndex: Int
    public var classes: Int
    public var coords: Int
    public var num: Int
    public var side: Int
    public var sqrt: Bool
    public var softmax: Bool
}

/// The output heads a Darknet network ends in.
public enum DarknetHead: Equatable, Sendable {
    case yolo(YoloHead)
    case region(RegionHead)
    case detection(DetectionHead)

    public var layerIndex: Int {
        switch self {
        case .yolo(let h): return h.layerIndex
        case .region(let h): return h.layerIndex
        case .detection(let h): return h.layerIndex
        }
    }

    public var classes: Int {
        switch self {
        case .yolo(let h): return h.classes
        case .region(let h): return h.classes
        case .detection(let h): return h.classes
        }
    }
}
