/// An 8-bit RGB colour for drawing.
public struct Color: Equatable, Hashable, Sendable {
    public var red: UInt8
    public var green: UInt8
    public var blue: UInt8

    public init(red: UInt8, green: UInt8, blue: UInt8) {
        self.red = red
        self.green = green
        self.blue = blue
    }

    public static let black = Color(red: 0, green: 0, blue: 0)
    public static let white = Color(red: 255, green: 255, blue: 255)
    public static let red = Color(red: 255, green: 0, blue: 0)
    public static let green = Color(red: 0, green: 255, blue: 0)
    public static let blue = Color(red: 0, green: 0, blue: 255)

    /// A stable colour for class `index` of `classCount`, as Darknet picks it for its boxes:
    /// offset = index · 123457 mod classCount walks a ramp through magenta, blue, cyan, green,
    /// yellow and red, so neighbouring class indices get distant colours. Components are
    /// Darknet's floats × 255, truncated (as Darknet saves them).
    public init(classIndex index: Int, classCount: Int) {
        precondition(classCount >= 1 && index >= 0 && index < classCount,
                     "Color(classIndex:classCount:): index \(index) outside 0..<\(classCount)")
        let ramp: [[Float]] = [[1, 0, 1], [0, 0, 1], [0, 1, 1], [0, 1, 0], [1, 1, 0], [1, 0, 0]]
        let offset = index * 123_457 % classCount
        func component(_ c: Int) -> UInt8 {
            var ratio = Float(offset) / Float(classCount) * 5
            let i = Int(ratio.rounded(.down)), j = Int(ratio.rounded(.up))
            ratio -= Float(i)
            let value = (1 - ratio) * ramp[i][c] + ratio * ramp[j][c]
            return UInt8(Swift.max(0, Swift.min(255, value * 255)))
        }
        // Darknet asks its ramp for channel 2 as red and channel 0 as blue.
        self.init(red: component(2), green: component(1), blue: component(0))
    }

    /// Rec. 601 luma in OpenCV's fixed point (as `Image.grayscale()`).
    public var luma: UInt8 {
        let r: Int = Int(red) * 4899, g: Int = Int(green) * 9617, b: Int = Int(blue) * 1868
        return UInt8((r + g + b + 8192) >> 14)
    }
}

/// Drawing on 8-bit images. Coordinates are pixels, (0, 0) the top-left pixel; rectangles are
/// given by their first and last pixel (inclusive) and clipped to the image. On gray images a
/// colour is drawn as its luma; on RGBA images alpha is set to 255.
extension Image {
    /// The bytes one pixel of `color` takes in this image.
    private func bytes(of color: Color) -> (UInt8, UInt8, UInt8, UInt8) {
        channels == 1 ? (color.luma, 0, 0, 0) : (color.red, color.green, color.blue, 255)
    }

    /// Sets every pixel of the rectangle [left, right] x [top, bottom] (inclusive) to `color`.
    public mutating func fillRectangle(left: Int, top: Int, right: Int, bottom: Int, color: Color) {
        let x0 = Swift.max(left, 0), x1 = Swift.min(right, width - 1)
        let y0 = Swift.max(top, 0), y1 = Swift.min(bottom, height - 1)
        guard x0 <= x1 && y0 <= y1 else { return }
        let (b0, b1, b2, b3) = bytes(of: color)
        let c = channels, w = width
        pixels.withUnsafeMutableBufferPointer { p in
            for y in y0...y1 {
                var i = (y * w + x0) * c
                for _ in x0...x1 {
                    p[i] = b0
                    if c >= 3 { p[i + 1] = b1; p[i + 2] = b2 }
                    if c == 4 { p[i + 3] = b3 }
                    i += c
                }
            }
        }
    }

    /// The outline of the rectangle [left, right] x [top, bottom] (inclusive), `thickness`
    /// pixels wide, growing inwards (Darknet's `draw_box_width`): a pixel of the rectangle is
    /// set when it lies fewer than `thickness` pixels from its edge. Parts outside the image
    /// are clipped.
    public mutating func drawRectangle(left: Int, top: Int, right: Int, bottom: Int, color: Color, thickness: Int = 1) {
        precondition(thickness >= 1, "drawRectangle: thickness must be at least 1, got \(thickness)")
        guard left <= right && top <= bottom else { return }
        let t = thickness - 1
        fillRectangle(left: left, top: top, right: right, bottom: Swift.min(top + t, bottom), color: color)
        fillRectangle(left: left, top: Swift.max(bottom - t, top), right: right, bottom: bottom, color: color)
        fillRectangle(left: left, top: top, right: Swift.min(left + t, right), bottom: bottom, color: color)
        fillRectangle(left: Swift.max(right - t, left), top: top, right: right, bottom: bottom, color: color)
    }

    /// Draws `text` (one line, see `BitmapFont`) with the top-left of its first glyph at
    /// (`x`, `y`), each font pixel a `scale` x `scale` square. Only the glyphs' ink is drawn.
    public mutating func drawText(_ text: String, x: Int, y: Int, color: Color, scale: Int = 1) {
        precondition(scale >= 1, "drawText: scale must be at least 1, got \(scale)")
        var originX = x
        for character in text {
            let glyph = BitmapFont.glyph(character)
            if glyph != 0 {
                for row in 0..<BitmapFont.glyphHeight {
                    let bits = (glyph >> UInt64(8 * row)) & 0x1F
                    if bits == 0 { continue }
                    for column in 0..<BitmapFont.glyphWidth where (bits >> UInt64(4 - column)) & 1 == 1 {
                        let px = originX + column * scale, py = y + row * scale
                        fillRectangle(left: px, top: py, right: px + scale - 1, bottom: py + scale - 1, color: color)
                    }
                }
            }
            originX += BitmapFont.cellWidth * scale
        }
    }

    /// The rectangle a label tag for `text` occupies when drawn with `drawLabel` at (`left`,
    /// `top`): the text plus 2·`scale` pixels of padding on every side.
    public static func labelSize(_ text: String, scale: Int = 1) -> (width: Int, height: Int) {
        let size = BitmapFont.size(of: text, scale: scale)
        return (size.width + 4 * scale, size.height + 4 * scale)
    }

    /// A filled tag of `color` with `text` written on it, its top-left pixel at (`left`, `top`).
    /// The text is black on light tags and white on dark ones unless `textColor` is given.
    /// Returns the tag rectangle (inclusive, before clipping).
    @discardableResult
    public mutating func drawLabel(_ text: String, left: Int, top: Int, color: Color, textColor: Color? = nil,
                                   scale: Int = 1) -> (left: Int, top: Int, right: Int, bottom: Int) {
        let size = Image.labelSize(text, scale: scale)
        let right = left + size.width - 1, bottom = top + size.height - 1
        fillRectangle(left: left, top: top, right: right, bottom: bottom, color: color)
        let ink = textColor ?? (color.luma > 140 ? .black : .white)
        drawText(text, x: left + 2 * scale, y: top + 2 * scale, color: ink, scale: scale)
        return (left, top, right, bottom)
    }

    /// A detection as Darknet draws it: the box outline, and when `label` is given a tag of the
    /// same colour sitting on the box's top edge (above the box when there is room, inside it
    /// otherwise), shifted left if it would leave the image. Defaults scale with the image:
    /// thickness max(1, ⌊0.006 · height⌋) as Darknet, text scale max(1, round(0.003 · height)).
    public mutating func drawDetection(left: Int, top: Int, right: Int, bottom: Int, label: String? = nil,
                                       color: Color, thickness: Int? = nil, textScale: Int? = nil) {
        let t = thickness ?? Swift.max(1, Int(Double(height) * 0.006))
        drawRectangle(left: left, top: top, right: right, bottom: bottom, color: color, thickness: t)
        guard let label, !label.isEmpty else { return }
        let scale = textScale ?? Swift.max(1, Int((Double(height) * 0.003).rounded()))
        let size = Image.labelSize(label, scale: scale)
        let tagTop = top - size.height >= 0 ? top - size.height : Swift.max(top, 0)
        let tagLeft = Swift.max(0, Swift.min(left, width - size.width))
        drawLabel(label, left: tagLeft, top: tagTop, color: color, scale: scale)
    }
}
