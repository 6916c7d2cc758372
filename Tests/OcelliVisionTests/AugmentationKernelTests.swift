import Foundation
import OcelliTensor
import Testing
@testable import OcelliVision

/// The fast kernels against naive references, on odd shapes.
@Suite("Augmentation: kernels against naive references")
struct AugmentationKernelTests {
    static func randomImage(width: Int, height: Int, channels: Int, seed: UInt64) -> Image {
        var rng = SeededGenerator(seed: seed)
        return Image(width: width, height: height, channels: channels,
                     pixels: (0..<(width * height * channels)).map { _ in UInt8(truncatingIfNeeded: rng.next() >> 56) })
    }

    /// Bilinear sampling at source index coordinates, one tap at a time, in Double; taps outside
    /// read `fill` (alpha 255) or the nearest edge pixel.
    static func naiveWarp(_ image: Image, toSource m: AffineMap, width: Int, height: Int, fill: UInt8?) -> [Double] {
        let c = image.channels
        func tap(_ x: Int, _ y: Int, _ k: Int) -> Double {
            if x >= 0 && x < image.width && y >= 0 && y < image.height { return Double(image[x: x, y: y, channel: k]) }
            guard let fill else {
                return Double(image[x: min(max(x, 0), image.width - 1), y: min(max(y, 0), image.height - 1), channel: k])
            }
            return k == 3 ? 255 : Double(fill)
        }
        var out: [Double] = []
        for y in 0..<height {
            for x in 0..<width {
                let p = m.apply(x: Double(x) + 0.5, y: Double(y) + 0.5)
                let sx = p.x - 0.5, sy = p.y - 0.5
                let x0 = Int(sx.rounded(.down)), y0 = Int(sy.rounded(.down))
                let wx = sx - Double(x0), wy = sy - Double(y0)
                for k in 0..<c {
                    let top = tap(x0, y0, k) * (1 - wx) + tap(x0 + 1, y0, k) * wx
                    let bottom = tap(x0, y0 + 1, k) * (1 - wx) + tap(x0 + 1, y0 + 1, k) * wx
                    out.append(top * (1 - wy) + bottom * wy)
                }
            }
        }
        return out
    }

    @Test(arguments: [(1, 1, 3), (3, 7, 1), (17, 5, 4), (65, 33, 3)])
    func warpMatchesNaiveBilinear(width: Int, height: Int, channels: Int) {
        let image = Self.randomImage(width: width, height: height, channels: channels, seed: UInt64(width * 100 + height))
        let outWidth = width + 6, outHeight = height + 3
        let maps: [(String, AffineMap)] = [
            ("rotate + scale + shear", Augment.Affine.matrix(width: width, height: height, scale: 0.83, translateX: 0.1, translateY: -0.05,
                                                             rotation: 27, shearX: 9, shearY: -4).inverse),
            ("axis-aligned, mirrored", AffineMap(a: -0.71, b: 0, c: Double(width) + 0.3, d: 0, e: 1.37, f: -1.2)),
            ("far outside", AffineMap.translation(x: 1e6, y: -1e6)),
        ]
        for (name, m) in maps {
            for fill in [UInt8(77), nil] {
                let fast = Warp.affine(image, toSource: m, width: outWidth, height: outHeight, border: fill.map { .constant($0) } ?? .replicate)
                let naive = Self.naiveWarp(image, toSource: m, width: outWidth, height: outHeight, fill: fill)
                let worst = zip(fast.pixels, naive).map { abs(Double($0) - $1) }.max()!
                // Float weights against Double ones, and ties rounded to even: within 0.5 plus a hair.
                #expect(worst <= 0.51, "\(name), fill \(String(describing: fill)), \(width)x\(height)x\(channels): off by \(worst)")
            }
        }
    }

    /// Darknet's `distort_image` as written in image.c (its sector switch), in Float, then bytes.
    static func darknetDistort(_ r8: UInt8, _ g8: UInt8, _ b8: UInt8, hue: Float, sat: Float, val: Float) -> [UInt8] {
        let r = Float(r8) / 255, g = Float(g8) / 255, b = Float(b8) / 255
        let mx = max(r, g, b), mn = min(r, g, b), delta = mx - mn
        var h: Float = 0, s: Float = 0
        let v = mx
        if mx != 0 && delta != 0 {
            s = delta / mx
            if r == mx { h = (g - b) / delta } else if g == mx { h = 2 + (b - r) / delta } else { h = 4 + (r - g) / delta }
            if h < 0 { h += 6 }
            h /= 6
        }
        s *= sat
        let vv = v * val
        h += hue
        if h > 1 { h -= 1 }
        if h < 0 { h += 1 }
        var rgb = (vv, vv, vv)
        if s != 0 {
            let h6 = 6 * h
            let index = Int(h6.rounded(.down))
            let f = h6 - Float(index)
            let p = vv * (1 - s), q = vv * (1 - s * f), t = vv * (1 - s * (1 - f))
            switch index {
            case 0: rgb = (vv, t, p)
            case 1: rgb = (q, vv, p)
            case 2: rgb = (p, vv, t)
            case 3: rgb = (p, q, vv)
            case 4: rgb = (t, p, vv)
            default: rgb = (vv, p, q)
            }
        }
        return [rgb.0, rgb.1, rgb.2].map { UInt8((min(max($0, 0), 1) * 255 + 0.5).rounded(.down)) }
    }

    @Test func hsvMatchesDarknetsFormulas() {
        let image = Self.randomImage(width: 61, height: 37, channels: 3, seed: 5)
        var rng = SeededGenerator(seed: 6)
        for _ in 0..<12 {
            let hue = Float(rng.uniform(-0.5...0.5)), sat = Float(rng.uniform(0...2)), val = Float(rng.uniform(0.3...2))
            let fast = Augment.DarknetHSV.distort(image, hue: hue, saturation: sat, exposure: val)
            var worst = 0
            for i in stride(from: 0, to: image.pixels.count, by: 3) {
                let reference = Self.darknetDistort(image.pixels[i], image.pixels[i + 1], image.pixels[i + 2], hue: hue, sat: sat, val: val)
                for k in 0..<3 { worst = max(worst, abs(Int(fast.pixels[i + k]) - Int(reference[k]))) }
            }
            // The same formulas in another order of Float operations: at most one byte apart.
            #expect(worst <= 1, "hue \(hue), saturation \(sat), exposure \(val): off by \(worst)")
        }
        // Alpha is carried through untouched.
        let rgba = Self.randomImage(width: 9, height: 4, channels: 4, seed: 8)
        let out = Augment.DarknetHSV.distort(rgba, hue: 0.2, saturation: 1.3, exposure: 0.8)
        #expect(stride(from: 3, to: rgba.pixels.count, by: 4).allSatisfy { out.pixels[$0] == rgba.pixels[$0] })
    }
}
