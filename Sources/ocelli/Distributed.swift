import ArgumentParser
import Foundation
import Ocelli
import OcelliMPI

/// Data-parallel runs: `mpirun -np N ocelli train …` (or `… mnist`). Each process finds its rank
/// from MPI; rank 0 prints, validates and writes files; the others train their share quietly.
/// Without mpirun nothing changes.
enum Distributed {
    private(set) static var communicator: MPICommunicator?
    private(set) static var dataParallel: DataParallel?

    /// This process's share of a data-parallel run, nil when it was not started by mpirun (or
    /// by mpirun with one process). Throws when mpirun started several and this build has no MPI.
    static func setUp() throws -> DataParallel? {
        if let dataParallel { return dataParallel }
        guard let n = MPILaunch.worldSize, n > 1 else { return nil }
        let c = try MPICommunicator.start()
        communicator = c
        let dp = DataParallel(c)
        if let b = ProcessInfo.processInfo.environment["OCELLI_BUCKET_MB"].flatMap(Double.init), b > 0, b <= 4096 {
            dp.bucketBytes = Int(b * 1_048_576)
        }
        if ProcessInfo.processInfo.environment["OCELLI_OVERLAP"] == "0" { dp.overlap = false }
        dataParallel = dp
        return dp
    }

    static var isPrimary: Bool { dataParallel?.isPrimary ?? true }

    /// The JSON fields every data-parallel command adds: ranks, and the all-reduce's share.
    static func jsonFields(stepSeconds: Double? = nil) -> [String: Any] {
        guard let dp = dataParallel else { return ["ranks": 1] }
        var f: [String: Any] = ["ranks": dp.size, "allreduce_seconds": dp.allReduceSeconds,
                                "allreduce_bytes_per_update": dp.bytesPerUpdate, "updates": dp.updates]
        if let stepSeconds { f["allreduce_share"] = stepSeconds > 0 ? dp.allReduceSeconds / stepSeconds : 0 }
        return f
    }

    /// After the command: MPI ends normally on every rank; after an error on one rank, the whole
    /// job ends (the others would wait in their next collective for ever).
    static func end(error: Error?) {
        guard let c = communicator else { return }
        if let error {
            if let code = error as? ExitCode {
                // A coordinated stop (Ctrl-C: every rank stopped after the same iteration).
                if code == .success || code == Interruption.exitCode { c.finish(); return }
            }
            StandardError.write("error on rank \(c.rank) of \(c.size): \(OcelliCommand.message(for: error))\n")
            c.abort(code: 1)
        }
        c.finish()
    }
}
