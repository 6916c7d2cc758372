import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzVOC_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    // A VOC data set of one image whose annotation is the fuzzer's.
    let root = scratch + "/voc"
    putImage(root + "/JPEGImages/a.png")
    put(bytes(data, size), root + "/Annotations/a.xml")
    _ = try? DetectionDataset.load(URL(fileURLWithPath: root), format: .voc)
    return 0
}
