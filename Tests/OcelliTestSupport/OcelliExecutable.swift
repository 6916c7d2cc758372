import Foundation

/// The built `ocelli` command-line tool, for tests that run it as a child process (a fresh
/// process, where nothing the test process did beforehand is registered or cached).
///
/// Found as `OCELLI_EXECUTABLE`, else `ocelli` beside the test bundle in the build products
/// folder (`swift test` builds the tool with the tests), else in `<repository>/.build/release`
/// or `.build/debug`.
public enum OcelliExecutable {
    /// The folders the test bundle may lie in: the running executable's (Linux: the
    /// `…PackageTests.xctest` executable itself) and every loaded `.xctest` bundle's (macOS).
    static var productFolders: [URL] {
        var folders: [URL] = []
        if let exe = Bundle.main.executableURL { folders.append(exe.resolvingSymlinksInPath().deletingLastPathComponent()) }
        for b in Bundle.allBundles where b.bundlePath.hasSuffix(".xctest") {
            folders.append(b.bundleURL.deletingLastPathComponent())
        }
        for configuration in ["release", "debug"] {
            folders.append(TestFiles.repository.appendingPathComponent(".build/\(configuration)"))
        }
        return folders
    }

    /// The tool's path, or a message saying how to get it.
    public static var path: Result<String, ExecutableMissing> {
        if let p = ProcessInfo.processInfo.environment["OCELLI_EXECUTABLE"], !p.isEmpty {
            return FileManager.default.isExecutableFile(atPath: p) ? .success(p)
                : .failure(ExecutableMissing("OCELLI_EXECUTABLE is \(p), which is not an executable file"))
        }
        let candidates = productFolders.map { $0.appendingPathComponent("ocelli").path }
        if let p = candidates.first(where: { FileManager.default.isExecutableFile(atPath: $0) }) { return .success(p) }
        return .failure(ExecutableMissing(
            "the ocelli executable is not built (looked for \(candidates.joined(separator: ", "))): run `swift test`, which builds it with the tests, or `swift build --product ocelli`, or set OCELLI_EXECUTABLE to its path"))
    }

    /// Runs `ocelli arguments…` to completion; its exit status and what it wrote.
    public static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path.get())
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Both pipes drain while the tool runs, so neither can fill up and block it.
        let errorData = DataBox()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errorData.data = err.fileHandleForReading.readDataToEndOfFile() }
        let outputData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData.data, as: UTF8.self))
    }

    /// How a child process ended.
    public struct Outcome: CustomStringConvertible {
        public let status: Int32
        /// Ended by a signal (a trap, an abort, a kill), not by exit.
        public let signalled: Bool
        /// Still running at the deadline (then killed).
        public let timedOut: Bool
        public let output: String
        public let error: String
        public var description: String {
            "\(timedOut ? "timed out" : signalled ? "signal \(status)" : "exit \(status)"): \(error.prefix(400))"
        }
        /// Ended by itself with status 1 or 2 and an error message: not a crash, not a hang.
        public var isClearError: Bool {
            !timedOut && !signalled && [1, 2, 64].contains(status) && error.lowercased().contains("error")
                && !error.contains("Fatal error") && !error.contains("NSCocoaErrorDomain")
        }
    }

    /// Runs `ocelli arguments…`, killed after `seconds`; `standardOutput` replaces the pipe
    /// (e.g. /dev/full), and `started` runs once the process is running (to signal it).
    public static func run(_ arguments: [String], seconds: Double, standardOutput: FileHandle? = nil,
                           started: ((Process) -> Void)? = nil) throws -> Outcome {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try path.get())
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = standardOutput ?? out
        process.standardError = err
        let ended = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in ended.signal() }
        try process.run()
        let errorData = DataBox(), outputData = DataBox()
        let group = DispatchGroup()
        DispatchQueue.global().async(group: group) { errorData.data = err.fileHandleForReading.readDataToEndOfFile() }
        if standardOutput == nil {
            DispatchQueue.global().async(group: group) { outputData.data = out.fileHandleForReading.readDataToEndOfFile() }
        }
        started?(process)
        var timedOut = false
        if ended.wait(timeout: .now() + seconds) == .timedOut {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            ended.wait()
        }
        group.wait()
        return Outcome(status: process.terminationStatus, signalled: process.terminationReason == .uncaughtSignal, timedOut: timedOut,
                       output: String(decoding: outputData.data, as: UTF8.self), error: String(decoding: errorData.data, as: UTF8.self))
    }

    /// The standard error read on another thread (written once, read after `group.wait()`).
    private final class DataBox: @unchecked Sendable { var data = Data() }

    /// Why the tool cannot be run.
    public struct ExecutableMissing: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
