import Ocelli
import Foundation

/// The kernel benchmark behind `ocelli bench kernels`: GEMM throughput and convolution timings
/// at the shapes that matter for the course's models. Peers run the same table in
/// `Benchmarks/peers/bench_peers.py`.
public enum KernelBenchmark {
    public struct GemmResult: Codable, Sendable { public let m, n, k: Int; public let gflops: Double }
    public struct ConvResult: Codable, Sendable {
        public let name: String
        public let forward_ms: Double
        public let backward_ms: Double
    }
    public struct Report: Codable, Sendable {
        public let gemm: [GemmResult]
        public let conv: [ConvResult]
        public let threads: Int
        public let blas: String
        public let kernel_isa: String
    }

    /// (m, n, k): square 512, 1024, 2048, and the im2col GEMM of a 104x104x32→64 3x3 convolution.
    public static let gemmShapes: [(Int, Int, Int)] = [(512, 512, 512), (1024, 1024, 1024), (2048, 2048, 2048), (10816, 64, 288)]

    public struct ConvShape: Sendable {
        public let name: String
        public let batch, height, width, channels, filters, kernel: Int
        public let padding: Padding
    }
    /// YOLOv3-tiny's first three convolutions and the course's MNIST convolutions (batch 128).
    public static let convShapes: [ConvShape] = [
        ConvShape(name: "yolov3-tiny conv0", batch: 1, height: 416, width: 416, channels: 3, filters: 16, kernel: 3, padding: .same),
        ConvShape(name: "yolov3-tiny conv1", batch: 1, height: 208, width: 208, channels: 16, filters: 32, kernel: 3, padding: .same),
        ConvShape(name: "yolov3-tiny conv2", batch: 1, height: 104, width: 104, channels: 32, filters: 64, kernel: 3, padding: .same),
        ConvShape(name: "mnist conv1", batch: 128, height: 28, width: 28, channels: 1, filters: 32, kernel: 3, padding: .valid),
        ConvShape(name: "mnist conv2", batch: 128, height: 26, width: 26, channels: 32, filters: 64, kernel: 3, padding: .valid),
    ]

    /// Best wall time in seconds over repeats lasting about `budget` seconds (after a warm-up).
    public static func bestTime(budget: Double = 0.4, minimumRuns: Int = 3, _ body: () -> Void) -> Double {
        body()
        var best = Double.infinity, total = 0.0, runs = 0
        while runs < minimumRuns || total < budget {
            let t0 = DispatchTime.now().uptimeNanoseconds
            body()
            let dt = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            best = Swift.min(best, dt); total += dt; runs += 1
            if runs >= 200 { break }
        }
        return best
    }

    public static func run(budget: Double = 0.4, algorithm: ConvolutionAlgorithm = .automatic) -> Report {
        var gemm: [GemmResult] = []
        for (m, n, k) in gemmShapes {
            let a = Tensor.uniform([m, k], minimum: -1, maximum: 1, seed: 1).scalars
            let b = Tensor.uniform([k, n], minimum: -1, maximum: 1, seed: 2).scalars
            var c = [Float](repeating: 0, count: m * n)
            let t = bestTime(budget: budget) {
                a.withUnsafeBufferPointer { ap in b.withUnsafeBufferPointer { bp in c.withUnsafeMutableBufferPointer { cp in
                    GEMM.sgemm(m: m, n: n, k: k, a: ap.baseAddress!, rsA: k, csA: 1, b: bp.baseAddress!, rsB: n, csB: 1,
                               c: cp.baseAddress!, ldc: n)
                } } }
            }
            gemm.append(GemmResult(m: m, n: n, k: k, gflops: 2 * Double(m * n * k) / t / 1e9))
        }
        var conv: [ConvResult] = []
        for s in convShapes {
            let x = Tensor.uniform([s.batch, s.height, s.width, s.channels], minimum: -1, maximum: 1, seed: 3)
            let w = Tensor.uniform([s.kernel, s.kernel, s.channels, s.filters], minimum: -0.1, maximum: 0.1, seed: 4)
            let bias = Tensor.uniform([s.filters], seed: 5)
            let fwd = bestTime(budget: budget) {
                _ = withoutGradients { Tensor.conv2d(x, filter: w, bias: bias, padding: s.padding, algorithm: algorithm) }
            }
            let xg = x.requiringGrad(), wg = w.requiringGrad(), bg = bias.requiringGrad()
            let y = Tensor.conv2d(xg, filter: wg, bias: bg, padding: s.padding, algorithm: algorithm)
            let ones = Tensor.ones(y.shape)
            let bwd = bestTime(budget: budget) {
                xg.zeroGrad(); wg.zeroGrad(); bg.zeroGrad()
                y.backward(ones)
            }
            conv.append(ConvResult(name: s.name, forward_ms: fwd * 1e3, backward_ms: bwd * 1e3))
        }
        return Report(gemm: gemm, conv: conv, threads: Parallel.threadCount,
                      blas: GEMM.backend == .blas ? (BLAS.name ?? "builtin") : "builtin", kernel_isa: GEMM.kernelISA)
    }

    /// Per-algorithm and per-gradient timings (ms) for tuning: forward with each algorithm,
    /// backward for the filter only (a first layer) and for the input only.
    public static func detail(budget: Double = 0.3) -> [(name: String, timings: [(String, Double)])] {
        convShapes.map { s in
            let x = Tensor.uniform([s.batch, s.height, s.width, s.channels], minimum: -1, maximum: 1, seed: 3)
            let w = Tensor.uniform([s.kernel, s.kernel, s.channels, s.filters], minimum: -0.1, maximum: 0.1, seed: 4)
            var t: [(String, Double)] = []
            for algo in [ConvolutionAlgorithm.direct, .im2col] {
                t.append(("fwd \(algo.rawValue)", 1e3 * bestTime(budget: budget) {
                    _ = withoutGradients { Tensor.conv2d(x, filter: w, padding: s.padding, algorithm: algo) }
                }))
            }
            for (label, gx, gw) in [("bwd filter", false, true), ("bwd input", true, false)] {
                let xi = gx ? x.requiringGrad() : x, wi = gw ? w.requiringGrad() : w
                let y = Tensor.conv2d(xi, filter: wi, padding: s.padding)
                let ones = Tensor.ones(y.shape)
                t.append((label, 1e3 * bestTime(budget: budget) { xi.zeroGrad(); wi.zeroGrad(); y.backward(ones) }))
            }
            return (s.name, t)
        }
    }
}
