import Foundation
import OcelliTensor

// Augmenters that move pixels, and the boxes with them (see `BoxMapping` for how boxes are
// clipped and when they are dropped).

extension Augment {
    /// Mirrors the image left-right with probability `probability` (imgaug's `Fliplr`); a box
    /// [xmin, xmax] becomes [width − xmax, width − xmin].
    public struct HorizontalFlip: Augmenter {
        public var probability: Double

        public init(probability: Double = 0.5) {
            precondition((0...1).contains(probability), "HorizontalFlip: probability must be in 0...1, got \(probability)")
            self.probability = probability
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            guard rng.chance(probability) else { return (image, boxes) }
            let w = Double(image.width)
            return (image.flippedHorizontally(),
                    BoxMapping.map(boxes, width: image.width, height: image.height, minVisibility: 0) { x, y in (w - x, y) })
        }
    }

    /// Mirrors the image top-bottom with probability `probability` (imgaug's `Flipud`); a box
    /// [ymin, ymax] becomes [height − ymax, height − ymin].
    public struct VerticalFlip: Augmenter {
        public var probability: Double

        public init(probability: Double = 0.5) {
            precondition((0...1).contains(probability), "VerticalFlip: probability must be in 0...1, got \(probability)")
            self.probability = probability
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            guard rng.chance(probability) else { return (image, boxes) }
            let h = Double(image.height)
            return (image.flippedVertically(),
                    BoxMapping.map(boxes, width: image.width, height: image.height, minVisibility: 0) { x, y in (x, h - y) })
        }
    }

    /// A random affine transform about the image centre (imgaug's `Affine`): scale, then shear,
    /// then rotate, then translate; the output has the input's size.
    ///
    /// Each parameter is drawn uniformly from its range: `scale` (1 = unchanged, the same factor
    /// on both axes), `translateX`/`translateY` (fractions of the width/height; positive moves
    /// right/down), `rotation` (degrees; positive turns clockwise on screen), `shearX`/`shearY`
    /// (degrees: x' = x + tan(shearX)·y, y' = y + tan(shearY)·x). Pixels are resampled bilinearly
    /// through the inverse map; pixels from outside the source are `fill` (alpha 255). Boxes:
    /// the four corners are mapped, the enclosing box is clipped to the image, and a box is
    /// dropped when less than `minVisibility` of its area stays inside (see `BoxMapping`).
    public struct Affine: Augmenter {
        public var scale: ClosedRange<Double>
        public var translateX: ClosedRange<Double>
        public var translateY: ClosedRange<Double>
        public var rotation: ClosedRange<Double>
        public var shearX: ClosedRange<Double>
        public var shearY: ClosedRange<Double>
        public var fill: UInt8
        public var minVisibility: Double

        public init(scale: ClosedRange<Double> = 1...1, translateX: ClosedRange<Double> = 0...0,
                    translateY: ClosedRange<Double> = 0...0, rotation: ClosedRange<Double> = 0...0,
                    shearX: ClosedRange<Double> = 0...0, shearY: ClosedRange<Double> = 0...0,
                    fill: UInt8 = 128, minVisibility: Double = 0.5) {
            precondition(scale.lowerBound > 0, "Affine: scale must be positive, got \(scale)")
            precondition(shearX.lowerBound > -90 && shearX.upperBound < 90 && shearY.lowerBound > -90 && shearY.upperBound < 90,
                         "Affine: shear angles must lie strictly between -90 and 90 degrees, got x \(shearX), y \(shearY)")
            let largestX = Swift.max(abs(shearX.lowerBound), abs(shearX.upperBound)) * Double.pi / 180
            let largestY = Swift.max(abs(shearY.lowerBound), abs(shearY.upperBound)) * Double.pi / 180
            precondition(tan(largestX) * tan(largestY) < 0.99,
                         "Affine: shears of x \(shearX) and y \(shearY) degrees together can flatten the image (tan·tan must stay below 1)")
            precondition((0...1).contains(minVisibility), "Affine: minVisibility must be in 0...1, got \(minVisibility)")
            self.scale = scale
            self.translateX = translateX
            self.translateY = translateY
            self.rotation = rotation
            self.shearX = shearX
            self.shearY = shearY
            self.fill = fill
            self.minVisibility = minVisibility
        }

        /// The map from input to output coordinates for an image of `width` x `height` and these
        /// parameters (angles in degrees, translations in fractions of the size).
        public static func matrix(width: Int, height: Int, scale: Double, translateX: Double, translateY: Double,
                                  rotation: Double, shearX: Double, shearY: Double) -> AffineMap {
            let cx = Double(width) / 2, cy = Double(height) / 2
            let radians = Double.pi / 180
            return AffineMap.translation(x: -cx, y: -cy)
                .followed(by: .scaling(x: scale, y: scale))
                .followed(by: .shear(x: shearX * radians, y: shearY * radians))
                .followed(by: .rotation(radians: rotation * radians))
                .followed(by: .translation(x: cx + translateX * Double(width), y: cy + translateY * Double(height)))
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let s = rng.uniform(scale)
            let tx = rng.uniform(translateX), ty = rng.uniform(translateY)
            let r = rng.uniform(rotation)
            let shx = rng.uniform(shearX), shy = rng.uniform(shearY)
            let forward = Affine.matrix(width: image.width, height: image.height, scale: s, translateX: tx, translateY: ty,
                                        rotation: r, shearX: shx, shearY: shy)
            let out = Warp.affine(image, toSource: forward.inverse, width: image.width, height: image.height, border: .constant(fill))
            let moved = BoxMapping.map(boxes, width: image.width, height: image.height, minVisibility: minVisibility) { x, y in
                let p = forward.apply(x: x, y: y)
                return (p.x, p.y)
            }
            return (out, moved)
        }
    }

    /// Cuts a random rectangle out of the image (no resampling); boxes are shifted, clipped to
    /// it, and dropped when less than `minVisibility` of their area is inside (see `BoxMapping`).
    public struct RandomCrop: Augmenter {
        /// How big the crop is.
        public enum Size: Sendable, Equatable {
            /// A fixed size in pixels, each side at most the image's.
            case pixels(width: Int, height: Int)
            /// Each side a fraction of the image's, drawn independently from the range
            /// (at least one pixel).
            case fraction(ClosedRange<Double>)
        }

        public var size: Size
        public var minVisibility: Double

        public init(_ size: Size, minVisibility: Double = 0.5) {
            switch size {
            case .pixels(let w, let h): precondition(w >= 1 && h >= 1, "RandomCrop: size must be at least 1x1, got \(w)x\(h)")
            case .fraction(let f): precondition(f.lowerBound > 0 && f.upperBound <= 1, "RandomCrop: fraction must be in (0, 1], got \(f)")
            }
            precondition((0...1).contains(minVisibility), "RandomCrop: minVisibility must be in 0...1, got \(minVisibility)")
            self.size = size
            self.minVisibility = minVisibility
        }

        /// A crop of `width` x `height` pixels (at most the image's size).
        public init(width: Int, height: Int, minVisibility: Double = 0.5) {
            self.init(.pixels(width: width, height: height), minVisibility: minVisibility)
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            guard image.width > 0 && image.height > 0 else { return (image, []) }
            let cw: Int, ch: Int
            switch size {
            case .pixels(let w, let h):
                cw = Swift.min(w, image.width); ch = Swift.min(h, image.height)
            case .fraction(let f):
                cw = Swift.max(1, Int((rng.uniform(f) * Double(image.width)).rounded()))
                ch = Swift.max(1, Int((rng.uniform(f) * Double(image.height)).rounded()))
            }
            let x0 = rng.integer(in: 0...(image.width - cw)), y0 = rng.integer(in: 0...(image.height - ch))
            let dx = Double(x0), dy = Double(y0)
            return (image.cropped(x: x0, y: y0, width: cw, height: ch),
                    BoxMapping.map(boxes, width: cw, height: ch, minVisibility: minVisibility) { x, y in (x - dx, y - dy) })
        }
    }

    /// Scales the image to `width` x `height` (no randomness) and the boxes with it, by
    /// width / image width and height / image height. Exact for `.bilinear` and `.nearest`
    /// (half-pixel centres, as boxes); `.darknet` aligns corner pixels instead, which moves
    /// pixels by up to half a pixel against the boxes.
    public struct Resize: Augmenter {
        public var width: Int
        public var height: Int
        public var interpolation: Interpolation

        public init(width: Int, height: Int, interpolation: Interpolation = .bilinear) {
            precondition(width >= 1 && height >= 1, "Resize: size must be at least 1x1, got \(width)x\(height)")
            self.width = width
            self.height = height
            self.interpolation = interpolation
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            if image.width == width && image.height == height { return (image, boxes) }
            let sx = Double(width) / Double(image.width), sy = Double(height) / Double(image.height)
            return (image.resized(width: width, height: height, interpolation: interpolation),
                    BoxMapping.map(boxes, width: width, height: height, minVisibility: 0) { x, y in (x * sx, y * sy) })
        }
    }

    /// Darknet's letterbox (no randomness): the image scaled with its aspect ratio kept to fit
    /// `width` x `height` (the geometry of `OcelliVision.Letterbox`), centred on a canvas of
    /// `fill` (Darknet: 0.5 grey, 128); boxes scaled and shifted with it.
    public struct Letterbox: Augmenter {
        public var width: Int
        public var height: Int
        public var interpolation: Interpolation
        public var fill: UInt8

        public init(width: Int, height: Int, interpolation: Interpolation = .bilinear, fill: UInt8 = 128) {
            precondition(width >= 1 && height >= 1, "Letterbox: size must be at least 1x1, got \(width)x\(height)")
            self.width = width
            self.height = height
            self.interpolation = interpolation
            self.fill = fill
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let geometry = OcelliVision.Letterbox(sourceWidth: image.width, sourceHeight: image.height, width: width, height: height)
            let scaled = image.resized(width: geometry.resizedWidth, height: geometry.resizedHeight, interpolation: interpolation)
            var value = [UInt8](repeating: fill, count: image.channels)
            if image.channels == 4 { value[3] = 255 }
            let out = scaled.padded(top: geometry.offsetY, bottom: height - geometry.resizedHeight - geometry.offsetY,
                                    left: geometry.offsetX, right: width - geometry.resizedWidth - geometry.offsetX, value: value)
            let sx = Double(geometry.resizedWidth) / Double(image.width), sy = Double(geometry.resizedHeight) / Double(image.height)
            let dx = Double(geometry.offsetX), dy = Double(geometry.offsetY)
            return (out, BoxMapping.map(boxes, width: width, height: height, minVisibility: 0) { x, y in (x * sx + dx, y * sy + dy) })
        }
    }
}
