import ArgumentParser
import Foundation
import Ocelli

/// `ocelli detect`: Darknet's `detect` with Darknet's own cfg and weights files.
struct Detect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Detect objects with a Darknet YOLO model (cfg + weights), as `darknet detect` does.",
        discussion: """
            --json prints one JSON object per image on stdout (Darknet's lines then go to stderr).
            Prints Darknet's lines (Loading weights … Done!, `dog.jpg: Predicted in N milliseconds.`, \
            `dog: 99%`), draws the boxes and writes each image as JPEG (quality 90; --format png for PNG). Folders expand to their images; \
            images run through the network in batches. An image that cannot be read is reported \
            and skipped, and the exit status is then 1.
            Thresholds: pjreddie's `darknet detect` uses 0.5, AlexeyAB's darknet and Ocelli 0.25.
            Input: Darknet's letterbox by default (pjreddie); --no-letterbox resizes plainly, as \
            AlexeyAB's darknet and OpenCV's blobFromImage do (OpenCV's bilinear).
            """)

    @Argument(help: "The Darknet .cfg file (with --model: an image).")
    var cfg: String?

    @Argument(help: "The Darknet .weights file (with --model: an image).")
    var weights: String?

    @Option(help: "Instead of CFG WEIGHTS: an Ocelli SSD model folder (ocelli train --arch … writes BACKUP/<arch>_best); every argument is then an image or folder.")
    var model: String?

    @Argument(help: "Images or folders of images.")
    var images: [String] = []

    @Option(help: "Class names, one per line (default: coco.names / voc.names beside the cfg when the class count matches; with --model, the names saved in the model folder).")
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

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @Flag(help: "Resize the image to the network input instead of letterboxing it.")
    var noLetterbox = false

    @Option(help: "Images per forward pass. Results do not depend on it; 4 runs a folder about 10 % faster than 1 on 2 cores (\"Predicted in\" is then the batch's time per image).")
    var batch: Int = 4

    @Option(help: "Network input width and height (default: the cfg's [net]); multiples of 32 for YOLO.")
    var size: Int?

    @OptionGroup var threadOptions: ThreadOptions

    @Flag(help: "Also print Darknet's layer table.")
    var verbose = false

    @Option(help: "A video file (decoded and re-encoded through ffmpeg) or a folder of frames; --out names the output video or folder.")
    var video: String?

    /// The images named: with --model the first two arguments are images too.
    var imageArguments: [String] { model == nil ? images : [cfg, weights].compactMap { $0 } + images }

    func validate() throws {
        if model == nil {
            guard cfg != nil, weights != nil else { throw ValidationError("give CFG WEIGHTS (a Darknet detector) or --model DIR (an Ocelli SSD)") }
        } else {
            guard video == nil else { throw ValidationError("--video takes a Darknet detector (CFG WEIGHTS) for now, not --model") }
            guard !imageArguments.isEmpty else { throw ValidationError("name at least one image or folder") }
        }
        if video != nil {
            guard images.isEmpty else { throw ValidationError("give either images or --video, not both") }
            guard out != nil else { throw ValidationError("--video needs --out (the output video file, or a folder for frames)") }
        } else if model == nil {
            guard !images.isEmpty else { throw ValidationError("name at least one image or folder") }
        }
        guard thresh >= 0 && thresh < 1 else { throw ValidationError("--thresh must be in [0, 1)") }
        guard (1...100).contains(quality) else { throw ValidationError("--quality must be in 1...100, got \(quality)") }
        guard nms >= 0 && nms <= 1 else { throw ValidationError("--nms must be in [0, 1]") }
        if let video, let out, resolvedPath(video) == resolvedPath(out) {
            throw ValidationError("--out \(out) is the input --video \(video): write the output to another file or folder")
        }
        guard (1...1_024).contains(batch) else { throw ValidationError("--batch must be between 1 and 1024, got \(batch)") }
        if let s = size, s < 32 || s > 8_192 || s % 32 != 0 { throw ValidationError("--size must be a multiple of 32 from 32 to 8192, got \(s)") }
    }

    func run() throws {
        threadOptions.apply()
        if let model { return try runSSD(model) }
        guard let cfgArgument = self.cfg, let weights else { throw ValidationError("give CFG WEIGHTS or --model DIR") }
        let cfg = BundledData.cfgNamed(cfgArgument) ?? cfgArgument
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
        // The reader also makes each image's network input, so the network's thread only runs it.
        func read(_ range: Range<Int>) -> Pending<[(index: Int, image: Result<(image: Image, input: Tensor), Error>)]> {
            Pending(on: reader) {
                range.map { i in
                    (i, Result { let image = try Image(contentsOf: files[i]); return (image, network.input(for: image, fit: fit)) })
                }
            }
        }
        var unreadable = 0
        var next = files.isEmpty ? nil : read(0..<min(batch, files.count))
        while let pending = next {
            let chunk = pending.wait()
            let end = chunk.last!.index + 1
            next = end < files.count ? read(end..<min(end + batch, files.count)) : nil
            var decoded: [(index: Int, image: Image)] = []
            var inputs: [Tensor] = []
            for (i, result) in chunk {
                switch result {
                case .success(let read): decoded.append((i, read.image)); inputs.append(read.input)
                case .failure(let error): printError("error: \(error)"); unreadable += 1
                }
            }
            guard !decoded.isEmpty else { continue }
            let began = Date()
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

extension Detect {
    /// `detect --model DIR`: an Ocelli SSD over images, the same lines, JSON and drawings as
    /// with a Darknet detector.
    func runSSD(_ folder: String) throws {
        let detector: SSDDetector
        do { detector = try SSDDetector.load(from: folder) } catch { throw failure("\(error)") }
        var post = detector.postProcessing
        post.scoreThreshold = Double(thresh); post.nmsThreshold = Double(nms)
        var ssd = detector
        ssd.postProcessing = post
        let labels: [String]
        if let names {
            labels = try classNames(names: names, cfg: folder, weights: folder, classes: detector.classes)
        } else if let saved = detector.classNames {
            labels = saved
        } else {
            labels = (0..<detector.classes).map { "class \($0)" }
            printError("note: no --names: classes are numbered")
        }
        let files = try expandImages(imageArguments)
        let output = noSave ? nil : try DetectOutput(files: files, out: out, format: format)
        do { try output?.prepareFolder() } catch { throw failure("\(error)") }
        var unreadable = 0
        var start = 0
        while start < files.count {
            let range = start..<min(start + batch, files.count)
            start = range.upperBound
            var decoded: [(index: Int, image: Image)] = []
            for i in range {
                do { decoded.append((i, try Image(contentsOf: files[i]))) } catch { printError("error: \(error)"); unreadable += 1 }
            }
            guard !decoded.isEmpty else { continue }
            let began = Date()
            let found = ssd.detect(images: decoded.map(\.image))
            let milliseconds = Date().timeIntervalSince(began) * 1000 / Double(decoded.count)
            for ((index, image), dets) in zip(decoded, found) {
                let file = files[index]
                let drawn = dets.map { d in
                    Detection(classIndex: d.classIndex, className: d.classIndex < labels.count ? labels[d.classIndex] : "class \(d.classIndex)",
                              score: Float(d.score), x1: Float(d.box.xmin), y1: Float(d.box.ymin), x2: Float(d.box.xmax), y2: Float(d.box.ymax))
                }
                func report(_ line: String) { if json { printError(line) } else { print(line) } }
                report("\(file): Predicted in \(Int(milliseconds.rounded())) milliseconds.")
                for d in drawn { report(d.className + ": " + String(format: "%.0f", Double(d.score) * 100) + "%") }
                if json { print(DetectPipeline.json(file: file, image: image, detections: drawn)) }
                if let output {
                    do { try output.write(image.drawingDetections(drawn, classes: detector.classes), to: output.paths[index], quality: quality) } catch {
                        throw failure("\(error)")
                    }
                }
            }
        }
        if unreadable > 0 {
            throw failure("\(unreadable) of \(files.count) image\(files.count == 1 ? "" : "s") could not be read (named above)")
        }
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
        // Non-finite numbers never reach here (the decoder leaves such boxes out); if one did, the
        // line says so instead of a trap.
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            let fallback: [String: Any] = ["image": file, "error": "a detection has a value that is not a finite number"]
            return String(decoding: (try? JSONSerialization.data(withJSONObject: fallback, options: [.sortedKeys])) ?? Data(), as: UTF8.self)
        }
        return String(decoding: data, as: UTF8.self)
    }
}
