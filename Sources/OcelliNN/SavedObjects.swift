import Foundation

/// A loss or an optimizer as a saved model's `compile_config` names it: a class name and its
/// options (Keras' `{"class_name": …, "config": {…}}`).
public struct SavedObject: Equatable, Sendable {
    public var className: String
    public var config: [String: JSONValue]

    public init(className: String, config: [String: JSONValue] = [:]) {
        self.className = className; self.config = config
    }

    var json: JSONValue { .object(["class_name": .string(className), "config": .object(config)]) }

    init?(json: JSONValue) {
        guard case .object(let o) = json, let name = o["class_name"]?.string else { return nil }
        var config: [String: JSONValue] = [:]
        if case .object(let c)? = o["config"] { config = c }
        self.init(className: name, config: config)
    }
}

/// A saved loss or optimizer whose configuration cannot be used; the message says which and why.
public struct SavedObjectError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Class name → factory, safe to register from any thread.
final class FactoryTable<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var factories: [String: (SavedObject) throws -> Value] = [:]

    func register(_ className: String, _ factory: @escaping (SavedObject) throws -> Value) {
        lock.lock(); factories[className] = factory; lock.unlock()
    }

    func factory(_ className: String) -> ((SavedObject) throws -> Value)? {
        lock.lock(); defer { lock.unlock() }
        return factories[className]
    }
}

/// Maps the loss names in saved models back to losses: Keras' losses are known; a loss written
/// outside the library is registered once (its `savedConfig` names it) so `Model.load` restores it.
public enum LossRegistry {
    private static let table = FactoryTable<any Loss>()

    public static func register(_ className: String, factory: @escaping (SavedObject) throws -> any Loss) {
        table.register(className, factory)
    }

    /// The loss a saved configuration names, or nil when the name is unknown.
    public static func make(_ saved: SavedObject) throws -> (any Loss)? {
        if let keras = try KerasLoss(saved: saved) { return keras }
        switch saved.className {
        case "TripletLoss": return try TripletLoss(saved: saved)
        case "ContrastiveLoss": return try ContrastiveLoss(saved: saved)
        default: return try table.factory(saved.className)?(saved)
        }
    }
}

/// Maps the optimizer names in saved models back to optimizers: Keras' optimizers are known; one
/// written outside the library is registered once so `Model.load` restores it.
public enum OptimizerRegistry {
    private static let table = FactoryTable<any Optimizer>()

    public static func register(_ className: String, factory: @escaping (SavedObject) throws -> any Optimizer) {
        table.register(className, factory)
    }

    /// The optimizer a saved configuration names, or nil when the name is unknown.
    public static func make(_ saved: SavedObject) throws -> (any Optimizer)? {
        if let keras = try kerasOptimizer(saved) { return keras }
        return try table.factory(saved.className)?(saved)
    }
}

/// A learning-rate schedule written outside OcelliNN that `Model.save` can write: its class name
/// and configuration. Register a factory with `ScheduleRegistry` so that `Model.load` rebuilds it.
public protocol SavableLearningRateSchedule: LearningRateSchedule {
    var savedConfig: SavedObject { get }
}

/// Maps the schedule names in saved models back to schedules: Keras' schedules are known; one
/// written outside the library (`SavableLearningRateSchedule`) is registered once.
public enum ScheduleRegistry {
    private static let table = FactoryTable<any LearningRateSchedule>()

    public static func register(_ className: String, factory: @escaping (SavedObject) throws -> any LearningRateSchedule) {
        table.register(className, factory)
    }

    static func make(_ saved: SavedObject) throws -> (any LearningRateSchedule)? {
        try table.factory(saved.className)?(saved)
    }
}
