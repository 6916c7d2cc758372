import Foundation

/// A 2-D affine map of continuous pixel coordinates (y points down):
/// x' = a·x + b·y + c, y' = d·x + e·y + f.
public struct AffineMap: Equatable, Sendable {
    public var a: Double, b: Double, c: Double
    public var d: Double, e: Double, f: Double

    public init(a: Double, b: Double, c: Double, d: Double, e: Double, f: Double) {
        self.a = a; self.b = b; self.c = c
        self.d = d; self.e = e; self.f = f
    }

    public static let identity = AffineMap(a: 1, b: 0, c: 0, d: 0, e: 1, f: 0)

    /// Moves points by (`x`, `y`).
    public static func translation(x: Double, y: Double) -> AffineMap {
        AffineMap(a: 1, b: 0, c: x, d: 0, e: 1, f: y)
    }

    /// Scales coordinates by `x` and `y` about the origin.
    public static func scaling(x: Double, y: Double) -> AffineMap {
        AffineMap(a: x, b: 0, c: 0, d: 0, e: y, f: 0)
    }

    /// Turns points by `radians` about the origin; with y pointing down, positive angles turn
    /// the picture clockwise on screen.
    public static func rotation(radians: Double) -> AffineMap {
        let cs = cos(radians), sn = sin(radians)
        return AffineMap(a: cs, b: -sn, c: 0, d: sn, e: cs, f: 0)
    }

    /// Shears: x' = x + tan(`x`)·y, y' = y + tan(`y`)·x (angles in radians).
    public static func shear(x: Double, y: Double) -> AffineMap {
        AffineMap(a: 1, b: tan(x), c: 0, d: tan(y), e: 1, f: 0)
    }

    /// `self` first, then `next`.
    public func followed(by next: AffineMap) -> AffineMap {
        AffineMap(a: next.a * a + next.b * d, b: next.a * b + next.b * e, c: next.a * c + next.b * f + next.c,
                        d: next.d * a + next.e * d, e: next.d * b + next.e * e, f: next.d * c + next.e * f + next.f)
    }

    /// The inverse map; the transform must not be singular.
    public var inverse: AffineMap {
        let det = a * e - b * d
        precondition(det != 0 && det.isFinite, "AffineMap.inverse: the transform is singular (\(self))")
        let ia = e / det, ib = -b / det, id = -d / det, ie = a / det
        return AffineMap(a: ia, b: ib, c: -(ia * c + ib * f), d: id, e: ie, f: -(id * c + ie * f))
    }

    /// The image of the point (`x`, `y`).
    public func apply(x: Double, y: Double) -> (x: Double, y: Double) {
        (a * x + b * y + c, d * x + e * y + f)
    }
}

/// Inverse-mapped bilinear resampling of 8-bit images.
///
/// The source is first copied into a frame with a 2-pixel border (the fill value, or the edge
/// pixels repeated); sample points are clamped into that frame, so every bilinear tap reads
/// memory and the inner loops have no branches.
enum Warp {
    /// What the sampler reads outside the source image.
    enum Border {
        /// A constant: `fill` in every colour channel, 255 in alpha.
        case constant(UInt8)
        /// The nearest edge pixel.
        case replicate
    }

    static let margin = 2

    /// A value in [0, 255] (clamped) as the nearest byte (ties to even), without a checked
    /// conversion: 2²³ + v holds round(v) in its low mantissa bits.
    @inline(__always)
    static func byte(_ v: Float) -> UInt8 {
        let clamped = v > 0 ? (v < 255 ? v : 255) : 0
        return UInt8(truncatingIfNeeded: (clamped + 8_388_608).bitPattern)
    }

    /// `image` inside a `margin`-pixel border: (width + 4) x (height + 4) pixels, HWC.
    static func framed(_ image: Image, border: Border) -> [UInt8] {
        let c = image.channels, w = image.width, h = image.height, m = margin
        let fw = w + 2 * m, fh = h + 2 * m
        let rowBytes = fw * c
        var fill: [UInt8] = [0, 0, 0, 0]
        if case .constant(let v) = border { fill = [v, v, v, c == 4 ? 255 : v] }
        return [UInt8](unsafeUninitializedCapacity: fw * fh * c) { dst, initialized in
            image.pixels.withUnsafeBufferPointer { srcBuffer in
                let src = srcBuffer.baseAddress!, out = dst.baseAddress!
                for y in 0..<h {
                    let row = out + (y + m) * rowBytes
                    (row + m * c).update(from: src + y * w * c, count: w * c)
                    for x in 0..<m {
                        for k in 0..<c {
                            switch border {
                            case .constant: row[x * c + k] = fill[k]; row[(m + w + x) * c + k] = fill[k]
                            case .replicate: row[x * c + k] = src[y * w * c + k]; row[(m + w + x) * c + k] = src[(y * w + w - 1) * c + k]
                            }
                        }
                    }
                }
                for y in 0..<m {
                    let top = out + y * rowBytes, bottom = out + (m + h + y) * rowBytes
                    switch border {
                    case .constant:
                        for x in 0..<fw { for k in 0..<c { top[x * c + k] = fill[k]; bottom[x * c + k] = fill[k] } }
                    case .replicate:
                        top.update(from: out + m * rowBytes, count: rowBytes)
                        bottom.update(from: out + (m + h - 1) * rowBytes, count: rowBytes)
                    }
                }
            }
            initialized = fw * fh * c
        }
    }

    /// The `width` x `height` image whose pixel (X, Y) is `image` sampled bilinearly at the point
    /// `toSource` maps the pixel centre (X + 0.5, Y + 0.5) to (so the forward map of pixels is
    /// `toSource.inverse`, in the same continuous coordinates as boxes).
    static func affine(_ image: Image, toSource m: AffineMap, width: Int, height: Int, border: Border) -> Image {
        let c = image.channels
        guard image.width > 0 && image.height > 0 else {
            // Nothing to sample: the whole output is border.
            var value: UInt8 = 0
            if case .constant(let v) = border { value = v }
            return Image(width: width, height: height, filledWith: Array([value, value, value, 255].prefix(c == 4 ? 4 : c)))
        }
        let frame = framed(image, border: border)
        let n = width * height * c
        let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
            frame.withUnsafeBufferPointer { f in
                let src = f.baseAddress!, o = dst.baseAddress!
                if m.b == 0 && m.d == 0 {
                    axisAligned(src, image.width, image.height, c, o, width, height, m)
                } else {
                    switch c {
                    case 1: general(src, image.width, image.height, 1, o, width, height, m)
                    case 3: general(src, image.width, image.height, 3, o, width, height, m)
                    default: general(src, image.width, image.height, 4, o, width, height, m)
                    }
                }
            }
            initialized = n
        }
        return Image(width: width, height: height, channels: c, pixels: out)
    }

    /// Source index coordinate (pixel centres at integers) clamped into the frame, as the frame
    /// index of the left/top tap and the weight of the right/bottom one.
    @inline(__always)
    static func tap(_ coordinate: Double, limit: Int) -> (index: Int, weight: Float) {
        // Frame coordinate: source + margin, kept within [0, limit + 2·margin − 2] so both taps exist.
        var p = coordinate + Double(margin)
        let high = Double(limit + 2 * margin - 2)
        p = p > 0 ? (p < high ? p : high) : 0
        let i = Int(p)  // p ≥ 0: truncation is floor
        return (i, Float(p - Double(i)))
    }

    /// A map with no rotation or shear: taps per column and per row, computed once.
    static func axisAligned(_ src: UnsafePointer<UInt8>, _ w: Int, _ h: Int, _ c: Int,
                            _ dst: UnsafeMutablePointer<UInt8>, _ width: Int, _ height: Int, _ m: AffineMap) {
        let frameRow = (w + 2 * margin) * c
        let rowLength = width * c
        var offsets = [Int](repeating: 0, count: rowLength)
        var right = [Float](repeating: 0, count: rowLength)
        for x in 0..<width {
            let t = tap(m.a * (Double(x) + 0.5) + m.c - 0.5, limit: w)
            for k in 0..<c { offsets[x * c + k] = t.index * c + k; right[x * c + k] = t.weight }
        }
        offsets.withUnsafeBufferPointer { off in
            right.withUnsafeBufferPointer { wx in
                for y in 0..<height {
                    let t = tap(m.e * (Double(y) + 0.5) + m.f - 0.5, limit: h)
                    let r0 = src + t.index * frameRow, r1 = r0 + frameRow
                    let wy = t.weight, wy0 = 1 - wy
                    let d = dst + y * rowLength
                    for i in 0..<rowLength {
                        let j = off[i], a = wx[i], a0 = 1 - a
                        let top = Float(r0[j]) * a0 + Float(r0[j &+ c]) * a
                        let bottom = Float(r1[j]) * a0 + Float(r1[j &+ c]) * a
                        d[i] = byte(top * wy0 + bottom * wy)
                    }
                }
            }
        }
    }

    /// Any affine map: the sample point per pixel, four taps.
    @inline(__always)
    static func general(_ src: UnsafePointer<UInt8>, _ w: Int, _ h: Int, _ c: Int,
                        _ dst: UnsafeMutablePointer<UInt8>, _ width: Int, _ height: Int, _ m: AffineMap) {
        let frameRow = (w + 2 * margin) &* c
        for y in 0..<height {
            let py = Double(y) + 0.5
            let rowX = m.b * py + m.c - 0.5, rowY = m.e * py + m.f - 0.5
            var o = y &* width &* c
            for x in 0..<width {
                let px = Double(x) + 0.5
                var sx = m.a * px + rowX, sy = m.d * px + rowY
                if !(sx == sx) || !(sy == sy) { sx = -Double(margin); sy = -Double(margin) }  // NaN: outside
                let tx = tap(sx, limit: w), ty = tap(sy, limit: h)
                let wx = tx.weight, wy = ty.weight
                let w00 = (1 - wx) * (1 - wy), w01 = wx * (1 - wy), w10 = (1 - wx) * wy, w11 = wx * wy
                let p = src + (ty.index &* frameRow &+ tx.index &* c)
                for k in 0..<c {
                    let v0 = Float(p[k]) * w00 + Float(p[k &+ c]) * w01
                    let v1 = Float(p[k &+ frameRow]) * w10 + Float(p[k &+ frameRow &+ c]) * w11
                    dst[o &+ k] = byte(v0 + v1)
                }
                o &+= c
            }
        }
    }
}
