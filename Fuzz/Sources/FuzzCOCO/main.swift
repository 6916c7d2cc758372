import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzCOCO_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A COCO annotations file (the images it names may not exist).
    let root = scratch + "/coco"
    putImage(root + "/images/a.png")
    put(bytes(data, size), root + "/annotations/train.json")
    _ = try? DetectionDataset.load(URL(fileURLWithPath: root + "/annotations/train.json"), format: .coco)
    return 0
}
