import Foundation
import Testing
@testable import OcelliVision

struct JPEGDecodeFixture: Decodable {
    struct Entry: Decodable {
        var name: String, width: Int, height: Int, channels: Int, crc32: UInt32, sum: Int
        var rows: [String: String]
        var opencvEqual: Bool
    }
    var images: [Entry]
}

struct PixelsFixture: Decodable {
    var width: Int, height: Int, channels: Int, pixels: String
}

@Suite("Decoding")
struct DecodingTests {
    /// The shared photos decode to exactly Pillow's (and OpenCV's) pixels: libjpeg-turbo with
    /// the accurate integer IDCT and fancy upsampling on both sides.
    @Test func sharedJPEGsMatchPillowExactly() throws {
        let fixture: JPEGDecodeFixture = try Fixtures.json("jpeg_decode.json")
        #expect(fixture.images.count == 7)
        for entry in fixture.images {
            let path = Fixtures.sharedImage(entry.name)
            let image = try Image(contentsOf: path)
            #expect(image.width == entry.width && image.height == entry.height && image.channels == entry.channels,
                    "\(entry.name): \(image.width)x\(image.height)x\(image.channels)")
            for (row, text) in entry.rows {
                let expected = Fixtures.bytes(base64: text)
                let start = Int(row)! * image.width * image.channels
                let got = Array(image.pixels[start..<start + expected.count])
                #expect(got == expected, "\(entry.name) row \(row): \(firstDifference(got, expected, channels: 3, width: 64))")
            }
            #expect(image.pixels.reduce(0) { $0 + Int($1) } == entry.sum, "\(entry.name): pixel sum")
            #expect(CRC32.checksum(image.pixels) == entry.crc32, "\(entry.name): CRC of all pixels")
            #expect(entry.opencvEqual, "\(entry.name): Pillow and OpenCV disagreed when the fixture was made")
        }
    }

    @Test(arguments: ["gray.jpg", "progressive.jpg"])
    func smallJPEGsMatchPillow(name: String) throws {
        let fixtures: [String: PixelsFixture] = try Fixtures.json("jpeg_small.json")
        let expected = try #require(fixtures[name])
        let image = try Image(contentsOf: Fixtures.path(name))
        #expect(image.width == expected.width && image.height == expected.height && image.channels == expected.channels)
        let pixels = Fixtures.bytes(base64: expected.pixels)
        #expect(image.pixels == pixels, "\(firstDifference(image.pixels, pixels, channels: image.channels, width: image.width))")
    }

    /// CMYK is converted with r = (255 − c)(255 − k) / 255 on ink amounts, Pillow's formula;
    /// the two round differently, so ±1.
    @Test func cmykJPEGBecomesRGB() throws {
        let fixtures: [String: PixelsFixture] = try Fixtures.json("jpeg_small.json")
        let expected = try #require(fixtures["cmyk.jpg"])
        let image = try Image(contentsOf: Fixtures.path("cmyk.jpg"))
        #expect(image.channels == 3 && image.width == expected.width && image.height == expected.height)
        let pixels = Fixtures.bytes(base64: expected.pixels)
        let worst = zip(image.pixels, pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
        #expect(worst <= 1, "largest difference from Pillow: \(worst)")
    }

    /// Orientations 1...8 come out upright, as Pillow's `exif_transpose` turns them.
    @Test(arguments: 1...8)
    func exifOrientationIsApplied(orientation: Int) throws {
        let name = "orientation_\(orientation).jpg"
        let fixtures: [String: PixelsFixture] = try Fixtures.json("jpeg_small.json")
        let expected = try #require(fixtures[name])
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path(name))))
        #expect(JPEGCodec.exifOrientation(bytes).rawValue == orientation)
        let image = try Image(contentsOf: Fixtures.path(name))
        #expect(image.width == expected.width && image.height == expected.height)
        #expect(image.pixels == Fixtures.bytes(base64: expected.pixels))
        let stored = try Image(contentsOf: Fixtures.path(name), applyingOrientation: false)
        #expect(stored.width == 6 && stored.height == 4)
        #expect(stored.oriented(Image.Orientation(rawValue: orientation)!) == image)
    }

    @Test(arguments: ["gray8.png", "gray16.png", "gray2.png", "gray_alpha8.png", "gray_alpha16.png", "rgb8.png",
                      "rgb16.png", "rgba8.png", "rgba16.png", "palette.png", "palette_trns.png",
                      "gamma10.png", "gamma10_16.png"])
    func pngColourTypesDecodeAsDocumented(name: String) throws {
        let fixtures: [String: PixelsFixture] = try Fixtures.json("png_decode.json")
        let expected = try #require(fixtures[name])
        let image = try Image(contentsOf: Fixtures.path(name))
        #expect(image.width == expected.width && image.height == expected.height)
        #expect(image.channels == expected.channels, "\(name): \(image.channels) channels")
        let pixels = Fixtures.bytes(base64: expected.pixels)
        #expect(image.pixels == pixels, "\(name): \(firstDifference(image.pixels, pixels, channels: image.channels, width: image.width))")
    }

    @Test func formatIsDetectedFromBytesNotName() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let png = directory.appendingPathComponent("actually-a-png.jpg").path
        let image = Image(width: 3, height: 2, channels: 3, pixels: Array(0..<18))
        try image.write(png: png)
        #expect(try Image(contentsOf: png) == image)
        #expect(ImageFormat.detect([0xFF, 0xD8, 0xFF]) == .jpeg)
        #expect(ImageFormat.detect([0x89, 0x50, 0x4E, 0x47, 0x0D]) == .png)
        #expect(ImageFormat.detect([0x47, 0x49, 0x46, 0x38]) == nil)
    }
}
