import Foundation
import OcelliTensor
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A detection data set: class names and annotated images, read from (and written to) Pascal VOC,
/// Darknet/YOLO or COCO layouts. Boxes follow the package's pixel convention (see
/// `ObjectAnnotation`: continuous 0-based pixels), whatever the layout on disk.
///
///     let train = try DetectionDataset.load(URL(fileURLWithPath: "digits"), split: "train")
///     try train.write(to: URL(fileURLWithPath: "digits-yolo"), format: .yolo)
public struct DetectionDataset: Equatable, Sendable {
    /// Class names in class-index order.
    public var classNames: [String]
    public var images: [AnnotatedImage]
    /// The layout the data set was read from.
    public var format: DetectionDatasetFormat
    /// The COCO category id of each class index (from the COCO file, else 1, 2, 3, ...);
    /// written back as the categories' ids.
    public var categoryIDs: [Int]
    /// The split that was read (`train`, `val`, ...), if one was asked for or implied by a file name.
    public var split: String?

    public init(classNames: [String], images: [AnnotatedImage], format: DetectionDatasetFormat,
                categoryIDs: [Int]? = nil, split: String? = nil) {
        precondition(categoryIDs == nil || categoryIDs!.count == classNames.count,
                     "DetectionDataset: \(categoryIDs!.count) category ids for \(classNames.count) classes")
        self.classNames = classNames
        self.images = images
        self.format = format
        self.categoryIDs = categoryIDs ?? classNames.indices.map { $0 + 1 }
        self.split = split
    }

    /// The number of objects over all images.
    public var objectCount: Int { images.reduce(0) { $0 + $1.objects.count } }

    /// Reads a data set. With `format` nil the layout is recognised from the files:
    /// - VOC: a folder with `Annotations/` (and `ImageSets/Main/<split>.txt`, `JPEGImages/`);
    /// - COCO: a `.json` file, or a folder with `annotations/*.json`;
    /// - YOLO: a list file of image paths (`.txt`), or a folder with `labels/` beside
    ///   `images/` or `JPEGImages/` (and optionally `<split>.txt` list files).
    ///
    /// Class names come from `labels.txt` in the data set folder (one per line, index order) when
    /// present; otherwise VOC uses the sorted unique object names, YOLO `classes.txt` or
    /// `obj.names` (or "0", "1", ... up to the largest class seen), COCO its categories in id order.
    ///
    /// - Parameter split: VOC: the ids in `ImageSets/Main/<split>.txt` (nil: the only list in
    ///   `ImageSets/Main/` when there is just one, else every XML in `Annotations/`); YOLO: the list file `<split>.txt` or the folder `images/<split>/`
    ///   (nil: `images/` or `JPEGImages/` whole); COCO: `annotations/instances_<split>*.json` or
    ///   `annotations/<split>.json` (nil: the only JSON file there).
    /// - Parameter skipping: when given, an image whose own files are at fault (a label line that
    ///   is not `class cx cy w h`, a class out of range, a box outside the image, an annotation
    ///   that does not parse, an image header that cannot be read, a YOLO label file missing
    ///   beside others that exist) is left out and its error passed here, as a training run wants;
    ///   an empty label file is an image without objects (a negative), not an error. Errors of the
    ///   data set as a whole (no such folder, an unreadable list) still throw. COCO reads one
    ///   file and always throws.
    /// - Throws: `DatasetError` naming the file, line or object at fault; `ImageError` when an
    ///   image header (YOLO) cannot be read.
    public static func load(_ url: URL, format: DetectionDatasetFormat? = nil, split: String? = nil,
                            skipping: ((Error) -> Void)? = nil) throws -> DetectionDataset {
        let url = url.standardizedFileURL
        let layout = try format ?? detectFormat(url)
        switch layout {
        case .voc: return try VOCFormat.read(root: url, split: split, skipping: skipping)
        case .yolo: return try YOLOFormat.read(url, split: split, skipping: skipping)
        case .coco: return try COCOFormat.read(url, split: split)
        }
    }

    /// The layout of the data set at `url` (see `load`).
    public static func detectFormat(_ url: URL) throws -> DetectionDatasetFormat {
        let path = url.path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw DatasetError(file: path, "no such file or folder")
        }
        if !isDirectory.boolValue {
            switch url.pathExtension.lowercased() {
            case "json": return .coco
            case "txt", "list": return .yolo
            default:
                throw DatasetError(file: path, "cannot tell the data set format from the file: expected a COCO .json file or a YOLO list file (.txt); pass the format explicitly")
            }
        }
        func isFolder(_ name: String) -> Bool {
            var d: ObjCBool = false
            return FileManager.default.fileExists(atPath: url.appendingPathComponent(name).path, isDirectory: &d) && d.boolValue
        }
        if isFolder("Annotations") { return .voc }
        if isFolder("annotations"),
           let names = try? FileManager.default.contentsOfDirectory(atPath: url.appendingPathComponent("annotations").path),
           names.contains(where: { $0.lowercased().hasSuffix(".json") }) {
            return .coco
        }
        if isFolder("labels") && (isFolder("images") || isFolder("JPEGImages")) { return .yolo }
        throw DatasetError(file: path, "cannot tell the data set layout: expected VOC (Annotations/ and ImageSets/Main/), "
                           + "COCO (annotations/*.json) or YOLO (labels/ beside images/ or JPEGImages/); pass the format explicitly")
    }

    /// Writes the data set under `directory` in `format`, with its images hard-linked (copied
    /// when linking fails) and `labels.txt` (the class names). Layouts written:
    /// - VOC: `JPEGImages/<id>.<ext>`, `Annotations/<id>.xml`, `ImageSets/Main/<split>.txt`;
    /// - YOLO: `images/<id>.<ext>`, `labels/<id>.txt`, `<split>.txt` (image paths relative to
    ///   the folder);
    /// - COCO: `images/<id>.<ext>`, `annotations/<split>.json`.
    ///
    /// - Parameter split: the split's name in the files written (default: the split that was
    ///   read, else `train`).
    public func write(to directory: URL, format: DetectionDatasetFormat, split: String? = nil) throws {
        let split = split ?? self.split ?? "train"
        let directory = directory.standardizedFileURL
        try DatasetFiles.makeDirectory(directory)
        // Outputs never replace inputs: the destination (symbolic links resolved) must not be the
        // data set being read, the folder of its images or the folder above it.
        let target = DatasetFiles.realPath(directory.path)
        var folders = Set<String>()
        for image in images {
            let folder = image.file.deletingLastPathComponent()
            guard folders.insert(folder.path).inserted else { continue }
            let real = DatasetFiles.realPath(folder.path)
            if target == real || target == (real as NSString).deletingLastPathComponent {
                throw DatasetError(file: directory.path, "is where the data set being read lies (its images are in \(real)): write the converted data set to another folder")
            }
        }
        var seen = Set<String>()
        for image in images where !seen.insert(image.id).inserted {
            throw DatasetError(file: directory.path, "two images have the id '\(image.id)'; ids name the files written, so they must be unique")
        }
        switch format {
        case .voc: try VOCFormat.write(self, to: directory, split: split)
        case .yolo: try YOLOFormat.write(self, to: directory, split: split)
        case .coco: try COCOFormat.write(self, to: directory, split: split)
        }
        try DatasetFiles.write(classNames.map { $0 + "\n" }.joined(), to: directory.appendingPathComponent("labels.txt"))
    }
}

/// File helpers shared by the readers and writers.
enum DatasetFiles {
    /// The largest image side a data set may state (a larger one is an error, not an allocation).
    static let maximumSide = 65_536

    /// The lines of a text file (any of \n, \r\n), with their 1-based numbers; trailing spaces kept.
    static func lines(of url: URL) throws -> [(number: Int, text: Substring)] {
        let text = try string(of: url)
        var result: [(Int, Substring)] = []
        var number = 0
        // "\r\n" is one Character in Swift, so splitting on "\n" alone would leave a CRLF file
        // (Windows-made labels and lists, which Darknet reads) as one line.
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            number += 1
            result.append((number, line.hasSuffix("\r") ? line.dropLast() : line))
        }
        return result
    }

    static func string(of url: URL) throws -> String {
        let bytes: [UInt8]
        do {
            bytes = try FileIO.contents(of: url.path)
        } catch let error as ImageError {
            switch error.reason {
            case .fileNotFound: throw DatasetError(file: url.path, "no such file")
            case .unreadable(let why): throw DatasetError(file: url.path, "cannot read the file: \(why)")
            default: throw DatasetError(file: url.path, error.description)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Class names from a names file: one per line, surrounding spaces trimmed, empty lines skipped.
    static func classNames(in url: URL) throws -> [String] {
        var names: [String] = []
        for line in try lines(of: url) {
            let name = line.text.trimmingCharacters(in: .whitespaces)
            guard name.count <= 1_000 else {
                throw DatasetError(file: url.path, line: line.number, "a class name of \(name.count) characters (at most 1000): is this a names file?")
            }
            if !name.isEmpty { names.append(name) }
        }
        return names
    }

    /// The first of `names` that exists as a file in `directory`.
    static func firstFile(in directory: URL, named names: [String]) -> URL? {
        names.map { directory.appendingPathComponent($0) }.first { isFile($0) }
    }

    static func isFile(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && !d.boolValue
    }

    static func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }

    /// The files of a folder (not recursive), sorted by name.
    static func files(in directory: URL, extensions: Set<String>) throws -> [URL] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw DatasetError(file: directory.path, "cannot list the folder: \(systemReason(error))")
        }
        return names.sorted().filter { !$0.hasPrefix(".") && extensions.contains(($0 as NSString).pathExtension.lowercased()) }
            .map { directory.appendingPathComponent($0) }
    }

    static let imageExtensions: Set<String> = ["jpg", "jpeg", "png"]

    static func makeDirectory(_ url: URL) throws {
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw DatasetError(file: url.path, "cannot create the folder: \(OcelliTensor.folderFailureReason(url.path, error))")
        }
    }

    /// `path` with symbolic links, `.` and `..` resolved (as given when it does not exist).
    static func realPath(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return (path as NSString).standardizingPath }
        defer { free(p) }
        return String(cString: p)
    }

    static func write(_ text: String, to url: URL) throws {
        do {
            try FileIO.writeAtomically(Array(text.utf8), to: url.path)
        } catch let error as ImageError {
            throw DatasetError(file: url.path, error.description)
        }
    }

    /// Places the image file `source` at `destination`: a hard link when both are on one file
    /// system, else a copy. An existing destination is replaced.
    static func placeImage(_ source: URL, at destination: URL) throws {
        if source.standardizedFileURL.path == destination.standardizedFileURL.path { return }
        // The same file under another name (a link): nothing to do, and unlinking would lose it.
        var a = stat(), b = stat()
        if stat(source.path, &a) == 0, stat(destination.path, &b) == 0, a.st_dev == b.st_dev, a.st_ino == b.st_ino { return }
        unlink(destination.path)
        if link(source.path, destination.path) == 0 { return }
        do {
            try FileManager.default.copyItem(at: source, to: destination)
        } catch {
            throw DatasetError(file: source.path, "cannot copy the image to \(destination.path): \(systemReason(error))")
        }
    }

    /// The file name an image gets in a written data set: its id and its file's extension.
    static func imageFileName(_ image: AnnotatedImage) -> String {
        let ext = image.file.pathExtension
        return ext.isEmpty ? image.id : image.id + "." + ext
    }

    /// A pixel coordinate as written to VOC and COCO files: snapped to the nearest integer when
    /// within 0.001 pixel of it, which undoes the rounding of YOLO's six relative decimals
    /// (1e-6 of the image size) so that VOC → YOLO → VOC gives back VOC's integers.
    static func snapped(_ value: Double) -> Double {
        let rounded = value.rounded()
        return abs(value - rounded) <= 1e-3 ? rounded : value
    }

    /// A coordinate for text formats: an integer when it is one (to 1e-6), else up to 6 decimals
    /// with trailing zeros dropped.
    static func number(_ value: Double) -> String {
        guard value.isFinite, abs(value) < 1e15 else { return String(format: "%g", value) }
        let rounded = value.rounded()
        if abs(value - rounded) < 1e-6 { return String(Int(rounded)) }
        var text = String(format: "%.6f", value)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// Checks a box against its image and clips it into the image when it overshoots by at most
    /// `tolerance` pixels (rounding in text formats); beyond that it is an error.
    static func checkedBox(_ object: inout ObjectAnnotation, width: Int, height: Int, tolerance: Double) -> String? {
        let values = [object.xmin, object.ymin, object.xmax, object.ymax]
        if values.contains(where: { !$0.isFinite }) { return "box has a coordinate that is not a finite number" }
        let w = Double(width), h = Double(height)
        if object.xmin < -tolerance || object.ymin < -tolerance || object.xmax > w + tolerance || object.ymax > h + tolerance {
            return "box (xmin \(number(object.xmin)), ymin \(number(object.ymin)), xmax \(number(object.xmax)), ymax \(number(object.ymax))) "
                + "in 0-based pixels lies outside the \(width)x\(height) image"
        }
        if object.xmax < object.xmin || object.ymax < object.ymin {
            return "box has xmax < xmin or ymax < ymin (xmin \(number(object.xmin)), ymin \(number(object.ymin)), xmax \(number(object.xmax)), ymax \(number(object.ymax)))"
        }
        object.xmin = max(0, object.xmin); object.ymin = max(0, object.ymin)
        object.xmax = min(w, object.xmax); object.ymax = min(h, object.ymax)
        return nil
    }
}
