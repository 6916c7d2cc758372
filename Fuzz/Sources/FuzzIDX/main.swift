import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzIDX_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let path = scratch + "/fuzz-idx"
    put(bytes(data, size), path)
    _ = try? IDX.read(path: path)
    return 0
}
