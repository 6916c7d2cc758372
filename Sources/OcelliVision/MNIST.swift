import Foundation
import OcelliTensor
import CZlib

/// Reading gzip files through zlib (inflate with gzip header detection).
public enum Gzip {
    /// The most a file may decompress to (1 GiB; MNIST's largest file is 47 MB).
    public static let maximumSize = 1 << 30

    /// The decompressed bytes of a .gz file (or the bytes themselves if the file is not gzip).
    public static func decompress(_ data: [UInt8], path: String) throws -> [UInt8] {
        guard data.count >= 2, data[0] == 0x1f, data[1] == 0x8b else { return data }
        var stream = z_stream()
        // 15 window bits + 32: detect a gzip or zlib header automatically.
        guard inflateInit2_(&stream, 47, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw MNISTError(path, "zlib could not start inflating")
        }
        defer { inflateEnd(&stream) }
        var out = [UInt8](repeating: 0, count: Swift.max(data.count * 4, 1 << 16))
        var produced = 0
        var status: Int32 = Z_OK
        try data.withUnsafeBufferPointer { input in
            stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress!)
            stream.avail_in = uInt(clamping: input.count)
            repeat {
                if produced == out.count {
                    // A gzip bomb (or a huge file) is an error, not an allocation of everything.
                    guard out.count < Gzip.maximumSize else {
                        throw MNISTError(path, "decompresses to more than \(Gzip.maximumSize >> 20) MiB")
                    }
                    out.append(contentsOf: [UInt8](repeating: 0, count: Swift.min(out.count, Gzip.maximumSize - out.count)))
                }
                try out.withUnsafeMutableBufferPointer { o in
                    stream.next_out = o.baseAddress! + produced
                    stream.avail_out = uInt(o.count - produced)
                    status = inflate(&stream, Z_NO_FLUSH)
                    produced = o.count - Int(stream.avail_out)
                    if status != Z_OK && status != Z_STREAM_END && status != Z_BUF_ERROR {
                        throw MNISTError(path, "corrupt gzip data (zlib status \(status))")
                    }
                }
                if status == Z_BUF_ERROR && stream.avail_in == 0 {
                    throw MNISTError(path, "truncated gzip file (ends after \(produced) decompressed bytes)")
                }
                // A file of several gzip members (`cat a.gz b.gz`) decompresses to their concatenation.
                if status == Z_STREAM_END && stream.avail_in > 0 {
                    guard inflateReset(&stream) == Z_OK else { throw MNISTError(path, "zlib could not start the next gzip member") }
                    status = Z_OK
                }
            } while status != Z_STREAM_END
        }
        return Array(out[0..<produced])
    }
}

/// A data file that does not hold what it should; the message names the file.
public struct MNISTError: Error, CustomStringConvertible {
    public let description: String
    init(_ path: String, _ message: String) { description = "\(path): \(message)" }
}

/// The IDX format of the MNIST files: a big-endian magic (0x0000 0800 | type << 8 | rank), the
/// dimensions as big-endian UInt32, then the values (here: unsigned bytes).
public enum IDX {
    public static func read(path: String) throws -> (shape: [Int], bytes: [UInt8]) {
        let raw: [UInt8]
        do { raw = try FileReading.bytes(atPath: path) } catch { throw MNISTError(path, "cannot read the file: \(error.reason)") }
        let data = try Gzip.decompress(raw, path: path)
        guard data.count >= 4 else { throw MNISTError(path, "too short for an IDX file (\(data.count) bytes)") }
        guard data[0] == 0, data[1] == 0, data[2] == 0x08 else {
            throw MNISTError(path, String(format: "not an IDX file of unsigned bytes (magic %02x%02x%02x%02x)", data[0], data[1], data[2], data[3]))
        }
        let rank = Int(data[3])
        guard data.count >= 4 + 4 * rank else { throw MNISTError(path, "header truncated") }
        let shape = (0..<rank).map { i in (0..<4).reduce(0) { $0 << 8 | Int(data[4 + 4 * i + $1]) } }
        let start = 4 + 4 * rank
        // The header's product, without overflow: it must equal the values the file holds.
        var count = 1
        for d in shape {
            let (c, overflow) = count.multipliedReportingOverflow(by: d)
            guard !overflow, c <= data.count - start else {
                throw MNISTError(path, "holds \(data.count - start) values, its header \(shape) says more")
            }
            count = c
        }
        guard data.count - start == count else {
            throw MNISTError(path, "holds \(data.count - start) values, its header \(shape) says \(count)")
        }
        return (shape, Array(data[start...]))
    }
}

/// MNIST handwritten digits (Y. LeCun, C. Cortes, C. Burges; CC BY-SA 3.0).
public struct MNIST {
    /// Images [N, 28, 28, 1] scaled to [0, 1].
    public let trainImages, testImages: Tensor
    /// Labels [N] as class indices 0…9.
    public let trainLabels, testLabels: Tensor

    /// The folder with the four .gz files: `OCELLI_MNIST_DIR`, else `Data/mnist` of this package.
    public static var defaultDirectory: String {
        if let d = ProcessInfo.processInfo.environment["OCELLI_MNIST_DIR"] { return d }
        return BundledData.directory.appendingPathComponent("mnist").path
    }

    public init(directory: String = MNIST.defaultDirectory) throws {
        func images(_ name: String) throws -> Tensor {
            let path = (directory as NSString).appendingPathComponent(name)
            let (shape, bytes) = try IDX.read(path: path)
            guard shape.count == 3, shape[0] > 0, shape[1] == 28, shape[2] == 28 else {
                throw MNISTError(path, "expected MNIST's images [N, 28, 28] with N ≥ 1, found shape \(shape)")
            }
            return Tensor(shape: [shape[0], shape[1], shape[2], 1], scalars: bytes.map { Float($0) / 255 })
        }
        func labels(_ name: String, count: Int) throws -> Tensor {
            let path = (directory as NSString).appendingPathComponent(name)
            let (shape, bytes) = try IDX.read(path: path)
            guard shape == [count] else { throw MNISTError(path, "expected \(count) labels, found shape \(shape)") }
            guard let bad = bytes.firstIndex(where: { $0 > 9 }) == nil ? nil as Int? : bytes.firstIndex(where: { $0 > 9 }) else {
                return Tensor(shape: [count], scalars: bytes.map(Float.init))
            }
            throw MNISTError(path, "label \(bad) is \(bytes[bad]), not a digit")
        }
        trainImages = try images("train-images-idx3-ubyte.gz")
        testImages = try images("t10k-images-idx3-ubyte.gz")
        trainLabels = try labels("train-labels-idx1-ubyte.gz", count: trainImages.shape[0])
        testLabels = try labels("t10k-labels-idx1-ubyte.gz", count: testImages.shape[0])
    }
}
