/// An error raised when operands' shapes do not fit an op. Its description names the op and the
/// shapes received, so that the message says what went wrong where.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    public let op: String
    public let message: String
    public var description: String { "\(op): \(message)" }
    public init(_ op: String, _ message: String) { self.op = op; self.message = message }
}

/// Shape arithmetic shared by the ops (row-major, NumPy broadcasting).
public enum Shape {
    @inline(__always)
    public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Row-major strides of a contiguous tensor of this shape.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// NumPy broadcasting: dimensions are aligned from the right and must be equal or 1.
    public static func broadcast(_ a: [Int], _ b: [Int], op: String) throws(ShapeError) -> [Int] {
        if a == b { return a }
        let n = Swift.max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else {
                throw ShapeError(op, "shapes \(a) and \(b) cannot be broadcast together (dimension \(i) from the left of the aligned shapes: \(da) vs \(db))")
            }
        }
        return out
    }

    /// Turns possibly negative axes into 0..<rank, checking range and duplicates.
    public static func normalizeAxes(_ axes: [Int], rank: Int, op: String) throws(ShapeError) -> [Int] {
        var seen = Set<Int>()
        var out: [Int] = []
        for a in axes {
            let ax = a < 0 ? a + rank : a
            guard ax >= 0 && ax < rank else {
                throw ShapeError(op, "axis \(a) is out of range for a tensor of rank \(rank)")
            }
            guard seen.insert(ax).inserted else { throw ShapeError(op, "axis \(a) appears twice in \(axes)") }
            out.append(ax)
        }
        return out
    }

    public static func normalizeAxis(_ axis: Int, rank: Int, op: String) throws(ShapeError) -> Int {
        try normalizeAxes([axis], rank: rank, op: op)[0]
    }
}

/// Stops with the error's message: shape errors inside an op are programming errors, like an
/// out-of-range array index, and the message names the op and both shapes.
@inline(never)
func shapeFailure(_ error: ShapeError, file: StaticString = #file, line: UInt = #line) -> Never {
    preconditionFailure(error.description, file: file, line: line)
}

@inline(__always)
func check<T>(_ body: () throws(ShapeError) -> T) -> T {
    do { return try body() } catch { shapeFailure(error) }
}

@inline(__always)
func require(_ condition: Bool, _ op: String, _ message: @autoclosure () -> String) {
    if !condition { shapeFailure(ShapeError(op, message())) }
}
