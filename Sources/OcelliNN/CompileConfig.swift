import Foundation
import OcelliTensor

// A saved model's compile configuration (Keras' `compile_config`): the optimizer with its step
// count and state, the loss and the metrics, so `Model.load` gives back a model ready to
// continue training.
extension Model {
    /// Names of the optimizer's state tensors in model.safetensors: "optimizer/<layer>/<param>",
    /// each [slots, elements].
    static let optimizerPrefix = "optimizer/"

    /// The compile configuration as model.json stores it; nil for an uncompiled model.
    var compileConfig: JSONValue? {
        guard let optimizer, let loss else { return nil }
        return .object([
            "optimizer": optimizer.savedConfig.json,
            // A loss that cannot be saved is written as null: the loaded model is uncompiled.
            "loss": loss.savedConfig?.json ?? .null,
            "metrics": .array(metrics.map(\.savedConfig)),
        ])
    }

    /// The optimizer's per-parameter state, named after the parameters.
    func optimizerStateTensors() -> [(String, Tensor)] {
        guard let optimizer else { return [] }
        let slotCount = optimizer.slotInitialValues.count
        return namedParameters.compactMap { name, p in
            guard slotCount > 0, let s = optimizer.state.slots[ObjectIdentifier(p)], s.count == slotCount * p.value.count else { return nil }
            return (Model.optimizerPrefix + name, Tensor(shape: [slotCount, p.value.count], scalars: s))
        }
    }

    func restoreCompileConfig(_ config: JSONValue, optimizerState: [String: Tensor], path: String, weightsPath: String) throws {
        func fail(_ why: String) -> FileFormatError { FileFormatError(path, "compile_config: \(why)") }
        guard case .object(let c) = config else { throw fail("must be an object") }
        guard let lossJSON = c["loss"], lossJSON != .null else { return }  // saved with a loss that cannot be saved
        guard let savedLoss = SavedObject(json: lossJSON), let savedOptimizer = c["optimizer"].flatMap(SavedObject.init(json:)) else {
            throw fail("needs optimizer and loss as {class_name, config}")
        }
        let restoredLoss: any Loss
        let restoredOptimizer: any Optimizer
        do {
            guard let l = try LossRegistry.make(savedLoss) else {
                throw fail("unknown loss '\(savedLoss.className)': register it with LossRegistry.register before loading, or load with compile: false")
            }
            guard let o = try OptimizerRegistry.make(savedOptimizer) else {
                throw fail("unknown optimizer '\(savedOptimizer.className)': register it with OptimizerRegistry.register before loading, or load with compile: false")
            }
            restoredLoss = l; restoredOptimizer = o
        } catch let e as SavedObjectError { throw fail(e.description) }
        var restoredMetrics: [Metric] = []
        if case .array(let ms)? = c["metrics"] {
            for m in ms {
                guard let metric = Metric(saved: m) else { throw fail("unknown metric \(m)") }
                restoredMetrics.append(metric)
            }
        }
        // The state buffers, checked against the parameters they belong to.
        let slotCount = restoredOptimizer.slotInitialValues.count
        for (name, p) in namedParameters {
            guard let t = optimizerState[Model.optimizerPrefix + name] else { continue }
            guard t.shape == [slotCount, p.value.count] else {
                throw FileFormatError(weightsPath, "optimizer state '\(Model.optimizerPrefix + name)' has shape \(t.shape), \(restoredOptimizer.name) keeps [\(slotCount), \(p.value.count)] for this parameter")
            }
            restoredOptimizer.state.slots[ObjectIdentifier(p)] = t.scalars
        }
        optimizer = restoredOptimizer
        trainSteps = restoredOptimizer.iterations  // fit's per-step seeds continue from here
        loss = restoredLoss
        metrics = restoredMetrics
    }
}

extension Model {
    /// The compiled optimizer's per-parameter state ("optimizer/<layer>/<param>", [slots,
    /// elements]), for a trainer's own checkpoints (`Model.save` writes it too).
    public func optimizerState() -> [(String, Tensor)] { optimizerStateTensors() }

    /// Puts back state that `optimizerState()` returned into the compiled optimizer, each tensor
    /// checked against its parameter; `path` names the file in errors.
    public func restoreOptimizerState(_ tensors: [String: Tensor], path: String) throws {
        guard let optimizer else { throw TrainingError("\(name): call compile(optimizer:loss:metrics:) before restoring the optimizer's state") }
        let slotCount = optimizer.slotInitialValues.count
        for (name, p) in namedParameters {
            guard let t = tensors[Model.optimizerPrefix + name] else { continue }
            guard t.shape == [slotCount, p.value.count], t.scalars.allSatisfy(\.isFinite) else {
                throw FileFormatError(path, "optimizer state '\(Model.optimizerPrefix + name)' has shape \(t.shape) or values that are not finite; \(optimizer.name) keeps [\(slotCount), \(p.value.count)] finite values")
            }
            optimizer.state.slots[ObjectIdentifier(p)] = t.scalars
        }
    }
}
