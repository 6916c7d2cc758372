import Foundation
import Testing
import OcelliVision

@Suite("Dataset image folders")
struct DatasetImageFolderTests {
    @Test func classesFromSortedSubfolders() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let layout = ["zebra": ["b.png", "a.png"], "ant": ["x.png"], "cat": []]
        for (name, files) in layout {
            let folder = directory.appendingPathComponent(name)
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
            for (k, file) in files.enumerated() {
                try Image(width: 4 + k, height: 6, filledWith: [UInt8(k * 50), 0, 255]).write(png: folder.appendingPathComponent(file).path)
            }
            try Data("notes".utf8).write(to: folder.appendingPathComponent("README.txt"))
        }
        try FileManager.default.createDirectory(at: directory.appendingPathComponent(".hidden"), withIntermediateDirectories: true)
        try Data().write(to: directory.appendingPathComponent("stray.png"))

        let set = try ImageFolderDataset(directory: directory)
        #expect(set.classNames == ["ant", "cat", "zebra"])
        #expect(set.samples.map { $0.file.lastPathComponent } == ["x.png", "a.png", "b.png"])
        #expect(set.samples.map(\.classIndex) == [0, 2, 2])

        let (images, labels) = try set.batch([2, 0], width: 5, height: 6)
        #expect(images.shape == [2, 6, 5, 3])
        #expect(labels.scalars == [2, 0])
        // b.png was written 4x6 filled (0, 0, 255): resized, still that colour.
        #expect(Array(images.scalars[0..<3]) == [0, 0, 1])
        let (gray, _) = try set.batch([1], width: 5, height: 6, channels: 1)
        #expect(gray.shape == [1, 6, 5, 1])
    }

    @Test func noClassFolders() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let error = try #require(throws: DatasetError.self) { try ImageFolderDataset(directory: directory) }
        #expect(error.description.contains("no class folders"))
        #expect(throws: DatasetError.self) { try ImageFolderDataset(directory: directory.appendingPathComponent("missing")) }
    }
}
