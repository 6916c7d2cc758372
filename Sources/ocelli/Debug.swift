import ArgumentParser
import Foundation
import Ocelli

/// `ocelli debug …`: commands for the test suite, not shown in the help.
struct Debug: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commands used by the test suite.", shouldDisplay: false,
        subcommands: [SaveLoop.self, CompareWeights.self])
}

/// Saves a model into one folder over and over, each save different from the last, so that a
/// test can kill the process at random moments of a save and check that what is left loads as
/// one whole model: the save numbered k has every weight and optimizer value equal to k and is
/// named "round-k", so a model.json of one save beside the weights of another shows.
struct SaveLoop: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "save-loop", abstract: "Save a model repeatedly (the kill test).")

    @Argument(help: "The folder to save into.") var folder: String
    @Option(help: "Number of saves.") var rounds: Int = 1_000_000
    @Option(help: "Units of the two hidden layers (the model's size).") var units: Int = 512

    func validate() throws {
        guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        guard (1...4096).contains(units) else { throw ValidationError("--units must be between 1 and 4096") }
    }

    func run() throws {
        let model = Sequential(inputShape: [256], name: "round-0")
        model.add(Dense(units, activation: .relu))
        model.add(Dense(units, activation: .relu))
        model.add(Dense(10))
        model.compile(optimizer: .adam(), loss: KerasLoss.meanSquaredError)
        // One step creates Adam's state, so the saves carry optimizer tensors too.
        _ = try model.fit(x: Tensor.zeros([1, 256]), y: Tensor.zeros([1, 10]), batchSize: 1, epochs: 1, verbose: .silent)
        guard !model.optimizerState().isEmpty else { throw ValidationError("the optimizer has no state to save") }
        for k in 1...rounds {
            model.name = "round-\(k)"
            for layer in model.layers { for p in layer.parameters { p.assign(Tensor.full(p.shape, Float(k))) } }
            try model.restoreOptimizerState(Dictionary(uniqueKeysWithValues: model.optimizerState().map {
                ($0.0, Tensor.full($0.1.shape, Float(k)))
            }), path: folder)
            try model.save(to: folder)
            print("saved \(k)")
            fflush(stdout)
        }
    }
}

/// Compares the tensors of two safetensors files (a model folder's model.safetensors, a trainer's
/// .safetensors): how many values differ, by how much at most. The data-parallel check (one
/// process against N) uses it.
struct CompareWeights: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "compare-weights",
                                                    abstract: "Largest difference between the tensors of two safetensors files (JSON).")

    @Argument(help: "A .safetensors file or a saved model's folder.") var first: String
    @Argument(help: "The other.") var second: String
    @Option(help: "Exit with status 1 when a difference is larger than this.") var tolerance: Double?

    func run() throws {
        func load(_ path: String) throws -> [String: Tensor] {
            var isFolder: ObjCBool = false
            let file = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
                ? (path as NSString).appendingPathComponent("model.safetensors") : path
            do {
                return try SafeTensors.decode(Data(try FileReading.bytes(atPath: file)), path: file)
            } catch { throw failure("\(file): \(error)") }
        }
        let a = try load(first), b = try load(second)
        guard Set(a.keys) == Set(b.keys) else {
            throw failure("the files hold different tensors: \(Set(a.keys).symmetricDifference(b.keys).sorted().prefix(5).joined(separator: ", "))")
        }
        var largest = 0.0, largestRelative = 0.0, differing = 0, total = 0, worst = ""
        for k in a.keys.sorted() {
            let x = a[k]!, y = b[k]!
            guard x.shape == y.shape else { throw failure("\(k): shape \(x.shape) against \(y.shape)") }
            for (u, v) in zip(x.scalars, y.scalars) {
                total += 1
                guard u.bitPattern != v.bitPattern else { continue }
                differing += 1
                let d = Double(abs(u - v))
                if !(d <= largest) { largest = d; worst = k }
                largestRelative = max(largestRelative, d / max(Double(abs(u)), Double(abs(v)), 1e-12))
            }
        }
        let object: [String: Any] = ["tensors": a.count, "values": total, "differing_values": differing,
                                     "max_abs_difference": largest, "max_relative_difference": largestRelative, "worst_tensor": worst]
        print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
        if let tolerance, !(largest <= tolerance) { throw ExitCode(1) }
    }
}
