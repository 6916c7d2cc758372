import Foundation
import OcelliTensor

extension Model {
    /// Parameter names as stored in weight files: "layer_name/param_name".
    var namedParameters: [(String, Parameter)] {
        layers.flatMap { l in l.parameters.map { ("\(l.name)/\($0.name)", $0) } }
    }

    /// Saves every parameter (moving statistics included) as safetensors, atomically.
    public func saveWeights(to path: String) throws {
        let data = try SafeTensors.encode(namedWeights(), metadata: ["format": "ocelli", "model": name])
        try writeAtomically(data, to: path)
    }

    /// Loads weights saved by `saveWeights`; every name and shape must match.
    public func loadWeights(from path: String) throws {
        _ = try loadWeights(from: path, allowingPrefix: nil)
    }

    /// Loads the weights; tensors whose names start with `prefix` are not weights and are
    /// returned for the caller (the optimizer's state).
    func loadWeights(from path: String, allowingPrefix prefix: String?) throws -> [String: Tensor] {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: path)) } catch {
            throw FileFormatError(path, "cannot read the file: \(error.reason)")
        }
        var tensors = try SafeTensors.decode(data, path: path)
        var others: [String: Tensor] = [:]
        if let prefix {
            for (k, v) in tensors where k.hasPrefix(prefix) { others[k] = v; tensors[k] = nil }
        }
        try assignWeights(tensors, path: path)
        return others
    }

    /// Every parameter (moving statistics included) by the name weight files store it under
    /// ("layer/param"), detached: what `saveWeights` writes, for a trainer's own checkpoints.
    public func namedWeights() -> [(String, Tensor)] {
        namedParameters.map { ($0.0, $0.1.value.detached()) }
    }

    /// Puts back what `namedWeights()` gave: every name and shape must match, or nothing is
    /// assigned and the error names `path`.
    public func assignWeights(_ tensors: [String: Tensor], path: String) throws {
        let named = namedParameters
        for (name, p) in named {
            guard let t = tensors[name] else { throw FileFormatError(path, "has no tensor '\(name)' (the model expects \(named.count) tensors)") }
            guard t.shape == p.shape else { throw FileFormatError(path, "tensor '\(name)' has shape \(t.shape), the model expects \(p.shape)") }
        }
        let extra = Set(tensors.keys).subtracting(named.map(\.0))
        if !extra.isEmpty { throw FileFormatError(path, "has tensors the model does not: \(extra.sorted().joined(separator: ", "))") }
        for (name, p) in named { p.assign(tensors[name]!) }
    }

    // MARK: Architecture

    /// The architecture as JSON (Keras-like class names and configs), enough to rebuild the model
    /// without the code that made it.
    public func architectureJSON() throws -> Data { try architectureJSON(saveID: nil) }

    /// The architecture; with `saveID`, also the id of the weights saved with it (`save(to:)`).
    func architectureJSON(saveID: String?) throws -> Data {
        var layerEntries: [JSONValue] = []
        for n in nodes {
            let l = n.layer!
            var cfg = l.config
            cfg["name"] = .string(l.name)
            cfg["trainable"] = .bool(l.trainable)
            if let r = l.activityRegularizer { cfg["activity_regularizer"] = r.keras }
            layerEntries.append(.object(["class_name": .string(l.typeName), "config": .object(cfg),
                                         "inbound": .array(n.inputs.map { .string($0.name) })]))
        }
        var doc: [String: JSONValue] = [
            "class_name": .string(self is Sequential ? "Sequential" : "Functional"),
            "format": .string("ocelli-model-1"),
            "config": .object([
                "name": .string(name),
                "inputs": .array(inputs.map { .object(["name": .string($0.name), "shape": .ints($0.shape)]) }),
                "layers": .array(layerEntries),
                "outputs": .array(outputs.map { .string($0.name) }),
            ]),
        ]
        if let compileConfig { doc["compile_config"] = compileConfig }
        if !metadata.isEmpty { doc["metadata"] = .object(metadata.mapValues { .string($0) }) }
        if let saveID { doc["weights"] = .object(["file": .string(Model.weightsFile), "save_id": .string(saveID)]) }
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(JSONValue.object(doc))
    }

    /// Rebuilds a model from `architectureJSON()` (fresh weights: load them afterwards).
    public static func fromArchitecture(_ data: Data, path: String = "<architecture>") throws -> Model {
        let parsed: JSONValue
        do { parsed = try JSONDecoder().decode(JSONValue.self, from: data) } catch {
            throw FileFormatError(path, "not valid JSON: \(jsonErrorPosition(error))")
        }
        if case .object(let top) = parsed, let format = top["format"]?.string, format != "ocelli-model-1" {
            throw FileFormatError(path, "format '\(format)' is not one this version of Ocelli reads (ocelli-model-1): written by a newer Ocelli?")
        }
        guard case .object(let o) = parsed,
              case .object(let cfg)? = o["config"], case .array(let ins)? = cfg["inputs"],
              case .array(let ls)? = cfg["layers"], case .array(let outs)? = cfg["outputs"] else {
            throw FileFormatError(path, "not an Ocelli architecture file (needs config.inputs, config.layers, config.outputs)")
        }
        var tensors: [String: SymbolicTensor] = [:]
        var inputTensors: [SymbolicTensor] = []
        for i in ins {
            guard case .object(let io) = i, let name = io["name"]?.string, let shape = io["shape"]?.intArray else {
                throw FileFormatError(path, "malformed input entry \(i)")
            }
            guard !shape.isEmpty, shape.count <= 8, shape.allSatisfy({ (1...LayerConfig.sizeLimit).contains($0) }),
                  shape.reduce(1, { $0 <= Int(Int32.max) / $1 ? $0 * $1 : Int.max }) <= Int(Int32.max) else {
                throw FileFormatError(path, "input '\(name)' has shape \(shape); it needs 1 to 8 dimensions, each between 1 and \(LayerConfig.sizeLimit), and at most \(Int32.max) values")
            }
            guard tensors[name] == nil else { throw FileFormatError(path, "input name '\(name)' is used twice: names must be unique") }
            let t = Input(shape: shape, name: name)
            tensors[name] = t; inputTensors.append(t)
        }
        for (index, entry) in ls.enumerated() {
            guard case .object(let e) = entry, let cls = e["class_name"]?.string, case .object(let c)? = e["config"],
                  case .array(let inbound)? = e["inbound"] else {
                throw FileFormatError(path, "layer \(index) is malformed")
            }
            let layer = try LayerRegistry.layer(from: LayerConfig(c, className: cls, path: path, index: index))
            let args = try inbound.map { v -> SymbolicTensor in
                guard let n = v.string, let t = tensors[n] else { throw FileFormatError(path, "layer \(index) (\(cls)) reads unknown tensor \(v)") }
                return t
            }
            guard tensors[layer.name] == nil else {
                throw FileFormatError(path, "layer \(index) (\(cls)) is named '\(layer.name)' like an earlier layer or input: names must be unique (weights are stored by layer name)")
            }
            do { tensors[layer.name] = try layer.apply(args) } catch {
                throw FileFormatError(path, "layer \(index) (\(cls) '\(layer.name)'): \(error)")
            }
        }
        let outTensors = try outs.map { v -> SymbolicTensor in
            guard let n = v.string, let t = tensors[n] else { throw FileFormatError(path, "unknown output \(v)") }
            return t
        }
        let name = cfg["name"]?.string ?? "model"
        var metadata: [String: String] = [:]
        if let m = o["metadata"], m != .null {
            guard case .object(let entries) = m else { throw FileFormatError(path, "metadata must be an object of strings") }
            for (k, v) in entries {
                guard let s = v.string else { throw FileFormatError(path, "metadata '\(k)' must be a string, got \(v)") }
                metadata[k] = s
            }
        }
        let model: Model
        if o["class_name"]?.string == "Sequential", inputTensors.count == 1 {
            let seq = Sequential(inputShape: inputTensors[0].shape, name: name)
            seq.adopt(inputs: inputTensors, outputs: outTensors)
            model = seq
        } else {
            model = Model(inputs: inputTensors, outputs: outTensors, name: name)
        }
        model.metadata = metadata
        return model
    }

    /// Saves the architecture and compile configuration (`model.json`) and the weights with the
    /// optimizer's state (`model.safetensors`) in `directory`, so that `Model.load` gives back a
    /// model that continues training as this one would (Keras' `model.save`).
    ///
    /// The two files are one unit: a process killed at any moment, or a full disk, leaves either
    /// the old model or the new one loadable. The weights go first to a pending file named by a
    /// save id, then `model.json` (which records the id) replaces the old one — the moment the
    /// new model exists — and last the pending file becomes `model.safetensors`. `load` finds the
    /// weights of the id it reads in either place.
    public func save(to directory: String) throws {
        let id = String(format: "%016llx", UInt64.random(in: 1...UInt64.max))
        let arch = try architectureJSON(saveID: id)
        let tensors = namedWeights() + optimizerStateTensors()
        let data = try SafeTensors.encode(tensors, metadata: ["format": "ocelli", "model": name, Model.saveIDKey: id])
        let weights = (directory as NSString).appendingPathComponent(Model.weightsFile)
        let pending = Model.pendingWeightsPath(directory, id: id)
        let json = (directory as NSString).appendingPathComponent("model.json")
        try createFolder(URL(fileURLWithPath: directory), errorPath: json)
        do {
            try writeAtomically(data, to: pending)
            do { try writeAtomically(arch, to: json) } catch { unlink(pending); throw error }
        } catch let error as FileFormatError {
            // The reason, said of the model rather than of the pending file; nothing was replaced.
            let reason = error.description.components(separatedBy: ": cannot write the file: ").last ?? error.description
            let before = FileManager.default.fileExists(atPath: json) ? " (the model saved there before is unchanged)" : ""
            throw FileFormatError(directory, "cannot save the model: \(reason)\(before)")
        }
        // Committed: the rest only tidies up (a failure here leaves a model that loads).
        if rename(pending, weights) != 0 {
            throw FileFormatError(weights, "the model was saved, but its weights stay in \(pending): cannot rename it (\(String(cString: strerror(errno))))")
        }
        Model.removeStalePendingWeights(in: directory)
    }

    static let weightsFile = "model.safetensors"
    static let saveIDKey = "ocelli_save_id"

    /// Where `save` puts the weights of save `id` until `model.json` names it.
    static func pendingWeightsPath(_ directory: String, id: String) -> String {
        (directory as NSString).appendingPathComponent("\(weightsFile).\(id).pending")
    }

    /// Pending weights of saves that were interrupted before they committed (or whose last rename
    /// failed and has since been superseded), and the temporary files of writes that were killed:
    /// never the files of the committed model.
    static func removeStalePendingWeights(in directory: String) {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return }
        for n in names where (n.hasPrefix(weightsFile + ".") && n.hasSuffix(".pending"))
            || ((n.hasPrefix("." + weightsFile + ".") || n.hasPrefix(".model.json.")) && n.contains(".tmp-")) {
            unlink((directory as NSString).appendingPathComponent(n))
        }
    }

    /// Loads a model saved with `save(to:)`. With `compile` (the default) the optimizer (with its
    /// state), loss and metrics come back too, as Keras' `load_model`; a loss or optimizer written
    /// outside the library must be registered (`LossRegistry`, `OptimizerRegistry`) first. A model
    /// saved uncompiled, or with a loss that cannot be saved, loads uncompiled.
    public static func load(from directory: String, compile: Bool = true) throws -> Model {
        let archPath = (directory as NSString).appendingPathComponent("model.json")
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: archPath)) } catch {
            throw FileFormatError(archPath, "cannot read the file: \(error.reason)")
        }
        let m = try fromArchitecture(data, path: archPath)
        let doc = try? JSONDecoder().decode(JSONValue.self, from: data)
        var weightsPath = (directory as NSString).appendingPathComponent(weightsFile)
        // A save interrupted after model.json was written: its weights are still pending.
        if case .object(let o)? = doc, let id = o["weights"]?.objectValue?["save_id"]?.string,
           id.allSatisfy(\.isHexDigit), SafeTensors.metadata(atPath: weightsPath)?[saveIDKey] != id {
            let pending = pendingWeightsPath(directory, id: id)
            if FileManager.default.fileExists(atPath: pending) { weightsPath = pending }
        }
        let tensors = try m.loadWeights(from: weightsPath, allowingPrefix: Model.optimizerPrefix)
        if compile, case .object(let o)? = doc, let config = o["compile_config"], config != .null {
            try m.restoreCompileConfig(config, optimizerState: tensors, path: archPath, weightsPath: weightsPath)
        }
        return m
    }
}

extension Model {
    func adopt(inputs: [SymbolicTensor], outputs: [SymbolicTensor]) {
        replaceGraph(inputs: inputs, outputs: outputs)
    }
}
