import Foundation
import Testing
import OcelliTensor
@testable import OcelliVision

struct ResizeFixture: Decodable {
    struct Checksum: Decodable { var width: Int, height: Int, crc32: UInt32, row0: String }
    struct Small: Decodable {
        var source: String, sourceWidth: Int, sourceHeight: Int, channels: Int, width: Int, height: Int, pixels: String
    }
    struct FloatCase: Decodable { var width: Int, height: Int, values: [Float] }
    struct FloatSource: Decodable { var width: Int, height: Int, values: [Float] }
    var bilinear: [Checksum]
    var nearest: [Checksum]
    var small: [Small]
    var float: [FloatCase]
    var floatSource: FloatSource
    var grayCRC32: UInt32
}

@Suite("Resize")
struct ResizeTests {
    static let dog = Result { try Image(contentsOf: Fixtures.sharedImage("dog.jpg")) }

    /// 8-bit bilinear equals OpenCV's `cv2.resize(INTER_LINEAR)` byte for byte (its fixed-point
    /// arithmetic is reproduced), shrinking, enlarging, exact halving (OpenCV's INTER_AREA path) and 1x1.
    @Test func bilinearMatchesOpenCVExactly() throws {
        let fixture: ResizeFixture = try Fixtures.json("resize.json")
        let dog = try Self.dog.get()
        for case_ in fixture.bilinear {
            let r = dog.resized(width: case_.width, height: case_.height, interpolation: .bilinear)
            let row0 = Fixtures.bytes(base64: case_.row0)
            #expect(Array(r.pixels.prefix(row0.count)) == row0, "\(case_.width)x\(case_.height) row 0")
            #expect(CRC32.checksum(r.pixels) == case_.crc32, "\(case_.width)x\(case_.height)")
        }
        for case_ in fixture.small {
            let source = Image(width: case_.sourceWidth, height: case_.sourceHeight, channels: case_.channels,
                               pixels: Fixtures.bytes(base64: case_.source))
            let r = source.resized(width: case_.width, height: case_.height)
            let expected = Fixtures.bytes(base64: case_.pixels)
            let difference = firstDifference(r.pixels, expected, channels: case_.channels, width: case_.width)
            #expect(r.pixels == expected, "\(case_.channels) channels to \(case_.width)x\(case_.height): \(difference)")
        }
    }

    @Test func nearestMatchesOpenCVExactly() throws {
        let fixture: ResizeFixture = try Fixtures.json("resize.json")
        let dog = try Self.dog.get()
        for case_ in fixture.nearest {
            let r = dog.resized(width: case_.width, height: case_.height, interpolation: .nearest)
            #expect(CRC32.checksum(r.pixels) == case_.crc32, "\(case_.width)x\(case_.height)")
        }
    }

    /// Float bilinear follows OpenCV's coordinates and weights; OpenCV's vector code may round
    /// the last bit differently, hence 1e-6 on values in [0, 1].
    @Test func floatBilinearMatchesOpenCV() throws {
        let fixture: ResizeFixture = try Fixtures.json("resize.json")
        let source = Tensor(shape: [fixture.floatSource.height, fixture.floatSource.width, 3], scalars: fixture.floatSource.values)
        for case_ in fixture.float {
            let r = source.resizedImage(width: case_.width, height: case_.height, interpolation: .bilinear)
            #expect(r.shape == [case_.height, case_.width, 3])
            let worst = zip(r.scalars, case_.values).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-6, "\(case_.width)x\(case_.height): worst difference \(worst)")
        }
        // A batch resizes image by image.
        let batch = Tensor(shape: [2] + source.shape, scalars: source.scalars + source.scalars.map { 1 - $0 })
        let rb = batch.resizedImage(width: 4, height: 3)
        #expect(rb.shape == [2, 3, 4, 3])
        #expect(Array(rb.scalars[0..<36]) == source.resizedImage(width: 4, height: 3).scalars)
    }

    /// Values checkable by hand: 2x1 -> 4x1 puts samples at x = −0.25, 0.25, 0.75, 1.25.
    @Test func bilinearByHand() {
        let t = Tensor(shape: [1, 2, 1], scalars: [0, 1])
        #expect(t.resizedImage(width: 4, height: 1).scalars == [0, 0.25, 0.75, 1])
        let image = Image(width: 2, height: 1, channels: 1, pixels: [0, 200])
        #expect(image.resized(width: 4, height: 1).pixels == [0, 50, 150, 200])
        #expect(image.resized(width: 4, height: 1, interpolation: .nearest).pixels == [0, 0, 200, 200])
        #expect(image.resized(width: 3, height: 1, interpolation: .darknet).pixels == [0, 100, 200])
    }

    @Test func grayscaleMatchesOpenCV() throws {
        let fixture: ResizeFixture = try Fixtures.json("resize.json")
        let gray = try Self.dog.get().grayscale()
        #expect(gray.channels == 1)
        #expect(CRC32.checksum(gray.pixels) == fixture.grayCRC32)
    }
}
