import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

/// YOLOv1's [detection] layout (detection_layer.c): class probabilities of every cell, then each
/// cell's box confidences, then the boxes (x, y relative to the cell, w and h squared with sqrt=1).
@Suite struct DarknetYoloV1Tests {
    @Test func detectionLayerDecoding() throws {
        let text = "[net]\nwidth=2\nheight=2\nchannels=1\n[connected]\noutput=28\nactivation=linear\n" +
            "[detection]\nclasses=2\ncoords=4\nnum=1\nside=2\nsqrt=1\nsoftmax=0\n"
        let net = try DarknetNetwork(config: DarknetConfig(text: text, file: "v1.cfg"))
        #expect(net.usesPlainResize)
        var biases = [Float](repeating: 0, count: 28)
        biases[6] = 0.2; biases[7] = 0.8                         // cell 3's class probabilities
        biases[8 + 3] = 0.9                                      // cell 3's confidence
        biases[12 + 12] = 0.5; biases[12 + 13] = 0.25; biases[12 + 14] = 0.6; biases[12 + 15] = 0.4
        var data = Data()
        for v: Int32 in [0, 2, 0] { withUnsafeBytes(of: v) { data.append(contentsOf: $0) } }
        withUnsafeBytes(of: UInt64(0)) { data.append(contentsOf: $0) }
        (biases + [Float](repeating: 0, count: 28 * 4)).withUnsafeBytes { data.append(contentsOf: $0) }
        try net.loadWeights(data)
        let outputs = net.forward(Tensor.ones([1, 2, 2, 1]))
        let boxes = net.boxes(outputs: outputs, imageWidth: 100, imageHeight: 50, fit: .resize, threshold: 0.1)
        #expect(boxes.count == 4)
        let b = boxes[3]
        #expect(abs(b.x - 0.75) < 1e-6 && abs(b.y - 0.625) < 1e-6 && abs(b.w - 0.36) < 1e-6 && abs(b.h - 0.16) < 1e-6)
        #expect(abs(b.probabilities[0] - 0.18) < 1e-6 && abs(b.probabilities[1] - 0.72) < 1e-6)
        #expect(boxes[0..<3].allSatisfy { $0.probabilities == [0, 0] })
        let dets = net.detections(outputs: outputs, imageWidth: 100, imageHeight: 50, fit: .resize, threshold: 0.1,
                                  classNames: ["a", "b"])
        #expect(dets.map(\.className) == ["a", "b"] && abs(dets[1].score - 0.72) < 1e-6)
        #expect(abs(dets[0].x1 - 57) < 1e-4 && abs(dets[0].x2 - 93) < 1e-4 && abs(dets[0].y1 - 27.25) < 1e-4 && abs(dets[0].y2 - 35.25) < 1e-4)
    }
}
