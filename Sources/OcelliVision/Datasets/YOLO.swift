import Foundation

/// Darknet/YOLO text: a list file of image paths, and per image a label file of lines
/// `class cx cy w h` (centre and size relative to the image, 0…1). Darknet finds the label file
/// from the image path (`fill_truth_detection`): the first `images` becomes `labels`, the first
/// `JPEGImages` becomes `labels`, and the extension becomes `.txt`.
enum YOLOFormat {
    /// Relative coordinates may overshoot the image by this many pixels (rounding).
    static let tolerance = 0.5

    /// The label path Darknet derives from an image path (`images/a.jpg` → `labels/a.txt`,
    /// `VOC2007/JPEGImages/x.jpg` → `VOC2007/labels/x.txt`).
    static func labelPath(forImagePath path: String) -> String {
        var p = path
        for (from, to) in [("images", "labels"), ("JPEGImages", "labels")] {
            if let r = p.range(of: from) { p.replaceSubrange(r, with: to) }
        }
        let slash = p.lastIndex(of: "/") ?? p.startIndex
        if let dot = p.lastIndex(of: "."), dot > slash { p = String(p[..<dot]) }
        return p + ".txt"
    }

    static func resolve(_ path: String, against directory: URL) -> URL {
        path.hasPrefix("/") ? URL(fileURLWithPath: path) : directory.appendingPathComponent(path)
    }

    /// The class names for a YOLO folder: labels.txt, classes.txt, obj.names or *.names.
    static func namesFile(in directory: URL) -> URL? {
        if let f = DatasetFiles.firstFile(in: directory, named: ["labels.txt", "classes.txt", "obj.names"]) { return f }
        return (try? DatasetFiles.files(in: directory, extensions: ["names"]))?.first
    }

    static func read(_ url: URL, split: String?, skipping: ((Error) -> Void)? = nil) throws -> DetectionDataset {
        // (image path as written, the folder it is relative to)
        var entries: [(path: String, base: URL)] = []
        let folder: URL
        var split = split
        if DatasetFiles.isFile(url) {
            folder = url.deletingLastPathComponent()
            entries = try listEntries(url)
            if split == nil { split = url.deletingPathExtension().lastPathComponent }
        } else {
            folder = url
            if let split, DatasetFiles.isFile(url.appendingPathComponent(split + ".txt")) {
                entries = try listEntries(url.appendingPathComponent(split + ".txt"))
            } else {
                let candidates = (split.map { ["images/\($0)", "JPEGImages/\($0)"] } ?? []) + (split == nil ? ["images", "JPEGImages"] : [])
                guard let sub = candidates.first(where: { DatasetFiles.isDirectory(url.appendingPathComponent($0)) }) else {
                    let wanted = split.map { "\($0).txt or images/\($0)/" } ?? "images/ or JPEGImages/"
                    throw DatasetError(file: url.path, "not a YOLO data set: no \(wanted)")
                }
                entries = try DatasetFiles.files(in: url.appendingPathComponent(sub), extensions: DatasetFiles.imageExtensions)
                    .map { (sub + "/" + $0.lastPathComponent, url) }
            }
        }

        var classNames: [String]? = nil
        if let names = namesFile(in: folder) { classNames = try DatasetFiles.classNames(in: names) }

        var images: [AnnotatedImage] = []
        images.reserveCapacity(entries.count)
        var labelFilesFound = 0
        var largestClass = -1
        var missingLabels: [(image: String, label: String)] = []
        for entry in entries {
            let imageURL = resolve(entry.path, against: entry.base).standardizedFileURL
            var labelURL = resolve(labelPath(forImagePath: entry.path), against: entry.base)
            if !DatasetFiles.isFile(labelURL) {
                // Newer Darknet forks also look beside the image.
                let beside = imageURL.deletingPathExtension().appendingPathExtension("txt")
                if DatasetFiles.isFile(beside) { labelURL = beside }
            }
            do {
                let size = try Image.size(ofFileAt: imageURL.path)
                var image = AnnotatedImage(id: imageURL.deletingPathExtension().lastPathComponent, file: imageURL,
                                           width: size.width, height: size.height, objects: [])
                if DatasetFiles.isFile(labelURL) {
                    labelFilesFound += 1
                    image.objects = try readLabels(labelURL, width: size.width, height: size.height, classCount: classNames?.count)
                } else {
                    missingLabels.append((entry.path, labelURL.path))
                    continue
                }
                largestClass = max(largestClass, image.objects.map(\.classIndex).max() ?? -1)
                images.append(image)
            } catch {
                guard let skipping else { throw error }
                skipping(error)
            }
        }
        // A missing label file is an error only when others exist (a folder of labels with gaps):
        // the image is left out with a warning when skipping, else the reading stops.
        if labelFilesFound > 0 {
            for (image, label) in missingLabels {
                let error = DatasetError(file: label, "no label file for \(image) (an image without objects needs an empty one)")
                guard let skipping else { throw error }
                skipping(error)
            }
        }
        if labelFilesFound == 0 && !entries.isEmpty {
            throw DatasetError(file: url.path, "no label files found: for \(entries[0].path) looked for "
                               + "\(resolve(labelPath(forImagePath: entries[0].path), against: entries[0].base).path) (Darknet's rule: images → labels, JPEGImages → labels, extension → .txt)")
        }
        let names = classNames ?? (0..<(largestClass + 1)).map(String.init)
        for i in images.indices {
            for k in images[i].objects.indices { images[i].objects[k].className = names[images[i].objects[k].classIndex] }
        }
        return DetectionDataset(classNames: names, images: images, format: .yolo, split: split)
    }

    /// The image paths of a list file (empty lines and `#` comments skipped).
    static func listEntries(_ list: URL) throws -> [(path: String, base: URL)] {
        let base = list.deletingLastPathComponent()
        return try DatasetFiles.lines(of: list).compactMap { line in
            let path = line.text.trimmingCharacters(in: .whitespaces)
            return path.isEmpty || path.hasPrefix("#") ? nil : (path, base)
        }
    }

    /// The objects of one label file, in pixels of a `width` x `height` image.
    static func readLabels(_ url: URL, width: Int, height: Int, classCount: Int?) throws -> [ObjectAnnotation] {
        var objects: [ObjectAnnotation] = []
        for line in try DatasetFiles.lines(of: url) {
            let fields = line.text.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if fields.isEmpty { continue }
            guard fields.count == 5 else {
                throw DatasetError(file: url.path, line: line.number, "expected 5 fields \"class cx cy w h\", found \(fields.count): '\(line.text)'")
            }
            guard let c = Int(fields[0]), c >= 0 else {
                throw DatasetError(file: url.path, line: line.number, "class '\(fields[0])' is not a class index (an integer from 0)")
            }
            if let classCount, c >= classCount {
                throw DatasetError(file: url.path, line: line.number, "class \(c) is out of range: the data set has \(classCount) classes (0…\(classCount - 1))")
            }
            var v = [Double]()
            for f in fields[1...] {
                guard let x = Double(f), x.isFinite else {
                    throw DatasetError(file: url.path, line: line.number, "'\(f)' is not a number (line: '\(line.text)')")
                }
                v.append(x)
            }
            guard v[2] >= 0, v[3] >= 0 else {
                throw DatasetError(file: url.path, line: line.number, "negative box size w \(f6(v[2])), h \(f6(v[3]))")
            }
            let w = Double(width), h = Double(height)
            var box = ObjectAnnotation(classIndex: c, className: String(c),
                                       xmin: (v[0] - v[2] / 2) * w, ymin: (v[1] - v[3] / 2) * h,
                                       xmax: (v[0] + v[2] / 2) * w, ymax: (v[1] + v[3] / 2) * h)
            if let problem = DatasetFiles.checkedBox(&box, width: width, height: height, tolerance: tolerance) {
                throw DatasetError(file: url.path, line: line.number, problem + " (relative cx cy w h: \(fields[1...].joined(separator: " ")))")
            }
            objects.append(box)
        }
        return objects
    }

    static func f6(_ x: Double) -> String { String(format: "%.6f", x) }

    /// One label line per object: `class cx cy w h`, relative, six decimals (1e-6 of the image:
    /// a thousandth of a pixel below 1000 pixels).
    static func labelText(_ image: AnnotatedImage) -> String {
        let w = Double(image.width), h = Double(image.height)
        return image.objects.map { o in
            "\(o.classIndex) \(f6((o.xmin + o.xmax) / 2 / w)) \(f6((o.ymin + o.ymax) / 2 / h)) \(f6(o.width / w)) \(f6(o.height / h))\n"
        }.joined()
    }

    static func write(_ dataset: DetectionDataset, to root: URL, split: String) throws {
        let images = root.appendingPathComponent("images"), labels = root.appendingPathComponent("labels")
        for d in [images, labels] { try DatasetFiles.makeDirectory(d) }
        var list = ""
        for image in dataset.images {
            let name = DatasetFiles.imageFileName(image)
            try DatasetFiles.placeImage(image.file, at: images.appendingPathComponent(name))
            try DatasetFiles.write(labelText(image), to: labels.appendingPathComponent(image.id + ".txt"))
            list += "images/\(name)\n"
        }
        try DatasetFiles.write(list, to: root.appendingPathComponent(split + ".txt"))
    }
}

extension DetectionDataset {
    /// The label file Darknet reads for an image (`fill_truth_detection`): the first `images`
    /// in the path becomes `labels`, the first `JPEGImages` becomes `labels`, the extension
    /// becomes `.txt` (`VOC2007/JPEGImages/000001.jpg` → `VOC2007/labels/000001.txt`).
    public static func darknetLabelPath(forImagePath path: String) -> String {
        YOLOFormat.labelPath(forImagePath: path)
    }
}
