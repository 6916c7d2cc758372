import Foundation
import OcelliNN
import OcelliTensor

/// The header of a Darknet `.weights` file.
public struct DarknetWeightsHeader: Equatable, Sendable {
    public var major: Int32
    public var minor: Int32
    public var revision: Int32
    /// Images seen in training.
    public var seen: UInt64

    /// Darknet stores `seen` as a 64-bit size_t from version 0.2 on, as a 32-bit int before.
    public var seenIs64Bit: Bool { (Int(major) * 10 + Int(minor)) >= 2 && major < 1000 && minor < 1000 }
    /// Old files (major or minor > 1000) store `[connected]` weights transposed.
    public var connectedTransposed: Bool { major > 1000 || minor > 1000 }
    public var byteCount: Int { 12 + (seenIs64Bit ? 8 : 4) }

    public init(major: Int32 = 0, minor: Int32 = 2, revision: Int32 = 0, seen: UInt64 = 0) {
        self.major = major; self.minor = minor; self.revision = revision; self.seen = seen
    }
}

extension DarknetNetwork {
    /// The number of floats the network's weights file holds after the header.
    public var weightsFloatCount: Int {
        weightedLayers.reduce(0) { $0 + $1.layer.parameterCount }
    }

    /// Loads a Darknet `.weights` file: header, then each `[convolutional]` layer's biases, (if
    /// batch-normalised) scales, rolling mean, rolling variance, then its OIHW kernel (transposed here
    /// to HWIO); each `[connected]` layer's biases, weights [outputs][inputs] (rows permuted from
    /// Darknet's C,H,W flattening to Ocelli's H,W,C), then its batch-norm values.
    ///
    /// The file size must equal the header plus exactly the cfg's parameters; otherwise the error
    /// states the expected and found bytes.
    @discardableResult
    public func loadWeights(_ path: String) throws -> DarknetWeightsHeader {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: path)) } catch {
            throw DarknetError(file: path, "cannot read the weights file: \(error.reason)")
        }
        return try loadWeights(data, file: path)
    }

    @discardableResult
    public func loadWeights(_ data: Data, file: String = "<weights>") throws -> DarknetWeightsHeader {
        try loadWeights(data, file: file, partial: false).header
    }

    /// Loads a weights file that may hold only the first layers (a backbone: `darknet53.conv.74`,
    /// what `ocelli partial` writes): every layer the file covers completely is loaded, the others
    /// keep their values (Darknet's `load_weights_upto`). A file that ends inside a layer, or holds
    /// more than the cfg needs, is an error. Returns the header and the number of layers loaded.
    @discardableResult
    public func loadWeights(_ path: String, partial: Bool) throws -> (header: DarknetWeightsHeader, layers: Int) {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: path)) } catch {
            throw DarknetError(file: path, "cannot read the weights file: \(error.reason)")
        }
        return try loadWeights(data, file: path, partial: partial)
    }

    func loadWeights(_ data: Data, file: String, partial: Bool) throws -> (header: DarknetWeightsHeader, layers: Int) {
        guard data.count >= 16 else {
            throw DarknetError(file: file, "\(data.count) bytes is too short for a Darknet weights header (at least 16 bytes)")
        }
        func int32(_ offset: Int) -> Int32 { data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: offset, as: Int32.self) } }
        var header = DarknetWeightsHeader(major: int32(0), minor: int32(4), revision: int32(8))
        guard data.count >= header.byteCount else {
            throw DarknetError(file: file, "\(data.count) bytes is too short for the version \(header.major).\(header.minor) header (\(header.byteCount) bytes)")
        }
        header.seen = header.seenIs64Bit
            ? data.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 12, as: UInt64.self) }
            : UInt64(UInt32(bitPattern: int32(12)))
        let expected = header.byteCount + 4 * weightsFloatCount
        // With `partial`, the layers the file covers: the file must end where a layer ends.
        var count = weightedLayers.count
        if partial && data.count < expected {
            var end = header.byteCount
            count = 0
            for (_, layer) in weightedLayers {
                guard end + 4 * layer.parameterCount <= data.count else { break }
                end += 4 * layer.parameterCount
                count += 1
            }
            guard end == data.count else {
                throw DarknetError(file: file, "the file ends inside layer \(weightedLayers[count].index) of \(config.file): \(data.count) bytes, the first \(count) weighted layers end at \(end)")
            }
        } else if data.count != expected {
            let what = data.count < expected ? "truncated" : "too long"
            throw DarknetError(file: file, "\(what): the cfg \(config.file) needs \(expected) bytes (a \(header.byteCount)-byte header and \(weightsFloatCount) floats for \(weightedLayers.count) layers), the file has \(data.count) bytes")
        }
        // NaN or infinite values (a damaged file, random bytes, a diverged training) are an error
        // naming the layer, before anything is assigned.
        var scan = header.byteCount
        for (index, layer) in weightedLayers.prefix(count) {
            let n = layer.parameterCount
            let bad = data.withUnsafeBytes { raw -> Int in
                var k = 0
                for i in 0..<n where !Float(bitPattern: raw.loadUnaligned(fromByteOffset: scan + 4 * i, as: UInt32.self)).isFinite { k += 1 }
                return k
            }
            guard bad == 0 else {
                throw DarknetError(file: file, "layer \(index) (\(layers[index].type)) has \(bad) NaN or infinite values of \(n): the file is damaged, not weights for \(config.file), or from a training that diverged")
            }
            scan += 4 * n
        }
        var offset = header.byteCount
        func floats(_ n: Int) -> [Float] {
            let out = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
                data.withUnsafeBytes { raw in
                    _ = memcpy(buf.baseAddress!, raw.baseAddress! + offset, 4 * n)
                }
                initialized = n
            }
            offset += 4 * n
            return out
        }
        for (index, layer) in weightedLayers.prefix(count) {
            if let conv = layer as? DarknetConvolutional {
                let n = conv.filters
                let k = conv.kernel.shape     // [size, size, cg, n]
                conv.biases.assign(Tensor(floats(n)))
                for p in conv.batchNorm?.all ?? [] { p.assign(Tensor(floats(n))) }
                let oihw = floats(k.reduce(1, *))
                conv.kernel.assign(Tensor(shape: k, scalars: DarknetNetwork.hwio(fromOIHW: oihw, shape: k)))
            } else if let fc = layer as? DarknetConnected {
                let inputs = fc.kernel.shape[0], outputs = fc.outputs
                fc.biases.assign(Tensor(floats(outputs)))
                let w = floats(inputs * outputs)
                let inShape = layers[index].inputShape
                fc.kernel.assign(Tensor(shape: [inputs, outputs],
                                        scalars: DarknetNetwork.connectedKernel(fromDarknet: w, input: inShape, outputs: outputs,
                                                                                transposed: header.connectedTransposed)))
                for p in fc.batchNorm?.all ?? [] { p.assign(Tensor(floats(outputs))) }
            }
        }
        seen = header.seen
        return (header, count)
    }

    /// The weights file bytes for the current parameters (the inverse of `loadWeights`); with
    /// `upTo`, only the layers before that Darknet layer index (Darknet's `save_weights_upto`).
    public func weightsData(header: DarknetWeightsHeader = DarknetWeightsHeader(), upTo: Int? = nil) -> Data {
        var h = header
        h.seen = seen
        var out = Data(capacity: h.byteCount + 4 * weightsFloatCount)
        func append<T>(_ v: T) { withUnsafeBytes(of: v) { out.append(contentsOf: $0) } }
        func append(_ fs: [Float]) { fs.withUnsafeBytes { out.append(contentsOf: $0) } }
        append(h.major); append(h.minor); append(h.revision)
        if h.seenIs64Bit { append(h.seen) } else { append(UInt32(truncatingIfNeeded: h.seen)) }
        for (index, layer) in weightedLayers where index < (upTo ?? Int.max) {
            if let conv = layer as? DarknetConvolutional {
                append(conv.biases.value.scalars)
                for p in conv.batchNorm?.all ?? [] { append(p.value.scalars) }
                append(DarknetNetwork.oihw(fromHWIO: conv.kernel.value.scalars, shape: conv.kernel.shape))
            } else if let fc = layer as? DarknetConnected {
                append(fc.biases.value.scalars)
                append(DarknetNetwork.darknetConnected(fromKernel: fc.kernel.value.scalars, input: layers[index].inputShape,
                                                       outputs: fc.outputs, transposed: h.connectedTransposed))
                for p in fc.batchNorm?.all ?? [] { append(p.value.scalars) }
            }
        }
        return out
    }

    /// Writes the weights atomically (a temporary file renamed over `path`).
    public func saveWeights(_ path: String, header: DarknetWeightsHeader = DarknetWeightsHeader(), upTo: Int? = nil) throws {
        do { try writeAtomically(weightsData(header: header, upTo: upTo), to: path) } catch let e as FileFormatError {
            throw DarknetError(file: path, "cannot write the weights: \(e.description.dropFirst(path.count + 2))")
        }
    }

    // MARK: Layouts

    /// OIHW (Darknet) → HWIO (Ocelli) for a kernel of HWIO shape `k`.
    static func hwio(fromOIHW w: [Float], shape k: [Int]) -> [Float] {
        Tensor(shape: [k[3], k[2], k[0], k[1]], scalars: w).permuted([2, 3, 1, 0]).scalars
    }

    /// HWIO → OIHW.
    static func oihw(fromHWIO w: [Float], shape k: [Int]) -> [Float] {
        Tensor(shape: k, scalars: w).permuted([3, 2, 0, 1]).scalars
    }

    /// The Ocelli row (H, W, C flattening) of Darknet's input `d` (C, H, W flattening).
    static func hwcRow(_ d: Int, input s: [Int]) -> Int {
        let (h, w, c) = (s[0], s[1], s[2])
        let ch = d / (h * w), rest = d % (h * w)
        return rest * c + ch
    }

    /// Darknet's [outputs][inputs] (or [inputs][outputs] when transposed) → Ocelli's [inputs, outputs].
    static func connectedKernel(fromDarknet w: [Float], input s: [Int], outputs: Int, transposed: Bool) -> [Float] {
        let inputs = w.count / outputs
        var out = [Float](repeating: 0, count: w.count)
        for d in 0..<inputs {
            let r = hwcRow(d, input: s)
            for o in 0..<outputs { out[r * outputs + o] = transposed ? w[d * outputs + o] : w[o * inputs + d] }
        }
        return out
    }

    static func darknetConnected(fromKernel k: [Float], input s: [Int], outputs: Int, transposed: Bool) -> [Float] {
        let inputs = k.count / outputs
        var out = [Float](repeating: 0, count: k.count)
        for d in 0..<inputs {
            let r = hwcRow(d, input: s)
            for o in 0..<outputs {
                if transposed { out[d * outputs + o] = k[r * outputs + o] } else { out[o * inputs + d] = k[r * outputs + o] }
            }
        }
        return out
    }
}
