import Foundation
import OcelliTensor

// Augmenters that change pixel values only: boxes come back unchanged. Alpha is never touched.

extension Augment {
    /// Brightness and contrast: v' = (v − 127.5) · contrast + 127.5 + brightness · 255, clamped to
    /// bytes, the same on every colour channel. `contrast` (1 = unchanged) and `brightness`
    /// (a fraction of full scale, 0 = unchanged) are drawn uniformly from their ranges.
    public struct BrightnessContrast: Augmenter {
        public var brightness: ClosedRange<Double>
        public var contrast: ClosedRange<Double>

        public init(brightness: ClosedRange<Double> = -0.2...0.2, contrast: ClosedRange<Double> = 0.8...1.2) {
            precondition(contrast.lowerBound >= 0, "BrightnessContrast: contrast must not be negative, got \(contrast)")
            self.brightness = brightness
            self.contrast = contrast
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let b = rng.uniform(brightness), k = rng.uniform(contrast)
            var table = [UInt8](repeating: 0, count: 256)
            for v in 0..<256 {
                let x = (Double(v) - 127.5) * k + 127.5 + b * 255
                table[v] = UInt8(Swift.max(0, Swift.min(255, x.rounded())))
            }
            return (PixelMap.lookup(image, table), boxes)
        }
    }

    /// Additive Gaussian noise: every colour value gets its own N(0, σ²) sample (σ in byte units,
    /// drawn once per image from `standardDeviation`), rounded and clamped to bytes.
    ///
    /// Samples come from a table of the 4096 normal quantiles Φ⁻¹((i + ½) / 4096), indexed by 12
    /// random bits (five samples per 64-bit draw): a normal truncated at ±3.7σ with variance
    /// 0.998, and no logarithm or cosine per value.
    public struct GaussianNoise: Augmenter {
        public var standardDeviation: ClosedRange<Double>

        /// imgaug's common choice is σ up to 0.05 · 255 ≈ 12.75.
        public init(standardDeviation: ClosedRange<Double> = 0...12.75) {
            precondition(standardDeviation.lowerBound >= 0, "GaussianNoise: standard deviation must not be negative, got \(standardDeviation)")
            self.standardDeviation = standardDeviation
        }

        /// Φ⁻¹((i + ½) / 4096) for i in 0..<4096, by bisection on erf (done once).
        static let quantiles: [Float] = (0..<4096).map { i in
            let target = (Double(i) + 0.5) / 4096
            var low = -6.0, high = 6.0
            for _ in 0..<60 {
                let mid = (low + high) / 2
                if 0.5 * (1 + erf(mid / 2.0.squareRoot())) < target { low = mid } else { high = mid }
            }
            return Float((low + high) / 2)
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let sigma = Float(rng.uniform(standardDeviation))
            var out = image
            let c = image.channels, colour = c == 4 ? 3 : c
            let count = image.width * image.height
            let table = GaussianNoise.quantiles.map { $0 * sigma }
            table.withUnsafeBufferPointer { t in
                out.pixels.withUnsafeMutableBufferPointer { buffer in
                    guard let p = buffer.baseAddress else { return }
                    var bits: UInt64 = 0, left = 0
                    for i in 0..<count {
                        let q = p + i &* c
                        for k in 0..<colour {
                            if left == 0 { bits = rng.next(); left = 5 }
                            let z = t[Int(truncatingIfNeeded: bits & 0xFFF)]
                            bits >>= 12; left &-= 1
                            q[k] = Warp.byte(Float(q[k]) + z)
                        }
                    }
                }
            }
            return (out, boxes)
        }
    }

    /// Gaussian blur with σ (pixels) drawn from `sigma`: a separable kernel of radius ⌈3σ⌉,
    /// normalised, edges repeated. σ below 0.05 leaves the image unchanged.
    public struct GaussianBlur: Augmenter {
        public var sigma: ClosedRange<Double>

        public init(sigma: ClosedRange<Double> = 0...1) {
            precondition(sigma.lowerBound >= 0, "GaussianBlur: sigma must not be negative, got \(sigma)")
            self.sigma = sigma
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            (GaussianBlur.blurred(image, sigma: rng.uniform(sigma)), boxes)
        }

        /// `image` blurred with a Gaussian of standard deviation `sigma` pixels.
        public static func blurred(_ image: Image, sigma: Double) -> Image {
            guard sigma >= 0.05, image.width > 0, image.height > 0 else { return image }
            let radius = Int((3 * sigma).rounded(.up))
            var weights = (-radius...radius).map { Float(exp(-Double($0 * $0) / (2 * sigma * sigma))) }
            let total = weights.reduce(0, +)
            weights = weights.map { $0 / total }
            let w = image.width, h = image.height, c = image.channels
            let colour = c == 4 ? 3 : c
            let rowLength = w * c
            var out = image
            // Horizontal pass into Floats (one padded source row at a time), then vertical.
            var horizontal = [Float](repeating: 0, count: w * h * c)
            var padded = [Float](repeating: 0, count: (w + 2 * radius) * c)
            var accumulator = [Float](repeating: 0, count: rowLength)
            image.pixels.withUnsafeBufferPointer { src in
            weights.withUnsafeBufferPointer { kernel in
            horizontal.withUnsafeMutableBufferPointer { hBuffer in
            padded.withUnsafeMutableBufferPointer { padBuffer in
            accumulator.withUnsafeMutableBufferPointer { accBuffer in
            out.pixels.withUnsafeMutableBufferPointer { dst in
                let pad = padBuffer.baseAddress!, hp = hBuffer.baseAddress!, acc = accBuffer.baseAddress!
                for y in 0..<h {
                    let row = src.baseAddress! + y &* rowLength
                    for x in 0..<(w + 2 * radius) {
                        let sx = Swift.min(Swift.max(x &- radius, 0), w &- 1)
                        for k in 0..<c { pad[x &* c &+ k] = Float(row[sx &* c &+ k]) }
                    }
                    let o = hp + y &* rowLength
                    for i in 0..<rowLength { o[i] = 0 }
                    for t in 0...(2 * radius) {
                        let weight = kernel[t], s = pad + t &* c
                        for i in 0..<rowLength { o[i] += weight * s[i] }
                    }
                }
                for y in 0..<h {
                    for i in 0..<rowLength { acc[i] = 0 }
                    for t in 0...(2 * radius) {
                        let sy = Swift.min(Swift.max(y &+ t &- radius, 0), h &- 1)
                        let weight = kernel[t], s = hp + sy &* rowLength
                        for i in 0..<rowLength { acc[i] += weight * s[i] }
                    }
                    let d = dst.baseAddress! + y &* rowLength
                    for x in 0..<w {
                        for k in 0..<colour {
                            let v = acc[x &* c &+ k]
                            d[x &* c &+ k] = UInt8(v > 255 ? 255 : (v > 0 ? v + 0.5 : 0))
                        }
                    }
                }
            }}}}}}
            return out
        }
    }

    /// Cutout (DeVries & Taylor 2017): `count` squares (drawn from the range) of side
    /// `size` · min(width, height) (each drawn from `size`), centred uniformly in the image and
    /// clipped to it, filled with `fill`. With `avoidBoxes`, a square that would overlap a box
    /// is redrawn (up to 20 tries, then left out), so objects stay fully visible. Boxes are
    /// unchanged.
    public struct Cutout: Augmenter {
        public var count: ClosedRange<Int>
        public var size: ClosedRange<Double>
        public var fill: UInt8
        public var avoidBoxes: Bool

        public init(count: ClosedRange<Int> = 1...1, size: ClosedRange<Double> = 0.1...0.3, fill: UInt8 = 128,
                    avoidBoxes: Bool = false) {
            precondition(count.lowerBound >= 0, "Cutout: count must not be negative, got \(count)")
            precondition(size.lowerBound >= 0 && size.upperBound <= 1, "Cutout: size must be in 0...1, got \(size)")
            self.count = count
            self.size = size
            self.fill = fill
            self.avoidBoxes = avoidBoxes
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            var out = image
            let w = Double(image.width), h = Double(image.height), shortSide = Swift.min(w, h)
            for _ in 0..<rng.integer(in: count) {
                for _ in 0..<(avoidBoxes ? 20 : 1) {
                    let side = rng.uniform(size) * shortSide
                    let cx = rng.uniform(0...w), cy = rng.uniform(0...h)
                    // The square's pixels: those whose centres lie inside it.
                    let left = Int((cx - side / 2).rounded()), right = Int((cx + side / 2).rounded()) - 1
                    let top = Int((cy - side / 2).rounded()), bottom = Int((cy + side / 2).rounded()) - 1
                    guard right >= left && bottom >= top else { break }
                    if avoidBoxes && boxes.contains(where: { box in
                        Double(left) < box.xmax && Double(right + 1) > box.xmin && Double(top) < box.ymax && Double(bottom + 1) > box.ymin
                    }) { continue }
                    PixelMap.fill(&out, left: left, top: top, right: right, bottom: bottom, value: fill)
                    break
                }
            }
            return (out, boxes)
        }
    }
}

/// Per-value byte maps shared by the photometric augmenters.
enum PixelMap {
    /// Sets the colour values of the pixels [left, right] x [top, bottom] (inclusive, clipped to
    /// the image) to `value`; alpha kept.
    static func fill(_ image: inout Image, left: Int, top: Int, right: Int, bottom: Int, value: UInt8) {
        let x0 = Swift.max(left, 0), x1 = Swift.min(right, image.width - 1)
        let y0 = Swift.max(top, 0), y1 = Swift.min(bottom, image.height - 1)
        guard x0 <= x1 && y0 <= y1 else { return }
        let c = image.channels, colour = c == 4 ? 3 : c, w = image.width
        image.pixels.withUnsafeMutableBufferPointer { p in
            for y in y0...y1 {
                for x in x0...x1 {
                    let i = (y &* w &+ x) &* c
                    for k in 0..<colour { p[i &+ k] = value }
                }
            }
        }
    }

    /// Every colour value v replaced by table[v]; alpha kept.
    static func lookup(_ image: Image, _ table: [UInt8]) -> Image {
        var out = image
        let c = image.channels
        table.withUnsafeBufferPointer { t in
            out.pixels.withUnsafeMutableBufferPointer { p in
                if c == 4 {
                    for i in stride(from: 0, to: p.count, by: 4) {
                        p[i] = t[Int(p[i])]; p[i + 1] = t[Int(p[i + 1])]; p[i + 2] = t[Int(p[i + 2])]
                    }
                } else {
                    for i in 0..<p.count { p[i] = t[Int(p[i])] }
                }
            }
        }
        return out
    }
}
