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
            let t = Input(shape: shape, name: name)
            tensors[name] = t; inputTensors.append(t)
        }
        for (index, entry) in ls.enumerated() {
            guard case .object(let e) = entry, let cls = e["class_name"]?.string, case .object(let c)? = e["config"],
                  case .array(let inbound)? = e["inbound"] else {
                throw FileFormatError(path, "layer \(index) is malformed")
            }
            let layer = try LayerRegistry.make(cls, config: c, path: path, index: index)
            layer.name = c["name"]?.string ?? ""
            layer.trainable = c["trainable"]?.bool ?? true
            layer.activityRegularizer = c["activity_regularizer"].flatMap { Regularizer(keras: $0) }
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

/// Maps Keras class names in architecture files back to layers.
public enum LayerRegistry {
    private final class Table: @unchecked Sendable {
        let lock = NSLock()
        var factories: [String: ([String: JSONValue]) throws -> Layer] = [:]
    }
    private static let table = Table()

    /// Teaches `Model.load` a layer class defined outside OcelliNN (OcelliDarknet's layers, your
    /// own): `factory` rebuilds the layer from the `config` it wrote.
    public static func register(_ className: String, factory: @escaping ([String: JSONValue]) throws -> Layer) {
        table.lock.lock(); table.factories[className] = factory; table.lock.unlock()
    }

    static func custom(_ className: String) -> (([String: JSONValue]) throws -> Layer)? {
        table.lock.lock(); defer { table.lock.unlock() }
        return table.factories[className]
    }

    static func make(_ cls: String, config c: [String: JSONValue], path: String, index: Int) throws -> Layer {
        func int(_ k: String, _ d: Int? = nil) throws -> Int {
            if let v = c[k]?.int { return v }
            if let d { return d }
            throw FileFormatError(path, "layer \(index) (\(cls)): missing integer '\(k)'")
        }
        func pair(_ k: String, _ d: (Int, Int)) throws -> (Int, Int) {
            guard let v = c[k] else { return d }
            if let a = v.intArray, a.count == 2 { return (a[0], a[1]) }
            if let i = v.int { return (i, i) }
            throw FileFormatError(path, "layer \(index) (\(cls)): '\(k)' must be an integer or a pair")
        }
        func act() throws -> Activation {
            let name = c["activation"]?.string ?? "linear"
            guard let a = Activation(kerasName: name) else { throw FileFormatError(path, "layer \(index) (\(cls)): unknown activation '\(name)'") }
            return a
        }
        func initializer(_ k: String, _ d: Initializer) throws -> Initializer {
            guard let v = c[k], v != .null else { return d }
            guard let i = Initializer(keras: v) else { throw FileFormatError(path, "layer \(index) (\(cls)): unknown initializer \(v)") }
            return i
        }
        func regularizer(_ k: String) -> Regularizer? { c[k].flatMap { Regularizer(keras: $0) } }
        func padding() throws -> Padding {
            do { return try paddingFrom(c["padding"], layer: "layer \(index) (\(cls))") } catch {
                throw FileFormatError(path, "\(error)")
            }
        }
        func float(_ k: String, _ d: Float) -> Float { c[k]?.double.map(Float.init) ?? d }
        switch cls {
        case "Dense":
            return Dense(units: try int("units"), activation: try act(), useBias: c["use_bias"]?.bool ?? true,
                         kernelInitializer: try initializer("kernel_initializer", .glorotUniform),
                         biasInitializer: try initializer("bias_initializer", .zeros),
                         kernelRegularizer: regularizer("kernel_regularizer"), biasRegularizer: regularizer("bias_regularizer"))
        case "Conv2D":
            return Conv2D(filters: try int("filters"), kernelSize: try pair("kernel_size", (1, 1)), strides: try pair("strides", (1, 1)),
                          padding: try padding(), dilationRate: try pair("dilation_rate", (1, 1)), groups: try int("groups", 1),
                          activation: try act(), useBias: c["use_bias"]?.bool ?? true,
                          kernelInitializer: try initializer("kernel_initializer", .glorotUniform),
                          biasInitializer: try initializer("bias_initializer", .zeros),
                          kernelRegularizer: regularizer("kernel_regularizer"), biasRegularizer: regularizer("bias_regularizer"))
        case "MaxPooling2D":
            return MaxPooling2D(poolSize: try pair("pool_size", (2, 2)), strides: try pair("strides", try pair("pool_size", (2, 2))), padding: try padding())
        case "AveragePooling2D":
            return AveragePooling2D(poolSize: try pair("pool_size", (2, 2)), strides: try pair("strides", try pair("pool_size", (2, 2))), padding: try padding())
        case "GlobalAveragePooling2D": return GlobalAveragePooling2D()
        case "Flatten": return Flatten()
        case "UpSampling2D": return UpSampling2D(size: try pair("size", (2, 2)))
        case "Reshape":
            guard let t = c["target_shape"]?.intArray else { throw FileFormatError(path, "layer \(index) (Reshape): missing target_shape") }
            return Reshape(t)
        case "Dropout": return Dropout(rate: float("rate", 0.5))
        case "BatchNormalization":
            return BatchNormalization(momentum: float("momentum", 0.99), epsilon: float("epsilon", 1e-3),
                                      center: c["center"]?.bool ?? true, scale: c["scale"]?.bool ?? true)
        case "Activation": return ActivationLayer(try act())
        case "LeakyReLU": return LeakyReLU(negativeSlope: float("negative_slope", 0.3))
        case "Add": return Add()
        case "Concatenate": return Concatenate(axis: try int("axis", -1))
        case "Lambda":
            throw FileFormatError(path, "layer \(index) is a Lambda: its closure is code, not data; rebuild this model in Swift and load only its weights")
        default:
            if let layer = try conceptLayer(cls, config: c, path: path, index: index) { return layer }
            if let factory = LayerRegistry.custom(cls) {
                do { return try factory(c) } catch let e as FileFormatError { throw e } catch {
                    throw FileFormatError(path, "layer \(index) (\(cls)): \(error)")
                }
            }
            throw FileFormatError(path, "layer \(index): unknown layer class '\(cls)'")
        }
    }
}
