import Foundation
import Testing
import OcelliTensor
@testable import OcelliVision

/// The digits detection data set (`ocelli datasets digits`): determinism and the recipe's statistics.
@Suite("Dataset digits")
struct DatasetDigitsTests {
    static let digits = Result { try DigitsDetection.Digits() }

    static func files(_ root: URL) throws -> [String: Data] {
        var result: [String: Data] = [:]
        let enumerator = FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil)!
        for case let url as URL in enumerator where (try? url.resourceValues(forKeys: [.isRegularFileKey]))?.isRegularFile == true {
            result[String(url.path.dropFirst(root.path.count))] = try Data(contentsOf: url)
        }
        return result
    }

    @Test func sameArgumentsGiveIdenticalFilesWhateverTheThreads() throws {
        let digits = try Self.digits.get()
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let a = directory.appendingPathComponent("a"), b = directory.appendingPathComponent("b"), c = directory.appendingPathComponent("c")
        try DigitsDetection.write(split: .val, count: 7, seed: 3, digits: digits, to: a, threads: 1)
        try DigitsDetection.write(split: .val, count: 7, seed: 3, digits: digits, to: b, threads: 3)
        try DigitsDetection.write(split: .val, count: 7, seed: 4, digits: digits, to: c, threads: 2)
        let filesA = try Self.files(a), filesB = try Self.files(b), filesC = try Self.files(c)
        #expect(filesA.count == 7 * 2 + 2)
        #expect(filesA.keys.sorted() == filesB.keys.sorted())
        #expect(filesA == filesB)
        #expect(filesA["/JPEGImages/v000000.png"] != filesC["/JPEGImages/v000000.png"])
        #expect(String(decoding: filesA["/ImageSets/Main/val.txt"]!, as: UTF8.self) == (0..<7).map { "v00000\($0)\n" }.joined())
        #expect(String(decoding: filesA["/labels.txt"]!, as: UTF8.self) == "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n")
    }

    @Test func statisticsFollowTheRecipe() throws {
        let digits = try Self.digits.get()
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let written = try DigitsDetection.write(split: .train, count: 120, seed: 1, digits: digits, to: directory)
        let loaded = try DetectionDataset.load(directory, split: "train")
        #expect(loaded.images == written.images)
        #expect(loaded.classNames == (0...9).map(String.init))
        #expect(loaded.images.first?.id == "t000000")

        let counts = loaded.images.map(\.objects.count)
        #expect(counts.allSatisfy { (0...6).contains($0) })
        #expect(Set(counts).isSuperset(of: [1, 2, 3, 4, 5, 6]))
        // 1–6 placement attempts, a few fail on overlap: the recipe gives about 3.4 per image.
        let mean = Double(counts.reduce(0, +)) / Double(counts.count)
        #expect(mean > 2.8 && mean < 4.0, "objects per image \(mean)")

        var perClass = [Int](repeating: 0, count: 10)
        for image in loaded.images {
            #expect(image.width == 256 && image.height == 256)
            let decoded = try Image(contentsOf: image.file.path)
            #expect(decoded.width == 256 && decoded.height == 256 && decoded.channels == 3)
            for o in image.objects {
                perClass[o.classIndex] += 1
                #expect(o.className == String(o.classIndex))
                #expect(o.xmin >= 0 && o.ymin >= 0 && o.xmax <= 256 && o.ymax <= 256)
                #expect(o.xmin == o.xmin.rounded() && o.xmax == o.xmax.rounded())
                // Digits are pasted 16–96 pixels tall; the tight box of their visible pixels is a
                // little smaller.
                #expect(o.height >= 8 && o.height <= 96, "height \(o.height)")
                #expect(o.width >= 1 && o.width <= 200)
            }
        }
        let total = perClass.reduce(0, +)
        for (digit, n) in perClass.enumerated() {
            // MNIST's classes are near-uniform (9–11 %): every class within 3–20 % of ~400 digits.
            #expect(Double(n) / Double(total) > 0.03 && Double(n) / Double(total) < 0.20, "digit \(digit): \(n) of \(total)")
        }
        let heights = loaded.images.flatMap { $0.objects.map(\.height) }
        #expect(heights.max()! > 80 && heights.min()! < 24, "heights span the recipe's range")
    }

    @Test func writtenPNGsHoldTheGeneratedPixels() throws {
        let digits = try Self.digits.get()
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let set = try DigitsDetection.write(split: .train, count: 3, seed: 9, digits: digits, to: directory)
        for i in 0..<3 {
            var g = SeededGenerator(seed: DigitsDetection.imageSeed(seed: 9, split: .train, index: i))
            let (image, objects) = DigitsDetection.makeImage(&g, digits: digits, pool: 0..<55000)
            #expect(try Image(contentsOf: set.images[i].file.path) == image)
            #expect(set.images[i].objects == objects)
        }
    }

    @Test func pngEncoderRoundTripsAtBothCompressions() throws {
        var g = SeededGenerator(seed: 5)
        for (w, h, c) in [(1, 1, 1), (7, 3, 3), (17, 5, 4), (64, 33, 3)] {
            let pixels = (0..<(w * h * c)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let image = Image(width: w, height: h, channels: c, pixels: pixels)
            for compression in [PNGCompression.default, .fast] {
                #expect(try Image.decode(data: image.pngData(compression: compression), name: "\(w)x\(h)x\(c)") == image)
            }
        }
    }

    @Test func splitsDrawFromDisjointMNISTRanges() {
        #expect(DigitsDetection.Split.train.pool == 0..<55000)
        #expect(DigitsDetection.Split.val.pool == 55000..<60000)
    }

    @Test func missingMNISTIsAClearError() throws {
        let error = try #require(throws: MNISTError.self) { try DigitsDetection.Digits(directory: "/nonexistent") }
        #expect(error.description.hasPrefix("/nonexistent/train-images-idx3-ubyte.gz: "))
    }
}
