import Foundation
import OcelliTensor

/// Pascal VOC: `Annotations/<id>.xml`, `ImageSets/Main/<split>.txt`, `JPEGImages/<id>.jpg`.
/// Boxes in the XML are 1-based and inclusive (`xmin`…`xmax` are the first and last pixel
/// columns): xmin = x1 − 1, xmax = x2 in the package's 0-based continuous pixels.
enum VOCFormat {
    /// Boxes may overshoot the image by this much (float coordinates written by other tools).
    static let tolerance = 0.01

    /// One XML element: its name, text, children and the line it starts on.
    typealias Node = AnnotationXML.Node

    /// The offset of the first byte that is not valid UTF-8, nil for UTF-8 text.
    static func firstInvalidUTF8(_ data: Data) -> Int? {
        var parser = Unicode.UTF8.ForwardParser()
        var bytes = data.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &bytes) {
            case .valid(let scalar): offset += scalar.count
            case .emptyInput: return nil
            case .error: return offset
            }
        }
    }

    static func parseXML(_ url: URL) throws -> Node {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: url.path)) } catch {
            throw DatasetError(file: url.path, error.missing ? "no such file" : "cannot read the file: \(error.reason)")
        }
        // Annotations are UTF-8 text, as every VOC tool writes them.
        if let valid = firstInvalidUTF8(data) {
            let line = data.prefix(valid).reduce(1) { $1 == 0x0a ? $0 + 1 : $0 }
            throw DatasetError(file: url.path, line: line, "not UTF-8 text (byte \(valid + 1) is not valid UTF-8); VOC annotations are UTF-8 XML")
        }
        do { return try AnnotationXML.parse([UInt8](data)) } catch {
            throw DatasetError(file: url.path, line: error.line, "malformed XML: \(error.message)")
        }
    }

    /// An object as read from XML, before class indices are known.
    struct RawObject {
        var name: String
        var line: Int
        var box: ObjectAnnotation
    }

    /// Reads one annotation file; the boxes are checked against the image size.
    static func readAnnotation(_ url: URL, id: String, imagesDirectory: URL) throws -> (image: AnnotatedImage, objects: [RawObject]) {
        let root = try parseXML(url)
        let file = url.path
        guard root.name == "annotation" else {
            throw DatasetError(file: file, line: root.line, "the root element is <\(root.name)>, expected <annotation>")
        }
        func text(_ node: Node, _ name: String, in context: String) throws -> Node {
            guard let child = node.child(name) else {
                throw DatasetError(file: file, line: node.line, location: context == "annotation" ? nil : context,
                                   "missing <\(name)> in <\(node.name)>")
            }
            return child
        }
        func number(_ node: Node, _ name: String, in context: String) throws -> Double {
            let child = try text(node, name, in: context)
            guard let value = Double(child.value), value.isFinite else {
                throw DatasetError(file: file, line: child.line, location: context == "annotation" ? nil : context,
                                   "<\(name)> is '\(child.value)', expected a number")
            }
            return value
        }

        let size = try text(root, "size", in: "annotation")
        func side(_ name: String) throws -> Int {
            let v = try number(size, name, in: "annotation")
            guard v >= 0, v <= Double(DatasetFiles.maximumSide), v == v.rounded() else {
                throw DatasetError(file: file, line: size.line, "<\(name)> is \(DatasetFiles.number(v)), expected a whole number of pixels from 0 to \(DatasetFiles.maximumSide)")
            }
            return Int(v)
        }
        var width = try side("width")
        var height = try side("height")

        let imageFile: URL
        if let name = root.child("filename")?.value, !name.isEmpty {
            imageFile = imagesDirectory.appendingPathComponent(name)
        } else if let found = DatasetFiles.firstFile(in: imagesDirectory, named: ["jpg", "png", "jpeg", "JPG", "PNG"].map { id + "." + $0 }) {
            imageFile = found
        } else {
            throw DatasetError(file: file, line: root.line, "missing <filename>, and no \(id).jpg or \(id).png in \(imagesDirectory.path)")
        }
        if width <= 0 || height <= 0 {
            // Some tools write <width>0</width>; the image header then says the size.
            guard let s = try? Image.size(ofFileAt: imageFile.path) else {
                throw DatasetError(file: file, line: size.line, "<size> is \(width)x\(height) and the image \(imageFile.path) cannot be read for its size")
            }
            (width, height) = s
        }

        var objects: [RawObject] = []
        for (k, node) in root.all("object").enumerated() {
            let context = "object \(k + 1)"
            let name = try text(node, "name", in: context).value
            guard !name.isEmpty else { throw DatasetError(file: file, line: node.line, location: context, "<name> is empty") }
            let bndbox = try text(node, "bndbox", in: context)
            let x1 = try number(bndbox, "xmin", in: context), y1 = try number(bndbox, "ymin", in: context)
            let x2 = try number(bndbox, "xmax", in: context), y2 = try number(bndbox, "ymax", in: context)
            func flag(_ name: String) throws -> Bool {
                guard let child = node.child(name), !child.value.isEmpty else { return false }
                guard let v = Double(child.value) else {
                    throw DatasetError(file: file, line: child.line, location: context, "<\(name)> is '\(child.value)', expected 0 or 1")
                }
                return v != 0
            }
            // x1 = 0 (written by some annotation tools) maps to xmin = -1: clipped to the image edge.
            var box = ObjectAnnotation(classIndex: -1, className: name, xmin: max(0, x1 - 1), ymin: max(0, y1 - 1), xmax: x2, ymax: y2,
                                       difficult: try flag("difficult"), truncated: try flag("truncated"))
            if x1 < 0 || y1 < 0 {
                throw DatasetError(file: file, line: bndbox.line, location: context,
                                   "<bndbox> xmin \(DatasetFiles.number(x1)), ymin \(DatasetFiles.number(y1)): VOC coordinates are 1-based, expected at least 1")
            }
            if let problem = DatasetFiles.checkedBox(&box, width: width, height: height, tolerance: tolerance) {
                throw DatasetError(file: file, line: bndbox.line, location: context,
                                   problem + " (VOC <bndbox> \(DatasetFiles.number(x1)) \(DatasetFiles.number(y1)) \(DatasetFiles.number(x2)) \(DatasetFiles.number(y2)), 1-based inclusive)")
            }
            objects.append(RawObject(name: name, line: node.line, box: box))
        }
        return (AnnotatedImage(id: id, file: imageFile, width: width, height: height, objects: []), objects)
    }

    static func read(root: URL, split: String?, skipping: ((Error) -> Void)? = nil) throws -> DetectionDataset {
        let annotations = root.appendingPathComponent("Annotations")
        let images = root.appendingPathComponent("JPEGImages")
        guard DatasetFiles.isDirectory(annotations) else {
            throw DatasetError(file: root.path, "not a VOC data set: no Annotations/ folder")
        }
        var ids: [String]
        var split = split
        let lists = root.appendingPathComponent("ImageSets/Main")
        if split == nil, DatasetFiles.isDirectory(lists),
           let only = try? DatasetFiles.files(in: lists, extensions: ["txt"]), only.count == 1 {
            // One list (the digits set's train.txt, a converted split): that is the split.
            split = only[0].deletingPathExtension().lastPathComponent
        }
        if let split {
            let list = root.appendingPathComponent("ImageSets/Main/\(split).txt")
            guard DatasetFiles.isFile(list) else {
                throw DatasetError(file: list.path, "no such file: the split '\(split)' needs ImageSets/Main/\(split).txt")
            }
            // Lines hold an id, or an id and a flag (the per-class lists).
            ids = try DatasetFiles.lines(of: list).compactMap { line -> String? in
                guard let id = line.text.split(whereSeparator: { $0 == " " || $0 == "\t" }).first.map(String.init) else { return nil }
                // An id names files inside the data set: never a path out of it.
                guard !id.contains("/"), !id.contains("\\"), id != ".", id != ".." else {
                    throw DatasetError(file: list.path, line: line.number, "'\(id)' is not an image id (ids are file names without folders)")
                }
                return id
            }
        } else {
            ids = try DatasetFiles.files(in: annotations, extensions: ["xml"]).map { $0.deletingPathExtension().lastPathComponent }
        }

        var parsed: [(image: AnnotatedImage, objects: [RawObject])] = []
        var kept: [String] = []
        for id in ids {
            do {
                parsed.append(try readAnnotation(annotations.appendingPathComponent(id + ".xml"), id: id, imagesDirectory: images))
                kept.append(id)
            } catch {
                guard let skipping else { throw error }
                skipping(error)
            }
        }
        ids = kept
        let labelsFile = root.appendingPathComponent("labels.txt")
        let classNames: [String]
        if DatasetFiles.isFile(labelsFile) {
            classNames = try DatasetFiles.classNames(in: labelsFile)
        } else {
            classNames = Set(parsed.flatMap { $0.objects.map(\.name) }).sorted()
        }
        let index = Dictionary(classNames.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a })
        var result: [AnnotatedImage] = []
        result.reserveCapacity(parsed.count)
        images: for (id, entry) in zip(ids, parsed) {
            var image = entry.image
            for (k, raw) in entry.objects.enumerated() {
                guard let c = index[raw.name] else {
                    let error = DatasetError(file: annotations.appendingPathComponent(id + ".xml").path, line: raw.line, location: "object \(k + 1)",
                                             "class '\(raw.name)' is not in \(labelsFile.path) (\(classNames.count) names)")
                    guard let skipping else { throw error }
                    skipping(error)
                    continue images
                }
                var box = raw.box
                box.classIndex = c
                image.objects.append(box)
            }
            result.append(image)
        }
        return DetectionDataset(classNames: classNames, images: result, format: .voc, split: split)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// The VOC XML of one image (boxes 1-based inclusive).
    static func xml(_ image: AnnotatedImage, fileName: String, depth: Int = 3) -> String {
        var s = "<annotation>\n  <folder>JPEGImages</folder>\n  <filename>\(escape(fileName))</filename>\n"
        s += "  <size>\n    <width>\(image.width)</width>\n    <height>\(image.height)</height>\n    <depth>\(depth)</depth>\n  </size>\n"
        for o in image.objects {
            s += "  <object>\n    <name>\(escape(o.className))</name>\n"
            s += "    <truncated>\(o.truncated ? 1 : 0)</truncated>\n    <difficult>\(o.difficult ? 1 : 0)</difficult>\n"
            let x1 = DatasetFiles.snapped(o.xmin) + 1, y1 = DatasetFiles.snapped(o.ymin) + 1
            let x2 = DatasetFiles.snapped(o.xmax), y2 = DatasetFiles.snapped(o.ymax)
            s += "    <bndbox>\n      <xmin>\(DatasetFiles.number(x1))</xmin>\n      <ymin>\(DatasetFiles.number(y1))</ymin>\n"
            s += "      <xmax>\(DatasetFiles.number(x2))</xmax>\n      <ymax>\(DatasetFiles.number(y2))</ymax>\n    </bndbox>\n  </object>\n"
        }
        return s + "</annotation>\n"
    }

    static func write(_ dataset: DetectionDataset, to root: URL, split: String) throws {
        let annotations = root.appendingPathComponent("Annotations")
        let images = root.appendingPathComponent("JPEGImages")
        let sets = root.appendingPathComponent("ImageSets/Main")
        for d in [annotations, images, sets] { try DatasetFiles.makeDirectory(d) }
        for image in dataset.images {
            let name = DatasetFiles.imageFileName(image)
            try DatasetFiles.placeImage(image.file, at: images.appendingPathComponent(name))
            var named = image
            for k in named.objects.indices where dataset.classNames.indices.contains(named.objects[k].classIndex) {
                named.objects[k].className = dataset.classNames[named.objects[k].classIndex]
            }
            try DatasetFiles.write(xml(named, fileName: name), to: annotations.appendingPathComponent(image.id + ".xml"))
        }
        try DatasetFiles.write(dataset.images.map { $0.id + "\n" }.joined(), to: sets.appendingPathComponent(split + ".txt"))
    }
}
