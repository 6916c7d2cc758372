#if MPI
import CMPI
#endif
import Foundation
import OcelliNN

/// How this process was started, from the environment mpirun gives the processes it starts
/// (Open MPI's `OMPI_COMM_WORLD_*`, MPICH's and Intel MPI's `PMI_*`).
public enum MPILaunch {
    /// The number of processes mpirun started, nil when this one was not started by mpirun.
    public static var worldSize: Int? {
        let env = ProcessInfo.processInfo.environment
        return (env["OMPI_COMM_WORLD_SIZE"] ?? env["PMI_SIZE"]).flatMap { Int($0) }
    }

    /// This process's rank as mpirun numbered it.
    public static var rank: Int? {
        let env = ProcessInfo.processInfo.environment
        return (env["OMPI_COMM_WORLD_RANK"] ?? env["PMI_RANK"]).flatMap { Int($0) }
    }

    /// Whether this build has MPI (the package's `MPI` trait: `swift build --traits MPI`).
    public static var isAvailable: Bool {
        #if MPI
        return true
        #else
        return false
        #endif
    }
}

/// `Collective` over MPI's world communicator (MPI_COMM_WORLD): `MPI_Allreduce` in place on
/// Float and Double buffers, `MPI_Iallreduce` for the gradient buckets, `MPI_Bcast`,
/// `MPI_Allgatherv`, `MPI_Barrier`; `abort` ends every rank (`MPI_Abort`).
///
/// MPI is initialised with `MPI_THREAD_FUNNELED`: only the thread that called `start` calls MPI
/// (the training loop's thread; the kernels' worker threads never do).
public final class MPICommunicator: Collective {
    public let rank: Int
    public let size: Int
    private var finished = false

    #if MPI
    private var pending: [MPIRequest] = []

    private init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    /// Initialises MPI (once per process).
    public static func start() throws -> MPICommunicator {
        var provided: Int32 = 0
        try check(MPI_Init_thread(nil, nil, Int32(MPI_THREAD_FUNNELED), &provided), "MPI_Init_thread")
        var r: Int32 = 0, n: Int32 = 0
        try check(MPI_Comm_rank(ocelli_mpi_comm_world(), &r), "MPI_Comm_rank")
        try check(MPI_Comm_size(ocelli_mpi_comm_world(), &n), "MPI_Comm_size")
        return MPICommunicator(rank: Int(r), size: Int(n))
    }

    static func check(_ code: Int32, _ call: String) throws {
        guard code != MPI_SUCCESS else { return }
        var text = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        _ = MPI_Error_string(code, &text, &length)
        throw DataParallelError("\(call) failed: \(String(cString: text)) (MPI error \(code))")
    }

    /// MPI counts are 32-bit: longer buffers go in pieces.
    private static let piece = 1 << 30

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {
        try allReduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, size: 4, type: ocelli_mpi_float())
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {
        try allReduceInPlace(UnsafeMutableRawPointer(buffer.baseAddress), count: buffer.count, size: 8, type: ocelli_mpi_double())
    }

    /// `MPI_Allreduce` (sum, in place) of `count` values of `size` bytes, in pieces MPI can count.
    private func allReduceInPlace(_ base: UnsafeMutableRawPointer?, count: Int, size: Int, type: MPI_Datatype?) throws {
        guard let base else { return }
        var i = 0
        while i < count {
            let n = Swift.min(Self.piece, count - i)
            try Self.check(MPI_Allreduce(ocelli_mpi_in_place(), base + i * size, Int32(n), type, ocelli_mpi_sum(), ocelli_mpi_comm_world()),
                           "MPI_Allreduce")
            i += n
        }
    }

    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CollectiveRequest {
        var handles: [MPI_Request?] = []
        var i = 0
        while i < buffer.count {
            let n = Swift.min(Self.piece, buffer.count - i)
            var request: MPI_Request? = ocelli_mpi_request_null()
            try Self.check(MPI_Iallreduce(ocelli_mpi_in_place(), buffer.baseAddress! + i, Int32(n), ocelli_mpi_float(), ocelli_mpi_sum(),
                                          ocelli_mpi_comm_world(), &request), "MPI_Iallreduce")
            handles.append(request)
            i += n
        }
        let r = MPIRequest(handles)
        pending.append(r)
        return r
    }

    public func progress() {
        pending.removeAll { $0.test() }
    }

    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {
        var i = 0
        while i < buffer.count {
            let n = Swift.min(Self.piece, buffer.count - i)
            try Self.check(MPI_Bcast(buffer.baseAddress! + i, Int32(n), ocelli_mpi_float(), Int32(root), ocelli_mpi_comm_world()), "MPI_Bcast")
            i += n
        }
    }

    public func allGather(_ values: [Float]) throws -> [[Float]] {
        guard values.count < Int(Int32.max) else { throw DataParallelError("allGather: \(values.count) values are more than MPI can count") }
        var counts = [Int32](repeating: 0, count: size)
        var mine = Int32(values.count)
        try Self.check(MPI_Allgather(&mine, 1, ocelli_mpi_int(), &counts, 1, ocelli_mpi_int(), ocelli_mpi_comm_world()), "MPI_Allgather")
        var displacements = [Int32](repeating: 0, count: size)
        var total = 0
        for r in 0..<size {
            guard total + Int(counts[r]) < Int(Int32.max) else { throw DataParallelError("allGather: the ranks' values are more than MPI can count") }
            displacements[r] = Int32(total)
            total += Int(counts[r])
        }
        var all = [Float](repeating: 0, count: total)
        var send = values
        try Self.check(MPI_Allgatherv(&send, mine, ocelli_mpi_float(), &all, &counts, &displacements, ocelli_mpi_float(),
                                      ocelli_mpi_comm_world()), "MPI_Allgatherv")
        return (0..<size).map { r in Array(all[Int(displacements[r])..<(Int(displacements[r]) + Int(counts[r]))]) }
    }

    public func barrier() throws {
        try Self.check(MPI_Barrier(ocelli_mpi_comm_world()), "MPI_Barrier")
    }

    /// Ends MPI on this rank (every rank must call it, after their last collective).
    public func finish() {
        guard !finished else { return }
        finished = true
        for r in pending { try? r.wait() }
        pending = []
        MPI_Finalize()
    }

    /// Ends every rank of the job with `code` (`MPI_Abort`): after an error on one rank, the
    /// others would otherwise wait in their next collective for ever.
    public func abort(code: Int32) -> Never {
        MPI_Abort(ocelli_mpi_comm_world(), code)
        exit(code)
    }
    #else
    private init() { rank = 0; size = 1 }

    public static func start() throws -> MPICommunicator {
        throw DataParallelError("""
            this ocelli was built without MPI, and mpirun started \(MPILaunch.worldSize ?? 0) processes: each would train on its own \
            and write the same files. Build with MPI (apt install libopenmpi-dev openmpi-bin; swift build -c release --traits MPI), \
            or run ocelli without mpirun
            """)
    }

    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws {}
    public func allReduceSum(_ buffer: UnsafeMutableBufferPointer<Double>) throws {}
    public func startAllReduceSum(_ buffer: UnsafeMutableBufferPointer<Float>) throws -> CollectiveRequest { Done() }
    public func progress() {}
    public func broadcast(_ buffer: UnsafeMutableBufferPointer<Float>, root: Int) throws {}
    public func allGather(_ values: [Float]) throws -> [[Float]] { [values] }
    public func barrier() throws {}
    public func finish() {}
    public func abort(code: Int32) -> Never { exit(code) }
    private final class Done: CollectiveRequest { func wait() throws {} }
    #endif
}

#if MPI
/// Requests of one started all-reduce (one per 2^30 values).
final class MPIRequest: CollectiveRequest {
    private var handles: [MPI_Request?]
    private var done = false

    init(_ handles: [MPI_Request?]) { self.handles = handles }

    /// True once every part has finished (MPI_Test lets them advance).
    func test() -> Bool {
        if done { return true }
        var all = true
        for i in handles.indices {
            var flag: Int32 = 0
            _ = MPI_Test(&handles[i], &flag, ocelli_mpi_status_ignore())
            if flag == 0 { all = false }
        }
        done = all
        return all
    }

    func wait() throws {
        if done { return }
        for i in handles.indices {
            try MPICommunicator.check(MPI_Wait(&handles[i], ocelli_mpi_status_ignore()), "MPI_Wait")
        }
        done = true
    }
}
#endif
