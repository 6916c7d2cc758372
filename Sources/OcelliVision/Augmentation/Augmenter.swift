import Foundation
import OcelliTensor

// Box-aware, seeded image augmentation in the style of imgaug: every augmenter takes an image and
// its boxes and returns both, moved together; every random choice comes from the caller's
// `SeededGenerator`, so a seed fixes the result (same seed, same pixels, same boxes).
//
// Boxes follow the package's one pixel convention (see `ObjectAnnotation`): continuous, 0-based
// pixel coordinates, pixel (i, j) covering [i, i + 1) x [j, j + 1). Geometric augmenters move
// the pixel *centres* (i + 0.5, j + 0.5) with the same map as the box corners, so boxes and
// pixels agree to the sub-pixel.

/// The closure type a data loader takes for augmentation: an image and its boxes, and the
/// loader's generator, in; the augmented image and boxes out.
public typealias AugmentationTransform =
    @Sendable (Image, [ObjectAnnotation], inout SeededGenerator) throws -> (Image, [ObjectAnnotation])

/// A random, box-aware image transformation.
///
/// `apply` draws whatever it needs from `rng` (and nothing else), so the same generator state
/// gives the same output. Geometric augmenters move, clip and drop boxes with the pixels;
/// photometric ones return the boxes unchanged.
public protocol Augmenter: Sendable {
    /// The augmented image and its boxes.
    func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation])
}

extension Augmenter {
    /// This augmenter as the closure a data loader takes (`AugmentationTransform`).
    public var transform: AugmentationTransform {
        { image, boxes, rng in self.apply(image, boxes, using: &rng) }
    }

    /// The same as `apply(_:_:using:)`.
    public func callAsFunction(_ image: Image, _ boxes: [ObjectAnnotation] = [],
                               using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
        apply(image, boxes, using: &rng)
    }

    /// Augments an image without boxes.
    public func apply(_ image: Image, using rng: inout SeededGenerator) -> Image {
        apply(image, [], using: &rng).0
    }
}

/// The augmenters: geometric (`HorizontalFlip`, `VerticalFlip`, `Affine`, `RandomCrop`,
/// `Resize`, `Letterbox`, `DarknetJitter`), photometric (`DarknetHSV`, `BrightnessContrast`,
/// `GaussianNoise`, `GaussianBlur`, `Cutout`) and combinators (`Sequential`, `Sometimes`,
/// `SomeOf`, `OneOf`), named as in imgaug:
///
///     let augment = Augment.Sequential {
///         Augment.HorizontalFlip()
///         Augment.Sometimes(0.5) { Augment.Affine(scale: 0.8...1.2, rotation: -10...10) }
///         Augment.DarknetHSV(hue: 0.1, saturation: 1.5, exposure: 1.5)
///     }
///     var rng = SeededGenerator(seed: 42)
///     let (image, boxes) = augment(picture, objects, using: &rng)
public enum Augment {}

// MARK: Random draws

extension SeededGenerator {
    /// A uniform Double in [0, 1) with 53 random bits.
    @inline(__always)
    mutating func unitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A uniform Double in `range` (its lower bound when the range is a single value; one draw
    /// is taken either way, so the sequence does not depend on the ranges).
    @inline(__always)
    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + (range.upperBound - range.lowerBound) * unitDouble()
    }

    /// True with probability `p` (never for p ≤ 0, always for p ≥ 1).
    @inline(__always)
    mutating func chance(_ p: Double) -> Bool { unitDouble() < p }

    /// A uniform integer in `range` (multiply-shift: platform-independent).
    mutating func integer(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(range.upperBound - range.lowerBound) &+ 1
        if span == 0 { return Int(truncatingIfNeeded: next()) }  // the full 64-bit range
        let product = next().multipliedFullWidth(by: span)
        return range.lowerBound + Int(product.high)
    }

    /// Darknet's `rand_scale(s)`: a factor drawn uniformly between 1 and `s`, then inverted with
    /// probability 1/2 (so 1.5 gives factors in [1/1.5, 1.5], shrinking as often as growing).
    mutating func darknetScale(_ s: Double) -> Double {
        let factor = uniform(Swift.min(1, s)...Swift.max(1, s))
        return chance(0.5) ? factor : 1 / factor
    }
}

// MARK: Boxes through geometric maps

/// How boxes follow a geometric transform, shared by every geometric augmenter.
///
/// A box is mapped by sending its four corners through the transform and taking the
/// axis-aligned box that encloses them (the *transformed box*). Its **visibility** is the
/// fraction of the transformed box's area that lies inside the output image,
/// area(transformed ∩ [0, width] x [0, height]) / area(transformed). A box is kept, clipped to
/// the image, when its visibility is at least `minVisibility` and the clipped box has a positive
/// width and height; otherwise it is dropped. (With `minVisibility` 0 every box that still
/// overlaps the image is kept; with 1 only boxes wholly inside.) Clipped boxes get
/// `truncated = true`; `segmentationArea` is reset to nil.
enum BoxMapping {
    /// The transformed, clipped boxes; `map` takes a point of the input image to the output.
    static func map(_ boxes: [ObjectAnnotation], width: Int, height: Int, minVisibility: Double,
                    _ map: (Double, Double) -> (Double, Double)) -> [ObjectAnnotation] {
        var out: [ObjectAnnotation] = []
        out.reserveCapacity(boxes.count)
        for box in boxes {
            let corners = [map(box.xmin, box.ymin), map(box.xmax, box.ymin), map(box.xmin, box.ymax), map(box.xmax, box.ymax)]
            var moved = box
            moved.xmin = corners.map(\.0).min()!
            moved.xmax = corners.map(\.0).max()!
            moved.ymin = corners.map(\.1).min()!
            moved.ymax = corners.map(\.1).max()!
            moved.segmentationArea = nil  // a mask area does not survive the map; the box area stands in
            if let kept = clip(moved, width: width, height: height, minVisibility: minVisibility) { out.append(kept) }
        }
        return out
    }

    /// The fraction of `box`'s area inside [0, width] x [0, height] (0 for an empty box).
    static func visibility(_ box: ObjectAnnotation, width: Int, height: Int) -> Double {
        let area = box.width * box.height
        guard area > 0 else { return 0 }
        let w = Swift.min(box.xmax, Double(width)) - Swift.max(box.xmin, 0)
        let h = Swift.min(box.ymax, Double(height)) - Swift.max(box.ymin, 0)
        return w > 0 && h > 0 ? w * h / area : 0
    }

    /// `box` clipped to the image, or nil when its visibility is below `minVisibility` or nothing
    /// of it is inside.
    static func clip(_ box: ObjectAnnotation, width: Int, height: Int, minVisibility: Double) -> ObjectAnnotation? {
        let visible = visibility(box, width: width, height: height)
        guard visible > 0 && visible >= minVisibility else { return nil }
        var clipped = box
        clipped.xmin = Swift.max(box.xmin, 0)
        clipped.ymin = Swift.max(box.ymin, 0)
        clipped.xmax = Swift.min(box.xmax, Double(width))
        clipped.ymax = Swift.min(box.ymax, Double(height))
        // A clipped box is no longer the whole object.
        if visible < 1 { clipped.truncated = true }
        return clipped
    }
}
