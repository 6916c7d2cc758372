import Foundation

/// A JSON value, for layer configurations in architecture files (Keras-style keys).
public enum JSONValue: Codable, Equatable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let d = try? c.decode(Double.self) { self = .number(d) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .null: try c.encodeNil()
        case .bool(let b): try c.encode(b)
        case .number(let d): try c.encode(d)
        case .string(let s): try c.encode(s)
        case .array(let a): try c.encode(a)
        case .object(let o): try c.encode(o)
        }
    }

    public static func ints(_ v: [Int]) -> JSONValue { .array(v.map { .number(Double($0)) }) }
    public static func int(_ v: Int) -> JSONValue { .number(Double(v)) }

    /// The number as an integer, or nil if it is not a number with an exact `Int` value (a
    /// fraction, NaN, an infinity or a number beyond `Int`'s range: 1e30 gives nil, not a trap).
    public var int: Int? { if case .number(let d) = self { return Int(exactly: d) } else { return nil } }
    public var double: Double? { if case .number(let d) = self { return d } else { return nil } }
    public var string: String? { if case .string(let s) = self { return s } else { return nil } }
    public var objectValue: [String: JSONValue]? { if case .object(let o) = self { return o } else { return nil } }
    public var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
    public var intArray: [Int]? {
        if case .array(let a) = self { let v = a.compactMap(\.int); return v.count == a.count ? v : nil }
        return nil
    }
}
