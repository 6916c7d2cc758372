import Foundation
import Testing
import OcelliTensor
import OcelliVision

/// `DetectionLoader`: order, padding, letterbox geometry, transforms, prefetch, multi-scale, skipping.
@Suite("Dataset loader")
struct DatasetLoaderTests {
    /// Ten small images of different sizes with 0–3 boxes each, written as PNGs in `directory`.
    static func makeDataset(in directory: URL, count: Int = 10) throws -> DetectionDataset {
        var images: [AnnotatedImage] = []
        for i in 0..<count {
            let width = 20 + 4 * i, height = 40 - 2 * i
            var image = Image(width: width, height: height, filledWith: [UInt8(10 * i), 100, 200])
            image[x: 0, y: 0, channel: 0] = 255
            let file = directory.appendingPathComponent("img\(i).png")
            try image.write(png: file.path)
            let objects = (0..<(i % 4)).map { k in
                ObjectAnnotation(classIndex: k, className: "c\(k)", xmin: Double(k), ymin: Double(2 * k),
                                 xmax: Double(k + 10), ymax: Double(2 * k + 15))
            }
            images.append(AnnotatedImage(id: "img\(i)", file: file, width: width, height: height, objects: objects))
        }
        return DetectionDataset(classNames: ["c0", "c1", "c2"], images: images, format: .voc)
    }

    static func withDataset<R>(_ body: (DetectionDataset, URL) throws -> R) throws -> R {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        return try body(try makeDataset(in: directory), directory)
    }

    static func all(_ epoch: DetectionEpoch) throws -> [DetectionBatch] {
        var batches: [DetectionBatch] = []
        while let b = try epoch.next() { batches.append(b) }
        return batches
    }

    @Test func seededOrder() throws {
        try Self.withDataset { dataset, _ in
            let a = DetectionLoader(dataset: dataset, batchSize: 3, seed: 7)
            let b = DetectionLoader(dataset: dataset, batchSize: 3, seed: 7, prefetch: 0)
            let c = DetectionLoader(dataset: dataset, batchSize: 3, seed: 8)
            #expect(a.order(epoch: 0) == b.order(epoch: 0))
            #expect(a.order(epoch: 1) == b.order(epoch: 1))
            #expect(a.order(epoch: 0) != a.order(epoch: 1))
            #expect(a.order(epoch: 0) != c.order(epoch: 0))
            #expect(a.order(epoch: 0).sorted() == Array(0..<10))
            #expect(DetectionLoader(dataset: dataset, batchSize: 3, shuffle: false).order(epoch: 5) == Array(0..<10))
            #expect(a.batchesPerEpoch == 4)
            #expect(DetectionLoader(dataset: dataset, batchSize: 3, dropLast: true).batchesPerEpoch == 3)
            let batches = try Self.all(a.epoch(0))
            #expect(batches.map(\.count) == [3, 3, 3, 1])
            #expect(batches.flatMap(\.indices) == a.order(epoch: 0))
        }
    }

    @Test func paddingAndLetterboxGeometry() throws {
        try Self.withDataset { dataset, _ in
            // Unshuffled batch 1 holds images 3, 4, 5 with 3, 0 and 1 boxes.
            let loader = DetectionLoader(dataset: dataset, batchSize: 3, inputSize: 64, shuffle: false, prefetch: 0)
            let batch = try #require(try loader.batch(1, epoch: 0))
            #expect(batch.indices == [3, 4, 5])
            #expect(batch.counts == [3, 0, 1])
            #expect(batch.images.shape == [3, 64, 64, 3])
            #expect(batch.boxes.shape == [3, 3, 5])
            let rows = batch.boxes.scalars
            func row(_ b: Int, _ r: Int) -> [Float] { Array(rows[((b * 3 + r) * 5)..<((b * 3 + r) * 5 + 5)]) }
            // Image 3 is 32x34: letterboxed into 64x64 as 60x64 at (2, 0) (Darknet's integer
            // geometry), so x' = x·60/32 + 2 and y' = y·64/34.
            let box = Letterbox(sourceWidth: 32, sourceHeight: 34, width: 64, height: 64)
            #expect(box.resizedWidth == 60 && box.resizedHeight == 64 && box.offsetX == 2 && box.offsetY == 0)
            for k in 0..<3 {
                let expected: [Float] = [Float(k), Float(Double(k) * 60 / 32 + 2), Float(Double(2 * k) * 64 / 34),
                                         Float(Double(k + 10) * 60 / 32 + 2), Float(Double(2 * k + 15) * 64 / 34)]
                #expect(row(0, k) == expected)
            }
            for r in 0..<3 { #expect(row(1, r) == [-1, 0, 0, 0, 0]) }
            #expect(row(2, 0)[0] == 0)
            #expect(row(2, 1) == [-1, 0, 0, 0, 0] && row(2, 2) == [-1, 0, 0, 0, 0])
            #expect(batch.objects[0].count == 3 && batch.objects[1].isEmpty)
            // The pixels are the letterbox of the decoded image.
            let image = try Image(contentsOf: dataset.images[3].file.path)
            let plane = 64 * 64 * 3
            #expect(Array(batch.images.scalars[0..<plane]) == box.apply(to: image).scalars)
        }
    }

    @Test func stretchAndEmptyBatch() throws {
        try Self.withDataset { dataset, _ in
            // Image 0 (20x40) has no boxes: one padding row.
            let loader = DetectionLoader(dataset: dataset, batchSize: 1, inputSize: 40, resize: .stretch, shuffle: false, prefetch: 0)
            let first = try #require(try loader.batch(0, epoch: 0))
            #expect(first.boxes.shape == [1, 1, 5] && first.boxes.scalars == [-1, 0, 0, 0, 0])
            let image = try Image(contentsOf: dataset.images[0].file.path)
            #expect(first.images.scalars == image.resized(width: 40, height: 40).tensor().scalars)
            // Image 1 (24x38), box (0, 0, 10, 15) → scaled by 40/24 and 40/38.
            let second = try #require(try loader.batch(1, epoch: 0))
            #expect(second.boxes.scalars == [0, 0, 0, Float(10.0 * 40 / 24), Float(15.0 * 40 / 38)])
        }
    }

    /// A transform that uses its generator: flips half the images (and their boxes).
    static let randomFlip: DetectionLoader.Transform = { image, objects, g in
        guard g.next() & 1 == 1 else { return (image, objects) }
        let w = Double(image.width)
        return (image.flippedHorizontally(), objects.map { o in
            var f = o
            f.xmin = w - o.xmax; f.xmax = w - o.xmin
            return f
        })
    }

    @Test func prefetchGivesTheSameBatchesAsSynchronousLoading() throws {
        try Self.withDataset { dataset, _ in
            let sync = DetectionLoader(dataset: dataset, batchSize: 4, inputSize: 32, seed: 3, prefetch: 0, transform: Self.randomFlip)
            let ahead = DetectionLoader(dataset: dataset, batchSize: 4, inputSize: 32, seed: 3, prefetch: 2, workers: 2, transform: Self.randomFlip)
            for epoch in 0..<2 {
                let a = try Self.all(sync.epoch(epoch)), b = try Self.all(ahead.epoch(epoch))
                #expect(a.count == 3 && b.count == 3)
                for (x, y) in zip(a, b) {
                    #expect(x.indices == y.indices)
                    #expect(x.images.scalars == y.images.scalars)
                    #expect(x.boxes.scalars == y.boxes.scalars)
                    #expect(x.index == y.index && x.epoch == epoch)
                }
            }
            // The flip is really applied to some samples: boxes differ from an unflipped load.
            let plain = DetectionLoader(dataset: dataset, batchSize: 4, inputSize: 32, seed: 3, prefetch: 0)
            let flipped = try Self.all(sync.epoch(0)).map(\.boxes.scalars), unflipped = try Self.all(plain.epoch(0)).map(\.boxes.scalars)
            #expect(flipped != unflipped)
            // Abandoning an epoch half-way stops its thread without blocking.
            let epoch = ahead.epoch(5)
            _ = try epoch.next()
        }
    }

    @Test func multiScaleSizes() throws {
        try Self.withDataset { dataset, _ in
            let scale = DetectionLoader.MultiScale(every: 3, sizes: 100...260)
            #expect(scale.candidates == [128, 160, 192, 224, 256])
            let loader = DetectionLoader(dataset: dataset, batchSize: 1, seed: 11, multiScale: scale, prefetch: 0)
            let sizes = (0..<10).map { loader.inputSize(epoch: 0, batch: $0) }
            #expect(sizes.allSatisfy { $0 % 32 == 0 && scale.sizes.contains($0) })
            for group in stride(from: 0, to: 10, by: 3) {
                let members = sizes[group..<min(10, group + 3)]
                #expect(Set(members).count == 1, "one size per group of 3: \(sizes)")
                if group > 0 { #expect(sizes[group] != sizes[group - 1], "the size changes every 3 batches: \(sizes)") }
            }
            let batches = try Self.all(loader.epoch(0))
            #expect(batches.map(\.width) == sizes && batches.map { $0.images.shape[1] } == sizes)
            // Seeded: another loader with the same seed draws the same sizes; a different epoch other ones.
            let again = DetectionLoader(dataset: dataset, batchSize: 1, seed: 11, multiScale: scale)
            #expect((0..<10).map { again.inputSize(epoch: 0, batch: $0) } == sizes)
            #expect((0..<30).map { loader.inputSize(epoch: 1, batch: $0) } != (0..<30).map { loader.inputSize(epoch: 0, batch: $0) })
        }
    }

    final class Warnings: @unchecked Sendable {
        let lock = NSLock()
        var messages: [String] = []
        func add(_ m: String) { lock.lock(); messages.append(m); lock.unlock() }
    }

    @Test func badSamplesFailOrAreSkipped() throws {
        try Self.withDataset { dataset, directory in
            try FileManager.default.removeItem(at: directory.appendingPathComponent("img4.png"))
            try Data("not an image".utf8).write(to: directory.appendingPathComponent("img5.png"))
            let strict = DetectionLoader(dataset: dataset, batchSize: 3, shuffle: false, prefetch: 1)
            let epoch = strict.epoch(0)
            _ = try epoch.next()
            let error = try #require(throws: ImageError.self) { try epoch.next() }
            #expect(error.file.hasSuffix("img4.png") && error.reason == .fileNotFound)

            let lenient = DetectionLoader(dataset: dataset, batchSize: 3, inputSize: 32, shuffle: false, prefetch: 1, skipBadSamples: true)
            let warnings = Warnings()
            lenient.warningHandler = { warnings.add($0) }
            let batches = try Self.all(lenient.epoch(0))
            #expect(batches.map(\.indices) == [[0, 1, 2], [3], [6, 7, 8], [9]])
            #expect(warnings.messages.count == 2)
            #expect(warnings.messages[0].contains("img4.png: no such file") && warnings.messages[0].contains("skipped"))
            #expect(warnings.messages[1].contains("img5.png: unknown image format"))
        }
    }

    @Test func sizeMismatchAndTransformErrors() throws {
        try Self.withDataset { dataset, _ in
            var wrong = dataset
            wrong.images[0].width = 99
            let loader = DetectionLoader(dataset: wrong, batchSize: 2, shuffle: false, prefetch: 0)
            let error = try #require(throws: DatasetError.self) { try loader.batch(0, epoch: 0) }
            #expect(error.description.hasSuffix("img0.png: the image is 20x40, its annotation (img0) says 99x40"))
            struct Refused: Error {}
            let refusing = DetectionLoader(dataset: dataset, batchSize: 2, prefetch: 0, transform: { _, _, _ in throw Refused() })
            #expect(throws: Refused.self) { try refusing.batch(0, epoch: 0) }
        }
    }
}
