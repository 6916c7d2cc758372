import Foundation
import CFuzzDriver
import FuzzSupport
import Ocelli

/// SwiftPM's main calls this; it hands the process to libFuzzer with the harness below.
@_cdecl("FuzzImage_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? Image.decode(data: bytes(data, size), name: "fuzz")
    return 0
}
