import Foundation
import Testing
import OcelliTestSupport
import OcelliNN
import OcelliVision
@testable import OcelliDarknet
#if canImport(Glibc)
import Glibc
#endif

/// The command-line tool against damaged files and hostile options, as a user's shell runs it:
/// every case ends by itself, within seconds, with status 1 (or ArgumentParser's 64) and a
/// message naming what is wrong — never a trap, an abort, a hang or a changed input. Issue 16's
/// classes: numbers from files, numbers from options, NaN, outputs over inputs, hangs, streams.
@Suite(.serialized) struct HostileInputTests {
    /// A folder with a small cfg, random weights for it, a digits data set and an image.
    final class Scene {
        let root: URL
        let cfg: String, weights: String, data: String, image: String
        init() throws {
            root = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-hostile-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
            cfg = root.appendingPathComponent("tiny.cfg").path
            try DarknetTrainingTests.tinyDigitsCfg.write(toFile: cfg, atomically: true, encoding: .utf8)
            let weightsPath = root.appendingPathComponent("tiny.weights").path, cfgPath = cfg
            weights = weightsPath
            try RandomSeed.withSeed(3) { try DarknetNetwork(cfg: cfgPath).saveWeights(weightsPath) }
            data = root.appendingPathComponent("digits").path
            try DigitsDetection.write(split: .train, count: 16, seed: 2, digits: try DigitsDetection.Digits(), to: URL(fileURLWithPath: data))
            let images = root.appendingPathComponent("digits/JPEGImages").path
            let first = try FileManager.default.contentsOfDirectory(atPath: images).sorted()[0]
            image = (images as NSString).appendingPathComponent(first)
        }
        deinit { try? FileManager.default.removeItem(at: root) }

        func path(_ name: String) -> String { root.appendingPathComponent(name).path }

        /// A copy of the cfg with `old` replaced by `new` (once, which must be found).
        func cfg(replacing old: String, with new: String, name: String) throws -> String {
            let text = DarknetTrainingTests.tinyDigitsCfg
            guard let range = text.range(of: old) else { throw CaseError("'\(old)' is not in the cfg") }
            let p = path(name + ".cfg")
            try text.replacingCharacters(in: range, with: new).write(toFile: p, atomically: true, encoding: .utf8)
            return p
        }
    }

    struct CaseError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    static func executableAvailable() -> Bool {
        if case .failure(let missing) = OcelliExecutable.path { Issue.record("\(missing)"); return false }
        return true
    }

    /// Runs a case: a clear error, naming `mentions` when given.
    static func expectClearError(_ name: String, _ arguments: [String], mentions: String? = nil) throws {
        let r = try OcelliExecutable.run(arguments, seconds: 30)
        #expect(r.isClearError, "\(name): \(r)")
        if let mentions { #expect(r.error.contains(mentions), "\(name): the message does not say '\(mentions)': \(r.error)") }
    }

    @Test func numbersInCfgFilesAreCheckedBeforeUse() throws {
        guard Self.executableAvailable() else { return }
        let s = try Scene()
        let cases: [(String, String, String, String?)] = [
            ("width", "width=64", "width=4000000000", "too large"),
            ("kernel", "size=3", "size=100000", "from 1 to 1024"),
            ("filters-huge", "filters=8", "filters=2000000000", "from 1 to 65536"),
            ("filters-zero", "filters=8", "filters=0", "from 1 to 65536"),
            ("filters-float", "filters=16", "filters=1e11", "an integer"),
            ("kernel-weights", "filters=32", "filters=65536\nsize=200", "weights"),
            ("pool-stride", "size=2\nstride=2", "size=2\nstride=0", "from 1 to 1024"),
            ("pool-size", "size=2\nstride=2", "size=0\nstride=2", "from 1 to 1024"),
            ("padding", "pad=1", "padding=100000000", "from 0 to 65536"),
            ("classes", "classes=10", "classes=-4", "from 1 to"),
            ("num", "num=3", "num=-1", "from 1 to"),
            ("mask", "mask=0,1,2", "mask=0,1,7", "mask index 7"),
            ("anchors-nan", "anchors=6,8, 12,14, 20,22", "anchors=6,nan,1,1,1,1", "numbers"),
            ("route-forward", "[yolo]", "[route]\nlayers=40\n\n[yolo]", "refers to layer"),
            ("shortcut", "[yolo]", "[shortcut]\nfrom=-1000\n\n[yolo]", "refers to layer"),
            ("upsample", "[yolo]", "[upsample]\nstride=100000\n\n[yolo]", "stride"),
            ("reorg", "[yolo]", "[reorg]\nstride=0\n\n[yolo]", "stride"),
            ("huge-output", "width=64", "width=60000\nheight=60000", "too large"),
            ("route-groups", "[yolo]", "[route]\nlayers=-1\ngroups=2\ngroup_id=1\n\n[yolo]", "groups="),
        ]
        for (name, old, new, mentions) in cases {
            try Self.expectClearError("cfg \(name)", ["summary", try s.cfg(replacing: old, with: new, name: name)], mentions: mentions)
        }
        // [net]'s training numbers (read by the trainer).
        for (key, value) in [("batch", "0"), ("subdivisions", "3"), ("max_batches", "-1"), ("burn_in", "-5"), ("batch", "100000000"),
                             ("learning_rate", "nan"), ("steps", "-1")] {
            var net = ["batch": "2", "subdivisions": "1", "max_batches": "2", "policy": "steps", "steps": "1", "scales": ".1"]
            net[key] = value
            let lines = net.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined()
            let p = try s.cfg(replacing: "[net]\n", with: "[net]\n" + lines, name: "net-\(key)-\(value)")
            try Self.expectClearError("[net] \(key)=\(value)", ["train", "--cfg", p, "--data", s.data, "--val-split", "none",
                                                                "--backup", s.path("backup-\(key)-\(value)")])
        }
    }

    @Test func numbersInOptionsAreChecked() throws {
        guard Self.executableAvailable() else { return }
        let s = try Scene()
        let cases: [(String, [String], String?)] = [
            ("detect size huge", ["detect", s.cfg, s.weights, s.image, "--size", "3200000"], "--size"),
            ("detect size zero", ["detect", s.cfg, s.weights, s.image, "--size", "0"], "--size"),
            ("detect threads", ["detect", s.cfg, s.weights, s.image, "--threads", "1000000"], "--threads"),
            ("detect thresh nan", ["detect", s.cfg, s.weights, s.image, "--thresh", "nan"], "--thresh"),
            ("summary size 0", ["summary", "resnet18", "--size", "0"], "input shape"),
            ("summary classes 0", ["summary", "resnet18", "--classes", "0"], "classes"),
            ("summary small input", ["summary", "densenet121", "--size", "8"], "at least"),
            ("summary alpha", ["summary", "mobilenet-1e9"], "ALPHA"),
            ("summary wrn width", ["summary", "wrn-28-100000"], "width"),
            ("anchors size", ["anchors", "--data", s.data, "--size", "9223372036854775807"], "--size"),
            ("anchors sweep", ["anchors", "--data", s.data, "--sweep", "1...9223372036854775807"], "--sweep"),
            ("anchors sweep beyond boxes", ["anchors", "--data", s.data, "--k", "1", "--sweep", "1...900"], "boxes"),
            ("anchors k", ["anchors", "--data", s.data, "--k", "0"], "--k"),
            ("inspect batch", ["datasets", "inspect", s.data, "--batches", "1", "--batch-size", "0"], "--batch-size"),
            ("inspect size", ["datasets", "inspect", s.data, "--batches", "1", "--size", "0"], "--size"),
            ("inspect workers", ["datasets", "inspect", s.data, "--batches", "1", "--workers", "0"], "--workers"),
            ("inspect prefetch", ["datasets", "inspect", s.data, "--batches", "1", "--prefetch=-1"], "--prefetch"),
            ("inspect step", ["datasets", "inspect", s.data, "--batches", "1", "--step-ms", "nan"], "--step-ms"),
            ("digits count huge", ["datasets", "digits", "--split", "train", "--count", "1000000000000", "--out", s.path("d")], "--count"),
            ("digits count zero", ["datasets", "digits", "--split", "train", "--count", "0", "--out", s.path("d")], "--count"),
            ("map thresh nan", ["map", "--cfg", s.cfg, "--weights", s.weights, "--data", s.data, "--thresh", "nan"], "--thresh"),
            ("train batch", ["train", "--cfg", s.cfg, "--data", s.data, "--batch", "100000000"], "--batch"),
            ("mnist epochs", ["mnist", "--epochs", "0"], "--epochs"),
            ("mnist batch", ["mnist", "--batch-size", "9223372036854775807"], "--batch-size"),
            ("bench budget", ["bench", "kernels", "--budget", "inf"], "--budget"),
            ("bench detect images", ["bench", "detect", "--images", "9223372036854775807"], "--images"),
            ("bench augment", ["bench", "augment", "--seconds", "inf"], "--seconds"),
            ("example depth", ["examples", "selu", "--depth", "0"], "--depth"),
            ("example units", ["examples", "selu", "--units", "9223372036854775807"], "--units"),
        ]
        for (name, arguments, mentions) in cases { try Self.expectClearError(name, arguments, mentions: mentions) }
    }

    @Test func damagedWeightsAndImagesAreClearErrors() throws {
        guard Self.executableAvailable() else { return }
        let s = try Scene()
        let good = try Data(contentsOf: URL(fileURLWithPath: s.weights))
        func weights(_ name: String, _ bytes: Data) throws -> String {
            let p = s.path(name + ".weights")
            try bytes.write(to: URL(fileURLWithPath: p))
            return p
        }
        var nan = good
        nan.replaceSubrange(24..<28, with: [0x00, 0x00, 0xc0, 0x7f])      // a NaN bias
        var random = Data(count: good.count)
        var g = SystemRandomNumberGenerator()
        random.withUnsafeMutableBytes { for i in $0.indices { $0[i] = UInt8.random(in: 0...255, using: &g) } }
        let cases: [(String, Data, String?)] = [
            ("empty", Data(), "too short"), ("header only", good.prefix(20), "truncated"),
            ("half", good.prefix(good.count / 2), "truncated"), ("long", good + Data(count: 8), "too long"),
            ("nan", nan, "NaN"), ("random", random, nil),
        ]
        for (name, bytes, mentions) in cases {
            try Self.expectClearError("weights \(name)", ["detect", s.cfg, try weights(name, bytes), s.image], mentions: mentions)
        }
        // Images: empty, truncated, random bytes behind a JPEG marker, a folder, a FIFO (no hang).
        let jpeg = try Data(contentsOf: URL(fileURLWithPath: s.image))
        for (name, bytes) in [("empty.png", Data()), ("truncated.png", jpeg.prefix(jpeg.count / 3)),
                              ("noise.jpg", Data([0xff, 0xd8, 0xff, 0xe0]) + random.prefix(5000))] {
            let p = s.path(name)
            try bytes.write(to: URL(fileURLWithPath: p))
            let r = try OcelliExecutable.run(["detect", s.cfg, s.weights, p, "--out", s.path("out-\(name)")], seconds: 30)
            #expect(r.isClearError, "image \(name): \(r)")
        }
        let folder = s.path("folder.jpg")
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        try Self.expectClearError("image folder", ["detect", s.cfg, s.weights, folder], mentions: "no .jpg")
        let fifo = s.path("fifo.jpg")
        #expect(mkfifo(fifo, 0o600) == 0)
        try Self.expectClearError("image FIFO", ["detect", s.cfg, s.weights, fifo], mentions: "not a regular file")
        let fifoCfg = s.path("fifo.cfg")
        #expect(mkfifo(fifoCfg, 0o600) == 0)
        try Self.expectClearError("cfg FIFO", ["summary", fifoCfg], mentions: "not a regular file")
    }

    @Test func damagedAnnotationsAreClearErrors() throws {
        guard Self.executableAvailable() else { return }
        let s = try Scene()
        let annotations = URL(fileURLWithPath: s.data).appendingPathComponent("Annotations")
        let first = try FileManager.default.contentsOfDirectory(atPath: annotations.path).sorted()[0]
        let xml = try String(contentsOf: annotations.appendingPathComponent(first), encoding: .utf8)
        func voc(_ name: String, _ edit: (String) -> String) throws -> String {
            let copy = s.path("voc-\(name)")
            try FileManager.default.copyItem(atPath: s.data, toPath: copy)
            try edit(xml).write(toFile: "\(copy)/Annotations/\(first)", atomically: true, encoding: .utf8)
            return copy
        }
        func replacingTag(_ tag: String, _ value: String) -> (String) -> String {
            { text in text.replacingOccurrences(of: "<\(tag)>[^<]*</\(tag)>", with: "<\(tag)>\(value)</\(tag)>", options: .regularExpression) }
        }
        for (name, edit, mentions) in [("width-huge", replacingTag("width", "1e30"), "<width>"),
                                       ("width-int64", replacingTag("width", "4000000000"), "<width>"),
                                       ("xmax-huge", replacingTag("xmax", "1e30"), "outside"),
                                       ("xmin-nan", replacingTag("xmin", "nan"), "expected a number"),
                                       ("truncated", { String($0.prefix($0.count / 2)) }, nil)] as [(String, (String) -> String, String?)] {
            let copy = try voc(name, edit)
            try Self.expectClearError("VOC \(name) inspect", ["datasets", "inspect", copy], mentions: mentions)
            try Self.expectClearError("VOC \(name) anchors", ["anchors", "--data", copy, "--k", "1"], mentions: mentions)
        }
        // YOLO labels with absurd numbers: the message prints them without trapping.
        let yolo = s.path("yolo")
        let convert = try OcelliExecutable.run(["convert", "--to", "yolo", s.data, yolo], seconds: 30)
        #expect(convert.status == 0, "\(convert)")
        let labels = try FileManager.default.contentsOfDirectory(atPath: yolo + "/labels").sorted()
        for (k, line) in ["0 1e20 0.5 0.1 0.1", "0 0.5 0.5 nan 0.1", "1e30 0.5 0.5 0.1 0.1", "0 0.5 0.5", "-1 0.5 0.5 0.1 0.1"].enumerated() {
            try (line + "\n").write(toFile: "\(yolo)/labels/\(labels[0])", atomically: true, encoding: .utf8)
            try Self.expectClearError("YOLO label \(k)", ["datasets", "inspect", yolo], mentions: labels[0])
        }
        // An empty data set: nothing to time, said at once (it used to wait for ever).
        let empty = s.path("empty")
        for folder in ["Annotations", "JPEGImages", "ImageSets/Main"] {
            try FileManager.default.createDirectory(atPath: "\(empty)/\(folder)", withIntermediateDirectories: true)
        }
        try Data().write(to: URL(fileURLWithPath: "\(empty)/ImageSets/Main/train.txt"))
        try Self.expectClearError("empty data set", ["datasets", "inspect", empty, "--batches", "2"], mentions: "no images")
        try Self.expectClearError("train on nothing", ["train", "--cfg", s.cfg, "--data", empty, "--val-split", "none", "--max-batches", "2",
                                                       "--backup", s.path("b-empty")], mentions: "no images")
        // A missing label file among others is named.
        try FileManager.default.removeItem(atPath: "\(yolo)/labels/\(labels[0])")
        try Self.expectClearError("YOLO missing label", ["datasets", "inspect", yolo], mentions: "no label file")
    }

    @Test func outputsNeverReplaceInputs() throws {
        guard Self.executableAvailable() else { return }
        let s = try Scene()
        func digest(_ folder: String) throws -> [String: Data] {
            var out: [String: Data] = [:]
            let e = FileManager.default.enumerator(atPath: folder)
            while let name = e?.nextObject() as? String {
                var d: ObjCBool = false
                let p = (folder as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: p, isDirectory: &d), !d.boolValue { out[name] = try Data(contentsOf: URL(fileURLWithPath: p)) }
            }
            return out
        }
        let before = try digest(s.data)
        // Into the source itself, through a symbolic link to it, and into its images' folder.
        let link = s.path("link")
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: s.data)
        for destination in [s.data, link, s.data + "/JPEGImages"] {
            try Self.expectClearError("convert into \(destination)", ["convert", "--to", "voc", s.data, destination], mentions: "another folder")
        }
        #expect(try digest(s.data) == before, "convert changed its source")
        // A split line that climbs out of the data set.
        let split = s.data + "/ImageSets/Main/train.txt"
        let ids = try String(contentsOfFile: split, encoding: .utf8)
        try "../../x\n".write(toFile: split, atomically: true, encoding: .utf8)
        defer { try? ids.write(toFile: split, atomically: true, encoding: .utf8) }
        try Self.expectClearError("split traversal", ["convert", "--to", "voc", "--split", "train", s.data, s.path("out/dst")], mentions: "not an image id")
        #expect(!FileManager.default.fileExists(atPath: s.path("x.xml")) && !FileManager.default.fileExists(atPath: s.path("out/x.xml")))
        try ids.write(toFile: split, atomically: true, encoding: .utf8)
        // detect --out naming the input, or its folder: the input stays as it was.
        let input = try Data(contentsOf: URL(fileURLWithPath: s.image))
        for out in [s.image, (s.image as NSString).deletingLastPathComponent] {
            let r = try OcelliExecutable.run(["detect", s.cfg, s.weights, s.image, "--out", out, "--format", "png"], seconds: 60)
            #expect(r.status == 0 && r.error.contains("note:"), "\(r)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: s.image)) == input, "detect --out \(out) replaced its input")
        }
        // Logs and plots onto inputs, or onto the model being saved.
        let cfgCopy = s.path("copy.cfg")
        try FileManager.default.copyItem(atPath: s.cfg, toPath: cfgCopy)
        let cfgBytes = try Data(contentsOf: URL(fileURLWithPath: cfgCopy))
        try Self.expectClearError("train --csv onto the cfg", ["train", "--cfg", cfgCopy, "--data", s.data, "--csv", cfgCopy, "--val-split", "none",
                                                              "--max-batches", "1", "--backup", s.path("b-csv")], mentions: "--csv")
        #expect(try Data(contentsOf: URL(fileURLWithPath: cfgCopy)) == cfgBytes, "train --csv replaced the cfg")
        try Self.expectClearError("mnist --plot onto the model", ["mnist", "--epochs", "1", "--limit", "32", "--save", s.path("m"),
                                                                  "--plot", s.path("m/model.json")], mentions: "--plot")
        try Self.expectClearError("map --save-detections onto the ground truth",
                                  ["map", "--cfg", s.cfg, "--weights", s.weights, "--data", s.data,
                                   "--save-detections", s.data + "/ImageSets/Main/train.txt"], mentions: "--save-detections")
        // A folder that cannot be created: the reason, not Foundation's dump.
        try Data("x".utf8).write(to: URL(fileURLWithPath: s.path("a-file")))
        try Self.expectClearError("convert under a file", ["convert", "--to", "yolo", s.data, s.path("a-file/dst")], mentions: "is a file, not a folder")
        try Self.expectClearError("digits under a file", ["datasets", "digits", "--split", "train", "--count", "2", "--out", s.path("a-file/x")],
                                  mentions: "is a file, not a folder")
    }

    @Test func writeFailuresOnTheStreamsAreReported() throws {
        guard Self.executableAvailable() else { return }
        // stdout on a full device: status 1 and the reason on stderr, not a silent success.
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let r = try OcelliExecutable.run(["summary", "yolov3-tiny"], seconds: 30, standardOutput: full)
        #expect(r.status == 1 && !r.signalled && r.error.contains("could not write the output"), "\(r)")
        // stdout a pipe whose reader has gone: status 1 (not death by SIGPIPE).
        let pipe = Pipe()
        try pipe.fileHandleForReading.close()
        let closed = try OcelliExecutable.run(["summary", "yolov3-tiny"], seconds: 30, standardOutput: pipe.fileHandleForWriting)
        #expect(closed.status == 1 && !closed.signalled && closed.error.contains("could not write the output"), "\(closed)")
    }

    @Test func ctrlCDuringTrainingWritesACheckpoint() throws {
        guard Self.executableAvailable() else { return }
        let s = try Scene()
        let cfg = s.path("train.cfg")
        try DarknetTrainerTests.cfg.write(toFile: cfg, atomically: true, encoding: .utf8)
        let backup = s.path("backup")
        let arguments = ["train", "--cfg", cfg, "--data", s.data, "--val-split", "none", "--backup", backup, "--threads", "1"]
        let r = try OcelliExecutable.run(arguments + ["--max-batches", "100000"], seconds: 120) { process in
            Thread.sleep(forTimeInterval: 4)
            kill(process.processIdentifier, SIGINT)
        }
        #expect(r.status == 130 && !r.signalled, "\(r)")
        #expect(r.output.contains("Stopped at iteration") && r.output.contains("--resume"), "\(r.output.suffix(400))")
        for name in ["train_last.weights", "train_last.state.safetensors", "train_last.safetensors"] {
            #expect(FileManager.default.fileExists(atPath: (backup as NSString).appendingPathComponent(name)), "\(name) missing")
        }
        // The checkpoint continues: iterations from where it stopped.
        let stopped = try DarknetNetwork(cfg: cfg)
        let seen = try stopped.loadWeights((backup as NSString).appendingPathComponent("train_last.weights")).seen
        let iteration = Int(seen / 8)
        #expect(iteration >= 1)
        let resumed = try OcelliExecutable.run(arguments + ["--resume", "--max-batches", String(iteration + 2)], seconds: 120)
        #expect(resumed.status == 0, "\(resumed)")
        #expect(resumed.output.contains("Resuming at iteration \(iteration)") && resumed.output.contains("\(iteration + 2): "), "\(resumed.output.suffix(600))")
        // SIGTERM (a scheduler's stop) does the same, with the shell's status for it.
        let terminated = try OcelliExecutable.run(arguments + ["--resume", "--max-batches", "100000"], seconds: 120) { process in
            Thread.sleep(forTimeInterval: 3)
            kill(process.processIdentifier, SIGTERM)
        }
        #expect(terminated.status == 143 && !terminated.signalled && terminated.output.contains("Stopped at iteration"), "\(terminated)")
    }
}
