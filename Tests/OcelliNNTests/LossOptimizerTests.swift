import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Loss values from Keras' documentation examples (computed by hand where noted).
@Suite struct LossTests {
    let t = Tensor([[0, 1], [0, 0]])
    let p = Tensor([[0.6, 0.4], [0.4, 0.6]])

    @Test func crossEntropies() {
        let yt = Tensor([[0, 1, 0], [0, 0, 1]]), yp = Tensor([[0.05, 0.95, 0], [0.1, 0.8, 0.1]])
        #expect(KerasLoss.categoricalCrossentropy()(yt, yp).isClose(to: Tensor(1.176939), absolute: 1e-5))
        #expect(KerasLoss.sparseCategoricalCrossentropy()(Tensor([1, 2]), yp).isClose(to: Tensor(1.176939), absolute: 1e-5))
        // From logits = softmax of the logits, then the same formula.
        let logits = Tensor([[1, 2, 3]]), probs = logits.softmax()
        #expect(KerasLoss.categoricalCrossentropy(fromLogits: true)(Tensor([[0, 0, 1]]), logits)
            .isClose(to: KerasLoss.categoricalCrossentropy()(Tensor([[0, 0, 1]]), probs), absolute: 1e-6))
        #expect(KerasLoss.binaryCrossentropy()(t, p).isClose(to: Tensor(0.815), absolute: 1e-3))
        let logitsB = Tensor([[0.4, -0.4], [-0.4, 0.4]])
        #expect(KerasLoss.binaryCrossentropy(fromLogits: true)(t, logitsB)
            .isClose(to: KerasLoss.binaryCrossentropy()(t, logitsB.sigmoid()), absolute: 1e-5))
    }

    @Test func regressionAndMarginLosses() {
        let yp = Tensor([[1, 1], [1, 0]])
        #expect(KerasLoss.meanSquaredError(t, yp).scalar == 0.5)
        #expect(KerasLoss.meanAbsoluteError(t, yp).scalar == 0.5)
        #expect(KerasLoss.hinge(t, p).isClose(to: Tensor(1.3), absolute: 1e-5))
        #expect(KerasLoss.squaredHinge(t, p).isClose(to: Tensor(1.86), absolute: 1e-5))
        #expect(KerasLoss.poisson(t, Tensor([[1, 1], [0, 0]])).isClose(to: Tensor(0.5), absolute: 1e-5))
        #expect(KerasLoss.kullbackLeiblerDivergence(t, p).isClose(to: Tensor(0.458), absolute: 1e-3))
        #expect(KerasLoss.huber()(t, p).isClose(to: Tensor(0.155), absolute: 1e-5))
        #expect(KerasLoss.meanSquaredError(t, yp, reduction: .sum).scalar == 1)
        #expect(KerasLoss.meanSquaredError(t, yp, reduction: .none).scalars == [0.5, 0.5])
    }

    @Test func lossGradientsMatchFiniteDifferences() {
        for loss in [KerasLoss.categoricalCrossentropy(labelSmoothing: 0.1), .binaryCrossentropy(), .huber(delta: 0.3), .kullbackLeiblerDivergence] {
            let target = Tensor([[0.2, 0.7, 0.1], [0.0, 0.0, 1.0]])
            let pred = Tensor([[0.3, 0.5, 0.2], [0.25, 0.15, 0.6]])
            let r = checkGradients([pred]) { loss(target, $0[0]) }
            #expect(r.passed, "\(loss): \(r)")
        }
    }
}

@Suite struct MetricTests {
    @Test func accuracies() {
        let probs = Tensor([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5]])
        #expect(Metric.accuracy.values(Tensor([[0, 1, 0], [0, 1, 0], [0, 0, 1]]), probs) == [1, 0, 1])
        #expect(Metric.accuracy.values(Tensor([1, 0, 0]), probs) == [1, 1, 0])
        #expect(Metric.sparseTopKCategoricalAccuracy(k: 2).values(Tensor([1, 1, 0]), probs) == [1, 1, 0])
        #expect(Metric.binaryAccuracy().values(Tensor([[1], [0]]), Tensor([[0.7], [0.6]])) == [1, 0])
        #expect(Metric.meanAbsoluteError.values(Tensor([[1, 2]]), Tensor([[2, 4]])) == [1.5])
    }
}

/// One step of every optimizer against values computed by hand from Keras 3's update rules:
/// w = [1, 2], g = [0.5, −1].
@Suite struct OptimizerTests {
    func step(_ opt: some Optimizer, times: Int = 1) -> [Float] {
        let p = Parameter("w", Tensor([1, 2]))
        for _ in 0..<times {
            (p.value * Tensor([0.5, -1])).sum().backward()
            opt.apply([p])
        }
        return p.value.scalars
    }

    func close(_ a: [Float], _ b: [Float], _ tol: Float = 1e-5) -> Bool {
        zip(a, b).allSatisfy { Swift.abs($0 - $1) <= tol }
    }

    @Test func sgdVariants() {
        #expect(close(step(.sgd(learningRate: 0.1)), [0.95, 2.1]))
        #expect(close(step(.sgd(learningRate: 0.1, momentum: 0.9), times: 2), [0.855, 2.29]))
        #expect(close(step(.sgd(learningRate: 0.1, momentum: 0.9, nesterov: true)), [0.905, 2.19]))
    }

    @Test func adaptiveOptimizers() {
        #expect(close(step(.adam(learningRate: 0.1)), [0.9000006, 2.0999994]))
        #expect(close(step(.adamax(learningRate: 0.1)), [0.9, 2.1]))
        #expect(close(step(.rmsprop(learningRate: 0.1)), [0.683772, 2.316228]))
        #expect(close(step(.adagrad(learningRate: 0.1)), [0.9154846, 2.0953463]))
        #expect(close(step(.adadelta(learningRate: 1.0)), [0.99858579, 2.00141421]))
        #expect(close(step(.adamW(learningRate: 0.1)), [0.8996006, 2.0991994]))
    }

    @Test func kerasDefaults() {
        #expect(SGD().learningRate == 0.01)
        #expect(Adam().learningRate == 0.001)
        #expect(Adadelta().learningRate == 0.001)  // Keras 2 used 1.0
        #expect(Adam.adamW().weightDecay == 0.004)
    }

    @Test func clipping() {
        #expect(close(step(.sgd(learningRate: 1, clipNorm: 0.5)), [1 - 0.2236068, 2 + 0.4472136]))
        #expect(close(step(.sgd(learningRate: 1, clipValue: 0.6)), [0.5, 2.6]))
        let opt = SGD(learningRate: 1); opt.globalClipNorm = 0.5
        #expect(close(step(opt), [1 - 0.2236068, 2 + 0.4472136]))
    }

    @Test func schedules() {
        #expect(PiecewiseConstantDecay(boundaries: [10, 20], values: [1, 0.5, 0.1])(15) == 0.5)
        #expect(Swift.abs(ExponentialDecay(initialLearningRate: 1, decaySteps: 10, decayRate: 0.5)(20) - 0.25) < 1e-6)
        #expect(ExponentialDecay(initialLearningRate: 1, decaySteps: 10, decayRate: 0.5, staircase: true)(15) == 0.5)
        #expect(Swift.abs(CosineDecay(initialLearningRate: 1, decaySteps: 100)(50) - 0.5) < 1e-6)
        #expect(Swift.abs(CosineDecay(initialLearningRate: 0, decaySteps: 100, warmupTarget: 1, warmupSteps: 10)(5) - 0.5) < 1e-6)
        #expect(Swift.abs(PolynomialDecay(initialLearningRate: 1, decaySteps: 10, endLearningRate: 0)(5) - 0.5) < 1e-6)
        #expect(Swift.abs(LinearWarmup(warmupSteps: 4, then: ConstantLearningRate(1))(1) - 0.5) < 1e-6)
        let opt = SGD().withSchedule(ExponentialDecay(initialLearningRate: 1, decaySteps: 1, decayRate: 0.5))
        let p = Parameter("w", Tensor([0]))
        for _ in 0..<2 { (p.value * 1).sum().backward(); opt.apply([p]) }
        #expect(p.value.scalars == [-1.5])  // steps of 1 then 0.5
    }
}

@Suite struct InitializerTests {
    @Test func varianceScalingStatistics() {
        var g = SeededGenerator(seed: 1)
        let gu = Initializer.glorotUniform.make([100, 200], using: &g)
        #expect(gu.scalars.allSatisfy { Swift.abs($0) <= (6.0 / 300).squareRoot() })
        #expect(Swift.abs(gu.variance().scalar - 2.0 / 300) < 2e-4)
        let hn = Initializer.heNormal.make([3, 3, 64, 128], using: &g)
        #expect(Swift.abs(hn.variance().scalar.squareRoot() - (2.0 / 576).squareRoot()) < 2e-3)
        #expect(hn.scalars.allSatisfy { Swift.abs($0) <= 2 * (2.0 / 576).squareRoot() / 0.8796 + 1e-6 })
        let lu = Initializer.lecunUniform.make([400, 10], using: &g)
        #expect(Swift.abs(lu.variance().scalar - 1.0 / 400) < 2e-4)
        #expect(Initializer.constant(3).make([2], using: &g).scalars == [3, 3])
        let rn = Initializer.randomNormal().make([10000], using: &g)
        #expect(Swift.abs(rn.variance().scalar.squareRoot() - 0.05) < 2e-3)
    }

    @Test func orthogonalRowsOrColumnsAreOrthonormal() {
        var g = SeededGenerator(seed: 2)
        for shape in [[20, 10], [10, 20], [3, 3, 4, 8]] {
            let q = Initializer.orthogonal().make(shape, using: &g)
            let m = q.reshaped([-1, shape.last!])
            let gram = m.shape[0] >= m.shape[1] ? Tensor.matmul(m, transposeA: true, m) : Tensor.matmul(m, m, transposeB: true)
            let eye = Tensor.oneHot(Tensor.arange(gram.shape[0]), depth: gram.shape[0])
            #expect(gram.isClose(to: eye, absolute: 1e-4), "\(shape)")
        }
    }

    @Test func regularizersAddTheirPenalty() {
        let w = Tensor([1, -2])
        #expect(Regularizer.l1().penalty(w).isClose(to: Tensor(0.03)))
        #expect(Regularizer.l2(0.5).penalty(w).isClose(to: Tensor(2.5)))
        #expect(Regularizer.l1l2(l1: 1, l2: 1).penalty(w).isClose(to: Tensor(8)))
    }
}
