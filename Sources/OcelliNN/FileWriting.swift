import Foundation
import OcelliTensor

/// A file that could not be read or written; the message names the file and what is wrong.
public struct FileFormatError: Error, CustomStringConvertible {
    public let description: String
    public init(_ path: String, _ message: String) { description = "\(path): \(message)" }
}

/// Writes `data` to `path` atomically (`AtomicFile`: a temporary file in the same folder, then
/// rename), creating the folder if missing, so a crash mid-write never leaves a half-written
/// checkpoint in place of a good one.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try createFolder(url.deletingLastPathComponent(), errorPath: path)
    var failure: AtomicWriteFailure?
    data.withUnsafeBytes { raw in
        do throws(AtomicWriteFailure) { try AtomicFile.write(raw, to: path) } catch { failure = error }
    }
    if let failure { throw FileFormatError(path, "cannot write the file: \(failure.reason)") }
}

/// Throws now if files cannot be written into `directory` (created if missing): call it before
/// a long training run whose result will be saved there.
public func ensureWritableDirectory(_ directory: String) throws {
    let dir = URL(fileURLWithPath: directory)
    try createFolder(dir, errorPath: directory)
    let probe = dir.appendingPathComponent(".ocelli-write-test-\(ProcessInfo.processInfo.processIdentifier)")
    do {
        try Data().write(to: probe)
        try? FileManager.default.removeItem(at: probe)
    } catch {
        throw FileFormatError(directory, "cannot write into the folder: \(ioFailureReason(error))")
    }
}

/// The folder a file path lies in ("." for a bare file name).
public func folder(of path: String) -> String {
    let d = (path as NSString).deletingLastPathComponent
    return d.isEmpty ? "." : d
}

/// Creates `directory` and its parents if missing; the error names `path` (the folder itself or
/// a file to be written in it) and the reason.
func createFolder(_ directory: URL, errorPath path: String) throws {
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
        let what = path == directory.path ? "cannot create the folder" : "cannot create the folder \(directory.path)"
        throw FileFormatError(path, "\(what): \(folderFailureReason(directory.path, error))")
    }
}

/// The operating system's reason for a failed file operation ("Permission denied", "No such
/// file or directory", "No space left on device") rather than Foundation's error dump.
func ioFailureReason(_ error: Error) -> String { systemReason(error) }
