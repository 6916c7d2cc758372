import Foundation

/// An activation applied inside a convolution kernel, on the output while it is in cache.
public enum FusedActivation: Sendable, Equatable {
    case linear
    case relu
    /// `x` for x ≥ 0, `slope·x` otherwise (Darknet's leaky is 0.1).
    case leaky(Float)

    /// The slope for negative values: 1 (linear), 0 (relu) or the leaky one.
    var slope: Float {
        switch self {
        case .linear: return 1
        case .relu: return 0
        case .leaky(let a): return a
        }
    }

    /// Whether kernels can apply it as max(v, slope·v) while storing (slopes in [0, 1]).
    var storesAsMax: Bool { (0...1).contains(slope) }
}

/// A convolution whose weights are packed once for the kernel that runs them, for inference:
/// every call reuses the packed weights (no per-call packing), adds the bias and applies the
/// activation on each block of output while it is in cache. Nothing is recorded for autodiff.
///
/// Results equal `Tensor.conv2d` with `.automatic` followed by the activation.
public final class PreparedConvolution: @unchecked Sendable {
    public let filterShape: [Int]
    public let strides: (Int, Int)
    public let padding: Padding
    public let dilations: (Int, Int)
    public let groups: Int
    let filter: [Float]
    let bias: [Float]?
    private let lock = NSLock()
    private var direct: [Float]?
    private var gemm: [PackedMatrix]?
    private var winograd: [Int: [PackedMatrix]] = [:]

    /// Whether this convolution may run by Winograd where `Tensor.winogradTile` chooses it (3x3
    /// stride-1 layers with ≥ 64 input and ≥ 32 output channels). `OCELLI_WINOGRAD=0` turns it
    /// off everywhere (to compare kernels).
    public var winogradEnabled = ProcessInfo.processInfo.environment["OCELLI_WINOGRAD"] != "0"

    func winogradTile(_ g: ConvGeometry) -> WinogradTransform? {
        winogradEnabled ? Tensor.winogradTile(g) : nil
    }

    private func winogradWeights(_ t: WinogradTransform, _ g: ConvGeometry) -> [PackedMatrix] {
        lock.lock(); defer { lock.unlock() }
        if let w = winograd[t.m] { return w }
        let w = t.transformFilter(filter, channels: g.c, filters: g.o)
        winograd[t.m] = w
        return w
    }

    public init(filter: Tensor, bias: Tensor? = nil, strides: (Int, Int) = (1, 1), padding: Padding = .valid,
                dilations: (Int, Int) = (1, 1), groups: Int = 1) {
        require(filter.rank == 4, "PreparedConvolution", "filter must be HWIO (rank 4), got shape \(filter.shape)")
        require(groups >= 1 && filter.shape[3] % groups == 0, "PreparedConvolution",
                "groups \(groups) must divide the filters \(filter.shape[3])")
        if let b = bias { require(b.shape == [filter.shape[3]], "PreparedConvolution", "bias shape \(b.shape) must be [\(filter.shape[3])]") }
        self.filterShape = filter.shape
        self.filter = filter.scalars
        self.bias = bias?.scalars
        self.strides = strides
        self.padding = padding
        self.dilations = dilations
        self.groups = groups
    }

    func geometry(_ input: Tensor) -> ConvGeometry { geometry(shape: input.shape) }

    func geometry(shape: [Int]) -> ConvGeometry {
        require(shape.count == 4, "PreparedConvolution", "input must be NHWC (rank 4), got shape \(shape)")
        require(filterShape[2] * groups == shape[3], "PreparedConvolution",
                "filter \(filterShape) expects \(filterShape[2] * groups) input channels (groups \(groups)), input \(shape) has \(shape[3])")
        let (kh, kw) = (filterShape[0], filterShape[1])
        let pads = padding.amounts(height: shape[1], width: shape[2],
                                   kernel: ((kh - 1) * dilations.0 + 1, (kw - 1) * dilations.1 + 1), stride: strides)
        let g = ConvGeometry(n: shape[0], h: shape[1], w: shape[2], c: shape[3],
                             kh: kh, kw: kw, o: filterShape[3], sh: strides.0, sw: strides.1,
                             dh: dilations.0, dw: dilations.1, pt: pads.0, pb: pads.1, pl: pads.2, pr: pads.3, groups: groups)
        require(g.oh > 0 && g.ow > 0, "PreparedConvolution", "input \(shape) is smaller than the dilated kernel \(filterShape) with padding \(padding)")
        return g
    }

    /// `prepare(inputShape:)` for several convolutions, split over the cores.
    public static func prepare(_ items: [(PreparedConvolution, inputShape: [Int])]) {
        let shared = UnsafeSendable(items)
        Parallel.forRanges(items.count, minimumChunk: 1) { r in
            for i in r { shared.value[i].0.prepare(inputShape: shared.value[i].inputShape) }
        }
    }

    /// Packs now the weights that calls on inputs of this shape ([N, H, W, C]) would pack on
    /// first use, so that the first call costs what the later ones do.
    public func prepare(inputShape: [Int]) {
        let g = geometry(shape: inputShape)
        switch plan(g) {
        case .pointwise, .im2col: _ = gemmWeights(g)
        case .winograd(let t): _ = winogradWeights(t, g)
        case .direct: _ = directWeights(g)
        case .other: break
        }
    }

    /// The kernel a geometry runs on, and so which packed weights it uses.
    private enum Plan { case pointwise, winograd(WinogradTransform), direct, im2col, other }

    private func plan(_ g: ConvGeometry) -> Plan {
        if g.isPointwise { return .pointwise }
        if let t = winogradTile(g) { return .winograd(t) }
        switch Tensor.automaticAlgorithm(g) {
        case .direct: return .direct
        case .im2col: return .im2col
        default: return .other
        }
    }

    private func directWeights(_ g: ConvGeometry) -> [Float] {
        lock.lock(); defer { lock.unlock() }
        if let direct { return direct }
        let p = Tensor.packDirectWeights(filter, g)
        direct = p
        return p
    }

    private func gemmWeights(_ g: ConvGeometry) -> [PackedMatrix] {
        lock.lock(); defer { lock.unlock() }
        if let gemm { return gemm }
        let p = (0..<g.groups).map { PackedMatrix(k: g.kdim, n: g.og, scalars: filter, offset: $0 * g.og, rsB: g.o, csB: 1) }
        gemm = p
        return p
    }

    /// The convolution of an NHWC batch, with the bias and `activation` applied.
    public func callAsFunction(_ input: Tensor, activation: FusedActivation = .linear) -> Tensor {
        let g = geometry(input)
        let shape = [g.n, g.oh, g.ow, g.o]
        switch plan(g) {
        case .pointwise:
            return Tensor(shape: shape, scalars: pointwise(input.scalars, g, activation))
        case .winograd(let t):
            return Tensor(shape: shape, scalars: Tensor.winogradForward(input.scalars, winogradWeights(t, g), bias, g, t,
                                                                        activation: activation))
        case .direct:
            return Tensor(shape: shape, scalars: Tensor.directForward(input.scalars, filter, bias, g,
                                                                      packedWeights: directWeights(g), activation: activation))
        case .im2col:
            return Tensor(shape: shape, scalars: Tensor.im2colForward(input.scalars, filter, bias, g,
                                                                      packedWeights: gemmWeights(g), activation: activation))
        case .other:
            var out = Tensor.convForward(input.scalars, filter, bias, g, .automatic)
            out.withUnsafeMutableBufferPointer { Tensor.finishRows($0.baseAddress!, count: $0.count, activation) }
            return Tensor(shape: shape, scalars: out)
        }
    }

    /// The convolution (bias and `activation` applied) followed by a 2x2 stride-2 max pool, in one
    /// pass that never writes the full-resolution map: each pair of output rows is computed
    /// into a small per-thread buffer and pooled from there. For the geometries the direct kernel
    /// runs (thin layers, where writing and re-reading the map costs as much as computing it)
    /// with an even output size; nil otherwise. Equals `maxPool2d(self(input, activation:),
    /// poolSize: (2, 2))`.
    public func maxPooled2x2(_ input: Tensor, activation: FusedActivation = .linear) -> Tensor? {
        let g = geometry(input)
        guard case .direct = plan(g), g.oh % 2 == 0, g.ow % 2 == 0, g.n * g.oh * g.ow > 0 else { return nil }
        let out = Tensor.directForwardMaxPooled(input.scalars, bias, g, packedWeights: directWeights(g), activation: activation)
        return Tensor(shape: [g.n, g.oh / 2, g.ow / 2, g.o], scalars: out)
    }

    /// 1x1 stride-1 convolutions: one GEMM [pixels, C] × [C, O] over row blocks, bias and activation per block.
    private func pointwise(_ x: [Float], _ g: ConvGeometry, _ activation: FusedActivation) -> [Float] {
        let packed = gemmWeights(g)[0]
        let rows = g.n * g.h * g.w
        var out = uninitializedScalars(rows * g.o)
        let bias = self.bias
        x.withUnsafeBufferPointer { xp in
            out.withUnsafeMutableBufferPointer { op in
                let p = UnsafeSendable((xp.baseAddress!, op.baseAddress!))
                let block = Swift.max(6, Swift.min(96, (rows + Parallel.threadCount - 1) / Parallel.threadCount) / 6 * 6)
                Parallel.forRanges(rows, minimumChunk: block, alignment: 6) { r in
                    let (xb, ob) = p.value
                    var start = r.lowerBound
                    while start < r.upperBound {
                        let m = Swift.min(block, r.upperBound - start)
                        let c = ob + start * g.o
                        GEMM.sgemmPacked(m: m, a: xb + start * g.c, rsA: g.c, csA: 1, packed: packed, c: c, ldc: g.o)
                        if let bias { Tensor.addBias(c, rows: m, bias) }
                        if activation != .linear { Tensor.finishRows(c, count: m * g.o, activation) }
                        start += m
                    }
                }
            }
        }
        return out
    }
}
