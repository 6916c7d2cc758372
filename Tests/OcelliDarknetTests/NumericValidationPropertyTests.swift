import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
@testable import OcelliDarknet

/// Property tests of the validation at the readers' boundary: numbers drawn from the extremes
/// (0, ±1, powers of two around every limit, Int.min/max) and at random, put where a file
/// carries a number. Every reader either reads the file — and then what it built is within its
/// limits — or throws its own error type naming the file. A trap would end the test process.
@Suite struct NumericValidationPropertyTests {
    static let extremes: [Int] = [Int.min, -1 << 40, -65_537, -1, 0, 1, 2, 3, 31, 32, 33, 1023, 1024, 1025, 65_535, 65_536, 65_537,
                                  1 << 28, (1 << 31) - 1, 1 << 31, 1 << 32, 1 << 62, Int.max]

    /// The extremes and `count` random integers of random magnitude, from a fixed seed.
    static func numbers(_ count: Int, seed: UInt64) -> [Int] {
        var g = SeededGenerator(seed: seed)
        return extremes + (0..<count).map { _ in
            let magnitude = Int(g.next() % 63)
            let v = Int(truncatingIfNeeded: g.next() & ((1 << UInt64(magnitude)) - 1))
            return g.next() % 2 == 0 ? v : -v
        }
    }

    @Test func cfgNumbersBuildOrThrowDarknetError() {
        let keys: [(old: String, key: String)] = [
            ("width=64", "width"), ("height=64", "height"), ("channels=3", "channels"), ("filters=8", "filters"),
            ("size=3", "size"), ("stride=1", "stride"), ("pad=1", "padding"), ("filters=16", "groups"),
            ("size=2", "size"), ("stride=2", "stride"), ("classes=10", "classes"), ("num=3", "num"),
            ("filters=45", "filters"), ("mask=0,1,2", "mask"), ("filters=32", "dilation"),
        ]
        var built = 0, refused = 0
        for (k, number) in Self.numbers(40, seed: 16).enumerated() {
            let (old, key) = keys[k % keys.count]
            let text = DarknetTrainingTests.tinyDigitsCfg
            guard let range = text.range(of: old) else { Issue.record("\(old) is not in the cfg"); continue }
            let replacement = key == old.split(separator: "=")[0] ? "\(key)=\(number)" : "\(old)\n\(key)=\(number)"
            do {
                let network = try DarknetNetwork(config: DarknetConfig(text: text.replacingCharacters(in: range, with: replacement), file: "p.cfg"),
                                                 weightLimit: 1 << 24)
                built += 1
                let weights = network.layers.compactMap(\.layer).reduce(0) { $0 + $1.parameterCount }
                #expect(weights <= 1 << 24, "\(key)=\(number): \(weights) weights")
                for info in network.layers {
                    #expect(info.outputShape.allSatisfy { $0 > 0 } && info.outputShape.reduce(1, *) <= 1 << 30, "\(key)=\(number): layer \(info.index) \(info.outputShape)")
                }
            } catch let error as DarknetError {
                refused += 1
                #expect(error.description.hasPrefix("p.cfg"), "\(key)=\(number): \(error)")
            } catch {
                Issue.record("\(key)=\(number): not a DarknetError: \(error)")
            }
        }
        #expect(built > 0 && refused > 0)
    }

    @Test func weightsHeadersAndSizesLoadOrThrow() throws {
        let network = try DarknetNetwork(config: DarknetConfig(text: DarknetTrainingTests.tinyDigitsCfg, file: "p.cfg"))
        let good = network.weightsData()
        var g = SeededGenerator(seed: 5)
        for (k, number) in Self.numbers(30, seed: 6).enumerated() {
            var data = good
            // The major and minor version (32-bit), or a length that is off.
            let v = Int32(truncatingIfNeeded: number)
            switch k % 3 {
            case 0: data.replaceSubrange(0..<4, with: withUnsafeBytes(of: v.littleEndian) { Data($0) })
            case 1: data.replaceSubrange(4..<8, with: withUnsafeBytes(of: v.littleEndian) { Data($0) })
            default: data = data.prefix(Int(g.next() % UInt64(data.count)))
            }
            do { try network.loadWeights(data, file: "p.weights") } catch let error as DarknetError {
                #expect(error.description.hasPrefix("p.weights"), "\(error)")
            }
        }
    }

    @Test func safetensorsShapesAndOffsetsDecodeOrThrow() throws {
        for (k, number) in Self.numbers(40, seed: 7).enumerated() {
            let shape = k % 2 == 0 ? "[\(number), 2]" : "[2, \(number), \(number)]"
            let offsets = k % 3 == 0 ? "[\(number), 8]" : "[0, 8]"
            var header = Array("{\"t\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":\(offsets)}}".utf8)
            while header.count % 8 != 0 { header.append(0x20) }
            let data = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Data($0) } + Data(header) + Data(count: 8)
            do {
                let tensors = try SafeTensors.decode(data, path: "p.safetensors")
                #expect(tensors["t"].map { $0.count * 4 <= 8 } ?? false)
            } catch let error as FileFormatError {
                #expect(error.description.hasPrefix("p.safetensors"), "\(error)")
            }
        }
    }

    @Test func idxDimensionsReadOrThrow() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-idx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let path = folder.appendingPathComponent("x.idx").path
        for number in Self.numbers(30, seed: 8) {
            let d = UInt32(truncatingIfNeeded: number)
            var bytes: [UInt8] = [0, 0, 8, 3]
            for v in [d, 28, d &* 3] { bytes += withUnsafeBytes(of: v.bigEndian) { Array($0) } }
            bytes += [UInt8](repeating: 7, count: 784)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            do {
                let (shape, values) = try IDX.read(path: path)
                #expect(shape.reduce(1, *) == values.count)
            } catch let error as MNISTError {
                #expect(error.description.hasPrefix(path), "\(error)")
            }
        }
    }

    @Test func annotationNumbersReadOrThrow() throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-voc-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        try FileManager.default.createDirectory(at: root.appendingPathComponent("Annotations"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: root.appendingPathComponent("JPEGImages"), withIntermediateDirectories: true)
        try Data(Image(width: 40, height: 30, filledWith: [9, 9, 9]).pngData()).write(to: root.appendingPathComponent("JPEGImages/a.png"))
        let numbers = Self.numbers(30, seed: 9).map { Double($0) } + [1e30, -1e30, 1e308, .nan, .infinity, 0.5, 1e-300]
        for (k, v) in numbers.enumerated() {
            let text = "\(v)"
            let fields = ["40", "30", "2", "3", "20", "25"]
            var f = fields
            f[k % fields.count] = text
            let xml = """
                <annotation><filename>a.png</filename><size><width>\(f[0])</width><height>\(f[1])</height><depth>3</depth></size>
                <object><name>dog</name><bndbox><xmin>\(f[2])</xmin><ymin>\(f[3])</ymin><xmax>\(f[4])</xmax><ymax>\(f[5])</ymax></bndbox></object>
                </annotation>
                """
            try xml.write(to: root.appendingPathComponent("Annotations/a.xml"), atomically: true, encoding: .utf8)
            do {
                let set = try DetectionDataset.load(root, format: .voc)
                for o in set.images.flatMap(\.objects) {
                    #expect(o.xmin >= 0 && o.xmax <= Double(set.images[0].width) + 0.01 && o.xmin <= o.xmax, "\(f): \(o)")
                }
            } catch let error as DatasetError {
                #expect(error.description.contains("a.xml"), "\(error)")
            }
        }
    }
}
