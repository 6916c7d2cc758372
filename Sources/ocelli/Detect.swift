import ArgumentParser
import Foundation
import Ocelli

/// Reports an error on standard error and gives the exit code to throw (1).
func failure(_ message: String) -> ExitCode {
    printError("error: " + message)
    return ExitCode.failure
}

/// Prints to standard error (Darknet's progress lines go there when stdout carries JSON).
func printError(_ s: String, terminator: String = "\n") {
    FileHandle.standardError.write((s + terminator).data(using: .utf8)!)
}

/// The class names for a network: `--names`, else a names file beside the cfg or weights whose
/// line count equals the heads' classes (coco.names for 80, voc.names for 20).
func classNames(names: String?, cfg: String, weights: String?, classes: Int) throws -> [String] {
    func read(_ path: String) throws -> [String] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            throw ValidationError("cannot read the names file \(path)")
        }
        return text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
    if let names { return try read(names) }
    let dirs = Set([cfg, weights].compactMap { $0 }.map { ($0 as NSString).deletingLastPathComponent })
    let candidates = classes == 80 ? ["coco.names"] : classes == 20 ? ["voc.names"] : []
    // Beside the cfg or weights first, then Darknet's own names files bundled in Data/cfg.
    for d in dirs.sorted() + [folder(of: BundledData.cfg("coco.names"))] {
        for c in candidates + ["labels.txt", "obj.names"] {
            let p = (d.isEmpty ? c : (d as NSString).appendingPathComponent(c))
            if FileManager.default.fileExists(atPath: p), let n = try? read(p), n.count == classes { return n }
        }
    }
    return []
}

/// Image files named on the command line; folders expand to the images inside, sorted.
func expandImages(_ paths: [String]) throws -> [String] {
    let extensions: Set<String> = ["jpg", "jpeg", "png"]
    var out: [String] = []
    for p in paths {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: p, isDirectory: &isDir) else {
            throw ValidationError("no such file or folder: \(p)")
        }
        if isDir.boolValue {
            let items = try FileManager.default.contentsOfDirectory(atPath: p).sorted()
            out += items.filter { extensions.contains(($0 as NSString).pathExtension.lowercased()) }
                .map { (p as NSString).appendingPathComponent($0) }
        } else {
            out.append(p)
        }
    }
    return out
}

/// `ocelli detect`: Darknet's `detect` with Darknet's own cfg and weights files.
struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detect objects with a Darknet YOLO model (cfg + weights), as `darknet detect` does.",
        discussion: """
            Prints Darknet's lines (Loading weights … Done!, `dog.jpg: Predicted in N milliseconds.`, \
            `dog: 99%`), draws the boxes and writes each image as JPEG (quality 90; --format png for PNG). Folders expand to their images; \
            images run through the network in batches. An image that cannot be read is reported \
            and skipped, and the exit status is then 1.
            Thresholds: pjreddie's `darknet detect` uses 0.5, AlexeyAB's darknet and Ocelli 0.25.
            Input: Darknet's letterbox by default (pjreddie); --no-letterbox resizes plainly, as \
            AlexeyAB's darknet and OpenCV's blobFromImage do (OpenCV's bilinear).
            """)

    @Argument(help: "The Darknet .cfg file.")
    var cfg: String

    @Argument(help: "The Darknet .weights file.")
    var weights: String

    @Argument(help: "Images or folders of images.")
    var images: [String] = []

    @Option(help: "Class names, one per line (default: coco.names / voc.names beside the cfg when the class count matches).")
    var names: String?

    @Option(help: "Score threshold (objectness × class probability). pjreddie's default is 0.5.")
    var thresh: Float = 0.25

    @Option(help: "NMS IoU threshold (Darknet's do_nms_sort, per class); 0 disables NMS.")
    var nms: Float = 0.45

    @Option(help: "Folder for the annotated images, or the file for a single image (default: predictions.jpg, or NAME_predictions.jpg for several images, in the current folder). An input is never replaced.")
    var out: String?

    @Option(help: "Format of the annotated images: jpg (default, as Darknet) or png; a --out FILE.png also asks for PNG.")
    var format: DetectOutput.Format?

    @Option(help: "JPEG quality of the annotated images, 1-100.")
    var quality: Int = 90

    @Flag(help: "Do not write annotated images.")
    var noSave = false

    @Flag(help: "Print one JSON object per image on stdout (Darknet's lines go to stderr).")
    var json = false

    @Flag(help: "Resize the image to the network input instead of letterboxing it.")
    var noLetterbox = false

    @Option(help: "Images per forward pass.")
    var batch: Int = 1

    @Option(help: "Network input width and height (default: the cfg's [net]); multiples of 32 for YOLO.")
    var size: Int?

    @Option(help: "Threads (default: OCELLI_NUM_THREADS or every core).")
    var threads: Int?

    @Flag(help: "Also print Darknet's layer table.")
    var verbose = false

    @Option(help: "A video file (decoded and re-encoded through ffmpeg) or a folder of frames; --out names the output video or folder.")
    var video: String?

    func validate() throws {
        if video != nil {
            guard images.isEmpty else { throw ValidationError("give either images or --video, not both") }
            guard out != nil else { throw ValidationError("--video needs --out (the output video file, or a folder for frames)") }
        } else {
            guard !images.isEmpty else { throw ValidationError("name at least one image or folder") }
        }
        guard thresh >= 0 && thresh < 1 else { throw ValidationError("--thresh must be in [0, 1)") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be in 1...100, got \(quality)") }
        guard nms >= 0 && nms <= 1 else { throw ValidationError("--nms must be in [0, 1]") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
        if let s = size, s < 32 || s % 32 != 0 { throw ValidationError("--size must be a positive multiple of 32") }
    }

    func run() throws {
        if let t = threads { Parallel.threadCount = t }
        let cfg = BundledData.cfgNamed(self.cfg) ?? self.cfg
        if let video {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: video, isDirectory: &isDir), !isDir.boolValue,
               VideoPipeline.which("ffmpeg") == nil || VideoPipeline.which("ffprobe") == nil {
                throw failure(VideoPipeline.missingTools)
            }
        }
        let network: DarknetNetwork
        do { network = try DarknetNetwork(cfg: cfg, width: size, height: size) } catch { throw failure("\(error)") }
        for w in network.config.warnings { printError("warning: \(w)") }
        if verbose { printError(network.darknetTable(), terminator: "") }
        guard !network.heads.isEmpty else { throw failure("\(cfg) has no [yolo], [region] or [detection] layer to detect with") }
        printError("Loading weights from \(weights)...", terminator: "")
        do { try network.loadWeights(weights) } catch { printError(""); throw failure("\(error)") }
        network.prepareForInference()  // so "Predicted in" times the forward pass alone, from the first image
        printError("Done!")
        let labels = try classNames(names: names, cfg: cfg, weights: weights, classes: network.heads[0].classes)
        // YOLOv1 ([detection]) was trained on plainly resized images and its boxes are not letterbox-corrected.
        let fit: InputFit = noLetterbox || network.usesPlainResize ? .resize : .letterbox
        if let video, let out {
            let annotate: (Image) -> Image = { frame in
                let x = network.input(for: frame, fit: fit).reshaped([1, network.height, network.width, 3])
                let dets = network.detections(outputs: network.forward(x), imageWidth: frame.width, imageHeight: frame.height,
                                              fit: fit, threshold: thresh, nmsThreshold: nms, classNames: labels)
                return frame.drawingDetections(dets, classes: network.heads[0].classes)
            }
            do { try VideoPipeline.run(input: video, output: out, annotate: annotate) } catch {
                throw failure("\(error)")
            }
            return
        }
        let files = try expandImages(images)
        let output = noSave ? nil : try DetectOutput(files: files, out: out, format: format)
        // Before the network runs: a destination that cannot be written fails now, not after.
        do { try output?.prepareFolder() } catch { throw failure("\(error)") }
        let classes = network.heads[0].classes
        let quality = self.quality

        // Reading runs one batch ahead on a background thread, and annotated images are drawn,
        // encoded and written on another, so the network does not wait for the files. An
        // unreadable image is reported and skipped; the others still run, and the exit code says
        // that something failed.
        let reader = DispatchQueue(label: "ocelli.detect.read"), writer = DispatchQueue(label: "ocelli.detect.write")
        let writeSlots = DispatchSemaphore(value: 4)  // bounds the annotated images held in memory
        let writeError = FirstError()
        func read(_ range: Range<Int>) -> Pending<[(index: Int, image: Result<Image, Error>)]> {
            Pending(on: reader) { range.map { i in (i, Result { try Image(contentsOf: files[i]) }) } }
        }
        var unreadable = 0
        var next = files.isEmpty ? nil : read(0..<min(batch, files.count))
        while let pending = next {
            let chunk = pending.wait()
            let end = chunk.last!.index + 1
            next = end < files.count ? read(end..<min(end + batch, files.count)) : nil
            var decoded: [(index: Int, image: Image)] = []
            for (i, result) in chunk {
                switch result {
                case .success(let image): decoded.append((i, image))
                case .failure(let error): printError("error: \(error)"); unreadable += 1
                }
            }
            guard !decoded.isEmpty else { continue }
            let began = Date()
            let inputs = decoded.map { network.input(for: $0.image, fit: fit) }
            let outputs = network.forward(Tensor.stack(inputs, axis: 0))
            let milliseconds = Date().timeIntervalSince(began) * 1000 / Double(decoded.count)
            for (b, (index, image)) in decoded.enumerated() {
                let file = files[index]
                let dets = network.detections(outputs: outputs, batchIndex: b, imageWidth: image.width, imageHeight: image.height,
                                              fit: fit, threshold: thresh, nmsThreshold: nms, classNames: labels)
                func report(_ line: String) { if json { printError(line) } else { print(line) } }
                report("\(file): Predicted in \(Int(milliseconds.rounded())) milliseconds.")
                for d in dets { report(d.className + ": " + String(format: "%.0f", Double(d.score) * 100) + "%") }
                if json { print(DetectPipeline.json(file: file, image: image, detections: dets)) }
                if let output {
                    if let error = writeError.error { writer.sync {}; throw failure("\(error)") }
                    writeSlots.wait()
                    let path = output.paths[index]
                    writer.async {
                        defer { writeSlots.signal() }
                        do { try output.write(image.drawingDetections(dets, classes: classes), to: path, quality: quality) } catch {
                            writeError.set(error)
                        }
                    }
                }
            }
        }
        writer.sync {}
        if let error = writeError.error { throw failure("\(error)") }
        if unreadable > 0 {
            throw failure("\(unreadable) of \(files.count) image\(files.count == 1 ? "" : "s") could not be read (named above)")
        }
    }
}

/// The result of work started on a queue, waited for when needed.
final class Pending<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var value: T?

    init(on queue: DispatchQueue, _ work: @escaping () -> T) {
        queue.async { self.value = work(); self.done.signal() }
    }

    func wait() -> T {
        done.wait()
        done.signal()  // a second wait returns at once
        return value!
    }
}

/// The steps of `detect` that scripts, benchmarks and tests share.
enum DetectPipeline {
    static func json(file: String, image: Image, detections: [Detection]) -> String {
        let object: [String: Any] = [
            "image": file, "width": image.width, "height": image.height,
            "detections": detections.map { d -> [String: Any] in
                ["class": d.className, "class_id": d.classIndex, "score": Double(d.score),
                 "x1": Double(d.x1), "y1": Double(d.y1), "x2": Double(d.x2), "y2": Double(d.y2)]
            },
        ]
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        return String(data: data, encoding: .utf8)!
    }
}

/// `ocelli summary`: a built-in architecture, a Darknet cfg or a saved Ocelli model, Keras-style,
/// with each layer's receptive field (size, jump, start) and optionally a map of what one
/// output cell sees.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's summary and receptive fields: a built-in architecture (\(Architectures.names.joined(separator: ", "))), a Darknet .cfg (plus Darknet's layer table and BFLOPs) or a model saved with save(to:).")

    @Argument(help: "An architecture name, a Darknet .cfg file, or a folder holding model.json (+ model.safetensors).")
    var model: String

    @Option(help: "Input width and height (default: the architecture's or the cfg's [net]).")
    var size: Int?

    @Option(help: "Classes of a built-in architecture (default: 1000, 10 for wide ResNets).")
    var classes: Int?

    @Option(name: .customLong("receptive-field-map"), help: "Draw on this image the region that one output cell sees.")
    var receptiveFieldMap: String?

    @Option(help: "The output cell ROW,COL for --receptive-field-map (default: the centre cell).")
    var cell: String?

    @Option(help: "The layer whose cell is drawn (default: the last layer with a spatial output).")
    var layer: String?

    @Option(help: "The PNG to write for --receptive-field-map.")
    var out: String = "receptive_field.png"

    func run() throws {
        var isDir: ObjCBool = false
        let built: Model
        var darknetTable: String?
        if FileManager.default.fileExists(atPath: model, isDirectory: &isDir), isDir.boolValue {
            do { built = try Model.load(from: model) } catch { throw failure("\(error)") }
        } else if !FileManager.default.fileExists(atPath: model), Architectures.names.contains(model.lowercased())
                    || model.lowercased().hasPrefix("wrn-") || model.lowercased().hasPrefix("mobilenet-") {
            do {
                built = try Architectures.named(model, classes: classes, inputShape: size.map { [$0, $0, 3] })
            } catch { throw failure("\(error)") }
        } else {
            let model = BundledData.cfgNamed(model) ?? model
            guard FileManager.default.fileExists(atPath: model) else {
                throw failure("\(model): no such file or folder, and not a built-in architecture (\(Architectures.names.joined(separator: ", ")); wrn-DEPTH-WIDTH and mobilenet-ALPHA take any numbers) or a bundled Darknet cfg (\(BundledData.cfgNames.joined(separator: ", ")))")
            }
            let network: DarknetNetwork
            do { network = try DarknetNetwork(cfg: model, width: size, height: size) } catch { throw failure("\(error)") }
            for w in network.config.warnings { printError("warning: \(w)") }
            built = network.model
            darknetTable = network.darknetTable()
        }
        print(built.summary())
        print("Receptive fields (input pixels; start = centre of cell 0):")
        print(built.receptiveFieldReport())
        if let darknetTable { print(darknetTable, terminator: "") }
        if let image = receptiveFieldMap {
            var target: (Int, Int)
            if let cell { target = try ReceptiveFieldMap.parseCell(cell) } else {
                let grid = built.receptiveFieldTable().last { $0.rows != nil && $0.outputShape.count == 3 }?.outputShape ?? [1, 1]
                target = (grid[0] / 2, grid[1] / 2)
            }
            do {
                print(try ReceptiveFieldMap.draw(model: built, imagePath: image, cell: target, layer: layer, out: out))
            } catch let e as ExitCode { throw e } catch { throw failure("\(error)") }
        }
    }
}

/// Frames in, annotated frames out: a folder of images, or a video through ffmpeg processes.
enum VideoPipeline {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static let missingTools = "ffmpeg and ffprobe are needed to read and write video files and were not found on PATH; install them (Debian/Ubuntu: apt-get install ffmpeg; macOS: brew install ffmpeg) or pass a folder of frames to --video"

    /// The path of an executable on PATH, or nil.
    static func which(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":") {
            let candidate = (String(dir) as NSString).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    static func run(input: String, output: String, annotate: (Image) -> Image) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: input, isDirectory: &isDir) else {
            throw Failure(description: "\(input): no such video file or folder of frames")
        }
        let started = Date()
        var frames = 0
        if isDir.boolValue {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            for file in try expandImages([input]) {
                let frame = try Image(contentsOf: file)
                let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
                try annotate(frame).write(png: (output as NSString).appendingPathComponent(stem + ".png"))
                frames += 1
            }
        } else {
            frames = try ffmpeg(input: input, output: output, annotate: annotate)
        }
        let seconds = Date().timeIntervalSince(started)
        printError("\(input): \(frames) frames in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", Double(frames) / max(seconds, 1e-9))) FPS) -> \(output)")
    }

    static func ffmpeg(input: String, output: String, annotate: (Image) -> Image) throws -> Int {
        guard let ffmpeg = which("ffmpeg"), let ffprobe = which("ffprobe") else {
            throw Failure(description: missingTools)
        }
        // Size and frame rate of the first video stream.
        let probe = Process()
        probe.executableURL = URL(fileURLWithPath: ffprobe)
        probe.arguments = ["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height,r_frame_rate",
                           "-of", "csv=p=0", input]
        let probeOut = Pipe(), probeErr = Pipe()
        probe.standardOutput = probeOut
        probe.standardError = probeErr
        try probe.run()
        let info = String(decoding: probeOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let probeError = String(decoding: probeErr.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        probe.waitUntilExit()
        let fields = info.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").first?.split(separator: ",") ?? []
        guard probe.terminationStatus == 0, fields.count >= 3, let width = Int(fields[0]), let height = Int(fields[1]),
              width > 0, height > 0 else {
            throw Failure(description: "\(input): ffprobe found no video stream (\(probeError.trimmingCharacters(in: .whitespacesAndNewlines)))")
        }
        let rate = String(fields[2])

        let decoder = Process()
        decoder.executableURL = URL(fileURLWithPath: ffmpeg)
        decoder.arguments = ["-v", "error", "-i", input, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        let frameIn = Pipe()
        decoder.standardOutput = frameIn
        let encoder = Process()
        encoder.executableURL = URL(fileURLWithPath: ffmpeg)
        encoder.arguments = ["-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)",
                             "-r", rate, "-i", "pipe:0", "-pix_fmt", "yuv420p", output]
        let frameOut = Pipe()
        encoder.standardInput = frameOut
        try decoder.run()
        try encoder.run()
        let frameBytes = width * height * 3
        var frames = 0
        let reader = frameIn.fileHandleForReading, writer = frameOut.fileHandleForWriting
        while true {
            var data = Data()
            while data.count < frameBytes {
                let chunk = reader.readData(ofLength: frameBytes - data.count)
                if chunk.isEmpty { break }
                data.append(chunk)
            }
            if data.count < frameBytes { break }
            let frame = Image(width: width, height: height, channels: 3, pixels: [UInt8](data))
            writer.write(Data(annotate(frame).pixels))
            frames += 1
        }
        try writer.close()
        decoder.waitUntilExit()
        encoder.waitUntilExit()
        guard decoder.terminationStatus == 0 else { throw Failure(description: "\(input): ffmpeg could not decode the video (exit \(decoder.terminationStatus))") }
        guard encoder.terminationStatus == 0 else { throw Failure(description: "\(output): ffmpeg could not encode the video (exit \(encoder.terminationStatus))") }
        return frames
    }
}
