import Foundation
import Testing
import OcelliDetection
import OcelliTensor
import OcelliTestSupport
import OcelliVision
@testable import OcelliDarknet

/// Image → network input → detections → picture, as `ocelli detect` and `ocelli map` run them.
@Suite(.serialized) struct DarknetImagePipelineTests {
    @Test func inputIsOpenCVsBlobOrDarknetsLetterbox() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        let image = try Image(contentsOf: Paths.image("dog.jpg"))
        // Plain resize: OpenCV's blobFromImage (checked against OpenCV in OpenCVParityTests).
        #expect(net.input(for: image, fit: .resize).scalars == (try opencvBlob(Paths.image("dog.jpg"), size: 416)).scalars)
        let boxed = net.input(for: image, fit: .letterbox)
        #expect(boxed.shape == [416, 416, 3])
        // 768x576 into 416x416: 416x312 of picture, grey (0.5) bars of 52 rows above and below.
        #expect(boxed.scalars[0] == 0.5 && boxed.scalars[(51 * 416) * 3] == 0.5 && boxed.scalars[(415 * 416) * 3] == 0.5)
        #expect(boxed.scalars[(208 * 416 + 208) * 3] != 0.5)
        let gray = Image(width: 8, height: 8, channels: 1, pixels: [UInt8](repeating: 200, count: 64))
        #expect(net.input(for: gray, fit: .resize).shape == [416, 416, 3])
    }

    @Test func detectOverADataSetBatchesAsOneByOne() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg, width: 160, height: 160)
        try net.loadWeights(syntheticWeights(net))
        let images = try ["dog.jpg", "horses.jpg", "person.jpg"].map { name -> AnnotatedImage in
            let image = try Image(contentsOf: Paths.image(name))
            return AnnotatedImage(id: String(name.dropLast(4)), file: URL(fileURLWithPath: Paths.image(name)),
                                  width: image.width, height: image.height, objects: [])
        }
        // Random weights: objectness about 0.5, so a high threshold keeps a countable set.
        let one = try net.detect(images: images, threshold: 0.9, fit: .letterbox, batch: 1)
        let three = try net.detect(images: images, threshold: 0.9, fit: .letterbox, batch: 3)
        #expect(!one.isEmpty && one == three)
        #expect(Set(one.map(\.imageID)).isSubset(of: ["dog", "horses", "person"]) && one.allSatisfy { $0.score > 0.9 })
        // Each image's detections are the network's own for that image.
        let dog = try Image(contentsOf: Paths.image("dog.jpg"))
        let direct = net.detections(outputs: net.forward(net.input(for: dog, fit: .letterbox).reshaped([1, 160, 160, 3])),
                                    imageWidth: dog.width, imageHeight: dog.height, fit: .letterbox, threshold: 0.9)
        #expect(one.filter { $0.imageID == "dog" }.map(\.classIndex) == direct.map(\.classIndex))
        do { _ = try net.detect(images: images, batch: 0); Issue.record("no error") } catch {
            #expect("\(error)".contains("batch"), "\(error)")
        }
    }

    @Test func drawingMarksTheBoxesAndSkipsNonFiniteOnes() throws {
        let image = Image(width: 40, height: 30, channels: 3, pixels: [UInt8](repeating: 0, count: 40 * 30 * 3))
        let box = Detection(classIndex: 1, className: "dog", score: 0.9, x1: 5, y1: 5, x2: 30, y2: 25)
        let drawn = image.drawingDetections([box], classes: 80)
        #expect(drawn.pixels != image.pixels)
        // The box's left edge is coloured, a pixel well outside it is not.
        #expect(drawn.pixels[(15 * 40 + 5) * 3..<(15 * 40 + 5) * 3 + 3] != [0, 0, 0])
        #expect(drawn.pixels[(28 * 40 + 38) * 3..<(28 * 40 + 38) * 3 + 3] == [0, 0, 0])
        let broken = Detection(classIndex: 1, className: "dog", score: .nan, x1: .nan, y1: 5, x2: .infinity, y2: 25)
        #expect(image.drawingDetections([broken], classes: 80).pixels == image.pixels)
    }
}
