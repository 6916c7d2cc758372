import Foundation
import Testing
import OcelliVision
import OcelliDetection

/// Anchor k-means against Darknet's calc_anchors (transcribed in Scripts/make_detection_eval_fixtures.py).
@Suite("Detection anchors")
struct DetectionAnchorsTests {
    struct Fixture: Decodable {
        var relative_sizes: [[Double]]
        var size: Int
        var k: Int
        var darknet_mean_iou: Double
        var darknet_mean_iou_best_of_10: Double
    }

    @Test func atLeastDarknetsMeanIoU() throws {
        let f = try Fixtures.json("detection/anchors_fixture.json", as: Fixture.self)
        let sizes = f.relative_sizes.map { (width: $0[0] * Double(f.size), height: $0[1] * Double(f.size)) }
        let result = AnchorClustering.kmeans(sizes: sizes, k: f.k, restarts: 10, seed: 0)
        #expect(result.meanIoU >= f.darknet_mean_iou, "\(result.meanIoU) < Darknet's \(f.darknet_mean_iou)")
        #expect(result.meanIoU >= f.darknet_mean_iou_best_of_10 - 1e-6, "\(result.meanIoU) < Darknet's best of 10 \(f.darknet_mean_iou_best_of_10)")
        // Sorted by area; the mean IoU is what meanIoU computes; every box has its best anchor.
        let areas = result.anchors.map { $0.width * $0.height }
        #expect(areas == areas.sorted())
        #expect(abs(result.meanIoU - AnchorClustering.meanIoU(sizes: sizes, anchors: result.anchors)) < 1e-12)
        for (i, s) in sizes.enumerated() {
            let ious = result.anchors.map { AnchorClustering.iou(s, $0) }
            #expect(ious[result.assignments[i]] == ious.max()!)
        }
        // Seeded: the same seed gives the same anchors.
        let again = AnchorClustering.kmeans(sizes: sizes, k: f.k, restarts: 10, seed: 0)
        #expect(again.anchors.map(\.width) == result.anchors.map(\.width) && again.meanIoU == result.meanIoU)
    }

    @Test func handWorkedCases() {
        // IoU of centred boxes 2x4 and 4x2: intersection 2x2 = 4, union 8 + 8 − 4 = 12.
        #expect(AnchorClustering.iou((2, 4), (4, 2)) == 4.0 / 12)
        // k = 1: the anchor is the mean width and height.
        let sizes: [(width: Double, height: Double)] = [(10, 20), (20, 10), (30, 30)]
        let one = AnchorClustering.kmeans(sizes: sizes, k: 1, restarts: 1)
        #expect(one.anchors.count == 1 && one.anchors[0].width == 20 && one.anchors[0].height == 20)
        // k = n: every box is an anchor, mean IoU 1.
        let distinct: [(width: Double, height: Double)] = [(30, 30), (10, 20), (25, 10)]
        let all = AnchorClustering.kmeans(sizes: distinct, k: 3, restarts: 3)
        #expect(all.meanIoU == 1)
        #expect(all.cfgLine() == "10,20,  25,10,  30,30")
        let grid = AnchorClusters(anchors: [(1.08, 1.19), (3.42, 4.41)], meanIoU: 0.5, assignments: [], iterations: 0)
        #expect(grid.cfgLine(decimals: 2) == "1.08,1.19,  3.42,4.41")
    }

    @Test func sweepAndPlot() {
        let sizes: [(width: Double, height: Double)] = (0..<60).map { (i: Int) -> (width: Double, height: Double) in
            let w = 10 + (i * 37) % 90, h = 12 + (i * 53) % 70
            return (Double(w), Double(h))
        }
        let sweep = AnchorClustering.sweep(sizes: sizes, ks: 1...6, restarts: 3)
        #expect(sweep.map(\.k) == [1, 2, 3, 4, 5, 6])
        #expect(sweep.last!.clusters.meanIoU > sweep.first!.clusters.meanIoU)
        let best = sweep[4].clusters
        let svg = DetectionPlots.anchorsSVG(sizes: sizes, anchors: best.anchors, meanIoU: best.meanIoU,
                                            sweep: sweep.map { ($0.k, $0.clusters.meanIoU) })
        #expect(svg.hasPrefix("<svg") && svg.contains("mean IoU vs number of anchors"))
        #expect(svg.components(separatedBy: "<circle").count - 1 == sizes.count + sweep.count)
    }

    @Test func sizesFromAnnotations() {
        let o = ObjectAnnotation(classIndex: 0, className: "a", xmin: 10, ymin: 20, xmax: 60, ymax: 40)
        let empty = ObjectAnnotation(classIndex: 0, className: "a", xmin: 10, ymin: 20, xmax: 10, ymax: 40)
        let image = AnnotatedImage(id: "i", file: URL(fileURLWithPath: "/i.jpg"), width: 200, height: 100, objects: [o, empty])
        let s = AnchorClustering.sizes(of: [image], scaleWidth: 416, scaleHeight: 416)
        #expect(s.count == 1 && s[0].width == 50.0 / 200 * 416 && s[0].height == 20.0 / 100 * 416)
    }
}
