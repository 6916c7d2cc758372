import Foundation
import Testing
import OcelliVision

/// Reading, writing and converting VOC, YOLO and COCO data sets (fixtures made by
/// Scripts/make_dataset_fixtures.py; the boxes below are the ones written there).
@Suite("Dataset formats")
struct DatasetFormatTests {
    static let root = Fixtures.directory.appendingPathComponent("datasets")
    static func fixture(_ name: String) -> URL { root.appendingPathComponent(name) }

    static func box(_ o: ObjectAnnotation) -> [Double] { [o.xmin, o.ymin, o.xmax, o.ymax] }

    @Test func detectsLayouts() throws {
        #expect(try DetectionDataset.detectFormat(Self.fixture("voc")) == .voc)
        #expect(try DetectionDataset.detectFormat(Self.fixture("yolo")) == .yolo)
        #expect(try DetectionDataset.detectFormat(Self.fixture("yolo/train.txt")) == .yolo)
        #expect(try DetectionDataset.detectFormat(Self.fixture("coco")) == .coco)
        #expect(try DetectionDataset.detectFormat(Self.fixture("coco/annotations/instances_val.json")) == .coco)
        let error = try #require(throws: DatasetError.self) { try DetectionDataset.detectFormat(Self.fixture("voc/JPEGImages")) }
        #expect(error.description.contains("cannot tell the data set layout"))
    }

    @Test func readsVOC() throws {
        let all = try DetectionDataset.load(Self.fixture("voc"))
        #expect(all.format == .voc)
        #expect(all.classNames == ["bird", "cat", "dog"])  // sorted unique names: no labels.txt
        #expect(all.images.map(\.id) == ["a", "b"])
        let a = all.images[0]
        #expect(a.width == 40 && a.height == 30)
        #expect(a.file.path == Self.fixture("voc/JPEGImages/a.png").standardizedFileURL.path)
        // VOC 1-based inclusive → 0-based continuous: xmin = x1 − 1, xmax = x2.
        #expect(a.objects.map(Self.box) == [[0, 0, 10, 20], [11.5, 2, 40, 30]])
        #expect(a.objects.map(\.className) == ["dog", "cat"])
        #expect(a.objects.map(\.classIndex) == [2, 1])
        #expect(a.objects.map(\.truncated) == [true, false])
        #expect(a.objects.map(\.difficult) == [false, true])

        let val = try DetectionDataset.load(Self.fixture("voc"), split: "val")
        #expect(val.split == "val")
        #expect(val.images.map(\.id) == ["b"])
        #expect(val.classNames == ["bird"])
        #expect(val.images[0].objects.map(Self.box) == [[4, 5, 20, 24]])
    }

    @Test func readsYOLO() throws {
        for url in [Self.fixture("yolo/train.txt"), Self.fixture("yolo")] {
            let set = try DetectionDataset.load(url, split: url.pathExtension == "txt" ? nil : "train")
            #expect(set.format == .yolo)
            #expect(set.split == "train")
            #expect(set.classNames == ["person", "car"])
            #expect(set.images.map(\.id) == ["c"])
            let c = set.images[0]
            #expect(c.width == 50 && c.height == 20)  // from the PNG header
            // "1 0.5 0.5 0.2 0.5" in a 50x20 image: centre (25, 10), size 10x10.
            #expect(c.objects.map(Self.box) == [[20, 5, 30, 15], [0, 0, 10, 10]])
            #expect(c.objects.map(\.className) == ["car", "person"])
        }
    }

    @Test func readsCOCO() throws {
        for url in [Self.fixture("coco"), Self.fixture("coco/annotations/instances_val.json")] {
            let set = try DetectionDataset.load(url)
            #expect(set.format == .coco)
            #expect(set.split == "val")
            // Categories in id order: 3 giraffe, 7 zebra.
            #expect(set.classNames == ["giraffe", "zebra"])
            #expect(set.categoryIDs == [3, 7])
            let d = set.images[0]
            #expect(d.id == "d" && d.cocoID == 42 && d.width == 30)
            #expect(d.file.path == Self.fixture("coco/images/d.png").standardizedFileURL.path)
            #expect(d.objects.map(Self.box) == [[2, 3, 12, 8.5], [0, 0, 30, 30]])
            #expect(d.objects.map(\.classIndex) == [1, 0])
            #expect(d.objects.map(\.isCrowd) == [false, true])
            #expect(d.objects.map(\.segmentationArea) == [40, 900])
        }
    }

    @Test func imageSizeFromHeaders() throws {
        #expect(try Image.size(ofFileAt: Self.fixture("voc/JPEGImages/a.png").path) == (40, 30))
        // Stored 24x32 with EXIF orientation 6: upright it is 32x24, as Image(contentsOf:) decodes it.
        let size = try Image.size(ofFileAt: Self.fixture("voc/JPEGImages/b.jpg").path)
        let decoded = try Image(contentsOf: Self.fixture("voc/JPEGImages/b.jpg").path)
        #expect(size == (32, 24))
        #expect(size == (decoded.width, decoded.height))
        #expect(try Image.size(ofFileAt: Fixtures.sharedImage("dog.jpg")) == (768, 576))
        #expect(throws: ImageError.self) { try Image.size(ofFileAt: Self.fixture("yolo/classes.txt").path) }
    }

    @Test func darknetLabelPathRule() {
        #expect(DetectionDataset.darknetLabelPath(forImagePath: "images/a.jpg") == "labels/a.txt")
        #expect(DetectionDataset.darknetLabelPath(forImagePath: "/data/VOCdevkit/VOC2007/JPEGImages/000001.jpg") == "/data/VOCdevkit/VOC2007/labels/000001.txt")
        #expect(DetectionDataset.darknetLabelPath(forImagePath: "/coco/images/train2014/x.y.png") == "/coco/labels/train2014/x.y.txt")
        #expect(DetectionDataset.darknetLabelPath(forImagePath: "pictures/a") == "pictures/a.txt")
    }

    @Test func yoloLayoutsBesideAndPerSplitFolders() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let manager = FileManager.default
        let png = Self.fixture("yolo/images/c.png")
        // Labels beside the images (newer Darknet forks), absolute paths in the list file.
        let flat = directory.appendingPathComponent("flat")
        try manager.createDirectory(at: flat, withIntermediateDirectories: true)
        try manager.copyItem(at: png, to: flat.appendingPathComponent("c.png"))
        try "0 0.5 0.5 1 1\n".write(to: flat.appendingPathComponent("c.txt"), atomically: true, encoding: .utf8)
        try (flat.appendingPathComponent("c.png").path + "\n").write(to: flat.appendingPathComponent("all.txt"), atomically: true, encoding: .utf8)
        let beside = try DetectionDataset.load(flat.appendingPathComponent("all.txt"))
        #expect(beside.classNames == ["0"])  // no names file: "0" up to the largest class
        #expect(beside.split == "all")
        #expect(beside.images[0].objects.map(Self.box) == [[0, 0, 50, 20]])
        // images/<split>/ with labels/<split>/ (the Ultralytics layout).
        let split = directory.appendingPathComponent("split")
        for sub in ["images/val", "labels/val"] {
            try manager.createDirectory(at: split.appendingPathComponent(sub), withIntermediateDirectories: true)
        }
        try manager.copyItem(at: png, to: split.appendingPathComponent("images/val/c.png"))
        try "2 0.5 0.5 0.2 0.5\n".write(to: split.appendingPathComponent("labels/val/c.txt"), atomically: true, encoding: .utf8)
        try "a\nb\nc\n".write(to: split.appendingPathComponent("obj.names"), atomically: true, encoding: .utf8)
        #expect(try DetectionDataset.detectFormat(split) == .yolo)
        let val = try DetectionDataset.load(split, split: "val")
        #expect(val.classNames == ["a", "b", "c"])
        #expect(val.images.map(\.id) == ["c"])
        #expect(val.images[0].objects.map(\.className) == ["c"])
        #expect(throws: DatasetError.self) { try DetectionDataset.load(split, split: "test") }
    }

    /// Every box of `a` within `tolerance` pixels of the same box in `b`, images matched by id.
    static func expectSameBoxes(_ a: DetectionDataset, _ b: DetectionDataset, tolerance: Double, names: Bool = true) {
        #expect(a.images.map(\.id) == b.images.map(\.id))
        if names { #expect(a.classNames == b.classNames) }
        for (x, y) in zip(a.images, b.images) {
            #expect(x.width == y.width && x.height == y.height)
            #expect(x.objects.count == y.objects.count, "\(x.id)")
            for (o, p) in zip(x.objects, y.objects) {
                #expect(o.className == p.className)
                let d = zip(box(o), box(p)).map { abs($0 - $1) }.max()!
                #expect(d <= tolerance, "\(x.id): \(box(o)) vs \(box(p))")
            }
        }
    }

    @Test func roundTripVOCToYOLOToCOCOToVOC() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let voc = try DetectionDataset.load(Self.fixture("voc"))
        try voc.write(to: directory.appendingPathComponent("yolo"), format: .yolo)
        let yolo = try DetectionDataset.load(directory.appendingPathComponent("yolo"), split: "train")
        #expect(yolo.format == .yolo)
        try yolo.write(to: directory.appendingPathComponent("coco"), format: .coco)
        let coco = try DetectionDataset.load(directory.appendingPathComponent("coco"))
        try coco.write(to: directory.appendingPathComponent("voc"), format: .voc)
        let back = try DetectionDataset.load(directory.appendingPathComponent("voc"), split: "train")
        // One list in ImageSets/Main: it is the split when none is asked for.
        #expect(try DetectionDataset.load(directory.appendingPathComponent("voc")).split == "train")
        Self.expectSameBoxes(voc, yolo, tolerance: 0.5)
        Self.expectSameBoxes(voc, coco, tolerance: 0.5)
        Self.expectSameBoxes(voc, back, tolerance: 0.5)
        // VOC's integers come back exactly (YOLO's 6-decimal rounding is snapped away); the
        // fractional 12.5 of the fixture stays within YOLO's rounding.
        Self.expectSameBoxes(voc, back, tolerance: 1e-4)
        #expect(back.images[1].objects == voc.images[1].objects)
        #expect(Self.box(back.images[0].objects[0]) == Self.box(voc.images[0].objects[0]))
        // The images are there (hard links or copies) and decode to the same pixels.
        for (x, y) in zip(voc.images, back.images) {
            #expect(try Image(contentsOf: x.file.path) == Image(contentsOf: y.file.path))
        }
        // YOLO text has no difficult flag; COCO keeps VOC's flags.
        #expect(coco.images[0].objects.map(\.difficult) == [false, false])
        let direct = try DetectionDataset.load({ try voc.write(to: directory.appendingPathComponent("c2"), format: .coco)
                                                  return directory.appendingPathComponent("c2") }())
        #expect(direct.images[0].objects.map(\.difficult) == [false, true])
        #expect(direct.images[0].objects.map(\.truncated) == [true, false])
    }

    @Test func cocoRoundTripKeepsIDs() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let coco = try DetectionDataset.load(Self.fixture("coco"))
        try coco.write(to: directory, format: .coco)
        let again = try DetectionDataset.load(directory)
        #expect(again.categoryIDs == [3, 7])
        #expect(again.images[0].cocoID == 42)
        #expect(again.images[0].objects == coco.images[0].objects)
        #expect(try DatasetFormatTests.lines(directory.appendingPathComponent("labels.txt")) == ["giraffe", "zebra"])
    }

    static func lines(_ url: URL) throws -> [String] {
        try String(contentsOf: url, encoding: .utf8).split(separator: "\n").map(String.init)
    }
}
