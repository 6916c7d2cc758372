import Foundation
import Testing
import OcelliVision

/// Broken annotation files give a `DatasetError` naming the file and the line or object, and
/// saying what is wrong; nothing crashes.
@Suite("Dataset bad input")
struct DatasetBadInputTests {
    /// A copy of a fixture data set in a fresh folder, with `file` replaced by `text`.
    static func broken(_ fixture: String, _ file: String, _ text: String) throws -> (root: URL, file: String) {
        let directory = try Fixtures.temporaryDirectory()
        let root = directory.appendingPathComponent(fixture)
        try FileManager.default.copyItem(at: DatasetFormatTests.fixture(fixture), to: root)
        let url = root.appendingPathComponent(file)
        try? FileManager.default.removeItem(at: url)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return (root, url.path)
    }

    static func loadError(_ root: URL, split: String? = nil) throws -> DatasetError {
        defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }
        return try #require(throws: DatasetError.self) { try DetectionDataset.load(root, split: split) }
    }

    static let vocHeader = "<annotation>\n<filename>a.png</filename>\n<size><width>40</width><height>30</height></size>\n"

    @Test func vocMissingField() throws {
        let (root, file) = try Self.broken("voc", "Annotations/a.xml", Self.vocHeader + """
            <object><name>dog</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
            <object><name>cat</name>
            <bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax></bndbox></object>
            </annotation>
            """)
        let error = try Self.loadError(root)
        #expect(error.description == "\(file):6: object 2: missing <ymax> in <bndbox>")
        #expect(error.line == 6 && error.location == "object 2")
    }

    @Test func vocMissingSizeAndName() throws {
        let (root, file) = try Self.broken("voc", "Annotations/a.xml", "<annotation>\n<filename>a.png</filename>\n</annotation>\n")
        #expect(try Self.loadError(root).description == "\(file):1: missing <size> in <annotation>")
        let (root2, file2) = try Self.broken("voc", "Annotations/a.xml", Self.vocHeader + "<object><bndbox/></object></annotation>")
        #expect(try Self.loadError(root2).description == "\(file2):4: object 1: missing <name> in <object>")
    }

    @Test func vocBoxOutsideImage() throws {
        let (root, file) = try Self.broken("voc", "Annotations/a.xml", Self.vocHeader + """
            <object><name>dog</name><bndbox><xmin>5</xmin><ymin>1</ymin><xmax>41</xmax><ymax>20</ymax></bndbox></object>
            </annotation>
            """)
        let error = try Self.loadError(root)
        #expect(error.description.hasPrefix("\(file):4: object 1: box (xmin 4, ymin 0, xmax 41, ymax 20) in 0-based pixels lies outside the 40x30 image"))
    }

    @Test func vocNotANumberAndBadXML() throws {
        let (root, file) = try Self.broken("voc", "Annotations/a.xml", Self.vocHeader + """
            <object><name>dog</name><bndbox><xmin>five</xmin><ymin>1</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
            </annotation>
            """)
        #expect(try Self.loadError(root).description == "\(file):4: object 1: <xmin> is 'five', expected a number")
        let (root2, file2) = try Self.broken("voc", "Annotations/a.xml", Self.vocHeader + "<object><name>dog</object>")
        let error = try Self.loadError(root2)
        #expect(error.file == file2)
        #expect(error.description == "\(file2):4: malformed XML: the end tag </object> does not match <name> from line 4")
        let (root3, file3) = try Self.broken("voc", "Annotations/a.xml", Self.vocHeader + "<object><name>dog</name>")
        #expect(try Self.loadError(root3).description.hasPrefix("\(file3):4: malformed XML: the document ends early (<object> from line 4 is not closed)"))
    }

    @Test func vocMissingSplitAndAnnotation() throws {
        let error = try #require(throws: DatasetError.self) { try DetectionDataset.load(DatasetFormatTests.fixture("voc"), split: "test") }
        #expect(error.description.hasSuffix("ImageSets/Main/test.txt: no such file: the split 'test' needs ImageSets/Main/test.txt"))
        let (root, file) = try Self.broken("voc", "ImageSets/Main/train.txt", "a\nmissing\n")
        _ = file
        let missing = try Self.loadError(root, split: "train")
        #expect(missing.description == root.appendingPathComponent("Annotations/missing.xml").path + ": no such file")
    }

    @Test func yoloWrongFieldCount() throws {
        let (root, file) = try Self.broken("yolo", "labels/c.txt", "1 0.5 0.5 0.2 0.5\n0 0.1 0.25 0.2\n")
        let error = try Self.loadError(root.appendingPathComponent("train.txt"))
        #expect(error.description == "\(file):2: expected 5 fields \"class cx cy w h\", found 4: '0 0.1 0.25 0.2'")
    }

    @Test func yoloClassOutOfRange() throws {
        let (root, file) = try Self.broken("yolo", "labels/c.txt", "\n2 0.5 0.5 0.2 0.5\n")
        let error = try Self.loadError(root.appendingPathComponent("train.txt"))
        #expect(error.description == "\(file):2: class 2 is out of range: the data set has 2 classes (0…1)")
        let (root2, file2) = try Self.broken("yolo", "labels/c.txt", "-1 0.5 0.5 0.2 0.5\n")
        #expect(try Self.loadError(root2.appendingPathComponent("train.txt")).description
                == "\(file2):1: class '-1' is not a class index (an integer from 0)")
    }

    @Test func yoloBadNumbersAndBoxes() throws {
        let (root, file) = try Self.broken("yolo", "labels/c.txt", "0 0.5 nan 0.2 0.5\n")
        #expect(try Self.loadError(root.appendingPathComponent("train.txt")).description == "\(file):1: 'nan' is not a number (line: '0 0.5 nan 0.2 0.5')")
        let (root2, file2) = try Self.broken("yolo", "labels/c.txt", "0 1.5 0.5 0.2 0.5\n")
        let outside = try Self.loadError(root2.appendingPathComponent("train.txt"))
        #expect(outside.description.hasPrefix("\(file2):1: box (xmin 70, ymin 5, xmax 80, ymax 15) in 0-based pixels lies outside the 50x20 image"))
    }

    @Test func yoloMissingLabelsAndImages() throws {
        let (root, _) = try Self.broken("yolo", "train.txt", "images/c.png\nimages/nothere.png\n")
        defer { try? FileManager.default.removeItem(at: root.deletingLastPathComponent()) }
        let error = try #require(throws: ImageError.self) { try DetectionDataset.load(root.appendingPathComponent("train.txt")) }
        #expect(error.reason == .fileNotFound)
        #expect(error.file.hasSuffix("images/nothere.png"))
        let (root2, _) = try Self.broken("yolo", "labels/c.txt", "")
        try FileManager.default.removeItem(at: root2.appendingPathComponent("labels/c.txt"))
        let none = try Self.loadError(root2.appendingPathComponent("train.txt"))
        #expect(none.description.contains("no label files found"))
        #expect(none.description.contains("labels/c.txt"))
    }

    static func cocoJSON(annotations: String, categories: String = #"[{"id": 7, "name": "zebra"}, {"id": 3, "name": "giraffe"}]"#) -> String {
        #"{"images": [{"id": 42, "file_name": "d.png", "width": 30, "height": 30}], "annotations": \#(annotations), "categories": \#(categories)}"#
    }

    @Test func cocoUnknownImageID() throws {
        let (root, file) = try Self.broken("coco", "annotations/instances_val.json", Self.cocoJSON(annotations: """
            [{"id": 1, "image_id": 42, "category_id": 7, "bbox": [2, 3, 10, 5]},
             {"id": 9, "image_id": 43, "category_id": 7, "bbox": [2, 3, 10, 5]}]
            """))
        #expect(try Self.loadError(root).description == "\(file): annotations[1] (id 9): image_id 43 is not among the 1 images")
    }

    @Test func cocoUnknownCategory() throws {
        let (root, file) = try Self.broken("coco", "annotations/instances_val.json", Self.cocoJSON(annotations: """
            [{"id": 5, "image_id": 42, "category_id": 4, "bbox": [2, 3, 10, 5]}]
            """))
        #expect(try Self.loadError(root).description == "\(file): annotations[0] (id 5): category_id 4 is not a category (ids: 3, 7)")
    }

    @Test func cocoBadBoxesAndFields() throws {
        let (root, file) = try Self.broken("coco", "annotations/instances_val.json", Self.cocoJSON(annotations: """
            [{"id": 5, "image_id": 42, "category_id": 3, "bbox": [2, 3, 10]}]
            """))
        #expect(try Self.loadError(root).description == "\(file): annotations[0] (id 5): \"bbox\" must be [x, y, width, height]")
        let (root2, file2) = try Self.broken("coco", "annotations/instances_val.json", Self.cocoJSON(annotations: """
            [{"id": 5, "image_id": 42, "category_id": 3, "bbox": [25, 3, 10, 5]}]
            """))
        #expect(try Self.loadError(root2).description.hasPrefix("\(file2): annotations[0] (id 5): box (xmin 25, ymin 3, xmax 35, ymax 8) in 0-based pixels lies outside the 30x30 image"))
        let (root3, file3) = try Self.broken("coco", "annotations/instances_val.json", #"{"images": [{"id": 1, "file_name": "d.png", "height": 3}], "categories": []}"#)
        #expect(try Self.loadError(root3).description == "\(file3): images[0]: missing \"width\"")
        let (root4, file4) = try Self.broken("coco", "annotations/instances_val.json", #"{"images": [}"#)
        let malformed = try Self.loadError(root4)
        #expect(malformed.file == file4 && malformed.message.hasPrefix("malformed JSON"))
    }
}
