import Foundation
import OcelliTensor
import Testing
@testable import OcelliVision

/// Adds 1 to byte `index` of the image: shows which children of a combinator ran.
private struct Mark: Augmenter {
    let index: Int
    func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
        var out = image
        out.pixels[index] &+= 1
        return (out, boxes)
    }
}

/// Sets byte 0 to `value`: the last one applied wins, which shows the order.
private struct SetFirst: Augmenter {
    let value: UInt8
    func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
        var out = image
        out.pixels[0] = value
        return (out, boxes)
    }
}

private func blank() -> Image { Image(width: 8, height: 1, filledWith: [0]) }

private func marks(_ image: Image) -> [Int] { image.pixels.indices.filter { image.pixels[$0] != 0 } }

@Suite("Augmentation: combinators, photometric transforms, determinism, preview")
struct AugmentationPipelineTests {
    static let photo = Fixtures.sharedImage("dog.jpg")

    static func everything() -> Augment.Sequential {
        Augment.Sequential {
            Augment.HorizontalFlip()
            Augment.VerticalFlip(probability: 0.2)
            Augment.Affine(scale: 0.8...1.2, translateX: -0.1...0.1, rotation: -15...15, shearX: -5...5)
            Augment.RandomCrop(.fraction(0.7...1))
            Augment.DarknetJitter(width: 96, height: 80, jitter: 0.3, mode: .crop)
            Augment.DarknetJitter(width: 80, height: 96, jitter: 0.3, mode: .place)
            Augment.DarknetHSV()
            Augment.BrightnessContrast()
            Augment.GaussianNoise(standardDeviation: 2...8)
            Augment.GaussianBlur(sigma: 0.5...1.5)
            Augment.Cutout(count: 1...3)
            Augment.SomeOf(1...2) { Augment.Identity(); Augment.HorizontalFlip(probability: 1); Augment.Resize(width: 64, height: 64) }
        }
    }

    @Test func sameSeedSamePixelsAndBoxes() {
        let pipeline = Self.everything()
        let boxes = [AugmentationScene.box, ObjectAnnotation(classIndex: 1, className: "b", xmin: 5, ymin: 5, xmax: 60, ymax: 100)]
        var results: [(Image, [ObjectAnnotation])] = []
        for seed in [11, 11, 12] as [UInt64] {
            var rng = SeededGenerator(seed: seed)
            results.append(pipeline.apply(AugmentationScene.image(), boxes, using: &rng))
        }
        #expect(results[0].0 == results[1].0 && results[0].1 == results[1].1)
        #expect(results[0].0 != results[2].0, "a different seed should give a different image")
        // The loader's closure gives the same as `apply`.
        let transform: (Image, [ObjectAnnotation], inout SeededGenerator) throws -> (Image, [ObjectAnnotation]) = pipeline.transform
        var rng = SeededGenerator(seed: 11)
        let viaClosure = try? transform(AugmentationScene.image(), boxes, &rng)
        #expect(viaClosure?.0 == results[0].0 && viaClosure?.1 == results[0].1)
    }

    /// Tiny images of every channel count go through every augmenter without trapping, and the
    /// boxes stay inside.
    @Test(arguments: [(1, 1, 1), (2, 3, 3), (5, 2, 4)])
    func tinyImages(width: Int, height: Int, channels: Int) {
        let image = Image(width: width, height: height, filledWith: Array([200, 100, 50, 255].prefix(channels)))
        let box = ObjectAnnotation(classIndex: 0, className: "", xmin: 0, ymin: 0, xmax: Double(width), ymax: Double(height))
        for seed in 0..<10 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            let (out, boxes) = Self.everything().apply(image, [box], using: &rng)
            #expect(out.channels == channels)
            for b in boxes { #expect(b.xmin >= 0 && b.ymin >= 0 && b.xmax <= Double(out.width) && b.ymax <= Double(out.height)) }
        }
    }

    @Test func photometricTransformsKeepBoxesAndChangePixels() throws {
        let image = try Image(contentsOf: Self.photo).resized(width: 192, height: 144)
        let boxes = [ObjectAnnotation(classIndex: 16, className: "dog", xmin: 20.5, ymin: 50, xmax: 80, ymax: 140.25)]
        let augmenters: [(String, any Augmenter)] = [
            ("hsv", Augment.DarknetHSV(hue: 0.1, saturation: 1.5, exposure: 1.5)),
            ("brightness/contrast", Augment.BrightnessContrast(brightness: 0.1...0.2, contrast: 1.2...1.4)),
            ("noise", Augment.GaussianNoise(standardDeviation: 5...10)),
            ("blur", Augment.GaussianBlur(sigma: 1...2)),
            ("cutout", Augment.Cutout(count: 2...2, size: 0.2...0.3, fill: 0)),
        ]
        for (name, augmenter) in augmenters {
            for seed in 0..<3 as Range<UInt64> {
                var rng = SeededGenerator(seed: seed)
                let (out, outBoxes) = augmenter.apply(image, boxes, using: &rng)
                #expect(outBoxes == boxes, "\(name) moved the boxes")
                #expect((out.width, out.height, out.channels) == (192, 144, 3), "\(name) changed the size")
                #expect(out != image, "\(name), seed \(seed): nothing changed")
            }
        }
    }

    @Test func darknetHSVByHand() throws {
        let image = try Image(contentsOf: Self.photo)
        // No shift, factors 1: the conversion round trip gives every byte back.
        #expect(Augment.DarknetHSV.distort(image, hue: 0, saturation: 1, exposure: 1) == image)
        var rng = SeededGenerator(seed: 4)
        #expect(Augment.DarknetHSV(hue: 0, saturation: 1, exposure: 1).apply(image, using: &rng) == image)
        // Hue is in turns: a third turns red into green, two thirds into blue.
        let red = Image(width: 1, height: 1, filledWith: [255, 0, 0])
        #expect(Augment.DarknetHSV.distort(red, hue: 1.0 / 3, saturation: 1, exposure: 1).pixels == [0, 255, 0])
        #expect(Augment.DarknetHSV.distort(red, hue: -1.0 / 3, saturation: 1, exposure: 1).pixels == [0, 0, 255])
        // Saturation 0 leaves gray at the value (max channel); exposure scales it.
        let colour = Image(width: 1, height: 1, filledWith: [200, 100, 50])
        #expect(Augment.DarknetHSV.distort(colour, hue: 0, saturation: 0, exposure: 1).pixels == [200, 200, 200])
        #expect(Augment.DarknetHSV.distort(colour, hue: 0, saturation: 1, exposure: 0.5).pixels == [100, 50, 25])
        #expect(Augment.DarknetHSV.distort(colour, hue: 0, saturation: 1, exposure: 2).pixels == [255, 200, 100])
        // Gray images take the exposure only; alpha is kept.
        #expect(Augment.DarknetHSV.distort(Image(width: 1, height: 1, filledWith: [90]), hue: 0.3, saturation: 2, exposure: 2).pixels == [180])
        #expect(Augment.DarknetHSV.distort(Image(width: 1, height: 1, filledWith: [200, 100, 50, 7]), hue: 0, saturation: 1, exposure: 0.5).pixels == [100, 50, 25, 7])
    }

    /// With exposure 1.5, the mean value (max channel) is scaled by a factor in [1/1.5, 1.5],
    /// brightening as often as darkening.
    @Test func darknetHSVExposureStatistics() throws {
        // Values ≤ 160, so ×1.5 never clips.
        var unused = SeededGenerator(seed: 0)
        let image = Augment.BrightnessContrast(brightness: 0...0, contrast: 0.6...0.6)
            .apply(try Image(contentsOf: Self.photo).resized(width: 96, height: 72), using: &unused)
        func meanValue(_ im: Image) -> Double {
            stride(from: 0, to: im.pixels.count, by: 3).reduce(0.0) { $0 + Double(max(im.pixels[$1], im.pixels[$1 + 1], im.pixels[$1 + 2])) }
                / Double(im.width * im.height)
        }
        let before = meanValue(image)
        var brighter = 0, darker = 0, largest = 1.0, smallest = 1.0
        let augmenter = Augment.DarknetHSV(hue: 0, saturation: 1, exposure: 1.5)
        for seed in 0..<200 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            let ratio = meanValue(augmenter.apply(image, using: &rng)) / before
            if ratio > 1 { brighter += 1 } else if ratio < 1 { darker += 1 }
            largest = max(largest, ratio); smallest = min(smallest, ratio)
        }
        #expect(largest <= 1.5 + 0.01 && smallest >= 1 / 1.5 - 0.01, "ratios \(smallest)...\(largest)")
        #expect(largest > 1.4 && smallest < 1 / 1.4, "the range should be nearly reached: \(smallest)...\(largest)")
        #expect(brighter >= 75 && darker >= 75, "brighter \(brighter), darker \(darker) of 200")
    }

    @Test func noiseAndBlurStatistics() {
        let flat = Image(width: 100, height: 100, filledWith: [128, 128, 128])
        var rng = SeededGenerator(seed: 9)
        let noisy = Augment.GaussianNoise(standardDeviation: 10...10).apply(flat, using: &rng)
        let deviations = noisy.pixels.map { Double($0) - 128 }
        let mean = deviations.reduce(0, +) / Double(deviations.count)
        let sd = (deviations.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(deviations.count)).squareRoot()
        #expect(abs(mean) < 0.2 && abs(sd - 10) < 0.3, "noise mean \(mean), sd \(sd)")

        // Blur keeps the total (edges are far away), spreads a block symmetrically, and a tiny σ is a no-op.
        var block = Image(width: 41, height: 41, filledWith: [0])
        block.fillRectangle(left: 16, top: 16, right: 24, bottom: 24, color: .white)
        let blurred = Augment.GaussianBlur.blurred(block, sigma: 2)
        let total = { (im: Image) in im.pixels.reduce(0) { $0 + Int($1) } }
        #expect(abs(Double(total(blurred)) / Double(total(block)) - 1) < 0.01)
        #expect(blurred[x: 20, y: 20, channel: 0] < 255 && blurred[x: 13, y: 20, channel: 0] > 0)
        for d in 1...8 {
            #expect(blurred[x: 20 - d, y: 20, channel: 0] == blurred[x: 20 + d, y: 20, channel: 0])
            #expect(blurred[x: 20, y: 20 - d, channel: 0] == blurred[x: 20 + d, y: 20, channel: 0])
        }
        #expect(Augment.GaussianBlur.blurred(block, sigma: 0.01) == block)
    }

    @Test func cutoutCanSpareTheBoxes() {
        let image = AugmentationScene.image()
        let box = AugmentationScene.box
        var changedOutside = 0
        for seed in 0..<20 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            let (out, boxes) = Augment.Cutout(count: 3...3, size: 0.15...0.25, fill: 0, avoidBoxes: true).apply(image, [box], using: &rng)
            #expect(boxes == [box])
            for y in 0..<image.height {
                for x in 0..<image.width {
                    let inside = Double(x) >= box.xmin && Double(x) < box.xmax && Double(y) >= box.ymin && Double(y) < box.ymax
                    let changed = out[x: x, y: y, channel: 1] != image[x: x, y: y, channel: 1]
                    if inside { #expect(!changed, "seed \(seed): cutout covered (\(x), \(y)) inside the box") }
                    if changed { changedOutside += 1 }
                }
            }
        }
        #expect(changedOutside > 1000)
    }

    @Test func sometimes() {
        for seed in 0..<30 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            #expect(marks(Augment.Sometimes(0, Mark(index: 1)).apply(blank(), using: &rng)) == [])
            #expect(marks(Augment.Sometimes(1, Mark(index: 1)).apply(blank(), using: &rng)) == [1])
            #expect(marks(Augment.Sometimes(0, Mark(index: 1), otherwise: Mark(index: 2)).apply(blank(), using: &rng)) == [2])
        }
        var rng = SeededGenerator(seed: 1)
        let half = (0..<200).filter { _ in !marks(Augment.Sometimes(0.5) { Mark(index: 3) }.apply(blank(), using: &rng)).isEmpty }.count
        #expect(half > 70 && half < 130, "Sometimes(0.5) applied \(half) of 200 times")
    }

    @Test func someOfAppliesExactlyN() {
        let children: [any Augmenter] = (0..<5).map { Mark(index: $0) }
        for n in 0...5 {
            var seen = Set<[Int]>()
            for seed in 0..<40 as Range<UInt64> {
                var rng = SeededGenerator(seed: seed)
                let applied = marks(Augment.SomeOf(n, children).apply(blank(), using: &rng))
                #expect(applied.count == n, "SomeOf(\(n)) applied \(applied)")
                seen.insert(applied)
            }
            if n == 1 || n == 4 { #expect(seen.count == 5, "SomeOf(\(n)) chose only \(seen)") }
        }
        var sizes = Set<Int>()
        for seed in 0..<40 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            sizes.insert(marks(Augment.SomeOf(1...3, children).apply(blank(), using: &rng)).count)
        }
        #expect(sizes == [1, 2, 3])
        var chosen = Set<[Int]>()
        for seed in 0..<40 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            let applied = marks(Augment.OneOf(children).apply(blank(), using: &rng))
            #expect(applied.count == 1)
            chosen.insert(applied)
        }
        #expect(chosen.count == 5)
    }

    @Test func sequentialOrder() {
        var rng = SeededGenerator(seed: 0)
        #expect(Augment.Sequential { SetFirst(value: 1); SetFirst(value: 2) }.apply(blank(), using: &rng).pixels[0] == 2)
        var lasts = Set<UInt8>()
        for _ in 0..<20 {
            lasts.insert(Augment.Sequential(randomOrder: true) { SetFirst(value: 1); SetFirst(value: 2) }.apply(blank(), using: &rng).pixels[0])
        }
        #expect(lasts == [1, 2])
    }

    @Test func previewGrid() throws {
        let classNames = ["block", "dog"]
        var samples: [(image: Image, boxes: [ObjectAnnotation])] = []
        for seed in 0..<3 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            samples.append(Self.everything().apply(AugmentationScene.image(), [AugmentationScene.box], using: &rng))
        }
        samples.append((Image(width: 60, height: 40, filledWith: [0]),
                        [ObjectAnnotation(classIndex: 1, className: "dog", xmin: 10, ymin: 20, xmax: 40, ymax: 35)]))
        let grid = AugmentationPreview.grid(samples: samples, classNames: classNames, columns: 3, spacing: 4)
        let cellWidth = samples.map(\.image.width).max()!, cellHeight = samples.map(\.image.height).max()!
        #expect((grid.width, grid.height, grid.channels) == (3 * (cellWidth + 4) + 4, 2 * (cellHeight + 4) + 4, 3))
        // The fourth sample (second row, first cell): its box outline in class 1's colour.
        let colour = Color(classIndex: 1, classCount: 2)
        let x = 4 + 10, y = 4 + cellHeight + 4 + 30
        #expect((grid[x: x, y: y, channel: 0], grid[x: x, y: y, channel: 1], grid[x: x, y: y, channel: 2])
                == (colour.red, colour.green, colour.blue))
        #expect(grid[x: 4 + 12, y: y, channel: 0] == 0, "the box's inside is the sample's own black")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("grid.png").path
        try AugmentationPreview.saveGrid(samples: samples, classNames: classNames, columns: 3, to: path)
        #expect(try Image(contentsOf: path) == grid)
    }
}
