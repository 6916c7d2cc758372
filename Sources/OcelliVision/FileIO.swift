#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import OcelliTensor

/// The POSIX `read` (FileIO.read shadows the name inside the enum).
@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}

/// Whole-file reads and atomic writes with POSIX calls, errors reported as `ImageError`s.
public enum FileIO {
    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// Opens `path` for reading; a missing file is `.fileNotFound`.
    private static func openForReading(_ path: String) throws -> Int32 {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // a FIFO must not block the open
        guard fd >= 0 else {
            let code = errno
            throw ImageError(file: path, reason: code == ENOENT ? .fileNotFound : .unreadable(errorText(code)))
        }
        return fd
    }

    /// Up to `count` bytes from `fd` (fewer at the end of the file), retrying interrupted reads.
    private static func read(_ fd: Int32, upTo count: Int, path: String) throws -> [UInt8] {
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count {
                let n = posixRead(fd, buffer.baseAddress! + done, count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }  // end of file (or the file shrank while we read it)
                done += n
            }
            initialized = done
        }
        guard failure == 0 else {
            throw ImageError(file: path, reason: .unreadable(failure == EISDIR ? "it is a directory" : errorText(failure)))
        }
        return bytes
    }

    /// The bytes of the file at `path`.
    public static func contents(of path: String) throws -> [UInt8] {
        let fd = try openForReading(path)
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ImageError(file: path, reason: .unreadable(errorText(errno))) }
        // Int() on both sides: mode_t and the S_IF* constants differ in type between platforms.
        let kind = Int(info.st_mode) & Int(S_IFMT)
        guard kind == Int(S_IFREG) else {
            throw ImageError(file: path, reason: .unreadable(kind == Int(S_IFDIR) ? "it is a directory" : "not a regular file"))
        }
        return try read(fd, upTo: Int(info.st_size), path: path)
    }

    /// The first `count` bytes of the file at `path` (fewer if the file is shorter).
    static func prefix(of path: String, count: Int) throws -> [UInt8] {
        let fd = try openForReading(path)
        defer { close(fd) }
        return try read(fd, upTo: count, path: path)
    }

    /// Writes `bytes` to `path` atomically (`AtomicFile`): readers see either the old file or the
    /// complete new one.
    public static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        do { try AtomicFile.write(bytes, to: path) } catch {
            throw ImageError(file: path, reason: .unwritable(error.reason))
        }
    }
}
