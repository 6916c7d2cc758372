import Foundation
import Testing
import OcelliVision
import OcelliDetection

/// The COCO results reader: string and numeric image ids, and a clear error naming the file and the
/// entry for every kind of bad entry.
@Suite("Detection file")
struct DetectionFileTests {
    static let images = [
        AnnotatedImage(id: "000012", file: URL(fileURLWithPath: "/d/000012.jpg"), width: 100, height: 80, objects: []),
        AnnotatedImage(id: "000017", file: URL(fileURLWithPath: "/d/000017.jpg"), width: 100, height: 80, objects: [], cocoID: 17),
        AnnotatedImage(id: "cat", file: URL(fileURLWithPath: "/d/cat.jpg"), width: 100, height: 80, objects: []),
    ]

    static func parse(_ text: String) throws -> [ScoredDetection] {
        try DetectionsFile.parse(Data(text.utf8), file: "dets.json", images: images, classCount: 3)
    }

    static func message(_ text: String) -> String {
        do {
            _ = try parse(text)
            return "no error"
        } catch {
            return "\(error)"
        }
    }

    @Test func readsStringAndNumericIDs() throws {
        let d = try Self.parse("""
            [{"image_id": "000012", "category_id": 2, "bbox": [1.5, 2, 10, 20], "score": 0.75},
             {"image_id": 17, "category_id": 0, "bbox": [0, 0, 5, 5], "score": 1},
             {"image_id": "cat", "category_id": 1, "bbox": [3, 4, 0, 0], "score": 0.1}]
            """)
        #expect(d.count == 3)
        #expect(d[0] == ScoredDetection(imageID: "000012", classIndex: 2, score: 0.75, xmin: 1.5, ymin: 2, xmax: 11.5, ymax: 22))
        #expect(d[1].imageID == "000017")  // matched through cocoID
        #expect(d[2].box == BoundingBox(xmin: 3, ymin: 4, xmax: 3, ymax: 4))
        #expect(try Self.parse("[]").isEmpty)
        // Round trip through the writer.
        let again = try DetectionsFile.parse(DetectionsFile.encode(d), file: "x", images: Self.images, classCount: 3)
        #expect(again == d)
    }

    @Test func badEntriesNameFileAndEntry() {
        #expect(Self.message("{\"image_id\": 1}") .hasPrefix("dets.json: expected a JSON array"))
        #expect(Self.message("[{\"image_id\": \"000012\", ") .hasPrefix("dets.json: not valid JSON"))
        let good = "{\"image_id\": \"000012\", \"category_id\": 0, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}"
        #expect(Self.message("[\(good), {\"image_id\": \"000099\", \"category_id\": 0, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 1: unknown image_id \"000099\""))
        #expect(Self.message("[{\"image_id\": 12, \"category_id\": 0, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 0: unknown image_id 12"))
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 3, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]")
                == "dets.json: entry 0: category_id 3 is out of range: the data set has 3 classes (0…2)")
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 1.5, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 0: \"category_id\" must be an integer"))
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 0, \"bbox\": [0, 0, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 0: \"bbox\" must be [x, y, width, height], got [0,0,1]"))
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 0, \"bbox\": [0, \"a\", 1, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 0: \"bbox\" must hold four finite numbers"))
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 0, \"bbox\": [0, 0, -1, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 0: \"bbox\" width and height must not be negative"))
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 0, \"bbox\": [0, 0, 1, 1]}]")
                == "dets.json: entry 0: missing \"score\"")
        #expect(Self.message("[{\"image_id\": \"000012\", \"category_id\": 0, \"bbox\": [0, 0, 1, 1], \"score\": \"high\"}]")
                .hasPrefix("dets.json: entry 0: \"score\" must be a finite number"))
        #expect(Self.message("[{\"category_id\": 0, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]") == "dets.json: entry 0: missing \"image_id\"")
        #expect(Self.message("[{\"image_id\": [1], \"category_id\": 0, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]")
                .hasPrefix("dets.json: entry 0: \"image_id\" must be a string"))
        #expect(Self.message("[3]") == "dets.json: entry 0: expected an object, got the number 3")
    }

    @Test func missingFile() {
        do {
            _ = try DetectionsFile.read(path: "/nonexistent/dets.json", images: Self.images, classCount: 3)
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "/nonexistent/dets.json: no such file")
        }
    }

    @Test func evaluationRejectsUnknownImagesAndClasses() {
        let d = ScoredDetection(imageID: "nope", classIndex: 0, score: 1, xmin: 0, ymin: 0, xmax: 1, ymax: 1)
        #expect(throws: DetectionEvaluationError.self) {
            try VOCEvaluation.evaluate(images: Self.images, detections: [d], classNames: ["a"])
        }
        var e = d
        e.imageID = "cat"
        e.classIndex = 5
        #expect(throws: DetectionEvaluationError.self) {
            try COCOEvaluation.evaluate(images: Self.images, detections: [e], classNames: ["a"])
        }
    }
}

extension DetectionFileTests {
    @Test func cocoCategoryIDs() throws {
        let text = "[{\"image_id\": 17, \"category_id\": 90, \"bbox\": [0, 0, 1, 1], \"score\": 0.5}]"
        let d = try DetectionsFile.parse(Data(text.utf8), file: "r.json", images: Self.images, classCount: 3, categoryIDs: [1, 18, 90])
        #expect(d[0].classIndex == 2)
        do {
            _ = try DetectionsFile.parse(Data(text.utf8), file: "r.json", images: Self.images, classCount: 3, categoryIDs: [1, 2, 3])
            Issue.record("expected an error")
        } catch {
            #expect("\(error)" == "r.json: entry 0: unknown category_id 90: the data set's COCO category ids are 1, 2, 3")
        }
    }
}
