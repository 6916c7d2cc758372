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

/// A file that could not be read: the path, the system's reason, and whether it is missing.
public struct FileReadFailure: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public let missing: Bool
    public var description: String { "\(path): \(reason)" }
}

/// The one reader of files for every module: a regular file only — a folder, a FIFO or a device
/// is an error, never a read that blocks forever or never ends — with the system's reason.
public enum FileReading {
    /// The whole file.
    public static func bytes(atPath path: String) throws(FileReadFailure) -> [UInt8] {
        try read(path, upTo: nil)
    }

    /// The first `count` bytes (fewer if the file is shorter): an image header, a magic number.
    public static func prefix(atPath path: String, count: Int) throws(FileReadFailure) -> [UInt8] {
        try read(path, upTo: Swift.max(0, count))
    }

    private static func read(_ path: String, upTo limit: Int?) throws(FileReadFailure) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)  // opening a FIFO must not wait for a writer
        guard fd >= 0 else {
            let code = errno
            throw FileReadFailure(path: path, reason: code == ENOENT ? "no such file" : text(code), missing: code == ENOENT)
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileReadFailure(path: path, reason: text(errno), missing: false) }
        // Int() on both sides: mode_t and the S_IF* constants differ in type between platforms.
        let kind = Int(info.st_mode) & Int(S_IFMT)
        guard kind == Int(S_IFREG) else {
            throw FileReadFailure(path: path, reason: kind == Int(S_IFDIR) ? "it is a directory" : "not a regular file", missing: false)
        }
        let count = Swift.min(Int(info.st_size), limit ?? Int.max)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            var done = 0
            while done < count, let base = buffer.baseAddress {
                let n = posixRead(fd, base + done, count - done)
                if n < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if n == 0 { break }  // the file shrank while it was read
                done += n
            }
            initialized = done
        }
        guard failure == 0 else { throw FileReadFailure(path: path, reason: text(failure), missing: false) }
        return bytes
    }

    private static func text(_ code: Int32) -> String { String(cString: strerror(code)) }
}

@inline(__always)
private func posixRead(_ fd: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    read(fd, buffer, count)
}
