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

    /// Ctrl-C in the middle of an epoch, then `--resume`: the same weights as a run never
    /// interrupted. The checkpoints carry the class names (detect labels boxes without --names).
    @Test func interruptedSSDTrainingResumesToTheSameWeights() throws {
        guard case .success = OcelliExecutable.path else {
            if case .failure(let missing) = OcelliExecutable.path { Issue.record("\(missing)") }
            return
        }
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-ssd-resume-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: root) }
        let data = root.appendingPathComponent("digits")
        try DigitsDetection.write(split: .train, count: 16, seed: 5, digits: try DigitsDetection.Digits(), to: data)
        func arguments(_ backup: String) -> [String] {
            ["train", "--arch", "ssd-digits", "--data", data.path, "--val-split", "none", "--epochs", "3", "--batch", "2",
             "--threads", "2", "--backup", root.appendingPathComponent(backup).path, "--json"]
        }
        let straight = try OcelliExecutable.run(arguments("straight"))
        #expect(straight.status == 0, "\(straight.error)")
        #expect(straight.error.contains("1: ") && straight.error.contains("avg") && straight.error.contains("matched"), "Darknet's line per batch")

        // Interrupted once the first epoch's checkpoint exists: in the second epoch.
        let firstCheckpoint = root.appendingPathComponent("stopped/ssd-digits_last/model.json").path
        let stopped = try OcelliExecutable.run(arguments("stopped"), seconds: 600) { process in
            let deadline = Date().addingTimeInterval(300)
            while !FileManager.default.fileExists(atPath: firstCheckpoint) && process.isRunning && Date() < deadline { usleep(5_000) }
            kill(process.processIdentifier, SIGINT)
        }
        #expect(stopped.status == 130 && !stopped.signalled, "interrupted: \(stopped)")
        #expect(stopped.error.contains("Interrupted"), "\(stopped.error.suffix(300))")
        let resumed = try OcelliExecutable.run(arguments("stopped") + ["--resume"])
        #expect(resumed.status == 0, "\(resumed.error)")
        #expect(resumed.error.contains("resuming"), "\(resumed.error.prefix(300))")

        func weights(_ backup: String) throws -> [Float] {
            try Model.load(from: root.appendingPathComponent("\(backup)/ssd-digits_last").path, compile: false).getWeights().flatMap(\.scalars)
        }
        #expect(try weights("straight") == weights("stopped"), "resumed weights differ from the uninterrupted run's")

        // Finished: --resume says so; more epochs continue it.
        let again = try OcelliExecutable.run(arguments("stopped") + ["--resume"])
        #expect(again.status == 1 && again.error.contains("finished its 3 epochs"), "\(again.error)")
        let changed = try OcelliExecutable.run(arguments("stopped") + ["--resume", "--learning-rate", "0.01", "--epochs", "4"])
        #expect(changed.status == 1 && changed.error.contains("--learning-rate"), "\(changed.error)")
        let darknetOnly = try OcelliExecutable.run(arguments("other") + ["--subdivisions", "2"])
        #expect(darknetOnly.status == 1 && darknetOnly.error.contains("--subdivisions"), "\(darknetOnly.error)")

        // The class names came with the model.
        let images = data.appendingPathComponent("JPEGImages").path
        let first = (images as NSString).appendingPathComponent(try FileManager.default.contentsOfDirectory(atPath: images).sorted()[0])
        let detect = try OcelliExecutable.run(["detect", "--model", root.appendingPathComponent("straight/ssd-digits_last").path, first,
                                               "--thresh", "0.01", "--no-save", "--json"])
        #expect(detect.status == 0 && !detect.error.contains("no --names"), "\(detect.error)")
        #expect(!detect.output.contains("class 0") && detect.output.contains("\"detections\""), "\(detect.output.prefix(300))")
    }
}
