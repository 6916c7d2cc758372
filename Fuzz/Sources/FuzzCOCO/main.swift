import Foundation
import CFuzzDriver
import FuzzSupport
import Ocelli

/// SwiftPM's main calls this; it hands the process to libFuzzer with the harness below.
@_cdecl("FuzzCOCO_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A COCO annotations file (the images it names may not exist).
    let root = scratch + "/coco"
    putImage(root + "/images/a.png")
    put(bytes(data, size), root + "/annotations/train.json")
    _ = try? DetectionDataset.load(URL(fileURLWithPath: root + "/annotations/train.json"), format: .coco)
    return 0
}
