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
    StandardError.write((s + terminator))
}

/// The class names for a network: `--names`, else a names file beside the cfg or weights whose
/// line count equals the heads' classes (coco.names for 80, voc.names for 20).
func classNames(names: String?, cfg: String, weights: String?, classes: Int) throws -> [String] {
    func read(_ path: String) throws -> [String] {
        do { return try ClassNames.read(path) } catch { throw ValidationError("\(error)") }
    }
    if let names {
        let read = try read(names)
        if read.count != classes {
            printError("warning: \(names) has \(read.count) class names, the network \(classes) classes: classes without a name are shown by number")
        }
        return read
    }
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
            let items: [String]
            do { items = try FileManager.default.contentsOfDirectory(atPath: p).sorted() } catch {
                throw ValidationError("\(p): cannot list the folder: \(systemReason(error))")
            }
            let images = items.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
            guard !images.isEmpty else { throw ValidationError("\(p): a folder with no .jpg, .jpeg or .png images") }
            out += images.map { (p as NSString).appendingPathComponent($0) }
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
        if let t = threads, !(1...1_024).contains(t) { throw ValidationError("--threads must be between 1 and 1024, got \(t)") }
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

/// What the process wrote must arrive: a closed pipe (`ocelli … | head`) or a full disk
/// (`> /dev/full`) on standard output or standard error ends the command with status 1 and, where
/// standard error still works, a message — not a silent success, and not death by SIGPIPE, which
/// would also end a training run before its model is saved.
enum OutputStreams {
    static func install() {
        signal(SIGPIPE, SIG_IGN)
        atexit {
            let flushed = fflush(stdout) == 0
            let reason = flushed ? "it was closed or is full" : String(cString: strerror(errno))
            if !flushed || ferror(stdout) != 0 {
                fputs("error: could not write the output to standard output: \(reason)\n", stderr)
                _exit(1)
            }
            if ferror(stderr) != 0 { _exit(1) }
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM (a scheduler's or `timeout`'s stop) during training: the first asks
/// the loop to stop after the current batch and write its checkpoint (`requested`); a second ends
/// the process at once. The exit status is then 128 + the signal (130, 143), as a shell reports.
enum Interruption {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var count = 0
    nonisolated(unsafe) private static var received: Int32 = 0
    nonisolated(unsafe) private static var sources: [DispatchSourceSignal] = []

    /// Takes over SIGINT and SIGTERM; `message` is printed on the first.
    static func install(message: String) {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            s.setEventHandler {
                lock.lock(); count += 1; let c = count; if received == 0 { received = sig }; lock.unlock()
                if c == 1 { if !message.isEmpty { printError("\n" + message) } } else { _exit(128 + sig) }
            }
            s.resume()
            sources.append(s)
        }
    }

    static var requested: Bool {
        lock.lock(); defer { lock.unlock() }
        return count > 0
    }

    /// The exit status for a run that stopped on a signal (130 for Ctrl-C, 143 for SIGTERM).
    static var exitCode: ExitCode {
        lock.lock(); defer { lock.unlock() }
        return ExitCode(128 + (received == 0 ? SIGINT : received))
    }
}

/// The absolute path with symbolic links resolved (of the folder, for a file not yet written).
func resolvedPath(_ path: String) -> String {
    let url = URL(fileURLWithPath: path).standardizedFileURL
    let folder = url.deletingLastPathComponent().resolvingSymlinksInPath()
    let file = folder.appendingPathComponent(url.lastPathComponent)
    return FileManager.default.fileExists(atPath: file.path) ? file.resolvingSymlinksInPath().path : file.path
}

/// Outputs never replace inputs: an output (the option that names it, and its path) may not be,
/// symbolic links resolved, one of `inputs`, nor — with `insideFolders` — an existing file inside
/// an input folder (a data set's annotations). A clear error before any work.
func refuseOverwritingInputs(_ outputs: [(option: String, path: String?)], inputs: [String?], insideFolders: Bool = true) throws {
    let sources = inputs.compactMap { $0 }.map { (given: $0, resolved: resolvedPath($0)) }
    for case let (option, path?) in outputs {
        let target = resolvedPath(path)
        for source in sources {
            var isFolder: ObjCBool = false
            let exists = FileManager.default.fileExists(atPath: source.resolved, isDirectory: &isFolder)
            if target == source.resolved {
                throw ValidationError("\(option) \(path) is \(source.given), which this command reads or writes: write the output to another file")
            }
            if insideFolders, exists, isFolder.boolValue, target.hasPrefix(source.resolved + "/"), FileManager.default.fileExists(atPath: target) {
                throw ValidationError("\(option) \(path) would replace a file of the input \(source.given): write the output elsewhere")
            }
        }
    }
}
