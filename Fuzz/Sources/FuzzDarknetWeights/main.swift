import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzDarknetWeights_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A small network with every kind of weighted layer; the fuzzer writes its weights file.
    _ = try? Fixed.network.loadWeights(Data(bytes(data, size)), file: "fuzz.weights")
    return 0
}

enum Fixed {
    static let network: DarknetNetwork = {
        let cfg = """
        [net]
        width=8
        height=8
        channels=3
        [convolutional]
        batch_normalize=1
        filters=4
        size=3
        stride=1
        pad=1
        activation=leaky
        [maxpool]
        size=2
        stride=2
        [convolutional]
        filters=2
        size=1
        stride=1
        activation=linear
        [connected]
        output=3
        activation=linear
        """
        return try! DarknetNetwork(config: DarknetConfig(text: cfg, file: "fixed.cfg"))
    }()
}
