import OcelliTensor

/// One batch from a data source: the model's inputs and the loss's targets.
public struct Batch<Target> {
    /// One tensor per model input, [N, ...].
    public var inputs: [Tensor]
    /// What the loss compares the outputs with (a tensor for Keras' losses, boxes for a detector, …).
    public var targets: Target

    public init(inputs: [Tensor], targets: Target) { self.inputs = inputs; self.targets = targets }
    public init(_ input: Tensor, _ targets: Target) { self.init(inputs: [input], targets: targets) }

    /// Samples in the batch (the first input's leading axis).
    public var size: Int { inputs.first?.shape.first ?? 0 }
}

/// Batches for `fit`, `evaluate` and `predict` (Keras' `PyDataset`/`Sequence`): the MNIST tensors
/// (`TensorBatches`), a detection loader, or anything a user writes.
///
/// A pass is one walk over the data (`batchCount` batches); `fit` asks for the batches of
/// successive passes in order, so a source that shuffles draws a new order per pass. With
/// `stepsPerEpoch` an epoch may end inside a pass and the next epoch continues it, as Keras does.
public protocol BatchSource<Target> {
    associatedtype Target
    /// Batches in one pass (Keras' `len(dataset)`); 0 means the source is empty.
    var batchCount: Int { get }
    /// Batch `index` (0..<batchCount) of pass `pass` (0, 1, 2, …).
    func batch(_ index: Int, pass: Int) throws -> Batch<Target>
    /// Data-parallel training: rank `rank`'s rows (of `ranks`) of batch `index`, their offset in
    /// the batch and the batch's size. The default loads the batch and slices tensor targets
    /// (`DataParallel.shardRange`); a source of other targets implements it.
    func batch(_ index: Int, pass: Int, rank: Int, of ranks: Int) throws -> (batch: Batch<Target>, offset: Int, size: Int)
}

extension BatchSource {
    public func batch(_ index: Int, pass: Int, rank: Int, of ranks: Int) throws -> (batch: Batch<Target>, offset: Int, size: Int) {
        let b = try batch(index, pass: pass)
        let rows = DataParallel.shardRange(b.size, rank: rank, of: ranks)
        guard let y = b.targets as? Tensor, let target = y.sliced(axis: 0, rows).detached() as? Target else {
            throw TrainingError("data-parallel training needs each rank's rows of a batch: this source gives targets of type \(Target.self), which cannot be sliced; implement batch(_:pass:rank:of:)")
        }
        return (Batch(inputs: b.inputs.map { $0.sliced(axis: 0, rows).detached() }, targets: target), rows.lowerBound, b.size)
    }
}

/// Rows of tensors in batches: `x` [N, ...] (one tensor per model input) and `y` [N, ...], in order
/// or shuffled anew for each pass.
public final class TensorBatches: BatchSource {
    public typealias Target = Tensor
    public let inputs: [Tensor]
    public let targets: Tensor
    public let batchSize: Int
    public let shuffle: Bool
    private let seed: UInt64
    private var generator: SeededGenerator
    private var orderPass = -1
    private var order: [Int]

    /// `seed` fixes the shuffling (default: drawn from `RandomSeed`, so `RandomSeed.set` fixes it).
    public init(x: [Tensor], y: Tensor, batchSize: Int = 32, shuffle: Bool = false, seed: UInt64? = nil) throws {
        guard let n = x.first?.shape.first else { throw TrainingError("TensorBatches: needs at least one input tensor with a batch axis") }
        for (i, t) in x.enumerated() where t.shape.first != n {
            throw TrainingError("TensorBatches: input \(i) has \(t.shape.first ?? 0) samples, input 0 has \(n)")
        }
        guard y.shape.first == n else { throw TrainingError("TensorBatches: x has \(n) samples and y has \(y.shape.first ?? 0)") }
        guard batchSize > 0 else { throw TrainingError("TensorBatches: batchSize must be positive, got \(batchSize)") }
        inputs = x; targets = y; self.batchSize = batchSize; self.shuffle = shuffle
        self.seed = seed ?? RandomSeed.next()
        generator = SeededGenerator(seed: self.seed)
        order = Array(0..<n)
    }

    public convenience init(x: Tensor, y: Tensor, batchSize: Int = 32, shuffle: Bool = false, seed: UInt64? = nil) throws {
        try self.init(x: [x], y: y, batchSize: batchSize, shuffle: shuffle, seed: seed)
    }

    public var count: Int { targets.shape[0] }
    public var batchCount: Int { (count + batchSize - 1) / batchSize }

    public func batch(_ index: Int, pass: Int) throws -> Batch<Tensor> {
        let rows = try rowsOf(index, pass: pass)
        return Batch(inputs: inputs.map { Model.batch($0, rows) }, targets: Model.batch(targets, rows))
    }

    /// Only this rank's rows are copied.
    public func batch(_ index: Int, pass: Int, rank: Int, of ranks: Int) throws -> (batch: Batch<Tensor>, offset: Int, size: Int) {
        let all = try rowsOf(index, pass: pass)
        let part = DataParallel.shardRange(all.count, rank: rank, of: ranks)
        let rows = all[(all.startIndex + part.lowerBound)..<(all.startIndex + part.upperBound)]
        return (Batch(inputs: inputs.map { Model.batch($0, rows) }, targets: Model.batch(targets, rows)), part.lowerBound, all.count)
    }

    private func rowsOf(_ index: Int, pass: Int) throws -> ArraySlice<Int> {
        guard index >= 0 && index < batchCount else { throw TrainingError("TensorBatches: batch \(index) of \(batchCount)") }
        if shuffle && pass != orderPass {
            // Each pass shuffles a fresh 0..<n with the one generator, so pass k's order does not
            // depend on how its batches were asked for; going back replays from the seed.
            if pass < orderPass { generator = SeededGenerator(seed: seed); orderPass = -1 }
            while orderPass < pass {
                order = Array(0..<count)
                order.shuffle(using: &generator)
                orderPass += 1
            }
        }
        return order[(index * batchSize)..<Swift.min(count, (index + 1) * batchSize)]
    }
}

/// A training or evaluation call that cannot run: uncompiled model, mismatched data, a loss
/// that does not take the data's targets. The message says what to do.
public struct TrainingError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
