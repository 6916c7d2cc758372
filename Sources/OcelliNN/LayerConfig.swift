import OcelliTensor

/// A layer that `Model.load` can rebuild: `init(config:)` reads back what the layer's `config`
/// writes. Every built-in layer conforms; a layer of your own conforms and is registered with
/// `LayerRegistry.register(_:type:)`.
public protocol ConfigurableLayer: Layer {
    /// Rebuilds the layer from its configuration in an architecture file (without weights);
    /// throws a `FileFormatError` naming the file, the layer and the bad key.
    init(config: LayerConfig) throws
}

/// One layer's configuration in an architecture file, read through typed accessors that check
/// every value: a missing required key, a value of the wrong type, a number that is not an
/// integer or out of range throw a `FileFormatError` naming the file, the layer and the key:
/// `model.json: layer 3 (Conv2D): 'filters' must be between 1 and 1048576, got 0`.
///
/// A missing key and a JSON `null` both mean "not given" (the default, or an error when the key
/// is required).
public struct LayerConfig: Sendable {
    /// The keys and values as stored (Keras-style keys).
    public let values: [String: JSONValue]
    /// The layer's class name in the file ("Conv2D").
    public let className: String
    /// The architecture file, for error messages.
    public let path: String
    /// The layer's position in the file's list of layers.
    public let index: Int
    /// Where the layer is, for error messages ("layer 3 (Conv2D)").
    let location: String
    /// Prepended to key names in messages, for the keys of a nested object ("margin.").
    let keyPrefix: String

    /// The largest size a file may give (units, filters, kernel, pool, strides, padding…): 2²⁰.
    public static let sizeLimit = 1 << 20

    /// The configuration `values` of a layer of class `className`, the `index`-th layer of the
    /// architecture file at `path`.
    public init(_ values: [String: JSONValue], className: String, path: String = "<architecture>", index: Int = 0) {
        self.init(values, className: className, path: path, index: index,
                  location: "layer \(index) (\(className))", keyPrefix: "")
    }

    init(_ values: [String: JSONValue], className: String, path: String, index: Int, location: String, keyPrefix: String) {
        self.values = values; self.className = className; self.path = path; self.index = index
        self.location = location; self.keyPrefix = keyPrefix
    }

    /// The value at `key`; nil when the key is missing or null.
    public subscript(key: String) -> JSONValue? {
        guard let v = values[key], v != .null else { return nil }
        return v
    }

    /// A `FileFormatError` about this layer: "<path>: layer 3 (Conv2D): <message>".
    public func error(_ message: String) -> FileFormatError {
        FileFormatError(path, "\(location): \(message)")
    }

    /// The key as messages spell it, in quotes.
    func quoted(_ key: String) -> String { "'\(keyPrefix)\(key)'" }

    func missing(_ key: String, _ what: String) -> FileFormatError { error("missing \(what) \(quoted(key))") }

    func wrongType(_ key: String, _ what: String, _ v: JSONValue) -> FileFormatError {
        error("\(quoted(key)) must be \(what), got \(LayerConfig.describe(v))")
    }

    // MARK: Scalars

    /// An integer in `range`; `default` when the key is not given.
    public func int(_ key: String, default d: Int? = nil, in range: ClosedRange<Int> = Int.min...Int.max) throws -> Int {
        guard let v = self[key] else {
            if let d { return d }
            throw missing(key, "integer")
        }
        return try checkedInt(v, key, in: range)
    }

    /// A size (units, filters, groups, a stride…): an integer from 1 to `sizeLimit`.
    public func size(_ key: String, default d: Int? = nil) throws -> Int {
        try int(key, default: d, in: 1...LayerConfig.sizeLimit)
    }

    func checkedInt(_ v: JSONValue, _ key: String, in range: ClosedRange<Int>) throws -> Int {
        guard let i = v.int else { throw wrongType(key, "an integer", v) }
        guard range.contains(i) else { throw error("\(quoted(key)) \(LayerConfig.describe(range)), got \(i)") }
        return i
    }

    /// A finite number in `range`, as a Float; `default` when the key is not given.
    public func float(_ key: String, default d: Float? = nil,
                      in range: ClosedRange<Float> = -Float.greatestFiniteMagnitude...Float.greatestFiniteMagnitude) throws -> Float {
        guard let v = self[key] else {
            if let d { return d }
            throw missing(key, "number")
        }
        return try checkedFloat(v, key, in: range)
    }

    /// A finite number in `range`, or nil when the key is not given.
    public func optionalFloat(_ key: String,
                              in range: ClosedRange<Float> = -Float.greatestFiniteMagnitude...Float.greatestFiniteMagnitude) throws -> Float? {
        guard let v = self[key] else { return nil }
        return try checkedFloat(v, key, in: range)
    }

    /// Numbers > 0 and numbers ≥ 0, for `float(_:default:in:)`.
    public static let positive: ClosedRange<Float> = Float.leastNonzeroMagnitude...Float.greatestFiniteMagnitude
    public static let nonNegative: ClosedRange<Float> = 0...Float.greatestFiniteMagnitude

    func checkedFloat(_ v: JSONValue, _ key: String, in range: ClosedRange<Float>) throws -> Float {
        guard let d = v.double else { throw wrongType(key, "a number", v) }
        let f = Float(d)
        guard d.isFinite, f.isFinite else { throw wrongType(key, "a finite number", v) }
        guard range.contains(f) else { throw error("\(quoted(key)) \(LayerConfig.describe(range)), got \(LayerConfig.describe(v))") }
        return f
    }

    /// A rate in [0, 1) (dropout).
    public func rate(_ key: String, default d: Float? = nil) throws -> Float {
        let r = try float(key, default: d)
        guard r >= 0 && r < 1 else { throw error("\(quoted(key)) must be in [0, 1), got \(LayerConfig.describe(.number(Double(r))))") }
        return r
    }

    /// A boolean; `default` when the key is not given.
    public func bool(_ key: String, default d: Bool? = nil) throws -> Bool {
        guard let v = self[key] else {
            if let d { return d }
            throw missing(key, "boolean")
        }
        guard let b = v.bool else { throw wrongType(key, "true or false", v) }
        return b
    }

    /// A string; `default` when the key is not given.
    public func string(_ key: String, default d: String? = nil) throws -> String {
        guard let v = self[key] else {
            if let d { return d }
            throw missing(key, "string")
        }
        guard let s = v.string else { throw wrongType(key, "a string", v) }
        return s
    }

    // MARK: Lists

    /// An integer for both axes or a pair [a, b], each in `range` (sizes by default).
    public func pair(_ key: String, default d: (Int, Int)? = nil,
                     in range: ClosedRange<Int> = 1...LayerConfig.sizeLimit) throws -> (Int, Int) {
        guard let p = try optionalPair(key, in: range) else {
            if let d { return d }
            throw missing(key, "integer or pair")
        }
        return p
    }

    /// `pair`, or nil when the key is not given.
    public func optionalPair(_ key: String, in range: ClosedRange<Int> = 1...LayerConfig.sizeLimit) throws -> (Int, Int)? {
        guard let v = self[key] else { return nil }
        if case .number = v { let i = try checkedInt(v, key, in: range); return (i, i) }
        guard case .array(let a) = v, a.count == 2 else { throw wrongType(key, "an integer or a pair [a, b]", v) }
        return (try checkedInt(a[0], key, in: range), try checkedInt(a[1], key, in: range))
    }

    /// Two pairs [[top, bottom], [left, right]], each number in `range` (≥ 0 by default).
    public func pairs(_ key: String, default d: ((Int, Int), (Int, Int))? = nil,
                      in range: ClosedRange<Int> = 0...LayerConfig.sizeLimit) throws -> ((Int, Int), (Int, Int)) {
        guard let v = self[key] else {
            if let d { return d }
            throw missing(key, "[[top, bottom], [left, right]]")
        }
        guard case .array(let a) = v, a.count == 2, case .array(let p0) = a[0], case .array(let p1) = a[1],
              p0.count == 2, p1.count == 2 else {
            throw wrongType(key, "[[top, bottom], [left, right]]", v)
        }
        return ((try checkedInt(p0[0], key, in: range), try checkedInt(p0[1], key, in: range)),
                (try checkedInt(p1[0], key, in: range), try checkedInt(p1[1], key, in: range)))
    }

    /// A list of integers, each in `range`; `default` when the key is not given.
    public func ints(_ key: String, default d: [Int]? = nil, in range: ClosedRange<Int> = Int.min...Int.max) throws -> [Int] {
        guard let v = self[key] else {
            if let d { return d }
            throw missing(key, "list of integers")
        }
        guard case .array(let a) = v else { throw wrongType(key, "a list of integers", v) }
        return try a.map { try checkedInt($0, key, in: range) }
    }

    /// A JSON object (a nested configuration).
    public func object(_ key: String) throws -> [String: JSONValue] {
        guard let v = self[key] else { throw missing(key, "object") }
        guard case .object(let o) = v else { throw wrongType(key, "an object", v) }
        return o
    }

    /// The object at `key` read as a configuration of its own: its messages name the key
    /// ("'margin.scale' must be …").
    public func nested(_ key: String) throws -> LayerConfig {
        LayerConfig(try object(key), className: className, path: path, index: index, location: location,
                    keyPrefix: keyPrefix + key + ".")
    }

    /// The layer stored at `key` as {"class_name": …, "config": {…}} (a wrapper's inner layer).
    public func layer(_ key: String) throws -> LayerConfig {
        let o = try object(key)
        guard let cls = o["class_name"]?.string, case .object(let c)? = o["config"] else {
            throw error("\(quoted(key)) must be {\"class_name\": …, \"config\": {…}}")
        }
        return LayerConfig(c, className: cls, path: path, index: index,
                           location: "\(location), its \(quoted(key)) (\(cls))", keyPrefix: "")
    }

    // MARK: Library types

    /// An activation by its Keras name ("relu"), or a leaky ReLU with its slope
    /// ({"class_name": "leaky_relu", "negative_slope": 0.1}); `default` when not given.
    public func activation(_ key: String = "activation", default d: Activation = .linear) throws -> Activation {
        guard let v = self[key] else { return d }
        if let name = v.string {
            guard let a = Activation(kerasName: name) else { throw error("unknown activation '\(name)' in \(quoted(key))") }
            return a
        }
        guard case .object = v else { throw wrongType(key, "an activation name", v) }
        let o = try nested(key)
        let name = try o.string("class_name")
        guard name == "leaky_relu" else { throw error("unknown activation \(LayerConfig.describe(v)) in \(quoted(key))") }
        return .leakyRelu(negativeSlope: try o.float("negative_slope", default: 0.2))
    }

    /// An initializer by its Keras name or object; `default` when not given.
    public func initializer(_ key: String, default d: Initializer) throws -> Initializer {
        guard let v = self[key] else { return d }
        if case .object(let o) = v {
            for (k, x) in o where k != "class_name" {
                guard let n = x.double, n.isFinite, Float(n).isFinite else {
                    throw error("\(quoted(key + "." + k)) must be a finite number, got \(LayerConfig.describe(x))")
                }
            }
        }
        guard let i = Initializer(keras: v) else { throw error("unknown initializer \(LayerConfig.describe(v)) in \(quoted(key))") }
        return i
    }

    /// A regularizer ({"class_name": "L2", "l2": 0.01}), or nil when not given.
    public func regularizer(_ key: String) throws -> Regularizer? {
        guard let v = self[key] else { return nil }
        guard case .object = v else { throw wrongType(key, "a regularizer {\"class_name\": \"L1\", \"L2\" or \"L1L2\", …}", v) }
        let o = try nested(key)
        let factor = { (k: String, d: Float) in try o.float(k, default: d, in: LayerConfig.nonNegative) }
        switch try o.string("class_name") {
        case "L1": return .l1(try factor("l1", 0.01))
        case "L2": return .l2(try factor("l2", 0.01))
        case "L1L2": return .l1l2(l1: try factor("l1", 0), l2: try factor("l2", 0))
        default: throw error("unknown regularizer \(LayerConfig.describe(v)) in \(quoted(key))")
        }
    }

    /// Padding: "valid", "same" or explicit cells [top, bottom, left, right]; `default` when
    /// not given.
    public func padding(_ key: String = "padding", default d: Padding = .valid) throws -> Padding {
        guard let v = self[key] else { return d }
        if let s = v.string {
            switch s.lowercased() {
            case "valid": return .valid
            case "same": return .same
            default: throw error("\(quoted(key)) must be \"valid\", \"same\" or [top, bottom, left, right], got \"\(s)\"")
            }
        }
        guard case .array(let a) = v, a.count == 4 else {
            throw wrongType(key, "\"valid\", \"same\" or [top, bottom, left, right]", v)
        }
        let p = try a.map { try checkedInt($0, key, in: 0...LayerConfig.sizeLimit) }
        return .explicit(top: p[0], bottom: p[1], left: p[2], right: p[3])
    }

    /// Checks a key whose only supported value is `expected` (Keras' `axis` -1), when given.
    public func require(_ key: String, is expected: JSONValue) throws {
        guard let v = self[key], v != expected else { return }
        throw error("only \(quoted(key)) \(LayerConfig.describe(expected)) is supported, got \(LayerConfig.describe(v))")
    }

    // MARK: Messages

    /// "must be between 1 and 1048576", "must be ≥ 0", "must be -1".
    static func describe(_ r: ClosedRange<Int>) -> String {
        if r.lowerBound == r.upperBound { return "must be \(r.lowerBound)" }
        if r.upperBound == Int.max { return "must be ≥ \(r.lowerBound)" }
        if r.lowerBound == Int.min { return "must be ≤ \(r.upperBound)" }
        return "must be between \(r.lowerBound) and \(r.upperBound)"
    }

    static func describe(_ r: ClosedRange<Float>) -> String {
        func n(_ f: Float) -> String { describe(.number(Double(f))) }
        let top = Float.greatestFiniteMagnitude
        if r.lowerBound == Float.leastNonzeroMagnitude { return r.upperBound == top ? "must be > 0" : "must be in (0, \(n(r.upperBound))]" }
        if r.upperBound == top { return "must be ≥ \(n(r.lowerBound))" }
        if r.lowerBound == -top { return "must be ≤ \(n(r.upperBound))" }
        return "must be between \(n(r.lowerBound)) and \(n(r.upperBound))"
    }

    /// A short rendering of a JSON value for messages: 3, 0.5, 1e+30, "same", [1, 2], true.
    static func describe(_ v: JSONValue) -> String {
        switch v {
        case .null: return "null"
        case .bool(let b): return b ? "true" : "false"
        case .number(let d):
            if let i = Int(exactly: d), i.magnitude < 1 << 53 { return String(i) }
            if let f = Float(exactly: d) { return "\(f)" }     // a Float written as a Double: 0.1, not 0.10000000149011612
            return "\(d)"
        case .string(let s): return "\"\(s)\""
        case .array(let a): return "[" + a.map(describe).joined(separator: ", ") + "]"
        case .object(let o): return "{" + o.keys.sorted().map { "\"\($0)\": \(describe(o[$0]!))" }.joined(separator: ", ") + "}"
        }
    }
}
