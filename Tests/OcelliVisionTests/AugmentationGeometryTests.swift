import OcelliTensor
import Testing
@testable import OcelliVision

/// A solid red rectangle on a green background, and where its pixels end up.
enum AugmentationScene {
    static let width = 160, height = 120
    /// Pixel columns 50..<110, rows 30..<80.
    static let box = ObjectAnnotation(classIndex: 0, className: "block", xmin: 50, ymin: 30, xmax: 110, ymax: 80)

    static func image(width: Int = width, height: Int = height, box: ObjectAnnotation = box) -> Image {
        var image = Image(width: width, height: height, filledWith: [10, 250, 10])
        image.fillRectangle(left: Int(box.xmin), top: Int(box.ymin), right: Int(box.xmax) - 1, bottom: Int(box.ymax) - 1,
                            color: Color(red: 250, green: 10, blue: 10))
        return image
    }

    /// The continuous box around the pixels that are more red than green (more than half
    /// rectangle after bilinear blending; fills and replicated green edges are never counted).
    static func pixelBox(_ image: Image) -> ObjectAnnotation? {
        var x0 = Int.max, y0 = Int.max, x1 = Int.min, y1 = Int.min
        for y in 0..<image.height {
            for x in 0..<image.width where Int(image[x: x, y: y, channel: 0]) - Int(image[x: x, y: y, channel: 1]) > 0 {
                x0 = min(x0, x); x1 = max(x1, x); y0 = min(y0, y); y1 = max(y1, y)
            }
        }
        guard x0 <= x1 else { return nil }
        return ObjectAnnotation(classIndex: 0, className: "pixels", xmin: Double(x0), ymin: Double(y0),
                                xmax: Double(x1 + 1), ymax: Double(y1 + 1))
    }

    static func iou(_ a: ObjectAnnotation, _ b: ObjectAnnotation) -> Double {
        let w = min(a.xmax, b.xmax) - max(a.xmin, b.xmin), h = min(a.ymax, b.ymax) - max(a.ymin, b.ymin)
        let inter = w > 0 && h > 0 ? w * h : 0
        return inter / (a.width * a.height + b.width * b.height - inter)
    }

    /// Augments the scene and checks that the rectangle's pixels and the returned box agree
    /// (IoU ≥ 0.9). A dropped box fails the check unless `droppedAreaLimit` is given and fewer
    /// rectangle pixels than that are left. Returns whether the box was kept.
    @discardableResult
    static func check(_ augmenter: some Augmenter, seed: UInt64, source: Image = image(), box: ObjectAnnotation = box,
                      droppedAreaLimit: Double? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
        var rng = SeededGenerator(seed: seed)
        let (out, boxes) = augmenter.apply(source, [box], using: &rng)
        let pixels = pixelBox(out)
        guard let moved = boxes.first else {
            let area = pixels.map { $0.width * $0.height } ?? 0
            #expect(area < (droppedAreaLimit ?? 0),
                    "seed \(seed): box dropped but \(String(describing: pixels)) of the rectangle is visible", sourceLocation: sourceLocation)
            return false
        }
        #expect(boxes.count == 1, sourceLocation: sourceLocation)
        #expect(moved.xmin >= 0 && moved.ymin >= 0 && moved.xmax <= Double(out.width) && moved.ymax <= Double(out.height),
                "seed \(seed): box \(moved) outside \(out.width)x\(out.height)", sourceLocation: sourceLocation)
        guard let pixels else {
            Issue.record("seed \(seed): box kept at \(moved) but no rectangle pixels in the output", sourceLocation: sourceLocation)
            return true
        }
        let overlap = iou(moved, pixels)
        #expect(overlap >= 0.9, "seed \(seed): IoU \(overlap) between box \(moved) and pixels \(pixels)", sourceLocation: sourceLocation)
        #expect(moved.classIndex == box.classIndex && moved.className == box.className, sourceLocation: sourceLocation)
        return true
    }
}

@Suite("Augmentation: boxes follow pixels")
struct AugmentationGeometryTests {
    @Test func flips() {
        for seed in 0..<4 as Range<UInt64> {
            AugmentationScene.check(Augment.HorizontalFlip(probability: 1), seed: seed)
            AugmentationScene.check(Augment.VerticalFlip(probability: 1), seed: seed)
        }
        // A flipped box lands where expected, by hand.
        var rng = SeededGenerator(seed: 1)
        let (_, boxes) = Augment.HorizontalFlip(probability: 1).apply(AugmentationScene.image(), [AugmentationScene.box], using: &rng)
        #expect((boxes[0].xmin, boxes[0].xmax, boxes[0].ymin, boxes[0].ymax) == (50, 110, 30, 80))
        let offCentre = ObjectAnnotation(classIndex: 0, className: "", xmin: 10, ymin: 5, xmax: 30, ymax: 25)
        let (_, vertical) = Augment.VerticalFlip(probability: 1).apply(AugmentationScene.image(), [offCentre], using: &rng)
        #expect((vertical[0].xmin, vertical[0].xmax, vertical[0].ymin, vertical[0].ymax) == (10, 30, 95, 115))
    }

    /// Each affine parameter alone, at fixed values, then combined.
    @Test(arguments: [
        ("scale down", Augment.Affine(scale: 0.7...0.7)),
        ("scale up", Augment.Affine(scale: 1.3...1.3)),
        ("translate", Augment.Affine(translateX: 0.15...0.15, translateY: -0.1...(-0.1))),
        ("rotate", Augment.Affine(rotation: 30...30)),
        ("rotate back", Augment.Affine(rotation: -45...(-45))),
        ("shear x", Augment.Affine(shearX: 20...20)),
        ("shear y", Augment.Affine(shearY: -15...(-15))),
        ("combined", Augment.Affine(scale: 1.1...1.1, translateX: 0.05...0.05, translateY: -0.05...(-0.05),
                                    rotation: -25...(-25), shearX: 10...10)),
    ])
    func affineParameters(name: String, augmenter: Augment.Affine) {
        #expect(AugmentationScene.check(augmenter, seed: 3), "\(name): the box must stay")
    }

    @Test func randomAffine() {
        let augmenter = Augment.Affine(scale: 0.8...1.2, translateX: -0.1...0.1, translateY: -0.1...0.1, rotation: -20...20,
                                       shearX: -10...10, shearY: -10...10)
        for seed in 0..<16 as Range<UInt64> { AugmentationScene.check(augmenter, seed: seed) }
    }

    @Test func randomCrop() {
        var kept = 0
        for seed in 0..<24 as Range<UInt64> {
            // Dropped only when under half the rectangle (3000 pixels) is left.
            if AugmentationScene.check(Augment.RandomCrop(.fraction(0.4...0.9)), seed: seed, droppedAreaLimit: 1600) { kept += 1 }
            AugmentationScene.check(Augment.RandomCrop(width: 100, height: 70, minVisibility: 0), seed: seed)
        }
        #expect(kept >= 6, "only \(kept) of 24 crops kept the rectangle")
        var rng = SeededGenerator(seed: 5)
        let (image, _) = Augment.RandomCrop(width: 100, height: 70).apply(AugmentationScene.image(), [], using: &rng)
        #expect((image.width, image.height) == (100, 70))
    }

    @Test func resizeAndLetterbox() {
        AugmentationScene.check(Augment.Resize(width: 416, height: 416), seed: 0)
        AugmentationScene.check(Augment.Resize(width: 97, height: 43), seed: 0)
        AugmentationScene.check(Augment.Letterbox(width: 416, height: 416), seed: 0)
        AugmentationScene.check(Augment.Letterbox(width: 100, height: 200), seed: 0)
        // 160x120 into 416x416: scaled to 416x312 at (0, 52), as `Letterbox` computes.
        var rng = SeededGenerator(seed: 0)
        let (image, boxes) = Augment.Letterbox(width: 416, height: 416).apply(AugmentationScene.image(), [AugmentationScene.box], using: &rng)
        #expect((image.width, image.height) == (416, 416))
        #expect(abs(boxes[0].xmin - 130) < 1e-9 && abs(boxes[0].ymin - (52 + 78)) < 1e-9 && abs(boxes[0].xmax - 286) < 1e-9)
        #expect((image[x: 5, y: 5, channel: 0], image[x: 5, y: 410, channel: 1]) == (128, 128))
    }

    @Test(arguments: [Augment.DarknetJitter.Mode.crop, .place])
    func darknetJitter(mode: Augment.DarknetJitter.Mode) {
        let augmenter = Augment.DarknetJitter(width: 208, height: 160, jitter: 0.2, mode: mode)
        for seed in 0..<16 as Range<UInt64> {
            #expect(AugmentationScene.check(augmenter, seed: seed))
            var rng = SeededGenerator(seed: seed)
            let (image, _) = augmenter.apply(AugmentationScene.image(), [AugmentationScene.box], using: &rng)
            #expect((image.width, image.height) == (208, 160))
        }
        // Darknet's scale option (its commented-out 0.25...2) and the YOLOv3 aspect jitter together.
        let scaled = Augment.DarknetJitter(width: 208, height: 160, jitter: 0.3, mode: .place, scale: 0.5...1.5)
        for seed in 0..<16 as Range<UInt64> { AugmentationScene.check(scaled, seed: seed) }
    }

    /// With an off-centre rectangle, the jitter's flip shows: boxes land on both sides.
    @Test func darknetJitterFlipMovesTheBox() {
        let box = ObjectAnnotation(classIndex: 0, className: "", xmin: 10, ymin: 30, xmax: 40, ymax: 80)
        var image = Image(width: 160, height: 120, filledWith: [10, 250, 10])
        image.fillRectangle(left: 10, top: 30, right: 39, bottom: 79, color: Color(red: 250, green: 10, blue: 10))
        var sides = Set<Bool>()
        for seed in 0..<12 as Range<UInt64> {
            let augmenter = Augment.DarknetJitter(width: 160, height: 120, jitter: 0.1, mode: .crop)
            AugmentationScene.check(augmenter, seed: seed, source: image, box: box)
            var rng = SeededGenerator(seed: seed)
            let (_, boxes) = augmenter.apply(image, [box], using: &rng)
            sides.insert((boxes[0].xmin + boxes[0].xmax) / 2 > 80)
        }
        #expect(sides == [false, true], "the flip must sometimes happen and sometimes not")
    }

    /// Boxes leaving the image: kept and clipped while at least `minVisibility` of the area stays
    /// inside, dropped below that.
    @Test func boxesDroppedWhenMostlyOutside() {
        let image = Image(width: 100, height: 100, filledWith: [0, 0, 0])
        func box(_ x0: Double, _ x1: Double, _ name: String) -> ObjectAnnotation {
            ObjectAnnotation(classIndex: 0, className: name, xmin: x0, ymin: 40, xmax: x1, ymax: 60)
        }
        // Translation by half the width: x -> x + 50.
        let shift = Augment.Affine(translateX: 0.5...0.5, minVisibility: 0.5)
        var rng = SeededGenerator(seed: 0)
        let (_, boxes) = shift.apply(image, [box(10, 40, "inside"), box(30, 60, "two thirds"), box(40, 70, "one third"),
                                             box(60, 90, "gone")], using: &rng)
        #expect(boxes.map(\.className) == ["inside", "two thirds"])
        #expect(abs(boxes[0].xmin - 60) < 1e-9 && abs(boxes[0].xmax - 90) < 1e-9 && !boxes[0].truncated)
        #expect(abs(boxes[1].xmin - 80) < 1e-9 && boxes[1].xmax == 100 && boxes[1].truncated)
        // The same boxes at other thresholds.
        var again = SeededGenerator(seed: 0)
        let loose = Augment.Affine(translateX: 0.5...0.5, minVisibility: 0).apply(image, [box(40, 70, "one third"), box(60, 90, "gone")], using: &again)
        #expect(loose.1.map(\.className) == ["one third"])
        let strict = Augment.Affine(translateX: 0.5...0.5, minVisibility: 1).apply(image, [box(10, 40, "inside"), box(30, 60, "two thirds")], using: &again)
        #expect(strict.1.map(\.className) == ["inside"])
        #expect(BoxMapping.visibility(box(-10, 20, ""), width: 100, height: 100) == 2.0 / 3.0)
    }

    /// Whatever a random pipeline does, the boxes it returns lie inside the image and are not empty.
    @Test func boxesAlwaysInsideTheImage() {
        let pipeline = Augment.Sequential {
            Augment.HorizontalFlip()
            Augment.Affine(scale: 0.6...1.6, translateX: -0.3...0.3, translateY: -0.3...0.3, rotation: -40...40,
                           shearX: -20...20, minVisibility: 0)
            Augment.Sometimes(0.5) { Augment.RandomCrop(.fraction(0.3...1), minVisibility: 0) }
            Augment.OneOf {
                Augment.DarknetJitter(width: 96, height: 64, jitter: 0.3, mode: .crop)
                Augment.DarknetJitter(width: 64, height: 96, jitter: 0.3, mode: .place, scale: 0.5...2)
            }
        }
        let boxes = [
            ObjectAnnotation(classIndex: 0, className: "corner", xmin: 0, ymin: 0, xmax: 20, ymax: 15),
            ObjectAnnotation(classIndex: 1, className: "edge", xmin: 140, ymin: 50, xmax: 160, ymax: 120),
            ObjectAnnotation(classIndex: 2, className: "all", xmin: 0, ymin: 0, xmax: 160, ymax: 120),
            AugmentationScene.box,
        ]
        var total = 0
        for seed in 0..<40 as Range<UInt64> {
            var rng = SeededGenerator(seed: seed)
            let (image, out) = pipeline.apply(AugmentationScene.image(), boxes, using: &rng)
            total += out.count
            for b in out {
                #expect(b.xmin >= 0 && b.ymin >= 0 && b.xmax <= Double(image.width) && b.ymax <= Double(image.height)
                        && b.xmin < b.xmax && b.ymin < b.ymax, "seed \(seed): \(b) in \(image.width)x\(image.height)")
            }
        }
        #expect(total > 40, "the pipeline dropped nearly every box (\(total) kept)")
    }

    @Test func affineTransformAlgebra() {
        let m = Augment.Affine.matrix(width: 160, height: 120, scale: 1.2, translateX: 0.1, translateY: -0.2,
                                      rotation: 33, shearX: 12, shearY: -7)
        let p = m.apply(x: 17, y: 91), q = m.inverse.apply(x: p.x, y: p.y)
        #expect(abs(q.x - 17) < 1e-9 && abs(q.y - 91) < 1e-9)
        // The centre moves only by the translation.
        let centre = m.apply(x: 80, y: 60)
        #expect(abs(centre.x - 96) < 1e-9 && abs(centre.y - 36) < 1e-9)
        // Positive rotation turns clockwise on screen (y down): the point right of the centre goes below it.
        let turned = Augment.Affine.matrix(width: 100, height: 100, scale: 1, translateX: 0, translateY: 0,
                                           rotation: 90, shearX: 0, shearY: 0).apply(x: 60, y: 50)
        #expect(abs(turned.x - 50) < 1e-9 && abs(turned.y - 60) < 1e-9)
    }
}
