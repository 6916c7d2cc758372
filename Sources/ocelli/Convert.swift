import ArgumentParser
import Foundation
import Ocelli

extension DetectionDatasetFormat: ExpressibleByArgument {}

/// `ocelli convert`: a detection data set from one layout to another.
struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a detection data set between Pascal VOC, Darknet/YOLO and COCO layouts.",
        discussion: """
            --json prints one JSON object: images, objects, classes, from, to.
            Boxes are carried losslessly through one pixel convention: continuous 0-based pixels, a box \
            over pixel columns 0…9 being xmin = 0, xmax = 10.
              VOC   <bndbox> is 1-based and inclusive: xmin = x1 − 1, xmax = x2
              COCO  bbox [x, y, w, h] is 0-based: xmin = x, xmax = x + w
              YOLO  "class cx cy w h", relative to the image size (written with 6 decimals)
            VOC and COCO coordinates within 0.001 pixel of an integer are written as that integer \
            (undoing YOLO's rounding), others with up to 6 decimals.
            Layouts written under DST (images are hard-linked, or copied across file systems):
              voc   JPEGImages/, Annotations/<id>.xml, ImageSets/Main/<split>.txt
              yolo  images/, labels/<id>.txt (Darknet's images → labels rule), <split>.txt
              coco  images/, annotations/<split>.json
            and labels.txt (the class names in index order) for all three. YOLO text has no \
            difficult/truncated flags: they are lost when converting to YOLO; COCO keeps them as \
            extra "difficult"/"truncated" keys.
            """)

    @Option(help: "Layout of SRC: voc, yolo or coco (default: recognised from the files).")
    var from: DetectionDatasetFormat?

    @Option(help: "Layout to write: voc, yolo or coco.")
    var to: DetectionDatasetFormat

    @Option(help: "Split to read (VOC: ImageSets/Main/<split>.txt; YOLO: <split>.txt; COCO: annotations/<split>.json) and to name in DST (default: all images / the split read, else train).")
    var split: String?

    @Argument(help: "The data set to read: a folder, a YOLO list file or a COCO .json file.")
    var source: String

    @Argument(help: "The folder to write (created if needed).")
    var destination: String

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func run() throws {
        let dataset = try DetectionDataset.load(URL(fileURLWithPath: source), format: from, split: split)
        try dataset.write(to: URL(fileURLWithPath: destination), format: to, split: split)
        if json {
            print("{\"images\":\(dataset.images.count),\"objects\":\(dataset.objectCount),\"classes\":\(dataset.classNames.count),"
                  + "\"from\":\"\(dataset.format.rawValue)\",\"to\":\"\(to.rawValue)\"}")
        } else {
            print("\(source) (\(dataset.format.rawValue)) → \(destination) (\(to.rawValue)): \(dataset.images.count) images, "
                  + "\(dataset.objectCount) objects, \(dataset.classNames.count) classes")
        }
    }
}
