import CZlib

/// A minimal PNG writer for generated data sets: 8-bit gray/RGB/RGBA, every row with the Sub
/// filter, one IDAT chunk deflated by zlib at `level`. The general encoder
/// (`Image.pngData()`, libpng's simplified API) runs the compressor twice — once to measure —
/// at libpng's default level with adaptive filtering; for thousands of noisy 256x256 scenes
/// that is most of the generation time. Files written here decode like any other PNG.
enum PNGWriter {
    static func encode(_ image: Image, level: Int32 = 1) throws -> [UInt8] {
        let w = image.width, h = image.height, c = image.channels
        precondition(w > 0 && h > 0, "PNGWriter: empty image")
        // Filtered scanlines: a filter byte (1 = Sub), then each byte minus the one a pixel to its left.
        let rowBytes = w * c
        var raw = [UInt8](repeating: 0, count: h * (rowBytes + 1))
        raw.withUnsafeMutableBufferPointer { out in
            image.pixels.withUnsafeBufferPointer { px in
                for y in 0..<h {
                    let src = px.baseAddress! + y * rowBytes, dst = out.baseAddress! + y * (rowBytes + 1)
                    dst[0] = 1
                    for i in 0..<c { dst[1 + i] = src[i] }
                    for i in c..<rowBytes { dst[1 + i] = src[i] &- src[i - c] }
                }
            }
        }
        var compressedSize = compressBound(uLong(raw.count))
        var compressed = [UInt8](repeating: 0, count: Int(compressedSize))
        let status = compress2(&compressed, &compressedSize, raw, uLong(raw.count), level)
        guard status == Z_OK else {
            throw ImageError(file: "<png data>", reason: .encodingFailed(format: "PNG", detail: "zlib status \(status)"))
        }
        compressed.removeSubrange(Int(compressedSize)...)

        var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        func be32(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 0xFF), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        func chunk(_ type: String, _ body: [UInt8]) {
            let tagged = Array(type.utf8) + body
            png += be32(body.count) + tagged
            let crc = tagged.withUnsafeBufferPointer { crc32(0, $0.baseAddress, uInt($0.count)) }
            png += be32(Int(crc))
        }
        let colorType: UInt8 = c == 1 ? 0 : (c == 3 ? 2 : 6)
        chunk("IHDR", be32(w) + be32(h) + [8, colorType, 0, 0, 0])
        chunk("IDAT", compressed)
        chunk("IEND", [])
        return png
    }
}
