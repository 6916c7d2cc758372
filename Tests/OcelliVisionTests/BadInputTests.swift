import Foundation
import Testing
import OcelliVision

/// Broken files give an `ImageError` that names the file and says what is wrong; nothing
/// crashes, nothing exits, and a truncated JPEG is not silently padded with grey.
@Suite("Bad input")
struct BadInputTests {
    static func write(_ bytes: [UInt8], named name: String, in directory: URL) throws -> String {
        let url = directory.appendingPathComponent(name)
        try Data(bytes).write(to: url)
        return url.path
    }

    static func dogBytes() throws -> [UInt8] {
        try [UInt8](Data(contentsOf: URL(fileURLWithPath: Fixtures.sharedImage("dog.jpg"))))
    }

    @Test func truncatedJPEG() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let bytes = try Self.dogBytes()
        let path = try Self.write(Array(bytes.prefix(bytes.count / 2)), named: "dog.jpg", in: directory)
        let error = try #require(throws: ImageError.self) { try Image(contentsOf: path) }
        #expect(error.description == "\(path): truncated JPEG: Premature end of JPEG file")
        #expect(error.reason == .truncated(format: "JPEG", detail: "Premature end of JPEG file"))
        // Cut inside the headers, too.
        let header = try Self.write(Array(bytes.prefix(300)), named: "header.jpg", in: directory)
        let headerError = try #require(throws: ImageError.self) { try Image(contentsOf: header) }
        #expect(headerError.description.hasPrefix("\(header): truncated JPEG: "))
    }

    @Test func corruptJPEG() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // JPEG magic, then garbage.
        var garbage: [UInt8] = [0xFF, 0xD8]
        var state: UInt32 = 12345
        for _ in 0..<4000 {
            state = state &* 1_103_515_245 &+ 12345
            garbage.append(UInt8(truncatingIfNeeded: state >> 16))
        }
        let path = try Self.write(garbage, named: "noise.jpg", in: directory)
        let error = try #require(throws: ImageError.self) { try Image(contentsOf: path) }
        #expect(error.description.hasPrefix("\(path): "))
        #expect(error.description.contains("JPEG"))
        // A real header with its entropy-coded data overwritten by markers: damaged, not truncated.
        var bytes = try Self.dogBytes()
        for i in stride(from: bytes.count / 3, to: bytes.count / 3 + 64, by: 2) { bytes[i] = 0xFF; bytes[i + 1] = 0xD0 }
        let damaged = try Self.write(bytes, named: "damaged.jpg", in: directory)
        let damagedError = try #require(throws: ImageError.self) { try Image(contentsOf: damaged) }
        #expect(damagedError.description.hasPrefix("\(damaged): corrupt JPEG: Corrupt JPEG data"), "\(damagedError)")
    }

    @Test func emptyFile() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = try Self.write([], named: "empty.png", in: directory)
        let error = try #require(throws: ImageError.self) { try Image(contentsOf: path) }
        #expect(error.reason == .emptyFile)
        #expect(error.description == "\(path): empty file (0 bytes), expected a JPEG or PNG image")
    }

    @Test func missingFileAndDirectory() throws {
        let path = "/nonexistent-ocelli/dog.jpg"
        let error = try #require(throws: ImageError.self) { try Image(contentsOf: path) }
        #expect(error.description == "\(path): no such file")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let folderError = try #require(throws: ImageError.self) { try Image(contentsOf: directory.path) }
        #expect(folderError.description == "\(directory.path): cannot read the file: it is a directory")
    }

    @Test func unknownFormat() throws {
        let gif: [UInt8] = Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0]
        let error = try #require(throws: ImageError.self) { try Image.decode(data: gif, name: "cat.gif") }
        #expect(error.description.hasPrefix("cat.gif: unknown image format (file starts with 47 49 46 38 39 61 01 00)"))
    }

    @Test func truncatedAndCorruptPNG() throws {
        let dog = try Image(contentsOf: Fixtures.sharedImage("dog.jpg"))
        let png = try dog.pngData()
        let truncated = try #require(throws: ImageError.self) {
            try Image.decode(data: Array(png.prefix(png.count / 2)), name: "dog.png")
        }
        guard case .truncated(format: "PNG", detail: _) = truncated.reason else {
            Issue.record("expected a truncated PNG, got \(truncated)")
            return
        }
        #expect(truncated.description.hasPrefix("dog.png: truncated PNG: "))
        // Signature only.
        let signature = try #require(throws: ImageError.self) { try Image.decode(data: Array(png.prefix(8)), name: "sig.png") }
        #expect(signature.description.hasPrefix("sig.png: truncated PNG: "))
        // A flipped byte inside the image data: the chunk's CRC no longer matches.
        var damaged = png
        damaged[png.count / 2] ^= 0x55
        let corrupt = try #require(throws: ImageError.self) { try Image.decode(data: damaged, name: "bad.png") }
        #expect(corrupt.description.hasPrefix("bad.png: corrupt PNG: "), "\(corrupt)")
    }
}

