#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension Image {
    /// The width and height of the JPEG or PNG file at `path`, read from its header (PNG's IHDR,
    /// JPEG's start-of-frame marker) without decoding pixels. For JPEGs the EXIF orientation is
    /// honoured as `init(contentsOf:)` does: orientations 5...8 swap width and height.
    ///
    /// - Throws: `ImageError` naming the file when it is missing, unreadable, not JPEG or PNG,
    ///   or its header is cut short.
    public static func size(ofFileAt path: String) throws -> (width: Int, height: Int) {
        // Most headers (even with an EXIF thumbnail) fit in the first 64 KB; read the whole
        // file only when the frame header lies further in.
        var bytes = try FileIO.prefix(of: path, count: 1 << 16)
        if let size = try headerSize(bytes, name: path) { return size }
        bytes = try FileIO.contents(of: path)
        if let size = try headerSize(bytes, name: path) { return size }
        throw ImageError(file: path, reason: .truncated(format: "JPEG", detail: "no start-of-frame marker before the end of the file"))
    }

    /// The size announced by a file's first bytes; nil when `bytes` stop before it (read more).
    static func headerSize(_ bytes: [UInt8], name: String) throws -> (width: Int, height: Int)? {
        guard !bytes.isEmpty else { throw ImageError(file: name, reason: .emptyFile) }
        func u16(_ i: Int) -> Int { Int(bytes[i]) << 8 | Int(bytes[i + 1]) }
        func u32(_ i: Int) -> Int { u16(i) << 16 | u16(i + 2) }
        switch ImageFormat.detect(bytes) {
        case .png:
            // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4).
            guard bytes.count >= 24 else { throw ImageError(file: name, reason: .truncated(format: "PNG", detail: "the file ends inside the IHDR header")) }
            guard bytes[12] == 0x49, bytes[13] == 0x48, bytes[14] == 0x44, bytes[15] == 0x52 else {
                throw ImageError(file: name, reason: .corrupt(format: "PNG", detail: "the first chunk is not IHDR"))
            }
            return (u32(16), u32(20))
        case .jpeg:
            var i = 2
            while i + 4 <= bytes.count {
                guard bytes[i] == 0xFF else {
                    throw ImageError(file: name, reason: .corrupt(format: "JPEG", detail: "no marker at byte \(i) of the header"))
                }
                let marker = bytes[i + 1]
                if marker == 0xFF { i += 1; continue }
                if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
                if marker == 0xDA || marker == 0xD9 {
                    throw ImageError(file: name, reason: .corrupt(format: "JPEG", detail: "no start-of-frame marker before the image data"))
                }
                let length = u16(i + 2)
                // SOF0...SOF15 except DHT (C4), JPG (C8) and DAC (CC): precision, height, width.
                if (0xC0...0xCF).contains(marker) && marker != 0xC4 && marker != 0xC8 && marker != 0xCC {
                    guard i + 9 <= bytes.count else { return nil }
                    let height = u16(i + 5), width = u16(i + 7)
                    let orientation = JPEGCodec.exifOrientation(Array(bytes[0..<i]))
                    return orientation.rawValue >= 5 ? (height, width) : (width, height)
                }
                guard length >= 2 else {
                    throw ImageError(file: name, reason: .corrupt(format: "JPEG", detail: "marker segment of length \(length)"))
                }
                i += 2 + length
            }
            return nil
        case nil:
            throw ImageError(file: name, reason: .unknownFormat(leadingBytes: Array(bytes.prefix(8))))
        }
    }
}
