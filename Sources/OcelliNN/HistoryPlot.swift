import Foundation

extension History {
    /// The history as an SVG chart: one panel per quantity (loss, accuracy, …), training in blue
    /// and validation ("val_" entries) in orange, epochs on the x axis.
    public func svg(panelWidth: Int = 360, panelHeight: Int = 220) -> String {
        let bases = history.keys.filter { !$0.hasPrefix("val_") && $0 != "learning_rate" }.sorted { a, b in
            a == "loss" ? true : (b == "loss" ? false : a < b)
        }
        let margin = (left: 56.0, right: 14.0, top: 28.0, bottom: 34.0)
        let w = Double(panelWidth), h = Double(panelHeight)
        var body = ""
        for (p, key) in bases.enumerated() {
            let x0 = Double(p) * w
            let series = [(key, "#1f77b4"), ("val_" + key, "#ff7f0e")].compactMap { k, c in history[k].map { (k, $0, c) } }
            let values = series.flatMap { $0.1 }.filter(\.isFinite)
            guard var lo = values.min(), var hi = values.max() else { continue }
            if hi - lo < 1e-6 { lo -= 0.5; hi += 0.5 }
            let n = Swift.max(1, (series.map { $0.1.count }.max() ?? 1) - 1)
            let plotW = w - margin.left - margin.right, plotH = h - margin.top - margin.bottom
            func px(_ i: Int) -> Double { x0 + margin.left + plotW * Double(i) / Double(n) }
            func py(_ v: Float) -> Double { margin.top + plotH * (1 - (Double(v) - Double(lo)) / (Double(hi) - Double(lo))) }
            body += "<g font-family=\"sans-serif\" font-size=\"11\">\n"
            body += "<text x=\"\(x0 + w / 2)\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">\(key)</text>\n"
            body += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n",
                           x0 + margin.left, margin.top, plotW, plotH)
            for t in 0...4 {
                let v = lo + (hi - lo) * Float(t) / 4
                body += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", x0 + margin.left - 4, py(v) + 4, v)
            }
            for i in 0...n where n <= 20 || i % Swift.max(1, n / 10) == 0 {
                body += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%d</text>\n", px(i), h - 12, i + 1)
            }
            for (name, ys, color) in series {
                let pts = ys.enumerated().filter { $0.element.isFinite }.map { String(format: "%.1f,%.1f", px($0.offset), py($0.element)) }
                body += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(pts.joined(separator: " "))\"><title>\(name)</title></polyline>\n"
            }
            body += "<text x=\"\(x0 + margin.left + 6)\" y=\"\(margin.top + 14)\" fill=\"#1f77b4\">train</text>"
            if series.count > 1 { body += "<text x=\"\(x0 + margin.left + 46)\" y=\"\(margin.top + 14)\" fill=\"#ff7f0e\">validation</text>" }
            body += "\n</g>\n"
        }
        let total = Swift.max(1, bases.count) * panelWidth
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(total)\" height=\"\(panelHeight)\" viewBox=\"0 0 \(total) \(panelHeight)\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n"
    }

    /// Writes `svg()` to a file (atomically).
    public func writeSVG(to path: String) throws {
        try writeAtomically(Data(svg().utf8), to: path)
    }
}
