import Foundation
import OcelliTensor

/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping names to
/// dtype, shape and byte offsets, then the raw little-endian data (readable by PyTorch, Keras, MLX).
public enum SafeTensors {
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]]
            offset += t.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces to align the data
        var data = Data()
        data.reserveCapacity(8 + json.count + offset)
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, t) in tensors {
            t.scalars.withUnsafeBufferPointer { p in
                if 1.littleEndian == 1 {
                    data.append(UnsafeRawBufferPointer(p).bindMemory(to: UInt8.self))   // already little-endian
                } else {
                    for v in p { var b = v.bitPattern.littleEndian; withUnsafeBytes(of: &b) { data.append(contentsOf: $0) } }
                }
            }
        }
        return data
    }

    /// The `__metadata__` strings of the safetensors file at `path`, reading only its header; nil
    /// if the file is missing or not safetensors.
    public static func metadata(atPath path: String) -> [String: String]? {
        guard let handle = FileHandle(forReadingAtPath: path) else { return nil }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 8), head.count == 8 else { return nil }
        let n = head.enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= 100_000_000, let json = try? handle.read(upToCount: Int(n)), json.count == Int(n),
              let header = try? JSONSerialization.jsonObject(with: json) as? [String: Any] else { return nil }
        return metadataStrings(header)
    }

    /// The string values of a header's `__metadata__`.
    private static func metadataStrings(_ header: [String: Any]) -> [String: String] {
        (header["__metadata__"] as? [String: Any] ?? [:]).compactMapValues { $0 as? String }
    }

    public static func decode(_ data: Data, path: String) throws -> [String: Tensor] {
        try decodeWithMetadata(data, path: path).tensors
    }

    /// The tensors and the `__metadata__` strings of a safetensors file.
    public static func decodeWithMetadata(_ data: Data, path: String) throws -> (tensors: [String: Tensor], metadata: [String: String]) {
        guard data.count >= 8 else { throw FileFormatError(path, "too short for a safetensors file (\(data.count) bytes)") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8) else {
            throw FileFormatError(path, "header length \(n) exceeds the file size \(data.count)")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(n)))
        let parsed: Any
        do { parsed = try JSONSerialization.jsonObject(with: headerData) } catch {
            throw FileFormatError(path, "the safetensors header is not valid JSON: \(jsonErrorPosition(error))")
        }
        guard let header = parsed as? [String: Any] else {
            throw FileFormatError(path, "the safetensors header is not a JSON object")
        }
        let base = 8 + Int(n)
        var out: [String: Tensor] = [:]
        var ranges: [(start: Int, end: Int, name: String)] = []
        for (name, v) in header where name != "__metadata__" {
            guard let d = v as? [String: Any], let dtype = d["dtype"] as? String, let shape = d["shape"] as? [Int],
                  let offs = d["data_offsets"] as? [Int], offs.count == 2 else {
                throw FileFormatError(path, "tensor '\(name)' has a malformed header entry")
            }
            guard dtype == "F32" else { throw FileFormatError(path, "tensor '\(name)' has dtype \(dtype); only F32 is supported") }
            // Sizes from the file are checked before any arithmetic on them.
            var count = 1
            for d in shape {
                let (c, overflow) = count.multipliedReportingOverflow(by: d)
                guard d >= 0, !overflow, c <= data.count / 4 else {
                    throw FileFormatError(path, "tensor '\(name)' has shape \(shape): more values than the \(data.count)-byte file holds")
                }
                count = c
            }
            guard offs[0] >= 0, offs[1] >= offs[0], offs[1] <= data.count - base, offs[1] - offs[0] == count * 4 else {
                throw FileFormatError(path, "tensor '\(name)' of shape \(shape) has data offsets \(offs) that do not fit \(count * 4) bytes in a \(data.count)-byte file (truncated?)")
            }
            ranges.append((offs[0], offs[1], name))
            var scalars = [Float](repeating: 0, count: count)
            data.withUnsafeBytes { raw in
                for i in 0..<count {
                    scalars[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: base + offs[0] + 4 * i, as: UInt32.self)))
                }
            }
            out[name] = Tensor(shape: shape, scalars: scalars)
        }
        // The format's rule: the tensors' data do not overlap (each byte belongs to one tensor).
        ranges.sort { ($0.start, $0.end) < ($1.start, $1.end) }
        for (a, b) in zip(ranges, ranges.dropFirst()) where b.start < a.end {
            throw FileFormatError(path, "tensors '\(a.name)' (bytes \(a.start)..<\(a.end)) and '\(b.name)' (bytes \(b.start)..<\(b.end)) overlap")
        }
        return (out, metadataStrings(header))
    }
}
