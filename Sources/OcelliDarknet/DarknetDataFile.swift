import Foundation
import OcelliTensor
import OcelliVision

/// Darknet's `.data` file (`darknet detector train obj.data yolo-obj.cfg`): `classes=`, `train=`
/// (a list of image paths, labels in YOLO format beside them), `valid=`, `names=`, `backup=`.
/// Paths are taken from the working directory as Darknet does, else from the `.data` file's folder.
public struct DarknetDataFile: Equatable, Sendable {
    public var file: String
    public var classes: Int
    public var train: String
    public var valid: String?
    public var names: String?
    public var backup: String

    public static func load(_ path: String) throws -> DarknetDataFile {
        let text: String
        do { text = String(decoding: try FileReading.bytes(atPath: path), as: UTF8.self) } catch {
            throw DarknetError(file: path, "cannot read the .data file: \(error.reason)")
        }
        return try DarknetDataFile(text: text, file: path)
    }

    public init(text: String, file: String = "<data>") throws {
        self.file = file
        var values: [String: (value: String, line: Int)] = [:]
        for (n, raw) in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" || $0 == "\r" }).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            guard let eq = trimmed.firstIndex(of: "=") else {
                throw DarknetError(file: file, line: n + 1, "expected key=value, got '\(trimmed)'")
            }
            let key = trimmed[..<eq].trimmingCharacters(in: .whitespaces), value = trimmed[trimmed.index(after: eq)...].trimmingCharacters(in: .whitespaces)
            values[key] = (value, n + 1)
        }
        let folder = (file as NSString).deletingLastPathComponent
        func path(_ key: String) -> String? {
            guard let v = values[key]?.value, !v.isEmpty else { return nil }
            if v.hasPrefix("/") || FileManager.default.fileExists(atPath: v) || folder.isEmpty { return v }
            let beside = (folder as NSString).appendingPathComponent(v)
            return FileManager.default.fileExists(atPath: beside) ? beside : v
        }
        guard let c = values["classes"] else { throw DarknetError(file: file, "missing classes=") }
        guard let classes = Int(c.value), (1...100_000).contains(classes) else {
            throw DarknetError(file: file, line: c.line, "classes=\(c.value) must be a whole number from 1 to 100000")
        }
        guard let train = path("train") else { throw DarknetError(file: file, "missing train= (the list of training images)") }
        self.classes = classes
        self.train = train
        self.valid = path("valid")
        self.names = path("names")
        self.backup = values["backup"].map(\.value).flatMap { $0.isEmpty ? nil : $0 } ?? "backup"
    }

    /// The training set (and the validation set when `valid=` is given), named by `names=`.
    /// - Parameter skipping: leave out the images whose files are at fault and pass their errors
    ///   here (see `DetectionDataset.load`), as a training run wants; nil throws the first.
    public func datasets(skipping: ((Error) -> Void)? = nil) throws -> (train: DetectionDataset, valid: DetectionDataset?) {
        let names = try self.names.map { try ClassNames.read($0) }
        if let names, names.count != classes {
            throw DarknetError(file: file, "names=\(self.names!) has \(names.count) names for classes=\(classes)")
        }
        func load(_ list: String) throws -> DetectionDataset {
            var set = try DetectionDataset.load(URL(fileURLWithPath: list), format: .yolo, skipping: skipping)
            var inRange: [AnnotatedImage] = []
            for image in set.images {
                if let o = image.objects.first(where: { $0.classIndex >= classes || $0.classIndex < 0 }) {
                    let error = DarknetError(file: list, "\(image.file.path) has class \(o.classIndex); \(file) says classes=\(classes)")
                    guard let skipping else { throw error }
                    skipping(error)
                } else {
                    inRange.append(image)
                }
            }
            set.images = inRange
            let named = names ?? (0..<classes).map(String.init)
            set.classNames = named
            for i in set.images.indices { for j in set.images[i].objects.indices {
                set.images[i].objects[j].className = named[set.images[i].objects[j].classIndex]
            } }
            return set
        }
        return (try load(train), try valid.map(load))
    }
}
