import OcelliTensor

/// Darknet's letterbox: the image scaled to fit `width` x `height` with its aspect ratio kept
/// (`resize_image`, see `Interpolation.darknet`), centred on a canvas of 0.5 grey.
///
/// The geometry follows Darknet's `letterbox_image` to the pixel:
///
///     if (float)width / sourceWidth < (float)height / sourceHeight:
///         resizedWidth = width;  resizedHeight = sourceHeight * width / sourceWidth   (integer division)
///     else:
///         resizedHeight = height; resizedWidth = sourceWidth * height / sourceHeight
///     offsetX = (width - resizedWidth) / 2;  offsetY = (height - resizedHeight) / 2  (integer division)
///
/// e.g. a 768x576 image into 416x416: resized to 416x312, placed at (0, 52).
public struct Letterbox: Equatable, Sendable {
    public let sourceWidth: Int
    public let sourceHeight: Int
    /// The canvas (network input) size.
    public let width: Int
    public let height: Int
    /// The size of the scaled image inside the canvas.
    public let resizedWidth: Int
    public let resizedHeight: Int
    /// Where the scaled image's top-left pixel sits on the canvas.
    public let offsetX: Int
    public let offsetY: Int

    /// The geometry for fitting a `sourceWidth` x `sourceHeight` image into `width` x `height`.
    public init(sourceWidth: Int, sourceHeight: Int, width: Int, height: Int) {
        precondition(sourceWidth >= 1 && sourceHeight >= 1 && width >= 1 && height >= 1,
                     "Letterbox: sizes must be positive (source \(sourceWidth)x\(sourceHeight), target \(width)x\(height))")
        self.sourceWidth = sourceWidth
        self.sourceHeight = sourceHeight
        self.width = width
        self.height = height
        if Float(width) / Float(sourceWidth) < Float(height) / Float(sourceHeight) {
            resizedWidth = width
            resizedHeight = Swift.max(1, sourceHeight * width / sourceWidth)
        } else {
            resizedHeight = height
            resizedWidth = Swift.max(1, sourceWidth * height / sourceHeight)
        }
        offsetX = (width - resizedWidth) / 2
        offsetY = (height - resizedHeight) / 2
    }

    /// Canvas pixels per source pixel, horizontally and vertically.
    public var scaleX: Float { Float(resizedWidth) / Float(sourceWidth) }
    public var scaleY: Float { Float(resizedHeight) / Float(sourceHeight) }

    /// Letterboxes a Float image [H, W, C] or batch [N, H, W, C] (values in [0, 1]) whose H and W
    /// are `sourceHeight` and `sourceWidth`; the result is [height, width, C] (or [N, ...]) with
    /// the border set to `fill` (Darknet: 0.5).
    public func apply(to image: Tensor, fill: Float = 0.5) -> Tensor {
        let rank = image.rank
        precondition(rank == 3 || rank == 4, "Letterbox.apply: expected [H, W, C] or [N, H, W, C], got \(image.shape)")
        precondition(image.shape[rank - 3] == sourceHeight && image.shape[rank - 2] == sourceWidth,
                     "Letterbox.apply: image is \(image.shape[rank - 2])x\(image.shape[rank - 3]), this letterbox was made for \(sourceWidth)x\(sourceHeight)")
        let batch = rank == 4 ? image.shape[0] : 1
        let c = image.shape[rank - 1]
        var shape = image.shape
        shape[rank - 3] = height
        shape[rank - 2] = width
        let scalars = image.scalars.withUnsafeBufferPointer { src in
            canvas(batch: batch, channels: c, fill: fill) { b, origin in
                Resampling.darknet(src.baseAddress! + b * sourceWidth * sourceHeight * c, sourceWidth, sourceHeight, c,
                                   origin, resizedWidth, resizedHeight, dstRowStride: width * c)
            }
        }
        return Tensor(shape: shape, scalars: scalars)
    }

    /// Letterboxes an 8-bit image straight to Floats: [height, width, channels], the same values
    /// as `apply(to: image.tensor())` without the intermediate full-size Float image.
    public func apply(to image: Image, fill: Float = 0.5) -> Tensor {
        precondition(image.width == sourceWidth && image.height == sourceHeight,
                     "Letterbox.apply: image is \(image.width)x\(image.height), this letterbox was made for \(sourceWidth)x\(sourceHeight)")
        let c = image.channels
        let scalars = image.pixels.withUnsafeBufferPointer { src in
            canvas(batch: 1, channels: c, fill: fill) { _, origin in
                Resampling.darknet(src.baseAddress!, sourceWidth, sourceHeight, c,
                                   origin, resizedWidth, resizedHeight, dstRowStride: width * c)
            }
        }
        return Tensor(shape: [height, width, c], scalars: scalars)
    }

    /// A grey canvas per image, with `place` writing the resized image at its offset.
    private func canvas(batch: Int, channels c: Int, fill: Float,
                        place: (Int, UnsafeMutablePointer<Float>) -> Void) -> [Float] {
        let plane = width * height * c
        let n = batch * plane
        return [Float](unsafeUninitializedCapacity: n) { dst, initialized in
            let base = dst.baseAddress!
            for b in 0..<batch {
                let image = base + b * plane
                let top = offsetY * width * c, bottom = (offsetY + resizedHeight) * width * c
                image.initialize(repeating: fill, count: top)
                (image + bottom).initialize(repeating: fill, count: plane - bottom)
                for r in 0..<resizedHeight {
                    let row = image + (offsetY + r) * width * c
                    row.initialize(repeating: fill, count: offsetX * c)
                    let right = (offsetX + resizedWidth) * c
                    (row + right).initialize(repeating: fill, count: width * c - right)
                }
                place(b, image + top + offsetX * c)
            }
            initialized = n
        }
    }

    /// Maps a point from canvas pixels back to source-image pixels, using where the scaled
    /// image really lies (its integer offset and exact scale).
    public func sourcePoint(x: Float, y: Float) -> (x: Float, y: Float) {
        ((x - Float(offsetX)) / scaleX, (y - Float(offsetY)) / scaleY)
    }

    /// Maps a box (left, top, right, bottom) from canvas pixels to source-image pixels.
    public func sourceBox(left: Float, top: Float, right: Float, bottom: Float)
        -> (left: Float, top: Float, right: Float, bottom: Float) {
        let a = sourcePoint(x: left, y: top), b = sourcePoint(x: right, y: bottom)
        return (a.x, a.y, b.x, b.y)
    }

    /// Darknet's `correct_yolo_boxes` (and `correct_region_boxes`): maps a box given as centre
    /// and size relative to the canvas (all in 0...1) to centre and size relative to the source
    /// image. Darknet subtracts the exact half border (width − resizedWidth) / 2.0, not the
    /// integer offset the image was placed at, and computes in Double; both kept here so boxes
    /// match Darknet's.
    public func darknetSourceBox(x: Float, y: Float, width w: Float, height h: Float)
        -> (x: Float, y: Float, width: Float, height: Float) {
        let netW = Double(width), netH = Double(height)
        let ratioW = Double(Float(resizedWidth) / Float(width))
        let ratioH = Double(Float(resizedHeight) / Float(height))
        let bx = Float((Double(x) - Double(width - resizedWidth) / 2 / netW) / ratioW)
        let by = Float((Double(y) - Double(height - resizedHeight) / 2 / netH) / ratioH)
        let bw = w * (Float(width) / Float(resizedWidth))
        let bh = h * (Float(height) / Float(resizedHeight))
        return (bx, by, bw, bh)
    }
}

extension Image {
    /// The image as a Darknet letterbox input: Float [height, width, channels] in [0, 1], and
    /// the geometry to map boxes back. See `Letterbox`.
    public func letterboxed(width: Int, height: Int) -> (tensor: Tensor, letterbox: Letterbox) {
        let letterbox = Letterbox(sourceWidth: self.width, sourceHeight: self.height, width: width, height: height)
        return (letterbox.apply(to: self), letterbox)
    }
}
