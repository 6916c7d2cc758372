import Foundation
import Testing
import OcelliDarknet
import OcelliNN
import OcelliTestSupport
import OcelliVision

/// The SSD workflow through the built `ocelli` tool: train --arch, then map and detect --model
/// on what it saved.
@Suite(.serialized) struct SSDCommandTests {
    @Test func trainMapAndDetectWithAnSSD() throws {
        guard case .success = OcelliExecutable.path else {
            if case .failure(let missing) = OcelliExecutable.path { Issue.record("\(missing)") }
            return
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-ssd-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("digits")
        try DigitsDetection.write(split: .train, count: 12, seed: 4, digits: try DigitsDetection.Digits(), to: data)
        let backup = root.appendingPathComponent("backup").path
        let train = try OcelliExecutable.run(["train", "--arch", "ssd-digits", "--data", data.path, "--val-split", "none", "--epochs", "1",
                                              "--max-batches", "2", "--batch", "4", "--threads", "2", "--backup", backup, "--json"])
        #expect(train.status == 0, "\(train.error)")
        let line = train.output.split(separator: "\n").last.map(String.init) ?? ""
        let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        #expect(object?["iterations"] as? Int == 2, "\(line)")
        let saved = (backup as NSString).appendingPathComponent("ssd-digits_last")
        #expect(FileManager.default.fileExists(atPath: (saved as NSString).appendingPathComponent("model.json")))

        let map = try OcelliExecutable.run(["map", "--model", saved, "--data", data.path, "--metric", "voc", "--json"])
        #expect(map.status == 0, "\(map.error)")
        #expect(map.output.contains("\"map\""), "\(map.output)")

        let images = data.appendingPathComponent("JPEGImages").path
        let first = (images as NSString).appendingPathComponent(try FileManager.default.contentsOfDirectory(atPath: images).sorted()[0])
        let out = root.appendingPathComponent("found.png").path
        let detect = try OcelliExecutable.run(["detect", "--model", saved, first, "--out", out, "--thresh", "0.01", "--json",
                                               "--names", data.appendingPathComponent("labels.txt").path])
        #expect(detect.status == 0, "\(detect.error)")
        #expect(FileManager.default.fileExists(atPath: out))
        #expect(detect.output.contains("\"detections\""), "\(detect.output)")

        // One of --cfg and --arch; --model must be an SSD folder.
        let both = try OcelliExecutable.run(["train", "--arch", "ssd-digits", "--cfg", "yolo-digits", "--data", data.path])
        #expect(both.status != 0 && both.error.contains("--cfg"), "\(both.error)")
        let notSSD = try OcelliExecutable.run(["map", "--model", root.path, "--data", data.path])
        #expect(notSSD.status == 1 && notSSD.error.contains(root.path), "\(notSSD.error)")
    }
}
