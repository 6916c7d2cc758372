import OcelliTensor

/// Builds a list of augmenters from statements, as `Augment.Sequential { … }` takes them.
@resultBuilder
public enum AugmenterBuilder {
    public static func buildExpression(_ augmenter: any Augmenter) -> [any Augmenter] { [augmenter] }
    public static func buildExpression(_ augmenters: [any Augmenter]) -> [any Augmenter] { augmenters }
    public static func buildBlock(_ parts: [any Augmenter]...) -> [any Augmenter] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [any Augmenter]?) -> [any Augmenter] { part ?? [] }
    public static func buildEither(first part: [any Augmenter]) -> [any Augmenter] { part }
    public static func buildEither(second part: [any Augmenter]) -> [any Augmenter] { part }
    public static func buildArray(_ parts: [[any Augmenter]]) -> [any Augmenter] { parts.flatMap { $0 } }
}

extension Augment {
    /// Applies its children one after another, in order (or, with `randomOrder`, in a fresh
    /// random order per image).
    public struct Sequential: Augmenter {
        public var children: [any Augmenter]
        public var randomOrder: Bool

        public init(_ children: [any Augmenter], randomOrder: Bool = false) {
            self.children = children
            self.randomOrder = randomOrder
        }

        public init(randomOrder: Bool = false, @AugmenterBuilder _ children: () -> [any Augmenter]) {
            self.init(children(), randomOrder: randomOrder)
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            var order = Array(children.indices)
            if randomOrder { order.shuffleDeterministically(using: &rng) }
            var sample = (image, boxes)
            for i in order { sample = children[i].apply(sample.0, sample.1, using: &rng) }
            return sample
        }
    }

    /// With probability `probability` applies `then`, otherwise `otherwise` (nothing when empty).
    /// One draw decides; `Sometimes(0)` never applies `then`, `Sometimes(1)` always does.
    public struct Sometimes: Augmenter {
        public var probability: Double
        public var then: Sequential
        public var otherwise: Sequential

        public init(_ probability: Double, _ then: any Augmenter, otherwise: (any Augmenter)? = nil) {
            precondition((0...1).contains(probability), "Sometimes: probability must be in 0...1, got \(probability)")
            self.probability = probability
            self.then = Sequential([then])
            self.otherwise = Sequential(otherwise.map { [$0] } ?? [])
        }

        public init(_ probability: Double, @AugmenterBuilder _ then: () -> [any Augmenter]) {
            precondition((0...1).contains(probability), "Sometimes: probability must be in 0...1, got \(probability)")
            self.probability = probability
            self.then = Sequential(then())
            self.otherwise = Sequential([])
        }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            rng.chance(probability) ? then.apply(image, boxes, using: &rng) : otherwise.apply(image, boxes, using: &rng)
        }
    }

    /// Applies a random subset of its children: the subset's size is drawn uniformly from `count`
    /// (clamped to the number of children), its members uniformly without replacement, and they
    /// run in the children's order (imgaug's `SomeOf` with `random_order=False`).
    public struct SomeOf: Augmenter {
        public var count: ClosedRange<Int>
        public var children: [any Augmenter]

        public init(_ count: ClosedRange<Int>, _ children: [any Augmenter]) {
            precondition(count.lowerBound >= 0, "SomeOf: count must not be negative, got \(count)")
            self.count = count
            self.children = children
        }

        /// Exactly `count` of the children.
        public init(_ count: Int, _ children: [any Augmenter]) { self.init(count...count, children) }

        public init(_ count: Int, @AugmenterBuilder _ children: () -> [any Augmenter]) { self.init(count...count, children()) }

        public init(_ count: ClosedRange<Int>, @AugmenterBuilder _ children: () -> [any Augmenter]) { self.init(count, children()) }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            let n = Swift.min(rng.integer(in: count), children.count)
            // The first n of a random permutation, put back in order.
            var order = Array(children.indices)
            order.shuffleDeterministically(using: &rng)
            var sample = (image, boxes)
            for i in order.prefix(n).sorted() { sample = children[i].apply(sample.0, sample.1, using: &rng) }
            return sample
        }
    }

    /// Applies exactly one of its children, chosen uniformly.
    public struct OneOf: Augmenter {
        public var children: [any Augmenter]

        public init(_ children: [any Augmenter]) {
            precondition(!children.isEmpty, "OneOf: needs at least one augmenter")
            self.children = children
        }

        public init(@AugmenterBuilder _ children: () -> [any Augmenter]) { self.init(children()) }

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            children[rng.integer(in: 0...(children.count - 1))].apply(image, boxes, using: &rng)
        }
    }

    /// Leaves the sample unchanged (imgaug's `Identity`; handy in `OneOf`).
    public struct Identity: Augmenter {
        public init() {}

        public func apply(_ image: Image, _ boxes: [ObjectAnnotation], using rng: inout SeededGenerator) -> (Image, [ObjectAnnotation]) {
            (image, boxes)
        }
    }
}

extension Array {
    /// Fisher–Yates with the package's own integer draw, so the order is the same on every
    /// platform (the standard library's `shuffle(using:)` does not promise that).
    mutating func shuffleDeterministically(using rng: inout SeededGenerator) {
        guard count > 1 else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            swapAt(i, rng.integer(in: 0...i))
        }
    }
}
