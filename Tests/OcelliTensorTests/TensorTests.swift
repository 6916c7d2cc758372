import Testing
@testable import OcelliTensor
import OcelliTestSupport

@Suite struct CreationTests {
    @Test func constructorsAndValues() {
        #expect(Tensor.zeros([2, 3]).scalars == [0, 0, 0, 0, 0, 0])
        #expect(Tensor.ones([2]).scalars == [1, 1])
        #expect(Tensor.full([1, 2], 7).scalars == [7, 7])
        #expect(Tensor.arange(5).scalars == [0, 1, 2, 3, 4])
        #expect(Tensor.arange(1, 2, step: 0.25).scalars == [1, 1.25, 1.5, 1.75])
        #expect(Tensor.linspace(0, 1, count: 5).scalars == [0, 0.25, 0.5, 0.75, 1])
        let m = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect(m.shape == [2, 3])
        #expect(m[1, 2] == 6)
        #expect(Tensor([[[1, 2]], [[3, 4]]]).shape == [2, 1, 2])
        #expect(Tensor(3).shape == [])
    }

    @Test func valueSemantics() {
        let a = Tensor([1, 2, 3])
        var b = a
        b[0] = 10
        #expect(a.scalars == [1, 2, 3])
        #expect(b.scalars == [10, 2, 3])
    }

    @Test func seededRandomIsReproducibleAndHasTheRightMoments() {
        let a = Tensor.normal([10000], mean: 1, standardDeviation: 2, seed: 7)
        let b = Tensor.normal([10000], mean: 1, standardDeviation: 2, seed: 7)
        #expect(a.scalars == b.scalars)
        #expect(abs(a.mean().scalar - 1) < 0.1)
        #expect(abs(a.variance().scalar.squareRoot() - 2) < 0.1)
        let u = Tensor.uniform([10000], minimum: -3, maximum: 5, seed: 1)
        #expect(u.scalars.allSatisfy { $0 >= -3 && $0 < 5 })
        #expect(abs(u.mean().scalar - 1) < 0.1)
        let t = Tensor.truncatedNormal([10000], standardDeviation: 0.5, seed: 3)
        #expect(t.scalars.allSatisfy { abs($0) <= 1 })
        #expect(Tensor.uniform([4], seed: 1).scalars != Tensor.uniform([4], seed: 2).scalars)
    }
}

@Suite struct ElementwiseTests {
    @Test func unaryValues() {
        let x = Tensor([-2, -0.5, 0, 1.5])
        #expect((-x).scalars == [2, 0.5, -0, -1.5])
        #expect(x.abs().scalars == [2, 0.5, 0, 1.5])
        #expect(x.relu().scalars == [0, 0, 0, 1.5])
        #expect(x.leakyRelu(negativeSlope: 0.1).isClose(to: Tensor([-0.2, -0.05, 0, 1.5])))
        #expect(x.clamped(min: -1, max: 1).scalars == [-1, -0.5, 0, 1])
        #expect(Tensor([0]).sigmoid().scalars == [0.5])
        #expect(Tensor([4]).sqrt().scalars == [2])
        #expect(Tensor([4]).rsqrt().scalars == [0.5])
        #expect(Tensor([3]).square().scalars == [9])
        #expect(Tensor([2]).pow(3).scalars == [8])
        #expect(Tensor([0]).exp().scalars == [1])
        #expect(Tensor([1]).log().scalars == [0])
        #expect(Tensor([-1]).elu().isClose(to: Tensor([-0.63212055])))
        #expect(Tensor([1, -1]).selu().isClose(to: Tensor([1.0507009, -1.1113307])))
        #expect(Tensor([0, 100, -100]).softplus().isClose(to: Tensor([0.6931472, 100, 0])))
        #expect(Tensor([-100, 100]).sigmoid().scalars.allSatisfy { $0.isFinite })
    }

    @Test func broadcastingArithmetic() {
        let a = Tensor([[1, 2, 3], [4, 5, 6]])
        #expect((a + Tensor([10, 20, 30])).scalars == [11, 22, 33, 14, 25, 36])
        #expect((a * Tensor([[2], [3]])).scalars == [2, 4, 6, 12, 15, 18])
        #expect((a - 1).scalars == [0, 1, 2, 3, 4, 5])
        #expect((1 / Tensor([2, 4])).scalars == [0.5, 0.25])
        let col = Tensor(shape: [3, 1], scalars: [1, 2, 3]), row = Tensor(shape: [1, 4], scalars: [0, 10, 20, 30])
        #expect((col + row).shape == [3, 4])
        #expect((col + row)[2, 3] == 33)
        #expect(Tensor.maximum(a, Tensor(3.5)).scalars == [3.5, 3.5, 3.5, 4, 5, 6])
        #expect(Tensor.minimum(a, Tensor([2, 2, 2])).scalars == [1, 2, 2, 2, 2, 2])
        // Broadcast in the middle of a rank-4 tensor.
        let x = Tensor.arange(24).reshaped([2, 3, 2, 2])
        let y = x + Tensor(shape: [3, 1, 1], scalars: [100, 200, 300])
        #expect(y[1, 2, 1, 0] == x[1, 2, 1, 0] + 300)
    }

    @Test func comparisonsAndSelect() {
        let a = Tensor([1, 2, 3]), b = Tensor([3, 2, 1])
        #expect((a .< b).scalars == [1, 0, 0])
        #expect((a .== b).scalars == [0, 1, 0])
        #expect((a .>= 2).scalars == [0, 1, 1])
        #expect(select(a .> 1, a, Tensor(-1)).scalars == [-1, 2, 3])
    }

    @Test func shapeErrorsNameTheOpAndBothShapes() {
        #expect(throws: ShapeError.self) { try Shape.broadcast([2, 3], [4], op: "add") }
        do {
            _ = try Shape.broadcast([2, 3], [4], op: "add")
        } catch {
            #expect(error.description.contains("add"))
            #expect(error.description.contains("[2, 3]"))
            #expect(error.description.contains("[4]"))
        }
        #expect(throws: ShapeError.self) { try Shape.normalizeAxes([3], rank: 2, op: "sum") }
        #expect(throws: ShapeError.self) { try Shape.normalizeAxes([0, -2], rank: 2, op: "sum") }
    }
}

@Suite struct ReductionTests {
    let x = Tensor.arange(24).reshaped([2, 3, 4])

    @Test func sumsOverAnyAxes() {
        #expect(x.sum().scalar == 276)
        #expect(x.sum(axis: 0).shape == [3, 4])
        #expect(x.sum(axis: 0)[0, 0] == 12)
        #expect(x.sum(axes: [0, 2]).scalars == [60, 92, 124])
        #expect(x.sum(axes: [0, 2], keepDims: true).shape == [1, 3, 1])
        #expect(x.sum(axis: -1).scalars == [6, 22, 38, 54, 70, 86])
        #expect(x.mean(axes: [1]).scalars == [4, 5, 6, 7, 16, 17, 18, 19])
    }

    @Test func extremaAndArgs() {
        let t = Tensor([[3, 9, 1], [7, 2, 8]])
        #expect(t.max(axis: 1).scalars == [9, 8])
        #expect(t.min(axis: 0).scalars == [3, 2, 1])
        #expect(t.max().scalar == 9)
        #expect(t.argmax(axis: 1).scalars == [1, 2])
        #expect(t.argmin(axis: 0).scalars == [0, 1, 0])
        #expect(t.argmax(axis: 1, keepDims: true).shape == [2, 1])
    }

    @Test func varianceAndLogSumExp() {
        let t = Tensor([[1, 2, 3, 4], [2, 2, 2, 2]])
        #expect(t.variance(axis: 1).isClose(to: Tensor([1.25, 0])))
        let big = Tensor([1000, 1000])
        #expect(big.logSumExp().isClose(to: Tensor(1000 + 0.6931472), relative: 1e-6))
        #expect(Tensor([[0, 0, 0]]).logSumExp(axes: [1], keepDims: true).isClose(to: Tensor(shape: [1, 1], scalars: [1.0986123])))
    }

    @Test func largeSumIsAccurate() {
        let n = 1_000_003
        let s = Tensor.full([n], 0.1).sum().scalar
        #expect(abs(s - Float(Double(n) * 0.1)) / Float(n) < 1e-6)
        let columns = Tensor.full([300_001, 3], 0.1).sum(axis: 0)
        #expect(columns.scalars.allSatisfy { abs($0 - 30_000.1) < 0.05 }, "\(columns.scalars)")
    }
}

@Suite struct ShapeOpTests {
    @Test func reshapePermuteSqueeze() {
        let x = Tensor.arange(6).reshaped([2, 3])
        #expect(x.reshaped([3, -1]).shape == [3, 2])
        #expect(x.transposed().scalars == [0, 3, 1, 4, 2, 5])
        let y = Tensor.arange(24).reshaped([2, 3, 4]).permuted([2, 0, 1])
        #expect(y.shape == [4, 2, 3])
        #expect(y[3, 1, 2] == Float(1 * 12 + 2 * 4 + 3))
        #expect(x.expandingShape(at: 0).shape == [1, 2, 3])
        #expect(x.expandingShape(at: -1).shape == [2, 3, 1])
        #expect(x.expandingShape(at: 1).squeezingShape().shape == [2, 3])
        #expect(Tensor([1, 2]).broadcast(to: [3, 2]).scalars == [1, 2, 1, 2, 1, 2])
    }

    /// Every permutation path (rows copied whole, and 16-row blocks along the input's
    /// contiguous axis when the last output axis is strided) against index arithmetic, on odd
    /// sizes, size-1 axes, and Darknet's OIHW <-> HWIO kernels.
    @Test func permuteMatchesIndexArithmetic() {
        let cases: [([Int], [Int])] = [
            ([17, 33], [1, 0]), ([5, 7, 3, 3], [2, 3, 1, 0]), ([3, 3, 7, 5], [3, 2, 0, 1]),
            ([3, 40, 2, 5], [3, 1, 0, 2]), ([4, 1, 6], [2, 1, 0]), ([2, 65, 3], [0, 2, 1]),
            ([1, 1, 19, 6], [2, 3, 1, 0]), ([6, 19, 1, 1], [2, 3, 1, 0]), ([2, 3, 4, 5], [1, 3, 0, 2]),
        ]
        for (shape, perm) in cases {
            let x = Tensor.arange(shape.reduce(1, *)).reshaped(shape)
            let y = x.permuted(perm)
            let outShape = perm.map { shape[$0] }
            #expect(y.shape == outShape)
            let inStrides = Shape.strides(shape)
            var expected = [Float](repeating: 0, count: x.count)
            for flat in 0..<x.count {
                var rem = flat, src = 0
                for k in stride(from: outShape.count - 1, through: 0, by: -1) {
                    src += (rem % outShape[k]) * inStrides[perm[k]]; rem /= outShape[k]
                }
                expected[flat] = Float(src)
            }
            let wrong = zip(y.scalars, expected).filter { $0 != $1 }.count
            #expect(wrong == 0, "\(shape) permuted \(perm): \(wrong) elements out of place")
        }
    }

    @Test func stridedSlices() {
        let x = Tensor.arange(10)
        #expect(x.sliced(starts: [1], ends: [8], steps: [3]).scalars == [1, 4, 7])
        #expect(x.sliced(starts: [-3], ends: [10]).scalars == [7, 8, 9])
        #expect(x.sliced(starts: [8], ends: [Int.min], steps: [-3]).scalars == [8, 5, 2])
        #expect(x.sliced(starts: [9], ends: [0], steps: [-1]).count == 9)
        #expect(x.sliced(starts: [5], ends: [2]).count == 0)
        let m = Tensor.arange(12).reshaped([3, 4])
        #expect(m.sliced(starts: [0, 1], ends: [3, 4], steps: [2, 2]).scalars == [1, 3, 9, 11])
        #expect(m.sliced(axis: 1, 1..<3).scalars == [1, 2, 5, 6, 9, 10])
    }

    @Test func concatStackSplitPad() {
        let a = Tensor([[1, 2]]), b = Tensor([[3, 4], [5, 6]])
        #expect(Tensor.concatenate([a, b], axis: 0).scalars == [1, 2, 3, 4, 5, 6])
        #expect(Tensor.concatenate([b, b], axis: 1).scalars == [3, 4, 3, 4, 5, 6, 5, 6])
        #expect(Tensor.stack([Tensor([1, 2]), Tensor([3, 4])], axis: 1).scalars == [1, 3, 2, 4])
        let parts = Tensor.arange(10).split(sizes: [3, 7])
        #expect(parts[0].scalars == [0, 1, 2] && parts[1].count == 7)
        #expect(Tensor.arange(6).reshaped([2, 3]).split(count: 3, axis: 1)[2].scalars == [2, 5])
        #expect(Tensor([[1]]).padded([(1, 0), (0, 2)], value: 9).scalars == [9, 9, 9, 1, 9, 9])
    }

    @Test func gatherTakeOneHot() {
        let m = Tensor.arange(12).reshaped([3, 4])
        #expect(m.gathering(atIndices: [2, 0], alongAxis: 0).scalars == [8, 9, 10, 11, 0, 1, 2, 3])
        #expect(m.gathering(atIndices: [3, 3], alongAxis: 1).scalars == [3, 3, 7, 7, 11, 11])
        #expect(m.takingAlongAxis(Tensor(shape: [3, 1], scalars: [1, 0, 3]), axis: 1).scalars == [1, 4, 11])
        #expect(Tensor.oneHot([2, 0, 5], depth: 3).scalars == [0, 0, 1, 1, 0, 0, 0, 0, 0])
    }
}

@Suite struct AutodiffTests {
    @Test func simpleChainRule() {
        let x = Tensor([2, 3]).requiringGrad()
        let y = (x * x + 3 * x).sum()
        y.backward()
        #expect(x.grad!.scalars == [7, 9])
    }

    @Test func gradientsAccumulateAcrossBackwardCallsAndReuse() {
        let x = Tensor([1, 2]).requiringGrad()
        (x * x).sum().backward()
        (x * 3).sum().backward()
        #expect(x.grad!.scalars == [5, 7])
        x.zeroGrad()
        #expect(x.grad == nil)
        // The same tensor used twice in one expression.
        let y = (x * x * x).sum()
        y.backward()
        #expect(x.grad!.scalars == [3, 12])
    }

    @Test func noGradientScopeRecordsNothing() {
        let x = Tensor([1, 2]).requiringGrad()
        let y = withoutGradients { (x * 2).sum() }
        #expect(!y.requiresGrad)
        #expect((x * 2).requiresGrad)
        #expect(!(Tensor([1]) * 2).requiresGrad)
    }

    @Test func deepChainsDoNotExhaustTheStack() {
        let x = Tensor([1]).requiringGrad()
        var y = x
        for _ in 0..<20_000 { y = y + 0 }
        y.sum().backward()
        #expect(x.grad!.scalars == [1])
    }
}
