import Foundation
import Testing
@testable import OcelliTensor
import OcelliTestSupport

/// Every fast kernel against the Double reference on odd shapes, with the built-in kernel (AVX2
/// and portable paths) and with the platform BLAS when one is loaded.
@Suite(.serialized) struct FastKernelTests {
    static let gemmShapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 3), (3, 7, 17), (7, 1, 65), (17, 65, 7), (65, 33, 129), (6, 16, 256),
        (13, 300, 5), (145, 31, 257), (300, 17, 600),
    ]

    /// Each backend as a scope: the settings hold for the block (and its kernel threads) only,
    /// so tests running beside it keep theirs.
    static var backends: [(String, (() -> Void) -> Void)] {
        var list: [(String, (() -> Void) -> Void)] = [
            ("builtin", { body in GEMM.withBackend(.builtin, body) }),
            ("portable", { body in GEMM.withBackend(.builtin) { GEMM.withPortableKernel(true, body) } }),
        ]
        if BLAS.isAvailable { list.append(("blas", { body in GEMM.withBackend(.blas, body) })) }
        return list
    }

    @Test func gemmMatchesReferenceOnOddShapesAndTransposes() {
        for (name, scope) in Self.backends { scope {
            for (m, n, k) in Self.gemmShapes {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    let a = Tensor.uniform(ta ? [k, m] : [m, k], minimum: -1, maximum: 1, seed: UInt64(m * 7 + k))
                    let b = Tensor.uniform(tb ? [n, k] : [k, n], minimum: -1, maximum: 1, seed: UInt64(n * 5 + k))
                    let c = Tensor.matmul(a, transposeA: ta, b, transposeB: tb)
                    let r = Reference.gemm(a.scalars, b.scalars, m: m, n: n, k: k, transposeA: ta, transposeB: tb)
                    let err = c.maxAbsDifference(Tensor(shape: [m, n], scalars: r))
                    #expect(err <= 1e-5 * Float(k).squareRoot() * 4, "\(name) \(m)x\(n)x\(k) ta \(ta) tb \(tb): \(err)")
                }
            }
        } }
    }

    @Test func gemmAccumulates() {
        let (m, n, k) = (13, 21, 300)
        let a = Tensor.uniform([m, k], seed: 1), b = Tensor.uniform([k, n], seed: 2)
        var c = [Float](repeating: 1, count: m * n)
        a.scalars.withUnsafeBufferPointer { ap in b.scalars.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
            GEMM.builtin(m: m, n: n, k: k, a: ap.baseAddress!, rsA: k, csA: 1, b: bp.baseAddress!, rsB: n, csB: 1,
                         c: cp.baseAddress!, ldc: n, accumulate: true)
        } } }
        let r = Reference.gemm(a.scalars, b.scalars, m: m, n: n, k: k).map { $0 + 1 }
        #expect(Tensor(shape: [m, n], scalars: c).maxAbsDifference(Tensor(shape: [m, n], scalars: r)) < 1e-4)
    }

    struct ConvCase: Sendable {
        var x: [Int], w: [Int], stride = (1, 1), dilation = (1, 1), groups = 1
        var padding: Padding = .valid
    }

    static let convCases: [ConvCase] = [
        ConvCase(x: [1, 1, 1, 1], w: [1, 1, 1, 1]),
        ConvCase(x: [3, 6, 5, 4], w: [6, 5, 4, 3]),
        ConvCase(x: [2, 7, 9, 3], w: [3, 3, 3, 17], padding: .same),
        ConvCase(x: [1, 17, 13, 16], w: [3, 3, 16, 33], stride: (2, 2), padding: .same),
        ConvCase(x: [3, 8, 7, 5], w: [5, 3, 5, 7], stride: (1, 2), dilation: (2, 1), padding: .explicit(top: 2, bottom: 1, left: 0, right: 3)),
        ConvCase(x: [1, 9, 9, 65], w: [3, 3, 65, 20], padding: .same),
        ConvCase(x: [2, 6, 6, 8], w: [3, 3, 4, 6], groups: 2, padding: .same),
        ConvCase(x: [1, 7, 7, 6], w: [3, 3, 1, 12], stride: (2, 2), groups: 6, padding: .same),
        ConvCase(x: [2, 5, 5, 7], w: [1, 1, 7, 3]),
        ConvCase(x: [1, 65, 3, 2], w: [7, 1, 2, 1], padding: .same),
        ConvCase(x: [1, 12, 12, 40], w: [3, 3, 40, 70], stride: (2, 2), padding: .same),
        ConvCase(x: [2, 9, 11, 17], w: [3, 3, 17, 3], padding: .same),
        ConvCase(x: [1, 8, 7, 32], w: [3, 2, 16, 2], stride: (2, 1), dilation: (1, 2), groups: 2, padding: .same),
        ConvCase(x: [1, 30, 30, 3], w: [3, 3, 3, 16], padding: .same),
        ConvCase(x: [2, 5, 4, 70], w: [1, 1, 70, 9]),  // a deep 1x1: the GEMM path
        // Rows whose interior tiles take the direct kernel's one-call-per-row path: stride 2,
        // a partial second channel panel beside full ones, dilated rows.
        ConvCase(x: [1, 9, 40, 5], w: [3, 3, 5, 16], stride: (2, 2), padding: .same),
        ConvCase(x: [2, 5, 31, 7], w: [3, 5, 7, 20], padding: .same),
        ConvCase(x: [1, 11, 26, 4], w: [3, 3, 4, 16], dilation: (2, 1)),
        // A partial last tile run as the shifted full tile of the row's last six pixels.
        ConvCase(x: [2, 10, 28, 1], w: [3, 3, 1, 32]),
        ConvCase(x: [1, 7, 33, 3], w: [3, 3, 3, 20], stride: (2, 2)),
        // Negative explicit padding crops: the interior ranges start at the first pixel.
        ConvCase(x: [1, 2, 20, 4], w: [1, 1, 4, 16], padding: .explicit(top: 0, bottom: 0, left: -12, right: 0)),
        ConvCase(x: [1, 3, 20, 8], w: [1, 1, 8, 2], padding: .explicit(top: 0, bottom: 0, left: -1, right: 0)),
        ConvCase(x: [1, 6, 30, 9], w: [3, 3, 9, 3], padding: .explicit(top: -1, bottom: 1, left: -2, right: -1)),
    ]

    func referenceParams(_ c: ConvCase) -> Reference.Conv {
        var p = Reference.Conv()
        p.stride = c.stride; p.dilation = c.dilation; p.groups = c.groups
        let (kh, kw) = ((c.w[0] - 1) * c.dilation.0 + 1, (c.w[1] - 1) * c.dilation.1 + 1)
        let a = c.padding.amounts(height: c.x[1], width: c.x[2], kernel: (kh, kw), stride: c.stride)
        p.pad = (a.0, a.1, a.2, a.3)
        return p
    }

    @Test func convolutionMatchesReferenceForEveryAlgorithm() {
        for (name, scope) in Self.backends { scope {
            for (i, c) in Self.convCases.enumerated() {
                let x = Tensor.uniform(c.x, minimum: -1, maximum: 1, seed: UInt64(i + 1))
                let w = Tensor.uniform(c.w, minimum: -1, maximum: 1, seed: UInt64(i + 100))
                let bias = Tensor.uniform([c.w[3]], minimum: -1, maximum: 1, seed: UInt64(i + 200))
                let p = referenceParams(c)
                let ref = Reference.conv2d(x, w, bias: bias, p)
                let tol = 2e-5 * Float(c.w[0] * c.w[1] * c.w[2]).squareRoot() * 4
                for algo in [ConvolutionAlgorithm.automatic, .direct, .im2col, .dot, .naive] {
                    let y = Tensor.conv2d(x, filter: w, bias: bias, strides: c.stride, padding: c.padding,
                                          dilations: c.dilation, groups: c.groups, algorithm: algo)
                    let err = y.maxAbsDifference(ref)
                    #expect(err <= tol, "\(name) case \(i) \(algo): \(err)")
                    // The activation fused into the same kernels equals the activation applied after.
                    for (act, f) in [(FusedActivation.relu, { (v: Float) in max(v, 0) }), (.leaky(0.1), { $0 > 0 ? $0 : 0.1 * $0 })] {
                        let fused = Tensor.conv2d(x, filter: w, bias: bias, strides: c.stride, padding: c.padding,
                                                  dilations: c.dilation, groups: c.groups, algorithm: algo, activation: act)
                        let expected = Tensor(shape: ref.shape, scalars: ref.scalars.map(f))
                        #expect(fused.maxAbsDifference(expected) <= tol, "\(name) case \(i) \(algo) \(act)")
                    }
                }
                // The fused relu's backward: the reference gradients of dy masked where the output is 0.
                do {
                    let dy = Tensor.uniform(ref.shape, minimum: -1, maximum: 1, seed: UInt64(i + 400))
                    let masked = Tensor(shape: dy.shape, scalars: zip(dy.scalars, ref.scalars).map { $1 > 0 ? $0 : 0 })
                    let (rdx, rdw) = Reference.conv2dBackward(x, w, masked, p)
                    let xg = x.requiringGrad(), wg = w.requiringGrad(), bg = bias.requiringGrad()
                    Tensor.conv2d(xg, filter: wg, bias: bg, strides: c.stride, padding: c.padding, dilations: c.dilation,
                                  groups: c.groups, activation: .relu).backward(dy)
                    let rdb = (0..<c.w[3]).map { j in stride(from: j, to: masked.count, by: c.w[3]).reduce(Float(0)) { $0 + masked.scalars[$1] } }
                    #expect(xg.grad!.maxAbsDifference(rdx) <= tol * 8, "\(name) case \(i) fused relu dInput")
                    #expect(wg.grad!.maxAbsDifference(rdw) <= tol * 32, "\(name) case \(i) fused relu dFilter")
                    #expect(bg.grad!.maxAbsDifference(Tensor(rdb)) <= tol * 32, "\(name) case \(i) fused relu dBias")
                }
                // Backward against the reference gradients.
                let dy = Tensor.uniform(ref.shape, minimum: -1, maximum: 1, seed: UInt64(i + 300))
                let (rdx, rdw) = Reference.conv2dBackward(x, w, dy, p)
                let xg = x.requiringGrad(), wg = w.requiringGrad()
                Tensor.conv2d(xg, filter: wg, strides: c.stride, padding: c.padding, dilations: c.dilation,
                              groups: c.groups).backward(dy)
                let btol = tol * 8
                #expect(xg.grad!.maxAbsDifference(rdx) <= btol, "\(name) case \(i) dInput \(xg.grad!.maxAbsDifference(rdx))")
                #expect(wg.grad!.maxAbsDifference(rdw) <= btol * 4, "\(name) case \(i) dFilter \(wg.grad!.maxAbsDifference(rdw))")
            }
        } }
    }

    /// First layers (no input gradient, window of ≤ 12 values) take the one-pass filter-gradient
    /// kernel: against the reference gradients, linear and with fused relu / leaky, with padding,
    /// strides, dilation, odd channel counts (the 8-channel blocks' tails) and 1 or 2 threads.
    @Test func smallWindowFilterGradientMatchesReference() {
        let cases = [
            ConvCase(x: [3, 9, 8, 1], w: [3, 3, 1, 32]),
            ConvCase(x: [2, 11, 10, 3], w: [2, 2, 3, 13], stride: (2, 1), padding: .same),
            ConvCase(x: [2, 12, 9, 1], w: [3, 3, 1, 5], dilation: (2, 2), padding: .same),
            ConvCase(x: [1, 7, 7, 4], w: [1, 3, 4, 20], stride: (1, 2), padding: .explicit(top: 2, bottom: 0, left: 1, right: 3)),
            ConvCase(x: [64, 10, 10, 1], w: [3, 3, 1, 16]),  // several partial sums
        ]
        for (i, c) in cases.enumerated() {
            let x = Tensor.uniform(c.x, minimum: -1, maximum: 1, seed: UInt64(i + 500))
            let w = Tensor.uniform(c.w, minimum: -1, maximum: 1, seed: UInt64(i + 600))
            let bias = Tensor.uniform([c.w[3]], minimum: -1, maximum: 1, seed: UInt64(i + 700))
            let p = referenceParams(c)
            let ref = Reference.conv2d(x, w, bias: bias, p)
            let dy = Tensor.uniform(ref.shape, minimum: -1, maximum: 1, seed: UInt64(i + 800))
            let tol = 2e-5 * Float(ref.count / c.w[3]).squareRoot() * 8
            for (act, slope) in [(FusedActivation.linear, Float(1)), (.relu, 0), (.leaky(0.1), 0.1)] {
                let dz = Tensor(shape: dy.shape, scalars: zip(dy.scalars, ref.scalars).map { $1 > 0 ? $0 : $0 * slope })
                let (_, rdw) = Reference.conv2dBackward(x, w, dz, p)
                let rdb = (0..<c.w[3]).map { j in stride(from: j, to: dz.count, by: c.w[3]).reduce(Float(0)) { $0 + dz.scalars[$1] } }
                var previous: [Float]?
                for threads in [1, 2] {
                    let wg = w.requiringGrad(), bg = bias.requiringGrad()
                    Parallel.withThreadCount(threads) {
                        Tensor.conv2d(x, filter: wg, bias: bg, strides: c.stride, padding: c.padding, dilations: c.dilation,
                                      activation: act).backward(dy)
                    }
                    #expect(wg.grad!.maxAbsDifference(rdw) <= tol, "case \(i) \(act) dFilter \(wg.grad!.maxAbsDifference(rdw))")
                    #expect(bg.grad!.maxAbsDifference(Tensor(rdb)) <= tol, "case \(i) \(act) dBias")
                    if let previous { #expect(wg.grad!.scalars == previous, "case \(i) \(act): thread count changed the bits") }
                    previous = wg.grad!.scalars
                }
            }
        }
    }

    /// The filter gradient in tall chunks (≥ 510 rows; fewer when the columns would pass 16 MB)
    /// with several partial sums, and the input gradient (by Winograd in the first and last
    /// cases): against the reference, and bitwise the same on 1 and 2 threads.
    @Test func filterGradientInTallChunksMatchesReference() {
        let cases = [
            ConvCase(x: [4, 20, 20, 64], w: [3, 3, 64, 32], padding: .same),    // 4 chunks of 510 rows, 4 partials
            ConvCase(x: [3, 9, 8, 40], w: [1, 1, 40, 24]),                      // pointwise: the input rows themselves
            ConvCase(x: [2, 7, 6, 1000], w: [3, 3, 1000, 8], padding: .same),   // 9000-wide columns: 462-row chunks
            ConvCase(x: [2, 9, 9, 48], w: [3, 3, 48, 64], padding: .same),      // the input gradient by Winograd F(2, 3)
        ]
        for (i, c) in cases.enumerated() {
            let x = Tensor.uniform(c.x, minimum: -1, maximum: 1, seed: UInt64(i + 900))
            let w = Tensor.uniform(c.w, minimum: -1, maximum: 1, seed: UInt64(i + 950))
            let p = referenceParams(c)
            let ref = Reference.conv2d(x, w, bias: nil, p)
            let dy = Tensor.uniform(ref.shape, minimum: -1, maximum: 1, seed: UInt64(i + 990))
            let (rdx, rdw) = Reference.conv2dBackward(x, w, dy, p)
            let tol = 2e-5 * Float(ref.count / c.w[3]).squareRoot() * 8
            var previous: [Float]?
            for threads in [1, 2] {
                let xg = x.requiringGrad(), wg = w.requiringGrad()
                Parallel.withThreadCount(threads) {
                    Tensor.conv2d(xg, filter: wg, strides: c.stride, padding: c.padding, dilations: c.dilation).backward(dy)
                }
                #expect(wg.grad!.maxAbsDifference(rdw) <= tol, "case \(i) dFilter \(wg.grad!.maxAbsDifference(rdw))")
                #expect(xg.grad!.maxAbsDifference(rdx) <= tol, "case \(i) dInput \(xg.grad!.maxAbsDifference(rdx))")
                if let previous { #expect(wg.grad!.scalars == previous, "case \(i): thread count changed the bits") }
                previous = wg.grad!.scalars
            }
        }
    }

    /// The inference path (weights packed once, bias and activation fused) equals the reference
    /// convolution followed by the activation, on every case and on shapes that take the
    /// pointwise and large-weight im2col paths; a second call reuses the packed weights.
    @Test func preparedConvolutionMatchesReference() {
        let cases = Self.convCases + [
            ConvCase(x: [1, 13, 13, 70], w: [1, 1, 70, 40]),
            ConvCase(x: [1, 7, 7, 130], w: [3, 3, 130, 70], padding: .same),
            ConvCase(x: [2, 13, 13, 96], w: [3, 3, 96, 80], padding: .explicit(top: 1, bottom: 1, left: 1, right: 1)),
            // Winograd F(4, 3) (maps ≥ 20) and F(2, 3): edge tiles, asymmetric and no padding, odd sizes.
            ConvCase(x: [2, 23, 21, 67], w: [3, 3, 67, 35], padding: .same),
            ConvCase(x: [1, 26, 26, 64], w: [3, 3, 64, 48], padding: .explicit(top: 1, bottom: 1, left: 1, right: 1)),
            ConvCase(x: [1, 25, 22, 64], w: [3, 3, 64, 32], padding: .valid),
            ConvCase(x: [1, 11, 9, 72], w: [3, 3, 72, 40], padding: .explicit(top: 0, bottom: 2, left: 1, right: 0)),
        ]
        for (i, c) in cases.enumerated() {
            let x = Tensor.uniform(c.x, minimum: -1, maximum: 1, seed: UInt64(i + 1))
            let w = Tensor.uniform(c.w, minimum: -1, maximum: 1, seed: UInt64(i + 100))
            let bias = Tensor.uniform([c.w[3]], minimum: -1, maximum: 1, seed: UInt64(i + 200))
            let ref = Reference.conv2d(x, w, bias: bias, referenceParams(c))
            let tol = 2e-5 * Float(c.w[0] * c.w[1] * c.w[2]).squareRoot() * 4
            let conv = PreparedConvolution(filter: w, bias: bias, strides: c.stride, padding: c.padding,
                                           dilations: c.dilation, groups: c.groups)
            let plain = PreparedConvolution(filter: w, bias: bias, strides: c.stride, padding: c.padding,
                                            dilations: c.dilation, groups: c.groups)
            plain.winogradEnabled = false
            if i >= cases.count - 5 {
                #expect(conv.winogradTile(conv.geometry(x)) != nil, "case \(i) should take the Winograd path")
            }
            for (act, f) in [(FusedActivation.linear, { (v: Float) in v }), (.relu, { max($0, 0) }),
                             (.leaky(0.1), { $0 > 0 ? $0 : 0.1 * $0 })] {
                let expected = Tensor(shape: ref.shape, scalars: ref.scalars.map(f))
                for call in 0..<2 {
                    for (kind, op) in [("winograd when it applies", conv), ("without winograd", plain)] {
                        let y = op(x, activation: act)
                        #expect(y.shape == ref.shape && y.maxAbsDifference(expected) <= tol, "case \(i) \(kind) \(act) call \(call): \(y.maxAbsDifference(expected))")
                    }
                }
            }
        }
    }

    @Test func conv2dRejectsMismatchedShapesWithAClearMessage() {
        // The checks run before any kernel; exercise the message-producing path directly.
        #expect(throws: ShapeError.self) { try Shape.broadcast([1, 5, 5, 3], [1, 5, 5, 4], op: "conv2d") }
    }

    /// Same seed and same thread count → bitwise identical; other thread counts agree closely
    /// (the built-in GEMM is even bitwise identical across thread counts by construction).
    @Test func determinismAcrossRunsAndThreadCounts() {
        func workload() -> [Float] {
            let x = Tensor.normal([2, 24, 24, 8], seed: 1).requiringGrad()
            let w = Tensor.normal([3, 3, 8, 40], standardDeviation: 0.1, seed: 2).requiringGrad()
            let w2 = Tensor.normal([3, 3, 40, 16], standardDeviation: 0.1, seed: 3).requiringGrad()
            // A first layer (no input gradient: the one-pass small-window filter gradient) with
            // a fused relu, a conv with a fused relu, max pooling, dropout, a strided conv.
            let gray = Tensor.normal([2, 24, 24, 1], seed: 5)
            let w0 = Tensor.normal([3, 3, 1, 8], standardDeviation: 0.3, seed: 6).requiringGrad()
            let h0 = Tensor.conv2d(gray, filter: w0, padding: .same, activation: .relu)
            let h = Tensor.conv2d(x + h0, filter: w, padding: .same, activation: .relu)
            var generator = SeededGenerator(seed: 9)
            let p = Tensor.dropout(Tensor.maxPool2d(h, poolSize: (2, 2)), rate: 0.3, using: &generator)
            let y = Tensor.conv2d(p, filter: w2, strides: (2, 2), padding: .same)
            let m = matmul(y.reshaped([2, -1]), Tensor.normal([6 * 6 * 16, 10], seed: 4))
            let loss = Tensor.softmaxCrossEntropy(logits: m, classIndices: Tensor([3, 7])).mean()
            loss.backward()
            return m.scalars + w.grad!.scalars + w2.grad!.scalars + x.grad!.scalars + w0.grad!.scalars
        }
        for (name, scope) in Self.backends { scope {
            let t1a = Parallel.withThreadCount(1) { workload() }
            let t1b = Parallel.withThreadCount(1) { workload() }
            let all = Parallel.threadCount
            let tna = Parallel.withThreadCount(max(2, all)) { workload() }
            let tnb = Parallel.withThreadCount(max(2, all)) { workload() }
            #expect(t1a == t1b, "\(name): 1 thread not reproducible")
            #expect(tna == tnb, "\(name): \(max(2, all)) threads not reproducible")
            let diff = zip(t1a, tna).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
            #expect(diff < 1e-4, "\(name): thread counts disagree by \(diff)")
            if name != "blas" { #expect(t1a == tna, "\(name): the built-in kernels should not depend on the thread count") }
        } }
    }
}

/// `withThreadCount`, `withBackend` and `withPortableKernel` hold for their block and the kernel
/// threads working for it, not for code running beside it.
@Suite struct KernelScopeTests {
    @Test func scopesReachTheKernelThreadsAndNothingElse() {
        let defaultISA = GEMM.kernelISA, defaultThreads = Parallel.threadCount
        final class Seen: @unchecked Sendable {
            let lock = NSLock()
            var values: [String] = []
            func add(_ v: String) { lock.lock(); values.append(v); lock.unlock() }
        }
        let inside = Seen(), outside = Seen()
        DispatchQueue.concurrentPerform(iterations: 2) { k in
            for _ in 0..<50 {
                if k == 0 {
                    Parallel.withThreadCount(3) {
                        GEMM.withBackend(.builtin) {
                            GEMM.withPortableKernel(true) {
                                Parallel.run(6) { _ in inside.add("\(GEMM.kernelISA) \(GEMM.backend) \(Parallel.threadCount)") }
                            }
                        }
                    }
                } else {
                    Parallel.run(6) { _ in outside.add("\(GEMM.kernelISA) \(Parallel.threadCount)") }
                }
            }
        }
        #expect(Set(inside.values) == ["portable builtin 3"], "\(Set(inside.values))")
        #expect(Set(outside.values) == ["\(defaultISA) \(defaultThreads)"], "\(Set(outside.values))")
        #expect(GEMM.kernelISA == defaultISA && Parallel.threadCount == defaultThreads)
    }
}
