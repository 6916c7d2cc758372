import CFuzzDriver
import Foundation
import Ocelli

/// The fuzzer's bytes.
public func bytes(_ data: UnsafePointer<UInt8>, _ size: Int) -> [UInt8] {
    Array(UnsafeBufferPointer(start: data, count: size))
}

/// A scratch folder for readers that take files (one per process, in memory when /dev/shm exists).
public let scratch: String = {
    let base = FileManager.default.fileExists(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
    let path = (base as NSString).appendingPathComponent("ocelli-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}()

/// Writes `bytes` to `path` (creating folders), for a reader that takes a path.
public func put(_ bytes: [UInt8], _ path: String) {
    try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
    FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

/// A 32x24 white PNG image, for data sets whose annotations the fuzzer writes.
public func putImage(_ path: String) {
    guard !FileManager.default.fileExists(atPath: path) else { return }
    let png = (try? Image(width: 32, height: 24, filledWith: [255, 255, 255]).pngData()) ?? []
    put(png, path)
}

/// Hands the process to libFuzzer with `harness` (each harness's `<Target>_main` calls it: SwiftPM
/// gives every executable target a `main` that calls that symbol).
public func runFuzzer(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?,
                      _ harness: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, harness)
}
