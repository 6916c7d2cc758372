#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Whole-file reads and atomic writes with POSIX calls, errors reported as `ImageError`s.
enum FileIO {
    static func errorText(_ code: Int32) -> String { String(cString: strerror(code)) }

    /// The bytes of the file at `path`.
    static func contents(of path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            throw ImageError(file: path, reason: code == ENOENT ? .fileNotFound : .unreadable(errorText(code)))
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw ImageError(file: path, reason: .unreadable(errorText(errno))) }
        // Int() on both sides: mode_t and the S_IF* constants differ in type between platforms.
        let kind = Int(info.st_mode) & Int(S_IFMT)
        guard kind == Int(S_IFREG) else {
            throw ImageError(file: path, reason: .unreadable(kind == Int(S_IFDIR) ? "it is a directory" : "not a regular file"))
        }
        let size = Int(info.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var done = 0
            while done < size {
                let n = read(fd, buffer.baseAddress! + done, size - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }  // the file shrank while we read it
                done += n
            }
            initialized = done
        }
        guard failure == 0 else { throw ImageError(file: path, reason: .unreadable(errorText(failure))) }
        return bytes
    }

    /// Writes `bytes` to `path` atomically: into a new file beside it, then renamed over it, so
    /// readers see either the old file or the complete new one.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw ImageError(file: path, reason: .unwritable("the path names a directory")) }
        let temporary = "\(directory).\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw ImageError(file: path, reason: .unwritable(errorText(errno))) }
        var failure: Int32 = 0
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                done += n
            }
        }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw ImageError(file: path, reason: .unwritable(errorText(failure)))
        }
    }
}
