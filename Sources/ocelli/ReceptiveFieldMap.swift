import ArgumentParser
import Foundation
import Ocelli

/// `ocelli summary … --receptive-field-map IMAGE --cell ROW,COL`: the region of the input one
/// output cell sees, drawn on an image scaled to the model's input size (the course's "what
/// each cell sees"). Outside the region the image is dimmed; the region's outline is red, the
/// cell's own stride-sized patch yellow.
enum ReceptiveFieldMap {
    static func parseCell(_ s: String) throws -> (Int, Int) {
        let parts = s.split(separator: ",").map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard parts.count == 2, let r = parts[0], let c = parts[1] else {
            throw failure("--cell must be ROW,COL (e.g. 6,6), got '\(s)'")
        }
        return (r, c)
    }

    /// Draws the map and returns a one-line description.
    static func draw(model: Model, imagePath: String, cell: (Int, Int), layer: String?, out: String) throws -> String {
        let region = try model.receptiveRegion(row: cell.0, column: cell.1, layer: layer)
        var image = try Image(contentsOf: imagePath)
        if image.channels != 3 { image = image.rgb() }
        let shape = model.inputs[0].shape
        guard shape.count == 3 else { throw failure("\(model.name) does not take images (input \(shape))") }
        let sy = Double(image.height) / Double(shape[0]), sx = Double(image.width) / Double(shape[1])
        // Pixel i of the input covers [i, i + 1) of the scaled image.
        let top = Int((region.top * sy).rounded(.down)), bottom = Int(((region.bottom + 1) * sy).rounded(.up)) - 1
        let left = Int((region.left * sx).rounded(.down)), right = Int(((region.right + 1) * sx).rounded(.up)) - 1
        var dimmed = image
        dimmed.pixels = image.pixels.map { UInt8(Double($0) * 0.35) }
        let (y0, y1) = (Swift.max(top, 0), Swift.min(bottom, image.height - 1))
        let (x0, x1) = (Swift.max(left, 0), Swift.min(right, image.width - 1))
        if y0 <= y1 && x0 <= x1 {
            for y in y0...y1 {
                let start = (y * image.width + x0) * 3, end = (y * image.width + x1) * 3 + 3
                dimmed.pixels.replaceSubrange(start..<end, with: image.pixels[start..<end])
            }
        }
        let thickness = Swift.max(2, Swift.min(image.width, image.height) / 200)
        // The outline clipped to the image, so that a field larger than the image still shows.
        dimmed.drawRectangle(left: Swift.max(left, 0), top: Swift.max(top, 0), right: Swift.min(right, image.width - 1),
                             bottom: Swift.min(bottom, image.height - 1), color: .red, thickness: thickness)
        // The cell itself: its centre ± half a jump.
        let rows = model.receptiveFieldTable().last { $0.layer == region.layer }!
        let cy = rows.rows!.start + Double(cell.0) * rows.rows!.jump, cx = rows.columns!.start + Double(cell.1) * rows.columns!.jump
        let hy = Swift.max(rows.rows!.jump / 2, 0.5), hx = Swift.max(rows.columns!.jump / 2, 0.5)
        dimmed.fillRectangle(left: Int(((cx - hx + 0.5) * sx).rounded(.down)), top: Int(((cy - hy + 0.5) * sy).rounded(.down)),
                             right: Int(((cx + hx + 0.5) * sx).rounded(.up)) - 1, bottom: Int(((cy + hy + 0.5) * sy).rounded(.up)) - 1,
                             color: Color(red: 255, green: 220, blue: 0))
        try dimmed.write(png: out)
        func n(_ v: Double) -> String { v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v) }
        return "cell (\(cell.0), \(cell.1)) of \(region.layer) (\(region.grid.0)x\(region.grid.1) grid) sees input rows "
            + "\(n(region.top))…\(n(region.bottom)), columns \(n(region.left))…\(n(region.right)) "
            + "(\(n(region.bottom - region.top + 1))x\(n(region.right - region.left + 1)) pixels of a \(shape[0])x\(shape[1]) input); wrote \(out)"
    }
}
