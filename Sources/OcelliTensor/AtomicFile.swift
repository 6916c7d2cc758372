#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The POSIX `write` (AtomicFile.write shadows the name inside the enum).
@inline(__always)
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}

/// A write that did not happen: the file and the system's reason ("Permission denied", "No space
/// left on device"). The modules turn it into their own error types.
public struct AtomicWriteFailure: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// The one atomic file writer every module uses (models, checkpoints, images, data sets, plots).
public enum AtomicFile {
    /// Writes `bytes` to `path` atomically: into a new file beside it (a unique name, created
    /// exclusively), then renamed over it, so readers, and a process killed at any moment, see
    /// either the old file or the complete new one. The folder must exist.
    public static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(AtomicWriteFailure) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[...$0]) } ?? ""
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        guard !name.isEmpty else { throw AtomicWriteFailure(path: path, reason: "the path names a directory") }
        let temporary = "\(directory).\(name).tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o666)
        guard fd >= 0 else { throw AtomicWriteFailure(path: path, reason: reason(errno)) }
        var failure: Int32 = 0
        var done = 0
        while done < bytes.count, let base = bytes.baseAddress {
            let n = posixWrite(fd, base + done, bytes.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                failure = errno
                break
            }
            done += n
        }
        // On disk before the rename, so that a power cut cannot leave the new name on empty data.
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        if close(fd) != 0 && failure == 0 { failure = errno }
        if failure == 0 && rename(temporary, path) != 0 { failure = errno }
        if failure != 0 {
            unlink(temporary)
            throw AtomicWriteFailure(path: path, reason: reason(failure))
        }
    }

    /// Writes `bytes` to `path` atomically (see `write(_:to:)` for a buffer).
    public static func write(_ bytes: [UInt8], to path: String) throws(AtomicWriteFailure) {
        var failure: AtomicWriteFailure?
        bytes.withUnsafeBytes { raw in
            do throws(AtomicWriteFailure) { try write(raw, to: path) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    private static func reason(_ code: Int32) -> String { String(cString: strerror(code)) }
}
