import Foundation
import Testing
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

@Suite struct DarknetConfigTests {
    @Test func darknetLineRules() throws {
        let text = """
            # a comment
            [net]
            width = 64
            height=32
              channels=3
            ; another comment

            [convolutional]
            filters=8
            size = 3
            pad=1
            activation= leaky
            anchors = 10,14,  23,27,
            """
        let c = try DarknetConfig(text: text, file: "t.cfg")
        #expect(c.layers.count == 1)
        #expect(try c.net.int("width", 0) == 64 && c.net.int("height", 0) == 32 && c.net.int("channels", 0) == 3)
        let conv = c.layers[0]
        #expect(conv.type == "convolutional" && conv.line == 8)
        #expect(try conv.floats("anchors") == [10, 14, 23, 27])
        #expect(conv.string("activation", "logistic") == "leaky")
        #expect(try conv.int("stride", 1) == 1)            // Darknet's default
        #expect(c.warnings.count == 1 && c.warnings[0].contains("t.cfg:13") && c.warnings[0].contains("anchors"))
    }

    @Test func errorsNameTheFileAndLine() throws {
        func message(_ text: String) -> String {
            do { _ = try DarknetNetwork(config: DarknetConfig(text: text, file: "bad.cfg")); return "no error" } catch { return "\(error)" }
        }
        let bad = message("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=abc\n")
        #expect(bad.contains("bad.cfg:6") && bad.contains("filters=abc") && bad.contains("integer"), "\(bad)")
        let section = message("[net]\nwidth=32\nheight=32\nchannels=3\n[lstm]\noutput=3\n")
        #expect(section.contains("bad.cfg:5") && section.contains("unknown section [lstm]"), "\(section)")
        let noEquals = message("[net]\nwidth 32\n")
        #expect(noEquals.contains("bad.cfg:2") && noEquals.contains("key=value"), "\(noEquals)")
        let first = message("[convolutional]\nfilters=3\n")
        #expect(first.contains("[net]"), "\(first)")
        let route = message("[net]\nwidth=32\nheight=32\nchannels=3\n[route]\nlayers=-3\n")
        #expect(route.contains("bad.cfg:5") && route.contains("layers"), "\(route)")
        let activation = message("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nactivation=stair\n")
        #expect(activation.contains("bad.cfg:6") && activation.contains("activation"), "\(activation)")
        let yolo = message("[net]\nwidth=32\nheight=32\nchannels=3\n[convolutional]\nfilters=10\n[yolo]\nclasses=80\nnum=1\nanchors=1,1\n")
        #expect(yolo.contains("bad.cfg:7") && yolo.contains("85"), "\(yolo)")
        for stride in ["0", "-2", "1000"] {
            let reorg = message("[net]\nwidth=32\nheight=32\nchannels=4\n[reorg]\nstride=\(stride)\n")
            #expect(reorg.contains("bad.cfg:5") && reorg.contains("stride must be between 1 and 64"), "\(reorg)")
        }
    }
}
