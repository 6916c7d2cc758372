import Foundation
import OcelliTensor

/// One batch of detection samples, ready for a network.
public struct DetectionBatch {
    /// Images [N, height, width, 3], RGB in [0, 1].
    public var images: Tensor
    /// Boxes [N, maxBoxes, 5]: class index, xmin, ymin, xmax, ymax in input pixels (0-based,
    /// continuous, after resizing or letterboxing). Rows past an image's count are padding:
    /// class −1 and a zero box. `maxBoxes` is the batch's largest count, at least 1.
    public var boxes: Tensor
    /// The number of real boxes of each image.
    public var counts: [Int]
    /// The same boxes as annotations, in input pixels.
    public var objects: [[ObjectAnnotation]]
    /// Each sample's index in the data set.
    public var indices: [Int]
    /// The input size of this batch (multi-scale batches vary).
    public var width: Int
    public var height: Int
    public var epoch: Int
    /// The batch's number within its epoch.
    public var index: Int

    public var count: Int { indices.count }

    public init(images: Tensor, boxes: Tensor, counts: [Int], objects: [[ObjectAnnotation]], indices: [Int],
                width: Int, height: Int, epoch: Int, index: Int) {
        self.images = images; self.boxes = boxes; self.counts = counts; self.objects = objects; self.indices = indices
        self.width = width; self.height = height; self.epoch = epoch; self.index = index
    }
}

/// Batches of a detection data set for training: seeded shuffling per epoch, a per-sample
/// transform (augmentation), letterboxing or resizing to the input size, boxes padded to the
/// batch's maximum count, multi-scale input sizes, and background prefetch.
///
///     let loader = DetectionLoader(dataset: train, batchSize: 16, inputSize: 416, seed: 1,
///                                  multiScale: .init(every: 10, sizes: 320...608))
///     let epoch = loader.epoch(0)
///     while let batch = try epoch.next() { ... batch.images, batch.boxes ... }
///
/// Everything random (order, sizes, the generator handed to the transform) is derived from
/// `seed`, the epoch and the sample's data set index, so the batches are the same with or
/// without prefetch and whatever the number of workers.
public final class DetectionLoader: @unchecked Sendable {
    /// A per-sample transform (augmentation): the decoded RGB image and its objects in its
    /// pixels, and a generator seeded for this sample and epoch. Runs before resizing.
    public typealias Transform = @Sendable (Image, [ObjectAnnotation], inout SeededGenerator) throws -> (Image, [ObjectAnnotation])

    /// How an image is brought to the input size.
    public enum Resize: Sendable {
        /// Darknet's letterbox: aspect ratio kept, centred on 0.5 grey.
        case letterbox
        /// Stretched to the input size (bilinear).
        case stretch
    }

    /// Multi-scale training: every `every` batches the input size is drawn from the multiples
    /// of 32 in `sizes` (the same size for a whole batch), never the same size twice in a row.
    public struct MultiScale: Sendable, Equatable {
        public var every: Int
        public var sizes: ClosedRange<Int>

        public init(every: Int = 10, sizes: ClosedRange<Int> = 320...608) {
            precondition(every >= 1, "MultiScale: every must be at least 1, got \(every)")
            self.every = every
            self.sizes = sizes
        }

        /// The sizes that can be drawn: multiples of 32 within `sizes`.
        public var candidates: [Int] {
            let low = (sizes.lowerBound + 31) / 32 * 32
            return Array(stride(from: max(32, low), through: sizes.upperBound, by: 32))
        }
    }

    public let dataset: DetectionDataset
    public let batchSize: Int
    /// Width and height of the input when multi-scale is off.
    public let inputSize: Int
    public let resize: Resize
    public let shuffle: Bool
    public let seed: UInt64
    /// Drop the last, smaller batch of an epoch.
    public let dropLast: Bool
    public let multiScale: MultiScale?
    /// Batches prepared ahead on a background thread (0: load when asked).
    public let prefetch: Int
    /// Skip samples that fail to load or transform, with a warning, instead of throwing.
    public let skipBadSamples: Bool
    /// Threads preparing the samples of one batch.
    public let workers: Int
    public let transform: Transform?
    /// Receives the warnings of skipped samples (default: standard error). Set it before
    /// starting an epoch; the prefetch thread calls it.
    public var warningHandler: @Sendable (String) -> Void = { message in
        StandardError.write("warning: " + message + "\n")
    }

    public init(dataset: DetectionDataset, batchSize: Int, inputSize: Int = 416, resize: Resize = .letterbox,
                shuffle: Bool = true, seed: UInt64 = 0, dropLast: Bool = false, multiScale: MultiScale? = nil,
                prefetch: Int = 2, skipBadSamples: Bool = false, workers: Int = 1, transform: Transform? = nil) {
        precondition(batchSize >= 1, "DetectionLoader: batchSize must be at least 1, got \(batchSize)")
        precondition(inputSize >= 1, "DetectionLoader: inputSize must be at least 1, got \(inputSize)")
        precondition(prefetch >= 0, "DetectionLoader: prefetch must be at least 0, got \(prefetch)")
        precondition(workers >= 1, "DetectionLoader: workers must be at least 1, got \(workers)")
        precondition(multiScale.map { !$0.candidates.isEmpty } ?? true,
                     "DetectionLoader: multi-scale range \(multiScale!.sizes) holds no multiple of 32")
        self.dataset = dataset
        self.batchSize = batchSize
        self.inputSize = inputSize
        self.resize = resize
        self.shuffle = shuffle
        self.seed = seed
        self.dropLast = dropLast
        self.multiScale = multiScale
        self.prefetch = prefetch
        self.skipBadSamples = skipBadSamples
        self.workers = workers
        self.transform = transform
    }

    public var batchesPerEpoch: Int {
        let n = dataset.images.count
        return dropLast ? n / batchSize : (n + batchSize - 1) / batchSize
    }

    // MARK: Randomness

    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A generator for one purpose (`stream`), epoch and item.
    func generator(_ stream: UInt64, epoch: Int, item: Int) -> SeededGenerator {
        SeededGenerator(seed: Self.mix(Self.mix(Self.mix(seed ^ stream) ^ UInt64(truncatingIfNeeded: epoch)) ^ UInt64(truncatingIfNeeded: item)))
    }

    static func integer(_ g: inout SeededGenerator, below n: Int) -> Int {
        Int(g.next().multipliedFullWidth(by: UInt64(n)).high)
    }

    /// The data set indices of an epoch, in order (a seeded Fisher–Yates shuffle).
    public func order(epoch: Int) -> [Int] {
        var order = Array(dataset.images.indices)
        guard shuffle else { return order }
        var g = generator(1, epoch: epoch, item: 0)
        for i in stride(from: order.count - 1, to: 0, by: -1) {
            order.swapAt(i, Self.integer(&g, below: i + 1))
        }
        return order
    }

    /// The input size (width = height) of batch `batch` of `epoch`.
    public func inputSize(epoch: Int, batch: Int) -> Int {
        guard let multiScale else { return inputSize }
        let candidates = multiScale.candidates
        var size = 0
        for group in 0...(batch / multiScale.every) {
            var g = generator(2, epoch: epoch, item: group)
            if candidates.count == 1 { return candidates[0] }
            // Draw among the sizes other than the previous group's.
            let choices = candidates.filter { $0 != size }
            size = choices[Self.integer(&g, below: choices.count)]
        }
        return size
    }

    // MARK: Loading

    /// One sample: the decoded image through the transform, resized, and its objects in input pixels.
    func sample(_ index: Int, epoch: Int, size: Int) throws -> (pixels: Tensor, objects: [ObjectAnnotation]) {
        let entry = dataset.images[index]
        var image = try Image(contentsOf: entry.file.path)
        if image.channels != 3 { image = image.rgb() }
        guard image.width == entry.width && image.height == entry.height else {
            throw DatasetError(file: entry.file.path, "the image is \(image.width)x\(image.height), its annotation (\(entry.id)) says \(entry.width)x\(entry.height)")
        }
        var objects = entry.objects
        if let transform {
            var g = generator(3, epoch: epoch, item: index)
            (image, objects) = try transform(image, objects, &g)
            if image.channels != 3 { image = image.rgb() }
        }
        let pixels: Tensor
        let sx: Double, sy: Double, ox: Double, oy: Double
        switch resize {
        case .letterbox:
            let box = Letterbox(sourceWidth: image.width, sourceHeight: image.height, width: size, height: size)
            pixels = box.apply(to: image)
            sx = Double(box.resizedWidth) / Double(image.width); sy = Double(box.resizedHeight) / Double(image.height)
            ox = Double(box.offsetX); oy = Double(box.offsetY)
        case .stretch:
            pixels = (image.width == size && image.height == size ? image : image.resized(width: size, height: size)).tensor()
            sx = Double(size) / Double(image.width); sy = Double(size) / Double(image.height)
            ox = 0; oy = 0
        }
        for k in objects.indices {
            objects[k].xmin = objects[k].xmin * sx + ox; objects[k].xmax = objects[k].xmax * sx + ox
            objects[k].ymin = objects[k].ymin * sy + oy; objects[k].ymax = objects[k].ymax * sy + oy
        }
        return (pixels, objects)
    }

    /// Batch `index` of `epoch`, loaded on the calling thread. Nil when every sample of the
    /// batch was skipped (`skipBadSamples`).
    public func batch(_ index: Int, epoch: Int) throws -> DetectionBatch? {
        precondition(index >= 0 && index < batchesPerEpoch, "DetectionLoader.batch: index \(index) outside 0..<\(batchesPerEpoch)")
        let order = self.order(epoch: epoch)
        let members = Array(order[(index * batchSize)..<min(order.count, (index + 1) * batchSize)])
        return try assemble(members, epoch: epoch, index: index)
    }

    func assemble(_ members: [Int], epoch: Int, index: Int) throws -> DetectionBatch? {
        let size = inputSize(epoch: epoch, batch: index)
        var results = [Result<(pixels: Tensor, objects: [ObjectAnnotation]), Error>?](repeating: nil, count: members.count)
        if workers > 1 && members.count > 1 {
            let n = min(workers, members.count)
            results.withUnsafeMutableBufferPointer { buffer in
                let out = UnsafeSendable(buffer)
                DispatchQueue.concurrentPerform(iterations: n) { w in
                    for k in stride(from: w, to: members.count, by: n) {
                        out.value[k] = Result { try self.sample(members[k], epoch: epoch, size: size) }
                    }
                }
            }
        } else {
            for k in members.indices { results[k] = Result { try sample(members[k], epoch: epoch, size: size) } }
        }
        var kept: [(index: Int, pixels: Tensor, objects: [ObjectAnnotation])] = []
        for (k, result) in results.enumerated() {
            switch result! {
            case .success(let s): kept.append((members[k], s.pixels, s.objects))
            case .failure(let error):
                guard skipBadSamples else { throw error }
                warningHandler("\(error); sample \(members[k]) (\(dataset.images[members[k]].id)) skipped")
            }
        }
        if kept.isEmpty { return nil }
        let plane = size * size * 3
        let maxBoxes = max(1, kept.map(\.objects.count).max() ?? 0)
        var pixels = [Float](repeating: 0, count: kept.count * plane)
        var boxes = [Float](repeating: 0, count: kept.count * maxBoxes * 5)
        for (b, s) in kept.enumerated() {
            pixels.withUnsafeMutableBufferPointer { dst in
                s.pixels.scalars.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + b * plane).update(from: src.baseAddress!, count: plane)
                }
            }
            for r in 0..<maxBoxes {
                let row = (b * maxBoxes + r) * 5
                if r < s.objects.count {
                    let o = s.objects[r]
                    boxes[row] = Float(o.classIndex)
                    boxes[row + 1] = Float(o.xmin); boxes[row + 2] = Float(o.ymin)
                    boxes[row + 3] = Float(o.xmax); boxes[row + 4] = Float(o.ymax)
                } else {
                    boxes[row] = -1
                }
            }
        }
        return DetectionBatch(images: Tensor(shape: [kept.count, size, size, 3], scalars: pixels),
                              boxes: Tensor(shape: [kept.count, maxBoxes, 5], scalars: boxes),
                              counts: kept.map(\.objects.count), objects: kept.map(\.objects), indices: kept.map(\.index),
                              width: size, height: size, epoch: epoch, index: index)
    }

    /// The batches of `epoch`, in order; with `prefetch` > 0 a background thread keeps up to
    /// `prefetch` batches ready.
    public func epoch(_ epoch: Int) -> DetectionEpoch {
        DetectionEpoch(loader: self, epoch: epoch)
    }
}

/// The batches of one epoch. Call `next()` until it returns nil; an error stops the epoch.
/// Dropping the object stops its prefetch thread after the batch it is working on.
public final class DetectionEpoch: @unchecked Sendable {
    public let epoch: Int
    private let loader: DetectionLoader
    private let order: [Int]
    private var nextIndex = 0
    private let queue: PrefetchQueue?

    init(loader: DetectionLoader, epoch: Int) {
        self.loader = loader
        self.epoch = epoch
        order = loader.order(epoch: epoch)
        if loader.prefetch > 0 {
            let queue = PrefetchQueue(depth: loader.prefetch)
            self.queue = queue
            let order = self.order
            let thread = Thread {
                for b in 0..<loader.batchesPerEpoch {
                    guard queue.waitForRoom() else { return }
                    let members = Array(order[(b * loader.batchSize)..<min(order.count, (b + 1) * loader.batchSize)])
                    let result = Result { try loader.assemble(members, epoch: epoch, index: b) }
                    queue.put(result)
                    if case .failure = result { break }
                }
                queue.finish()
            }
            thread.name = "ocelli-prefetch"
            thread.start()
        } else {
            queue = nil
        }
    }

    deinit { queue?.cancel() }

    /// The next batch, or nil at the end of the epoch. Batches whose samples were all skipped
    /// are passed over.
    public func next() throws -> DetectionBatch? {
        while true {
            if let queue {
                guard let result = queue.take() else { return nil }
                nextIndex += 1
                if let batch = try result.get() { return batch }
            } else {
                guard nextIndex < loader.batchesPerEpoch else { return nil }
                let b = nextIndex
                nextIndex += 1
                let members = Array(order[(b * loader.batchSize)..<min(order.count, (b + 1) * loader.batchSize)])
                if let batch = try loader.assemble(members, epoch: epoch, index: b) { return batch }
            }
        }
    }
}

/// A bounded first-in first-out queue between the prefetch thread and the consumer.
final class PrefetchQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Result<DetectionBatch?, Error>] = []
    private let depth: Int
    private var finished = false, cancelled = false

    init(depth: Int) { self.depth = depth }

    /// Blocks while the queue is full; false when the consumer has gone.
    func waitForRoom() -> Bool {
        condition.lock(); defer { condition.unlock() }
        while items.count >= depth && !cancelled { condition.wait() }
        return !cancelled
    }

    func put(_ item: Result<DetectionBatch?, Error>) {
        condition.lock(); items.append(item); condition.broadcast(); condition.unlock()
    }

    func finish() {
        condition.lock(); finished = true; condition.broadcast(); condition.unlock()
    }

    func cancel() {
        condition.lock(); cancelled = true; items.removeAll(); condition.broadcast(); condition.unlock()
    }

    /// The next item, waiting for it; nil when the producer has finished and the queue is empty.
    func take() -> Result<DetectionBatch?, Error>? {
        condition.lock(); defer { condition.unlock() }
        while items.isEmpty && !finished { condition.wait() }
        if items.isEmpty { return nil }
        let item = items.removeFirst()
        condition.broadcast()
        return item
    }
}
