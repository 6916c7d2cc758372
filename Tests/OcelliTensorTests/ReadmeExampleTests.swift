import Testing
import OcelliTensor

/// The README's first example, verbatim in substance: it must compile and its gradients exist.
@Suite struct ReadmeExampleTests {
    @Test func firstLook() {
        let x = Tensor.normal([8, 28, 28, 1], seed: 1)
        let w = Tensor.truncatedNormal([3, 3, 1, 32], standardDeviation: 0.1, seed: 2).requiringGrad()
        let b = Tensor.zeros([32]).requiringGrad()

        let h = Tensor.conv2d(x, filter: w, bias: b, padding: .same).relu()
        let p = Tensor.maxPool2d(h, poolSize: (2, 2))
        let logits = matmul(p.reshaped([8, -1]), Tensor.normal([14 * 14 * 32, 10], standardDeviation: 0.01, seed: 3))
        let loss = Tensor.softmaxCrossEntropy(logits: logits, classIndices: Tensor([0, 1, 2, 3, 4, 5, 6, 7])).mean()

        loss.backward()
        #expect(w.grad?.shape == [3, 3, 1, 32])
        #expect(b.grad?.shape == [32])
        #expect(loss.scalar > 0 && loss.scalar.isFinite)
        let y = withoutGradients { Tensor.conv2d(x, filter: w, padding: .same) }
        #expect(!y.requiresGrad)
    }

    /// Plain gradient descent on a tiny problem actually learns: the loss falls by 10x.
    @Test func gradientDescentLearnsXor() {
        let x = Tensor([[0, 0], [0, 1], [1, 0], [1, 1]])
        let labels = Tensor([0, 1, 1, 0])
        var w1 = Tensor.normal([2, 16], standardDeviation: 1, seed: 1).requiringGrad()
        var b1 = Tensor.zeros([16]).requiringGrad()
        var w2 = Tensor.normal([16, 2], standardDeviation: 1, seed: 2).requiringGrad()
        var b2 = Tensor.zeros([2]).requiringGrad()
        func loss() -> Tensor {
            let h = (matmul(x, w1) + b1).tanh()
            return Tensor.softmaxCrossEntropy(logits: matmul(h, w2) + b2, classIndices: labels).mean()
        }
        let first = loss().scalar
        for _ in 0..<300 {
            let l = loss()
            l.backward()
            w1.assign(withoutGradients { w1 - 0.5 * w1.grad! }); w1.zeroGrad()
            b1.assign(withoutGradients { b1 - 0.5 * b1.grad! }); b1.zeroGrad()
            w2.assign(withoutGradients { w2 - 0.5 * w2.grad! }); w2.zeroGrad()
            b2.assign(withoutGradients { b2 - 0.5 * b2.grad! }); b2.zeroGrad()
        }
        #expect(loss().scalar < first / 10)
    }
}
