import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor

/// Ranks as threads of one process: the collectives over shared slots and a barrier, each sum
/// taken in rank order. What MPI does between processes, without MPI (the MPI build itself is
/// checked by Scripts/mpi_check.sh in CI).
final class ThreadCollective: @unchecked Sendable {
    let size: Int
    private let condition = NSCondition()
    private var arrived = 0, generation = 0
    private var slots: [[Float]]
    private var doubleSlots: [[Double]]
    private(set) var allReduceCalls = 0

    init(size: Int) {
        self.size = size
        slots = Array(repeating: [], count: size)
        doubleSlots = Array(repeating: [], count: size)
    }

    func barrier() {
        condition.lock()
        let g = generation
        arrived += 1
        if arrived == size { arrived = 0; generation += 1; condition.broadcast() } else {
            while generation == g { condition.wait() }
        }
        condition.unlock()
    }

    func put(_ rank: Int, _ v: [Float]) { condition.lock(); slots[rank] = v; condition.unlock() }
    func putDouble(_ rank: Int, _ v: [Double]) { condition.lock(); doubleSlots[rank] = v; condition.unlock() }
    func all() -> [[Float]] { condition.lock(); defer { condition.unlock() }; return slots }
    func allDouble() -> [[Double]] { condition.lock(); defer { condition.unlock() }; return doubleSlots }
    func countCall() { condition.lock(); allReduceCalls += 1; condition.unlock() }

    /// The `Collective` of one rank.
    final class Rank: Collective {
        let group: ThreadCollective
        let rank: Int
        var size: Int { group.size }
        init(_ group: ThreadCollective, _ rank: Int) { self.group = group; self.rank = rank }

        func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
            if rank == 0 { group.countCall() }
            group.put(rank, Array(buffer)); group.barrier()
            let all = group.all()
            for i in buffer.indices { var s = all[0][i]; for r in 1..<size { s += all[r][i] }; buffer[i] = s }
            group.barrier()
        }
        func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
            group.putDouble(rank, Array(buffer)); group.barrier()
            let all = group.allDouble()
            for i in buffer.indices { var s = all[0][i]; for r in 1..<size { s += all[r][i] }; buffer[i] = s }
            group.barrier()
        }
        final class Done: CollectiveRequest { func wait() throws {} }
        func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CollectiveRequest {
            try allReduceSum(buffer)
            return Done()
        }
        func progress() {}
        func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
            if rank == root { group.put(rank, Array(buffer)) }
            group.barrier()
            if rank != root { let v = group.all()[root]; for i in buffer.indices { buffer[i] = v[i] } }
            group.barrier()
        }
        func allGather(_ values: [Float]) throws -> [[Float]] {
            group.put(rank, values); group.barrier()
            let all = group.all()
            group.barrier()
            return all
        }
        func barrier() throws { group.barrier() }
    }

    /// Runs `body(rank)` on `size` threads at once and returns their results in rank order.
    func run<R>(_ body: @escaping @Sendable (Rank) throws -> R) throws -> [R] {
        let results = RankResults<R>(size)
        let done = DispatchGroup()
        for r in 0..<size {
            done.enter()
            let t = Thread { [self] in
                let result = Result { try body(Rank(self, r)) }
                results.lock.lock(); results.values[r] = result; results.lock.unlock()
                done.leave()
            }
            t.stackSize = 8 << 20
            t.start()
        }
        done.wait()
        return try results.values.map { try $0!.get() }
    }
}

/// The ranks' results, filled by their threads.
final class RankResults<R>: @unchecked Sendable {
    let lock = NSLock()
    var values: [Result<R, Error>?]
    init(_ n: Int) { values = Array(repeating: nil, count: n) }
}

@Suite struct DataParallelTests {
    @Test func shardsCoverEveryRowOnce() {
        for n in [0, 1, 5, 16, 17, 129] {
            for size in 1...5 {
                let parts = (0..<size).map { DataParallel.shardRange(n, rank: $0, of: size) }
                #expect(parts.first?.lowerBound == 0 && parts.last?.upperBound == n)
                for k in 1..<size { #expect(parts[k].lowerBound == parts[k - 1].upperBound) }
                #expect(parts.map(\.count).max()! - parts.map(\.count).min()! <= 1)
            }
        }
    }

    /// A shard's dropout mask is the whole batch's rows (what one process would drop).
    @Test func dropoutOfAShardIsTheBatchsMask() {
        let x = Tensor.uniform([6, 5, 3], seed: 4) + 0.5
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
        let whole = Tensor.dropout(x, rate: 0.4, using: &g1)
        let rows = 2..<5
        let part = Tensor.dropout(x.sliced(axis: 0, rows).detached(), rate: 0.4, using: &g2, firstIndex: rows.lowerBound * 15)
        #expect(part.scalars == whole.sliced(axis: 0, rows).detached().scalars)
        #expect(part.scalars.contains(0) && part.scalars.contains { $0 != 0 })
    }

    /// Moving statistics recorded on ranks and replayed in pass order equal the updates made one
    /// after the other.
    @Test func movingStatisticsReplayInPassOrder() throws {
        let model = Sequential(inputShape: [3])
        model.add(BatchNormalization(momentum: 0.9))
        let bn = model.layers[0] as! BatchNormalization
        let stats: [[Float]] = [[1, 2, 3], [4, 5, 6], [-1, 0, 1], [7, 7, 7]]
        // One process: passes 0, 1, 2, 3.
        var expected = bn.movingMean.value
        for s in stats { expected = MovingStatisticsLog.moved(expected, toward: Tensor(s), keep: 0.9, take: 0.1) }
        // Two ranks as threads, rank r running passes r and r + 2, each with a model of its own.
        let group = ThreadCollective(size: 2)
        let means = try group.run { rank -> [Float] in
            let m = Sequential(inputShape: [3])
            m.add(BatchNormalization(momentum: 0.9))
            let layer = m.layers[0] as! BatchNormalization
            let dp = DataParallel(rank)
            let log = MovingStatisticsLog(model: m)
            for k in [rank.rank, rank.rank + 2] {
                var ctx = ForwardContext(training: true)
                ctx.movingStatistics = log
                log.beginPass()
                ctx.updateMovingStatistic(layer.movingMean, toward: Tensor(stats[k]), keep: 0.9, take: 0.1)
            }
            try dp.replayMovingStatistics(log, model: m)
            return layer.movingMean.value.scalars
        }
        #expect(means[0] == expected.scalars)
        #expect(means[1] == expected.scalars)
    }

    /// `fit` on two ranks (threads) gives the weights of one process training the same batches:
    /// rank 0's initial weights broadcast, each rank its half of every batch, gradients summed.
    @Test func fitOnTwoRanksMatchesOneProcess() throws {
        // 97 samples in batches of 24: each pass ends with a batch of one row, which leaves
        // rank 1 without data for that update (it must still make the same update).
        let (x, y) = blobs(97, seed: 5)
        @Sendable func makeModel(_ initSeed: UInt64) -> Sequential {
            RandomSeed.withSeed(initSeed) {
                let m = Sequential(inputShape: [2])
                m.add(Dense(16, activation: .tanh))
                m.add(Dropout(0.25))
                m.add(Dense(2, activation: .softmax))
                m.compile(optimizer: .sgd(learningRate: 0.2, momentum: 0.9), loss: .sparseCategoricalCrossentropy(), metrics: [.accuracy])
                return m
            }
        }
        let one = makeModel(1)
        let history = try Parallel.withThreadCount(1) {
            try RandomSeed.withSeed(11) {
                try one.fit(TensorBatches(x: x, y: y, batchSize: 24, shuffle: true, seed: 3), epochs: 3, verbose: .silent)
            }
        }
        let group = ThreadCollective(size: 2)
        let results = try group.run { rank -> ([Tensor], [String: [Float]], Int) in
            // Different initial weights on rank 1: the broadcast must replace them.
            let m = makeModel(rank.rank == 0 ? 1 : 99)
            m.dataParallel = DataParallel(rank)
            let h = try Parallel.withThreadCount(1) {
                try RandomSeed.withSeed(11) {
                    try m.fit(TensorBatches(x: x, y: y, batchSize: 24, shuffle: true, seed: 3), epochs: 3, verbose: .silent)
                }
            }
            try m.dataParallel!.checkInSync(m)
            return (m.getWeights(), h.history, m.dataParallel!.updates)
        }
        for (w, h, updates) in results {
            #expect(updates == 15)
            var largest: Float = 0
            for (a, b) in zip(w, one.getWeights()) { for (u, v) in zip(a.scalars, b.scalars) { largest = max(largest, abs(u - v)) } }
            #expect(largest < 1e-5, "largest difference \(largest)")
            for (k, v) in history.history { #expect(zip(h[k]!, v).allSatisfy { abs($0 - $1) < 1e-4 }, "\(k): \(h[k]!) vs \(v)") }
        }
        #expect(results[0].0.map(\.scalars) == results[1].0.map(\.scalars))
    }

    /// Gradients reach the reducer bucket by bucket during the backward pass (several buckets,
    /// each summed once per update).
    @Test func gradientsAreSummedInBucketsDuringTheBackward() throws {
        let group = ThreadCollective(size: 2)
        let (x, y) = blobs(32, seed: 6)
        let counts = try group.run { rank -> Int in
            let m = RandomSeed.withSeed(2) { () -> Sequential in
                let m = Sequential(inputShape: [2])
                m.add(Dense(64, activation: .relu)); m.add(Dense(64, activation: .relu)); m.add(Dense(2, activation: .softmax))
                m.compile(optimizer: .sgd(learningRate: 0.1), loss: .sparseCategoricalCrossentropy())
                return m
            }
            let dp = DataParallel(rank)
            dp.bucketBytes = 4096  // several buckets
            m.dataParallel = dp
            try Parallel.withThreadCount(1) {
                _ = try m.fit(TensorBatches(x: x, y: y, batchSize: 16, seed: 1), epochs: 1, verbose: .silent)
            }
            return dp.updates
        }
        #expect(counts == [2, 2])
        // Buckets of ≥ 4 KB from the last parameters: [bias 2, kernel 128, bias 64, kernel 4096]
        // and [bias 64, kernel 128]: two all-reduces per update (the logs' sums are in Double).
        #expect(group.allReduceCalls == 2 * 2)
    }
}
