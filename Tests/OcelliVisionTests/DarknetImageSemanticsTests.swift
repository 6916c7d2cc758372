import Foundation
import Testing
import OcelliTensor
@testable import OcelliVision

struct DarknetFixture: Decodable {
    struct Sample: Decodable { var index: Int, rgb: [Float] }
    struct LetterboxCase: Decodable {
        var name: String, width: Int, height: Int, resizedWidth: Int, resizedHeight: Int, offsetX: Int, offsetY: Int
        var crc32: UInt32, samples: [Sample]
    }
    struct ResizeCase: Decodable { var name: String, width: Int, height: Int, crc32: UInt32 }
    struct SmallCase: Decodable { var width: Int, height: Int, values: [Float] }
    struct Small: Decodable { var source: [Float], sourceWidth: Int, sourceHeight: Int, cases: [SmallCase] }
    struct HSV: Decodable { var rgb: [Float], hsv: [Float] }
    var letterbox: [LetterboxCase]
    var resize: [ResizeCase]
    var small: Small
    var hsv: [HSV]
}

/// Darknet's resize_image, letterbox_image and rgb_to_hsv, against numpy float32 transcriptions
/// (Scripts/make_vision_fixtures.py): equal bit for bit.
@Suite("Darknet image semantics")
struct DarknetImageSemanticsTests {
    @Test func letterboxMatchesDarknetBitForBit() throws {
        let fixture: DarknetFixture = try Fixtures.json("darknet.json")
        for case_ in fixture.letterbox {
            let image = try Image(contentsOf: Fixtures.sharedImage(case_.name))
            let (tensor, box) = image.letterboxed(width: case_.width, height: case_.height)
            #expect(tensor.shape == [case_.height, case_.width, 3])
            #expect(box.resizedWidth == case_.resizedWidth && box.resizedHeight == case_.resizedHeight, "\(case_.name)")
            #expect(box.offsetX == case_.offsetX && box.offsetY == case_.offsetY, "\(case_.name)")
            for sample in case_.samples {
                let got = Array(tensor.scalars[sample.index * 3..<sample.index * 3 + 3])
                #expect(got == sample.rgb, "\(case_.name) pixel \(sample.index)")
            }
            #expect(CRC32.checksum(tensor.scalars) == case_.crc32, "\(case_.name): CRC of the float32 letterbox")
        }
        // dog.jpg: 768x576 into 416x416 -> 416x312 at (0, 52).
        let dog = Letterbox(sourceWidth: 768, sourceHeight: 576, width: 416, height: 416)
        #expect((dog.resizedWidth, dog.resizedHeight, dog.offsetX, dog.offsetY) == (416, 312, 0, 52))
    }

    @Test func resizeMatchesDarknetBitForBit() throws {
        let fixture: DarknetFixture = try Fixtures.json("darknet.json")
        for case_ in fixture.resize {
            let image = try Image(contentsOf: Fixtures.sharedImage(case_.name)).tensor()
            let r = image.resizedImage(width: case_.width, height: case_.height, interpolation: .darknet)
            #expect(CRC32.checksum(r.scalars) == case_.crc32, "\(case_.name)")
        }
        let small = fixture.small
        let source = Tensor(shape: [small.sourceHeight, small.sourceWidth, 3], scalars: small.source)
        for case_ in small.cases {
            let r = source.resizedImage(width: case_.width, height: case_.height, interpolation: .darknet)
            #expect(r.shape == [case_.height, case_.width, 3])
            #expect(r.scalars == case_.values, "\(small.sourceWidth)x\(small.sourceHeight) to \(case_.width)x\(case_.height)")
        }
    }

    @Test func letterboxBatchAndFill() {
        let image = Tensor(shape: [2, 4, 1], scalars: [0, 0.25, 0.5, 1, 1, 0.5, 0.25, 0])
        let box = Letterbox(sourceWidth: 4, sourceHeight: 2, width: 8, height: 8)
        #expect((box.resizedWidth, box.resizedHeight, box.offsetX, box.offsetY) == (8, 4, 0, 2))
        let out = box.apply(to: image, fill: 0.5)
        #expect(out.shape == [8, 8, 1])
        #expect(out.scalars[0..<16].allSatisfy { $0 == 0.5 } && out.scalars[48..<64].allSatisfy { $0 == 0.5 })
        let batch = box.apply(to: Tensor(shape: [1, 2, 4, 1], scalars: image.scalars))
        #expect(batch.shape == [1, 8, 8, 1] && batch.scalars == out.scalars)
    }

    /// Boxes map back: through the real placement, and through Darknet's correct_yolo_boxes.
    @Test func boxesMapBackToTheSource() {
        let box = Letterbox(sourceWidth: 768, sourceHeight: 576, width: 416, height: 416)
        let mapped = box.sourceBox(left: 0, top: 52, right: 416, bottom: 364)
        #expect(mapped.left == 0 && mapped.top == 0 && mapped.right == 768 && mapped.bottom == 576)
        // The centre of the canvas is the centre of the image; a full-height box covers it.
        let d = box.darknetSourceBox(x: 0.5, y: 0.5, width: 1, height: 312.0 / 416.0)
        #expect(abs(d.x - 0.5) < 1e-6 && abs(d.y - 0.5) < 1e-6 && abs(d.width - 1) < 1e-6 && abs(d.height - 1) < 1e-6)
    }

    @Test func hsvMatchesDarknetAndRoundTrips() throws {
        let fixture: DarknetFixture = try Fixtures.json("darknet.json")
        let rgb = Tensor(shape: [fixture.hsv.count, 3], scalars: fixture.hsv.flatMap(\.rgb))
        let hsv = ColorConversion.rgbToHSV(rgb)
        #expect(hsv.scalars == fixture.hsv.flatMap(\.hsv))
        let back = ColorConversion.hsvToRGB(hsv)
        let worst = zip(back.scalars, rgb.scalars).map { abs($0 - $1) }.max() ?? 0
        #expect(worst < 1e-6)
        let gray = ColorConversion.rgbToGray(Tensor(shape: [1, 3], scalars: [1, 1, 1]))
        #expect(gray.shape == [1, 1] && abs(gray.scalars[0] - 1) < 1e-6)
        #expect(ColorConversion.swapRedBlue(Tensor(shape: [1, 1, 3], scalars: [1, 2, 3])).scalars == [3, 2, 1])
    }
}
