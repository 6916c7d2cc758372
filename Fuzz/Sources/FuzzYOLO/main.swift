import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzYOLO_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A YOLO data set of one image whose label file is the fuzzer's.
    let root = scratch + "/yolo"
    putImage(root + "/images/a.png")
    put(Array("images/a.png\n".utf8), root + "/train.txt")
    put(Array("zero\none\ntwo\n".utf8), root + "/labels.txt")
    put(bytes(data, size), root + "/labels/a.txt")
    _ = try? DetectionDataset.load(URL(fileURLWithPath: root + "/train.txt"), format: .yolo)
    return 0
}
