import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

enum Paths {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let repository = tests.deletingLastPathComponent().deletingLastPathComponent()
    static func cfg(_ name: String) -> String { TestFiles.cfg(name) }
    static let tinyCfg = TestFiles.cfg("yolov3-tiny.cfg")
    static var tinyWeights: String { TestFiles.yolov3TinyWeights }
    static func image(_ name: String) -> String { TestFiles.image(name) }
    static func fixture(_ name: String) -> URL { tests.appendingPathComponent("Fixtures/\(name)") }
}

// MARK: - cfg parser

@Suite struct DarknetConfigTests {
    @Test func darknetLineRules() throws {
        let text = """
            # a comment
            [net]
            width = 64
            height=32
              channels=3
            ; another comment

            [convolutional]
            filters=8
            size = 3
            pad=1
            activation= leaky
            anchors = 10,14,  23,27,
            """
        let c = try DarknetConfig(text: text, file: "t.cfg")
        #expect(c.layers.count == 1)
        #expect(try c.net.int("width", 0) == 64 && c.net.int("height", 0) == 32 && c.net.int("channels", 0) == 3)
        let conv = c.layers[0]
        #expect(conv.type == "convolutional" && conv.line == 8)
        #expect(try conv.floats("anchors") == [10, 14, 23, 27])
        #expect(conv.string("activation", "logistic") == "leaky")
        #expect(try conv.int("stride", 1) == 1)            // Darknet's default
        #expect(c.warnings.count == 1 && c.warnings[0].contains("t.cfg:13") && c.warnings[0].contains("anchors"))
    }

    @Test func errorsNameTheFileAndLine() throws {
        func message(_ text: String) -> String {
            do { _ = try DarknetNetwork(config: DarknetConfig(text: text, file: "bad.cfg")); return "no error" } catch { return "\(error)" }
        }
        let bad = message("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=abc\n")
        #expect(bad.contains("bad.cfg:6") && bad.contains("filters=abc") && bad.contains("integer"), "\(bad)")
        let section = message("[net]\nwidth=32\nheight=32\nchannels=3\n[lstm]\noutput=3\n")
        #expect(section.contains("bad.cfg:5") && section.contains("unknown section [lstm]"), "\(section)")
        let noEquals = message("[net]\nwidth 32\n")
        #expect(noEquals.contains("bad.cfg:2") && noEquals.contains("key=value"), "\(noEquals)")
        let first = message("[convolutional]\nfilters=3\n")
        #expect(first.contains("[net]"), "\(first)")
        let route = message("[net]\nwidth=32\nheight=32\nchannels=3\n[route]\nlayers=-3\n")
        #expect(route.contains("bad.cfg:5") && route.contains("layers"), "\(route)")
        let activation = message("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nactivation=stair\n")
        #expect(activation.contains("bad.cfg:6") && activation.contains("activation"), "\(activation)")
        let yolo = message("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=10\n[yolo]\nclasses=80\nnum=1\nanchors=1,1\n")
        #expect(yolo.contains("bad.cfg:7") && yolo.contains("85"), "\(yolo)")
    }
}

// MARK: - networks

@Suite struct DarknetNetworkTests {
    /// Every cfg Darknet ships here builds, with the layer count, output shapes and (where a
    /// published number exists) the parameter count of the original.
    @Test func everyCfgBuilds() throws {
        let expectations: [(String, [[Int]], Int?)] = [
            ("yolov3-tiny.cfg", [[13, 13, 255], [26, 26, 255]], 8_858_734),
            ("yolov2-tiny-voc.cfg", [[13, 13, 125]], nil),
            ("yolov2-tiny.cfg", [[13, 13, 425]], nil),
            ("yolov2-voc.cfg", [[13, 13, 125]], nil),
            ("yolov2.cfg", [[19, 19, 425]], nil),
            ("yolov3.cfg", [[19, 19, 255], [38, 38, 255], [76, 76, 255]], 62_001_757),
            ("yolov3-voc.cfg", [[13, 13, 75], [26, 26, 75], [52, 52, 75]], nil),
            ("darknet19.cfg", [[1, 1, 1000]], nil),
            ("darknet19_448.cfg", [[1, 1, 1000]], nil),
            ("tiny.cfg", [[1, 1, 1000]], nil),
            ("yolov1-tiny.cfg", [[1470]], nil),
        ]
        for (name, shapes, params) in expectations {
            let net = try DarknetNetwork(cfg: Paths.cfg(name))
            #expect(net.model.outputs.map(\.shape) == shapes, "\(name)")
            if let params { #expect(net.model.parameters.reduce(0) { $0 + $1.count } == params, "\(name)") }
        }
    }

    @Test func darknetTableLines() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        let lines = net.darknetTable().split(separator: "\n").map(String.init)
        #expect(lines[0] == "layer     filters    size              input                output")
        #expect(lines[1] == "    0 conv     16  3 x 3 / 1   416 x 416 x   3   ->   416 x 416 x  16  0.150 BFLOPs")
        #expect(lines[2] == "    1 max          2 x 2 / 2   416 x 416 x  16   ->   208 x 208 x  16")
        #expect(lines[12] == "   11 max          2 x 2 / 1    13 x  13 x 512   ->    13 x  13 x 512")
        #expect(lines[17] == "   16 yolo")
        #expect(lines[18] == "   17 route  13")
        #expect(lines[20] == "   19 upsample            2x    13 x  13 x 128   ->    26 x  26 x 128")
        #expect(lines[21] == "   20 route  19 8")
        #expect(lines[13] == "   12 conv   1024  3 x 3 / 1    13 x  13 x 512   ->    13 x  13 x1024  1.595 BFLOPs")
        #expect(lines[22] == "   21 conv    256  3 x 3 / 1    26 x  26 x 384   ->    26 x  26 x 256  1.196 BFLOPs")
        #expect(lines.last == "Total BFLOPs 5.565")
        // pjreddie's darknet prints these lines for yolov2-voc.cfg.
        let v2 = try DarknetNetwork(cfg: Paths.cfg("yolov2-voc.cfg"))
        let table = v2.darknetTable()
        #expect(table.contains("   27 reorg              / 2    26 x  26 x  64   ->    13 x  13 x 256\n"), "\(table)")
        #expect(table.contains("   28 route  27 24\n"))
        #expect(table.contains("   29 conv   1024  3 x 3 / 1    13 x  13 x1280   ->    13 x  13 x1024  3.987 BFLOPs\n"))
        #expect(table.contains("   31 detection\n"))
    }

    /// Route concatenation order, reorg and the region head follow Darknet's indices.
    @Test func routesAndShortcuts() throws {
        let net = try DarknetNetwork(cfg: Paths.cfg("yolov3.cfg"), width: 320, height: 320)
        #expect(net.model.outputs.map(\.shape) == [[10, 10, 255], [20, 20, 255], [40, 40, 255]])
        #expect(net.layers.filter { $0.type == "shortcut" }.count == 23)
        let v2 = try DarknetNetwork(cfg: Paths.cfg("yolov2-voc.cfg"))
        #expect(v2.layers[28].outputShape == [13, 13, 1280])     // route 27 24: 256 (reorg) then 1024
    }

    @Test func trainingBatchNormGradients() throws {
        let z = TestData.uniform([2, 3, 3, 4], seed: 3, scale: 2)
        let scales = TestData.uniform([4], seed: 4) + 1.5
        let biases = TestData.uniform([4], seed: 5)
        let r = checkGradients([z, scales, biases], absolute: 2e-3, relative: 2e-2) { xs in
            darknetBatchNormTraining(xs[0], scales: xs[1], biases: xs[2]).0
        }
        #expect(r.passed, "\(r)")
        for a in [DarknetActivation.mish, .swish, .loggy, .ramp, .logistic, .elu] {
            let x = TestData.awayFromZero([17], seed: 9) * 3
            let g = checkGradients([x]) { xs in a(xs[0]) }
            #expect(g.passed, "\(a): \(g)")
        }
    }

    /// A conv layer in training mode updates Darknet's rolling statistics and, at inference, equals
    /// the folded convolution.
    @Test func convolutionalInferenceEqualsUnfolded() throws {
        let conv = DarknetConvolutional(filters: 5, size: 3, padding: 1, batchNormalize: true, activation: .leaky)
        let model = Sequential(inputShape: [6, 7, 3]) { conv }
        _ = model
        conv.scales!.assign(TestData.uniform([5], seed: 1) + 1.2)
        conv.biases.assign(TestData.uniform([5], seed: 2))
        conv.rollingMean!.assign(TestData.uniform([5], seed: 3))
        conv.rollingVariance!.assign(TestData.uniform([5], seed: 4) + 1.5)
        let x = TestData.uniform([2, 6, 7, 3], seed: 5)
        let y = withoutGradients { conv(x) }          // the folded, packed, fused path
        let recorded = conv(x)                        // the differentiable inference path
        #expect(recorded.requiresGrad && recorded.isClose(to: y, absolute: 1e-5, relative: 1e-5))
        let z = Tensor.conv2d(x, filter: conv.kernel.value, padding: .explicit(top: 1, bottom: 1, left: 1, right: 1))
        let reference = ((z - conv.rollingMean!.value) / (conv.rollingVariance!.value.sqrt() + 1e-6) * conv.scales!.value
            + conv.biases.value).leakyRelu(negativeSlope: 0.1)
        #expect(y.isClose(to: reference, absolute: 1e-5, relative: 1e-5))
        // Changing a parameter invalidates the folded weights.
        conv.scales!.assign(conv.scales!.value * 2)
        let y2 = withoutGradients { conv(x) }
        #expect(!y2.isClose(to: y, absolute: 1e-3, relative: 0))
        // Training: rolling mean moves 1% toward the batch mean.
        let before = conv.rollingMean!.value
        _ = conv(x, training: true)
        let batchMean = z.mean(axes: [0, 1, 2])
        #expect(conv.rollingMean!.value.isClose(to: before * 0.99 + batchMean * 0.01, absolute: 1e-5, relative: 1e-5))
    }

    /// A thin convolution followed by a 2x2/2 max pool runs in one fused pass at inference; the
    /// result is bitwise the unfused one (same kernel, same maxima), for Darknet's pool padding
    /// and Keras' valid pool, with and without a consumer that keeps the fusion off.
    @Test func convolutionFusedWithMaxPoolEqualsTheTwoLayers() throws {
        for (h, w, pad) in [(12, 10, Padding.darknetMaxPool(size: 2)), (8, 6, .valid), (7, 9, .darknetMaxPool(size: 2))] {
            let conv = DarknetConvolutional(filters: 20, size: 3, padding: 1, batchNormalize: true, activation: .leaky)
            let input = Input(shape: [h, w, 3])
            let pooled = MaxPooling2D(poolSize: (2, 2), strides: (2, 2), padding: pad)(conv(input))
            let model = Model(inputs: input, outputs: pooled)
            conv.scales!.assign(TestData.uniform([20], seed: 1) + 1.2)
            conv.biases.assign(TestData.uniform([20], seed: 2))
            conv.rollingVariance!.assign(TestData.uniform([20], seed: 4) + 1.5)
            let x = TestData.uniform([2, h, w, 3], seed: 5)
            let fused = withoutGradients { model(x) }
            var ctx = ForwardContext(training: false)
            let separate = withoutGradients {
                let y = conv.forward([x], context: &ctx)
                return Tensor.maxPool2d(y, poolSize: (2, 2), strides: (2, 2), padding: pad)
            }
            #expect(fused.shape == separate.shape && fused.scalars == separate.scalars, "\(h)x\(w) \(pad)")
            #expect(withoutGradients { conv.forward([x], fusedWith: model.layers.last!, context: &ctx) } != nil || h % 2 == 1,
                    "\(h)x\(w): the fused path should run")
        }
    }

    /// In this process (where `DarknetNetwork` registered the Darknet layers); a fresh process is
    /// `DarknetSavedModelTests.savedDarknetModelLoadsInAFreshProcess`.
    @Test func savedModelReloadsWithDarknetLayers() throws {
        let net = try DarknetNetwork(cfg: Paths.cfg("yolov2-tiny-voc.cfg"), width: 64, height: 64)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-darknet-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try net.model.save(to: dir)
        let loaded = try Model.load(from: dir)
        let x = TestData.uniform([1, 64, 64, 3], seed: 1, scale: 0.5) + 0.5
        #expect(loaded(x).isClose(to: net.model(x), absolute: 1e-5, relative: 1e-5))
        #expect(loaded.summary().contains("DarknetConvolutional"))
    }
}

// MARK: - weights

/// The synthetic weights of Scripts/make_darknet_fixtures.py: one splitmix64 stream mapped by kind.
func syntheticWeights(_ net: DarknetNetwork) -> Data {
    var k: UInt64 = 0
    func u() -> Double {
        k &+= 1
        var z = k &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Double(z >> 40) / Double(1 << 24)
    }
    var floats: [Float] = []
    for (_, layer) in net.weightedLayers {
        let conv = layer as! DarknetConvolutional
        let n = conv.filters
        floats += (0..<n).map { _ in Float((u() - 0.5) * 0.2) }
        if conv.batchNormalize {
            floats += (0..<n).map { _ in Float(0.5 + u()) }
            floats += (0..<n).map { _ in Float((u() - 0.5) * 0.2) }
            floats += (0..<n).map { _ in Float(0.5 + u()) }
        }
        let fanIn = conv.kernel.shape[0] * conv.kernel.shape[1] * conv.kernel.shape[2]
        let scale = 2 * (6 / Double(fanIn)).squareRoot()
        floats += (0..<(conv.kernel.count)).map { _ in Float((u() - 0.5) * scale) }
    }
    var data = Data()
    for v: Int32 in [0, 2, 0] { withUnsafeBytes(of: v) { data.append(contentsOf: $0) } }
    withUnsafeBytes(of: UInt64(0)) { data.append(contentsOf: $0) }
    floats.withUnsafeBytes { data.append(contentsOf: $0) }
    return data
}

@Suite struct DarknetWeightsTests {
    @Test func readWriteIsByteIdentical() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        let original = syntheticWeights(net)
        let header = try net.loadWeights(original, file: "yolov3-tiny.weights")
        #expect(header.major == 0 && header.minor == 2 && header.seenIs64Bit)
        #expect(net.weightsData(header: header) == original)
        // An old-format header (seen as int32) round-trips as well.
        let old = DarknetWeightsHeader(major: 0, minor: 1, revision: 0, seen: 12345)
        net.seen = 12345
        let data = net.weightsData(header: old)
        #expect(data.count == original.count - 4)
        let reread = try net.loadWeights(data)
        #expect(reread == old && net.weightsData(header: reread) == data)
    }

    /// The real file (header, seen, every float) comes back byte for byte.
    @Test(.enabled(if: TestFiles.realWeightsAvailable, Comment(rawValue: TestFiles.realWeightsReason)))
    func realWeightsReadWriteIsByteIdentical() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        let original = try Data(contentsOf: URL(fileURLWithPath: Paths.tinyWeights))
        #expect(original.count == 35_434_956)
        let header = try net.loadWeights(original, file: "yolov3-tiny.weights")
        #expect(header.major == 0 && header.minor == 2 && header.seenIs64Bit)
        #expect(net.weightsData(header: header) == original)
    }

    @Test func wrongSizesAreClearErrors() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        let original = syntheticWeights(net)
        #expect(original.count == 35_434_956)  // the real file's size: synthetic weights have its layout
        func message(_ d: Data) -> String {
            do { try net.loadWeights(d, file: "w.weights"); return "no error" } catch { return "\(error)" }
        }
        let truncated = message(original.prefix(original.count - 100))
        #expect(truncated.contains("w.weights") && truncated.contains("truncated")
                && truncated.contains("\(original.count) bytes") && truncated.contains("\(original.count - 100) bytes"), "\(truncated)")
        let long = message(original + Data(count: 8))
        #expect(long.contains("too long") && long.contains("\(original.count + 8) bytes"), "\(long)")
        #expect(message(Data(count: 7)).contains("too short"))
        // The wrong cfg for a weights file: the size check catches it.
        let v2 = try DarknetNetwork(cfg: Paths.cfg("yolov2-tiny-voc.cfg"))
        do { try v2.loadWeights(original); Issue.record("no error") } catch {
            #expect("\(error)".contains("yolov2-tiny-voc.cfg"), "\(error)")
        }
    }

    @Test func connectedWeightsPermuteFromDarknetOrder() throws {
        // A 2x2x3 input flattened channel-major by Darknet, H,W,C by Ocelli.
        let text = "[net]\nwidth=2\nheight=2\nchannels=3\n[connected]\noutput=2\nactivation=linear\n"
        let net = try DarknetNetwork(config: DarknetConfig(text: text, file: "fc.cfg"))
        var data = Data()
        for v: Int32 in [0, 2, 0] { withUnsafeBytes(of: v) { data.append(contentsOf: $0) } }
        withUnsafeBytes(of: UInt64(0)) { data.append(contentsOf: $0) }
        let floats: [Float] = [0.5, -1] + (0..<24).map { Float($0) }   // biases, then W[out][c·h·w]
        floats.withUnsafeBytes { data.append(contentsOf: $0) }
        try net.loadWeights(data)
        // Input value (y, x, c) = 100·c + 10·y + x; Darknet's flat index d = c·4 + y·2 + x.
        var xs: [Float] = []
        for y in 0..<2 { for x in 0..<2 { for c in 0..<3 { xs.append(Float(100 * c + 10 * y + x)) } } }
        let out = net.forward(Tensor(shape: [1, 2, 2, 3], scalars: xs))[0]
        var expected: [Float] = [0.5, -1]
        for o in 0..<2 {
            for c in 0..<3 { for y in 0..<2 { for x in 0..<2 {
                expected[o] += Float(o * 12 + c * 4 + y * 2 + x) * Float(100 * c + 10 * y + x)
            } } }
        }
        #expect(out.scalars == expected)
        #expect(net.weightsData() == data)
    }
}

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

// MARK: - OpenCV parity

struct OpenCVReference: Decodable {
    struct Sampled: Decodable { var shape: [Int]; var indices: [Int]; var values: [Float]; var channel_sums: [Double] }
    struct Blob: Decodable { var sum: Double; var indices: [Int]; var values: [Float] }
    struct Det: Decodable { var class_id: Int; var score: Float; var x1: Float; var y1: Float; var x2: Float; var y2: Float }
    struct ImageCase: Decodable {
        var image: String; var width: Int; var height: Int; var blob: Blob; var heads: [Sampled]
        /// OpenCV's detections keep class scores above `threshold`.
        var threshold: Float; var detections: [Det]
        /// The [yolo] layers' decoded rows, sampled (synthetic weights only).
        var yolo_rows: Rows?
    }
    struct Tiny: Decodable { var images: [ImageCase] }
    struct RandomTiny: Decodable { var cfg: String; var weights_bytes: Int; var nms_threshold: Float; var images: [ImageCase] }
    struct Rows: Decodable { var count: Int; var indices: [Int]; var rows: [[Float]] }
    struct Random: Decodable { var cfg: String; var weights_bytes: Int; var head: Sampled; var region_rows: Rows }
    var yolov3_tiny: Tiny
    var yolov3_tiny_random: RandomTiny
    var yolov2_tiny_voc: Random
    var yolov2_voc: Random

    static let shared: OpenCVReference = {
        let data = try! Data(contentsOf: Paths.fixture("opencv_reference.json"))
        return try! JSONDecoder().decode(OpenCVReference.self, from: data)
    }()
}

/// OpenCV's blobFromImage: bilinear resize of the 8-bit image, RGB, / 255.
func opencvBlob(_ path: String, size: Int) throws -> Tensor {
    let image = try Image(contentsOf: path)
    return image.resized(width: size, height: size, interpolation: .bilinear).tensor().reshaped([1, size, size, 3])
}

func expectSampled(_ t: Tensor, _ ref: OpenCVReference.Sampled, _ what: String, tolerance: Float = 1e-3) {
    #expect(Array(t.shape.dropFirst()) == ref.shape, "\(what)")
    var worst: Float = 0
    for (i, v) in zip(ref.indices, ref.values) { worst = max(worst, abs(t.scalars[i] - v)) }
    #expect(worst <= tolerance, "\(what): max |Ocelli − OpenCV| = \(worst) over \(ref.indices.count) samples")
    let c = ref.shape.last!
    var sums = [Double](repeating: 0, count: c)
    for (i, v) in t.scalars.enumerated() { sums[i % c] += Double(v) }
    let cells = Double(t.count / c)
    let sumWorst = zip(sums, ref.channel_sums).map { abs($0 - $1) / cells }.max() ?? 0
    #expect(sumWorst <= Double(tolerance), "\(what): channel means differ by up to \(sumWorst)")
}

/// yolov3-tiny as `ocelli detect` runs it, photo by photo against OpenCV: the input blob, both
/// heads, then decoding, threshold and NMS. `net` is prepared for inference; `unprepared` has the
/// same weights and packs on first use, and must agree with it bitwise.
func expectYoloV3TinyParity(_ net: DarknetNetwork, unprepared: DarknetNetwork, _ images: [OpenCVReference.ImageCase],
                            nmsThreshold: Float = 0.45) throws {
    for (i, ref) in images.enumerated() {
        let blob = try opencvBlob(Paths.image(ref.image), size: 416)
        let inputWorst = zip(ref.blob.indices, ref.blob.values).map { abs(blob.scalars[$0] - $1) }.max()!
        #expect(inputWorst < 1e-6, "\(ref.image): input differs from OpenCV's blob by \(inputWorst)")
        let outputs = net.forward(blob)
        if i == 0 { #expect(unprepared.forward(blob).map(\.scalars) == outputs.map(\.scalars)) }
        for (k, head) in ref.heads.enumerated() { expectSampled(outputs[k], head, "\(ref.image) head \(k)") }
        if let rows = ref.yolo_rows { expectYoloRows(net, outputs, rows, ref) }
        let dets = net.detections(outputs: outputs, imageWidth: ref.width, imageHeight: ref.height, fit: .resize,
                                  threshold: ref.threshold, nmsThreshold: nmsThreshold)
            .sorted { ($0.classIndex, -$0.score) < ($1.classIndex, -$1.score) }
        #expect(dets.map(\.classIndex) == ref.detections.map(\.class_id), "\(ref.image)")
        for (d, r) in zip(dets, ref.detections) {
            #expect(abs(d.score - r.score) < 0.005, "\(ref.image): score \(d.score) vs \(r.score)")
            let dx = [abs(d.x1 - r.x1), abs(d.y1 - r.y1), abs(d.x2 - r.x2), abs(d.y2 - r.y2)].max()!
            #expect(dx <= 1, "\(ref.image): class \(d.classIndex) box off by \(dx) px")
        }
    }
}

/// Every box the [yolo] heads decode (threshold 0) against OpenCV's rows: x, y, w, h relative to
/// the image, objectness, objectness × class probability. Both list a head's boxes cell by cell,
/// anchors within a cell, heads in cfg order, so row r is box r.
func expectYoloRows(_ net: DarknetNetwork, _ outputs: [Tensor], _ ref: OpenCVReference.Rows, _ image: OpenCVReference.ImageCase) {
    let boxes = net.boxes(outputs: outputs, imageWidth: image.width, imageHeight: image.height, fit: .resize, threshold: 0)
    #expect(boxes.count == ref.count, "\(image.image): \(boxes.count) boxes, OpenCV has \(ref.count) rows")
    guard boxes.count == ref.count else { return }
    var worst: Float = 0, compared = 0, zeroedAbove = 0
    for (r, row) in zip(ref.indices, ref.rows) {
        let b = boxes[r]
        // w and h are exp(raw) · anchor: compare relatively (raw values agree to 1e-3).
        func rel(_ a: Float, _ e: Float) -> Float { abs(a - e) / max(1, abs(e)) }
        worst = max(worst, abs(b.x - row[0]), abs(b.y - row[1]), rel(b.w, row[2]), rel(b.h, row[3]), abs(b.objectness - row[4]))
        // OpenCV zeroes class scores at or below its region layer's default threshold, 0.2, so
        // a zero there only bounds Ocelli's score.
        for (j, p) in row.dropFirst(5).enumerated() {
            if p != 0 {
                worst = max(worst, abs(b.probabilities[j] - p))
                compared += 1
            } else if b.probabilities[j] > 0.2 + 1e-3 {
                zeroedAbove += 1
            }
        }
    }
    #expect(compared > 0 && zeroedAbove == 0, "\(image.image): \(compared) scores compared, \(zeroedAbove) above 0.2 that OpenCV zeroed")
    #expect(worst <= 1e-3, "\(image.image): decoded yolo rows differ by \(worst)")
}

@Suite(.serialized) struct OpenCVParityTests {
    @Test(.enabled(if: TestFiles.realWeightsAvailable, Comment(rawValue: TestFiles.realWeightsReason)))
    func yolov3TinyOnEveryPhoto() throws {
        let net = try DarknetNetwork(cfg: Paths.tinyCfg)
        try net.loadWeights(Paths.tinyWeights)
        net.prepareForInference()  // as `ocelli detect` does; a network that packs on first use agrees bitwise
        let unprepared = try DarknetNetwork(cfg: Paths.tinyCfg)
        try unprepared.loadWeights(Paths.tinyWeights)
        try expectYoloV3TinyParity(net, unprepared: unprepared, OpenCVReference.shared.yolov3_tiny.images)
    }

    /// The real-weights test's paths without the 34 MB file, plus a sample of the decoded [yolo]
    /// rows. Synthetic weights give objectness about 0.5 everywhere, so the fixture records a
    /// threshold per photo that keeps 10 to 40 detections, none of them near a decision (a score
    /// at the threshold, an IoU at the NMS threshold, two overlapping scores nearly tied).
    @Test func yolov3TinyRandomWeights() throws {
        let ref = OpenCVReference.shared.yolov3_tiny_random
        let net = try DarknetNetwork(cfg: Paths.cfg(ref.cfg))
        let weights = syntheticWeights(net)
        #expect(weights.count == ref.weights_bytes)
        try net.loadWeights(weights)
        net.prepareForInference()
        let unprepared = try DarknetNetwork(cfg: Paths.cfg(ref.cfg))
        try unprepared.loadWeights(weights)
        try expectYoloV3TinyParity(net, unprepared: unprepared, ref.images, nmsThreshold: ref.nms_threshold)
    }

    func randomWeights(_ ref: OpenCVReference.Random) throws {
        let net = try DarknetNetwork(cfg: Paths.cfg(ref.cfg))
        let weights = syntheticWeights(net)
        #expect(weights.count == ref.weights_bytes)
        try net.loadWeights(weights)
        let outputs = net.forward(try opencvBlob(Paths.image("dog.jpg"), size: 416))
        expectSampled(outputs[0], ref.head, ref.cfg)
        // The region layer's decoded rows: OpenCV orders them cell-major then anchor; Darknet
        // (and Ocelli) anchor-major then cell.
        guard case .region(let head) = net.heads[0] else { Issue.record("no region head"); return }
        let boxes = net.boxes(outputs: outputs, imageWidth: 416, imageHeight: 416, fit: .resize, threshold: 0)
        let cells = head.gridWidth * head.gridHeight, num = head.anchors.count
        #expect(boxes.count == ref.region_rows.count)
        var worst: Float = 0, compared = 0, suppressed = 0
        for (r, row) in zip(ref.region_rows.indices, ref.region_rows.rows) {
            let b = boxes[(r % num) * cells + r / num]
            // w and h are exp(raw) · anchor: compare relatively (raw values agree to 1e-3).
            func rel(_ a: Float, _ e: Float) -> Float { abs(a - e) / max(1, abs(e)) }
            worst = max(worst, abs(b.x - row[0]), abs(b.y - row[1]), rel(b.w, row[2]), rel(b.h, row[3]), abs(b.objectness - row[4]))
            // OpenCV's region layer also runs NMS (and zeroes scores ≤ the cfg's thresh), so its
            // zeros are not comparable; every score it keeps must equal Ocelli's.
            for (j, p) in row.dropFirst(5).enumerated() {
                if p != 0 {
                    worst = max(worst, abs(b.probabilities[j] - p))
                    compared += 1
                } else if b.probabilities[j] > 0.6 + 1e-3 {
                    suppressed += 1
                }
            }
        }
        // Either scores were compared, or every score OpenCV zeroed is at or below its threshold.
        #expect(compared > 0 || suppressed == 0, "\(ref.cfg): \(suppressed) scores above 0.6 that OpenCV zeroed")
        #expect(worst <= 1e-3, "\(ref.cfg): decoded region rows differ by \(worst)")
    }

    @Test func yolov2TinyVocRandomWeights() throws { try randomWeights(OpenCVReference.shared.yolov2_tiny_voc) }
    @Test func yolov2VocRandomWeights() throws { try randomWeights(OpenCVReference.shared.yolov2_voc) }
}
