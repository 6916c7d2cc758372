import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

enum Paths {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    static let repository = tests.deletingLastPathComponent().deletingLastPathComponent()
    static func cfg(_ name: String) -> String { TestFiles.cfg(name) }
    static let tinyCfg = TestFiles.cfg("yolov3-tiny.cfg")
    static var tinyWeights: String { TestFiles.yolov3TinyWeights }
    static func image(_ name: String) -> String { TestFiles.image(name) }
    static func fixture(_ name: String) -> URL { tests.appendingPathComponent("Fixtures/\(name)") }
}
