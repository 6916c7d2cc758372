import Foundation
import OcelliTensor

/// An error in a Darknet file: which file, which line (when there is one), what was expected.
public struct DarknetError: Error, CustomStringConvertible, LocalizedError {
    public let file: String
    public let line: Int?
    public let message: String

    public init(file: String, line: Int? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
    public var errorDescription: String? { description }
}

/// One `key=value` line of a cfg section.
public struct DarknetOption: Equatable, Sendable {
    public let key: String
    public let value: String
    public let line: Int
}

/// One `[section]` of a cfg file with its options, in file order.
public struct DarknetSection: Sendable {
    /// The section name without brackets, lower-cased (`convolutional`, `net`, …).
    public let type: String
    /// The 1-based line of the `[section]` header.
    public let line: Int
    public internal(set) var options: [DarknetOption]
    let file: String

    /// The option as written; when a key repeats, the first one (Darknet's option_find).
    public func raw(_ key: String) -> DarknetOption? { options.first { $0.key == key } }

    public func contains(_ key: String) -> Bool { raw(key) != nil }

    func fail(_ option: DarknetOption, _ expected: String) -> DarknetError {
        DarknetError(file: file, line: option.line,
                     "[\(type)] '\(option.key)=\(option.value)': expected \(expected)")
    }

    /// An integer option (Darknet's option_find_int), the default when absent.
    public func int(_ key: String, _ defaultValue: Int) throws -> Int {
        guard let o = raw(key) else { return defaultValue }
        guard let v = Int(o.value) else { throw fail(o, "an integer") }
        return v
    }

    /// An integer option that must lie in `range` (sizes, counts, strides): a value outside it is
    /// an error naming the key, its line and the range, before anything is computed from it.
    public func int(_ key: String, _ defaultValue: Int, in range: ClosedRange<Int>) throws -> Int {
        let v = try int(key, defaultValue)
        guard range.contains(v) else {
            let o = raw(key) ?? DarknetOption(key: key, value: String(v), line: line)
            throw fail(o, "an integer from \(range.lowerBound) to \(range.upperBound)")
        }
        return v
    }

    /// A floating-point option (Darknet's option_find_float; `.5` and `1e-3` are accepted).
    public func float(_ key: String, _ defaultValue: Float) throws -> Float {
        guard let o = raw(key) else { return defaultValue }
        guard let v = Float(o.value), v.isFinite else { throw fail(o, "a number") }
        return v
    }

    public func string(_ key: String, _ defaultValue: String) -> String { raw(key)?.value ?? defaultValue }

    /// A comma-separated list of integers (`layers=-1,8`, `mask=3,4,5`); empty items are skipped
    /// (Darknet's cfgs sometimes end a list with a comma).
    public func ints(_ key: String) throws -> [Int]? {
        guard let o = raw(key) else { return nil }
        var out: [Int] = []
        for part in o.value.split(separator: ",", omittingEmptySubsequences: true) {
            guard let v = Int(part) else { throw fail(o, "a comma-separated list of integers") }
            out.append(v)
        }
        return out
    }

    /// A comma-separated list of numbers (`anchors=10,14, 23,27`).
    public func floats(_ key: String) throws -> [Float]? {
        guard let o = raw(key) else { return nil }
        var out: [Float] = []
        for part in o.value.split(separator: ",", omittingEmptySubsequences: true) {
            guard let v = Float(part), v.isFinite else { throw fail(o, "a comma-separated list of numbers") }
            out.append(v)
        }
        return out
    }
}

/// A parsed Darknet `.cfg` file: `[net]` then the layers, as Darknet's `read_cfg` reads it.
///
/// Darknet's rules: every whitespace character is removed from a line before it is read (so
/// `anchors = 10,14,  23,27` is `anchors=10,14,23,27`); empty lines and lines starting with `#`
/// or `;` are comments; `[name]` starts a section; anything else must be `key=value`.
public struct DarknetConfig: Sendable {
    public let file: String
    /// The `[net]` (or `[network]`) section.
    public let net: DarknetSection
    /// The layer sections, in order; Darknet's layer index is the position here.
    public let layers: [DarknetSection]
    /// Keys Darknet does not read for their section (Darknet prints "Unused field"), one line each.
    public let warnings: [String]

    /// The sections Ocelli builds, with the keys Darknet reads for each (others give a warning).
    static let knownKeys: [String: Set<String>] = [
        "net": ["batch", "subdivisions", "width", "height", "channels", "inputs", "momentum", "decay",
                "angle", "saturation", "exposure", "hue", "learning_rate", "burn_in", "max_batches", "policy",
                "steps", "scales", "step", "scale", "gamma", "power", "max_crop", "min_crop", "max_ratio",
                "min_ratio", "aspect", "center", "clip", "time_steps", "notruth", "random", "adam", "B1", "B2",
                "eps", "h", "w", "c", "rate", "letter_box", "flip", "mosaic", "mixup", "blur", "cutmix"],
        "convolutional": ["filters", "size", "stride", "pad", "padding", "groups", "activation",
                          "batch_normalize", "binary", "xnor", "flipped", "dot", "dilation"],
        "maxpool": ["size", "stride", "padding"],
        "avgpool": [],
        "route": ["layers"],
        "shortcut": ["from", "activation", "alpha", "beta"],
        "upsample": ["stride", "scale"],
        "reorg": ["stride", "reverse", "flatten", "extra"],
        "region": ["coords", "classes", "num", "log", "sqrt", "softmax", "background", "max", "jitter",
                   "rescore", "thresh", "classfix", "absolute", "random", "coord_scale", "object_scale",
                   "noobject_scale", "mask_scale", "class_scale", "bias_match", "tree", "map", "anchors"],
        "yolo": ["classes", "num", "mask", "anchors", "max", "jitter", "ignore_thresh", "truth_thresh",
                 "random", "map"],
        "detection": ["coords", "classes", "rescore", "num", "side", "softmax", "sqrt", "max", "coord_scale",
                      "forced", "object_scale", "noobject_scale", "class_scale", "jitter", "random", "reorg"],
        "connected": ["output", "activation", "batch_normalize"],
        "dropout": ["probability"],
        "softmax": ["groups", "temperature", "tree", "spatial", "noloss"],
        "cost": ["type", "scale", "ratio", "noobj", "thresh"],
    ]

    /// Darknet's other section names spelled the long way (`[conv]` is `[convolutional]`, …).
    static let aliases: [String: String] = [
        "network": "net", "conv": "convolutional", "max": "maxpool", "avg": "avgpool", "soft": "softmax",
        "conn": "connected",
    ]

    /// Reads and parses a cfg file.
    public static func load(_ path: String) throws -> DarknetConfig {
        let data: Data
        do { data = Data(try FileReading.bytes(atPath: path)) } catch {
            throw DarknetError(file: path, "cannot read the cfg: \(error.reason)")
        }
        guard let text = String(data: data, encoding: .utf8) ?? String(data: data, encoding: .isoLatin1) else {
            throw DarknetError(file: path, "not a text file")
        }
        return try DarknetConfig(text: text, file: path)
    }

    /// Parses cfg text; `file` names it in errors and warnings.
    public init(text: String, file: String = "<cfg>") throws {
        self.file = file
        var sections: [DarknetSection] = []
        var lineNumber = 0
        // "\r\n" is one Character in Swift: CRLF files (which Darknet reads) split on it too.
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" }) {
            lineNumber += 1
            let line = String(rawLine.filter { !$0.isWhitespace })
            guard let first = line.first, first != "#", first != ";" else { continue }
            if first == "[" {
                guard line.last == "]", line.count > 2 else {
                    throw DarknetError(file: file, line: lineNumber, "malformed section header '\(line)': expected [name]")
                }
                let name = line.dropFirst().dropLast().lowercased()
                let type = DarknetConfig.aliases[name] ?? name
                guard DarknetConfig.knownKeys[type] != nil else {
                    throw DarknetError(file: file, line: lineNumber,
                                       "unknown section [\(name)]; Ocelli reads " +
                                       DarknetConfig.knownKeys.keys.sorted().map { "[\($0)]" }.joined(separator: ", "))
                }
                sections.append(DarknetSection(type: type, line: lineNumber, options: [], file: file))
                continue
            }
            guard let eq = line.firstIndex(of: "="), eq != line.startIndex else {
                throw DarknetError(file: file, line: lineNumber, "cannot parse '\(line)': expected key=value or [section]")
            }
            guard !sections.isEmpty else {
                throw DarknetError(file: file, line: lineNumber, "'\(line)' comes before the first [section]")
            }
            let key = String(line[..<eq]), value = String(line[line.index(after: eq)...])
            sections[sections.count - 1].options.append(DarknetOption(key: key, value: value, line: lineNumber))
        }
        guard let net = sections.first, net.type == "net" else {
            throw DarknetError(file: file, line: sections.first?.line,
                               "the first section must be [net] (or [network]), found \(sections.first.map { "[\($0.type)]" } ?? "no section")")
        }
        if let extra = sections.dropFirst().first(where: { $0.type == "net" }) {
            throw DarknetError(file: file, line: extra.line, "a second [net] section")
        }
        self.net = net
        self.layers = Array(sections.dropFirst())
        var warnings: [String] = []
        for s in sections {
            let known = DarknetConfig.knownKeys[s.type] ?? []
            for o in s.options where !known.contains(o.key) {
                warnings.append("\(file):\(o.line): unused field '\(o.key) = \(o.value)' in [\(s.type)]")
            }
        }
        self.warnings = warnings
    }
}
