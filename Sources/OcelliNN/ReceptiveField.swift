import Foundation
import OcelliTensor

/// The receptive field of a layer's output cells along one axis, in input pixels: cell i
/// sees `size` pixels centred on pixel `start + i·jump` (Araujo et al., "Computing Receptive
/// Fields of Convolutional Neural Networks", Distill 2019). Pixels are indexed from 0; the
/// field may reach beyond the image (into padding).
public struct ReceptiveFieldAxis: Equatable, Sendable {
    public var size: Double
    public var jump: Double
    public var start: Double

    /// The first and last pixel cell `index` sees.
    public func span(_ index: Int) -> (first: Double, last: Double) {
        let centre = start + Double(index) * jump
        return (centre - (size - 1) / 2, centre + (size - 1) / 2)
    }
}

/// One row of `Model.receptiveFieldTable()`: a layer's output and what each of its cells sees
/// (nil once every cell sees the whole input: Flatten, Dense, global pooling).
public struct ReceptiveFieldRow: Sendable {
    public var layer: String
    public var type: String
    public var outputShape: [Int]
    public var rows: ReceptiveFieldAxis?
    public var columns: ReceptiveFieldAxis?
}

extension Model {
    /// Padding before the first cell (top, left) of a window layer, read from its configuration:
    /// Keras' "same"/"valid", explicit [top, bottom, left, right], or Darknet's symmetric count.
    static func paddingBefore(_ layer: Layer, config: [String: JSONValue], input: [Int], kernel: (Int, Int),
                              stride: (Int, Int)) -> (Int, Int) {
        if case .object(let wrapped)? = config["layer"], case .object(let inner)? = wrapped["config"] {
            return paddingBefore(layer, config: inner, input: input, kernel: kernel, stride: stride)
        }
        guard let p = config["padding"] else { return (0, 0) }
        if let n = p.int { return (n, n) }
        let padding = (try? paddingFrom(p, layer: layer.name)) ?? .valid
        let (t, _, l, _) = padding.amounts(height: input[0], width: input[1], kernel: kernel, stride: stride)
        return (t, l)
    }

    /// Size, jump and start of every layer's output cells along rows and columns. Layers with
    /// several inputs follow the input with the largest field. Nearest upsampling and
    /// transposed convolutions divide the jump (their fields are approximate: the span of the
    /// input cells involved).
    public func receptiveFieldTable() -> [ReceptiveFieldRow] {
        typealias Field = (ReceptiveFieldAxis, ReceptiveFieldAxis)?
        var fields: [ObjectIdentifier: Field] = [:]
        let identity = ReceptiveFieldAxis(size: 1, jump: 1, start: 0)
        for t in inputs { fields[ObjectIdentifier(t)] = t.shape.count == 3 ? (identity, identity) : nil }
        var rows: [ReceptiveFieldRow] = []
        for n in nodes {
            let layer = n.layer!
            let ins = n.inputs.map { fields[ObjectIdentifier($0)] ?? nil }
            var field: Field = nil
            if n.shape.count == 3, ins.allSatisfy({ $0 != nil }), var (r, c) = ins.compactMap({ $0 }).max(by: { $0.0.size * $0.1.size < $1.0.size * $1.1.size }) {
                let inShape = n.inputs[0].shape
                if let z = layer as? ZeroPadding2D {
                    r.start -= Double(z.padding.0.0) * r.jump; c.start -= Double(z.padding.1.0) * c.jump
                } else if let k = layer as? Cropping2D {
                    r.start += Double(k.cropping.0.0) * r.jump; c.start += Double(k.cropping.1.0) * c.jump
                } else if let u = layer as? UpSampling2D {
                    r.jump /= Double(u.size.0); c.jump /= Double(u.size.1)
                } else if let t = layer as? Conv2DTranspose {
                    let kh = ((t.kernelSize.0 - 1) * t.dilationRate.0 + t.strides.0) / t.strides.0
                    let kw = ((t.kernelSize.1 - 1) * t.dilationRate.1 + t.strides.1) / t.strides.1
                    r.size += Double(kh - 1) * r.jump; c.size += Double(kw - 1) * c.jump
                    r.jump /= Double(t.strides.0); c.jump /= Double(t.strides.1)
                } else if let f = layer.spatialFootprint {
                    let ek = ((f.kernel.0 - 1) * f.dilation.0 + 1, (f.kernel.1 - 1) * f.dilation.1 + 1)
                    let (pt, pl) = Model.paddingBefore(layer, config: layer.config, input: inShape, kernel: ek, stride: f.stride)
                    r.start += (Double(ek.0 - 1) / 2 - Double(pt)) * r.jump
                    c.start += (Double(ek.1 - 1) / 2 - Double(pl)) * c.jump
                    r.size += Double(ek.0 - 1) * r.jump; c.size += Double(ek.1 - 1) * c.jump
                    r.jump *= Double(f.stride.0); c.jump *= Double(f.stride.1)
                }
                field = (r, c)
            }
            fields[ObjectIdentifier(n)] = field
            rows.append(ReceptiveFieldRow(layer: layer.name, type: layer.typeName, outputShape: n.shape,
                                          rows: field?.0, columns: field?.1))
        }
        return rows
    }

    /// A table of each layer's receptive field: size, jump and start (rows x columns).
    public func receptiveFieldReport() -> String {
        func number(_ v: Double) -> String {
            v == v.rounded() ? String(Int(v)) : String(format: "%.2f", v)
        }
        func pair(_ a: Double, _ b: Double) -> String { a == b ? number(a) : "\(number(a))x\(number(b))" }
        var lines: [[String]] = [["Layer (type)", "Output Shape", "RF size", "Jump", "Start"]]
        for row in receptiveFieldTable() {
            let shape = "(None, " + row.outputShape.map(String.init).joined(separator: ", ") + ")"
            if let r = row.rows, let c = row.columns {
                lines.append(["\(row.layer) (\(row.type))", shape, pair(r.size, c.size), pair(r.jump, c.jump), pair(r.start, c.start)])
            } else {
                lines.append(["\(row.layer) (\(row.type))", shape, "full", "-", "-"])
            }
        }
        let widths = (0..<5).map { i in lines.map { $0[i].count }.max()! }
        return lines.enumerated().map { k, cells in
            let text = cells.enumerated().map { i, s in
                let pad = String(repeating: " ", count: widths[i] - s.count)
                return i >= 2 ? pad + s : s + pad
            }.joined(separator: "  ")
            return k == 0 ? text + "\n" + String(repeating: "─", count: text.count) : text
        }.joined(separator: "\n") + "\n"
    }

    /// The input pixels (first and last row and column, inclusive, possibly outside the image)
    /// that output cell (row, column) of `layer` sees; by default the last layer whose output is
    /// still a spatial map.
    public func receptiveRegion(row: Int, column: Int, layer: String? = nil) throws
        -> (layer: String, grid: (Int, Int), top: Double, left: Double, bottom: Double, right: Double) {
        let table = receptiveFieldTable()
        let candidates = table.filter { $0.rows != nil && $0.outputShape.count == 3 }
        guard let target = layer.map({ name in candidates.last { $0.layer == name } }) ?? candidates.last else {
            if let layer { throw LayerError("\(name): no layer '\(layer)' with a spatial output (the last ones: \(candidates.suffix(8).map(\.layer).joined(separator: ", ")))") }
            throw LayerError("\(name): no layer with a spatial output")
        }
        let (h, w) = (target.outputShape[0], target.outputShape[1])
        guard row >= 0 && row < h && column >= 0 && column < w else {
            throw LayerError("\(name): cell (\(row), \(column)) is outside the \(h)x\(w) output of \(target.layer)")
        }
        let r = target.rows!.span(row), c = target.columns!.span(column)
        return (target.layer, (h, w), r.first, c.first, r.last, c.last)
    }
}
