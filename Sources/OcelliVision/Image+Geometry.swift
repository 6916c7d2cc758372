extension Image {
    /// How the stored pixels must be turned to show the picture upright: the values 1...8 of
    /// the EXIF/TIFF orientation tag.
    public enum Orientation: Int, Sendable, CaseIterable {
        /// Stored upright.
        case up = 1
        /// Mirrored left-right.
        case upMirrored = 2
        /// Upside down (rotate 180°).
        case down = 3
        /// Mirrored top-bottom.
        case downMirrored = 4
        /// Transposed (mirror across the main diagonal).
        case leftMirrored = 5
        /// Rotate 90° clockwise to view.
        case right = 6
        /// Transversed (mirror across the anti-diagonal).
        case rightMirrored = 7
        /// Rotate 90° counter-clockwise to view.
        case left = 8
    }

    /// The upright picture for pixels stored with `orientation` (what viewers show for an
    /// EXIF-tagged JPEG). Orientations 5...8 swap width and height.
    public func oriented(_ orientation: Orientation) -> Image {
        if orientation == .up { return self }
        let w = width, h = height, c = channels
        let swaps = orientation.rawValue >= 5
        let outW = swaps ? h : w, outH = swaps ? w : h
        // Source pixel for output (x, y) is (x0 + x*dxx + y*dxy, y0 + x*dyx + y*dyy).
        let (x0, dxx, dxy, y0, dyx, dyy): (Int, Int, Int, Int, Int, Int)
        switch orientation {
        case .up: (x0, dxx, dxy, y0, dyx, dyy) = (0, 1, 0, 0, 0, 1)
        case .upMirrored: (x0, dxx, dxy, y0, dyx, dyy) = (w - 1, -1, 0, 0, 0, 1)
        case .down: (x0, dxx, dxy, y0, dyx, dyy) = (w - 1, -1, 0, h - 1, 0, -1)
        case .downMirrored: (x0, dxx, dxy, y0, dyx, dyy) = (0, 1, 0, h - 1, 0, -1)
        case .leftMirrored: (x0, dxx, dxy, y0, dyx, dyy) = (0, 0, 1, 0, 1, 0)
        case .right: (x0, dxx, dxy, y0, dyx, dyy) = (0, 0, 1, h - 1, -1, 0)
        case .rightMirrored: (x0, dxx, dxy, y0, dyx, dyy) = (w - 1, 0, -1, h - 1, -1, 0)
        case .left: (x0, dxx, dxy, y0, dyx, dyy) = (w - 1, 0, -1, 0, 1, 0)
        }
        let n = pixels.count
        let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
            pixels.withUnsafeBufferPointer { src in
                for y in 0..<outH {
                    var sx = x0 &+ y &* dxy, sy = y0 &+ y &* dyy
                    var o = y &* outW &* c
                    for _ in 0..<outW {
                        let s = (sy &* w &+ sx) &* c
                        for k in 0..<c { dst[o &+ k] = src[s &+ k] }
                        o &+= c
                        sx &+= dxx
                        sy &+= dyx
                    }
                }
            }
            initialized = n
        }
        return Image(width: outW, height: outH, channels: c, pixels: out)
    }

    /// The image mirrored left-right.
    public func flippedHorizontally() -> Image { oriented(.upMirrored) }
    /// The image mirrored top-bottom.
    public func flippedVertically() -> Image { oriented(.downMirrored) }
    /// The image turned 90° clockwise `quarterTurns` times (negative turns go counter-clockwise).
    public func rotated(quarterTurns: Int) -> Image {
        switch ((quarterTurns % 4) + 4) % 4 {
        case 1: return oriented(.right)
        case 2: return oriented(.down)
        case 3: return oriented(.left)
        default: return self
        }
    }

    /// The `width` x `height` rectangle whose top-left pixel is (`x`, `y`); it must lie inside
    /// the image.
    public func cropped(x: Int, y: Int, width cropWidth: Int, height cropHeight: Int) -> Image {
        precondition(x >= 0 && y >= 0 && cropWidth >= 0 && cropHeight >= 0
                        && x + cropWidth <= width && y + cropHeight <= height,
                     "cropped: rectangle (x \(x), y \(y), \(cropWidth)x\(cropHeight)) is not inside the \(width)x\(height) image")
        let c = channels
        let rowBytes = cropWidth * c
        let n = rowBytes * cropHeight
        let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
            pixels.withUnsafeBufferPointer { src in
                for r in 0..<cropHeight {
                    let from = ((y + r) * width + x) * c
                    dst.baseAddress!.advanced(by: r * rowBytes)
                        .update(from: src.baseAddress!.advanced(by: from), count: rowBytes)
                }
            }
            initialized = n
        }
        return Image(width: cropWidth, height: cropHeight, channels: c, pixels: out)
    }

    /// The image with borders added: `top` rows above, `bottom` below, `left` and `right`
    /// columns beside, all set to `value` (one byte per channel, or one byte for every channel).
    public func padded(top: Int, bottom: Int, left: Int, right: Int, value: [UInt8] = [0]) -> Image {
        precondition(top >= 0 && bottom >= 0 && left >= 0 && right >= 0, "padded: negative padding")
        precondition(value.count == 1 || value.count == channels,
                     "padded: value needs 1 or \(channels) bytes, got \(value.count)")
        let fill = value.count == 1 ? [UInt8](repeating: value[0], count: channels) : value
        var out = Image(width: width + left + right, height: height + top + bottom, filledWith: fill)
        let c = channels
        let rowBytes = width * c
        let outWidth = out.width
        out.pixels.withUnsafeMutableBufferPointer { dst in
            pixels.withUnsafeBufferPointer { src in
                for r in 0..<height {
                    dst.baseAddress!.advanced(by: ((top + r) * outWidth + left) * c)
                        .update(from: src.baseAddress!.advanced(by: r * rowBytes), count: rowBytes)
                }
            }
        }
        return out
    }
}
