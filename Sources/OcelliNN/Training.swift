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
    /// Sets the optimizer, loss and metrics for `fit` and `evaluate`. The loss may be one of
    /// Keras' (`.categoricalCrossentropy()`, …) or any `Loss`, whatever its targets.
    public func compile(optimizer: some Optimizer, loss: some Loss, metrics: [Metric] = []) {
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

    /// The compiled loss, checked to take `T` targets; the error says to compile or what the loss takes.
    func compiledLoss<T>(for _: T.Type, _ call: String) throws -> any Loss {
        guard let loss else { throw TrainingError("\(name): call compile(optimizer:loss:metrics:) before \(call)") }
        func check<L: Loss>(_ l: L) throws {
            guard T.self is L.Target.Type else {
                throw TrainingError("\(name): the loss '\(l.name)' takes targets of type \(L.Target.self), the data gives \(T.self)")
            }
        }
        try check(loss)
        if !metrics.isEmpty && !(T.self is Tensor.Type) {
            throw TrainingError("\(name): metrics (\(metrics.map(\.name).joined(separator: ", "))) compare tensors, the data gives targets of type \(T.self); compile without metrics")
        }
        return loss
    }

    /// The batch's loss (a scalar on the tape) plus every parameter's regularization penalty.
    func totalLoss<T>(_ target: T, _ outputs: ModelOutputs) throws -> Tensor {
        func value<L: Loss>(_ l: L) throws -> Tensor {
            guard let t = target as? L.Target else {
                throw TrainingError("\(name): the loss '\(l.name)' takes targets of type \(L.Target.self), the data gives \(T.self)")
            }
            return try l.batchLoss(target: t, outputs: outputs)
        }
        guard let loss else { throw TrainingError("\(name): call compile(optimizer:loss:metrics:) first") }
        let l = try value(loss)
        var penalty: Tensor? = nil
        for layer in layers where layer.trainable {
            for p in layer.parameters {
                if let r = p.regularizer { penalty = penalty.map { $0 + r.penalty(p.value) } ?? r.penalty(p.value) }
            }
        }
        return penalty.map { l + $0 } ?? l
    }

    /// One optimizer step on a batch; returns the loss (regularization included) and the outputs.
    @discardableResult
    public func trainStep<T>(_ batch: Batch<T>, seed: UInt64 = 0) throws -> (loss: Float, outputs: [Tensor]) {
        let result = try accumulateGradients(batch, seed: seed)
        try applyGradients()
        return result
    }

    /// Forward and backward on a batch in training mode without updating the weights: the
    /// gradients add to those accumulated since the last update, so several passes make one
    /// larger batch (Darknet's `subdivisions`); `scale` multiplies the loss (1/passes for their
    /// mean). Returns the unscaled loss (regularization included) and the outputs.
    ///
    /// `anySpatialSize` accepts images of another height and width than the model's input (a fully
    /// convolutional network trained at several sizes, as Darknet's `random=1`).
    ///
    /// Data-parallel (`dataParallel` set): `shard` says which rows of a larger batch this one is
    /// (random masks are drawn as for that batch), and `lastPass` marks this rank's last pass
    /// before `applyGradients`: its gradients start being summed over the ranks while its backward
    /// runs.
    @discardableResult
    public func accumulateGradients<T>(_ batch: Batch<T>, scale: Float = 1, seed: UInt64 = 0,
                                       anySpatialSize: Bool = false, shard: (offset: Int, batch: Int)? = nil,
                                       lastPass: Bool = false) throws -> (loss: Float, outputs: [Tensor]) {
        guard optimizer != nil else { throw TrainingError("\(name): call compile(optimizer:loss:metrics:) before training") }
        // Forward and backward in their own scope: the recorded graph (which shares the
        // weights' buffers) is gone before the optimizer updates the weights in place.
        var ctx = ForwardContext(training: true, seed: seed)
        if dataParallel != nil {
            ctx.shard = shard
            ctx.movingStatistics = movingStatisticsLog
            movingStatisticsLog?.beginPass()
        }
        let (outs, logits) = run(batch.inputs, context: &ctx, logits: true, anySpatialSize: anySpatialSize)
        var l = try totalLoss(batch.targets, ModelOutputs(outputs: outs, logits: logits, training: true))
        for extra in ctx.losses { l = l + extra }
        let hook = lastPass ? dataParallel?.beginReduction(self) : nil
        (scale == 1 ? l : l * scale).backward(onLeafGradient: hook)
        return (l.scalar, outs.map { $0.detached() })
    }

    /// One optimizer update with the gradients accumulated by `accumulateGradients` (cleared after).
    /// Data-parallel: the gradients are first summed over the ranks and the moving statistics
    /// replayed, so every rank makes the same update.
    public func applyGradients() throws {
        guard let optimizer else { throw TrainingError("\(name): call compile(optimizer:loss:metrics:) before training") }
        if let dp = dataParallel {
            try dp.finishReduction(self)
            if let log = movingStatisticsLog { try dp.replayMovingStatistics(log, model: self) }
        }
        optimizer.apply(trainableParameters)
        trainSteps += 1
    }

    /// One optimizer step on a batch of tensors; returns the loss and the predictions.
    @discardableResult
    public func trainStep(_ x: Tensor, _ y: Tensor, seed: UInt64 = 0) throws -> (loss: Float, predictions: Tensor) {
        let (l, outs) = try trainStep(Batch(x, y), seed: seed)
        return (l, outs[0])
    }

    /// Keras' fit over a data source: `epochs` of `stepsPerEpoch` batches (default: one pass;
    /// with fewer steps than a pass, the next epoch continues where the last stopped, as Keras),
    /// validation after each epoch, callbacks, the progress line.
    ///
    /// Continuing an interrupted run: `initialEpoch` (and `initialStep`, the batches of that
    /// epoch already trained) start where it stopped, on the batches it would have had next; a
    /// model saved and loaded with its optimizer (`save(to:)`, `load(from:)`) then trains on as
    /// if never interrupted.
    @discardableResult
    public func fit<S: BatchSource>(_ data: S, epochs: Int = 1, stepsPerEpoch: Int? = nil,
                                    validationData: (any BatchSource<S.Target>)? = nil, validationSteps: Int? = nil,
                                    callbacks: [Callback] = [], verbose: Verbosity = .auto, initialEpoch: Int = 0,
                                    initialStep: Int = 0) throws -> History {
        _ = try compiledLoss(for: S.Target.self, "fit")
        guard epochs >= 0, initialEpoch >= 0 else { throw TrainingError("\(name): epochs (\(epochs)) and initialEpoch (\(initialEpoch)) must not be negative") }
        let passLength = data.batchCount
        guard passLength > 0 else { throw TrainingError("\(name): the training data is empty (0 batches): nothing to train on") }
        if let s = stepsPerEpoch, s <= 0 { throw TrainingError("\(name): stepsPerEpoch must be positive, got \(s)") }
        let steps = stepsPerEpoch ?? passLength
        guard (0..<steps).contains(initialStep) else { throw TrainingError("\(name): initialStep must be in 0..<\(steps) (the steps of an epoch), got \(initialStep)") }
        let (start, overflow) = initialEpoch.multipliedReportingOverflow(by: steps)
        guard !overflow, start <= Int.max - initialStep else { throw TrainingError("\(name): initialEpoch \(initialEpoch) is too large") }
        let history = History()
        let dp = dataParallel
        if let dp { try dp.broadcastParameters(self) }  // every rank starts from rank 0's weights
        // Only rank 0 prints (callbacks that write files belong on rank 0 only).
        let all = [ProgressLogger(verbose: dp?.isPrimary ?? true ? verbose : .silent, steps: steps, epochs: epochs)] + callbacks
        for c in all { c.model = self }
        stopTraining = false
        let dropoutSeed = RandomSeed.next()
        var position = start + initialStep  // the batches an uninterrupted run would be at
        for c in all { c.onTrainBegin() }
        for epoch in initialEpoch..<Swift.max(epochs, initialEpoch) {
            let start = DispatchTime.now().uptimeNanoseconds
            for c in all { c.onEpochBegin(epoch) }
            var lossSum = 0.0, seen = 0
            var metricSums = [Double](repeating: 0, count: metrics.count)
            for step in (epoch == initialEpoch ? initialStep : 0)..<steps {
                let stepSeed = dropoutSeed &+ UInt64(trainSteps)
                if let dp {
                    // This rank's rows of the global batch; its mean loss weighted by its share,
                    // so the sum over the ranks is the mean over the whole batch.
                    let (batch, offset, total) = try data.batch(position % passLength, pass: position / passLength, rank: dp.rank, of: dp.size)
                    position += 1
                    var sums = [Double](repeating: 0, count: 2 + metrics.count)
                    if batch.size > 0 {
                        let (l, outputs) = try accumulateGradients(batch, scale: Float(batch.size) / Float(Swift.max(total, 1)), seed: stepSeed,
                                                                   shard: (offset, total), lastPass: true)
                        sums[0] = Double(l) * Double(batch.size); sums[1] = Double(batch.size)
                        if let y = batch.targets as? Tensor {
                            for (k, m) in metrics.enumerated() { sums[2 + k] = m.values(y, outputs[0]).reduce(0.0) { $0 + Double($1) } }
                        }
                    }
                    try applyGradients()
                    sums = try dp.sum(sums)
                    lossSum += sums[0]; seen += Int(sums[1])
                    for k in metrics.indices { metricSums[k] += sums[2 + k] }
                } else {
                    let batch = try data.batch(position % passLength, pass: position / passLength)
                    position += 1
                    let (l, outputs) = try trainStep(batch, seed: stepSeed)
                    lossSum += Double(l) * Double(batch.size); seen += batch.size
                    if let y = batch.targets as? Tensor {
                        for (k, m) in metrics.enumerated() { metricSums[k] += m.values(y, outputs[0]).reduce(0.0) { $0 + Double($1) } }
                    }
                }
                var logs: [String: Float] = ["loss": Float(lossSum / Double(seen))]
                for (k, m) in metrics.enumerated() { logs[m.name] = Float(metricSums[k] / Double(seen)) }
                for c in all { c.onBatchEnd(step, logs: logs) }
                // The ranks stop together: when any of them was asked to (Ctrl-C on one).
                if let dp { stopTraining = try dp.sum([stopTraining ? 1 : 0])[0] > 0 }
                if stopTraining { break }
            }
            var logs: [String: Float] = ["loss": Float(lossSum / Double(Swift.max(seen, 1)))]
            for (k, m) in metrics.enumerated() { logs[m.name] = Float(metricSums[k] / Double(Swift.max(seen, 1))) }
            if let validationData {
                for (k, v) in try evaluate(validationData, steps: validationSteps, verbose: .silent) { logs["val_" + k] = v }
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

    /// Keras' fit on tensors: shuffled mini-batches for `epochs`, optional validation, callbacks,
    /// the progress line. `validationSplit` takes the *last* fraction of the samples (before
    /// shuffling), as Keras does.
    @discardableResult
    public func fit(x: Tensor, y: Tensor, batchSize: Int = 32, epochs: Int = 1, validationSplit: Float = 0,
                    validationData: (Tensor, Tensor)? = nil, shuffle: Bool = true, callbacks: [Callback] = [],
                    verbose: Verbosity = .auto, initialEpoch: Int = 0) throws -> History {
        guard validationSplit >= 0 && validationSplit < 1 else {
            throw TrainingError("\(name): validationSplit must lie in [0, 1), got \(validationSplit)")
        }
        guard x.shape.first == y.shape.first else {
            throw TrainingError("\(name): fit got \(x.shape.first ?? 0) samples in x and \(y.shape.first ?? 0) in y")
        }
        var trainX = x, trainY = y
        var validation = validationData
        if validationSplit > 0 && validation == nil {
            let n = x.shape[0]
            let split = n - Int(Float(n) * validationSplit)
            trainX = x.sliced(axis: 0, 0..<split).detached(); trainY = y.sliced(axis: 0, 0..<split).detached()
            validation = (x.sliced(axis: 0, split..<n).detached(), y.sliced(axis: 0, split..<n).detached())
        }
        let validationBatches = try validation.map { try TensorBatches(x: $0.0, y: $0.1, batchSize: batchSize, seed: 0) }
        return try fit(TensorBatches(x: trainX, y: trainY, batchSize: batchSize, shuffle: shuffle), epochs: epochs,
                       validationData: validationBatches, callbacks: callbacks, verbose: verbose, initialEpoch: initialEpoch)
    }

    /// Loss and metrics over a data source (`steps` batches, default one pass), in inference mode.
    public func evaluate<S: BatchSource>(_ data: S, steps: Int? = nil, verbose: Verbosity = .silent) throws -> [String: Float] {
        _ = try compiledLoss(for: S.Target.self, "evaluate")
        if let s = steps, s < 0 { throw TrainingError("\(name): evaluate steps must not be negative, got \(s)") }
        let passLength = data.batchCount
        let steps = passLength == 0 ? 0 : steps ?? passLength
        var lossSum = 0.0, seen = 0
        var metricSums = [Double](repeating: 0, count: metrics.count)
        let progress = ProgressLogger(verbose: verbose, steps: steps, epochs: 0)
        let start = DispatchTime.now().uptimeNanoseconds
        try withoutGradients {
            for step in 0..<steps {
                let batch = try data.batch(step % passLength, pass: step / passLength)
                var ctx = ForwardContext(training: false)
                let (outs, logits) = run(batch.inputs, context: &ctx, logits: true)
                lossSum += Double(try totalLoss(batch.targets, ModelOutputs(outputs: outs, logits: logits)).scalar) * Double(batch.size)
                seen += batch.size
                if let y = batch.targets as? Tensor {
                    for (k, m) in metrics.enumerated() { metricSums[k] += m.values(y, outs[0]).reduce(0.0) { $0 + Double($1) } }
                }
                var logs: [String: Float] = ["loss": Float(lossSum / Double(seen))]
                for (k, m) in metrics.enumerated() { logs[m.name] = Float(metricSums[k] / Double(seen)) }
                progress.show(step + 1, logs: logs, elapsed: Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9,
                              final: step + 1 == steps)
            }
        }
        var out: [String: Float] = ["loss": Float(lossSum / Double(Swift.max(seen, 1)))]
        for (k, m) in metrics.enumerated() { out[m.name] = Float(metricSums[k] / Double(Swift.max(seen, 1))) }
        return out
    }

    /// Loss and metrics over tensors, in inference mode.
    public func evaluate(x: Tensor, y: Tensor, batchSize: Int = 32, verbose: Verbosity = .silent) throws -> [String: Float] {
        try evaluate(TensorBatches(x: x, y: y, batchSize: batchSize, seed: 0), verbose: verbose)
    }

    /// The first output for every sample of a data source (`steps` batches, default one pass), in
    /// inference mode; the targets are not read.
    public func predict<S: BatchSource>(_ data: S, steps: Int? = nil) throws -> Tensor {
        let passLength = data.batchCount
        let steps = passLength == 0 ? 0 : steps ?? passLength
        var parts: [Tensor] = []
        try withoutGradients {
            for step in 0..<steps {
                let batch = try data.batch(step % passLength, pass: step / passLength)
                var ctx = ForwardContext(training: false)
                parts.append(forward(batch.inputs, context: &ctx)[0])
            }
        }
        return parts.isEmpty ? Tensor.zeros([0] + outputs[0].shape) : Tensor.concatenate(parts, axis: 0)
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
