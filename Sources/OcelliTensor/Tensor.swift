import Foundation
/// An n-dimensional array of `Float` with value semantics (copy-on-write storage), row-major
/// and contiguous. Images are NHWC, convolution kernels HWIO.
///
/// A tensor that requires gradients records the ops applied to it; `backward()` on a scalar
/// result then fills the `grad` of every such leaf tensor.
public struct Tensor {
    /// The element type, kept in one place so that other precisions can follow.
    public typealias Scalar = Float

    /// The dimensions, outermost first.
    public private(set) var shape: [Int]
    /// The elements in row-major order.
    public internal(set) var scalars: [Float]
    /// The autodiff node of this tensor, when it takes part in gradient recording.
    var node: GradNode?

    /// Wraps `scalars` (row-major) as a tensor of `shape`.
    public init(shape: [Int], scalars: [Float]) {
        precondition(shape.allSatisfy { $0 >= 0 }, "Tensor: negative dimension in shape \(shape)")
        precondition(Shape.count(shape) == scalars.count,
                     "Tensor: shape \(shape) needs \(Shape.count(shape)) scalars, got \(scalars.count)")
        self.shape = shape
        self.scalars = scalars
        self.node = nil
    }

    init(shape: [Int], scalars: [Float], node: GradNode?) {
        self.shape = shape
        self.scalars = scalars
        self.node = node
    }

    /// A rank-0 tensor.
    public init(_ value: Float) { self.init(shape: [], scalars: [value]) }
    /// A rank-1 tensor.
    public init(_ values: [Float]) { self.init(shape: [values.count], scalars: values) }
    /// A rank-2 tensor from rows of equal length.
    public init(_ rows: [[Float]]) {
        let cols = rows.first?.count ?? 0
        precondition(rows.allSatisfy { $0.count == cols }, "Tensor: rows of unequal length")
        self.init(shape: [rows.count, cols], scalars: rows.flatMap { $0 })
    }
    /// A rank-3 tensor from nested arrays of equal lengths.
    public init(_ planes: [[[Float]]]) {
        let rows = planes.first?.count ?? 0
        let cols = planes.first?.first?.count ?? 0
        precondition(planes.allSatisfy { $0.count == rows && $0.allSatisfy { $0.count == cols } },
                     "Tensor: nested arrays of unequal length")
        self.init(shape: [planes.count, rows, cols], scalars: planes.flatMap { $0.flatMap { $0 } })
    }

    /// Uninitialised-free fast constructor: fills a new buffer through `body`.
    @inline(__always)
    static func make(_ shape: [Int], _ body: (UnsafeMutableBufferPointer<Float>) -> Void) -> Tensor {
        _ = MemoryTuning.applied
        let n = Shape.count(shape)
        let s = [Float](unsafeUninitializedCapacity: n) { buf, initialized in
            body(buf)
            initialized = n
        }
        return Tensor(shape: shape, scalars: s)
    }

    public var rank: Int { shape.count }
    public var count: Int { scalars.count }

    /// The value of a tensor with exactly one element.
    public var scalar: Float {
        precondition(scalars.count == 1, "scalar: tensor of shape \(shape) has \(scalars.count) elements, not 1")
        return scalars[0]
    }

    /// The element at a full multi-index.
    public subscript(index: Int...) -> Float {
        get { scalars[flatIndex(index)] }
        set { scalars[flatIndex(index)] = newValue }
    }

    func flatIndex(_ index: [Int]) -> Int {
        precondition(index.count == shape.count, "subscript: \(index.count) indices for a tensor of rank \(rank)")
        var flat = 0
        for (i, (ix, dim)) in zip(index, shape).enumerated() {
            precondition(ix >= 0 && ix < dim, "subscript: index \(ix) out of range 0..<\(dim) on axis \(i)")
            flat = flat * dim + ix
        }
        return flat
    }

    // MARK: Creation

    public static func zeros(_ shape: [Int]) -> Tensor {
        Tensor(shape: shape, scalars: [Float](repeating: 0, count: Shape.count(shape)))
    }
    public static func ones(_ shape: [Int]) -> Tensor { full(shape, 1) }
    public static func full(_ shape: [Int], _ value: Float) -> Tensor {
        Tensor(shape: shape, scalars: [Float](repeating: value, count: Shape.count(shape)))
    }
    public static func zeros(like t: Tensor) -> Tensor { zeros(t.shape) }
    public static func ones(like t: Tensor) -> Tensor { ones(t.shape) }

    /// Values from `start` up to (not including) `end` in steps of `step`, as NumPy's arange.
    public static func arange(_ start: Float, _ end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange: step must not be 0")
        let n = Swift.max(0, Int((Double(end - start) / Double(step)).rounded(.up)))
        return Tensor((0..<n).map { start + Float($0) * step })
    }
    public static func arange(_ end: Int) -> Tensor { arange(0, Float(end)) }

    /// `count` evenly spaced values from `start` to `end` inclusive.
    public static func linspace(_ start: Float, _ end: Float, count: Int) -> Tensor {
        precondition(count >= 0, "linspace: count must be non-negative")
        if count == 1 { return Tensor([start]) }
        let step = (Double(end) - Double(start)) / Double(count - 1)
        return Tensor((0..<count).map { i in i == count - 1 ? end : Float(Double(start) + Double(i) * step) })
    }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        func format(_ offset: Int, _ axis: Int) -> String {
            if axis == shape.count { return "\(scalars[offset])" }
            let stride = Shape.count(Array(shape[(axis + 1)...]))
            let limit = shape[axis] > 12 ? 6 : shape[axis]
            var parts = (0..<limit).map { format(offset + $0 * stride, axis + 1) }
            if limit < shape[axis] {
                parts.append("…")
                parts.append(format(offset + (shape[axis] - 1) * stride, axis + 1))
            }
            return "[" + parts.joined(separator: axis == shape.count - 1 ? ", " : ",\n") + "]"
        }
        return scalars.isEmpty ? "Tensor(shape: \(shape), [])" : "Tensor(shape: \(shape))\n" + format(0, 0)
    }
}

extension Tensor {
    /// True when both have the same shape and every element is within `absolute + relative·|b|`.
    public func isClose(to other: Tensor, absolute: Float = 1e-5, relative: Float = 1e-5) -> Bool {
        guard shape == other.shape else { return false }
        for (a, b) in zip(scalars, other.scalars) {
            if a.isNaN || b.isNaN { return false }
            if Swift.abs(a - b) > absolute + relative * Swift.abs(b) { return false }
        }
        return true
    }
}

import COcelliKernels

/// Keeps freed tensor buffers in the process heap instead of returning them to the kernel.
///
/// glibc serves large blocks with mmap and unmaps them on free, so every op's output
/// (megabytes) came back as fresh pages the kernel had to zero: a training step spent more time
/// in page faults than in arithmetic (sys time 6 s of 8 s on the MNIST model). Raising the mmap
/// and trim thresholds makes freed buffers reusable, as a framework's caching allocator does.
/// `OCELLI_MALLOC_TUNING=0` leaves malloc alone.
enum MemoryTuning {
    static let applied: Bool = {
        if ProcessInfo.processInfo.environment["OCELLI_MALLOC_TUNING"] == "0" { return false }
        return ocelli_tune_malloc() == 1
    }()
}

/// A buffer of `count` floats whose contents are unspecified, for kernels that write every
/// element (saves zero-filling megabytes of output per call).
@inline(__always)
func uninitializedScalars(_ count: Int) -> [Float] {
    _ = MemoryTuning.applied
    return [Float](unsafeUninitializedCapacity: count) { _, initialized in initialized = count }
}
