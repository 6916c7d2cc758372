import ArgumentParser
import Foundation
import Ocelli

/// `ocelli bench train`: where a training step of the MNIST models spends its time: the whole
/// step (forward, loss, backward, optimizer) and each layer's forward and backward alone.
struct BenchTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Milliseconds per training step of the MNIST models, and per layer (forward, backward) and optimizer update.")

    @Option(help: "seed or convnet (the models of `ocelli mnist`).")
    var model: Mnist.ModelKind = .seed

    @Option(name: .customLong("batch-size"), help: "Batch size (default: 32 for seed, 128 for convnet).")
    var batchSize: Int?

    @Option(help: "Timed repetitions (the step's best and median are reported; each layer's best).")
    var steps: Int = 30

    @OptionGroup var threadOptions: ThreadOptions

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if !(1...100_000).contains(steps) { throw ValidationError("--steps must be between 1 and 100000, got \(steps)") }
        if let b = batchSize, !(1...4_096).contains(b) { throw ValidationError("--batch-size must be between 1 and 4096, got \(b)") }
    }

    /// The best of `steps` runs of `body`, in milliseconds (after one warm-up run).
    func best(_ body: () -> Void) -> Double { timed(body).best }

    /// Best and median of `steps` runs of `body`, in milliseconds (after one warm-up run).
    func timed(_ body: () throws -> Void) rethrows -> (best: Double, median: Double) {
        try body()
        var times: [Double] = []
        for _ in 0..<steps {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        times.sort()
        return (times[0], times[times.count / 2])
    }

    func run() throws {
        threadOptions.apply()
        let batch = batchSize ?? (model == .seed ? 32 : 128)
        RandomSeed.set(1)
        let net = Mnist.build(model)
        net.compile(optimizer: .adam(), loss: .categoricalCrossentropy(), metrics: [.accuracy])
        let x = Tensor.uniform([batch, 28, 28, 1], seed: 2)
        let labels = Tensor.uniform([batch], minimum: 0, maximum: 10, seed: 3).scalars.map { Float(Int($0)) }
        let y = toCategorical(Tensor(labels), numClasses: 10)

        var seed: UInt64 = 0
        let (step, stepMedian) = try timed { seed += 1; _ = try net.trainStep(x, y, seed: seed) }

        var rows: [(name: String, forward: Double, backward: Double)] = []
        var input = x
        for (i, layer) in net.layers.enumerated() {
            // The first layer's input needs no gradient (as in training); later inputs do.
            let xi = i == 0 ? input.detached() : input.detached().requiringGrad()
            var ctx = ForwardContext(training: true, seed: 7)
            let out = layer.forward([xi], context: &ctx)
            let g = Tensor.uniform(out.shape, minimum: -1, maximum: 1, seed: 11)
            let fwd = best { var c = ForwardContext(training: true, seed: 7); _ = layer.forward([xi], context: &c) }
            let both = best {
                // Gradients are set, not accumulated, as in a training step.
                xi.zeroGrad()
                for p in layer.parameters { p.value.zeroGrad() }
                var c = ForwardContext(training: true, seed: 7)
                layer.forward([xi], context: &c).backward(g)
            }
            for p in layer.parameters { p.value.zeroGrad() }
            rows.append((layer.name, fwd, max(0, both - fwd)))
            input = withoutGradients { var c = ForwardContext(training: true, seed: 7); return layer.forward([input], context: &c) }
        }
        // The optimizer's update alone, on gradients of the right shapes.
        let fakeGradients = net.trainableParameters.map { Tensor.uniform($0.shape, minimum: -1e-3, maximum: 1e-3, seed: 5) }
        let update = best {
            for (p, g) in zip(net.trainableParameters, fakeGradients) { p.value.grad = g }
            net.optimizer!.apply(net.trainableParameters)
        }

        if json {
            let object: [String: Any] = [
                "model": model.rawValue, "batch_size": batch, "threads": Parallel.threadCount, "step_ms": step, "step_median_ms": stepMedian,
                "optimizer_ms": update,
                "layers": rows.map { ["name": $0.name, "forward_ms": $0.forward, "backward_ms": $0.backward] },
            ]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
            return
        }
        print("\(model.rawValue) model, batch \(batch), \(Parallel.threadCount) threads, best of \(steps)")
        let stepsPerEpoch = Double((60_000 + batch - 1) / batch)
        print(String(format: "training step: best %.3f ms, median %.3f ms (%.1f–%.1f s per 60,000-image epoch)",
                     step, stepMedian, step * stepsPerEpoch / 1000, stepMedian * stepsPerEpoch / 1000))
        print("layer".padding(toLength: 24, withPad: " ", startingAt: 0) + "  forward ms  backward ms")
        for r in rows {
            print(r.name.padding(toLength: 24, withPad: " ", startingAt: 0) + String(format: "  %10.3f  %11.3f", r.forward, r.backward))
        }
        let sum = rows.reduce(0) { $0 + $1.forward + $1.backward }
        print(String(format: "optimizer update: %.3f ms; layers total %.3f ms; rest of the step (loss, bookkeeping) %.3f ms",
                     update, sum, step - sum - update))
    }
}
