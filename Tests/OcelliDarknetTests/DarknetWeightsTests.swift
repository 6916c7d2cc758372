import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

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
