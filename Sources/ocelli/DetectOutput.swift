import ArgumentParser
import Foundation
import Ocelli

/// Where `detect` writes the annotated images, and in which format.
struct DetectOutput {
    enum Format: String, ExpressibleByArgument { case jpg, png }

    let format: Format
    /// One path per input file, in order.
    let paths: [String]
    /// The folder they go to.
    let folder: String

    /// Creates the folder if needed and checks that files can be written into it.
    func prepareFolder() throws { try ensureWritableDirectory(folder) }

    /// Darknet's names: `predictions.jpg` for one image, `<stem>_predictions.jpg` for several (in
    /// the current folder), or `<out>/<stem>.jpg`; `--out FILE.jpg|png` names the file of a single
    /// image. The format is JPEG unless `format` or the file name asks for PNG. Names are made
    /// unique (two inputs with one stem), and a name that resolves to one of the inputs gets
    /// `_predictions` (then a number), so an input is never replaced.
    init(files: [String], out: String?, format requested: Format?) throws {
        let outExtension = out.map { ($0 as NSString).pathExtension.lowercased() } ?? ""
        let namesFile = ["jpg", "jpeg", "png"].contains(outExtension)
        let folder = namesFile ? Ocelli.folder(of: out!) : out ?? "."
        self.folder = folder
        if namesFile && files.count != 1 {
            throw ValidationError("--out \(out!) names one file, but there are \(files.count) images: give a folder")
        }
        let fromName: Format? = namesFile ? (outExtension == "png" ? .png : .jpg) : nil
        if let requested, let fromName, requested != fromName {
            throw ValidationError("--out \(out!) is a .\(outExtension) file but --format is \(requested.rawValue)")
        }
        format = requested ?? fromName ?? .jpg
        let ext = format.rawValue
        let inputs = Set(files.map(resolvedPath))
        var taken = Set<String>()
        var paths: [String] = []
        for file in files {
            let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
            let base: String
            if namesFile {
                base = ((out! as NSString).lastPathComponent as NSString).deletingPathExtension
            } else {
                base = out != nil ? stem : files.count == 1 ? "predictions" : "\(stem)_predictions"
            }
            func candidate(_ name: String) -> String {
                out == nil ? name + "." + ext : (folder as NSString).appendingPathComponent(name + "." + ext)
            }
            // base, then base_predictions (unless it is that already), base_predictions_2, …
            let suffixed = base.hasSuffix("_predictions") ? base : base + "_predictions"
            var k = 0
            var path = candidate(base)
            let first = path
            while inputs.contains(resolvedPath(path)) || taken.contains(resolvedPath(path)) {
                k += 1
                path = candidate(k == 1 && suffixed != base ? suffixed : "\(suffixed)_\(k)")
            }
            if path != first {
                let why = inputs.contains(resolvedPath(first)) ? "is an input" : "is the result of another input"
                printError("note: \(first) \(why), so the result of \(file) is written to \(path)")
            }
            taken.insert(resolvedPath(path))
            paths.append(path)
        }
        self.paths = paths
    }


    /// Encodes and writes one annotated image.
    func write(_ image: Image, to path: String, quality: Int) throws {
        switch format {
        case .jpg: try image.write(jpeg: path, quality: quality)
        case .png: try image.write(png: path)
        }
    }
}
