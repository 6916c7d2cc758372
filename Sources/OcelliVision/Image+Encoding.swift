/// How hard the PNG encoder compresses. Either way the file is lossless.
public enum PNGCompression: Sendable {
    /// libpng's default: adaptive row filters and zlib's default level (smallest files).
    case `default`
    /// libpng's fast setting: no row filters, a low zlib level. Files are larger (about 25 % for
    /// photos, more for flat images) and written several times faster: for generated data sets
    /// and annotated outputs that programs read back.
    case fast
}

extension Image {
    /// The image as a PNG file: 8-bit gray, RGB or RGBA as `channels` says. Lossless: decoding
    /// the result gives these pixels back exactly.
    public func pngData(compression: PNGCompression = .default) throws -> [UInt8] {
        try PNGCodec.encode(self, compression: compression, name: "<png data>")
    }

    /// The image as a baseline JPEG file at `quality` 1...100 (75 is libjpeg's and Pillow's
    /// default), 4:2:0 chroma subsampling for colour. A fourth (alpha) channel is dropped.
    public func jpegData(quality: Int = 90) throws -> [UInt8] {
        try JPEGCodec.encode(self, quality: quality, name: "<jpeg data>")
    }

    /// Writes the image as a PNG file at `path`, atomically (a temporary file in the same
    /// directory renamed over `path`).
    public func write(png path: String, compression: PNGCompression = .default) throws {
        try FileIO.writeAtomically(PNGCodec.encode(self, compression: compression, name: path), to: path)
    }

    /// Writes the image as a JPEG file at `path`, atomically, at `quality` 1...100.
    public func write(jpeg path: String, quality: Int = 90) throws {
        try FileIO.writeAtomically(JPEGCodec.encode(self, quality: quality, name: path), to: path)
    }
}
