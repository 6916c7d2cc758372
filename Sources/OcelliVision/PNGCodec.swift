import CPNG

/// PNG through libpng's simplified API (`png_image_*`), which reports errors in
/// `png_image.message` and returns, so no setjmp is needed on our side.
enum PNGCodec {
    static let maximumBytes = 1 << 31
    // png.h's composite format macros are not imported into Swift.
    static let formatGray: UInt32 = 0  // PNG_FORMAT_GRAY
    static let formatRGB = UInt32(PNG_FORMAT_FLAG_COLOR)
    static let formatRGBA = UInt32(PNG_FORMAT_FLAG_COLOR) | UInt32(PNG_FORMAT_FLAG_ALPHA)

    /// libpng's message from a failed call.
    private static func message(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { raw in
            let bytes = raw.bindMemory(to: UInt8.self)
            let end = bytes.firstIndex(of: 0) ?? bytes.count
            return String(decoding: bytes[..<end], as: UTF8.self)
        }
    }

    /// Whether the chunk sequence runs off the end of the data before IEND: tells a truncated
    /// file from a damaged one when libpng fails.
    static func isTruncated(_ bytes: [UInt8]) -> Bool {
        var i = 8
        while i + 8 <= bytes.count {
            let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let type = (bytes[i + 4], bytes[i + 5], bytes[i + 6], bytes[i + 7])
            if i + 12 + length > bytes.count { return true }
            if type == (0x49, 0x45, 0x4E, 0x44) { return false }  // "IEND"
            i += 12 + length
        }
        return true
    }

    /// The colour-management chunks: gAMA, cHRM, sRGB, iCCP, cICP, mDCV, cLLI.
    private static let colorChunks: Set<UInt32> = ["gAMA", "cHRM", "sRGB", "iCCP", "cICP", "mDCV", "cLLI"].map {
        $0.utf8.reduce(0) { $0 << 8 | UInt32($1) }
    }.reduce(into: []) { $0.insert($1) }

    /// The file without its colour-management chunks, or nil when it has none (or its chunk
    /// list is damaged; libpng then reports the damage). The simplified API would otherwise
    /// apply a gAMA chunk's curve, converting e.g. a linear (gamma 1.0) file to sRGB; OpenCV,
    /// Pillow and training pipelines take the stored samples as they are, and so do we.
    static func withoutColorManagement(_ bytes: [UInt8]) -> [UInt8]? {
        var i = 8
        var drop: [Range<Int>] = []
        while i + 12 <= bytes.count {
            let length = Int(bytes[i]) << 24 | Int(bytes[i + 1]) << 16 | Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            let type = UInt32(bytes[i + 4]) << 24 | UInt32(bytes[i + 5]) << 16 | UInt32(bytes[i + 6]) << 8 | UInt32(bytes[i + 7])
            let end = i + 12 + length
            guard length >= 0, end <= bytes.count else { break }
            if colorChunks.contains(type) { drop.append(i..<end) }
            if type == 0x4945_4E44 { break }  // IEND
            i = end
        }
        guard !drop.isEmpty else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(bytes.count)
        var start = 0
        for range in drop {
            out += bytes[start..<range.lowerBound]
            start = range.upperBound
        }
        out += bytes[start...]
        return out
    }

    /// Decodes to 1 channel (gray), 3 (RGB) or 4 (RGBA: colour or gray with alpha or tRNS),
    /// sample values as stored (colour-management chunks ignored).
    static func decode(_ bytes: [UInt8], name: String) throws -> Image {
        if let plain = withoutColorManagement(bytes) { return try decodeSamples(plain, name: name) }
        return try decodeSamples(bytes, name: name)
    }

    private static func decodeSamples(_ bytes: [UInt8], name: String) throws -> Image {
        func failure(_ detail: String) -> ImageError {
            isTruncated(bytes)
                ? ImageError(file: name, reason: .truncated(format: "PNG", detail: detail))
                : ImageError(file: name, reason: .corrupt(format: "PNG", detail: detail))
        }
        return try bytes.withUnsafeBytes { data in
            var image = png_image()
            image.version = UInt32(PNG_IMAGE_VERSION)
            defer { png_image_free(&image) }
            guard png_image_begin_read_from_memory(&image, data.baseAddress, data.count) != 0 else {
                throw failure(message(&image))
            }
            let hasColor = image.format & UInt32(PNG_FORMAT_FLAG_COLOR) != 0
            let hasAlpha = image.format & UInt32(PNG_FORMAT_FLAG_ALPHA) != 0
            let channels: Int
            switch (hasColor, hasAlpha) {
            case (false, false):
                image.format = formatGray; channels = 1
            case (true, false):
                image.format = formatRGB; channels = 3
            default:  // RGBA, and gray+alpha expanded to RGBA: Image has no 2-channel layout
                image.format = formatRGBA; channels = 4
            }
            // Without this flag libpng takes (untagged) 16-bit data as linear light and applies
            // the sRGB curve when reducing it to 8 bits; every other reader keeps the values.
            image.flags |= UInt32(PNG_IMAGE_FLAG_16BIT_sRGB)
            let width = Int(image.width), height = Int(image.height)
            let stride = width * channels
            let count = stride * height  // PNG_IMAGE_SIZE for 8-bit components
            guard count <= maximumBytes else {
                throw ImageError(file: name, reason: .unsupported(
                    format: "PNG", detail: "\(width)x\(height) pixels is larger than this decoder accepts"))
            }
            var ok: Int32 = 0
            let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                ok = png_image_finish_read(&image, nil, buffer.baseAddress, Int32(stride), nil)
                initialized = ok != 0 ? count : 0
            }
            guard ok != 0 else { throw failure(message(&image)) }
            return Image(width: width, height: height, channels: channels, pixels: pixels)
        }
    }

    /// Encodes 1 (gray), 3 (RGB) or 4 (RGBA) channels as an 8-bit PNG: libpng's default zlib level
    /// and adaptive filters, or with `compression: .fast` libpng's fast setting (no filters, a low
    /// zlib level: larger files written several times faster, for files read back by programs).
    static func encode(_ image: Image, compression: PNGCompression = .default, name: String) throws -> [UInt8] {
        guard image.width > 0 && image.height > 0 else {
            throw ImageError(file: name, reason: .encodingFailed(format: "PNG", detail: "the image is empty (\(image.width)x\(image.height))"))
        }
        func makeInfo() -> png_image {
            var info = png_image()
            info.version = UInt32(PNG_IMAGE_VERSION)
            if compression == .fast { info.flags |= UInt32(PNG_IMAGE_FLAG_FAST) }
            info.width = UInt32(image.width)
            info.height = UInt32(image.height)
            switch image.channels {
            case 1: info.format = formatGray
            case 3: info.format = formatRGB
            default: info.format = formatRGBA
            }
            return info
        }
        var info = makeInfo()
        let stride = Int32(image.width * image.channels)
        return try image.pixels.withUnsafeBufferPointer { pixels in
            // One compression pass into a buffer of zlib's worst-case size (raw rows plus the
            // filter byte, deflate's stored-block overhead, chunk headers); libpng reports the
            // size it needs if that were ever too small, and the second call then writes it.
            let raw = (image.width * image.channels + 1) * image.height
            var capacity = raw + raw / 4096 + raw / 16384 + 12 * (raw / 8192 + 1) + 4096
            for _ in 0..<2 {
                var written = capacity
                var ok: Int32 = 0
                let bytes = [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
                    ok = png_image_write_to_memory(&info, buffer.baseAddress, &written, 0, pixels.baseAddress, stride, nil)
                    initialized = ok != 0 ? written : 0
                }
                if ok != 0 { return bytes }
                guard written > capacity else { break }
                capacity = written
                info = makeInfo()
            }
            throw ImageError(file: name, reason: .encodingFailed(format: "PNG", detail: message(&info)))
        }
    }
}
