import OcelliNN
import OcelliTensor
import OcelliVision

/// A detection loader feeds `fit`, `evaluate` and `predict` directly: the inputs are the batch's
/// images [N, H, W, 3], the targets the whole `DetectionBatch` (padded boxes, counts, objects,
/// input size), which a detection loss reads. Pass k is the loader's epoch k (its own seeded
/// order, sizes and augmentation).
extension DetectionLoader: BatchSource {
    public typealias Target = DetectionBatch

    public var batchCount: Int { batchesPerEpoch }

    public func batch(_ index: Int, pass: Int) throws -> Batch<DetectionBatch> {
        guard index >= 0 && index < batchesPerEpoch else {
            throw DatasetError(file: "DetectionLoader", "batch \(index) is outside 0..<\(batchesPerEpoch)")
        }
        guard let b = try batch(index, epoch: pass) else {
            throw DatasetError(file: "DetectionLoader", "every sample of batch \(index) of epoch \(pass) was skipped as unreadable (see the warnings)")
        }
        return Batch(inputs: [b.images], targets: b)
    }
}
