import Foundation
import OcelliTensor

extension Model {
    /// Parameter names as stored in weight files: "layer_name/param_name".
    var namedParameters: [(String, Parameter)] {
        layers.flatMap { l in l.parameters.map { ("\(l.name)/\($0.name)", $0) } }
    }

    /// Saves every parameter (moving statistics included) as safetensors, atomically.
    public func saveWeights(to path: String) throws {
        let data = try SafeTensors.encode(namedParameters.map { ($0.0, $0.1.value.detached()) },
                                          metadata: ["format": "ocelli", "model": name])
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
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw FileFormatError(path, "cannot read the file (\(error.localizedDescription))")
        }
        var tensors = try SafeTensors.decode(data, path: path)
        var others: [String: Tensor] = [:]
        if let prefix {
            for (k, v) in tensors where k.hasPrefix(prefix) { others[k] = v; tensors[k] = nil }
        }
        let named = namedParameters
        for (name, p) in named {
            guard let t = tensors[name] else { throw FileFormatError(path, "has no tensor '\(name)' (the model expects \(named.count) tensors)") }
            guard t.shape == p.shape else { throw FileFormatError(path, "tensor '\(name)' has shape \(t.shape), the model expects \(p.shape)") }
        }
        let extra = Set(tensors.keys).subtracting(named.map(\.0))
        if !extra.isEmpty { throw FileFormatError(path, "has tensors the model does not: \(extra.sorted().joined(separator: ", "))") }
        for (name, p) in named { p.assign(tensors[name]!) }
        return others
    }

    // MARK: Architecture

    /// The architecture as JSON (Keras-like class names and configs), enough to rebuild the model
    /// without the code that made it.
    public func architectureJSON() throws -> Data {
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
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try enc.encode(JSONValue.object(doc))
    }

    /// Rebuilds a model from `architectureJSON()` (fresh weights: load them afterwards).
    public static func fromArchitecture(_ data: Data, path: String = "<architecture>") throws -> Model {
        guard let doc = try? JSONDecoder().decode(JSONValue.self, from: data), case .object(let o) = doc,
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
        if o["class_name"]?.string == "Sequential", inputTensors.count == 1 {
            let seq = Sequential(inputShape: inputTensors[0].shape, name: name)
            seq.adopt(inputs: inputTensors, outputs: outTensors)
            return seq
        }
        return Model(inputs: inputTensors, outputs: outTensors, name: name)
    }

    /// Saves the architecture and compile configuration (`model.json`) and the weights with the
    /// optimizer's state (`model.safetensors`) in `directory`, so that `Model.load` gives back a
    /// model that continues training as this one would (Keras' `model.save`).
    public func save(to directory: String) throws {
        try writeAtomically(try architectureJSON(), to: (directory as NSString).appendingPathComponent("model.json"))
        var tensors = namedParameters.map { ($0.0, $0.1.value.detached()) }
        tensors += optimizerStateTensors()
        let data = try SafeTensors.encode(tensors, metadata: ["format": "ocelli", "model": name])
        try writeAtomically(data, to: (directory as NSString).appendingPathComponent("model.safetensors"))
    }

    /// Loads a model saved with `save(to:)`. With `compile` (the default) the optimizer (with its
    /// state), loss and metrics come back too, as Keras' `load_model`; a loss or optimizer written
    /// outside the library must be registered (`LossRegistry`, `OptimizerRegistry`) first. A model
    /// saved uncompiled, or with a loss that cannot be saved, loads uncompiled.
    public static func load(from directory: String, compile: Bool = true) throws -> Model {
        let archPath = (directory as NSString).appendingPathComponent("model.json")
        guard let data = FileManager.default.contents(atPath: archPath) else {
            throw FileFormatError(archPath, "cannot read the file (missing?)")
        }
        let m = try fromArchitecture(data, path: archPath)
        let weightsPath = (directory as NSString).appendingPathComponent("model.safetensors")
        let tensors = try m.loadWeights(from: weightsPath, allowingPrefix: Model.optimizerPrefix)
        if compile, let doc = try? JSONDecoder().decode(JSONValue.self, from: data), case .object(let o) = doc,
           let config = o["compile_config"], config != .null {
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
