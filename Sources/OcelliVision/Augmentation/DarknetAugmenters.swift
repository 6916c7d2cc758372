import Foundation
import OcelliTensor

// Darknet's training augmentation (`load_data_detection` in src/data.c and
// `random_distort_image` in src/image.c), on 8-bit images and continuous pixel boxes.

extension Augment {
    /// Darknet's jitter: a random crop or placement that also sets the network input size, then a
    /// random left-right flip. The output is always `width` x `height`.
    ///
    /// `.crop` (YOLOv2's `load_data_detection`): with dw = ⌊jitter · W⌋ and dh = ⌊jitter · H⌋, the
    /// four sides move by integers drawn from [−dw, dw] (left, right) and [−dh, dh] (top,
    /// bottom), outwards or inwards; the window (edge pixels repeated where it leaves the image)
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
                let dw = Int(jitter * ow), dh = Int(jitter * oh)
                let left = rng.integer(in: -dw...dw), right = rng.integer(in: -dw...dw)
                let top = rng.integer(in: -dh...dh), bottom = rng.integer(in: -dh...dh)
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
            let forward = AffineTransform(a: sx, b: 0, c: tx, d: 0, e: sy, f: ty)
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
                let p = buffer.baseAddress!
                if c == 1 {
                    for i in 0..<count {
                        let v = Float(p[i]) / 255 * exposure
                        p[i] = UInt8((v > 1 ? 1 : (v > 0 ? v : 0)) * 255 + 0.5)
                    }
                    return
                }
                for i in 0..<count {
                    let q = p + i &* c
                    let r = Float(q[0]) / 255, g = Float(q[1]) / 255, b = Float(q[2]) / 255
                    // rgb_to_hsv
                    let maximum = r > g ? (r > b ? r : b) : (g > b ? g : b)
                    let minimum = r < g ? (r < b ? r : b) : (g < b ? g : b)
                    let delta = maximum - minimum
                    var h: Float = 0, s: Float = 0
                    if maximum != 0 && delta != 0 {
                        s = delta / maximum
                        if r == maximum {
                            h = (g - b) / delta
                        } else if g == maximum {
                            h = 2 + (b - r) / delta
                        } else {
                            h = 4 + (r - g) / delta
                        }
                        if h < 0 { h += 6 }
                        h /= 6
                    }
                    // distort
                    s *= saturation
                    let v = maximum * exposure
                    h += hue
                    if h > 1 { h -= 1 }
                    if h < 0 { h += 1 }
                    // hsv_to_rgb
                    var red = v, green = v, blue = v
                    if s != 0 {
                        let h6 = 6 * h
                        let index = Int(h6)  // h6 >= 0: truncation is floor
                        let f = h6 - Float(index)
                        let pp = v * (1 - s), qq = v * (1 - s * f), tt = v * (1 - s * (1 - f))
                        switch index {
                        case 0: (red, green, blue) = (v, tt, pp)
                        case 1: (red, green, blue) = (qq, v, pp)
                        case 2: (red, green, blue) = (pp, v, tt)
                        case 3: (red, green, blue) = (pp, qq, v)
                        case 4: (red, green, blue) = (tt, pp, v)
                        default: (red, green, blue) = (v, pp, qq)
                        }
                    }
                    q[0] = UInt8((red > 1 ? 1 : (red > 0 ? red : 0)) * 255 + 0.5)
                    q[1] = UInt8((green > 1 ? 1 : (green > 0 ? green : 0)) * 255 + 0.5)
                    q[2] = UInt8((blue > 1 ? 1 : (blue > 0 ? blue : 0)) * 255 + 0.5)
                }
            }
            return out
        }
    }
}
