import Foundation

/// A 2-D affine map of continuous pixel coordinates (y points down):
/// x' = a·x + b·y + c, y' = d·x + e·y + f.
public struct AffineTransform: Equatable, Sendable {
    public var a: Double, b: Double, c: Double
    public var d: Double, e: Double, f: Double

    public init(a: Double, b: Double, c: Double, d: Double, e: Double, f: Double) {
        self.a = a; self.b = b; self.c = c
        self.d = d; self.e = e; self.f = f
    }

    public static let identity = AffineTransform(a: 1, b: 0, c: 0, d: 0, e: 1, f: 0)

    /// Moves points by (`x`, `y`).
    public static func translation(x: Double, y: Double) -> AffineTransform {
        AffineTransform(a: 1, b: 0, c: x, d: 0, e: 1, f: y)
    }

    /// Scales coordinates by `x` and `y` about the origin.
    public static func scaling(x: Double, y: Double) -> AffineTransform {
        AffineTransform(a: x, b: 0, c: 0, d: 0, e: y, f: 0)
    }

    /// Turns points by `radians` about the origin; with y pointing down, positive angles turn
    /// the picture clockwise on screen.
    public static func rotation(radians: Double) -> AffineTransform {
        let cs = cos(radians), sn = sin(radians)
        return AffineTransform(a: cs, b: -sn, c: 0, d: sn, e: cs, f: 0)
    }

    /// Shears: x' = x + tan(`x`)·y, y' = y + tan(`y`)·x (angles in radians).
    public static func shear(x: Double, y: Double) -> AffineTransform {
        AffineTransform(a: 1, b: tan(x), c: 0, d: tan(y), e: 1, f: 0)
    }

    /// `self` first, then `next`.
    public func followed(by next: AffineTransform) -> AffineTransform {
        AffineTransform(a: next.a * a + next.b * d, b: next.a * b + next.b * e, c: next.a * c + next.b * f + next.c,
                        d: next.d * a + next.e * d, e: next.d * b + next.e * e, f: next.d * c + next.e * f + next.f)
    }

    /// The inverse map; the transform must not be singular.
    public var inverse: AffineTransform {
        let det = a * e - b * d
        precondition(det != 0 && det.isFinite, "AffineTransform.inverse: the transform is singular (\(self))")
        let ia = e / det, ib = -b / det, id = -d / det, ie = a / det
        return AffineTransform(a: ia, b: ib, c: -(ia * c + ib * f), d: id, e: ie, f: -(id * c + ie * f))
    }

    /// The image of the point (`x`, `y`).
    public func apply(x: Double, y: Double) -> (x: Double, y: Double) {
        (a * x + b * y + c, d * x + e * y + f)
    }
}

/// Inverse-mapped bilinear resampling of 8-bit images.
enum Warp {
    /// What the sampler reads outside the source image.
    enum Border {
        /// A constant: `fill` in every colour channel, 255 in alpha.
        case constant(UInt8)
        /// The nearest edge pixel.
        case replicate
    }

    /// The `width` x `height` image whose pixel (X, Y) is `image` sampled bilinearly at the point
    /// `toSource` maps the pixel centre (X + 0.5, Y + 0.5) to (so the forward map of pixels is
    /// `toSource.inverse`, in the same continuous coordinates as boxes).
    static func affine(_ image: Image, toSource m: AffineTransform, width: Int, height: Int, border: Border) -> Image {
        let c = image.channels, w = image.width, h = image.height
        let n = width * height * c
        var fillBytes: (UInt8, UInt8, UInt8, UInt8) = (0, 0, 0, 0)
        var replicate = false
        switch border {
        case .constant(let v): fillBytes = (v, v, v, c == 4 ? 255 : v)
        case .replicate: replicate = true
        }
        let fill = [Float(fillBytes.0), Float(fillBytes.1), Float(fillBytes.2), Float(fillBytes.3)]
        let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
            defer { initialized = n }
            guard n > 0 else { return }
            guard w > 0 && h > 0 else {
                for i in 0..<(width * height) { for k in 0..<c { dst[i * c + k] = UInt8(fill[k]) } }
                return
            }
            fill.withUnsafeBufferPointer { fillValues in
            image.pixels.withUnsafeBufferPointer { srcBuffer in
                let src = srcBuffer.baseAddress!, out = dst.baseAddress!
                // Coordinates are limited to a band around the image so that Int conversion is safe.
                let lowX = -2.0, highX = Double(w) + 1, lowY = -2.0, highY = Double(h) + 1
                let rowStride = w &* c
                for y in 0..<height {
                    let py = Double(y) + 0.5
                    // Source index coordinates (pixel centres at integers) of output pixel (0, y).
                    let rowX = m.b * py + m.c - 0.5, rowY = m.e * py + m.f - 0.5
                    var o = y &* width &* c
                    for x in 0..<width {
                        let px = Double(x) + 0.5
                        var sx = m.a * px + rowX, sy = m.d * px + rowY
                        sx = sx < lowX ? lowX : (sx > highX ? highX : sx)
                        sy = sy < lowY ? lowY : (sy > highY ? highY : sy)
                        if !(sx == sx) || !(sy == sy) { sx = lowX; sy = lowY }  // NaN: outside
                        let fx = sx.rounded(.down), fy = sy.rounded(.down)
                        let ix = Int(fx), iy = Int(fy)
                        let wx = Float(sx - fx), wy = Float(sy - fy)
                        let w00 = (1 - wx) * (1 - wy), w01 = wx * (1 - wy), w10 = (1 - wx) * wy, w11 = wx * wy
                        if ix >= 0 && iy >= 0 && ix < w &- 1 && iy < h &- 1 {
                            let p = src + (iy &* w &+ ix) &* c
                            for k in 0..<c {
                                let v0 = Float(p[k]) * w00 + Float(p[k &+ c]) * w01
                                let v1 = Float(p[k &+ rowStride]) * w10 + Float(p[k &+ rowStride &+ c]) * w11
                                out[o &+ k] = UInt8(v0 + v1 + 0.5)
                            }
                        } else if replicate {
                            let x0 = ix < 0 ? 0 : (ix >= w ? w &- 1 : ix)
                            let x1 = ix &+ 1 < 0 ? 0 : (ix &+ 1 >= w ? w &- 1 : ix &+ 1)
                            let y0 = iy < 0 ? 0 : (iy >= h ? h &- 1 : iy)
                            let y1 = iy &+ 1 < 0 ? 0 : (iy &+ 1 >= h ? h &- 1 : iy &+ 1)
                            let p00 = src + (y0 &* w &+ x0) &* c, p01 = src + (y0 &* w &+ x1) &* c
                            let p10 = src + (y1 &* w &+ x0) &* c, p11 = src + (y1 &* w &+ x1) &* c
                            for k in 0..<c {
                                let v0 = Float(p00[k]) * w00 + Float(p01[k]) * w01
                                let v1 = Float(p10[k]) * w10 + Float(p11[k]) * w11
                                out[o &+ k] = UInt8(v0 + v1 + 0.5)
                            }
                        } else {
                            // Constant border: taps outside the image read the fill value.
                            let in0x = ix >= 0 && ix < w, in1x = ix &+ 1 >= 0 && ix &+ 1 < w
                            let in0y = iy >= 0 && iy < h, in1y = iy &+ 1 >= 0 && iy &+ 1 < h
                            for k in 0..<c {
                                let fk = fillValues[k]
                                let t00 = in0y && in0x ? Float(src[(iy &* w &+ ix) &* c &+ k]) : fk
                                let t01 = in0y && in1x ? Float(src[(iy &* w &+ ix &+ 1) &* c &+ k]) : fk
                                let t10 = in1y && in0x ? Float(src[((iy &+ 1) &* w &+ ix) &* c &+ k]) : fk
                                let t11 = in1y && in1x ? Float(src[((iy &+ 1) &* w &+ ix &+ 1) &* c &+ k]) : fk
                                let v = t00 * w00 + t01 * w01 + t10 * w10 + t11 * w11
                                out[o &+ k] = UInt8(v + 0.5)
                            }
                        }
                        o &+= c
                    }
                }
            }
            }
        }
        return Image(width: width, height: height, channels: c, pixels: out)
    }
}
