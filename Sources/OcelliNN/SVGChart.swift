import Foundation

/// The one SVG chart helper behind every plot Ocelli writes (training history, precision–recall
/// curves, anchors, embeddings): white background, grey frame, sans-serif 11 px labels,
/// matplotlib's tab10 colours.
public enum SVGChart {
    /// matplotlib's tab10 colours, in order.
    public static let palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    /// The colour of series `i` (the palette, cycled).
    public static func color(_ i: Int) -> String { palette[((i % palette.count) + palette.count) % palette.count] }

    /// One panel of a chart: its place in the document, its plotting area and the data-to-pixel
    /// mapping.
    public struct Panel: Sendable {
        public var x0: Double, width: Double, height: Double
        public var xRange: (Double, Double), yRange: (Double, Double)

        /// A panel `width` × `height` pixels whose left edge is at `x0`, showing `xRange` × `yRange`.
        public init(x0: Double = 0, width: Double, height: Double, xRange: (Double, Double), yRange: (Double, Double)) {
            self.x0 = x0; self.width = width; self.height = height
            self.xRange = xRange; self.yRange = yRange
        }

        public var left: Double { x0 + 56 }
        public var top: Double { 28 }
        public var plotW: Double { width - 56 - 14 }
        public var plotH: Double { height - 28 - 40 }
        public func px(_ v: Double) -> Double { left + plotW * (v - xRange.0) / Swift.max(1e-300, xRange.1 - xRange.0) }
        public func py(_ v: Double) -> Double { top + plotH * (1 - (v - yRange.0) / Swift.max(1e-300, yRange.1 - yRange.0)) }

        /// `count + 1` evenly spaced tick values over `range`.
        public static func ticks(_ range: (Double, Double), count: Int) -> [Double] {
            let n = Swift.max(1, count)
            return (0...n).map { range.0 + (range.1 - range.0) * Double($0) / Double(n) }
        }

        /// The title, the frame, tick labels and axis labels (ticks evenly spaced unless given).
        public func axes(title: String, xLabel: String, yLabel: String, xTicks: Int = 5, yTicks: Int = 5,
                         xTickValues: [Double]? = nil) -> String {
            var s = "<g font-family=\"sans-serif\" font-size=\"11\">\n"
            s += "<text x=\"\(x0 + width / 2)\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">\(escape(title))</text>\n"
            s += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#999\"/>\n", left, top, plotW, plotH)
            for v in Self.ticks(yRange, count: yTicks) {
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.4g</text>\n", left - 4, py(v) + 4, v)
            }
            for v in xTickValues ?? Self.ticks(xRange, count: xTicks) {
                s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%.4g</text>\n", px(v), top + plotH + 14, v)
            }
            s += "<text x=\"\(left + plotW / 2)\" y=\"\(height - 6)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 %.1f %.1f)\">%@</text>\n",
                        x0 + 14, top + plotH / 2, x0 + 14, top + plotH / 2, escape(yLabel))
            return s + "</g>\n"
        }

        /// A line through the finite points, with `title` as its tooltip.
        public func polyline(_ points: [(Double, Double)], color: String, strokeWidth: Double = 2, title: String? = nil) -> String {
            let list = points.filter { $0.0.isFinite && $0.1.isFinite }.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }
            let tip = title.map { "<title>\(escape($0))</title>" } ?? ""
            return "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(strokeWidth)\" points=\"\(list.joined(separator: " "))\">\(tip)</polyline>\n"
        }

        /// A legend entry in the plotting area: line `row` from the top-left corner.
        public func legend(_ text: String, color: String, row: Int) -> String {
            String(format: "<text x=\"%.1f\" y=\"%.1f\" fill=\"%@\" font-family=\"sans-serif\" font-size=\"11\">%@</text>\n",
                   left + 8, top + 14 + 13 * Double(row), color, escape(text))
        }
    }

    /// Integer tick values for an index axis from `first` to `last` (at most about ten).
    public static func integerTicks(from first: Int, to last: Int) -> [Double] {
        guard last > first else { return [Double(first)] }
        let step = Swift.max(1, (last - first + 9) / 10)
        return Swift.stride(from: first, through: last, by: step).map(Double.init)
    }

    /// The SVG document around the panels' `body`.
    public static func document(width: Int, height: Int, body: String) -> String {
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n" + body + "</svg>\n"
    }

    /// Text made safe inside SVG elements and attributes.
    public static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// Writes a chart to a file atomically, creating its folder if missing.
    public static func write(_ svg: String, to path: String) throws {
        try writeAtomically(Data(svg.utf8), to: path)
    }
}
