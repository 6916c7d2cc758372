/// A node of the recorded computation: the nodes of the op's inputs and the rule that maps the
/// gradient of the op's output to gradients of its inputs (`nil` for an input that needs none).
/// A leaf node (no rule) belongs to a tensor created with `requiringGrad()`; it keeps `grad`.
final class GradNode {
    let inputs: [GradNode?]
    let pullback: ((Tensor) -> [Tensor?])?
    var grad: Tensor?

    init(leaf: ()) { inputs = []; pullback = nil }
    init(inputs: [GradNode?], pullback: @escaping (Tensor) -> [Tensor?]) {
        self.inputs = inputs
        self.pullback = pullback
    }
    var isLeaf: Bool { pullback == nil }
}

/// Whether ops record themselves for `backward()`. Recording is off inside `withoutGradients`.
public enum GradMode {
    @TaskLocal public static var isEnabled = true
}

/// Runs `body` with gradient recording off: for inference, nothing is recorded and no graph is
/// kept alive.
public func withoutGradients<R>(_ body: () throws -> R) rethrows -> R {
    try GradMode.$isEnabled.withValue(false, operation: body)
}

extension Tensor {
    /// True when this tensor takes part in gradient recording.
    public var requiresGrad: Bool {
        get { node != nil }
        set {
            if newValue { if node == nil { node = GradNode(leaf: ()) } } else { node = nil }
        }
    }

    /// A copy that is a leaf of the recorded computation: `backward()` accumulates into its `grad`.
    public func requiringGrad() -> Tensor {
        Tensor(shape: shape, scalars: scalars, node: GradNode(leaf: ()))
    }

    /// The same values, cut off from gradient recording.
    public func detached() -> Tensor { Tensor(shape: shape, scalars: scalars) }

    /// The gradient accumulated by `backward()` for a leaf tensor (nil before any).
    public var grad: Tensor? {
        get { node?.grad }
        nonmutating set { node?.grad = newValue }
    }

    /// Identifies this tensor's place in gradient recording (nil when it takes no part): what
    /// `backward(onLeafGradient:)` reports for a leaf whose gradient is complete.
    public var gradientLeafID: ObjectIdentifier? { node.map { ObjectIdentifier($0) } }

    /// Clears the accumulated gradient.
    public func zeroGrad() { node?.grad = nil }

    /// Replaces the values of a leaf tensor in place, keeping its gradient node (optimizer updates).
    public mutating func assign(_ values: Tensor) {
        require(values.shape == shape, "assign", "shape \(values.shape) does not match \(shape)")
        scalars = values.scalars
    }

    /// Modifies the values in place, keeping the gradient node (optimizer updates).
    public mutating func updateScalars(_ body: (inout [Float]) -> Void) {
        let n = scalars.count
        body(&scalars)
        precondition(scalars.count == n, "updateScalars: the number of elements must not change")
    }

    /// Records an op's output: when recording is on and an input takes part, the result gets a
    /// node whose pullback maps the output gradient to the inputs' gradients.
    @inline(__always)
    static func record(_ result: Tensor, _ inputs: [Tensor], _ pullback: @escaping (Tensor) -> [Tensor?]) -> Tensor {
        guard inputs.contains(where: { $0.node != nil }), GradMode.isEnabled else { return result }
        var r = result
        r.node = GradNode(inputs: inputs.map { $0.node }, pullback: pullback)
        return r
    }

    /// Reverse-mode differentiation from this tensor.
    ///
    /// Walks the recorded ops from this tensor back to the leaves, in reverse topological order
    /// (iteratively, so deep graphs do not exhaust the stack), and adds each leaf's gradient to
    /// its `grad`. `gradient` defaults to 1 for a one-element tensor.
    ///
    /// `onLeafGradient` is called with a leaf's `gradientLeafID` as soon as this pass has added
    /// everything it will to that leaf's `grad` (while the rest of the backward still runs: a
    /// data-parallel trainer starts summing those gradients over its ranks there).
    public func backward(_ gradient: Tensor? = nil, onLeafGradient: ((ObjectIdentifier) -> Void)? = nil) {
        guard let root = node else {
            preconditionFailure("backward: this tensor does not require gradients (no input was marked with requiringGrad())")
        }
        let seed: Tensor
        if let g = gradient {
            require(g.shape == shape, "backward", "gradient shape \(g.shape) does not match tensor shape \(shape)")
            seed = g.detached()
        } else {
            require(count == 1, "backward", "a tensor of shape \(shape) needs an explicit gradient")
            seed = Tensor.ones(shape)
        }
        // Post-order DFS: every node comes after all of its inputs.
        var order: [GradNode] = []
        var visited = Set<ObjectIdentifier>()
        var stack: [(GradNode, Bool)] = [(root, false)]
        while let (n, expanded) = stack.popLast() {
            if expanded { order.append(n); continue }
            if !visited.insert(ObjectIdentifier(n)).inserted { continue }
            stack.append((n, true))
            for input in n.inputs.reversed() {
                if let i = input, !visited.contains(ObjectIdentifier(i)) { stack.append((i, false)) }
            }
        }
        var grads: [ObjectIdentifier: Tensor] = [ObjectIdentifier(root): seed]
        withoutGradients {
            for n in order.reversed() {
                guard let g = grads.removeValue(forKey: ObjectIdentifier(n)) else { continue }
                guard let pullback = n.pullback else {
                    n.grad = n.grad.map { $0 + g } ?? g
                    onLeafGradient?(ObjectIdentifier(n))
                    continue
                }
                let inputGrads = pullback(g)
                for (input, ig) in zip(n.inputs, inputGrads) {
                    guard let input, let ig else { continue }
                    let key = ObjectIdentifier(input)
                    if let existing = grads[key] { grads[key] = existing + ig } else { grads[key] = ig }
                }
            }
        }
    }
}
