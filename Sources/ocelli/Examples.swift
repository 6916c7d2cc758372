import ArgumentParser
import Foundation
import Ocelli

/// `ocelli examples …`: small demonstrations of the "Deep Concepts" chapter, each well under two
/// minutes on two cores in release builds, each printing what it shows.
struct Examples: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Small demonstrations of the course's deep concepts.",
        subcommands: [SeluExample.self, SeparableExample.self, CenterLossExample.self, DropoutExample.self])
}

/// Mean and standard deviation of a tensor's values.
private func moments(_ t: Tensor) -> (mean: Float, std: Float) { (t.mean().scalar, t.variance().scalar.squareRoot()) }

private func fmt(_ v: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", v) }

/// SELU vs ReLU in a deep MLP: activation statistics through the layers, then a short training.
struct SeluExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "selu",
        abstract: "SELU (lecun_normal + AlphaDropout) vs ReLU (he_normal + Dropout) in a deep MLP on MNIST: activations per layer and accuracy.")

    @Option(help: "Hidden layers.") var depth: Int = 16
    @Option(help: "Units per hidden layer.") var units: Int = 128
    @Option(help: "Training images used.") var limit: Int = 6000
    @Option(help: "Epochs.") var epochs: Int = 2
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func validate() throws {
        if !(1...1_000).contains(depth) { throw ValidationError("--depth must be between 1 and 1000, got \(depth)") }
        if !(1...65_536).contains(units) { throw ValidationError("--units must be between 1 and 65536, got \(units)") }
        if !(1...60_000).contains(limit) { throw ValidationError("--limit must be between 1 and 60000, got \(limit)") }
        if !(1...10_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 10000, got \(epochs)") }
    }

    func run() throws {
        let mnist = try MNIST()
        let n = Swift.min(limit, mnist.trainImages.shape[0])
        let x = mnist.trainImages.sliced(axis: 0, 0..<n).reshaped([n, 784])
        let y = toCategorical(mnist.trainLabels.sliced(axis: 0, 0..<n), numClasses: 10)
        let testX = mnist.testImages.sliced(axis: 0, 0..<2000).reshaped([2000, 784])
        let testY = toCategorical(mnist.testLabels.sliced(axis: 0, 0..<2000), numClasses: 10)
        // Standardised inputs: SELU's fixed point assumes zero mean and unit variance.
        let mean = x.mean(), std = (x.variance() + 1e-6).sqrt()
        let xs = (x - mean) / std, testXs = (testX - mean) / std
        print("Deep MLP, \(depth) hidden layers of \(units) units, \(n) MNIST images, \(epochs) epochs")
        for selu in [true, false] {
            RandomSeed.set(seed)
            let model = Sequential(inputShape: [784], name: selu ? "selu" : "relu") {
                for _ in 0..<depth {
                    if selu {
                        Dense(units: units, activation: .selu, kernelInitializer: .lecunNormal)
                    } else {
                        Dense(units: units, activation: .relu, kernelInitializer: .heNormal)
                    }
                }
                if selu { AlphaDropout(0.05) } else { Dropout(0.05) }
                Dense(units: 10, activation: .softmax)
            }
            // Activation statistics of a batch at every fourth layer, before training.
            var values = xs.sliced(axis: 0, 0..<512)
            var line = "  \(selu ? "SELU" : "ReLU") activations (mean ± std) at layers"
            withoutGradients {
                for (i, layer) in model.layers.prefix(depth).enumerated() {
                    values = layer(values)
                    if (i + 1) % 4 == 0 {
                        let m = moments(values)
                        line += "  \(i + 1): \(fmt(Double(m.mean))) ± \(fmt(Double(m.std)))"
                    }
                }
            }
            print(line)
            model.compile(optimizer: .sgd(learningRate: 0.01, momentum: 0.9), loss: .categoricalCrossentropy(), metrics: [.accuracy])
            let history = try model.fit(x: xs, y: y, batchSize: 64, epochs: epochs, verbose: .silent)
            let result = try model.evaluate(x: testXs, y: testY, verbose: .silent)
            print("  \(selu ? "SELU" : "ReLU"): training loss \(history.history["loss"]!.map { fmt(Double($0), 3) }.joined(separator: " → ")), "
                  + "test accuracy \(fmt(Double(result["accuracy"] ?? 0) * 100, 1))%")
        }
        print("SELU keeps the activations near mean 0 and standard deviation 1 through every layer (self-normalisation);")
        print("ReLU's statistics drift with depth, which is what batch normalization is usually added for.")
    }
}

/// Depthwise-separable vs standard 3x3 convolution at MobileNet's shapes: FLOPs and time.
struct SeparableExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "separable",
        abstract: "Depthwise-separable vs standard 3x3 convolution at MobileNet v1's shapes: multiply-adds, measured time, speed-up vs the theoretical ratio.")

    @Option(help: "Seconds of repeats per measurement.") var budget: Double = 0.5
    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    /// (input size, channels in, channels out) of MobileNet v1's stride-1 separable blocks at 224.
    static let shapes: [(Int, Int, Int)] = [(112, 32, 64), (56, 128, 128), (28, 256, 256), (14, 512, 512), (7, 1024, 1024)]

    func validate() throws {
        if !(budget > 0 && budget <= 3_600) { throw ValidationError("--budget must be between 0 and 3600 seconds, got \(budget)") }
    }

    func run() throws {
        var rows: [[String: Any]] = []
        if !json {
            print("Batch 1, stride 1, 'same' padding, forward pass, best of repeats (\(Parallel.threadCount) threads).")
            print("size  C_in C_out   standard MMACs  separable MMACs  FLOP ratio  standard ms  separable ms  measured speed-up")
        }
        for (s, cin, cout) in Self.shapes {
            let x = Tensor.uniform([1, s, s, cin], minimum: -1, maximum: 1, seed: 1)
            let w = Tensor.uniform([3, 3, cin, cout], minimum: -0.1, maximum: 0.1, seed: 2)
            let dw = Tensor.uniform([3, 3, 1, cin], minimum: -0.1, maximum: 0.1, seed: 3)
            let pw = Tensor.uniform([1, 1, cin, cout], minimum: -0.1, maximum: 0.1, seed: 4)
            let standard = KernelBenchmark.bestTime(budget: budget) {
                _ = withoutGradients { Tensor.conv2d(x, filter: w, padding: .same) }
            }
            let separable = KernelBenchmark.bestTime(budget: budget) {
                _ = withoutGradients { Tensor.conv2d(Tensor.conv2d(x, filter: dw, padding: .same, groups: cin), filter: pw) }
            }
            let macsStandard = Double(s * s * 9 * cin * cout), macsSeparable = Double(s * s * (9 * cin + cin * cout))
            let ratio = macsStandard / macsSeparable
            rows.append(["size": s, "c_in": cin, "c_out": cout, "standard_ms": standard * 1e3, "separable_ms": separable * 1e3,
                         "flop_ratio": ratio, "speedup": standard / separable])
            if !json {
                print(String(format: "%4d %5d %5d %16.1f %16.1f %11.2f %12.3f %13.3f %18.2f", s, cin, cout,
                             macsStandard / 1e6, macsSeparable / 1e6, ratio, standard * 1e3, separable * 1e3, standard / separable))
            }
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: ["threads": Parallel.threadCount, "shapes": rows], options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
        } else {
            print("The course's \"about 9 times\" is the multiply-add ratio 1 / (1/N + 1/9), which tends to 9 as the output")
            print("channels N grow. Measured speed-ups depart from it both ways: the depthwise pass does few multiply-adds per")
            print("byte it moves (memory-bound), and the standard convolution's efficiency varies with the shape. PyTorch's")
            print("times for the same layers: Scripts/bench_separable_torch.py.")
        }
    }
}

/// Center loss: 2-D embeddings of MNIST digits with softmax alone and with softmax + center loss, as SVG.
struct CenterLossExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "center-loss",
        abstract: "2-D MNIST embeddings trained with softmax alone and with softmax + center loss (Wen et al.); writes an SVG scatter plot of each.")

    @Option(help: "Training images used.") var limit: Int = 6000
    @Option(help: "Epochs.") var epochs: Int = 4
    @Option(help: "Weight λ of the center loss.") var lambda: Float = 0.1
    var lambdaIsValid: Bool { lambda.isFinite && lambda >= 0 && lambda <= 1_000 }
    @Option(help: "Output prefix: writes PREFIX-softmax.svg and PREFIX-center.svg.") var out: String = "center-loss"
    @Option(help: "Random seed.") var seed: UInt64 = 1

    func validate() throws {
        if !lambdaIsValid { throw ValidationError("--lambda must be between 0 and 1000, got \(lambda)") }
        if !(1...60_000).contains(limit) { throw ValidationError("--limit must be between 1 and 60000, got \(limit)") }
        if !(1...10_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 10000, got \(epochs)") }
    }

    func run() throws {
        let mnist = try MNIST()
        let n = Swift.min(limit, mnist.trainImages.shape[0])
        let x = mnist.trainImages.sliced(axis: 0, 0..<n).reshaped([n, 784]).detached()
        let labels = mnist.trainLabels.scalars.prefix(n).map { Int($0) }
        let testN = 1000
        let testX = mnist.testImages.sliced(axis: 0, 0..<testN).reshaped([testN, 784]).detached()
        let testLabels = mnist.testLabels.scalars.prefix(testN).map { Int($0) }
        for useCenter in [false, true] {
            RandomSeed.set(seed)
            let embed = Sequential(inputShape: [784]) {
                Dense(units: 128, activation: .relu, kernelInitializer: .heNormal)
                Dense(units: 64, activation: .relu, kernelInitializer: .heNormal)
                Dense(units: 2)
            }
            let classifier = Sequential(inputShape: [2]) { Dense(units: 10) }
            let optimizer = Adam(learningRate: 0.003)
            let center = CenterLoss(classes: 10, features: 2, alpha: 0.5)
            var order = Array(0..<n)
            var rng = SeededGenerator(seed: seed)
            var lastLoss: Float = 0, lastCenter: Float = 0
            for _ in 0..<epochs {
                order.shuffle(using: &rng)
                for start in stride(from: 0, to: n, by: 64) {
                    let idx = Array(order[start..<Swift.min(n, start + 64)])
                    let xb = x.gathering(atIndices: idx, alongAxis: 0), yb = idx.map { labels[$0] }
                    let (loss, centerValue, features): (Float, Float, Tensor) = {
                        var c = ForwardContext(training: true)
                        let f = embed.forward([xb], context: &c)[0]
                        let logits = classifier.forward([f], context: &c)[0]
                        var l = Tensor.softmaxCrossEntropy(logits: logits, classIndices: Tensor(yb.map(Float.init))).mean()
                        let cl = center.loss(f, labels: yb)
                        if useCenter { l = l + cl * lambda }
                        l.backward()
                        return (l.scalar, cl.scalar, f.detached())
                    }()
                    optimizer.apply(embed.trainableParameters + classifier.trainableParameters)
                    center.update(features, labels: yb)
                    lastLoss = loss; lastCenter = centerValue
                }
            }
            let f = withoutGradients { embed(testX) }
            let predictions = withoutGradients { classifier(f) }.argmax(axis: -1).scalars.map { Int($0) }
            let accuracy = Double(zip(predictions, testLabels).filter { $0 == $1 }.count) / Double(testN)
            // Compactness: mean distance of a test embedding to its class mean, over the mean
            // distance between class means.
            var means = [(Double, Double)](repeating: (0, 0), count: 10), counts = [Double](repeating: 0, count: 10)
            for (i, l) in testLabels.enumerated() {
                means[l].0 += Double(f.scalars[2 * i]); means[l].1 += Double(f.scalars[2 * i + 1]); counts[l] += 1
            }
            for k in 0..<10 where counts[k] > 0 { means[k] = (means[k].0 / counts[k], means[k].1 / counts[k]) }
            var intra = 0.0
            for (i, l) in testLabels.enumerated() {
                intra += hypot(Double(f.scalars[2 * i]) - means[l].0, Double(f.scalars[2 * i + 1]) - means[l].1)
            }
            intra /= Double(testN)
            var inter = 0.0, pairs = 0.0
            for a in 0..<10 { for b in (a + 1)..<10 { inter += hypot(means[a].0 - means[b].0, means[a].1 - means[b].1); pairs += 1 } }
            inter /= pairs
            let path = "\(out)-\(useCenter ? "center" : "softmax").svg"
            try SVGChart.write(Self.svg(f, testLabels, title: useCenter ? "softmax + \(lambda) · center loss" : "softmax only"), to: path)
            print("\(useCenter ? "softmax + center loss" : "softmax only        "): last batch loss \(fmt(Double(lastLoss), 3)) (center term \(fmt(Double(lastCenter), 3))), "
                  + "test accuracy \(fmt(accuracy * 100, 1))%, within-class spread / between-class distance \(fmt(intra / inter, 3)); wrote \(path)")
        }
        print("The center loss pulls each class's embeddings towards a learned centre: the classes become compact")
        print("clusters (a smaller spread ratio) instead of long radial streaks, which is what face verification needs.")
    }

    /// A scatter plot of 2-D points coloured by label.
    static func svg(_ f: Tensor, _ labels: [Int], title: String) -> String {
        let xs = stride(from: 0, to: f.count, by: 2).map { Double(f.scalars[$0]) }
        let ys = stride(from: 1, to: f.count, by: 2).map { Double(f.scalars[$0]) }
        let panel = SVGChart.Panel(width: 480, height: 480, xRange: (xs.min() ?? 0, xs.max() ?? 1), yRange: (ys.min() ?? 0, ys.max() ?? 1))
        var body = panel.axes(title: title, xLabel: "feature 1", yLabel: "feature 2")
        for (i, l) in labels.enumerated() {
            body += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%@\" fill-opacity=\"0.7\"/>\n", panel.px(xs[i]), panel.py(ys[i]), SVGChart.color(l))
        }
        for k in 0..<10 { body += panel.legend("\(k)", color: SVGChart.color(k), row: k) }
        return SVGChart.document(width: 480, height: 480, body: body)
    }
}

/// Dropout vs spatial dropout vs augmentation on a small MNIST training set.
struct DropoutExample: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dropout",
        abstract: "A small convnet on 1,000 MNIST images: no regularisation, Dropout, SpatialDropout2D, and random shifts (augmentation); train vs test accuracy.")

    @Option(help: "Training images used.") var limit: Int = 1000
    @Option(help: "Epochs.") var epochs: Int = 8
    @Option(help: "Random seed.") var seed: UInt64 = 1

    /// Each image shifted by up to 2 pixels in each direction (zeros fill in), seeded.
    static func shifted(_ x: Tensor, generator g: inout SeededGenerator) -> Tensor {
        let (n, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        var out = [Float](repeating: 0, count: x.count)
        for i in 0..<n {
            let dy = Int(g.next() % 5) - 2, dx = Int(g.next() % 5) - 2
            for y in 0..<h where y + dy >= 0 && y + dy < h {
                for xx in 0..<w where xx + dx >= 0 && xx + dx < w {
                    out[(i * h + y + dy) * w + xx + dx] = x.scalars[(i * h + y) * w + xx]
                }
            }
        }
        return Tensor(shape: x.shape, scalars: out)
    }

    func validate() throws {
        if !(1...60_000).contains(limit) { throw ValidationError("--limit must be between 1 and 60000, got \(limit)") }
        if !(1...10_000).contains(epochs) { throw ValidationError("--epochs must be between 1 and 10000, got \(epochs)") }
    }

    func run() throws {
        let mnist = try MNIST()
        let n = Swift.min(limit, mnist.trainImages.shape[0])
        let x = mnist.trainImages.sliced(axis: 0, 0..<n).detached()
        let y = toCategorical(mnist.trainLabels.sliced(axis: 0, 0..<n), numClasses: 10)
        let testX = mnist.testImages.sliced(axis: 0, 0..<2000).detached()
        let testY = toCategorical(mnist.testLabels.sliced(axis: 0, 0..<2000), numClasses: 10)
        print("Conv(32) → MaxPool → Conv(64) → MaxPool → [regulariser] → Dense(10), \(n) training images, \(epochs) epochs")
        var results: [(String, Float, Float)] = []
        for variant in ["none", "dropout", "spatial dropout", "augmentation"] {
            RandomSeed.set(seed)
            let model = Sequential(inputShape: [28, 28, 1], name: variant) {
                Conv2D(filters: 32, kernelSize: 3, activation: .relu)
                MaxPooling2D(2)
                Conv2D(filters: 64, kernelSize: 3, activation: .relu)
                if variant == "spatial dropout" { SpatialDropout2D(0.3) }
                MaxPooling2D(2)
                Flatten()
                if variant == "dropout" { Dropout(0.5) }
                Dense(units: 10, activation: .softmax)
            }
            model.compile(optimizer: .adam(), loss: .categoricalCrossentropy(), metrics: [.accuracy])
            var g = SeededGenerator(seed: seed)
            for _ in 0..<epochs {
                let xe = variant == "augmentation" ? Self.shifted(x, generator: &g) : x
                try model.fit(x: xe, y: y, batchSize: 32, epochs: 1, verbose: .silent)
            }
            let train = try model.evaluate(x: x, y: y)["accuracy"] ?? 0, test = try model.evaluate(x: testX, y: testY)["accuracy"] ?? 0
            let label = variant.padding(toLength: 16, withPad: " ", startingAt: 0)
            print(String(format: "  %@ train accuracy %5.1f%%  test accuracy %5.1f%%  gap %4.1f points", label,
                         train * 100, test * 100, (train - test) * 100))
            results.append((variant, train, test))
        }
        let bestTest = results.max { $0.2 < $1.2 }!, smallestGap = results.min { $0.1 - $0.2 < $1.1 - $1.2 }!
        print("The train–test gap measures overfitting. Here the best test accuracy came with \(bestTest.0), the smallest")
        print("gap with \(smallestGap.0). Dropout silences single units, spatial dropout whole feature maps (neighbouring")
        print("pixels are correlated, so single-unit dropout in conv layers is weak), augmentation shows new images.")
    }
}
