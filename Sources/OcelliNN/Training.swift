import Foundation
import OcelliTensor

/// What `fit` returns: per-epoch logs (Keras' History.history).
public final class History {
    public internal(set) var history: [String: [Float]] = [:]
    public internal(set) var epochs: [Int] = []
    /// Wall-clock seconds of each epoch (training and validation).
    public internal(set) var epochSeconds: [Double] = []
    func append(_ logs: [String: Float], epoch: Int) {
        epochs.append(epoch)
        for (k, v) in logs { history[k, default: []].append(v) }
    }
}

extension Model {
    /// Sets the optimizer, loss and metrics for `fit` and `evaluate`.
    public func compile(optimizer: Optimizer, loss: Loss, metrics: [Metric] = []) {
        self.optimizer = optimizer
        self.loss = loss
        self.metrics = metrics
    }

    /// Copies rows `indices` of x ([N, ...]) into one batch tensor.
    static func batch(_ x: Tensor, _ indices: ArraySlice<Int>) -> Tensor {
        let row = x.count / Swift.max(x.shape[0], 1)
        var out = [Float](repeating: 0, count: indices.count * row)
        x.scalars.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                for (k, i) in indices.enumerated() {
                    (dst.baseAddress! + k * row).update(from: src.baseAddress! + i * row, count: row)
                }
            }
        }
        return Tensor(shape: [indices.count] + Array(x.shape.dropFirst()), scalars: out)
    }

    /// The training loss of one batch plus every parameter's regularization penalty.
    func totalLoss(_ yTrue: Tensor, _ yPred: Tensor, logits: Tensor? = nil) -> (loss: Tensor, penalty: Tensor?) {
        let l = loss!.perSample(yTrue, yPred, logits: logits).mean()
        var penalty: Tensor? = nil
        for layer in layers where layer.trainable {
            for p in layer.parameters {
                if let r = p.regularizer { penalty = penalty.map { $0 + r.penalty(p.value) } ?? r.penalty(p.value) }
            }
        }
        return (penalty.map { l + $0 } ?? l, penalty)
    }

    /// One optimizer step on a batch; returns the loss (regularization included) and predictions.
    @discardableResult
    public func trainStep(_ x: Tensor, _ y: Tensor, seed: UInt64 = 0) -> (loss: Float, predictions: Tensor) {
        guard let optimizer else { preconditionFailure("\(name): call compile(optimizer:loss:metrics:) before training") }
        // Forward and backward in their own scope: the recorded graph (which shares the
        // weights' buffers) is gone before the optimizer updates the weights in place.
        func gradients() -> (Float, Tensor) {
            var ctx = ForwardContext(training: true, seed: seed)
            let (outs, logits) = run([x], context: &ctx, logits: true)
            var (l, _) = totalLoss(y, outs[0], logits: logits[0])
            for extra in ctx.losses { l = l + extra }
            l.backward()
            return (l.scalar, outs[0].detached())
        }
        let (lossValue, pred) = gradients()
        optimizer.apply(trainableParameters)
        trainSteps += 1
        return (lossValue, pred)
    }

    /// Keras' fit: shuffled mini-batches for `epochs`, optional validation, callbacks, the
    /// progress line. `validationSplit` takes the *last* fraction of the samples (before
    /// shuffling), as Keras does.
    @discardableResult
    public func fit(x: Tensor, y: Tensor, batchSize: Int = 32, epochs: Int = 1, validationSplit: Float = 0,
                    validationData: (Tensor, Tensor)? = nil, shuffle: Bool = true, callbacks: [Callback] = [],
                    verbose: Verbosity = .auto, initialEpoch: Int = 0) -> History {
        precondition(loss != nil && optimizer != nil, "\(name): call compile(optimizer:loss:metrics:) before fit")
        precondition(x.shape.first == y.shape.first, "\(name): fit got \(x.shape.first ?? 0) samples in x and \(y.shape.first ?? 0) in y")
        precondition(batchSize > 0 && epochs >= 0, "\(name): batchSize must be positive and epochs non-negative")
        precondition(validationSplit >= 0 && validationSplit < 1, "\(name): validationSplit must lie in [0, 1)")
        var trainX = x, trainY = y
        var validation = validationData
        if validationSplit > 0 && validation == nil {
            let n = x.shape[0]
            let split = n - Int(Float(n) * validationSplit)
            trainX = x.sliced(axis: 0, 0..<split).detached(); trainY = y.sliced(axis: 0, 0..<split).detached()
            validation = (x.sliced(axis: 0, split..<n).detached(), y.sliced(axis: 0, split..<n).detached())
        }
        let n = trainX.shape[0]
        let steps = (n + batchSize - 1) / batchSize
        let history = History()
        let all = [ProgressLogger(verbose: verbose, steps: steps, epochs: epochs)] + callbacks
        for c in all { c.model = self }
        stopTraining = false
        var shuffleRNG = SeededGenerator(seed: RandomSeed.next())
        let dropoutSeed = RandomSeed.next()
        for c in all { c.onTrainBegin() }
        for epoch in initialEpoch..<epochs {
            let start = DispatchTime.now().uptimeNanoseconds
            for c in all { c.onEpochBegin(epoch) }
            var order = Array(0..<n)
            if shuffle { order.shuffle(using: &shuffleRNG) }
            var lossSum = 0.0, seen = 0
            var metricSums = [Double](repeating: 0, count: metrics.count)
            for step in 0..<steps {
                let idx = order[(step * batchSize)..<Swift.min(n, (step + 1) * batchSize)]
                let xb = Model.batch(trainX, idx), yb = Model.batch(trainY, idx)
                let (l, pred) = trainStep(xb, yb, seed: dropoutSeed &+ UInt64(trainSteps))
                lossSum += Double(l) * Double(idx.count); seen += idx.count
                for (k, m) in metrics.enumerated() { metricSums[k] += m.values(yb, pred).reduce(0.0) { $0 + Double($1) } }
                var logs: [String: Float] = ["loss": Float(lossSum / Double(seen))]
                for (k, m) in metrics.enumerated() { logs[m.name] = Float(metricSums[k] / Double(seen)) }
                for c in all { c.onBatchEnd(step, logs: logs) }
                if stopTraining { break }
            }
            var logs: [String: Float] = ["loss": Float(lossSum / Double(Swift.max(seen, 1)))]
            for (k, m) in metrics.enumerated() { logs[m.name] = Float(metricSums[k] / Double(Swift.max(seen, 1))) }
            if let (vx, vy) = validation {
                for (k, v) in evaluate(x: vx, y: vy, batchSize: batchSize, verbose: .silent) { logs["val_" + k] = v }
            }
            let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            history.epochSeconds.append(seconds)
            for c in all { c.onEpochEnd(epoch, logs: &logs) }
            history.append(logs, epoch: epoch)
            if stopTraining { break }
        }
        for c in all { c.onTrainEnd() }
        return history
    }

    /// Loss and metrics over a data set, in inference mode.
    public func evaluate(x: Tensor, y: Tensor, batchSize: Int = 32, verbose: Verbosity = .silent) -> [String: Float] {
        precondition(loss != nil, "\(name): call compile(optimizer:loss:metrics:) before evaluate")
        precondition(x.shape.first == y.shape.first, "\(name): evaluate got \(x.shape.first ?? 0) samples in x and \(y.shape.first ?? 0) in y")
        let n = x.shape[0]
        var lossSum = 0.0
        var metricSums = [Double](repeating: 0, count: metrics.count)
        let all = Array(0..<n)
        let steps = (n + batchSize - 1) / batchSize
        let progress = ProgressLogger(verbose: verbose, steps: steps, epochs: 0)
        let start = DispatchTime.now().uptimeNanoseconds
        withoutGradients {
            for step in 0..<steps {
                let idx = all[(step * batchSize)..<Swift.min(n, (step + 1) * batchSize)]
                let xb = Model.batch(x, idx), yb = Model.batch(y, idx)
                var ctx = ForwardContext(training: false)
                let (outs, logits) = run([xb], context: &ctx, logits: true)
                let pred = outs[0]
                lossSum += Double(totalLoss(yb, pred, logits: logits[0]).loss.scalar) * Double(idx.count)
                for (k, m) in metrics.enumerated() { metricSums[k] += m.values(yb, pred).reduce(0.0) { $0 + Double($1) } }
                var logs: [String: Float] = ["loss": Float(lossSum / Double(idx.endIndex))]
                for (k, m) in metrics.enumerated() { logs[m.name] = Float(metricSums[k] / Double(idx.endIndex)) }
                progress.show(step + 1, logs: logs, elapsed: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                              final: step + 1 == steps)
            }
        }
        var out: [String: Float] = ["loss": Float(lossSum / Double(Swift.max(n, 1)))]
        for (k, m) in metrics.enumerated() { out[m.name] = Float(metricSums[k] / Double(Swift.max(n, 1))) }
        return out
    }

    /// Outputs for every sample, computed in batches in inference mode.
    public func predict(x: Tensor, batchSize: Int = 32) -> Tensor {
        let n = x.shape[0]
        var parts: [Tensor] = []
        let all = Array(0..<n)
        withoutGradients {
            var start = 0
            while start < n {
                let idx = all[start..<Swift.min(n, start + batchSize)]
                var ctx = ForwardContext(training: false)
                parts.append(forward([Model.batch(x, idx)], context: &ctx)[0])
                start += batchSize
            }
        }
        return parts.isEmpty ? Tensor.zeros([0] + outputs[0].shape) : Tensor.concatenate(parts, axis: 0)
    }
}

/// Keras' verbose levels: silent (0), a progress bar (1), one line per epoch (2), or auto
/// (1 on a terminal, 2 otherwise).
public enum Verbosity: Int, Sendable {
    case silent = 0, progressBar = 1, oneLinePerEpoch = 2, auto = -1
}

/// Converts class indices [N] to one-hot rows [N, numClasses] (Keras' to_categorical).
public func toCategorical(_ labels: Tensor, numClasses: Int? = nil) -> Tensor {
    let k = numClasses ?? (Int(labels.scalars.max() ?? 0) + 1)
    return Tensor.oneHot(labels, depth: k)
}
