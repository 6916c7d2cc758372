import ArgumentParser
import Foundation
import Ocelli

/// `ocelli anchors`: k-means anchor boxes for a data set, in Darknet's cfg format.
struct Anchors: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Anchor boxes by k-means over the boxes' sizes (distance 1 − IoU), printed for a Darknet cfg.",
        discussion: """
            --json prints one JSON object: {"anchors": [[w, h], …], "mean_iou": …, …}.
            Boxes are taken relative to their image and scaled to the network input: --size 416 gives anchors \
            in input pixels (YOLOv3's [yolo] anchors), --grid 13 in grid cells (YOLOv2's [region] anchors). \
            k-means++ seeding, --restarts seeded runs, the best mean IoU kept; anchors sorted by area.
            """)

    @Option(help: "The data set: a VOC, YOLO or COCO folder (or a COCO .json / YOLO list file).")
    var data: String

    @Option(help: "Number of anchors.")
    var k: Int = 5

    @Option(help: "Network input size: anchors in input pixels (YOLOv3). Default 416 unless --grid is given.")
    var size: Int?

    @Option(help: "Grid size: anchors in grid cells (YOLOv2), e.g. 13.")
    var grid: Int?

    @Option(help: "The split to read (e.g. train); default: the whole data set.")
    var split: String?

    @Option(help: "Seeded k-means runs; the best mean IoU is kept.")
    var restarts: Int = 10

    @Option(help: "Seed of the first run.")
    var seed: UInt64 = 0

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    @Option(help: "Write an SVG: the boxes' h vs w with the anchors (and mean IoU vs k with --sweep).")
    var plot: String?

    @Option(help: "Also cluster for every k in a range, e.g. 1...10, and print the mean IoU of each.")
    var sweep: String?

    func validate() throws {
        if size != nil && grid != nil { throw ValidationError("give --size or --grid, not both") }
        if let size, !(1...65_536).contains(size) { throw ValidationError("--size must be between 1 and 65536, got \(size)") }
        if let grid, !(1...4_096).contains(grid) { throw ValidationError("--grid must be between 1 and 4096, got \(grid)") }
        if !(1...Self.maximumK).contains(k) { throw ValidationError("--k must be between 1 and \(Self.maximumK), got \(k)") }
        if !(1...10_000).contains(restarts) { throw ValidationError("--restarts must be between 1 and 10000, got \(restarts)") }
        if let sweep { _ = try Self.parseRange(sweep) }
    }

    /// "1...10", "1..10", "1-10" or "1:10" (inclusive).
    static func parseRange(_ text: String) throws -> ClosedRange<Int> {
        for separator in ["...", "..", "-", ":"] {
            let parts = text.components(separatedBy: separator)
            if parts.count == 2, let lo = Int(parts[0].trimmingCharacters(in: .whitespaces)),
               let hi = Int(parts[1].trimmingCharacters(in: .whitespaces)), lo >= 1, lo <= hi {
                guard hi <= maximumK else { throw ValidationError("--sweep goes up to k = \(hi); at most \(maximumK) anchors") }
                return lo...hi
            }
        }
        throw ValidationError("--sweep must be a range like 1...10 (from at least 1), got '\(text)'")
    }

    static let maximumK = 1_000

    func run() throws {
        let dataset = try loadEvaluationData(path: data, split: split, names: nil)
        let scale = Double(grid ?? size ?? 416)
        let unit = grid != nil ? "grid cells" : "pixels"
        let sizes = AnchorClustering.sizes(of: dataset.images, scaleWidth: scale, scaleHeight: scale)
        guard sizes.count >= k else {
            throw ValidationError("\(data): \(sizes.count) boxes with a positive size, too few for \(k) anchors")
        }
        let result = AnchorClustering.kmeans(sizes: sizes, k: k, restarts: restarts, seed: seed)
        let range = try sweep.map { try Self.parseRange($0) }
        if let range, range.upperBound > sizes.count {
            throw ValidationError("\(data): --sweep goes up to k = \(range.upperBound), but there are only \(sizes.count) boxes with a positive size")
        }
        let swept = range.map { AnchorClustering.sweep(sizes: sizes, ks: $0, restarts: restarts, seed: seed) } ?? []
        if let plot {
            let svg = DetectionPlots.anchorsSVG(sizes: sizes, anchors: result.anchors, meanIoU: result.meanIoU,
                                                sweep: swept.map { ($0.k, $0.clusters.meanIoU) }, unit: unit)
            try SVGChart.write(svg, to: plot)
        }
        let decimals = grid != nil ? 2 : 0
        if json {
            func pair(_ a: (width: Double, height: Double)) -> String { "[\(a.width),\(a.height)]" }
            var fields = ["\"anchors\":[" + result.anchors.map(pair).joined(separator: ",") + "]",
                          "\"mean_iou\":\(result.meanIoU)", "\"k\":\(k)", "\"boxes\":\(sizes.count)",
                          grid != nil ? "\"grid\":\(grid!)" : "\"size\":\(Int(scale))",
                          "\"cfg\":\"\(result.cfgLine(decimals: decimals))\"", "\"restarts\":\(restarts)", "\"seed\":\(seed)"]
            if !swept.isEmpty {
                fields.append("\"sweep\":[" + swept.map { "{\"k\":\($0.k),\"mean_iou\":\($0.clusters.meanIoU)}" }.joined(separator: ",") + "]")
            }
            print("{" + fields.joined(separator: ",") + "}")
            return
        }
        print("\(sizes.count) boxes from \(dataset.images.count) images\(split.map { " (split \($0))" } ?? ""), "
              + "in \(unit) of a \(grid.map { "\($0) x \($0) grid" } ?? "\(Int(scale)) x \(Int(scale)) input")")
        print("anchors = \(result.cfgLine(decimals: decimals))")
        print(String(format: "mean IoU = %.4f   (k = %d, best of %d seeded runs from seed %llu)", result.meanIoU, k, restarts, seed))
        if !swept.isEmpty {
            print("")
            print("  k   mean IoU   anchors")
            for s in swept {
                print(String(format: "%3d   %.4f     ", s.k, s.clusters.meanIoU) + s.clusters.cfgLine(decimals: decimals))
            }
        }
        if let plot { print("plot: \(plot)") }
    }
}
