import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzDarknetCfg_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: bytes(data, size), as: UTF8.self)
    guard let config = try? DarknetConfig(text: text, file: "fuzz.cfg") else { return 0 }
    // A million weights at most: big networks take the same paths, only slower.
    guard let network = try? DarknetNetwork(config: config, weightLimit: 1 << 20) else { return 0 }
    _ = try? network.trainingOptions()
    _ = network.darknetTable()
    return 0
}
