import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzModelJSON_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard let model = try? Model.fromArchitecture(Data(bytes(data, size)), path: "model.json") else { return 0 }
    _ = model.layers.reduce(0) { $0 + $1.parameterCount }
    return 0
}
