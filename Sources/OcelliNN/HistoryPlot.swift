import Foundation

extension History {
    /// The history as an SVG chart (`SVGChart`): one panel per quantity (loss, accuracy, …),
    /// training in blue and validation ("val_" entries) in orange, epochs on the x axis.
    public func svg(panelWidth: Int = 360, panelHeight: Int = 220) -> String {
        let bases = history.keys.filter { !$0.hasPrefix("val_") && $0 != "learning_rate" }.sorted { a, b in
            a == "loss" ? true : (b == "loss" ? false : a < b)
        }
        var body = ""
        for (p, key) in bases.enumerated() {
            let series = [(key, SVGChart.color(0)), ("val_" + key, SVGChart.color(1))].compactMap { k, c in history[k].map { (k, $0, c) } }
            let values = series.flatMap { $0.1 }.filter(\.isFinite).map(Double.init)
            guard var lo = values.min(), var hi = values.max() else { continue }
            if hi - lo < 1e-6 { lo -= 0.5; hi += 0.5 }
            let epochs = Swift.max(1, series.map { $0.1.count }.max() ?? 1)
            let panel = SVGChart.Panel(x0: Double(p * panelWidth), width: Double(panelWidth), height: Double(panelHeight),
                                       xRange: (1, Double(Swift.max(2, epochs))), yRange: (lo, hi))
            body += panel.axes(title: key, xLabel: "epoch", yLabel: key, yTicks: 4,
                               xTickValues: SVGChart.integerTicks(from: 1, to: Swift.max(2, epochs)))
            for (name, ys, color) in series {
                body += panel.polyline(ys.enumerated().map { (Double($0.offset + 1), Double($0.element)) }, color: color, title: name)
            }
            body += panel.legend("train", color: SVGChart.color(0), row: 0)
            if series.count > 1 { body += panel.legend("validation", color: SVGChart.color(1), row: 1) }
        }
        return SVGChart.document(width: Swift.max(1, bases.count) * panelWidth, height: panelHeight, body: body)
    }

    /// Writes `svg()` to a file (atomically).
    public func writeSVG(to path: String) throws {
        try SVGChart.write(svg(), to: path)
    }
}
