/// Shape ops: reshape, permute, broadcast, squeeze/expand, strided slice, concat/stack/split,
/// constant padding, gather, one-hot. Each is a data movement whose gradient is the reverse
/// movement.
extension Tensor {
    /// The same elements in a new shape; one dimension may be -1 (inferred).
    public func reshaped(_ newShape: [Int]) -> Tensor {
        var target = newShape
        if let i = newShape.firstIndex(of: -1) {
            let known = newShape.enumerated().filter { $0.offset != i }.map { $0.element }.reduce(1, *)
            require(known > 0 && count % known == 0 && newShape.filter({ $0 == -1 }).count == 1, "reshape",
                    "cannot reshape \(shape) (\(count) elements) to \(newShape)")
            target[i] = count / known
        }
        require(Shape.count(target) == count && target.allSatisfy { $0 >= 0 }, "reshape",
                "cannot reshape \(shape) (\(count) elements) to \(newShape) (\(Shape.count(target)) elements)")
        if target == shape { return self }
        let inShape = shape
        return Tensor.record(Tensor(shape: target, scalars: scalars), [self]) { g in [g.reshaped(inShape)] }
    }

    /// Flattens every axis after the first: [N, ...] → [N, rest].
    public func flattened() -> Tensor { reshaped([shape.first ?? 1, -1]) }

    /// Inserts a dimension of size 1 at `axis` (which may be `rank`, or negative).
    public func expandingShape(at axis: Int) -> Tensor {
        let ax = axis < 0 ? axis + rank + 1 : axis
        require(ax >= 0 && ax <= rank, "expandingShape", "axis \(axis) out of range for rank \(rank)")
        var s = shape; s.insert(1, at: ax)
        return reshaped(s)
    }

    /// Removes the given size-1 axes (all size-1 axes when none are given).
    public func squeezingShape(at axes: [Int] = []) -> Tensor {
        let ax = axes.isEmpty ? shape.indices.filter { shape[$0] == 1 }
            : check { () throws(ShapeError) in try Shape.normalizeAxes(axes, rank: rank, op: "squeeze") }
        for a in ax { require(shape[a] == 1, "squeeze", "axis \(a) of shape \(shape) has size \(shape[a]), not 1") }
        return reshaped(shape.enumerated().filter { !ax.contains($0.offset) }.map { $0.element })
    }

    // MARK: Permute

    /// The elements reordered so that output axis i is input axis `permutation[i]`.
    func permutedScalars(_ perm: [Int]) -> [Float] {
        if perm == Array(0..<rank) { return scalars }
        let inStrides = Shape.strides(shape)
        let outShape = perm.map { shape[$0] }
        let st = perm.map { inStrides[$0] }
        let n = count
        let inner = outShape.last ?? 1, innerStride = st.last ?? 1
        let outer = n / Swift.max(inner, 1)
        let od = Array(outShape.dropLast()), os = Array(st.dropLast())
        // When the last output axis is strided in the input and another output axis q is the
        // input's contiguous one, a row-by-row copy reads one cache line per element. Instead,
        // take 16 rows at a time along q: every read of 16 values is then contiguous, and the
        // 16 rows are each written in order.
        if innerStride != 1, inner > 1, let q = os.indices.first(where: { os[$0] == 1 && od[$0] > 1 }) {
            return permutedScalarsBlocked(od, os, inner: inner, innerStride: innerStride, q: q)
        }
        return scalars.withUnsafeBufferPointer { src in
            [Float](unsafeUninitializedCapacity: n) { dst, initialized in
                let x = UnsafeSendable((src.baseAddress, dst.baseAddress))
                Parallel.forRanges(outer, minimumChunk: Swift.max(1, 16384 / Swift.max(1, inner))) { r in
                    let (s, d) = (x.value.0!, x.value.1!)
                    for row in r {
                        var rem = row, off = 0
                        for k in stride(from: od.count - 1, through: 0, by: -1) {
                            off += (rem % od[k]) * os[k]; rem /= od[k]
                        }
                        let o = d + row * inner, p = s + off
                        for i in 0..<inner { o[i] = p[i &* innerStride] }
                    }
                }
                initialized = n
            }
        }
    }

    /// `permutedScalars` in blocks of 16 output rows along axis `q` of `od` (the output's row
    /// axes, with input strides `os`; `os[q]` is 1).
    private func permutedScalarsBlocked(_ od: [Int], _ os: [Int], inner: Int, innerStride: Int, q: Int) -> [Float] {
        let n = count, nq = od[q], block = 16
        var rowStrides = [Int](repeating: 1, count: od.count)  // output-row index stride of each axis
        for k in stride(from: od.count - 2, through: 0, by: -1) { rowStrides[k] = rowStrides[k + 1] * od[k + 1] }
        let rq = rowStrides[q] * inner
        let blocks = (nq + block - 1) / block
        let groups = n / (inner * nq)  // the combinations of the other row axes
        return scalars.withUnsafeBufferPointer { src in
            [Float](unsafeUninitializedCapacity: n) { dst, initialized in
                let x = UnsafeSendable((src.baseAddress, dst.baseAddress))
                Parallel.forRanges(groups * blocks, minimumChunk: Swift.max(1, 16384 / Swift.max(1, inner * block))) { r in
                    let (s, d) = (x.value.0!, x.value.1!)
                    for item in r {
                        var rem = item / blocks, off = 0, row = 0
                        for k in stride(from: od.count - 1, through: 0, by: -1) where k != q {
                            let i = rem % od[k]; rem /= od[k]
                            off += i * os[k]; row += i * rowStrides[k]
                        }
                        let q0 = (item % blocks) * block, q1 = Swift.min(nq, q0 + block)
                        let o = d + row * inner, p = s + off
                        for j in 0..<inner {
                            let pj = p + j &* innerStride, oj = o + j
                            for qq in q0..<q1 { oj[qq &* rq] = pj[qq] }
                        }
                    }
                }
                initialized = n
            }
        }
    }

    /// Axes reordered: output axis i is input axis `permutation[i]`.
    public func permuted(_ permutation: [Int]) -> Tensor {
        let perm = check { () throws(ShapeError) in try Shape.normalizeAxes(permutation, rank: rank, op: "permute") }
        require(perm.count == rank, "permute", "permutation \(permutation) does not list all \(rank) axes of \(shape)")
        var inverse = [Int](repeating: 0, count: rank)
        for (i, p) in perm.enumerated() { inverse[p] = i }
        let y = Tensor(shape: perm.map { shape[$0] }, scalars: permutedScalars(perm))
        return Tensor.record(y, [self]) { g in [g.permuted(inverse)] }
    }

    /// The last two axes swapped (a matrix transpose for rank 2).
    public func transposed() -> Tensor {
        require(rank >= 2, "transpose", "needs rank ≥ 2, got shape \(shape)")
        var p = Array(0..<rank); p.swapAt(rank - 1, rank - 2)
        return permuted(p)
    }

    /// Repeats size-1 (or missing leading) dimensions to reach `target` (NumPy broadcast_to).
    public func broadcast(to target: [Int]) -> Tensor {
        if shape == target { return self }
        let s = check { () throws(ShapeError) in try Shape.broadcast(shape, target, op: "broadcast") }
        require(s == target, "broadcast", "cannot broadcast shape \(shape) to \(target)")
        let y = Tensor.broadcastScalars(Tensor.zeros(target), detached(), op: "broadcast") { $1 }
        let inShape = shape
        return Tensor.record(y, [self]) { g in [g.sumToShape(inShape)] }
    }

    // MARK: Strided slice

    /// Python-style strided slice per axis: `starts`, `ends` (exclusive), `steps` (non-zero, may
    /// be negative). Negative indices count from the end; out-of-range bounds are clamped.
    /// Axes beyond the given arrays are kept whole.
    public func sliced(starts: [Int], ends: [Int], steps: [Int]? = nil) -> Tensor {
        require(starts.count == ends.count && starts.count <= rank && (steps?.count ?? starts.count) == starts.count,
                "slice", "starts \(starts), ends \(ends), steps \(steps ?? []) do not fit shape \(shape)")
        var begin = [Int](), step = [Int](), outShape = [Int]()
        for ax in 0..<rank {
            let dim = shape[ax]
            guard ax < starts.count else { begin.append(0); step.append(1); outShape.append(dim); continue }
            let st = steps?[ax] ?? 1
            require(st != 0, "slice", "step on axis \(ax) is 0")
            var s = starts[ax] < 0 ? starts[ax] + dim : starts[ax]
            var e = ends[ax] < 0 && ends[ax] != Int.min ? ends[ax] + dim : ends[ax]
            let n: Int
            if st > 0 {
                s = Swift.min(Swift.max(s, 0), dim); e = Swift.min(Swift.max(e, 0), dim)
                n = e > s ? (e - s + st - 1) / st : 0
            } else {
                s = Swift.min(Swift.max(s, -1), dim - 1); e = Swift.min(Swift.max(e, -1), dim - 1)
                n = s > e ? (s - e - st - 1) / (-st) : 0
            }
            begin.append(s); step.append(st); outShape.append(n)
        }
        let offsets = Tensor.sliceOffsets(shape, begin, step, outShape)
        let y = Tensor(shape: outShape, scalars: offsets.map { scalars[$0] })
        let inShape = shape
        return Tensor.record(y, [self]) { g in
            var d = [Float](repeating: 0, count: Shape.count(inShape))
            for (i, o) in offsets.enumerated() { d[o] += g.scalars[i] }
            return [Tensor(shape: inShape, scalars: d)]
        }
    }

    /// A contiguous range along one axis.
    public func sliced(axis: Int, _ range: Range<Int>) -> Tensor {
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: rank, op: "slice") }
        require(range.lowerBound >= 0 && range.upperBound <= shape[ax], "slice",
                "range \(range) is outside 0..<\(shape[ax]) on axis \(ax) of \(shape)")
        var s = [Int](repeating: 0, count: ax + 1), e = Array(shape[0...ax])
        s[ax] = range.lowerBound; e[ax] = range.upperBound
        return sliced(starts: s, ends: e)
    }

    static func sliceOffsets(_ shape: [Int], _ begin: [Int], _ step: [Int], _ outShape: [Int]) -> [Int] {
        let strides = Shape.strides(shape)
        var offsets = [0]
        for ax in 0..<shape.count {
            let base = offsets
            offsets = []
            offsets.reserveCapacity(base.count * outShape[ax])
            for b in base {
                for i in 0..<outShape[ax] { offsets.append(b + (begin[ax] + i * step[ax]) * strides[ax]) }
            }
        }
        return outShape.contains(0) ? [] : offsets
    }

    // MARK: Concatenate, stack, split

    /// Joins tensors along `axis`; all other dimensions must agree.
    public static func concatenate(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        require(!tensors.isEmpty, "concatenate", "needs at least one tensor")
        let first = tensors[0]
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: first.rank, op: "concatenate") }
        for t in tensors {
            var a = t.shape, b = first.shape
            require(a.count == b.count, "concatenate", "shapes \(first.shape) and \(t.shape) differ in rank")
            a[ax] = 0; b[ax] = 0
            require(a == b, "concatenate", "shapes \(first.shape) and \(t.shape) differ outside axis \(ax)")
        }
        var outShape = first.shape
        outShape[ax] = tensors.reduce(0) { $0 + $1.shape[ax] }
        let outer = Shape.count(Array(first.shape[..<ax])), inner = Shape.count(Array(first.shape[(ax + 1)...]))
        var out = [Float](); out.reserveCapacity(Shape.count(outShape))
        for o in 0..<outer {
            for t in tensors {
                let len = t.shape[ax] * inner
                out.append(contentsOf: t.scalars[(o * len)..<((o + 1) * len)])
            }
        }
        let sizes = tensors.map { $0.shape[ax] }
        return record(Tensor(shape: outShape, scalars: out), tensors) { g in g.split(sizes: sizes, axis: ax).map { $0 } }
    }

    /// Stacks tensors of one shape along a new axis.
    public static func stack(_ tensors: [Tensor], axis: Int = 0) -> Tensor {
        require(!tensors.isEmpty, "stack", "needs at least one tensor")
        for t in tensors { require(t.shape == tensors[0].shape, "stack", "shapes \(tensors[0].shape) and \(t.shape) differ") }
        return concatenate(tensors.map { $0.expandingShape(at: axis) }, axis: axis < 0 ? axis + tensors[0].rank + 1 : axis)
    }

    /// Splits along `axis` into pieces of the given sizes (which must add up to the axis size).
    public func split(sizes: [Int], axis: Int = 0) -> [Tensor] {
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: rank, op: "split") }
        require(sizes.reduce(0, +) == shape[ax] && sizes.allSatisfy { $0 >= 0 }, "split",
                "sizes \(sizes) do not add up to \(shape[ax]) on axis \(ax) of \(shape)")
        var start = 0
        return sizes.map { n in
            defer { start += n }
            return sliced(axis: ax, start..<(start + n))
        }
    }

    /// Splits along `axis` into `count` equal pieces.
    public func split(count n: Int, axis: Int = 0) -> [Tensor] {
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: rank, op: "split") }
        require(n > 0 && shape[ax] % n == 0, "split", "axis \(ax) of \(shape) does not split into \(n) equal pieces")
        return split(sizes: [Int](repeating: shape[ax] / n, count: n), axis: ax)
    }

    // MARK: Padding

    /// Pads each axis with `value`: `padding[i]` is (before, after) for axis i.
    public func padded(_ padding: [(before: Int, after: Int)], value: Float = 0) -> Tensor {
        require(padding.count == rank && padding.allSatisfy { $0.before >= 0 && $0.after >= 0 }, "pad",
                "needs one non-negative (before, after) pair per axis of \(shape), got \(padding.map { [$0.before, $0.after] })")
        let outShape = zip(shape, padding).map { $0 + $1.before + $1.after }
        var out = [Float](repeating: value, count: Shape.count(outShape))
        let offsets = Tensor.sliceOffsets(outShape, padding.map { $0.before }, [Int](repeating: 1, count: rank), shape)
        for (i, o) in offsets.enumerated() { out[o] = scalars[i] }
        let inShape = shape
        return Tensor.record(Tensor(shape: outShape, scalars: out), [self]) { g in
            [Tensor(shape: inShape, scalars: offsets.map { g.scalars[$0] })]
        }
    }

    // MARK: Gather

    /// The slices at `indices` along `axis` (tf.gather / np.take): output shape is
    /// shape[..<axis] + [indices.count] + shape[(axis+1)...].
    public func gathering(atIndices indices: [Int], alongAxis axis: Int = 0) -> Tensor {
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: rank, op: "gather") }
        let dim = shape[ax]
        for i in indices { require(i >= 0 && i < dim, "gather", "index \(i) out of range 0..<\(dim) on axis \(ax) of \(shape)") }
        let outer = Shape.count(Array(shape[..<ax])), inner = Shape.count(Array(shape[(ax + 1)...]))
        var outShape = shape; outShape[ax] = indices.count
        var out = [Float](); out.reserveCapacity(Shape.count(outShape))
        for o in 0..<outer {
            for i in indices { out.append(contentsOf: scalars[((o * dim + i) * inner)..<((o * dim + i + 1) * inner)]) }
        }
        let inShape = shape
        return Tensor.record(Tensor(shape: outShape, scalars: out), [self]) { g in
            var d = [Float](repeating: 0, count: Shape.count(inShape))
            var k = 0
            for o in 0..<outer {
                for i in indices {
                    for j in 0..<inner { d[(o * dim + i) * inner + j] += g.scalars[k]; k += 1 }
                }
            }
            return [Tensor(shape: inShape, scalars: d)]
        }
    }

    /// np.take_along_axis: `indices` has this tensor's shape except along `axis`, and picks
    /// one element along `axis` for each of its positions.
    public func takingAlongAxis(_ indices: Tensor, axis: Int) -> Tensor {
        let ax = check { () throws(ShapeError) in try Shape.normalizeAxis(axis, rank: rank, op: "takeAlongAxis") }
        var a = shape, b = indices.shape
        require(a.count == b.count, "takeAlongAxis", "indices of shape \(indices.shape) and tensor of shape \(shape) differ in rank")
        a[ax] = 0; b[ax] = 0
        require(a == b, "takeAlongAxis", "indices of shape \(indices.shape) do not match \(shape) outside axis \(ax)")
        let dim = shape[ax], k = indices.shape[ax]
        let outer = Shape.count(Array(shape[..<ax])), inner = Shape.count(Array(shape[(ax + 1)...]))
        var offsets = [Int](repeating: 0, count: indices.count)
        for o in 0..<outer {
            for r in 0..<k {
                for j in 0..<inner {
                    let q = (o * k + r) * inner + j
                    let i = Int(indices.scalars[q])
                    require(i >= 0 && i < dim && Float(i) == indices.scalars[q], "takeAlongAxis",
                            "index \(indices.scalars[q]) out of range 0..<\(dim)")
                    offsets[q] = (o * dim + i) * inner + j
                }
            }
        }
        let inShape = shape
        return Tensor.record(Tensor(shape: indices.shape, scalars: offsets.map { scalars[$0] }), [self]) { g in
            var d = [Float](repeating: 0, count: Shape.count(inShape))
            for (q, o) in offsets.enumerated() { d[o] += g.scalars[q] }
            return [Tensor(shape: inShape, scalars: d)]
        }
    }

    /// One-hot encoding: `indices` of any shape become shape + [depth] rows of `on`/`off`.
    /// An index outside 0..<depth gives a row of `off` (as TensorFlow).
    public static func oneHot(_ indices: Tensor, depth: Int, on: Float = 1, off: Float = 0) -> Tensor {
        var out = [Float](repeating: off, count: indices.count * depth)
        for (i, v) in indices.scalars.enumerated() {
            let k = Int(v)
            if k >= 0 && k < depth && Float(k) == v { out[i * depth + k] = on }
        }
        return Tensor(shape: indices.shape + [depth], scalars: out)
    }

    public static func oneHot(_ indices: [Int], depth: Int) -> Tensor {
        oneHot(Tensor(indices.map { Float($0) }), depth: depth)
    }
}
