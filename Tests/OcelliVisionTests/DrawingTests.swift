import Testing
@testable import OcelliVision

@Suite("Drawing")
struct DrawingTests {
    /// Exactly the pixels less than `thickness` from the rectangle's edge are set, for boxes
    /// inside the image, crossing its edges, and thinner than twice the thickness.
    @Test(arguments: [1, 2, 3, 5])
    func rectangleSetsExactlyTheOutline(thickness: Int) {
        for (l, t, r, b) in [(3, 4, 20, 15), (-5, -2, 10, 30), (6, 6, 8, 9)] {
            var image = Image(width: 24, height: 20, filledWith: [0, 0, 0])
            image.drawRectangle(left: l, top: t, right: r, bottom: b, color: Color(red: 255, green: 10, blue: 20), thickness: thickness)
            for y in 0..<20 {
                for x in 0..<24 {
                    let inside = x >= l && x <= r && y >= t && y <= b
                    let edge = inside && min(x - l, r - x, y - t, b - y) < thickness
                    let pixel = (image[x: x, y: y, channel: 0], image[x: x, y: y, channel: 1], image[x: x, y: y, channel: 2])
                    #expect(pixel == (edge ? (255, 10, 20) : (0, 0, 0)), "box \((l, t, r, b)) thickness \(thickness) at (\(x), \(y))")
                }
            }
        }
    }

    @Test func grayAndRGBAImagesTakeLumaAndOpaqueAlpha() {
        var gray = Image(width: 4, height: 4, filledWith: [0])
        gray.fillRectangle(left: 0, top: 0, right: 1, bottom: 1, color: .white)
        #expect(gray[x: 1, y: 1, channel: 0] == 255 && gray[x: 2, y: 2, channel: 0] == 0)
        var rgba = Image(width: 4, height: 4, filledWith: [0, 0, 0, 0])
        rgba.fillRectangle(left: 2, top: 2, right: 9, bottom: 9, color: .red)
        #expect((rgba[x: 3, y: 3, channel: 0], rgba[x: 3, y: 3, channel: 3]) == (255, 255))
        #expect(rgba[x: 1, y: 1, channel: 3] == 0)
    }

    @Test func textInksInsideItsTag() {
        var image = Image(width: 120, height: 40, filledWith: [0, 0, 0])
        let tag = image.drawLabel("dog 0.97", left: 10, top: 5, color: Color(red: 255, green: 255, blue: 0), scale: 2)
        let size = Image.labelSize("dog 0.97", scale: 2)
        #expect(tag == (10, 5, 10 + size.width - 1, 5 + size.height - 1))
        var ink = 0, tagColour = 0
        for y in 0..<40 {
            for x in 0..<120 {
                let p = (image[x: x, y: y, channel: 0], image[x: x, y: y, channel: 1], image[x: x, y: y, channel: 2])
                let inTag = x >= tag.left && x <= tag.right && y >= tag.top && y <= tag.bottom
                if !inTag { #expect(p == (0, 0, 0), "outside the tag at (\(x), \(y))") }
                if inTag && p == (0, 0, 0) { ink += 1 }  // black text on a yellow tag
                if inTag && p == (255, 255, 0) { tagColour += 1 }
            }
        }
        #expect(ink > 100, "text pixels: \(ink)")
        #expect(ink + tagColour == size.width * size.height)
        // Scale 2 draws every font pixel as a 2x2 block: ink is a multiple of 4.
        #expect(ink % 4 == 0)
    }

    @Test func everyPrintableGlyphHasInkExceptSpace() {
        for code in 32...126 {
            let c = Character(UnicodeScalar(UInt8(code)))
            var inked = 0
            for row in 0..<8 { for column in 0..<5 where BitmapFont.isInked(c, column: column, row: row) { inked += 1 } }
            #expect(code == 32 ? inked == 0 : inked > 0, "glyph \(code)")
        }
        // Unknown characters draw as '?'.
        #expect(BitmapFont.glyph("é") == BitmapFont.glyph("?"))
    }

    @Test func detectionTagSitsAboveTheBoxWhenThereIsRoom() {
        var image = Image(width: 200, height: 100, filledWith: [0, 0, 0])
        let colour = Color(classIndex: 16, classCount: 80)
        image.drawDetection(left: 50, top: 40, right: 150, bottom: 90, label: "dog", color: colour, thickness: 2, textScale: 1)
        let size = Image.labelSize("dog")
        #expect(image[x: 50, y: 40 - size.height, channel: 0] == colour.red)
        #expect(image[x: 50, y: 40 - size.height - 1, channel: 0] == 0)
        var top = Image(width: 200, height: 100, filledWith: [0, 0, 0])
        top.drawDetection(left: 50, top: 2, right: 150, bottom: 90, label: "dog", color: colour, thickness: 2, textScale: 1)
        #expect(top[x: 52, y: 2 + size.height - 1, channel: 1] == colour.green)  // inside the box
    }

    /// Darknet's get_color: class 0 of 80 is magenta-ish; colours are stable and spread.
    @Test func classColoursFollowDarknet() {
        // Darknet reads its ramp's entry 2 as red and entry 0 as blue.
        // Offset 0 -> ramp[0] = (1, 0, 1): magenta.
        #expect(Color(classIndex: 0, classCount: 80) == Color(red: 255, green: 0, blue: 255))
        // Class 1 of 80: offset 123457 % 80 = 17, ratio 17/80*5 = 1.0625, 6.25% of the way from
        // ramp[1] = (0, 0, 1) to ramp[2] = (0, 1, 1): red 1, green 0.0625, blue 0.
        let c = Color(classIndex: 1, classCount: 80)
        #expect(c == Color(red: 255, green: UInt8(Float(0.0625) * 255), blue: 0))
        let all = Set((0..<80).map { Color(classIndex: $0, classCount: 80) })
        #expect(all.count > 60)
    }
}
