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

    /// The standard error read on another thread (written once, read after `group.wait()`).
    private final class DataBox: @unchecked Sendable { var data = Data() }

    /// Why the tool cannot be run.
    public struct ExecutableMissing: Error, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}
