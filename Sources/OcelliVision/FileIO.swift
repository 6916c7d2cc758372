#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import OcelliTensor

/// Whole-file reads and atomic writes with POSIX calls, errors reported as `ImageError`s.
public enum FileIO {

    /// The bytes of the file at `path` (a regular file: `FileReading`).
    public static func contents(of path: String) throws -> [UInt8] {
        do { return try FileReading.bytes(atPath: path) } catch { throw imageError(error) }
    }

    /// The first `count` bytes of the file at `path` (fewer if the file is shorter).
    static func prefix(of path: String, count: Int) throws -> [UInt8] {
        do { return try FileReading.prefix(atPath: path, count: count) } catch { throw imageError(error) }
    }

    private static func imageError(_ failure: FileReadFailure) -> ImageError {
        ImageError(file: failure.path, reason: failure.missing ? .fileNotFound : .unreadable(failure.reason))
    }

    /// Writes `bytes` to `path` atomically (`AtomicFile`): readers see either the old file or the
    /// complete new one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        do { try AtomicFile.write(bytes, to: path) } catch {
            throw ImageError(file: path, reason: .unwritable(error.reason))
        }
    }
}
