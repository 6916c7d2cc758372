import Foundation
import OcelliTensor

/// The digits detection data set: 256x256 RGB scenes (a colour gradient, a few distracting
/// strokes, coarse noise) with 1 to 6 handwritten MNIST digits pasted at random sizes (16 to 96
/// pixels tall) and colours, each an object of class "0"…"9" boxed tightly around its visible
/// pixels. The recipe of the course's `make_digits_detection.py`, written in Swift; the same
/// distribution, not the same pixels (the random numbers differ).
///
/// Layout written (Pascal VOC): `JPEGImages/<id>.png`, `Annotations/<id>.xml`,
/// `ImageSets/Main/<split>.txt`, `labels.txt`; ids `t000000`… (train) or `v000000`… (val).
/// `train` draws digits from MNIST training images 0..<55000, `val` from 55000..<60000.
/// Image i is generated from its own generator seeded with (seed, split, i), so the output is
/// the same byte for byte whatever the thread count.
public enum DigitsDetection {
    public enum Split: String, CaseIterable, Sendable {
        case train, val
        /// The MNIST training images this split draws its digits from.
        public var pool: Range<Int> { self == .train ? 0..<55000 : 55000..<60000 }
        var prefix: String { self == .train ? "t" : "v" }
    }

    /// Canvas width and height.
    public static let size = 256
    public static let classNames = (0...9).map(String.init)

    /// MNIST training digits as bytes: 60000 images of 28x28 and their labels.
    public struct Digits: Sendable {
        public let pixels: [UInt8]
        public let labels: [UInt8]
        public let count: Int

        /// Reads `train-images-idx3-ubyte.gz` and `train-labels-idx1-ubyte.gz` from `directory`.
        public init(directory: String = MNIST.defaultDirectory) throws {
            let imagesPath = (directory as NSString).appendingPathComponent("train-images-idx3-ubyte.gz")
            let labelsPath = (directory as NSString).appendingPathComponent("train-labels-idx1-ubyte.gz")
            let images = try IDX.read(path: imagesPath)
            guard images.shape.count == 3, images.shape[1] == 28, images.shape[2] == 28, images.shape[0] >= 60000 else {
                throw MNISTError(imagesPath, "expected the 60000 MNIST training images [60000, 28, 28], found shape \(images.shape)")
            }
            let labels = try IDX.read(path: labelsPath)
            guard labels.shape == [images.shape[0]] else {
                throw MNISTError(labelsPath, "expected \(images.shape[0]) labels, found shape \(labels.shape)")
            }
            pixels = images.bytes
            self.labels = labels.bytes
            count = images.shape[0]
        }
    }

    /// Writes `count` images of `split` under `directory` and returns the data set written.
    /// - Parameter threads: images generated at once (default: `Parallel.threadCount`).
    @discardableResult
    public static func write(split: Split, count: Int, seed: UInt64 = 1, digits: Digits, to directory: URL,
                             threads: Int? = nil) throws -> DetectionDataset {
        precondition(count >= 0, "DigitsDetection.write: negative count \(count)")
        let directory = directory.standardizedFileURL
        let imagesFolder = directory.appendingPathComponent("JPEGImages")
        let annotations = directory.appendingPathComponent("Annotations")
        let sets = directory.appendingPathComponent("ImageSets/Main")
        for d in [imagesFolder, annotations, sets] { try DatasetFiles.makeDirectory(d) }

        let ids = (0..<count).map { split.prefix + String(format: "%06d", $0) }
        var results = [AnnotatedImage?](repeating: nil, count: count)
        let failure = FirstError()
        let workers = max(1, min(threads ?? Parallel.threadCount, count))
        results.withUnsafeMutableBufferPointer { buffer in
            let out = UnsafeSendable(buffer)
            DispatchQueue.concurrentPerform(iterations: workers) { worker in
                for i in stride(from: worker, to: count, by: workers) where !failure.isSet {
                    do {
                        var generator = SeededGenerator(seed: imageSeed(seed: seed, split: split, index: i))
                        let (image, objects) = makeImage(&generator, digits: digits, pool: split.pool)
                        let file = imagesFolder.appendingPathComponent(ids[i] + ".png")
                        try image.write(png: file.path, compression: .fast)
                        let annotated = AnnotatedImage(id: ids[i], file: file, width: size, height: size, objects: objects)
                        try DatasetFiles.write(VOCFormat.xml(annotated, fileName: ids[i] + ".png"),
                                               to: annotations.appendingPathComponent(ids[i] + ".xml"))
                        out.value[i] = annotated
                    } catch {
                        failure.set(error)
                    }
                }
            }
        }
        if let error = failure.error { throw error }
        try DatasetFiles.write(ids.map { $0 + "\n" }.joined(), to: sets.appendingPathComponent(split.rawValue + ".txt"))
        try DatasetFiles.write(classNames.map { $0 + "\n" }.joined(), to: directory.appendingPathComponent("labels.txt"))
        return DetectionDataset(classNames: classNames, images: results.map { $0! }, format: .voc, split: split.rawValue)
    }

    /// The seed of image `index`: (seed, split, index) mixed with SplitMix64 steps.
    static func imageSeed(seed: UInt64, split: Split, index: Int) -> UInt64 {
        func mix(_ x: UInt64) -> UInt64 {
            var z = x &+ 0x9E37_79B9_7F4A_7C15
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return mix(mix(mix(seed) ^ (split == .train ? 0 : 1)) ^ UInt64(index))
    }

    // MARK: The recipe

    /// One scene and its objects (boxes in 0-based continuous pixels, tight around the digit
    /// pixels whose opacity exceeds 0.2).
    public static func makeImage(_ g: inout SeededGenerator, digits: Digits, pool: Range<Int>) -> (Image, [ObjectAnnotation]) {
        var canvas = background(&g)
        var objects: [ObjectAnnotation] = []
        var placed: [(Int, Int, Int, Int)] = []
        let attempts = integer(&g, 1, 7)
        for _ in 0..<attempts {
            let k = pool.lowerBound + integer(&g, 0, pool.count)
            let (crop, cw, ch) = croppedDigit(digits, k)
            let h = integer(&g, 16, 97)
            let w = max(4, Int((Double(h) * Double(cw) / Double(ch) * uniform(&g, 0.8, 1.25)).rounded(.toNearestOrEven)))
            if w >= size - 2 { continue }
            let alpha = resizeBilinear(crop, cw, ch, w, h).map { min(max($0, 0), 1) }
            var position: (Int, Int)? = nil
            for _ in 0..<20 {
                let x = integer(&g, 0, size - w), y = integer(&g, 0, size - h)
                let box = (x, y, x + w, y + h)
                if placed.allSatisfy({ iou(box, $0) < 0.2 }) { position = (x, y); break }
            }
            guard let (x, y) = position else { continue }
            // Dark digits on light ground, light digits on dark ground, per channel (both colour
            // sets are drawn, as the recipe's np.where does).
            var base = [0.0, 0.0, 0.0]
            for r in y..<(y + h) { for c in x..<(x + w) { for ch in 0..<3 { base[ch] += canvas[(r * size + c) * 3 + ch] } } }
            let dark = (0..<3).map { _ in uniform(&g, 0, 70) }, light = (0..<3).map { _ in uniform(&g, 185, 255) }
            let colour = (0..<3).map { base[$0] / Double(w * h) > 127 ? dark[$0] : light[$0] }
            var minX = Int.max, minY = Int.max, maxX = -1, maxY = -1
            for r in 0..<h {
                for c in 0..<w {
                    let a = alpha[r * w + c]
                    let p = ((y + r) * size + x + c) * 3
                    for ch in 0..<3 { canvas[p + ch] = canvas[p + ch] * (1 - a) + colour[ch] * a }
                    if a > 0.2 { minX = min(minX, c); maxX = max(maxX, c); minY = min(minY, r); maxY = max(maxY, r) }
                }
            }
            guard maxX >= 0 else { continue }  // nothing visible: no object
            let tight = (x + minX, y + minY, x + maxX + 1, y + maxY + 1)
            placed.append(tight)
            let label = Int(digits.labels[k])
            objects.append(ObjectAnnotation(classIndex: label, className: String(label), xmin: Double(tight.0), ymin: Double(tight.1),
                                            xmax: Double(tight.2), ymax: Double(tight.3)))
        }
        let pixels = canvas.map { UInt8(min(max($0.rounded(.toNearestOrEven), 0), 255)) }
        return (Image(width: size, height: size, channels: 3, pixels: pixels), objects)
    }

    /// A gradient between two random colours at a random angle, 0–3 one-pixel strokes, and
    /// Gaussian noise (σ 6) constant over 4x4 blocks. HWC, Double.
    static func background(_ g: inout SeededGenerator) -> [Double] {
        let c0 = (0..<3).map { _ in uniform(&g, 0, 255) }, c1 = (0..<3).map { _ in uniform(&g, 0, 255) }
        let angle = uniform(&g, 0, 2 * Double.pi)
        let ca = cos(angle), sa = sin(angle), n = Double(size)
        // t is linear in x and y: its extremes over the grid are at the corners.
        let corners = [0.0, Double(size - 1) / n]
        let ts = corners.flatMap { x in corners.map { y in ca * x + sa * y } }
        let tMin = ts.min()!, span = max(ts.max()! - tMin, 1e-6)
        var canvas = [Double](repeating: 0, count: size * size * 3)
        for y in 0..<size {
            for x in 0..<size {
                let t = (ca * Double(x) / n + sa * Double(y) / n - tMin) / span
                for ch in 0..<3 { canvas[(y * size + x) * 3 + ch] = c0[ch] * (1 - t) + c1[ch] * t }
            }
        }
        for _ in 0..<integer(&g, 0, 4) {
            let x0 = uniform(&g, 0, n), y0 = uniform(&g, 0, n), x1 = uniform(&g, 0, n), y1 = uniform(&g, 0, n)
            let count = Int(max(abs(x1 - x0), abs(y1 - y0))) + 1
            let colour = (0..<3).map { _ in uniform(&g, 0, 255) }
            for i in 0..<count {
                let f = count == 1 ? 0 : Double(i) / Double(count - 1)
                let px = min(max(Int(x0 + (x1 - x0) * f), 0), size - 1), py = min(max(Int(y0 + (y1 - y0) * f), 0), size - 1)
                for ch in 0..<3 { canvas[(py * size + px) * 3 + ch] = colour[ch] }
            }
        }
        let blocks = size / 4
        for by in 0..<blocks {
            for bx in 0..<blocks {
                for ch in 0..<3 {
                    let v = Double(g.nextNormal()) * 6
                    for r in 0..<4 {
                        let row: Int = (by * 4 + r) * size + bx * 4
                        for c in 0..<4 { canvas[(row + c) * 3 + ch] += v }
                    }
                }
            }
        }
        return canvas
    }

    /// MNIST digit `k` in [0, 1], cropped to its pixels above 0.12: (values, width, height).
    static func croppedDigit(_ digits: Digits, _ k: Int) -> ([Double], Int, Int) {
        let base = k * 784
        var minX = 28, minY = 28, maxX = -1, maxY = -1
        for r in 0..<28 {
            for c in 0..<28 where Double(digits.pixels[base + r * 28 + c]) / 255 > 0.12 {
                minX = min(minX, c); maxX = max(maxX, c); minY = min(minY, r); maxY = max(maxY, r)
            }
        }
        if maxX < 0 { minX = 0; minY = 0; maxX = 27; maxY = 27 }  // an empty digit: keep the whole square
        let w = maxX - minX + 1, h = maxY - minY + 1
        var crop = [Double](repeating: 0, count: w * h)
        for r in 0..<h { for c in 0..<w { crop[r * w + c] = Double(digits.pixels[base + (minY + r) * 28 + minX + c]) / 255 } }
        return (crop, w, h)
    }

    /// Bilinear resize with half-pixel centres and clamped edges (the recipe's `resize_bilinear`).
    static func resizeBilinear(_ src: [Double], _ iw: Int, _ ih: Int, _ w: Int, _ h: Int) -> [Double] {
        var out = [Double](repeating: 0, count: w * h)
        for r in 0..<h {
            let sy = (Double(r) + 0.5) * Double(ih) / Double(h) - 0.5
            let y0 = min(max(Int(sy.rounded(.down)), 0), ih - 1), y1 = min(y0 + 1, ih - 1)
            let fy = min(max(sy - Double(y0), 0), 1)
            for c in 0..<w {
                let sx = (Double(c) + 0.5) * Double(iw) / Double(w) - 0.5
                let x0 = min(max(Int(sx.rounded(.down)), 0), iw - 1), x1 = min(x0 + 1, iw - 1)
                let fx = min(max(sx - Double(x0), 0), 1)
                let a = src[y0 * iw + x0], b = src[y0 * iw + x1], cc = src[y1 * iw + x0], d = src[y1 * iw + x1]
                out[r * w + c] = (a * (1 - fx) + b * fx) * (1 - fy) + (cc * (1 - fx) + d * fx) * fy
            }
        }
        return out
    }

    static func iou(_ a: (Int, Int, Int, Int), _ b: (Int, Int, Int, Int)) -> Double {
        let ix = max(0, min(a.2, b.2) - max(a.0, b.0)), iy = max(0, min(a.3, b.3) - max(a.1, b.1))
        let inter = Double(ix * iy)
        let areaA: Int = (a.2 - a.0) * (a.3 - a.1)
        let areaB: Int = (b.2 - b.0) * (b.3 - b.1)
        return inter / (Double(areaA + areaB) - inter)
    }

    /// Uniform in [low, high) from 53 random bits.
    static func uniform(_ g: inout SeededGenerator, _ low: Double, _ high: Double) -> Double {
        low + (high - low) * (Double(g.next() >> 11) * 0x1p-53)
    }

    /// Uniform integer in low..<high (multiply-shift: stable across Swift versions, unlike `Int.random(in:using:)`).
    static func integer(_ g: inout SeededGenerator, _ low: Int, _ high: Int) -> Int {
        low + Int(g.next().multipliedFullWidth(by: UInt64(high - low)).high)
    }
}
