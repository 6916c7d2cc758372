import Foundation
import Testing
import OcelliVision

/// Damaged files of every kind end in a decoded image or an `ImageError`, never a crash.
@Suite("Robustness")
struct RobustnessTests {
    /// A small deterministic generator (SplitMix64) for the damage.
    struct SplitMix: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    /// Only the final EOI marker missing: every scanline is there, so the image decodes.
    @Test func jpegWithoutEndMarkerDecodes() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedImage("dog.jpg"))))
        #expect(Array(bytes.suffix(2)) == [0xFF, 0xD9])
        let image = try Image.decode(data: Array(bytes.dropLast(2)), name: "dog.jpg")
        #expect(image == (try Image.decode(data: bytes, name: "dog.jpg")))
    }

    /// Progressive files can end cleanly between scans, so a progressive file that runs out of
    /// data anywhere, even just before its EOI marker, is truncated.
    @Test func truncatedProgressiveJPEG() throws {
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.path("progressive.jpg"))))
        _ = try Image.decode(data: bytes, name: "progressive.jpg")
        for cut in [bytes.count * 6 / 10, bytes.count - 2] {
            let error = try #require(throws: ImageError.self) {
                try Image.decode(data: Array(bytes.prefix(cut)), name: "progressive.jpg")
            }
            #expect(error.description == "progressive.jpg: truncated JPEG: Premature end of JPEG file")
        }
    }

    @Test func truncationsAndDamageNeverCrash() throws {
        let jpeg = try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedImage("scream.jpg"))))
        let png = try Image(contentsOf: Fixtures.sharedImage("scream.jpg")).resized(width: 88, height: 112).pngData()
        var random = SplitMix(state: 42)
        var errors = 0, decoded = 0
        for source in [jpeg, png] {
            for trial in 0..<60 {
                var bytes = source
                if trial % 2 == 0 {
                    bytes = Array(bytes.prefix(Int.random(in: 0..<bytes.count, using: &random)))
                } else {
                    for _ in 0..<Int.random(in: 1...8, using: &random) {
                        bytes[Int.random(in: 0..<bytes.count, using: &random)] = UInt8.random(in: 0...255, using: &random)
                    }
                }
                do {
                    let image = try Image.decode(data: bytes, name: "damaged")
                    #expect(image.width > 0 && image.height > 0)
                    decoded += 1
                } catch let error as ImageError {
                    #expect(error.description.hasPrefix("damaged: "))
                    errors += 1
                }
            }
        }
        #expect(errors > 30, "\(errors) errors, \(decoded) decoded")
    }
}
