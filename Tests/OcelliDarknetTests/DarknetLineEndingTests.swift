import Foundation
import Testing
import OcelliTestSupport
@testable import OcelliDarknet

/// Files made on Windows (CRLF) read as Darknet and AlexeyAB's darknet read them.
@Suite struct DarknetLineEndingTests {
    @Test func crlfCfgParsesAsLF() throws {
        let text = try String(contentsOfFile: TestFiles.cfg("yolov3-tiny.cfg"), encoding: .utf8)
        let lf = try DarknetConfig(text: text, file: "lf.cfg")
        let crlf = try DarknetConfig(text: text.replacingOccurrences(of: "\n", with: "\r\n"), file: "crlf.cfg")
        #expect(crlf.layers.count == lf.layers.count && crlf.layers.count == 24)
        #expect(crlf.layers.map(\.type) == lf.layers.map(\.type) && crlf.layers.map(\.line) == lf.layers.map(\.line))
        #expect(try crlf.net.int("width", 0) == 416 && crlf.warnings == lf.warnings.map { $0.replacingOccurrences(of: "lf.cfg", with: "crlf.cfg") })
        let a = try DarknetNetwork(config: lf), b = try DarknetNetwork(config: crlf)
        #expect(a.model.outputs.map(\.shape) == b.model.outputs.map(\.shape))
    }
}
