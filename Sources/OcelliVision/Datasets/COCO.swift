import Foundation
import OcelliTensor

/// COCO JSON: `images` (id, file_name, width, height), `annotations` (id, image_id,
/// category_id, bbox [x, y, w, h] in 0-based continuous pixels, area, iscrowd) and
/// `categories` (id, name). Category ids map to contiguous class indices in id order (or in
/// `labels.txt` order); the original ids are kept in `DetectionDataset.categoryIDs`.
/// Ocelli also writes and reads `difficult` and `truncated` on annotations (VOC's flags;
/// other tools ignore them).
enum COCOFormat {
    /// Boxes may overshoot the image by this many pixels (COCO's own files do, slightly).
    static let tolerance = 1.0

    /// The annotation file for a folder and split.
    static func annotationFile(_ root: URL, split: String?) throws -> URL {
        let folder = root.appendingPathComponent("annotations")
        let files = try DatasetFiles.files(in: folder, extensions: ["json"])
        if let split {
            if let f = files.first(where: { $0.lastPathComponent == split + ".json" })
                ?? files.first(where: { $0.lastPathComponent.hasPrefix("instances_" + split) }) {
                return f
            }
            throw DatasetError(file: folder.path, "no annotation file for the split '\(split)': expected \(split).json or instances_\(split)*.json, found \(files.map(\.lastPathComponent))")
        }
        guard files.count == 1 else {
            throw DatasetError(file: folder.path, files.isEmpty ? "no .json annotation file" : "several annotation files (\(files.map(\.lastPathComponent).joined(separator: ", "))); pass a split")
        }
        return files[0]
    }

    static func read(_ url: URL, split: String?) throws -> DetectionDataset {
        let jsonFile: URL, root: URL
        var split = split
        if DatasetFiles.isFile(url) {
            jsonFile = url
            let folder = url.deletingLastPathComponent()
            root = folder.lastPathComponent == "annotations" ? folder.deletingLastPathComponent() : folder
        } else {
            jsonFile = try annotationFile(url, split: split)
            root = url
        }
        if split == nil {
            let stem = jsonFile.deletingPathExtension().lastPathComponent
            split = stem.hasPrefix("instances_") ? String(stem.dropFirst("instances_".count)) : stem
        }
        let file = jsonFile.path
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: file)) } catch {
            throw DatasetError(file: file, error.missing ? "no such file" : "cannot read the file: \(error.reason)")
        }
        let top: [String: Any]
        do {
            guard let object = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                throw DatasetError(file: file, "the top level is not a JSON object")
            }
            top = object
        } catch let error as DatasetError {
            throw error
        } catch {
            throw DatasetError(file: file, "malformed JSON: \(jsonErrorPosition(error))")
        }

        func array(_ key: String) throws -> [[String: Any]] {
            guard let value = top[key] else { throw DatasetError(file: file, "missing \"\(key)\"") }
            guard let items = value as? [Any] else { throw DatasetError(file: file, "\"\(key)\" is not an array") }
            return try items.enumerated().map { k, item in
                guard let d = item as? [String: Any] else { throw DatasetError(file: file, location: "\(key)[\(k)]", "not a JSON object") }
                return d
            }
        }
        func int(_ d: [String: Any], _ key: String, _ location: String) throws -> Int {
            guard let v = d[key] else { throw DatasetError(file: file, location: location, "missing \"\(key)\"") }
            guard let n = v as? NSNumber, let i = Int(exactly: n.doubleValue) else {
                throw DatasetError(file: file, location: location, "\"\(key)\" is \(v), expected an integer")
            }
            return i
        }
        func double(_ v: Any, _ what: String, _ location: String) throws -> Double {
            guard let n = v as? NSNumber, n.doubleValue.isFinite else {
                throw DatasetError(file: file, location: location, "\(what) is \(v), expected a number")
            }
            return n.doubleValue
        }
        func flag(_ d: [String: Any], _ key: String, _ location: String) throws -> Bool {
            guard let v = d[key] else { return false }
            if let b = v as? Bool { return b }
            return try double(v, "\"\(key)\"", location) != 0
        }

        // Categories → class indices.
        var categories: [(id: Int, name: String)] = []
        for (k, c) in try array("categories").enumerated() {
            let location = "categories[\(k)]"
            guard let name = c["name"] as? String else { throw DatasetError(file: file, location: location, "missing \"name\"") }
            categories.append((try int(c, "id", location), name))
        }
        var classNames: [String], categoryIDs: [Int]
        let labelsFile = root.appendingPathComponent("labels.txt")
        if DatasetFiles.isFile(labelsFile) {
            classNames = try DatasetFiles.classNames(in: labelsFile)
            let byName = Dictionary(categories.map { ($0.name, $0.id) }, uniquingKeysWith: { a, _ in a })
            let free = (categories.map(\.id).max() ?? 0) + 1
            var extra = 0
            categoryIDs = classNames.map { name in
                if let id = byName[name] { return id }
                extra += 1
                return free + extra - 1
            }
            if let missing = categories.first(where: { !classNames.contains($0.name) }) {
                throw DatasetError(file: file, "category '\(missing.name)' (id \(missing.id)) is not in \(labelsFile.path)")
            }
        } else {
            let sorted = categories.sorted { $0.id < $1.id }
            classNames = sorted.map(\.name)
            categoryIDs = sorted.map(\.id)
        }
        var classOfCategory: [Int: Int] = [:]
        for (index, id) in categoryIDs.enumerated() where classOfCategory[id] == nil { classOfCategory[id] = index }
        if categories.count != Set(categories.map(\.id)).count {
            throw DatasetError(file: file, "two categories share an id")
        }

        // Images.
        let candidates = [root.appendingPathComponent("images"), split.map { root.appendingPathComponent("images/" + $0) },
                          split.map { root.appendingPathComponent($0) }, jsonFile.deletingLastPathComponent(), root].compactMap { $0 }
        var images: [AnnotatedImage] = []
        var position: [Int: Int] = [:]
        for (k, d) in try array("images").enumerated() {
            let location = "images[\(k)]"
            let id = try int(d, "id", location)
            guard let name = d["file_name"] as? String else { throw DatasetError(file: file, location: location, "missing \"file_name\"") }
            let width = try int(d, "width", location), height = try int(d, "height", location)
            guard width > 0, height > 0 else { throw DatasetError(file: file, location: location, "size \(width)x\(height) is not positive") }
            guard position[id] == nil else { throw DatasetError(file: file, location: location, "image id \(id) appears twice") }
            let imageURL = name.hasPrefix("/") ? URL(fileURLWithPath: name)
                : candidates.map { $0.appendingPathComponent(name) }.first(where: DatasetFiles.isFile) ?? candidates[0].appendingPathComponent(name)
            position[id] = images.count
            images.append(AnnotatedImage(id: ((name as NSString).lastPathComponent as NSString).deletingPathExtension,
                                         file: imageURL.standardizedFileURL, width: width, height: height, objects: [], cocoID: id))
        }

        // Annotations.
        for (k, a) in (top["annotations"] == nil ? [] : try array("annotations")).enumerated() {
            var location = "annotations[\(k)]"
            if let id = a["id"] { location += " (id \(id))" }
            let imageID = try int(a, "image_id", location)
            guard let p = position[imageID] else {
                throw DatasetError(file: file, location: location, "image_id \(imageID) is not among the \(images.count) images")
            }
            let categoryID = try int(a, "category_id", location)
            guard let c = classOfCategory[categoryID] else {
                throw DatasetError(file: file, location: location, "category_id \(categoryID) is not a category (ids: \(categoryIDs.map(String.init).joined(separator: ", ")))")
            }
            guard let bbox = a["bbox"] as? [Any], bbox.count == 4 else {
                throw DatasetError(file: file, location: location, "\"bbox\" must be [x, y, width, height]")
            }
            let v = try bbox.map { try double($0, "a \"bbox\" value", location) }
            guard v[2] >= 0, v[3] >= 0 else { throw DatasetError(file: file, location: location, "\"bbox\" has a negative width or height: \(v)") }
            var area: Double? = nil
            if let raw = a["area"] { area = try double(raw, "\"area\"", location) }
            var box = ObjectAnnotation(classIndex: c, className: classNames[c], xmin: v[0], ymin: v[1], xmax: v[0] + v[2], ymax: v[1] + v[3],
                                       difficult: try flag(a, "difficult", location), truncated: try flag(a, "truncated", location),
                                       isCrowd: try flag(a, "iscrowd", location), segmentationArea: area)
            let image = images[p]
            if let problem = DatasetFiles.checkedBox(&box, width: image.width, height: image.height, tolerance: tolerance) {
                throw DatasetError(file: file, location: location, problem + " (image id \(imageID), \(image.id))")
            }
            images[p].objects.append(box)
        }
        return DetectionDataset(classNames: classNames, images: images, format: .coco, categoryIDs: categoryIDs, split: split)
    }

    /// An Int when the value is one (cleaner JSON), else the Double.
    static func json(_ v: Double) -> Any {
        let r = v.rounded()
        return v == r && abs(v) < 1e15 ? Int(r) as Any : v as Any
    }

    static func write(_ dataset: DetectionDataset, to root: URL, split: String) throws {
        let imagesFolder = root.appendingPathComponent("images"), annotations = root.appendingPathComponent("annotations")
        for d in [imagesFolder, annotations] { try DatasetFiles.makeDirectory(d) }
        var usedIDs = Set(dataset.images.compactMap(\.cocoID))
        if usedIDs.count != dataset.images.compactMap(\.cocoID).count { usedIDs = [] }
        var nextID = (usedIDs.max() ?? 0) + 1
        var images: [[String: Any]] = [], objects: [[String: Any]] = []
        for image in dataset.images {
            let id: Int
            if let c = image.cocoID, !usedIDs.isEmpty { id = c } else { id = nextID; nextID += 1 }
            let name = DatasetFiles.imageFileName(image)
            try DatasetFiles.placeImage(image.file, at: imagesFolder.appendingPathComponent(name))
            images.append(["id": id, "file_name": name, "width": image.width, "height": image.height])
            for o in image.objects {
                guard dataset.categoryIDs.indices.contains(o.classIndex) else {
                    throw DatasetError(file: image.file.path, "class index \(o.classIndex) is outside the \(dataset.classNames.count) classes")
                }
                let x0 = DatasetFiles.snapped(o.xmin), y0 = DatasetFiles.snapped(o.ymin)
                let x1 = DatasetFiles.snapped(o.xmax), y1 = DatasetFiles.snapped(o.ymax)
                var a: [String: Any] = [
                    "id": objects.count + 1, "image_id": id, "category_id": dataset.categoryIDs[o.classIndex],
                    "bbox": [json(x0), json(y0), json(x1 - x0), json(y1 - y0)],
                    "area": json(o.segmentationArea ?? (x1 - x0) * (y1 - y0)), "iscrowd": o.isCrowd ? 1 : 0,
                ]
                if o.difficult { a["difficult"] = 1 }
                if o.truncated { a["truncated"] = 1 }
                objects.append(a)
            }
        }
        let categories: [[String: Any]] = zip(dataset.categoryIDs, dataset.classNames).map { ["id": $0, "name": $1] }
        let top: [String: Any] = ["images": images, "annotations": objects, "categories": categories]
        let data = try JSONSerialization.data(withJSONObject: top, options: [.sortedKeys])
        try DatasetFiles.write(String(decoding: data, as: UTF8.self), to: annotations.appendingPathComponent(split + ".json"))
    }
}
