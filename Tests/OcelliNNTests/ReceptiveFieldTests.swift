import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Receptive fields (issue 7, part 8): size, jump and start against the input pixels an output
/// cell's gradient actually reaches.
@Suite struct ReceptiveFieldTests {
    /// The bounding box (top, left, bottom, right) of the input pixels whose gradient for output
    /// cell (row, column) of `model`'s output is non-zero. With positive weights and inputs
    /// (and average pooling) that is the receptive field clipped to the image.
    func touchedPixels(_ model: Model, row: Int, column: Int) -> (Int, Int, Int, Int) {
        let shape = model.inputs[0].shape
        let x = Tensor.ones([1] + shape).requiringGrad()
        var c = ForwardContext(training: false)
        let y = model.forward([x], context: &c)[0]
        var seed = [Float](repeating: 0, count: y.count)
        seed[(row * y.shape[2] + column) * y.shape[3]] = 1
        y.backward(Tensor(shape: y.shape, scalars: seed))
        let g = x.grad!
        var box = (Int.max, Int.max, Int.min, Int.min)
        for i in 0..<shape[0] { for j in 0..<shape[1] where g.scalars[(i * shape[1] + j) * shape[2]] != 0 {
            box = (Swift.min(box.0, i), Swift.min(box.1, j), Swift.max(box.2, i), Swift.max(box.3, j))
        } }
        return box
    }

    @Test func fieldsMatchTheGradientsReach() throws {
        let model = Sequential(inputShape: [23, 19, 1]) {
            Conv2D(filters: 2, kernelSize: 3, strides: 2, padding: .same, useBias: false, kernelInitializer: .ones)
            AveragePooling2D(poolSize: (2, 2), strides: (1, 1))
            ZeroPadding2D(padding: ((2, 0), (1, 1)))
            Conv2D(filters: 2, kernelSize: (3, 2), strides: (1, 2), padding: .valid, dilationRate: (2, 1), useBias: false, kernelInitializer: .ones)
            DepthwiseConv2D(kernelSize: (3, 3), padding: .explicit(top: 1, bottom: 0, left: 2, right: 1), useBias: false,
                            depthwiseInitializer: .ones)
            Cropping2D(cropping: ((1, 0), (0, 1)))
        }
        let out = model.layers.last!.outputShape
        let table = model.receptiveFieldTable()
        #expect(table.count == 6)
        for (row, column) in [(0, 0), (1, 2), (out[0] - 1, out[1] - 1), (out[0] / 2, 0), (0, out[1] - 1)] {
            let region = try model.receptiveRegion(row: row, column: column)
            let clipped = (Swift.max(Int(region.top), 0), Swift.max(Int(region.left), 0),
                           Swift.min(Int(region.bottom), 22), Swift.min(Int(region.right), 18))
            let touched = touchedPixels(model, row: row, column: column)
            #expect(clipped == touched, "cell (\(row), \(column)): field \(region), gradient reaches \(touched)")
        }
    }

    @Test func textbookValuesByHand() throws {
        // Two 3x3 valid convs: 5x5 field, jump 1, start 2; 2x2 pooling: 6x6, jump 2, start 2.5.
        let model = Sequential(inputShape: [16, 16, 1]) {
            Conv2D(filters: 1, kernelSize: 3)
            Conv2D(filters: 1, kernelSize: 3)
            MaxPooling2D(2)
            Flatten()
        }
        let t = model.receptiveFieldTable()
        #expect(t[1].rows == ReceptiveFieldAxis(size: 5, jump: 1, start: 2))
        #expect(t[2].rows == ReceptiveFieldAxis(size: 6, jump: 2, start: 2.5))
        #expect(t[3].rows == nil)
        // Cell (1, 2) of the pooled map: rows 2…7, columns 4…9.
        let r = try model.receptiveRegion(row: 1, column: 2)
        #expect(r.top == 2 && r.bottom == 7 && r.left == 4 && r.right == 9 && r.layer == model.layers[2].name)
        #expect(throws: LayerError.self) { _ = try model.receptiveRegion(row: 6, column: 0) }
        let report = model.receptiveFieldReport()
        #expect(report.contains("RF size") && report.contains("2.50") && report.contains("full"))
        // Same-padded stride-2 conv (TensorFlow puts the odd padding cell at the end): start 1.
        let same = Sequential(inputShape: [8, 8, 1]) { Conv2D(filters: 1, kernelSize: 3, strides: 2, padding: .same) }
        #expect(same.receptiveFieldTable()[0].rows == ReceptiveFieldAxis(size: 3, jump: 2, start: 1))
    }

    @Test func resnet50AndMobileNetFields() throws {
        // ResNet-50's final 7x7 map in torchvision's layout: every cell sees 427 pixels at a jump
        // of 32.
        // (TF-slim's resnet_v1_50 strides in the last unit of each block: 483 in Araujo et al.)
        let r50 = try Architectures.resnet(depth: 50)
        let last = r50.receptiveFieldTable().last { $0.rows != nil }!
        #expect(last.outputShape == [7, 7, 2048] && last.rows!.size == 427 && last.rows!.jump == 32)
        // MobileNet v1: 315 pixels at jump 32, as in Araujo et al.'s table (Distill 2019).
        let m = Architectures.mobileNet()
        let mLast = m.receptiveFieldTable().last { $0.rows != nil }!
        #expect(mLast.rows!.size == 315 && mLast.rows!.jump == 32)
    }
}
