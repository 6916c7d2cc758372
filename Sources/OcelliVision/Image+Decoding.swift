/// The file formats Ocelli reads and writes.
public enum ImageFormat: String, Sendable, CaseIterable {
    case jpeg = "JPEG"
    case png = "PNG"

    /// The format announced by the first bytes of a file (JPEG: ff d8; PNG: 89 50 4e 47), or nil.
    public static func detect(_ bytes: [UInt8]) -> ImageFormat? {
        if bytes.count >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8 { return .jpeg }
        if bytes.count >= 4 && bytes[0] == 0x89 && bytes[1] == 0x50 && bytes[2] == 0x4E && bytes[3] == 0x47 {
            return .png
        }
        return nil
    }
}

extension Image {
    /// Reads and decodes the JPEG or PNG file at `path` (the format is taken from the file's
    /// first bytes, not its name).
    ///
    /// Channels: gray JPEG and PNG files give 1 channel; colour JPEGs 3 (RGB; CMYK is converted);
    /// PNGs with colour give 3, or 4 (RGBA) when they carry alpha (an alpha channel or a
    /// transparency chunk); gray+alpha PNGs give 4 (RGBA with R = G = B). 16-bit PNG samples are
    /// scaled to 8 bits with rounding (v * 255 / 65535; OpenCV and Pillow keep the high byte,
    /// which can be 1 lower), palettes and low bit depths are expanded. Colour management is not
    /// applied: PNG gamma/ICC chunks and JPEG ICC profiles are ignored, as OpenCV and Pillow do.
    ///
    /// - Parameter applyingOrientation: rotate/flip JPEGs upright as their EXIF orientation
    ///   tag asks (as OpenCV's `imread` and Pillow's `exif_transpose` do).
    /// - Throws: `ImageError` naming the file: missing, unreadable, empty, unknown format,
    ///   truncated or corrupt data.
    public init(contentsOf path: String, applyingOrientation: Bool = true) throws {
        let bytes = try FileIO.contents(of: path)
        self = try Image.decode(data: bytes, name: path, applyingOrientation: applyingOrientation)
    }

    /// Decodes a JPEG or PNG held in memory. `name` identifies the data in errors.
    /// Channels and orientation as `init(contentsOf:)`.
    public static func decode(data: [UInt8], name: String, applyingOrientation: Bool = true) throws -> Image {
        guard !data.isEmpty else { throw ImageError(file: name, reason: .emptyFile) }
        switch ImageFormat.detect(data) {
        case .jpeg:
            let image = try JPEGCodec.decode(data, name: name)
            guard applyingOrientation else { return image }
            let orientation = JPEGCodec.exifOrientation(data)
            return orientation == .up ? image : image.oriented(orientation)
        case .png:
            return try PNGCodec.decode(data, name: name)
        case nil:
            throw ImageError(file: name, reason: .unknownFormat(leadingBytes: Array(data.prefix(8))))
        }
    }
}
