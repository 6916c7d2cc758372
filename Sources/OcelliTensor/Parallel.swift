import COcelliKernels
import Dispatch
import Foundation

/// How many threads Ocelli's kernels use, and the parallel-for they share.
///
/// The default is the `OCELLI_NUM_THREADS` environment variable, else the number of active cores.
/// Kernels split work so that every output element is computed by one thread in a fixed order:
/// the same seed and thread count give bitwise-identical results.
public enum Parallel {
    private final class Settings: @unchecked Sendable {
        let lock = NSLock()
        var threads: Int = {
            // A value that is not a count from 1 to 1024 is ignored, with a warning.
            if let s = ProcessInfo.processInfo.environment["OCELLI_NUM_THREADS"] {
                if let n = Int(s), (1...1_024).contains(n) { return n }
                StandardError.write("warning: OCELLI_NUM_THREADS=\(s) is not a thread count from 1 to 1024; using the number of cores\n")
            }
            return Swift.max(1, ProcessInfo.processInfo.activeProcessorCount)
        }()
    }
    private static let settings = Settings()

    /// The number of threads kernels split their work over (at least 1). Setting it changes the
    /// process-wide default; `withThreadCount` changes it for a block only.
    public static var threadCount: Int {
        get {
            if let n = KernelScope.current.threads { return n }
            settings.lock.lock(); defer { settings.lock.unlock() }; return settings.threads
        }
        set {
            precondition(newValue >= 1, "Parallel.threadCount must be at least 1, got \(newValue)")
            settings.lock.lock(); settings.threads = newValue; settings.lock.unlock()
        }
    }

    /// Runs `body` with `threadCount` set to `n` on this thread or task (not in code running
    /// concurrently elsewhere).
    public static func withThreadCount<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        precondition(n >= 1, "Parallel.withThreadCount: the count must be at least 1, got \(n)")
        return try KernelScope.with({ $0.threads = n }, body)
    }

    /// Calls `body(chunk)` for `chunk` in `0..<chunks`, spread over the threads. The kernel
    /// threads see the caller's `KernelScope`.
    @inline(__always)
    static func run(_ chunks: Int, _ body: (Int) -> Void) {
        if chunks <= 0 { return }
        if chunks == 1 { body(0); return }
        let scope = KernelScope.current
        withoutActuallyEscaping(body) { body in
            if scope == KernelScope() {
                ThreadPool.shared.run(chunks, body)
            } else {
                ThreadPool.shared.run(chunks) { i in scope.apply { body(i) } }
            }
        }
    }

    /// Splits `0..<count` into at most `threadCount` contiguous ranges of at least `minimumChunk`
    /// elements (a multiple of `alignment`), and runs them in parallel.
    @inline(__always)
    static func forRanges(_ count: Int, minimumChunk: Int = 1, alignment: Int = 1,
                          _ body: (Range<Int>) -> Void) {
        if count <= 0 { return }
        let byWork = Swift.max(1, count / Swift.max(1, minimumChunk))
        let parts = Swift.min(threadCount, byWork)
        if parts <= 1 { body(0..<count); return }
        var chunk = (count + parts - 1) / parts
        chunk = (chunk + alignment - 1) / alignment * alignment
        let n = (count + chunk - 1) / chunk
        run(n) { i in
            let lo = i * chunk
            body(lo..<Swift.min(count, lo + chunk))
        }
    }
}

/// Kernel settings for a block of code (`Parallel.withThreadCount`, `GEMM.withBackend`,
/// `GEMM.withPortableKernel`): task-local, so concurrent work elsewhere keeps its own, and carried
/// to the kernel threads that work for the block. Nil fields take the process-wide defaults.
struct KernelScope: Sendable, Equatable {
    var threads: Int?
    var backend: GEMM.Backend?
    var portable: Bool?

    @TaskLocal static var current = KernelScope()

    /// Runs `body` with the current scope changed by `change`.
    static func with<R>(_ change: (inout KernelScope) -> Void, _ body: () throws -> R) rethrows -> R {
        var scope = current
        change(&scope)
        return try scope.apply(body)
    }

    /// Runs `body` in this scope on the calling thread (the C kernels read the portable switch
    /// from a thread-local of their own).
    func apply<R>(_ body: () throws -> R) rethrows -> R {
        try KernelScope.$current.withValue(self) {
            guard let portable else { return try body() }
            let saved = ocelli_thread_portable()
            ocelli_set_thread_portable(portable ? 1 : 0)
            defer { ocelli_set_thread_portable(saved) }
            return try body()
        }
    }
}

/// Wraps a value that is safe to share between threads because they write disjoint parts of it
/// (by design, not checked): kernel threads, data-set workers, a prefetch thread.
public struct UnsafeSendable<T>: @unchecked Sendable {
    public let value: T
    public init(_ value: T) { self.value = value }
}

/// Remembers the first error thrown by any worker thread.
public final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: Error?
    public init() {}
    public var error: Error? { lock.lock(); defer { lock.unlock() }; return stored }
    public var isSet: Bool { error != nil }
    public func set(_ e: Error) { lock.lock(); if stored == nil { stored = e }; lock.unlock() }
}

/// A small pool of persistent worker threads.
///
/// Between jobs a worker first spins for a short while (training runs many small parallel
/// regions back to back, and waking a sleeping thread takes tens of microseconds on a virtual
/// machine), then blocks on a condition variable. libdispatch's `concurrentPerform` workers spin in
/// `sched_yield` without limit; on a 2-core machine that took a quarter of the CPU from the
/// kernels. The calling thread takes chunks too, and a call made from inside a job (or while
/// another thread's job runs) simply runs serially on its caller.
final class ThreadPool: @unchecked Sendable {
    static let shared = ThreadPool()

    /// How long an idle worker, or a caller waiting for the last chunks, spins before sleeping.
    static let spinNanoseconds: UInt64 = 100_000

    private let condition = NSCondition()
    private var job: ((Int) -> Void)?
    private var chunks = 0, next = 0, remaining = 0
    private var generation = 0
    private var workerCount = 0
    /// Mirrors of `generation` and `remaining` that spinning threads read without the lock.
    private let published = UnsafeMutablePointer<Int>.allocate(capacity: 2)

    init() { published.initialize(repeating: 0, count: 2) }

    private func ensureWorkers(_ n: Int) {
        // Called with the lock held.
        while workerCount < n {
            workerCount += 1
            let t = Thread { [unowned self] in self.workerLoop() }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    /// Spins until `done()` holds, at most `spinNanoseconds`. Returns whether it does.
    @inline(__always)
    private func spin(until done: () -> Bool) -> Bool {
        let start = DispatchTime.now().uptimeNanoseconds
        var spins = 0
        while !done() {
            ocelli_cpu_relax()
            spins &+= 1
            if spins & 127 == 0 && DispatchTime.now().uptimeNanoseconds &- start > ThreadPool.spinNanoseconds {
                return false
            }
        }
        return true
    }

    func run(_ chunks: Int, _ body: @escaping (Int) -> Void) {
        condition.lock()
        if job != nil {  // nested or concurrent use: run here, serially
            condition.unlock()
            for i in 0..<chunks { body(i) }
            return
        }
        ensureWorkers(Swift.min(Parallel.threadCount, chunks) - 1)
        job = body
        self.chunks = chunks; next = 0; remaining = chunks
        ocelli_atomic_store(published + 1, chunks)
        generation &+= 1
        ocelli_atomic_store(published, generation)
        condition.broadcast()
        condition.unlock()
        work()
        // The other threads' last chunks: spin for them first, then sleep.
        _ = spin { ocelli_atomic_load(self.published + 1) == 0 }
        condition.lock()
        while remaining > 0 { condition.wait() }
        job = nil
        condition.unlock()
    }

    private func grab() -> (Int, (Int) -> Void)? {
        condition.lock(); defer { condition.unlock() }
        guard let f = job, next < chunks else { return nil }
        let i = next
        next += 1
        return (i, f)
    }

    /// Takes chunks until none is left. The closure reference is dropped before each chunk is
    /// reported finished, so the job never outlives `run` (withoutActuallyEscaping checks it).
    private func work() {
        while runOneChunk() { finish() }
    }

    /// Runs one chunk; returning releases this frame's reference to the job closure.
    @inline(never)
    private func runOneChunk() -> Bool {
        guard let (i, f) = grab() else { return false }
        f(i)
        return true
    }

    private func finish() {
        condition.lock()
        remaining -= 1
        ocelli_atomic_store(published + 1, remaining)
        if remaining == 0 { condition.broadcast() }
        condition.unlock()
    }

    private func workerLoop() {
        var seen = 0
        while true {
            let spotted = spin { ocelli_atomic_load(self.published) != seen }
            condition.lock()
            if generation != seen && job == nil {
                // That job ended before this worker got to it: wait for the next one, spinning again.
                seen = generation
                condition.unlock()
                continue
            }
            if !spotted {
                while generation == seen || job == nil {
                    condition.wait()
                    if generation != seen && job == nil { seen = generation }
                }
            }
            seen = generation
            condition.unlock()
            work()
        }
    }
}
