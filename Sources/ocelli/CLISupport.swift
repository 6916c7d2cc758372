import ArgumentParser
import Foundation
import Ocelli

/// Reports an error on standard error and gives the exit code to throw (1).
func failure(_ message: String) -> ExitCode {
    printError("error: " + message)
    return ExitCode.failure
}

/// Prints to standard error (Darknet's progress lines go there when stdout carries JSON).
func printError(_ s: String, terminator: String = "\n") {
    FileHandle.standardError.write((s + terminator).data(using: .utf8)!)
}

/// The class names for a network: `--names`, else a names file beside the cfg or weights whose
/// line count equals the heads' classes (coco.names for 80, voc.names for 20).
func classNames(names: String?, cfg: String, weights: String?, classes: Int) throws -> [String] {
    func read(_ path: String) throws -> [String] {
        do { return try ClassNames.read(path) } catch { throw ValidationError("\(error)") }
    }
    if let names { return try read(names) }
    let dirs = Set([cfg, weights].compactMap { $0 }.map { ($0 as NSString).deletingLastPathComponent })
    let candidates = classes == 80 ? ["coco.names"] : classes == 20 ? ["voc.names"] : []
    // Beside the cfg or weights first, then Darknet's own names files bundled in Data/cfg.
    for d in dirs.sorted() + [folder(of: BundledData.cfg("coco.names"))] {
        for c in candidates + ["labels.txt", "obj.names"] {
            let p = (d.isEmpty ? c : (d as NSString).appendingPathComponent(c))
            if FileManager.default.fileExists(atPath: p), let n = try? read(p), n.count == classes { return n }
        }
    }
    return []
}

/// Image files named on the command line; folders expand to the images inside, sorted.
func expandImages(_ paths: [String]) throws -> [String] {
    let extensions: Set<String> = ["jpg", "jpeg", "png"]
    var out: [String] = []
    for p in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw ValidationError("no such file or folder: \(p)")
        }
        if isDir.boolValue {
            let items = try FileManager.default.contentsOfDirectory(atPath: p).sorted()
            out += items.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .map { (p as NSString).appendingPathComponent($0) }
        } else {
            out.append(p)
        }
    }
    return out
}

/// The result of work started on a queue, waited for when needed.
final class Pending<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var value: T?

    init(on queue: DispatchQueue, _ work: @escaping () -> T) {
        queue.async { self.value = work(); self.done.signal() }
    }

    func wait() -> T {
        done.wait()
        done.signal()  // a second wait returns at once
        return value!
    }
}

/// `--threads N`, shared by the commands that run kernels.
struct ThreadOptions: ParsableArguments {
    @Option(help: "Threads (default: OCELLI_NUM_THREADS or every core).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1, got \(t)") }
    }

    /// Makes `--threads` the process's thread count.
    func apply() { if let t = threads { Parallel.threadCount = t } }
}

/// `--json`, shared by every command that can print its results for scripts. The fields of each
/// command's JSON are listed in its help; they are an interface scripts rely on.
struct JSONOutput: ParsableArguments {
    @Flag(help: "Print the results as JSON on standard output instead of text (what the command prints is in its help); progress and Darknet's lines go to standard error.")
    var json = false
}
