import OcelliTensor

/// How `resized` computes a pixel from the source image.
public enum Interpolation: Sendable, Equatable {
    /// The source pixel at floor(x · srcWidth / width) (computed as OpenCV does, in Double):
    /// OpenCV's `INTER_NEAREST`, PyTorch's `nearest`.
    case nearest
    /// Bilinear with half-pixel centres, source x = (x + 0.5) · srcWidth / width − 0.5, edges
    /// clamped, no antialiasing when shrinking: OpenCV's `INTER_LINEAR`. On 8-bit images the
    /// arithmetic is OpenCV's 11-bit fixed point, so results equal `cv2.resize` byte for byte.
    case bilinear
    /// Darknet's `resize_image`: corners aligned (source x = x · (srcWidth − 1) / (width − 1)),
    /// a horizontal then a vertical pass, in Float. On 8-bit images the result is rounded back
    /// to bytes.
    case darknet
}

extension Image {
    /// The image scaled to `width` x `height` (both at least 1).
    public func resized(width newWidth: Int, height newHeight: Int, interpolation: Interpolation = .bilinear) -> Image {
        precondition(newWidth >= 1 && newHeight >= 1, "resized: size must be at least 1x1, got \(newWidth)x\(newHeight)")
        precondition(width >= 1 && height >= 1, "resized: the source image is empty (\(width)x\(height))")
        let c = channels
        let n = newWidth * newHeight * c
        switch interpolation {
        case .nearest:
            let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
                pixels.withUnsafeBufferPointer { src in
                    Resampling.nearest(src.baseAddress!, width, height, c, dst.baseAddress!, newWidth, newHeight)
                }
                initialized = n
            }
            return Image(width: newWidth, height: newHeight, channels: c, pixels: out)
        case .bilinear:
            let out = [UInt8](unsafeUninitializedCapacity: n) { dst, initialized in
                pixels.withUnsafeBufferPointer { src in
                    Resampling.bilinearFixedPoint(src.baseAddress!, width, height, c, dst.baseAddress!, newWidth, newHeight)
                }
                initialized = n
            }
            return Image(width: newWidth, height: newHeight, channels: c, pixels: out)
        case .darknet:
            let floats = [Float](unsafeUninitializedCapacity: n) { dst, initialized in
                pixels.withUnsafeBufferPointer { src in
                    Resampling.darknet(src.baseAddress!, width, height, c, dst.baseAddress!, newWidth, newHeight)
                }
                initialized = n
            }
            return Image(tensor: Tensor(shape: [newHeight, newWidth, c], scalars: floats))
        }
    }
}

extension Tensor {
    /// Float images [H, W, C] or batches [N, H, W, C] scaled to `width` x `height`; see
    /// `Interpolation` for the conventions. The Float `.bilinear` follows OpenCV's coordinates
    /// and weights; OpenCV's SIMD code may round the last bit differently.
    public func resizedImage(width newWidth: Int, height newHeight: Int, interpolation: Interpolation = .bilinear) -> Tensor {
        precondition(rank == 3 || rank == 4, "resizedImage: expected [H, W, C] or [N, H, W, C], got \(shape)")
        precondition(newWidth >= 1 && newHeight >= 1, "resizedImage: size must be at least 1x1, got \(newWidth)x\(newHeight)")
        let batch = rank == 4 ? shape[0] : 1
        let h = shape[rank - 3], w = shape[rank - 2], c = shape[rank - 1]
        precondition(h >= 1 && w >= 1 && c >= 1, "resizedImage: the source image is empty (shape \(shape))")
        let inPlane = h * w * c, outPlane = newHeight * newWidth * c
        let n = batch * outPlane
        let out = [Float](unsafeUninitializedCapacity: n) { dst, initialized in
            scalars.withUnsafeBufferPointer { src in
                for b in 0..<batch {
                    let s = src.baseAddress! + b * inPlane, d = dst.baseAddress! + b * outPlane
                    switch interpolation {
                    case .nearest: Resampling.nearest(s, w, h, c, d, newWidth, newHeight)
                    case .bilinear: Resampling.bilinear(s, w, h, c, d, newWidth, newHeight)
                    case .darknet: Resampling.darknet(s, w, h, c, d, newWidth, newHeight)
                    }
                }
            }
            initialized = n
        }
        var newShape = shape
        newShape[rank - 3] = newHeight
        newShape[rank - 2] = newWidth
        return Tensor(shape: newShape, scalars: out)
    }
}

/// The resampling kernels, on raw HWC planes.
enum Resampling {
    /// OpenCV's source positions and weights for linear interpolation along one axis.
    ///
    /// The position is computed as OpenCV does: scale = 1 / (dst / src) in Double, then
    /// f = Float((d + 0.5) · scale − 0.5), i0 = floor(f), weight w1 = f − i0, w0 = 1 − w1. Along x
    /// (`clampWeights`) positions outside the image snap to the edge pixel with weight 1; along
    /// y OpenCV keeps the weights and clamps only the row indices.
    struct LinearTaps {
        var index0: [Int], index1: [Int]
        var weight0: [Float], weight1: [Float]
        /// The weights in OpenCV's 11-bit fixed point (scale 2048, rounded to nearest even).
        var fixed0: [Int32], fixed1: [Int32]

        init(source: Int, destination: Int, clampWeights: Bool) {
            let scale = 1.0 / (Double(destination) / Double(source))
            index0 = []; index1 = []; weight0 = []; weight1 = []; fixed0 = []; fixed1 = []
            for d in 0..<destination {
                var f = Float((Double(d) + 0.5) * scale - 0.5)
                var i = Int(f.rounded(.down))
                f -= Float(i)
                if clampWeights {
                    if i < 0 { f = 0; i = 0 }
                    if i >= source - 1 { f = 0; i = source - 1 }
                }
                index0.append(Swift.min(Swift.max(i, 0), source - 1))
                index1.append(Swift.min(Swift.max(i + 1, 0), source - 1))
                weight0.append(1 - f)
                weight1.append(f)
                fixed0.append(Int32(((1 - f) * 2048).rounded(.toNearestOrEven)))
                fixed1.append(Int32((f * 2048).rounded(.toNearestOrEven)))
            }
        }
    }

    /// OpenCV INTER_LINEAR on bytes: horizontal taps in 11-bit fixed point into Int32 rows, then
    /// the vertical blend as OpenCV's SIMD path computes it:
    /// ((((D0 >> 4) · b0) >> 16) + (((D1 >> 4) · b1) >> 16) + 2) >> 2.
    static func bilinearFixedPoint(_ src: UnsafePointer<UInt8>, _ w: Int, _ h: Int, _ c: Int,
                                   _ dst: UnsafeMutablePointer<UInt8>, _ outW: Int, _ outH: Int) {
        let xs = LinearTaps(source: w, destination: outW, clampWeights: true)
        let ys = LinearTaps(source: h, destination: outH, clampWeights: false)
        let rowLength = outW * c
        // Per output element (not pixel): source offsets and weights, so the inner loop is flat.
        var offset0 = [Int](repeating: 0, count: rowLength), offset1 = offset0
        var alpha0 = [Int32](repeating: 0, count: rowLength), alpha1 = alpha0
        for x in 0..<outW {
            for k in 0..<c {
                offset0[x * c + k] = xs.index0[x] * c + k
                offset1[x * c + k] = xs.index1[x] * c + k
                alpha0[x * c + k] = xs.fixed0[x]
                alpha1[x * c + k] = xs.fixed1[x]
            }
        }
        var rows = [Int32](repeating: 0, count: 2 * rowLength)
        var cached = (-1, -1)  // source rows held in rows[0] and rows[1]
        offset0.withUnsafeBufferPointer { o0 in offset1.withUnsafeBufferPointer { o1 in
        alpha0.withUnsafeBufferPointer { a0 in alpha1.withUnsafeBufferPointer { a1 in
        rows.withUnsafeMutableBufferPointer { rowBuffer in
            let row0 = rowBuffer.baseAddress!, row1 = row0 + rowLength
            func horizontal(_ sourceRow: Int, into row: UnsafeMutablePointer<Int32>) {
                let s = src + sourceRow * w * c
                for i in 0..<rowLength {
                    let p = Int32(s[o0[i]]) &* a0[i]
                    let q = Int32(s[o1[i]]) &* a1[i]
                    row[i] = p &+ q
                }
            }
            for y in 0..<outH {
                let r0 = ys.index0[y], r1 = ys.index1[y]
                // Reuse rows already filtered for the previous output row.
                if cached.0 != r0 {
                    if cached.1 == r0 { row0.update(from: row1, count: rowLength) } else { horizontal(r0, into: row0) }
                    cached.0 = r0
                }
                if cached.1 != r1 {
                    if r1 == r0 { row1.update(from: row0, count: rowLength) } else { horizontal(r1, into: row1) }
                    cached.1 = r1
                }
                let b0 = ys.fixed0[y], b1 = ys.fixed1[y]
                let d = dst + y * rowLength
                for i in 0..<rowLength {
                    let p = ((row0[i] >> 4) &* b0) >> 16
                    let q = ((row1[i] >> 4) &* b1) >> 16
                    let v = (p &+ q &+ 2) >> 2
                    d[i] = UInt8(truncatingIfNeeded: v < 0 ? 0 : (v > 255 ? 255 : v))
                }
            }
        }}}}}
    }

    /// OpenCV INTER_LINEAR on Floats: D = S[x0]·a0 + S[x1]·a1 per row, then D0·b0 + D1·b1.
    static func bilinear(_ src: UnsafePointer<Float>, _ w: Int, _ h: Int, _ c: Int,
                         _ dst: UnsafeMutablePointer<Float>, _ outW: Int, _ outH: Int) {
        let xs = LinearTaps(source: w, destination: outW, clampWeights: true)
        let ys = LinearTaps(source: h, destination: outH, clampWeights: false)
        let rowLength = outW * c
        var rows = [Float](repeating: 0, count: 2 * rowLength)
        rows.withUnsafeMutableBufferPointer { rowBuffer in
            let row0 = rowBuffer.baseAddress!, row1 = row0 + rowLength
            func horizontal(_ sourceRow: Int, into row: UnsafeMutablePointer<Float>) {
                let s = src + sourceRow * w * c
                for x in 0..<outW {
                    let p0 = s + xs.index0[x] * c, p1 = s + xs.index1[x] * c
                    let a0 = xs.weight0[x], a1 = xs.weight1[x]
                    for k in 0..<c {
                        let u = p0[k] * a0
                        let v = p1[k] * a1
                        row[x * c + k] = u + v
                    }
                }
            }
            var cached = (-1, -1)
            for y in 0..<outH {
                let r0 = ys.index0[y], r1 = ys.index1[y]
                if cached.0 != r0 {
                    if cached.1 == r0 { row0.update(from: row1, count: rowLength) } else { horizontal(r0, into: row0) }
                    cached.0 = r0
                }
                if cached.1 != r1 {
                    if r1 == r0 { row1.update(from: row0, count: rowLength) } else { horizontal(r1, into: row1) }
                    cached.1 = r1
                }
                let b0 = ys.weight0[y], b1 = ys.weight1[y]
                let d = dst + y * rowLength
                for i in 0..<rowLength {
                    let u = row0[i] * b0
                    let v = row1[i] * b1
                    d[i] = u + v
                }
            }
        }
    }

    /// Source index for each output index, as OpenCV's INTER_NEAREST: floor(d · (1 / (dst / src))).
    static func nearestIndices(source: Int, destination: Int) -> [Int] {
        let scale = 1.0 / (Double(destination) / Double(source))
        return (0..<destination).map { Swift.min(Int((Double($0) * scale).rounded(.down)), source - 1) }
    }

    static func nearest<T>(_ src: UnsafePointer<T>, _ w: Int, _ h: Int, _ c: Int,
                           _ dst: UnsafeMutablePointer<T>, _ outW: Int, _ outH: Int) {
        let xs = nearestIndices(source: w, destination: outW)
        let ys = nearestIndices(source: h, destination: outH)
        for y in 0..<outH {
            let s = src + ys[y] * w * c
            let d = dst + y * outW * c
            for x in 0..<outW {
                (d + x * c).update(from: s + xs[x] * c, count: c)
            }
        }
    }

    /// Darknet's `resize_image`, in the same Float operations and order (no fused multiply-adds),
    /// so results equal Darknet's bit for bit:
    ///
    ///     w_scale = (src_w − 1) / (w − 1);  sx = c · w_scale;  ix = (int)sx;  dx = sx − ix
    ///     part[r][c] = c == w − 1 || src_w == 1 ? im[r][src_w − 1] : (1 − dx)·im[r][ix] + dx·im[r][ix + 1]
    ///     out[r][c]  = (1 − dy)·part[iy][c] + (r == h − 1 || src_h == 1 ? 0 : dy·part[iy + 1][c])
    ///
    /// Darknet's own quirk is kept: when (h − 1) · h_scale rounds below src_h − 1, the last row
    /// is (1 − dy)·part[src_h − 2] alone. A height of 1 (where Darknet computes 0 · inf) reads row 0.
    /// `dstRowStride` (elements) lets the rows land inside a larger canvas (the letterbox).
    static func darknet(_ src: UnsafePointer<Float>, _ w: Int, _ h: Int, _ c: Int,
                        _ dst: UnsafeMutablePointer<Float>, _ outW: Int, _ outH: Int, dstRowStride: Int? = nil) {
        let columns = DarknetColumns(source: w, destination: outW, channels: c)
        darknetVertical(h, outW * c, dst, outH, dstRowStride: dstRowStride ?? outW * c) { r, out in
            columns.filter(src + r * w * c, into: out)
        }
    }

    /// `darknet` on bytes, each read as Darknet's `(float)byte / 255.` (see `Image.unitValues`):
    /// the same result as converting the image to Floats first, without that full-size pass (each
    /// row is converted into a scratch row that stays in cache).
    static func darknet(_ src: UnsafePointer<UInt8>, _ w: Int, _ h: Int, _ c: Int,
                        _ dst: UnsafeMutablePointer<Float>, _ outW: Int, _ outH: Int, dstRowStride: Int? = nil) {
        let columns = DarknetColumns(source: w, destination: outW, channels: c)
        let rowLength = w * c
        let scratch = UnsafeMutablePointer<Float>.allocate(capacity: rowLength)
        defer { scratch.deallocate() }
        darknetVertical(h, outW * c, dst, outH, dstRowStride: dstRowStride ?? outW * c) { r, out in
            Image.unitValues(src + r * rowLength, scratch, count: rowLength)
            columns.filter(UnsafePointer(scratch), into: out)
        }
    }

    /// The horizontal pass of Darknet's resize, flattened to one entry per output element.
    struct DarknetColumns {
        let count: Int        // elements per output row, (outW − 1) · c interpolated + c copied
        let interpolated: Int // (outW − 1) · c, or 0 when the source is one pixel wide
        let lastColumn: Int   // (src_w − 1) · c
        let channels: Int
        var offset: [Int] = []
        var weightLeft: [Float] = []
        var weightRight: [Float] = []

        init(source w: Int, destination outW: Int, channels c: Int) {
            channels = c
            count = outW * c
            interpolated = w == 1 ? 0 : (outW - 1) * c
            lastColumn = (w - 1) * c
            guard interpolated > 0 else { return }
            let scale = Float(w - 1) / Float(outW - 1)
            for x in 0..<(outW - 1) {
                let sx = Float(x) * scale
                let ix = Int(sx)
                let dx = sx - Float(ix)
                for k in 0..<c {
                    offset.append(ix * c + k)
                    weightLeft.append(1 - dx)
                    weightRight.append(dx)
                }
            }
        }

        /// One source row (`src_w · c` Floats) to one output row (`outW · c`).
        func filter(_ row: UnsafePointer<Float>, into out: UnsafeMutablePointer<Float>) {
            let c = channels
            offset.withUnsafeBufferPointer { o in
                weightLeft.withUnsafeBufferPointer { a in
                    weightRight.withUnsafeBufferPointer { b in
                        for i in 0..<interpolated {
                            let u = a[i] * row[o[i]]
                            let v = b[i] * row[o[i] + c]
                            out[i] = u + v
                        }
                    }
                }
            }
            for i in interpolated..<count { out[i] = row[lastColumn + (i - interpolated) % c] }
        }
    }

    /// The vertical pass of Darknet's resize. `horizontal(r, out)` fills `out` with source row r
    /// after the horizontal pass; at most two such rows are held at a time (every output row
    /// reads rows iy and iy + 1, and iy never decreases), and rows no output reads are skipped:
    /// each row's values are independent of the others, so this equals Darknet's full pass.
    static func darknetVertical(_ h: Int, _ rowLength: Int, _ dst: UnsafeMutablePointer<Float>, _ outH: Int,
                                dstRowStride: Int, horizontal: (Int, UnsafeMutablePointer<Float>) -> Void) {
        let hScale = outH > 1 ? Float(h - 1) / Float(outH - 1) : 0
        let buffer = UnsafeMutablePointer<Float>.allocate(capacity: 2 * rowLength)
        defer { buffer.deallocate() }
        let slots = (buffer, buffer + rowLength)
        var held = (-1, -1)  // the source rows in slots.0 and slots.1
        /// Slot holding source row `i`, filling the slot that does not hold `keep` if needed.
        func row(_ i: Int, keeping keep: Int) -> UnsafeMutablePointer<Float> {
            if held.0 == i { return slots.0 }
            if held.1 == i { return slots.1 }
            if held.0 == keep {
                horizontal(i, slots.1); held.1 = i
                return slots.1
            }
            horizontal(i, slots.0); held.0 = i
            return slots.0
        }
        for r in 0..<outH {
            let sy = Float(r) * hScale
            let iy = Int(sy)
            let dy = sy - Float(iy)
            let ey = 1 - dy
            let d = dst + r * dstRowStride
            if r == outH - 1 || h == 1 {
                let p0 = row(iy, keeping: -1)
                for i in 0..<rowLength { d[i] = ey * p0[i] }
            } else {
                let p0 = row(iy, keeping: iy + 1)
                let p1 = row(iy + 1, keeping: iy)
                for i in 0..<rowLength {
                    let u = ey * p0[i]
                    let v = dy * p1[i]
                    d[i] = u + v
                }
            }
        }
    }
}
