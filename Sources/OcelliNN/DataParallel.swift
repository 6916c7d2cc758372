import Foundation
import OcelliTensor

// Data-parallel training (DDP's and Horovod's scheme): every rank holds the whole model, trains on
// its own rows of each global batch, and the ranks' gradients are summed before each update, so
// every rank applies the same update to the same weights. The collectives come from outside
// (`OcelliMPI.MPICommunicator` over MPI); this file is the training side and knows no MPI.

/// A collective operation started and not yet finished.
public protocol CollectiveRequest: AnyObject {
    /// Waits until the operation has finished on this rank (its buffer may be read again).
    func wait() throws
}

/// The collective operations data-parallel training needs, over a group of `size` processes
/// (ranks). Every rank must call the same operations in the same order with buffers of the same
/// lengths. `OcelliMPI.MPICommunicator` implements them over MPI.
public protocol Collective: AnyObject {
    var rank: Int { get }
    var size: Int { get }
    /// Replaces `buffer` on every rank by its sum over the ranks.
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws
    func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws
    /// Starts `allReduceSum` on `buffer`, which must stay allocated and untouched until the
    /// request's `wait` returns.
    func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CollectiveRequest
    /// Lets started operations advance (MPI progresses non-blocking collectives inside its calls).
    func progress()
    /// Copies `root`'s buffer to every rank.
    func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws
    /// Every rank's `values`, in rank order (the lengths may differ).
    func allGather(_ values: [Float]) throws -> [[Float]]
    func barrier() throws
}

public struct DataParallelError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Data-parallel training over a `Collective`: `Model.fit` and the Darknet trainer use it when
/// it is set (`model.dataParallel`).
///
/// - The global batch stays what `fit`'s batch size or the cfg's `batch` says; each rank trains
///   on its share (`fit`: rows `shard(of:)` of each batch; the Darknet trainer: the cfg's
///   subdivisions, rank r taking passes r, r + N, …). The learning-rate schedule does not change
///   with the number of ranks.
/// - Gradients are summed in buckets of about `bucketBytes`, the last parameters' first, each
///   started while the backward pass still runs (`overlap`).
/// - Batch-norm statistics are each rank's own (as DDP by default): in the Darknet trainer a rank's
///   pass is one of Darknet's subdivisions, whose statistics one process computes alike. The
///   moving averages are then made the same on every rank: each rank replays every rank's
///   updates in the order one process would have made them.
/// - Random masks (dropout) are those the whole batch would draw in one process.
public final class DataParallel {
    public let collective: Collective
    public var rank: Int { collective.rank }
    public var size: Int { collective.size }
    /// Rank 0 prints, validates and writes the checkpoints.
    public var isPrimary: Bool { collective.rank == 0 }
    /// Gradient bytes per all-reduce bucket (DDP's default is 25 MB; small models fit one bucket).
    public var bucketBytes = 4 << 20
    /// Start each bucket's all-reduce as soon as its gradients are complete in the backward pass.
    public var overlap = true
    /// Seconds this rank spent in gradient all-reduce after its backward pass ended (waiting for
    /// the buckets and copying), summed over the steps.
    public private(set) var allReduceSeconds = 0.0
    /// Gradient bytes all-reduced per update.
    public private(set) var bytesPerUpdate = 0
    public private(set) var updates = 0
    private var reducer: GradientReducer?

    public init(_ collective: Collective) { self.collective = collective }

    /// Rows `offset ..< offset + count` of an `n`-row batch for this rank: the first `n % size`
    /// ranks take one row more.
    public func shard(of n: Int) -> Range<Int> { Self.shardRange(n, rank: rank, of: size) }

    public static func shardRange(_ n: Int, rank: Int, of size: Int) -> Range<Int> {
        let base = n / size, extra = n % size
        let start = rank * base + Swift.min(rank, extra)
        return start..<(start + base + (rank < extra ? 1 : 0))
    }

    /// Sums numbers (losses, counts) over the ranks.
    public func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try v.withUnsafeMutableBufferPointer { try collective.allReduceSum($0) }
        return v
    }

    /// Rank 0's values of every parameter (trained or not) on every rank.
    public func broadcastParameters(_ model: Model) throws {
        for p in model.parameters {
            var values = p.value.scalars
            try values.withUnsafeMutableBufferPointer { try collective.broadcast($0, root: 0) }
            if rank != 0 { p.assign(Tensor(shape: p.shape, scalars: values)) }
        }
    }

    /// Throws when the ranks' weights differ (a checksum of every parameter's bits): they must
    /// stay equal, since every rank applies the same update.
    public func checkInSync(_ model: Model) throws {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for p in model.parameters {
            p.value.scalars.withUnsafeBufferPointer { b in
                for x in b { hash = (hash ^ UInt64(x.bitPattern)) &* 0x100_0000_01b3 }
            }
        }
        // Four 16-bit pieces are exact in Float.
        let mine = (0..<4).map { Float((hash >> (16 * UInt64($0))) & 0xffff) }
        let all = try collective.allGather(mine)
        if let r = all.firstIndex(where: { $0 != all[0] }) {
            throw DataParallelError("the weights of rank \(r) differ from those of rank 0: the ranks went out of step")
        }
    }

    /// The reducer of this model's trainable parameters (rebuilt when they change: freezing).
    func gradientReducer(for model: Model) -> GradientReducer {
        let parameters = model.trainableParameters
        if let r = reducer, r.parameters.count == parameters.count, zip(r.parameters, parameters).allSatisfy({ $0 === $1 }) { return r }
        let r = GradientReducer(parameters: parameters, collective: collective, bucketBytes: bucketBytes)
        reducer = r
        return r
    }

    /// Starts a step's last backward pass: the hook to give `backward(onLeafGradient:)`.
    func beginReduction(_ model: Model) -> (ObjectIdentifier) -> Void {
        let r = gradientReducer(for: model)
        r.begin(overlap: overlap)
        return { [unowned r] id in r.leafReady(id) }
    }

    /// Ends a step's reduction: every bucket summed, the sums back in the parameters' gradients.
    func finishReduction(_ model: Model) throws {
        let r = gradientReducer(for: model)
        if !r.begun { r.begin(overlap: false) }  // no pass was marked last (a rank without data this step)
        let start = DispatchTime.now().uptimeNanoseconds
        try r.finish()
        allReduceSeconds += Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        bytesPerUpdate = r.totalCount * MemoryLayout<Float>.size  // (plus one flag per parameter)
        updates += 1
    }

    /// Applies every rank's recorded moving-statistics updates, in the global order of their
    /// passes: pass k of rank r is pass `k·size + r` (the Darknet trainer's subdivisions; `fit`
    /// has one pass per rank).
    public func replayMovingStatistics(_ log: MovingStatisticsLog, model: Model) throws {
        let all = try collective.allGather(log.encoded())
        let passes = try all.enumerated().map { r, data in try MovingStatisticsLog.decode(data, rank: r, parameterCount: log.parameterCount) }
        let parameters = model.parameters
        let most = passes.map(\.count).max() ?? 0
        for k in 0..<most {
            for r in passes.indices where k < passes[r].count {
                for e in passes[r][k] {
                    let p = parameters[e.parameter]
                    guard p.count == e.values.count else {
                        throw DataParallelError("rank \(r) recorded \(e.values.count) values for parameter \(p.name), which has \(p.count)")
                    }
                    p.value = MovingStatisticsLog.moved(p.value, toward: Tensor(shape: p.shape, scalars: e.values), keep: e.keep, take: e.take)
                }
            }
        }
        log.reset()
    }
}

/// The moving-statistics updates of a rank's passes (batch-norm averages), recorded instead of
/// applied, to be replayed by every rank in one order (`DataParallel.replayMovingStatistics`).
public final class MovingStatisticsLog {
    struct Entry { var parameter: Int; var keep: Float; var take: Float; var values: [Float] }
    private let index: [ObjectIdentifier: Int]
    let parameterCount: Int
    private(set) var passes: [[Entry]] = []

    public init(model: Model) {
        let ps = model.parameters
        parameterCount = ps.count
        index = Dictionary(uniqueKeysWithValues: ps.enumerated().map { (ObjectIdentifier($0.element), $0.offset) })
    }

    /// The following records belong to a new pass.
    public func beginPass() { passes.append([]) }
    func reset() { passes = [] }

    func record(_ p: Parameter, statistic: Tensor, keep: Float, take: Float) {
        guard let i = index[ObjectIdentifier(p)] else {
            preconditionFailure("MovingStatisticsLog: parameter \(p.name) is not one of the model's")
        }
        if passes.isEmpty { passes.append([]) }
        passes[passes.count - 1].append(Entry(parameter: i, keep: keep, take: take, values: statistic.scalars))
    }

    /// `value·keep + statistic·take`, elementwise, in that order of operations (the layers' own).
    static func moved(_ value: Tensor, toward statistic: Tensor, keep: Float, take: Float) -> Tensor {
        let v = value.scalars, s = statistic.scalars
        var out = [Float](repeating: 0, count: v.count)
        for i in v.indices { out[i] = v[i] * keep + s[i] * take }
        return Tensor(shape: value.shape, scalars: out)
    }

    /// [passes, then per pass: entries, then per entry: parameter, keep, take, count, values…]
    /// (counts below 2^24 are exact in Float).
    func encoded() -> [Float] {
        var out: [Float] = [Float(passes.count)]
        for pass in passes {
            out.append(Float(pass.count))
            for e in pass { out += [Float(e.parameter), e.keep, e.take, Float(e.values.count)]; out += e.values }
        }
        return out
    }

    static func decode(_ data: [Float], rank: Int, parameterCount: Int) throws -> [[Entry]] {
        var i = 0
        func count(_ limit: Int) throws -> Int {
            guard i < data.count, let v = Int(exactly: data[i]), v >= 0, v <= limit else {
                throw DataParallelError("the moving statistics from rank \(rank) are malformed at value \(i)")
            }
            i += 1
            return v
        }
        var passes: [[Entry]] = []
        for _ in 0..<(try count(1 << 24)) {
            var pass: [Entry] = []
            for _ in 0..<(try count(1 << 24)) {
                let p = try count(parameterCount - 1)
                guard i + 1 < data.count else { throw DataParallelError("the moving statistics from rank \(rank) end early") }
                let keep = data[i], take = data[i + 1]
                i += 2
                let n = try count(data.count - i - 1)
                pass.append(Entry(parameter: p, keep: keep, take: take, values: Array(data[i..<(i + n)])))
                i += n
            }
            passes.append(pass)
        }
        return passes
    }
}

/// Sums the trainable parameters' gradients over the ranks in buckets (the last parameters
/// first, as the backward pass completes them), each bucket's all-reduce started as soon as all
/// its gradients are complete and every earlier bucket has started (the same order on every
/// rank). A parameter without a gradient on this rank contributes zeros; each bucket ends with a
/// flag per parameter (1 where the rank has its gradient), so a parameter that has a gradient
/// on any rank gets the sum on every rank (a rank with an empty share still updates alike).
final class GradientReducer {
    let parameters: [Parameter]
    private let collective: Collective
    private let buckets: [[Int]]
    private var bucketOf: [ObjectIdentifier: Int] = [:]
    private var missing: [Int] = []
    private var buffers: [UnsafeMutableBufferPointer<Float>]
    private var requests: [CollectiveRequest?]
    private var nextToStart = 0
    private var overlap = true
    private(set) var begun = false
    let totalCount: Int

    init(parameters: [Parameter], collective: Collective, bucketBytes: Int) {
        self.parameters = parameters
        self.collective = collective
        var buckets: [[Int]] = [], current: [Int] = [], bytes = 0
        for i in parameters.indices.reversed() {
            current.append(i)
            bytes += parameters[i].count * MemoryLayout<Float>.size
            if bytes >= bucketBytes { buckets.append(current); current = []; bytes = 0 }
        }
        if !current.isEmpty { buckets.append(current) }
        self.buckets = buckets
        buffers = buckets.map { b in
            let n = b.reduce(0) { $0 + parameters[$1].count } + b.count
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: Swift.max(n, 1))
            buffer.initialize(repeating: 0)
            return UnsafeMutableBufferPointer(rebasing: buffer[0..<n])
        }
        requests = Array(repeating: nil, count: buckets.count)
        totalCount = parameters.reduce(0) { $0 + $1.count }
    }

    deinit {
        // A request still running would write into freed memory: wait for it first.
        for r in requests { try? r?.wait() }
        for b in buffers { b.baseAddress?.deallocate() }
    }

    func begin(overlap: Bool) {
        self.overlap = overlap
        begun = true
        bucketOf = [:]
        for (k, b) in buckets.enumerated() {
            for i in b { if let id = parameters[i].value.gradientLeafID { bucketOf[id] = k } }
        }
        missing = buckets.map(\.count)
        requests = Array(repeating: nil, count: buckets.count)
        nextToStart = 0
    }

    func leafReady(_ id: ObjectIdentifier) {
        guard overlap, let k = bucketOf.removeValue(forKey: id) else { return }
        missing[k] -= 1
        while nextToStart < buckets.count && missing[nextToStart] == 0 {
            do { try start(nextToStart) } catch { return }  // finish() starts it again and reports the error
            nextToStart += 1
        }
        collective.progress()
    }

    private func start(_ k: Int) throws {
        let buffer = buffers[k]
        var offset = 0
        let flags = buffer.count - buckets[k].count
        for (q, i) in buckets[k].enumerated() {
            let p = parameters[i], n = p.count
            buffer[flags + q] = p.grad == nil ? 0 : 1
            if let g = p.grad {
                g.scalars.withUnsafeBufferPointer { src in
                    _ = UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + n)]).initialize(from: src)
                }
            } else {
                UnsafeMutableBufferPointer(rebasing: buffer[offset..<(offset + n)]).update(repeating: 0)
            }
            offset += n
        }
        requests[k] = try collective.startAllReduceSum(buffer)
    }

    func finish() throws {
        begun = false
        while nextToStart < buckets.count {
            try start(nextToStart)
            nextToStart += 1
        }
        for k in buckets.indices {
            try requests[k]?.wait()
            requests[k] = nil
            let buffer = buffers[k]
            var offset = 0
            let flags = buffer.count - buckets[k].count
            for (q, i) in buckets[k].enumerated() {
                let p = parameters[i], n = p.count
                if buffer[flags + q] > 0 {
                    p.value.grad = Tensor(shape: p.shape, scalars: Array(buffer[offset..<(offset + n)]))
                }
                offset += n
            }
        }
    }
}
