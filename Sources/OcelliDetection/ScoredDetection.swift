import Foundation
import OcelliTensor
import OcelliVision

/// One detection a model made: which image, which class, how confident, and where (continuous
/// 0-based pixels, the package's convention; see `BoundingBox`).
public struct ScoredDetection: Equatable, Sendable {
    /// The image's `AnnotatedImage.id` (the file name without extension for VOC and YOLO data).
    public var imageID: String
    /// Index into the data set's class names.
    public var classIndex: Int
    public var score: Double
    public var xmin: Double
    public var ymin: Double
    public var xmax: Double
    public var ymax: Double

    public init(imageID: String, classIndex: Int, score: Double, xmin: Double, ymin: Double, xmax: Double, ymax: Double) {
        self.imageID = imageID
        self.classIndex = classIndex
        self.score = score
        self.xmin = xmin
        self.ymin = ymin
        self.xmax = xmax
        self.ymax = ymax
    }

    public init(imageID: String, classIndex: Int, score: Double, box: BoundingBox) {
        self.init(imageID: imageID, classIndex: classIndex, score: score,
                  xmin: box.xmin, ymin: box.ymin, xmax: box.xmax, ymax: box.ymax)
    }

    public var box: BoundingBox { BoundingBox(xmin: xmin, ymin: ymin, xmax: xmax, ymax: ymax) }
}

/// A problem with detections or ground truth handed to an evaluation, or with a detections file.
/// The description names the file (when there is one), the entry and what was expected.
public struct DetectionEvaluationError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The detections file, or nil for detections passed in memory.
    public var file: String?
    /// The 0-based index of the offending entry (detection), when the problem is one entry.
    public var entry: Int?
    public var message: String

    public init(file: String? = nil, entry: Int? = nil, message: String) {
        self.file = file
        self.entry = entry
        self.message = message
    }

    public var description: String {
        var place = file ?? "detections"
        if let entry { place += ": entry \(entry)" }
        return "\(place): \(message)"
    }

    public var errorDescription: String? { description }
}

/// Reading and writing detections in the COCO results format:
/// `[{"image_id": …, "category_id": …, "bbox": [x, y, w, h], "score": …}, …]`.
///
/// For VOC and YOLO data `image_id` is the image file's name without extension (a string; a number
/// is accepted and matched as its decimal text) and `category_id` is the class index in the data set's
/// label list. For COCO data a numeric `image_id` is matched against `AnnotatedImage.cocoID` first, and
/// with `categoryIDs` given, `category_id` is COCO's category id (so pycocotools' files read as they are).
/// `bbox` is COCO's [x, y, width, height] in continuous 0-based pixels.
public enum DetectionsFile {
    /// Parses a results file's bytes. `images` gives the known image ids; `classCount` the number of
    /// classes. Throws a `DetectionEvaluationError` naming `file` and the entry for anything malformed
    /// (not an array, missing or non-numeric fields, a bbox that is not four finite numbers, a negative
    /// width or height, a non-finite score, an unknown image id, a class index out of range).
    ///
    /// With `categoryIDs` (COCO data: the COCO category id of each class index), `category_id` is a COCO
    /// category id and is mapped to its class index.
    public static func parse(_ data: Data, file: String, images: [AnnotatedImage], classCount: Int,
                             categoryIDs: [Int]? = nil) throws -> [ScoredDetection] {
        let json: Any
        do {
            json = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        } catch {
            throw DetectionEvaluationError(file: file, message: "not valid JSON (\(jsonErrorPosition(error)))")
        }
        guard let entries = json as? [Any] else {
            throw DetectionEvaluationError(file: file, message: "expected a JSON array of {\"image_id\", \"category_id\", \"bbox\", \"score\"} objects, got \(typeName(json))")
        }
        var byID: [String: String] = [:]
        var byCocoID: [Int: String] = [:]
        for image in images {
            byID[image.id] = image.id
            if let c = image.cocoID { byCocoID[c] = image.id }
        }
        var classOfCategory: [Int: Int] = [:]
        for (k, id) in (categoryIDs ?? []).enumerated() where classOfCategory[id] == nil { classOfCategory[id] = k }
        var result: [ScoredDetection] = []
        result.reserveCapacity(entries.count)
        for (index, entry) in entries.enumerated() {
            func fail(_ message: String) -> DetectionEvaluationError {
                DetectionEvaluationError(file: file, entry: index, message: message)
            }
            guard let object = entry as? [String: Any] else { throw fail("expected an object, got \(typeName(entry))") }
            // image_id: a string, or a number (a COCO id, or an id like 000012 written as 12 would not match: say so).
            guard let rawImage = object["image_id"] else { throw fail("missing \"image_id\"") }
            let imageID: String
            if let s = rawImage as? String {
                guard let known = byID[s] else { throw fail("unknown image_id \"\(s)\" (not an image of the data set\(hint(images)))") }
                imageID = known
            } else if let n = rawImage as? NSNumber, let i = exactInt(n) {
                if let known = byCocoID[i] ?? byID[String(i)] {
                    imageID = known
                } else {
                    throw fail("unknown image_id \(i) (not an image of the data set\(hint(images)))")
                }
            } else {
                throw fail("\"image_id\" must be a string (the image file name without extension) or an integer, got \(typeName(rawImage))")
            }
            guard let rawClass = object["category_id"] else { throw fail("missing \"category_id\"") }
            guard let n = rawClass as? NSNumber, var classIndex = exactInt(n) else {
                throw fail("\"category_id\" must be an integer class index, got \(typeName(rawClass))")
            }
            if let categoryIDs {
                guard let k = classOfCategory[classIndex] else {
                    throw fail("unknown category_id \(classIndex): the data set's COCO category ids are \(categoryIDs.prefix(12).map(String.init).joined(separator: ", "))\(categoryIDs.count > 12 ? ", …" : "")")
                }
                classIndex = k
            }
            guard classIndex >= 0 && classIndex < classCount else {
                throw fail("category_id \(classIndex) is out of range: the data set has \(classCount) classes (0…\(classCount - 1))")
            }
            guard let rawBox = object["bbox"] else { throw fail("missing \"bbox\"") }
            guard let list = rawBox as? [Any], list.count == 4 else {
                throw fail("\"bbox\" must be [x, y, width, height], got \(describe(rawBox))")
            }
            var v = [Double](repeating: 0, count: 4)
            for k in 0..<4 {
                guard let n = list[k] as? NSNumber, n.doubleValue.isFinite else {
                    throw fail("\"bbox\" must hold four finite numbers [x, y, width, height], got \(describe(rawBox))")
                }
                v[k] = n.doubleValue
            }
            guard v[2] >= 0 && v[3] >= 0 else {
                throw fail("\"bbox\" width and height must not be negative, got [\(v[0]), \(v[1]), \(v[2]), \(v[3])]")
            }
            guard let rawScore = object["score"] else { throw fail("missing \"score\"") }
            guard let s = rawScore as? NSNumber, s.doubleValue.isFinite else {
                throw fail("\"score\" must be a finite number, got \(describe(rawScore))")
            }
            result.append(ScoredDetection(imageID: imageID, classIndex: classIndex, score: s.doubleValue,
                                          box: BoundingBox(x: v[0], y: v[1], width: v[2], height: v[3])))
        }
        return result
    }

    /// Reads a results file (see `parse`).
    public static func read(path: String, images: [AnnotatedImage], classCount: Int, categoryIDs: [Int]? = nil) throws -> [ScoredDetection] {
        let data: Data
        do {
            data = Data(try FileIO.contents(of: path))
        } catch let error as ImageError {
            throw DetectionEvaluationError(file: path, message: error.reason == .fileNotFound ? "no such file" : "cannot read it (\(error))")
        }
        return try parse(data, file: path, images: images, classCount: classCount, categoryIDs: categoryIDs)
    }

    /// The detections in the COCO results format (image ids as strings, or as numbers when
    /// `numericImageIDs` maps them), one entry per detection, keys sorted.
    public static func encode(_ detections: [ScoredDetection], numericImageIDs: [String: Int]? = nil) -> Data {
        var out = "["
        for (i, d) in detections.enumerated() {
            if i > 0 { out += ",\n" }
            let id: String
            if let n = numericImageIDs?[d.imageID] { id = String(n) } else { id = jsonString(d.imageID) }
            out += "{\"bbox\":[\(d.xmin),\(d.ymin),\(d.xmax - d.xmin),\(d.ymax - d.ymin)],\"category_id\":\(d.classIndex),"
                + "\"image_id\":\(id),\"score\":\(d.score)}"
        }
        out += "]\n"
        return Data(out.utf8)
    }

    static func exactInt(_ n: NSNumber) -> Int? {
        let d = n.doubleValue
        guard d.isFinite, d == d.rounded(), Swift.abs(d) < 9.0e15 else { return nil }
        return Int(d)
    }

    static func hint(_ images: [AnnotatedImage]) -> String {
        guard let first = images.first else { return "; the data set has no images" }
        return "; image ids look like \"\(first.id)\"" + (first.cocoID.map { " or \($0)" } ?? "")
    }

    static func typeName(_ value: Any) -> String {
        switch value {
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        case let n as NSNumber: return "the number \(n)"
        default: return "\(type(of: value))"
        }
    }

    static func describe(_ value: Any) -> String {
        if let data = try? JSONSerialization.data(withJSONObject: value, options: [.fragmentsAllowed]),
           let s = String(data: data, encoding: .utf8) {
            return s.count > 80 ? String(s.prefix(80)) + "…" : s
        }
        return typeName(value)
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for c in s.unicodeScalars {
            switch c {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            default:
                if c.value < 0x20 { out += String(format: "\\u%04x", c.value) } else { out.unicodeScalars.append(c) }
            }
        }
        return out + "\""
    }
}
