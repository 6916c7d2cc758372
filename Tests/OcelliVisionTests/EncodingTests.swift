import Foundation
import Testing
import OcelliVision

@Suite("Encoding")
struct EncodingTests {
    static func pattern(width: Int, height: Int, channels: Int) -> Image {
        var pixels = [UInt8](repeating: 0, count: width * height * channels)
        for i in pixels.indices { pixels[i] = UInt8(truncatingIfNeeded: i &* 2_654_435_761 >> 7) }
        return Image(width: width, height: height, channels: channels, pixels: pixels)
    }

    @Test(arguments: [1, 3, 4])
    func pngRoundTripsExactly(channels: Int) throws {
        for (w, h) in [(1, 1), (7, 3), (64, 33)] {
            let image = Self.pattern(width: w, height: h, channels: channels)
            let data = try image.pngData()
            #expect(Array(data.prefix(4)) == [0x89, 0x50, 0x4E, 0x47])
            let decoded = try Image.decode(data: data, name: "round trip")
            #expect(decoded == image, "\(w)x\(h)x\(channels)")
        }
    }

    @Test func pngOfAPhotoRoundTripsExactly() throws {
        let dog = try Image(contentsOf: Fixtures.sharedImage("dog.jpg"))
        #expect(try Image.decode(data: dog.pngData(), name: "dog.png") == dog)
    }

    /// JPEG is lossy: a re-encoded photo stays close (PSNR), higher quality is closer and bigger.
    @Test func jpegRoundTripIsCloseAndQualityMatters() throws {
        let dog = try Image(contentsOf: Fixtures.sharedImage("dog.jpg"))
        func psnr(_ a: Image, _ b: Image) -> Double {
            let se = zip(a.pixels, b.pixels).reduce(0.0) { $0 + pow(Double($1.0) - Double($1.1), 2) }
            return 10 * log10(255 * 255 / (se / Double(a.pixels.count)))
        }
        let low = try dog.jpegData(quality: 30), high = try dog.jpegData(quality: 95)
        #expect(low.count < high.count)
        let lowImage = try Image.decode(data: low, name: "low"), highImage = try Image.decode(data: high, name: "high")
        #expect(highImage.width == 768 && highImage.height == 576 && highImage.channels == 3)
        #expect(psnr(dog, highImage) > 38)
        #expect(psnr(dog, lowImage) > 28)
        #expect(psnr(dog, highImage) > psnr(dog, lowImage))
        // Gray stays gray; RGBA loses its alpha.
        let gray = try Image.decode(data: dog.grayscale().jpegData(), name: "gray")
        #expect(gray.channels == 1)
        let rgba = try Image.decode(data: dog.rgba().jpegData(), name: "rgba")
        #expect(rgba.channels == 3)
    }

    @Test func writesAreAtomicAndReplaceExistingFiles() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("out.png").path
        let first = Self.pattern(width: 9, height: 5, channels: 3)
        let second = Self.pattern(width: 4, height: 4, channels: 1)
        try first.write(png: path)
        try second.write(png: path)
        #expect(try Image(contentsOf: path) == second)
        let jpegPath = directory.appendingPathComponent("out.jpg").path
        try first.write(jpeg: jpegPath, quality: 100)
        #expect(try Image(contentsOf: jpegPath).width == 9)
        // Only the two files: no temporary files left behind.
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted()
        #expect(names == ["out.jpg", "out.png"])
    }

    @Test func writingIntoAMissingDirectoryThrowsNamingTheFile() throws {
        let path = "/nonexistent-ocelli-dir/out.png"
        let error = try #require(throws: ImageError.self) { try Self.pattern(width: 2, height: 2, channels: 3).write(png: path) }
        #expect(error.description.hasPrefix(path + ": cannot write the file: "))
    }
}
