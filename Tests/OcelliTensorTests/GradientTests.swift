import Testing
@testable import OcelliTensor
import OcelliTestSupport

/// A named op with its inputs; the gradient check compares the tape with finite differences
/// (tolerance |analytic − numeric| ≤ 1e-3 + 1e-2·|numeric|, step 1e-2, loss summed in Double).
struct GradCase: CustomTestStringConvertible, Sendable {
    let name: String
    let inputs: @Sendable () -> [Tensor]
    let f: @Sendable ([Tensor]) -> Tensor
    var testDescription: String { name }
    init(_ name: String, _ inputs: @escaping @Sendable () -> [Tensor], _ f: @escaping @Sendable ([Tensor]) -> Tensor) {
        self.name = name; self.inputs = inputs; self.f = f
    }
}

private func u(_ s: [Int], _ seed: UInt64, _ scale: Float = 1) -> Tensor { TestData.uniform(s, seed: seed, scale: scale) }
private func away(_ s: [Int], _ seed: UInt64) -> Tensor { TestData.awayFromZero(s, seed: seed) }
private func pos(_ s: [Int], _ seed: UInt64) -> Tensor { Tensor.uniform(s, minimum: 0.5, maximum: 2, seed: seed) }
private func distinct(_ s: [Int], _ seed: UInt64) -> Tensor { TestData.distinct(s, seed: seed) }

let unaryCases: [GradCase] = [
    GradCase("negate", { [u([2, 3], 1)] }) { -$0[0] },
    GradCase("abs", { [away([2, 3], 2)] }) { $0[0].abs() },
    GradCase("exp", { [u([2, 3], 3)] }) { $0[0].exp() },
    GradCase("log", { [pos([2, 3], 4)] }) { $0[0].log() },
    GradCase("sqrt", { [pos([2, 3], 5)] }) { $0[0].sqrt() },
    GradCase("rsqrt", { [pos([2, 3], 6)] }) { $0[0].rsqrt() },
    GradCase("square", { [u([2, 3], 7)] }) { $0[0].square() },
    GradCase("pow 3", { [u([2, 3], 8)] }) { $0[0].pow(3) },
    GradCase("pow 0.5", { [pos([2, 3], 9)] }) { $0[0].pow(0.5) },
    GradCase("sigmoid", { [u([2, 3], 10, 3)] }) { $0[0].sigmoid() },
    GradCase("tanh", { [u([2, 3], 11, 2)] }) { $0[0].tanh() },
    GradCase("relu", { [away([2, 3], 12)] }) { $0[0].relu() },
    GradCase("leaky relu", { [away([2, 3], 13)] }) { $0[0].leakyRelu(negativeSlope: 0.1) },
    GradCase("elu", { [away([2, 3], 14)] }) { $0[0].elu(alpha: 1.5) },
    GradCase("selu", { [away([2, 3], 15)] }) { $0[0].selu() },
    GradCase("softplus", { [u([2, 3], 16, 4)] }) { $0[0].softplus() },
    GradCase("clamp", { [Tensor([-0.9, -0.3, 0.2, 0.45, 0.8, 1.5])] }) { $0[0].clamped(min: -0.5, max: 0.6) },
]

let binaryCases: [GradCase] = [
    GradCase("add broadcast", { [u([2, 3, 4], 20), u([3, 1], 21)] }) { $0[0] + $0[1] },
    GradCase("subtract broadcast", { [u([3, 1], 22), u([2, 1, 4], 23)] }) { $0[0] - $0[1] },
    GradCase("multiply broadcast", { [u([2, 3, 4], 24), u([4], 25)] }) { $0[0] * $0[1] },
    GradCase("divide broadcast", { [u([2, 3], 26), pos([2, 1], 27)] }) { $0[0] / $0[1] },
    GradCase("scalar ops", { [u([3], 28)] }) { (2 - $0[0] * 3) / 4 + 1 },
    GradCase("maximum", { [distinct([2, 3], 29), distinct([3], 30) + 0.05] }) { Tensor.maximum($0[0], $0[1]) },
    GradCase("minimum", { [distinct([2, 3], 31), distinct([2, 1], 32) + 0.05] }) { Tensor.minimum($0[0], $0[1]) },
    GradCase("pow tensor", { [pos([2, 3], 33), u([3], 34)] }) { Tensor.pow($0[0], $0[1]) },
    GradCase("select", { [u([2, 3], 35), u([3], 36)] }) { select(Tensor([[1, 0, 1], [0, 0, 1]]), $0[0], $0[1]) },
]

let reductionCases: [GradCase] = [
    GradCase("sum all", { [u([2, 3, 4], 40)] }) { $0[0].sum() },
    GradCase("sum axes 0,2", { [u([2, 3, 4], 41)] }) { $0[0].sum(axes: [0, 2]) },
    GradCase("sum middle keepDims", { [u([2, 3, 4], 42)] }) { $0[0].sum(axes: [1], keepDims: true) },
    GradCase("mean", { [u([2, 3, 4], 43)] }) { $0[0].mean(axes: [-1]) },
    GradCase("max", { [distinct([2, 3, 4], 44)] }) { $0[0].max(axes: [1]) },
    GradCase("min all", { [distinct([2, 3, 4], 45)] }) { $0[0].min() },
    GradCase("max ties share", { [Tensor([[1, 3, 3], [2, 0, 1]])] }) { x in
        // f = max(x) per row where row 0 ties: the gradient 1/2 per tied cell is the
        // subgradient PyTorch's amax uses; finite differences see 1/2 too (symmetric step).
        (x[0] * 1).max(axis: 1) },
    GradCase("variance", { [u([3, 5], 46)] }) { $0[0].variance(axes: [1]) },
    GradCase("logSumExp", { [u([3, 5], 47, 3)] }) { $0[0].logSumExp(axes: [1]) },
    GradCase("logSumExp keepDims 0", { [u([3, 5], 48, 3)] }) { $0[0].logSumExp(axes: [0], keepDims: true) },
]

let linalgCases: [GradCase] = [
    GradCase("matmul", { [u([3, 4], 50), u([4, 5], 51)] }) { matmul($0[0], $0[1]) },
    GradCase("matmul transposes", { [u([4, 3], 52), u([5, 4], 53)] }) { Tensor.matmul($0[0], transposeA: true, $0[1], transposeB: true) },
    GradCase("matmul transposeA", { [u([4, 3], 54), u([4, 2], 55)] }) { Tensor.matmul($0[0], transposeA: true, $0[1]) },
    GradCase("matmul transposeB", { [u([3, 4], 56), u([2, 4], 57)] }) { Tensor.matmul($0[0], $0[1], transposeB: true) },
    GradCase("batched matmul broadcast", { [u([2, 3, 4], 58), u([4, 2], 59)] }) { matmul($0[0], $0[1]) },
    GradCase("batched matmul both", { [u([2, 1, 3, 4], 60), u([3, 4, 2], 61)] }) { matmul($0[0], $0[1]) },
]

let shapeCases: [GradCase] = [
    GradCase("reshape", { [u([2, 6], 70)] }) { $0[0].reshaped([3, 4]) * Tensor.arange(12).reshaped([3, 4]) },
    GradCase("permute", { [u([2, 3, 4], 71)] }) { $0[0].permuted([2, 0, 1]) },
    GradCase("transpose", { [u([3, 4], 72)] }) { $0[0].transposed() },
    GradCase("broadcast to", { [u([3, 1], 73)] }) { $0[0].broadcast(to: [2, 3, 4]) },
    GradCase("expand squeeze", { [u([3], 74)] }) { $0[0].expandingShape(at: 0).squeezingShape(at: [0]).expandingShape(at: 1) },
    GradCase("strided slice", { [u([5, 6], 75)] }) { $0[0].sliced(starts: [4, 1], ends: [Int.min, 6], steps: [-2, 2]) },
    GradCase("concatenate", { [u([2, 3], 76), u([2, 1], 77)] }) { Tensor.concatenate([$0[0], $0[1], $0[0]], axis: 1) },
    GradCase("stack", { [u([2, 3], 78), u([2, 3], 79)] }) { Tensor.stack([$0[0], $0[1]], axis: 1) },
    GradCase("split", { [u([5, 2], 80)] }) { x in let p = x[0].split(sizes: [2, 3]); return p[1].sum(axes: [0]) * p[0].sum(axes: [0]) },
    GradCase("pad", { [u([2, 3], 81)] }) { $0[0].padded([(1, 2), (0, 1)], value: 0.5) },
    GradCase("gather", { [u([4, 3], 82)] }) { $0[0].gathering(atIndices: [3, 0, 3], alongAxis: 0) },
    GradCase("take along axis", { [u([3, 4], 83)] }) { $0[0].takingAlongAxis(Tensor([[1, 1], [0, 3], [2, 2]]), axis: 1) },
]

@Suite struct GradientTests {
    @Test(arguments: unaryCases + binaryCases + reductionCases + linalgCases + shapeCases)
    func finiteDifferences(_ c: GradCase) {
        let r = checkGradients(c.inputs(), c.f)
        #expect(r.passed, "\(c.name): \(r)")
    }
}
