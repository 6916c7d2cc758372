import Foundation
import OcelliTensor

/// A file that could not be read or written; the message names the file and what is wrong.
public struct FileFormatError: Error, CustomStringConvertible {
    public let description: String
    public init(_ path: String, _ message: String) { description = "\(path): \(message)" }
}

/// Writes `data` to `path` atomically (`AtomicFile`: a temporary file in the same folder, then
/// rename), creating the folder if missing, so a crash mid-write never leaves a half-written
/// checkpoint in place of a good one.
public func writeAtomically(_ data: Data, to path: String) throws {
    let url = URL(fileURLWithPath: path)
    try createFolder(url.deletingLastPathComponent(), errorPath: path)
    var failure: AtomicWriteFailure?
    data.withUnsafeBytes { raw in
        do throws(AtomicWriteFailure) { try AtomicFile.write(raw, to: path) } catch { failure = error }
    }
    if let failure { throw FileFormatError(path, "cannot write the file: \(failure.reason)") }
}

/// Throws now if files cannot be written into `directory` (created if missing): call it before
/// a long training run whose result will be saved there.
public func ensureWritableDirectory(_ directory: String) throws {
    let dir = URL(fileURLWithPath: directory)
    try createFolder(dir, errorPath: directory)
    let probe = dir.appendingPathComponent(".ocelli-write-test-\(ProcessInfo.processInfo.processIdentifier)")
    do {
        try Data().write(to: probe)
        try? FileManager.default.removeItem(at: probe)
    } catch {
        throw FileFormatError(directory, "cannot write into the folder: \(ioFailureReason(error))")
    }
}

/// The folder a file path lies in ("." for a bare file name).
public func folder(of path: String) -> String {
    let d = (path as NSString).deletingLastPathComponent
    return d.isEmpty ? "." : d
}

/// Creates `directory` and its parents if missing; the error names `path` (the folder itself or
/// a file to be written in it) and the reason.
private func createFolder(_ directory: URL, errorPath path: String) throws {
    do {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
        let what = path == directory.path ? "cannot create the folder" : "cannot create the folder \(directory.path)"
        throw FileFormatError(path, "\(what): \(folderFailureReason(directory.path, error))")
    }
}

/// Why a folder could not be created: an ancestor that is a file or not writable, else the
/// system's reason.
func folderFailureReason(_ directory: String, _ error: Error) -> String {
    var p = directory
    while !p.isEmpty && p != "/" {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: p, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { return "\(p) is a file, not a folder" }
            if access(p, W_OK) != 0 { return "\(p): \(String(cString: strerror(errno)))" }
            break
        }
        p = (p as NSString).deletingLastPathComponent
    }
    return ioFailureReason(error)
}

/// The operating system's reason for a failed file operation ("Permission denied", "No such
/// file or directory", "No space left on device") rather than Foundation's error dump.
func ioFailureReason(_ error: Error) -> String {
    let e = error as NSError
    if e.domain == NSPOSIXErrorDomain { return String(cString: strerror(Int32(e.code))) }
    if let u = e.userInfo[NSUnderlyingErrorKey] as? NSError, u.domain == NSPOSIXErrorDomain {
        return String(cString: strerror(Int32(u.code)))
    }
    return e.localizedDescription
}

/// The safetensors format: an 8-byte little-endian header length, a JSON header mapping names to
/// dtype, shape and byte offsets, then the raw little-endian data (readable by PyTorch, Keras, MLX).
public enum SafeTensors {
    public static func encode(_ tensors: [(String, Tensor)], metadata: [String: String] = [:]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        for (name, t) in tensors {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.count * 4]]
            offset += t.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }  // pad with spaces to align the data
        var data = Data()
        var n = UInt64(json.count).littleEndian
        withUnsafeBytes(of: &n) { data.append(contentsOf: $0) }
        data.append(json)
        for (_, t) in tensors {
            t.scalars.withUnsafeBufferPointer { p in
                for v in p { var b = v.bitPattern.littleEndian; withUnsafeBytes(of: &b) { data.append(contentsOf: $0) } }
            }
        }
        return data
    }

    public static func decode(_ data: Data, path: String) throws -> [String: Tensor] {
        guard data.count >= 8 else { throw FileFormatError(path, "too short for a safetensors file (\(data.count) bytes)") }
        let n = data.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        guard n <= UInt64(data.count - 8) else {
            throw FileFormatError(path, "header length \(n) exceeds the file size \(data.count)")
        }
        let headerData = data.subdata(in: 8..<(8 + Int(n)))
        guard let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any] else {
            throw FileFormatError(path, "the safetensors header is not a JSON object")
        }
        let base = 8 + Int(n)
        var out: [String: Tensor] = [:]
        for (name, v) in header where name != "__metadata__" {
            guard let d = v as? [String: Any], let dtype = d["dtype"] as? String, let shape = d["shape"] as? [Int],
                  let offs = d["data_offsets"] as? [Int], offs.count == 2 else {
                throw FileFormatError(path, "tensor '\(name)' has a malformed header entry")
            }
            guard dtype == "F32" else { throw FileFormatError(path, "tensor '\(name)' has dtype \(dtype); only F32 is supported") }
            let count = shape.reduce(1, *)
            guard offs[1] - offs[0] == count * 4, offs[0] >= 0, base + offs[1] <= data.count else {
                throw FileFormatError(path, "tensor '\(name)' of shape \(shape) has data offsets \(offs) that do not fit \(count * 4) bytes in a \(data.count)-byte file (truncated?)")
            }
            var scalars = [Float](repeating: 0, count: count)
            data.withUnsafeBytes { raw in
                for i in 0..<count {
                    scalars[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: base + offs[0] + 4 * i, as: UInt32.self)))
                }
            }
            out[name] = Tensor(shape: shape, scalars: scalars)
        }
        return out
    }
}

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

/// Maps the class names of architecture files to the layers that rebuild themselves from their
/// configuration (`ConfigurableLayer`): OcelliNN's layers (`builtInTypes`) and those registered
/// with `register` (OcelliDarknet's, through `DarknetLayers.register()`; your own).
public enum LayerRegistry {
    /// OcelliNN's layers by the class name their `typeName` writes.
    static let builtInTypes: [String: any ConfigurableLayer.Type] = [
        // Core, merging, reshaping
        "Dense": Dense.self, "Activation": ActivationLayer.self, "Add": Add.self, "Concatenate": Concatenate.self,
        "Multiply": Multiply.self, "Flatten": Flatten.self, "Reshape": Reshape.self, "UpSampling2D": UpSampling2D.self,
        // Activations
        "LeakyReLU": LeakyReLU.self, "PReLU": PReLU.self, "ELU": ELU.self, "ReLU": ReLU.self, "Softmax": Softmax.self,
        // Convolutions
        "Conv2D": Conv2D.self, "DepthwiseConv2D": DepthwiseConv2D.self, "SeparableConv2D": SeparableConv2D.self,
        "ChannelShuffle": ChannelShuffle.self, "Conv2DTranspose": Conv2DTranspose.self,
        "ZeroPadding2D": ZeroPadding2D.self, "Cropping2D": Cropping2D.self,
        // Pooling
        "MaxPooling2D": MaxPooling2D.self, "AveragePooling2D": AveragePooling2D.self,
        "GlobalAveragePooling2D": GlobalAveragePooling2D.self, "GlobalMaxPooling2D": GlobalMaxPooling2D.self,
        "LpPooling2D": LpPooling2D.self, "SpatialPyramidPooling": SpatialPyramidPooling.self,
        // Regularization
        "Dropout": Dropout.self, "SpatialDropout2D": SpatialDropout2D.self, "GaussianNoise": GaussianNoise.self,
        "GaussianDropout": GaussianDropout.self, "AlphaDropout": AlphaDropout.self,
        "ActivityRegularization": ActivityRegularization.self,
        // Normalization
        "BatchNormalization": BatchNormalization.self, "LayerNormalization": LayerNormalization.self,
        "GroupNormalization": GroupNormalization.self, "InstanceNormalization": InstanceNormalization.self,
        "WeightNormalization": WeightNormalization.self,
        // Heads
        "MarginSoftmax": MarginSoftmax.self,
    ]

    private final class Table: @unchecked Sendable {
        let lock = NSLock()
        var factories: [String: (LayerConfig) throws -> Layer] = builtInTypes.mapValues { type in { try type.init(config: $0) } }
    }
    private static let table = Table()

    /// Teaches `Model.load` a layer class defined outside OcelliNN: `type.init(config:)`
    /// rebuilds the layer from the `config` it wrote under `className` (its `typeName`).
    /// Registering a name again replaces the earlier entry.
    public static func register(_ className: String, type: any ConfigurableLayer.Type) {
        register(className) { try type.init(config: $0) }
    }

    /// Teaches `Model.load` a layer class through a factory that rebuilds the layer from the
    /// `config` it wrote under `className` (read `config["key"]` or its checked accessors).
    public static func register(_ className: String, factory: @escaping (LayerConfig) throws -> Layer) {
        table.lock.lock(); table.factories[className] = factory; table.lock.unlock()
    }

    static func factory(_ className: String) -> ((LayerConfig) throws -> Layer)? {
        table.lock.lock(); defer { table.lock.unlock() }
        return table.factories[className]
    }

    /// The layer an architecture file describes: its class rebuilt from the configuration, with
    /// the keys every layer has (`name`, `trainable`, `activity_regularizer`).
    public static func layer(from config: LayerConfig) throws -> Layer {
        let cls = config.className
        if cls == "Lambda" {
            throw FileFormatError(config.path, "layer \(config.index) is a Lambda: its closure is code, not data; rebuild this model in Swift and load only its weights")
        }
        guard let factory = factory(cls) else {
            let how = cls.hasPrefix("Darknet")
                ? "Darknet's layers load once `DarknetLayers.register()` (OcelliDarknet) has run: call it before `Model.load`"
                : "a layer of your own loads once registered with `LayerRegistry.register`"
            throw FileFormatError(config.path, "layer \(config.index): unknown layer class '\(cls)' (\(how))")
        }
        let layer: Layer
        do { layer = try factory(config) } catch let e as FileFormatError { throw e } catch { throw config.error("\(error)") }
        layer.name = try config.string("name", default: "")
        layer.trainable = try config.bool("trainable", default: true)
        layer.activityRegularizer = try config.regularizer("activity_regularizer")
        return layer
    }
}
