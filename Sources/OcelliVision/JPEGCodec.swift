import COcelliJPEG

/// JPEG through libjpeg-turbo, behind the setjmp wrappers of COcelliJPEG.
enum JPEGCodec {
    /// Larger images are refused rather than allocated (a damaged header can claim 65535²).
    static let maximumBytes = 1 << 31

    private static func failure(_ status: ocelli_jpeg_status, _ message: String, name: String) -> ImageError {
        let detail = message.isEmpty ? "libjpeg gave no message" : message
        switch status {
        case OCELLI_JPEG_TRUNCATED:
            return ImageError(file: name, reason: .truncated(format: "JPEG", detail: detail))
        case OCELLI_JPEG_UNSUPPORTED:
            return ImageError(file: name, reason: .unsupported(format: "JPEG", detail: detail))
        case OCELLI_JPEG_OUT_OF_MEMORY:
            return ImageError(file: name, reason: .unsupported(format: "JPEG", detail: "out of memory: \(detail)"))
        default:
            return ImageError(file: name, reason: .corrupt(format: "JPEG", detail: detail))
        }
    }

    /// Decodes to 1 (gray) or 3 (RGB) channels, without applying the EXIF orientation.
    static func decode(_ bytes: [UInt8], name: String) throws -> Image {
        guard let decoder = ocelli_jpeg_decoder_create() else {
            throw ImageError(file: name, reason: .unsupported(format: "JPEG", detail: "out of memory"))
        }
        defer { ocelli_jpeg_decoder_destroy(decoder) }
        func message() -> String { String(cString: ocelli_jpeg_decoder_message(decoder)) }

        return try bytes.withUnsafeBufferPointer { data in
            var w: Int32 = 0, h: Int32 = 0, c: Int32 = 0
            let status = ocelli_jpeg_read_header(decoder, data.baseAddress, data.count, &w, &h, &c)
            guard status == OCELLI_JPEG_OK else { throw failure(status, message(), name: name) }
            let width = Int(w), height = Int(h), channels = Int(c)
            let count = width * height * channels
            guard count <= maximumBytes else {
                throw ImageError(file: name, reason: .unsupported(
                    format: "JPEG", detail: "\(width)x\(height) pixels is larger than this decoder accepts"))
            }
            var pixelStatus = OCELLI_JPEG_OK
            let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
                pixelStatus = ocelli_jpeg_read_pixels(decoder, buffer.baseAddress, width * channels)
                initialized = pixelStatus == OCELLI_JPEG_OK ? count : 0
            }
            guard pixelStatus == OCELLI_JPEG_OK else { throw failure(pixelStatus, message(), name: name) }
            return Image(width: width, height: height, channels: channels, pixels: pixels)
        }
    }

    /// Encodes 1 (gray), 3 (RGB) or 4 (RGBA; alpha dropped) channels at `quality` 1...100.
    static func encode(_ image: Image, quality: Int, name: String) throws -> [UInt8] {
        precondition((1...100).contains(quality), "jpegData: quality must be in 1...100, got \(quality)")
        guard image.width > 0 && image.height > 0 else {
            throw ImageError(file: name, reason: .encodingFailed(format: "JPEG", detail: "the image is empty (\(image.width)x\(image.height))"))
        }
        var output: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 200)
        let status = image.pixels.withUnsafeBufferPointer { pixels in
            ocelli_jpeg_encode(pixels.baseAddress, Int32(image.width), Int32(image.height), Int32(image.channels),
                               image.width * image.channels, Int32(quality), &output, &size, &message)
        }
        guard status == OCELLI_JPEG_OK, let output else {
            let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw ImageError(file: name, reason: .encodingFailed(format: "JPEG", detail: text))
        }
        defer { ocelli_jpeg_free(output) }
        return Array(UnsafeBufferPointer(start: output, count: size))
    }

    // MARK: EXIF

    /// The orientation stored in the JPEG's Exif APP1 segment (tag 0x0112 of IFD0), or `.up`
    /// when there is none or it cannot be read. Only the markers before the first scan are looked at.
    static func exifOrientation(_ bytes: [UInt8]) -> Image.Orientation {
        let n = bytes.count
        var i = 2  // after SOI
        while i + 4 <= n {
            guard bytes[i] == 0xFF else { return .up }
            let marker = bytes[i + 1]
            if marker == 0xFF { i += 1; continue }  // fill byte
            if marker == 0xD8 || marker == 0x01 || (0xD0...0xD7).contains(marker) { i += 2; continue }
            if marker == 0xDA || marker == 0xD9 { return .up }  // start of scan / end of image
            let length = Int(bytes[i + 2]) << 8 | Int(bytes[i + 3])
            guard length >= 2, i + 2 + length <= n else { return .up }
            if marker == 0xE1, let o = orientation(inExif: bytes, start: i + 4, end: i + 2 + length) {
                return o
            }
            i += 2 + length
        }
        return .up
    }

    /// Reads the orientation tag from an APP1 payload `bytes[start..<end]` ("Exif\0\0" + TIFF).
    private static func orientation(inExif bytes: [UInt8], start: Int, end: Int) -> Image.Orientation? {
        let exifHeader: [UInt8] = [0x45, 0x78, 0x69, 0x66, 0, 0]
        guard end - start >= 6 + 8, Array(bytes[start..<start + 6]) == exifHeader else { return nil }
        let tiff = start + 6
        let little: Bool
        switch (bytes[tiff], bytes[tiff + 1]) {
        case (0x49, 0x49): little = true
        case (0x4D, 0x4D): little = false
        default: return nil
        }
        func u16(_ p: Int) -> Int? {
            guard p >= tiff, p + 2 <= end else { return nil }
            return little ? Int(bytes[p]) | Int(bytes[p + 1]) << 8 : Int(bytes[p]) << 8 | Int(bytes[p + 1])
        }
        func u32(_ p: Int) -> Int? {
            guard let a = u16(p), let b = u16(p + 2) else { return nil }
            return little ? a | b << 16 : a << 16 | b
        }
        guard u16(tiff + 2) == 42, let ifd = u32(tiff + 4), let entries = u16(tiff + ifd) else { return nil }
        for e in 0..<entries {
            let entry = tiff + ifd + 2 + 12 * e
            guard let tag = u16(entry) else { return nil }
            if tag == 0x0112 {
                // Type SHORT (3), count 1: the value sits in the first two bytes of the value field.
                guard u16(entry + 2) == 3, let value = u16(entry + 8) else { return nil }
                return Image.Orientation(rawValue: value)
            }
        }
        return nil
    }
}
