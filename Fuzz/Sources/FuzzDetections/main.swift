import Foundation
import FuzzSupport
import Ocelli

@_cdecl("FuzzDetections_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv) { data, size in data.map { fuzz($0, size) } ?? 0 }
}

// libFuzzer's runtime is linked whole and names this entry too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    _ = try? DetectionsFile.parse(Data(bytes(data, size)), file: "detections.json", images: Fixed.images, classCount: 3)
    return 0
}

enum Fixed {
    static let images: [AnnotatedImage] = (0..<3).map {
        AnnotatedImage(id: "\($0)", file: URL(fileURLWithPath: "/nonexistent/\($0).jpg"), width: 64, height: 48, objects: [])
    }
}
