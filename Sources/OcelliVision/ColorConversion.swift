import OcelliTensor

// MARK: 8-bit images

extension Image {
    /// Red and blue exchanged: RGB <-> BGR (RGBA <-> BGRA). Gray images come back unchanged.
    public func swappingRedBlue() -> Image {
        guard channels >= 3 else { return self }
        var out = self
        let c = channels
        out.pixels.withUnsafeMutableBufferPointer { p in
            for i in stride(from: 0, to: p.count, by: c) { p.swapAt(i, i + 2) }
        }
        return out
    }

    /// One gray channel. From colour: (R·4899 + G·9617 + B·1868 + 8192) >> 14, the fixed-point
    /// form of 0.299 R + 0.587 G + 0.114 B that OpenCV's `cvtColor(RGB2GRAY)` uses, so results
    /// match it exactly. Alpha is dropped.
    public func grayscale() -> Image {
        if channels == 1 { return self }
        let c = channels
        let n = width * height
        let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<n {
                    let r = Int32(src[i &* c]), g = Int32(src[i &* c &+ 1]), b = Int32(src[i &* c &+ 2])
                    dst[i] = UInt8(truncatingIfNeeded: (r &* 4899 &+ g &* 9617 &+ b &* 1868 &+ 8192) >> 14)
                }
            }
            initialized = n
        }
        return Image(width: width, height: height, channels: 1, pixels: out)
    }

    /// Three channels: gray is copied into R, G and B; alpha is dropped (not composited).
    public func rgb() -> Image { converted(channels: 3) }

    /// Four channels: gray is copied into R, G and B; a missing alpha channel becomes 255.
    public func rgba() -> Image { converted(channels: 4) }

    private func converted(channels target: Int) -> Image {
        if channels == target { return self }
        let c = channels
        let n = width * height
        let out = [UInt8](unsafeUninitializedCapacity: n * target) { dst, initialized in
            pixels.withUnsafeBufferPointer { src in
                for i in 0..<n {
                    let s = i &* c, d = i &* target
                    if c == 1 {
                        dst[d] = src[s]; dst[d &+ 1] = src[s]; dst[d &+ 2] = src[s]
                    } else {
                        dst[d] = src[s]; dst[d &+ 1] = src[s &+ 1]; dst[d &+ 2] = src[s &+ 2]
                    }
                    if target == 4 { dst[d &+ 3] = c == 4 ? src[s &+ 3] : 255 }
                }
            }
            initialized = n * target
        }
        return Image(width: width, height: height, channels: target, pixels: out)
    }
}

// MARK: Float images

/// Colour-space conversions of Float image tensors whose last axis holds the channels
/// ([..., 3] for RGB/BGR/HSV), values in [0, 1]. Formulas are Darknet's, in Float arithmetic
/// and the same order of operations, so augmentation matches Darknet's bit for bit.
public enum ColorConversion {
    private static func mapPixels(_ image: Tensor, channels: Int = 3, outputChannels: Int = 3,
                                  _ body: (UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Tensor {
        precondition(image.shape.last == channels,
                     "ColorConversion: expected \(channels) channels on the last axis, got shape \(image.shape)")
        let pixels = image.count / channels
        var shape = image.shape
        shape[shape.count - 1] = outputChannels
        let n = pixels * outputChannels
        let out = [Float](unsafeUninitializedCapacity: n) { dst, initialized in
            image.scalars.withUnsafeBufferPointer { src in
                for p in 0..<pixels {
                    body(src.baseAddress! + p * channels, dst.baseAddress! + p * outputChannels)
                }
            }
            initialized = n
        }
        return Tensor(shape: shape, scalars: out)
    }

    /// RGB <-> BGR: the first and third channels exchanged.
    public static func swapRedBlue(_ image: Tensor) -> Tensor {
        mapPixels(image) { s, d in d[0] = s[2]; d[1] = s[1]; d[2] = s[0] }
    }

    /// One gray channel, 0.299 R + 0.587 G + 0.114 B (Darknet's `grayscale_image`):
    /// [..., 3] -> [..., 1].
    public static func rgbToGray(_ image: Tensor) -> Tensor {
        let wr: Float = 0.299, wg: Float = 0.587, wb: Float = 0.114
        return mapPixels(image, outputChannels: 1) { s, d in
            var v: Float = 0
            v += wr * s[0]
            v += wg * s[1]
            v += wb * s[2]
            d[0] = v
        }
    }

    /// RGB -> HSV with H, S and V in [0, 1] (H is the hue angle / 360°; H = S = 0 for black),
    /// Darknet's `rgb_to_hsv`.
    public static func rgbToHSV(_ image: Tensor) -> Tensor {
        mapPixels(image) { s, d in
            let r = s[0], g = s[1], b = s[2]
            let maximum = r > g ? (r > b ? r : b) : (g > b ? g : b)
            let minimum = r < g ? (r < b ? r : b) : (g < b ? g : b)
            let delta = maximum - minimum
            var h: Float = 0, sat: Float = 0
            if maximum != 0 {
                sat = delta / maximum
                if r == maximum {
                    h = (g - b) / delta
                } else if g == maximum {
                    h = 2 + (b - r) / delta
                } else {
                    h = 4 + (r - g) / delta
                }
                if h < 0 { h += 6 }
                h = Float(Double(h) / 6)  // Darknet's `h/6.` divides in double
            }
            // Darknet divides by delta even when it is 0 (gray pixels): hue becomes NaN there.
            // Gray has no hue; 0 is what every other library returns.
            if delta == 0 { h = 0 }
            d[0] = h; d[1] = sat; d[2] = maximum
        }
    }

    /// HSV (all in [0, 1]) -> RGB, Darknet's `hsv_to_rgb`.
    public static func hsvToRGB(_ image: Tensor) -> Tensor {
        mapPixels(image) { s, d in
            let h = 6 * s[0], sat = s[1], v = s[2]
            var r = v, g = v, b = v
            if sat != 0 {
                let index = Int(h.rounded(.down))
                let f = h - Float(index)
                let p = v * (1 - sat)
                let q = v * (1 - sat * f)
                let t = v * (1 - sat * (1 - f))
                switch index {
                case 0: (r, g, b) = (v, t, p)
                case 1: (r, g, b) = (q, v, p)
                case 2: (r, g, b) = (p, v, t)
                case 3: (r, g, b) = (p, q, v)
                case 4: (r, g, b) = (t, p, v)
                default: (r, g, b) = (v, p, q)
                }
            }
            d[0] = r; d[1] = g; d[2] = b
        }
    }
}
