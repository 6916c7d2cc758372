import Foundation
import OcelliVision
import OcelliTestSupport

/// Where the test inputs live: `Fixtures/` beside this file (made by
/// Scripts/make_vision_fixtures.py) and Darknet's photos in `<repo>/Data/images`.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    static func sharedImage(_ name: String) -> String { TestFiles.image(name) }

    static func json<T: Decodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONDecoder().decode(T.self, from: data)
    }

    static func bytes(base64 text: String) -> [UInt8] { [UInt8](Data(base64Encoded: text)!) }

    /// A fresh directory for files a test writes; removed by the caller.
    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("ocelli-vision-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// zlib's CRC-32 (polynomial 0xEDB88320), as Python's `zlib.crc32`.
enum CRC32 {
    static let table: [UInt32] = (0..<256).map { n in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes { crc = table[Int((crc ^ UInt32(b)) & 0xFF)] ^ (crc >> 8) }
        return crc ^ 0xFFFF_FFFF
    }

    static func checksum(_ bytes: [UInt8]) -> UInt32 { bytes.withUnsafeBytes { checksum($0) } }
    /// Of the Floats' little-endian bytes (numpy's float32 `tobytes()` on this machine).
    static func checksum(_ floats: [Float]) -> UInt32 { floats.withUnsafeBytes { checksum($0) } }
}

/// Where two byte buffers first differ, for failure messages.
func firstDifference(_ a: [UInt8], _ b: [UInt8], channels: Int, width: Int) -> String {
    guard a.count == b.count else { return "sizes differ: \(a.count) vs \(b.count)" }
    guard let i = a.indices.first(where: { a[$0] != b[$0] }) else { return "equal" }
    let maxDiff = zip(a, b).map { abs(Int($0) - Int($1)) }.max()!
    let count = zip(a, b).filter { $0 != $1 }.count
    let pixel = i / channels
    return "first difference at x \(pixel % width), y \(pixel / width), channel \(i % channels): \(a[i]) vs \(b[i]); "
        + "\(count) bytes differ, by at most \(maxDiff)"
}
