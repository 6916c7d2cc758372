import Foundation
import OcelliTensor

// Darknet's training augmentation (`load_data_detection` in src/data.c and
// `random_distort_image` in src/image.c), on 8-bit images and continuous pixel boxes.

extension Augment {
    /// Darknet's jitter: a random crop or placement that also sets the network input size, then a
    /// random left-right flip. The output is always `width` x `height`.
    ///
    /// `.crop` (YOLOv2's `load_data_detection`): with dw = ⌊jitter · W⌋ and dh = ⌊jitter · H⌋, the
    /// four sides move by U(−dw, dw) (left, right) and U(−dh, dh) (top, bottom) pixels, truncated
    /// toward zero as Darknet's int conversion does, outwards or inwards; the window (edge pixels repeated where it leaves the image)
    /// is resized to `width` x `height`. Aspect ratio and scale change together.
    ///
    /// `.place` (YOLOv3's): a new aspect ratio (W + U(−dw, dw)) / (H + U(−dh, dh)) with dw = jitter · W,
    /// the image resized to fill `scale` (drawn from `scale`; Darknet uses 1) of the long side of
    /// the `width` x `height` canvas at that ratio and placed at a random offset on 0.5 grey
    /// (`fill`). Sizes and offsets are truncated to whole pixels as Darknet's `place_image` does.
    ///
    /// Then, when `flip` is on, the result is mirrored with probability 1/2. Boxes follow
    /// exactly (`correct_boxes`), are clipped to the canvas, and are dropped when their clipped
    /// width or height is below 0.001 of the canvas (Darknet's rule) or less than
    /// `minVisibility` of their area stays inside (`BoxMapping`; default 0 as in Darknet).
    ///
    /// Differences from Darknet: resampling is bilinear with half-pixel centres (Darknet's
    /// `resize_image` aligns corners, its `place_image` blends the last row and column with
    /// black); the box offset uses the same whole-pixel placement as the pixels (Darknet's boxes
    /// use the fractional offset, up to a pixel apart).
    public struct DarknetJitter: Augmenter {
        public enum Mode: Sendable, Equatable {
            /// YOLOv2: crop with jittered sides, resize to the network size.
            case crop
            /// YOLOv3: jittered aspect ratio, placed at a random offset on a grey canvas.
            case place
        }

        public var width: Int
        public var height: Int
        public var jitter: Double
        public var mode: Mode
        public var scale: ClosedRange<Double>
        public var flip: Bool
        public var fill: UInt8
        public var minVisibility: Double

        /// - Parameters:
        ///   - width, height: the network input size (the output's size).
        ///   - jitter: the cfg's `jitter` (0.2 in YOLOv2 cfgs, 0.3 in yolov3-tiny.cfg).
        ///   - scale: `.place` only: the fraction of the canvas the image's long side fills.
        public init(width: Int, height: Int, jitter: Double = 0.3, mode: Mode = .place, scale: ClosedRange<Double> = 1...1,
                    flip: Bool = true, fill: UInt8 = 128, minVisibility: Double = 0) {
            precondition(width >= 1 && height >= 1, "DarknetJitter: size must be at least 1x1, got \(width)x\(height)")
            precondition(jitter >= 0 && jitter < 0.5, "DarknetJitter: jitter must be in [0, 0.5), got \(jitter)")
            precondition(scale.lowerBound > 0, "DarknetJitter: scale must be positive, got \(scale)")
            precondition((0...1).contains(minVisibility), "DarknetJitter: minVisibility must be in 0...1, got \(minVisibility)")
            self.width = width
            self.height = height
            self.jitter = jitter
            self.mode = mode
            self.scale = scale
            self.flip = flip
            self.fill = fill
            self.minVisibility = minVisibility
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let ow = Double(image.width), oh = Double(image.height)
            // The forward map (input -> output) is x' = x·sx + tx, y' = y·sy + ty.
            var sx: Double, sy: Double, tx: Double, ty: Double
            let border: Warp.Border
            switch mode {
            case .crop:
                // As Darknet: int dw = ow·jitter; int pleft = rand_uniform(−dw, dw) (truncated toward 0).
                let dw = Double(Int(jitter * ow)), dh = Double(Int(jitter * oh))
                let left = Int(rng.uniform(-dw...dw)), right = Int(rng.uniform(-dw...dw))
                let top = Int(rng.uniform(-dh...dh)), bottom = Int(rng.uniform(-dh...dh))
                let cropWidth = Double(image.width - left - right), cropHeight = Double(image.height - top - bottom)
                sx = Double(width) / cropWidth; sy = Double(height) / cropHeight
                tx = -Double(left) * sx; ty = -Double(top) * sy
                border = .replicate
            case .place:
                let dw = jitter * ow, dh = jitter * oh
                let aspect = (ow + rng.uniform(-dw...dw)) / (oh + rng.uniform(-dh...dh))
                let s = rng.uniform(scale)
                let newWidth: Double, newHeight: Double
                if aspect < 1 {
                    newHeight = s * Double(height); newWidth = newHeight * aspect
                } else {
                    newWidth = s * Double(width); newHeight = newWidth / aspect
                }
                let placedWidth = Swift.max(1, Int(newWidth)), placedHeight = Swift.max(1, Int(newHeight))
                let freeX = Double(width - placedWidth), freeY = Double(height - placedHeight)
                let dx = Int(rng.uniform(Swift.min(0, freeX)...Swift.max(0, freeX)))
                let dy = Int(rng.uniform(Swift.min(0, freeY)...Swift.max(0, freeY)))
                sx = Double(placedWidth) / ow; sy = Double(placedHeight) / oh
                tx = Double(dx); ty = Double(dy)
                border = .constant(fill)
            }
            if flip && rng.chance(0.5) {
                sx = -sx; tx = Double(width) - tx
            }
            let forward = AffineMap(a: sx, b: 0, c: tx, d: 0, e: sy, f: ty)
            let out = Warp.affine(image, toSource: forward.inverse, width: width, height: height, border: border)
            let minimumWidth = 0.001 * Double(width), minimumHeight = 0.001 * Double(height)
            let moved = BoxMapping.map(boxes, width: width, height: height, minVisibility: minVisibility) { x, y in
                (x * sx + tx, y * sy + ty)
            }.filter { $0.width >= minimumWidth && $0.height >= minimumHeight }
            return (out, moved)
        }
    }

    /// Darknet's HSV jitter (`random_distort_image`): hue shifted by U(−hue, hue) (in turns, wrapped
    /// once into [0, 1]), saturation and value (exposure) each multiplied by Darknet's
    /// `rand_scale`: a factor drawn uniformly from [1, s], inverted with probability 1/2. Boxes are
    /// unchanged.
    ///
    /// Per pixel, as `distort_image` does in Float: RGB in [0, 1] -> HSV (`rgb_to_hsv`), S · sat,
    /// V · exposure, H + hue, -> RGB (`hsv_to_rgb`), clamped to [0, 1], rounded to bytes. Gray
    /// images take only the exposure; alpha is kept. (Darknet's hue of gray pixels is NaN from a
    /// 0/0; it is 0 here, which changes nothing since gray has no saturation.)
    public struct DarknetHSV: Augmenter {
        public var hue: Double
        public var saturation: Double
        public var exposure: Double

        /// The cfg's `hue`, `saturation` and `exposure` (yolov3-tiny.cfg: 0.1, 1.5, 1.5).
        public init(hue: Double = 0.1, saturation: Double = 1.5, exposure: Double = 1.5) {
            precondition(hue >= 0 && hue <= 1, "DarknetHSV: hue must be in 0...1, got \(hue)")
            precondition(saturation > 0 && exposure > 0, "DarknetHSV: saturation and exposure must be positive, got \(saturation), \(exposure)")
            self.hue = hue
            self.saturation = saturation
            self.exposure = exposure
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let dhue = rng.uniform(-hue...hue)
            let dsat = rng.darknetScale(saturation)
            let dexp = rng.darknetScale(exposure)
            return (DarknetHSV.distort(image, hue: Float(dhue), saturation: Float(dsat), exposure: Float(dexp)), boxes)
        }

        /// Darknet's `distort_image` with fixed factors: hue shift (turns), saturation and
        /// exposure multipliers.
        public static func distort(_ image: Image, hue: Float, saturation: Float, exposure: Float) -> Image {
            var out = image
            let c = image.channels
            let count = image.width * image.height
            out.pixels.withUnsafeMutableBufferPointer { buffer in
                guard let p = buffer.baseAddress else { return }
                switch c {
                case 1:
                    for i in 0..<count { p[i] = byte(Float(p[i]) * (1 / 255) * exposure) }
                // A literal stride lets the compiler vectorise the interleaved loads and stores.
                case 3: distortColour(p, count: count, stride: 3, hue: hue, saturation: saturation, exposure: exposure)
                default: distortColour(p, count: count, stride: 4, hue: hue, saturation: saturation, exposure: exposure)
                }
            }
            return out
        }

        /// A value in [0, 1] (clamped) as the nearest byte (ties to even), without a checked
        /// conversion: 2²³ + x·255 holds round(x·255) in its low mantissa bits.
        @inline(__always)
        static func byte(_ x: Float) -> UInt8 {
            let clamped = x > 0 ? (x < 1 ? x : 1) : 0
            return UInt8(truncatingIfNeeded: (clamped * 255 + 8_388_608).bitPattern)
        }

        /// `distort_image` on interleaved RGB(A) bytes, `stride` bytes per pixel (alpha kept).
        ///
        /// Branch-free (selects only) so that the loop vectorises; Darknet's formulas, with the
        /// hue kept in sixths (0...6) and its sector switch in `hsv_to_rgb` written as
        /// channel = V − V·S·clamp(min(k, 4 − k), 0, 1), k = (n + 6H) mod 6 with n = 5, 3, 1 for R, G, B.
        @inline(__always)
        private static func distortColour(_ p: UnsafeMutablePointer<UInt8>, count: Int, stride: Int,
                                          hue: Float, saturation: Float, exposure: Float) {
            let hueShift = 6 * hue
            for i in 0..<count {
                let q = p + i &* stride
                let r = Float(q[0]) * (1 / 255), g = Float(q[1]) * (1 / 255), b = Float(q[2]) * (1 / 255)
                // rgb_to_hsv
                let maximum = r > g ? (r > b ? r : b) : (g > b ? g : b)
                let minimum = r < g ? (r < b ? r : b) : (g < b ? g : b)
                let delta = maximum - minimum
                let chromatic = delta > 0
                let safeDelta: Float = chromatic ? delta : 1, safeMaximum: Float = chromatic ? maximum : 1
                let numerator = r == maximum ? g - b : (g == maximum ? 2 * delta + (b - r) : 4 * delta + (r - g))
                var h6: Float = chromatic ? numerator / safeDelta : 0
                h6 = h6 < 0 ? h6 + 6 : h6
                let s: Float = (chromatic ? delta / safeMaximum : 0) * saturation
                let v = maximum * exposure
                // The hue shift, wrapped once as Darknet does.
                h6 += hueShift
                h6 = h6 > 6 ? h6 - 6 : h6
                h6 = h6 < 0 ? h6 + 6 : h6
                // hsv_to_rgb
                let vs = v * s
                var kr = 5 + h6, kg = 3 + h6, kb = 1 + h6
                kr = kr >= 6 ? kr - 6 : kr
                kg = kg >= 6 ? kg - 6 : kg
                kb = kb >= 6 ? kb - 6 : kb
                var fr = kr < 4 - kr ? kr : 4 - kr, fg = kg < 4 - kg ? kg : 4 - kg, fb = kb < 4 - kb ? kb : 4 - kb
                fr = fr > 0 ? (fr < 1 ? fr : 1) : 0
                fg = fg > 0 ? (fg < 1 ? fg : 1) : 0
                fb = fb > 0 ? (fb < 1 ? fb : 1) : 0
                q[0] = byte(v - vs * fr)
                q[1] = byte(v - vs * fg)
                q[2] = byte(v - vs * fb)
            }
        }
    }
}
