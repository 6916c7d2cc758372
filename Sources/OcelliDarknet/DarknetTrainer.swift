import Foundation
import OcelliDetection
import OcelliNN
import OcelliTensor
import OcelliVision

/// Darknet's training loop (`train_detector`) on Ocelli's pieces: the cfg's network with
/// Darknet's loss (`YoloLoss`), optimizer (`DarknetSGD`) and learning-rate policy, `batch` images
/// per iteration in `subdivisions` passes, the cfg's augmentation and multi-scale sizes through the
/// `DetectionLoader`, and validation mAP@0.5 through the evaluation module.
///
/// ```swift
/// let trainer = try DarknetTrainer(network: net, train: trainSet, seed: 1)
/// while trainer.iteration < trainer.maxBatches {
///     let r = try trainer.step()
///     print(r.darknetLine)          // "1: 812.3, 812.3 avg, 0.000000 rate, 1.2 seconds, 64 images"
/// }
/// ```
public final class DarknetTrainer {
    public let network: DarknetNetwork
    public let options: DarknetTrainingOptions
    public let loss: YoloLoss
    public let optimizer: DarknetSGD
    public let loader: DetectionLoader
    /// The iteration Darknet would print next minus one: images seen / batch.
    public var iteration: Int { Int(network.seen / UInt64(options.batch)) }
    /// `max_batches` of the cfg, or the override given at init.
    public let maxBatches: Int
    /// The Darknet layers before this index are frozen.
    public let frozenLayers: Int
    /// Data-parallel: the subdivisions were raised to a multiple of the ranks (from, to).
    public private(set) var subdivisionsRaised: (from: Int, to: Int)?
    /// Darknet's running average of the loss (0.9 / 0.1), nil before the first iteration.
    public private(set) var averageLoss: Float?
    private var pass = 0
    private var cursor = 0
    private let seed: UInt64
    /// Loads the batches ahead of the step, in order, on a thread of its own.
    private var prefetcher: BatchPrefetcher?

    deinit { prefetcher?.stop() }

    /// One iteration's numbers, as Darknet prints them.
    public struct Iteration: Sendable {
        public var iteration: Int
        /// Darknet's loss of the iteration: Σ delta² over its images, per image.
        public var loss: Float
        public var averageLoss: Float
        public var learningRate: Float
        public var seconds: Double
        /// Images trained on so far.
        public var images: Int
        public var statistics: [YoloLossStatistics]
        public var inputSize: Int
        /// Some rank asked to stop after this iteration (data-parallel; else this process).
        public var stopRequested = false

        /// `N: loss, avg loss avg, rate rate, s seconds, images images` (Darknet's line).
        public var darknetLine: String {
            String(format: "%d: %f, %f avg, %f rate, %lf seconds, %d images", iteration, loss, averageLoss, learningRate, seconds, images)
        }
    }

    /// - Parameters:
    ///   - batch, subdivisions, maxBatches: override the cfg's `[net]` values.
    ///   - augment: the cfg's jitter, flip and hue/saturation/exposure (Darknet always augments).
    /// - freeze: the Darknet layers before this index are not trained (weights, biases and batch
    ///   norm untouched: Keras' `trainable = false`); a cfg's `stopbackward=1` freezes its layer
    ///   and every one before it.
    public init(network: DarknetNetwork, train: DetectionDataset, seed: UInt64 = 1, batch: Int? = nil, subdivisions: Int? = nil,
                maxBatches: Int? = nil, augment: Bool = true, workers: Int = 1, freeze: Int? = nil) throws {
        var options = try network.trainingOptions()
        if let batch { options.batch = batch }
        if let subdivisions { options.subdivisions = subdivisions }
        // Data-parallel, the ranks share each iteration's passes: their count becomes a multiple
        // of the ranks (each rank's pass then has batch/subdivisions images and its own batch-norm
        // statistics, as DDP's ranks do).
        if let dp = network.model.dataParallel, options.subdivisions % dp.size != 0 {
            var (a, b) = (options.subdivisions, dp.size)
            while b != 0 { (a, b) = (b, a % b) }
            let raised = options.subdivisions / a * dp.size
            guard options.batch % raised == 0 else {
                throw DarknetError(file: network.config.file,
                                   "batch \(options.batch) cannot be shared by \(dp.size) processes in \(raised) passes of equal size: use a batch that is a multiple of \(raised) (--batch), or --subdivisions a multiple of \(dp.size) that divides the batch")
            }
            subdivisionsRaised = (options.subdivisions, raised)
            options.subdivisions = raised
        }
        guard options.batch >= 1, options.subdivisions >= 1, options.batch % options.subdivisions == 0 else {
            throw DarknetError(file: network.config.file, "batch \(options.batch) must be a positive multiple of subdivisions \(options.subdivisions)")
        }
        let total = maxBatches ?? options.maxBatches
        guard total >= 1 else {
            throw DarknetError(file: network.config.file, "[net] max_batches is 0: give the number of iterations to train (max_batches= or --max-batches)")
        }
        guard !train.images.isEmpty else { throw DarknetError(file: network.config.file, "the training set has no images") }
        guard let classes = network.heads.first?.classes, classes == train.classNames.count else {
            throw DarknetError(file: network.config.file,
                               "the cfg's heads predict \(network.heads.first?.classes ?? 0) classes, the data set has \(train.classNames.count)")
        }
        guard network.width == network.height else {
            throw DarknetError(file: network.config.file, "training needs a square input, the cfg has \(network.width)x\(network.height)")
        }
        let stop = network.config.layers.indices.last { (try? network.config.layers[$0].int("stopbackward", 0)) ?? 0 != 0 }
        let frozen = max(freeze ?? 0, stop.map { $0 + 1 } ?? 0)
        guard frozen < network.layers.count else {
            throw DarknetError(file: network.config.file, "freezing \(frozen) layers leaves none of the \(network.layers.count) to train")
        }
        for info in network.layers { info.layer?.trainable = info.index >= frozen }
        self.frozenLayers = frozen
        self.network = network
        self.options = options
        self.maxBatches = total
        self.seed = seed
        loss = try network.yoloLoss()
        loss.seen = Int(clamping: network.seen)
        var schedule = options.learningRate
        schedule.firstBatch = Int(network.seen / UInt64(options.batch))
        optimizer = DarknetSGD(momentum: options.momentum, decay: options.decay)
        optimizer.withSchedule(schedule)
        network.model.compile(optimizer: optimizer, loss: loss)
        let size = network.width
        var transform: DetectionLoader.Transform?
        if augment {
            let jitter = Augment.DarknetJitter(width: size, height: size, jitter: Double(min(options.jitter, 0.49)), mode: .place,
                                               flip: options.flip)
            let hsv = Augment.DarknetHSV(hue: Double(options.hue), saturation: Double(options.saturation), exposure: Double(options.exposure))
            transform = Augment.Sequential([jitter, hsv]).transform
        }
        let lo = max(32, (size * 2 / 3) / 32 * 32), hi = max(lo, (size * 4 / 3) / 32 * 32)
        loader = DetectionLoader(dataset: train, batchSize: options.miniBatch, inputSize: size, seed: seed, dropLast: true,
                                 multiScale: options.multiScale && lo < hi ? .init(every: 10 * options.subdivisions, sizes: lo...hi) : nil,
                                 prefetch: 2, skipBadSamples: true, workers: workers, transform: transform)
        guard loader.batchesPerEpoch >= 1 else {
            throw DarknetError(file: network.config.file, "the training set has \(train.images.count) images, fewer than one pass of \(options.miniBatch)")
        }
    }

    /// The next mini-batch, going on to the next pass at the end of one. A batch whose images
    /// all fail to load is skipped with a warning (the loader warns for each image); a whole pass
    /// of them is an error.
    private func nextBatch() throws -> DetectionBatch {
        for _ in 0..<loader.batchesPerEpoch {
            if cursor >= loader.batchesPerEpoch { cursor = 0; pass += 1 }
            let queue: BatchPrefetcher
            if let p = prefetcher, p.next == (pass, cursor) { queue = p } else {
                prefetcher?.stop()
                queue = BatchPrefetcher(loader: loader, pass: pass, cursor: cursor)
                prefetcher = queue
            }
            let position = (pass, cursor)
            cursor += 1
            if let b = try queue.take() { return b }
            loader.warningHandler("every image of batch \(position.1) of pass \(position.0) failed to load: batch skipped")
        }
        throw DarknetError(file: network.config.file, "no image of a whole pass over the training set could be loaded (see the warnings)")
    }

    /// One Darknet iteration: `batch` images in `subdivisions` passes, one update.
    ///
    /// Data-parallel (`network.model.dataParallel` set): rank r of N runs passes r, r + N, … of
    /// the iteration (each its own mini-batch of the data, as one process would load it), the
    /// gradients are summed over the ranks and every rank makes the same update. `stopRequested`
    /// is this rank's wish to stop (Ctrl-C); `Iteration.stopRequested` says whether any rank had
    /// it, so that all stop after the same iteration.
    @discardableResult
    public func step(stopRequested: Bool = false) throws -> Iteration {
        if let dp = network.model.dataParallel { return try parallelStep(dp, stopRequested: stopRequested) }
        var r = try serialStep()
        r.stopRequested = stopRequested
        return r
    }

    private func serialStep() throws -> Iteration {
        let start = Date()
        var cost: Float = 0, images = 0, size = network.width
        var statistics: [YoloLossStatistics] = []
        for _ in 0..<options.subdivisions {
            let b = try nextBatch()
            size = b.width
            // random=1: the batch may come at another multiple of 32 than the cfg's size.
            try network.model.accumulateGradients(Batch(inputs: [b.images], targets: b), scale: 1 / Float(options.subdivisions),
                                                  seed: seed &+ UInt64(network.seen), anySpatialSize: true)
            network.seen += UInt64(b.count)
            images += b.count
            statistics = loss.lastStatistics
            cost += statistics.reduce(0) { $0 + $1.darknetCost }
        }
        let rate = optimizer.learningRate
        try network.model.applyGradients()
        let perImage = cost / Float(max(1, images))
        averageLoss = averageLoss.map { $0 * 0.9 + perImage * 0.1 } ?? perImage
        return Iteration(iteration: iteration, loss: perImage, averageLoss: averageLoss!, learningRate: rate,
                         seconds: Date().timeIntervalSince(start), images: Int(clamping: network.seen), statistics: statistics,
                         inputSize: size)
    }

    /// One iteration on a data-parallel rank (see `step`).
    private func parallelStep(_ dp: DataParallel, stopRequested: Bool) throws -> Iteration {
        let start = Date()
        let passes = options.subdivisions, mini = options.miniBatch
        let seenBefore = network.seen
        let bpe = loader.batchesPerEpoch
        // The iteration's first mini-batch, counted over passes through the data.
        let first = (pass + cursor / bpe) * bpe + cursor % bpe
        var cost: Float = 0, images = 0, size = network.width
        var statistics: [YoloLossStatistics] = []
        let mine = Array(stride(from: dp.rank, to: passes, by: dp.size))
        for (k, j) in mine.enumerated() {
            let flat = first + j
            let queue: BatchPrefetcher
            if let p = prefetcher, p.next == (flat / bpe, flat % bpe) { queue = p } else {
                prefetcher?.stop()
                queue = BatchPrefetcher(loader: loader, pass: flat / bpe, cursor: flat % bpe, stride: dp.size)
                prefetcher = queue
            }
            let seenAt = seenBefore &+ UInt64(j * mini)  // as one process, when every image loads
            loss.seen = Int(clamping: seenAt)
            guard let b = try queue.take() else {
                loader.warningHandler("every image of batch \(flat % bpe) of pass \(flat / bpe) failed to load: this rank's pass is skipped")
                continue
            }
            size = b.width
            try network.model.accumulateGradients(Batch(inputs: [b.images], targets: b), scale: 1 / Float(passes),
                                                  seed: seed &+ seenAt, anySpatialSize: true, lastPass: k == mine.count - 1)
            images += b.count
            statistics = loss.lastStatistics
            cost += statistics.reduce(0) { $0 + $1.darknetCost }
        }
        let rate = optimizer.learningRate
        try network.model.applyGradients()
        let sums = try dp.sum([Double(cost), Double(images), stopRequested ? 1 : 0])
        network.seen = seenBefore &+ UInt64(sums[1])
        loss.seen = Int(clamping: network.seen)
        let next = first + passes
        pass = next / bpe; cursor = next % bpe
        let perImage = Float(sums[0]) / Float(Swift.max(1, sums[1]))
        averageLoss = averageLoss.map { $0 * 0.9 + perImage * 0.1 } ?? perImage
        return Iteration(iteration: iteration, loss: perImage, averageLoss: averageLoss!, learningRate: rate,
                         seconds: Date().timeIntervalSince(start), images: Int(clamping: network.seen), statistics: statistics,
                         inputSize: size, stopRequested: sums[2] > 0)
    }

    /// mAP@0.5 (VOC all-point) of the network on `images` (Darknet's `validate_detector_map`
    /// thresholds: detections above 0.005, NMS 0.45), letterboxed.
    public func validationMAP50(_ dataset: DetectionDataset, batch: Int = 4) throws -> Double {
        try network.validationMAP50(dataset, batch: batch)
    }

    /// Writes the weights as Darknet `.weights` (with `seen`), atomically.
    public func saveWeights(_ path: String) throws {
        try network.saveWeights(path, header: DarknetWeightsHeader(major: 0, minor: 2, revision: 0, seen: network.seen))
    }

    /// Writes everything needed to continue exactly (`resume(state:)`) in one file, atomically:
    /// the weights, the optimizer's momentum, the position in the data (pass and batch), `seen`
    /// and the average loss, as safetensors with metadata. Being one file, it is one unit: a
    /// process killed while a checkpoint's files are written resumes from the old state or the
    /// new one, whichever `.weights` file the kill left beside it.
    public func saveState(_ path: String) throws {
        let metadata = ["pass": String(pass), "cursor": String(cursor), "seen": String(network.seen),
                        "average_loss": averageLoss.map { String($0.bitPattern) } ?? "", "seed": String(seed),
                        "contains_weights": "1"]
        let tensors = network.model.optimizerState() + network.model.namedWeights().map { (Self.weightsPrefix + $0.0, $0.1) }
        try writeAtomically(SafeTensors.encode(tensors, metadata: metadata), to: path)
    }

    /// Where the state file keeps the weights' tensors.
    static let weightsPrefix = "weights/"

    /// Continues from `saveState`'s file, written with the weights this network loaded: the same
    /// batches, momentum and schedule follow as in a run that was never interrupted.
    public func resume(state path: String) throws {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: path)) } catch {
            throw DarknetError(file: path, "cannot read the training state: \(error.reason)")
        }
        var (tensors, metadata) = try SafeTensors.decodeWithMetadata(data, path: path)
        func int(_ key: String) throws -> Int {
            guard let v = metadata[key].flatMap({ Int($0) }), v >= 0 else { throw DarknetError(file: path, "the state's '\(key)' is missing or not a count") }
            return v
        }
        guard let savedSeen = metadata["seen"].flatMap(UInt64.init) else {
            throw DarknetError(file: path, "the state's 'seen' is missing or not a count")
        }
        guard metadata["seed"] == String(seed) else {
            throw DarknetError(file: path, "the state was written with --seed \(metadata["seed"] ?? "?"), this run has \(seed)")
        }
        let savedPass = try int("pass"), savedCursor = try int("cursor")
        guard savedCursor <= loader.batchesPerEpoch, savedPass <= 1_000_000_000 else {  // equal: the pass ended, the next starts at the next batch
            throw DarknetError(file: path, "the state's position (pass \(savedPass), batch \(savedCursor)) is outside this data set's \(loader.batchesPerEpoch) batches per pass: the state of another data set?")
        }
        let weights = tensors.filter { $0.key.hasPrefix(Self.weightsPrefix) }
        if metadata["contains_weights"] == "1" {
            // The state's own weights: the .weights file beside it may be one checkpoint older
            // (a run killed between the two writes).
            for k in weights.keys { tensors[k] = nil }
            try network.model.assignWeights(Dictionary(uniqueKeysWithValues: weights.map { (String($0.key.dropFirst(Self.weightsPrefix.count)), $0.value) }),
                                            path: path)
            network.seen = savedSeen
            // The schedule and the loss's warm-up continue from the state's moment.
            loss.seen = Int(clamping: savedSeen)
            var schedule = options.learningRate
            schedule.firstBatch = Int(savedSeen / UInt64(options.batch))
            optimizer.withSchedule(schedule)
        } else if savedSeen != network.seen {
            throw DarknetError(file: path, "the state was written at seen \(savedSeen), the weights loaded are at seen \(network.seen): use the weights saved with it")
        }
        pass = savedPass; cursor = savedCursor
        averageLoss = metadata["average_loss"].flatMap { UInt32($0) }.map { Float(bitPattern: $0) }
        try network.model.restoreOptimizerState(tensors, path: path)
    }
}

/// Loads a loader's batches in order — pass by pass from a starting (pass, batch) — on a thread
/// of its own, a few ahead of the consumer, so that a training step never waits for decoding and
/// augmentation. Each batch depends only on its position and the loader's seed, so prefetching
/// changes nothing in what is trained on.
final class BatchPrefetcher: @unchecked Sendable {
    private let loader: DetectionLoader
    private let depth: Int
    private let condition = NSCondition()
    private var ready: [Int: Result<DetectionBatch?, Error>] = [:]
    private var taken = 0, produced = 0
    private var stopped = false
    private let start: (pass: Int, cursor: Int)
    /// Every `stride`-th batch (a data-parallel rank's share).
    private let stride: Int

    init(loader: DetectionLoader, pass: Int, cursor: Int, depth: Int = 2, stride: Int = 1) {
        self.loader = loader; self.depth = Swift.max(1, depth); start = (pass, cursor); self.stride = Swift.max(1, stride)
        let thread = Thread { [self] in produce() }
        thread.name = "ocelli.trainer.prefetch"
        thread.start()
    }

    /// The (pass, batch) that `take` returns next.
    var next: (Int, Int) {
        condition.lock(); defer { condition.unlock() }
        return position(taken)
    }

    private func position(_ k: Int) -> (Int, Int) {
        let flat = start.cursor + k * stride
        return (start.pass + flat / loader.batchesPerEpoch, flat % loader.batchesPerEpoch)
    }

    private func produce() {
        while true {
            condition.lock()
            while !stopped && produced - taken >= depth { condition.wait() }
            if stopped { condition.unlock(); return }
            let k = produced
            condition.unlock()
            let (pass, cursor) = position(k)
            let result = Result { try loader.batch(cursor, epoch: pass) }
            condition.lock()
            ready[k] = result
            produced += 1
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The next batch in order (nil: all its images failed to load), waiting for it if needed.
    func take() throws -> DetectionBatch? {
        condition.lock()
        while ready[taken] == nil { condition.wait() }
        let result = ready.removeValue(forKey: taken)!
        taken += 1
        condition.broadcast()
        condition.unlock()
        return try result.get()
    }

    /// Ends the thread after the batch it is loading.
    func stop() {
        condition.lock(); stopped = true; condition.broadcast(); condition.unlock()
    }
}
