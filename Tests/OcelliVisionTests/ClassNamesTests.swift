import Foundation
import Testing
import OcelliVision

@Suite struct ClassNamesTests {
    @Test func darknetNamesFilesReadAsDarknetDoes() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("obj.names")
        try Data("dog\r\n  traffic light \r\n\r\ncat\n".utf8).write(to: file)
        #expect(try ClassNames.read(file.path) == ["dog", "traffic light", "cat"])
        #expect(try ClassNames.read(BundledData.cfg("coco.names")).count == 80)
        do { _ = try ClassNames.read(directory.appendingPathComponent("none.names").path); Issue.record("no error") } catch {
            #expect("\(error)".contains("none.names") && "\(error)".contains("no such file"), "\(error)")
        }
    }

    @Test func relabelingMatchesClassesByName() throws {
        let file = URL(fileURLWithPath: "/data/a.jpg")
        let image = AnnotatedImage(id: "a", file: file, width: 10, height: 10, objects: [
            ObjectAnnotation(classIndex: 0, className: "cat", xmin: 0, ymin: 0, xmax: 5, ymax: 5),
            ObjectAnnotation(classIndex: 1, className: "dog", xmin: 1, ymin: 1, xmax: 6, ymax: 6),
        ])
        let dataset = DetectionDataset(classNames: ["cat", "dog"], images: [image], format: .voc)
        let relabeled = try dataset.relabeled(to: ["dog", "bird", "cat"], namesFile: "my.names")
        #expect(relabeled.classNames == ["dog", "bird", "cat"])
        #expect(relabeled.images[0].objects.map(\.classIndex) == [2, 0])
        #expect(relabeled.categoryIDs == [1, 2, 3])
        do { _ = try dataset.relabeled(to: ["dog"], namesFile: "my.names"); Issue.record("no error") } catch {
            #expect("\(error)".contains("my.names") && "\(error)".contains("'cat'") && "\(error)".contains("image a"), "\(error)")
        }
    }
}
