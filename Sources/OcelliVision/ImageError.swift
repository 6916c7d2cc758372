import Foundation

/// A failure to read, decode, encode or write an image file. The description names the file and
/// says what is wrong, e.g. `dog.jpg: truncated JPEG: Premature end of JPEG file`.
public struct ImageError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// What went wrong.
    public enum Reason: Equatable, Sendable {
        /// Nothing exists at the path.
        case fileNotFound
        /// The file exists but cannot be read (the system's reason, e.g. "Permission denied").
        case unreadable(String)
        /// The file has no bytes at all.
        case emptyFile
        /// Neither JPEG nor PNG; holds the first bytes of the file.
        case unknownFormat(leadingBytes: [UInt8])
        /// The data stops before the image does.
        case truncated(format: String, detail: String)
        /// The data is damaged or not a valid stream of that format.
        case corrupt(format: String, detail: String)
        /// A valid file using a feature this library does not decode (or an absurd size).
        case unsupported(format: String, detail: String)
        /// Encoding failed (the codec's message).
        case encodingFailed(format: String, detail: String)
        /// The file cannot be written (the system's reason).
        case unwritable(String)
    }

    /// The path or name of the file, as the caller gave it.
    public var file: String
    public var reason: Reason

    public init(file: String, reason: Reason) {
        self.file = file
        self.reason = reason
    }

    public var description: String {
        switch reason {
        case .fileNotFound:
            return "\(file): no such file"
        case .unreadable(let why):
            return "\(file): cannot read the file: \(why)"
        case .emptyFile:
            return "\(file): empty file (0 bytes), expected a JPEG or PNG image"
        case .unknownFormat(let bytes):
            let hex = bytes.prefix(8).map { String(format: "%02x", $0) }.joined(separator: " ")
            return "\(file): unknown image format (file starts with \(hex)); expected JPEG (ff d8) "
                + "or PNG (89 50 4e 47); convert the file to JPEG or PNG"
        case .truncated(let format, let detail):
            return "\(file): truncated \(format): \(detail)"
        case .corrupt(let format, let detail):
            return "\(file): corrupt \(format): \(detail)"
        case .unsupported(let format, let detail):
            return "\(file): unsupported \(format): \(detail)"
        case .encodingFailed(let format, let detail):
            return "\(file): cannot encode \(format): \(detail)"
        case .unwritable(let why):
            return "\(file): cannot write the file: \(why)"
        }
    }

    public var errorDescription: String? { description }
}
