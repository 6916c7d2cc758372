import Foundation
import CFuzzDriver
import FuzzSupport
import Ocelli

/// SwiftPM's main calls this; it hands the process to libFuzzer with the harness below.
@_cdecl("FuzzDetections_main")
public func entry(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var argc = argc, argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
        guard let data else { return 0 }
        return fuzz(data, size)
    }
}

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
