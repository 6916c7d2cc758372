import Testing
import OcelliTensor
@testable import OcelliVision

@Suite("Image")
struct ImageTests {
    // 3x2 RGB with pixel (x, y) = (10x + y, 100 + 10x + y, 200 + x).
    static let small: Image = {
        var pixels: [UInt8] = []
        for y in 0..<2 { for x in 0..<3 { pixels += [UInt8(10 * x + y), UInt8(100 + 10 * x + y), UInt8(200 + x)] } }
        return Image(width: 3, height: 2, channels: 3, pixels: pixels)
    }()

    @Test func layoutIsHWC() {
        let image = Self.small
        #expect(image[x: 2, y: 1, channel: 0] == 21)
        #expect(image.pixels[(1 * 3 + 2) * 3 + 1] == 121)
    }

    /// Bytes become Float(v) / 255, which for every byte equals Darknet's Double division
    /// `(float)v / 255.`, so Float images match Darknet's bit for bit.
    @Test func byteToFloatMatchesDarknetsDoubleDivision() {
        let all = Image(width: 256, height: 1, channels: 1, pixels: (0...255).map { UInt8($0) })
        #expect(all.tensor().scalars == (0...255).map { Float(Double($0) / 255) })
    }

    @Test func tensorConversions() {
        let t = Self.small.tensor()
        #expect(t.shape == [2, 3, 3])
        #expect(t.scalars[3] == Float(Double(10) / 255))
        #expect(Self.small.batchTensor().shape == [1, 2, 3, 3])
        #expect(Image(tensor: t) == Self.small)
        #expect(Image(tensor: Self.small.batchTensor()) == Self.small)
        let clamped = Image(tensor: Tensor(shape: [1, 4, 1], scalars: [-1, 0.5, 2, .nan]))
        #expect(clamped.pixels == [0, 128, 255, 0])
        let batch = Image.batchTensor([Self.small, Self.small.flippedHorizontally()])
        #expect(batch.shape == [2, 2, 3, 3])
        #expect(Array(batch.scalars[18..<21]) == Array(Self.small.flippedHorizontally().tensor().scalars[0..<3]))
    }

    @Test func flipsRotationsCropAndPad() {
        let image = Self.small
        #expect(image.flippedHorizontally()[x: 0, y: 0, channel: 0] == 20)
        #expect(image.flippedVertically()[x: 0, y: 0, channel: 0] == 1)
        let right = image.rotated(quarterTurns: 1)
        #expect(right.width == 2 && right.height == 3)
        // Clockwise: the new top row is the old left column read bottom to top.
        #expect(right[x: 0, y: 0, channel: 0] == 1 && right[x: 1, y: 0, channel: 0] == 0)
        #expect(image.rotated(quarterTurns: 4) == image)
        #expect(image.rotated(quarterTurns: 1).rotated(quarterTurns: -1) == image)
        #expect(image.rotated(quarterTurns: 2) == image.flippedHorizontally().flippedVertically())
        let crop = image.cropped(x: 1, y: 1, width: 2, height: 1)
        #expect(crop.pixels == [11, 111, 201, 21, 121, 202])
        let pad = image.padded(top: 1, bottom: 0, left: 2, right: 1, value: [7, 8, 9])
        #expect(pad.width == 6 && pad.height == 3)
        #expect(pad[x: 0, y: 0, channel: 2] == 9 && pad[x: 5, y: 2, channel: 0] == 7)
        #expect(pad.cropped(x: 2, y: 1, width: 3, height: 2) == image)
    }

    @Test func channelConversions() {
        let image = Self.small
        #expect(image.swappingRedBlue()[x: 1, y: 0, channel: 0] == 201)
        #expect(image.swappingRedBlue().swappingRedBlue() == image)
        let rgba = image.rgba()
        #expect(rgba.channels == 4 && rgba[x: 2, y: 1, channel: 3] == 255)
        #expect(rgba.rgb() == image)
        let gray = Image(width: 2, height: 1, channels: 1, pixels: [3, 250])
        #expect(gray.rgb().pixels == [3, 3, 3, 250, 250, 250])
        #expect(gray.rgb().grayscale() == gray)
    }
}
