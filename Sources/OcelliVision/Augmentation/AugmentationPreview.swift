/// Pictures of augmented batches: what the network sees, with the boxes it is taught.
public enum AugmentationPreview {
    /// The samples laid out in a grid, `columns` per row, left to right then top to bottom, each
    /// with its boxes drawn Darknet-style (outline and a label tag in the class's colour,
    /// `Color(classIndex:classCount:)`). Cells are as large as the largest image, images sit at
    /// their cell's top-left, `spacing` pixels of dark grey separate and frame them. Labels are
    /// `classNames[classIndex]`, or the box's own `className` (else its index) when the index
    /// is outside `classNames`. Gray and RGBA images are shown as RGB.
    public static func grid(samples: [(image: Image, boxes: [ObjectAnnotation])], classNames: [String],
                            columns: Int = 4, spacing: Int = 4) -> Image {
        precondition(!samples.isEmpty, "AugmentationPreview.grid: no samples")
        precondition(columns >= 1 && spacing >= 0, "AugmentationPreview.grid: columns must be at least 1 and spacing not negative, got \(columns), \(spacing)")
        let cellWidth = samples.map(\.image.width).max()!, cellHeight = samples.map(\.image.height).max()!
        let columnCount = Swift.min(columns, samples.count)
        let rowCount = (samples.count + columns - 1) / columns
        let background: UInt8 = 40
        var canvas = Image(width: columnCount * (cellWidth + spacing) + spacing, height: rowCount * (cellHeight + spacing) + spacing,
                           filledWith: [background, background, background])
        let classCount = Swift.max(classNames.count, (samples.flatMap { $0.boxes.map(\.classIndex) }.max() ?? 0) + 1)
        for (n, sample) in samples.enumerated() {
            var picture = sample.image.rgb()
            for box in sample.boxes {
                // Continuous box -> the pixels it covers (inclusive).
                let left = Int(box.xmin.rounded(.down)), top = Int(box.ymin.rounded(.down))
                let right = Int(box.xmax.rounded(.up)) - 1, bottom = Int(box.ymax.rounded(.up)) - 1
                let label: String
                if classNames.indices.contains(box.classIndex) {
                    label = classNames[box.classIndex]
                } else {
                    label = box.className.isEmpty ? "\(box.classIndex)" : box.className
                }
                let colour = box.classIndex >= 0 ? Color(classIndex: box.classIndex, classCount: classCount) : .white
                picture.drawDetection(left: left, top: top, right: Swift.max(left, right), bottom: Swift.max(top, bottom),
                                      label: label, color: colour)
            }
            paste(picture, into: &canvas, x: spacing + (n % columns) * (cellWidth + spacing),
                  y: spacing + (n / columns) * (cellHeight + spacing))
        }
        return canvas
    }

    /// Writes `grid(samples:classNames:columns:spacing:)` as a PNG file at `path` (atomically).
    public static func saveGrid(samples: [(image: Image, boxes: [ObjectAnnotation])], classNames: [String],
                                columns: Int = 4, spacing: Int = 4, to path: String) throws {
        try grid(samples: samples, classNames: classNames, columns: columns, spacing: spacing).write(png: path)
    }

    /// Copies the RGB `picture` into the RGB `canvas` with its top-left pixel at (`x`, `y`); it must fit.
    private static func paste(_ picture: Image, into canvas: inout Image, x: Int, y: Int) {
        guard picture.width > 0 && picture.height > 0 else { return }
        let rowBytes = picture.width * 3, canvasWidth = canvas.width
        canvas.pixels.withUnsafeMutableBufferPointer { dst in
            picture.pixels.withUnsafeBufferPointer { src in
                for r in 0..<picture.height {
                    (dst.baseAddress! + ((y + r) * canvasWidth + x) * 3)
                        .update(from: src.baseAddress! + r * rowBytes, count: rowBytes)
                }
            }
        }
    }
}
