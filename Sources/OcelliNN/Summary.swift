import Foundation

extension Int {
    /// 34826 → "34,826".
    var thousands: String {
        let s = String(Swift.abs(self))
        var out = ""
        for (i, c) in s.reversed().enumerated() {
            if i > 0 && i % 3 == 0 { out.append(",") }
            out.append(c)
        }
        return (self < 0 ? "-" : "") + String(out.reversed())
    }
}

/// Keras' readable_memory_size: 139304 → "136.04 KB".
func readableBytes(_ bytes: Int) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"]
    var v = Double(bytes), i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return String(format: "%.2f %@", v, units[i])
}

extension Model {
    /// Receptive field of each node's output cells in input pixels: (size, jump) per axis, or nil
    /// once a layer mixes every position (Flatten, Dense after it, global pooling).
    func receptiveFields() -> [ObjectIdentifier: (size: (Int, Int), jump: (Int, Int))?] {
        var rf: [ObjectIdentifier: (size: (Int, Int), jump: (Int, Int))?] = [:]
        for t in inputs { rf[ObjectIdentifier(t)] = ((1, 1), (1, 1)) }
        for n in nodes {
            let ins = n.inputs.map { rf[ObjectIdentifier($0)] ?? nil }
            guard ins.allSatisfy({ $0 != nil }), let first = ins.first ?? nil else { rf[ObjectIdentifier(n)] = .some(nil); continue }
            var size = first.size, jump = first.jump
            for case let r? in ins { size = (Swift.max(size.0, r.size.0), Swift.max(size.1, r.size.1)); jump = (Swift.max(jump.0, r.jump.0), Swift.max(jump.1, r.jump.1)) }
            let layer = n.layer!
            if layer is Flatten || layer is GlobalAveragePooling2D || layer is Reshape || n.shape.count != 3 {
                rf[ObjectIdentifier(n)] = .some(nil)
            } else if let f = layer.spatialFootprint {
                size = (size.0 + (f.kernel.0 - 1) * f.dilation.0 * jump.0, size.1 + (f.kernel.1 - 1) * f.dilation.1 * jump.1)
                jump = (jump.0 * f.stride.0, jump.1 * f.stride.1)
                rf[ObjectIdentifier(n)] = .some((size, jump))
            } else {
                rf[ObjectIdentifier(n)] = .some((size, jump))
            }
        }
        return rf
    }

    /// Keras 3's summary table plus a receptive-field column ("size /jump" of each output cell
    /// in input pixels). For functional models, a "Connected to" column as Keras shows.
    public func summary(lineWidth: Int = 0) -> String {
        let sequential = self is Sequential
        let rf = receptiveFields()
        func shapeString(_ s: [Int]) -> String { "(None, " + s.map(String.init).joined(separator: ", ") + ")" }
        func rfString(_ r: (size: (Int, Int), jump: (Int, Int))?) -> String {
            guard let r else { return "full" }
            let size = r.size.0 == r.size.1 ? "\(r.size.0)x\(r.size.0)" : "\(r.size.0)x\(r.size.1)"
            let jump = r.jump.0 == r.jump.1 ? "\(r.jump.0)" : "\(r.jump.0)x\(r.jump.1)"
            return "\(size) /\(jump)"
        }
        var rows: [[String]] = []
        if !sequential {
            for t in inputs { rows.append(["\(t.name) (InputLayer)", shapeString(t.shape), "0", "-", "-"]) }
        }
        for n in nodes {
            let l = n.layer!
            var row = ["\(l.name) (\(l.typeName))", shapeString(n.shape), l.parameterCount.thousands,
                       rfString(rf[ObjectIdentifier(n)] ?? nil)]
            if !sequential { row.append(n.inputs.map(\.name).joined(separator: ", ")) }
            rows.append(row)
        }
        var headers = ["Layer (type)", "Output Shape", "Param #", "Receptive field"]
        if !sequential { headers.append("Connected to") }
        let rightAligned: Set<Int> = [2]
        var widths = headers.map(\.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = Swift.max(widths[i], c.count) } }
        widths = widths.enumerated().map { i, w in Swift.max(w, [31, 22, 13, 15, 20][Swift.min(i, 4)]) }
        func line(_ l: String, _ m: String, _ r: String, _ fill: String) -> String {
            l + widths.map { String(repeating: fill, count: $0 + 2) }.joined(separator: m) + r
        }
        func cells(_ c: [String], _ sep: String) -> String {
            sep + c.enumerated().map { i, s in
                let pad = String(repeating: " ", count: widths[i] - s.count)
                return " " + (rightAligned.contains(i) ? pad + s : s + pad) + " "
            }.joined(separator: sep) + sep
        }
        var out = "Model: \"\(name)\"\n"
        out += line("┏", "┳", "┓", "━") + "\n"
        out += cells(headers, "┃") + "\n"
        out += line("┡", "╇", "┩", "━") + "\n"
        for (i, r) in rows.enumerated() {
            out += cells(r, "│") + "\n"
            out += (i + 1 < rows.count ? line("├", "┼", "┤", "─") : line("└", "┴", "┘", "─")) + "\n"
        }
        let total = parameters.reduce(0) { $0 + $1.count }
        let trainable = layers.reduce(0) { $0 + $1.trainableParameterCount }
        out += " Total params: \(total.thousands) (\(readableBytes(total * 4)))\n"
        out += " Trainable params: \(trainable.thousands) (\(readableBytes(trainable * 4)))\n"
        out += " Non-trainable params: \((total - trainable).thousands) (\(readableBytes((total - trainable) * 4)))\n"
        return out
    }

    /// Prints `summary()`.
    public func printSummary() { print(summary(), terminator: "") }
}
