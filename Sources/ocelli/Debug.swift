import ArgumentParser
import Foundation
import Ocelli

/// `ocelli debug …`: commands for the test suite, not shown in the help.
struct Debug: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Commands used by the test suite.", shouldDisplay: false,
        subcommands: [SaveLoop.self])
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
