import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport

/// Losses for embeddings and margins, focal loss, label smoothing (issue 7, part 6).
@Suite struct FocalEmbeddingMarginLossTests {
    static let tolerance: Float = 1e-5

    @Test func focalLossesMatchKerasAndTorchvision() {
        let f = ReferenceFixtures.entry("focal")
        let logits = ReferenceFixtures.tensor(f["logits"]), onehot = ReferenceFixtures.tensor(f["onehot"])
        let probs = ReferenceFixtures.tensor(f["probs"])
        #expect(maxDifference(KerasLoss.categoricalFocalCrossentropy().perSample(onehot, probs), ReferenceFixtures.tensor(f["categorical"])) <= Self.tolerance)
        let cfl = KerasLoss.categoricalFocalCrossentropy(alpha: 0.5, gamma: 1.5, fromLogits: true, labelSmoothing: 0.1)
        #expect(maxDifference(cfl.perSample(onehot, logits), ReferenceFixtures.tensor(f["categorical_logits_ls"])) <= Self.tolerance)
        let bl = ReferenceFixtures.tensor(f["binary_logits"]), bt = ReferenceFixtures.tensor(f["binary_targets"])
        #expect(maxDifference(KerasLoss.binaryFocalCrossentropy(fromLogits: true).perSample(bt, bl), ReferenceFixtures.tensor(f["binary"])) <= Self.tolerance)
        let balanced = KerasLoss.binaryFocalCrossentropy(applyClassBalancing: true, alpha: 0.3, gamma: 1, fromLogits: true, labelSmoothing: 0.2)
        #expect(maxDifference(balanced.perSample(bt, bl), ReferenceFixtures.tensor(f["binary_balanced_ls"])) <= Self.tolerance)
        #expect(maxDifference(EmbeddingLoss.sigmoidFocalLoss(logits: bl, targets: bt), ReferenceFixtures.tensor(f["torchvision_sigmoid_focal"])) <= Self.tolerance)
        // By hand: p = 0.5 on the true class, α = 0.25, γ = 2 → 0.25 · 0.5² · ln 2.
        let half = KerasLoss.categoricalFocalCrossentropy().perSample(Tensor([[1, 0]]), Tensor([[0.5, 0.5]]))
        #expect(abs(half.scalar - 0.25 * 0.25 * Float(M_LN2)) < 1e-6)
        // γ = 0 and α = 1: plain cross-entropy.
        #expect(maxDifference(KerasLoss.categoricalFocalCrossentropy(alpha: 1, gamma: 0).perSample(onehot, probs),
                              KerasLoss.categoricalCrossentropy().perSample(onehot, probs)) <= 1e-6)
        let r = checkGradients([TestData.uniform([3, 4], seed: 1, scale: 2)]) { t in
            KerasLoss.categoricalFocalCrossentropy(fromLogits: true).perSample(Tensor.oneHot([0, 2, 3], depth: 4), t[0])
        }
        #expect(r.passed, "categorical focal: \(r)")
        let rb = checkGradients([TestData.uniform([3, 4], seed: 2, scale: 2)]) { t in
            EmbeddingLoss.sigmoidFocalLoss(logits: t[0], targets: Tensor(shape: [3, 4], scalars: [1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 1, 1]))
        }
        #expect(rb.passed, "sigmoid focal: \(rb)")
        let targets = Tensor(shape: [2, 3], scalars: [1, 0, 1, 0, 0, 1])
        for loss in [KerasLoss.binaryFocalCrossentropy(applyClassBalancing: true, alpha: 0.3, gamma: 1.5, fromLogits: true, labelSmoothing: 0.1),
                     .binaryFocalCrossentropy(gamma: 2), .sparseCategoricalCrossentropy(fromLogits: true, labelSmoothing: 0.2)] {
            let isSparse = loss == .sparseCategoricalCrossentropy(fromLogits: true, labelSmoothing: 0.2)
            let input = isSparse ? TestData.uniform([2, 3], seed: 4, scale: 2) : Tensor.uniform([2, 3], minimum: 0.2, maximum: 0.8, seed: 4)
            let r = checkGradients([input]) { t in
                loss.perSample(isSparse ? Tensor([2, 0]) : targets, t[0])
            }
            #expect(r.passed, "\(loss): \(r)")
        }
    }

    @Test func labelSmoothingInEveryCrossEntropy() {
        let f = ReferenceFixtures.entry("focal")
        let logits = ReferenceFixtures.tensor(f["logits"]), onehot = ReferenceFixtures.tensor(f["onehot"])
        let keras = ReferenceFixtures.tensor(f["sparse_ls_logits"])  // Keras' categorical CE, smoothing 0.2, from logits
        let indices = Tensor([0, 3, 1, 4])
        #expect(maxDifference(KerasLoss.categoricalCrossentropy(fromLogits: true, labelSmoothing: 0.2).perSample(onehot, logits), keras) <= Self.tolerance)
        #expect(maxDifference(KerasLoss.sparseCategoricalCrossentropy(fromLogits: true, labelSmoothing: 0.2).perSample(indices, logits), keras) <= Self.tolerance)
        #expect(maxDifference(KerasLoss.sparseCategoricalCrossentropy(labelSmoothing: 0.2).perSample(indices, logits.softmax()), keras) <= 1e-4)
        // Binary: targets squeezed towards ½ (by hand: t = 1 → 0.9 with smoothing 0.2).
        let p = Tensor([[0.8]])
        let expected = -(0.9 * Foundation.log(0.8) + 0.1 * Foundation.log(0.2))
        #expect(abs(KerasLoss.binaryCrossentropy(labelSmoothing: 0.2).perSample(Tensor([[1]]), p).scalar - Float(expected)) < 1e-6)
    }

    @Test func tripletMarginLossMatchesPyTorch() {
        let f = ReferenceFixtures.entry("triplet_margin")
        let a = ReferenceFixtures.tensor(f["anchor"]), p = ReferenceFixtures.tensor(f["positive"]), n = ReferenceFixtures.tensor(f["negative"])
        let loss = EmbeddingLoss.tripletMarginLoss(anchor: a, positive: p, negative: n, margin: Float(f["margin"] as! Double))
        #expect(abs(loss.scalar - Float(f["loss"] as! Double)) <= Self.tolerance)
        // Step 1e-3: a row lies within 1e-2 of the hinge.
        let r = checkGradients([a, p, n], step: 1e-3) { t in EmbeddingLoss.tripletMarginLoss(anchor: t[0], positive: t[1], negative: t[2], margin: 0.7) }
        #expect(r.passed, "\(r)")
    }

    @Test func batchAllAndBatchHardTripletLossesMatchTheReference() {
        let f = ReferenceFixtures.entry("batch_triplet")
        let e = ReferenceFixtures.tensor(f["embeddings"]), labels = f["labels"] as! [Int], margin = Float(f["margin"] as! Double)
        for c in f["cases"] as! [[String: Any]] {
            let mining: EmbeddingLoss.Mining = (c["mining"] as! String) == "all" ? .batchAll : .batchHard
            let squared = c["squared"] as! Bool
            let loss = EmbeddingLoss.tripletLoss(embeddings: e, labels: labels, margin: margin, mining: mining, squared: squared)
            #expect(abs(loss.scalar - Float(c["loss"] as! Double)) <= 1e-5, "\(mining) squared \(squared): \(loss.scalar) vs \(c["loss"]!)")
            // Step 1e-3: some triplets lie within 1e-2 of the hinge (the active set would change).
            let r = checkGradients([e], step: 1e-3) { t in EmbeddingLoss.tripletLoss(embeddings: t[0], labels: labels, margin: margin, mining: mining, squared: squared) }
            #expect(r.passed, "\(mining) squared \(squared): \(r)")
        }
        // By hand on a line: a = 0, p = 1 (same class), n = 3. d(a,p) − d(a,n) + 2 = 0 for the
        // anchor 0; anchor 1: 1 − 2 + 2 = 1; anchor 3 has no positive. Batch hard: mean(0, 1) = 0.5.
        let line = Tensor([[0], [1], [3]])
        #expect(abs(EmbeddingLoss.tripletLoss(embeddings: line, labels: [0, 0, 1], margin: 2, mining: .batchHard).scalar - 0.5) < 1e-5)
        // Batch all: the valid triplets are (0,1,2) → 0 and (1,0,2) → 1; one is active.
        #expect(abs(EmbeddingLoss.tripletLoss(embeddings: line, labels: [0, 0, 1], margin: 2, mining: .batchAll).scalar - 1) < 1e-5)
    }

    @Test func contrastiveLossMatchesTheReference() {
        let f = ReferenceFixtures.entry("contrastive")
        let x1 = ReferenceFixtures.tensor(f["x1"]), x2 = ReferenceFixtures.tensor(f["x2"]), y = ReferenceFixtures.tensor(f["similar"])
        let margin = Float(f["margin"] as! Double)
        #expect(abs(EmbeddingLoss.contrastiveLoss(x1, x2, similar: y, margin: margin).scalar - Float(f["loss"] as! Double)) <= 1e-6)
        // By hand: similar pair at distance 2 → ½·4 = 2; dissimilar at 0.5 with margin 1 → ½·0.25.
        let a = Tensor([[0, 0], [0, 0]]), b = Tensor([[2, 0], [0, 0.5]])
        #expect(abs(EmbeddingLoss.contrastiveLoss(a, b, similar: Tensor([1, 0])).scalar - (2 + 0.125) / 2) < 1e-6)
        let r = checkGradients([x1, x2]) { t in EmbeddingLoss.contrastiveLoss(t[0], t[1], similar: y, margin: margin) }
        #expect(r.passed, "\(r)")
    }

    /// Three classes of 4-D points, each a cluster around its own centre, as tensors for fit.
    static func clusters(perClass: Int, seed: UInt64) -> (x: Tensor, labels: Tensor) {
        var g = SeededGenerator(seed: seed)
        var x: [Float] = [], y: [Float] = []
        let centres: [[Float]] = [[2, 0, 0, 1], [0, 2, 1, 0], [-2, -1, 0, 0]]
        for i in 0..<(3 * perClass) {
            let c = i % 3
            x += centres[c].map { $0 + Float(Double(g.next() % 1000) / 1000 - 0.5) }
            y.append(Float(c))
        }
        return (Tensor(shape: [3 * perClass, 4], scalars: x), Tensor(shape: [3 * perClass], scalars: y))
    }

    /// Mean distance between embeddings of one class over the mean distance between classes.
    static func separationRatio(_ e: Tensor, _ labels: [Int]) -> Float {
        let d = EmbeddingLoss.pairwiseDistances(e).scalars, n = labels.count
        var same: [Float] = [], other: [Float] = []
        for i in 0..<n { for j in 0..<n where i != j { (labels[i] == labels[j] ? { same.append(d[i * n + j]) } : { other.append(d[i * n + j]) })() } }
        return (same.reduce(0, +) / Float(same.count)) / (other.reduce(0, +) / Float(other.count))
    }

    @Test func tripletLossTrainsAnEmbeddingThroughFitAndIsSaved() throws {
        try RandomSeed.withSeed(3) {
            let (x, y) = Self.clusters(perClass: 20, seed: 9)
            let labels = y.scalars.map { Int($0) }
            let input = Input(shape: [4])
            let model = Model(inputs: [input], outputs: [Dense(units: 2, activation: .linear)(Dense(units: 8, activation: .relu)(input))])
            model.compile(optimizer: .adam(learningRate: 0.02), loss: .triplet(margin: 1, mining: .batchHard))
            let before = Self.separationRatio(model.predict(x: x), labels)
            let history = try model.fit(x: x, y: y, batchSize: 30, epochs: 30, verbose: .silent)
            let losses = history.history["loss"] ?? []
            let after = Self.separationRatio(model.predict(x: x), labels)
            #expect(losses.count == 30 && losses.last! < losses.first! * 0.5, "\(losses)")
            #expect(after < before && after < 0.3, "before \(before), after \(after)")
            // The loss is part of the saved compile configuration.
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-triplet-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try model.save(to: dir)
            let loaded = try Model.load(from: dir)
            let triplet = try #require(loaded.loss as? TripletLoss)
            #expect(triplet.margin == 1 && triplet.mining == .batchHard && !triplet.squared)
            // Labels that are not integers are an error, not a silent truncation.
            #expect(throws: TrainingError.self) { try loaded.fit(x: x, y: y + 0.5, batchSize: 30, verbose: .silent) }
        }
    }

    @Test func contrastiveLossTrainsASiameseModelThroughFit() throws {
        try RandomSeed.withSeed(4) {
            let (x, y) = Self.clusters(perClass: 20, seed: 11)
            let n = y.count
            // Pairs (i, i + k): similar when the classes agree.
            var g = SeededGenerator(seed: 2)
            let partner = (0..<n).map { _ in Int(g.next() % UInt64(n)) }
            let left = x, right = Model.batch(x, partner[...])
            let similar = Tensor((0..<n).map { y.scalars[$0] == y.scalars[partner[$0]] ? Float(1) : 0 })
            let a = Input(shape: [4]), b = Input(shape: [4])
            let hidden = Dense(units: 8, activation: .relu), embed = Dense(units: 2)
            let model = Model(inputs: [a, b], outputs: [embed(hidden(a)), embed(hidden(b))])
            model.compile(optimizer: .adam(learningRate: 0.02), loss: .contrastive(margin: 2))
            let source = try TensorBatches(x: [left, right], y: similar, batchSize: 20, shuffle: true, seed: 1)
            let history = try model.fit(source, epochs: 25, verbose: .silent)
            let losses = history.history["loss"] ?? []
            #expect(losses.count == 25 && losses.last! < losses.first! * 0.5, "\(losses)")
            // A one-output model is refused with the reason.
            let single = Model(inputs: [a], outputs: [embed(hidden(a))])
            single.compile(optimizer: .sgd(), loss: .contrastive())
            #expect(throws: TrainingError.self) { try single.fit(x: x, y: y, batchSize: 10, verbose: .silent) }
        }
    }

    @Test func centerLossPullsFeaturesAndMovesCentres() {
        let center = CenterLoss(classes: 2, features: 2, alpha: 0.5)
        let x = Tensor([[1, 1], [3, 1], [0, -2]])
        // Centres at 0: ½·mean(2, 10, 4) = 8/3.
        #expect(abs(center.loss(x, labels: [0, 0, 1]).scalar - 8.0 / 3) < 1e-6)
        center.update(x, labels: [0, 0, 1])
        // Class 0: Δ = ((0−1) + (0−3), (0−1) + (0−1)) / 3 = (−4/3, −2/3); c = −0.5·Δ = (2/3, 1/3).
        // Class 1: Δ = (0, 2)/2 = (0, 1); c = (0, −0.5).
        #expect(center.centers.isClose(to: Tensor([[2.0 / 3, 1.0 / 3], [0, -0.5]])))
        let r = checkGradients([x]) { t in center.loss(t[0], labels: [0, 0, 1]) }
        #expect(r.passed, "\(r)")
        // Repeated updates converge to the class means.
        for _ in 0..<60 { center.update(x, labels: [0, 0, 1]) }
        #expect(center.centers.isClose(to: Tensor([[2, 1], [0, -2]]), absolute: 1e-4))
    }

    @Test func marginHeadsByHandAndGradients() throws {
        let x = Input(shape: [2], name: "features"), y = Input(shape: [3], name: "labels")
        func head(_ margin: AngularMargin) -> (Model, MarginSoftmax) {
            let layer = MarginSoftmax(classes: 3, margin: margin)
            let model = Model(inputs: [x, y], outputs: [layer([x, y])])
            // Class columns at angles 0, 90°, 180° (norms 2, 1, 3: normalised away).
            layer.kernel.assign(Tensor([[2, 0, -3], [0, 1, 0]]))
            return (model, layer)
        }
        // A feature at 60° of magnitude 2, true class 0.
        let f = Tensor([[1, Float(3).squareRoot()]]), label = Tensor([[1, 0, 0]])
        let cos60: Float = 0.5, cos30: Float = Float(3).squareRoot() / 2
        func run(_ m: Model) -> [Float] { var c = ForwardContext(training: false); return m.forward([f, label], context: &c)[0].scalars }
        let cosFace = run(head(.cosFace(scale: 10, margin: 0.2)).0)
        #expect(zip(cosFace, [10 * (cos60 - 0.2), 10 * cos30, -10 * cos60]).allSatisfy { abs($0 - $1) < 1e-5 }, "\(cosFace)")
        let arc = run(head(.arcFace(scale: 10, margin: 0.3)).0)
        #expect(abs(arc[0] - 10 * Foundation.cos(Float.pi / 3 + 0.3)) < 1e-5 && abs(arc[1] - 10 * cos30) < 1e-5, "\(arc)")
        // SphereFace m = 2, θ = 60°: k = ⌊120/180⌋ = 0, ψ = cos 120° = −0.5, times ‖x‖ = 2.
        let sphere = run(head(.sphereFace(m: 2)).0)
        #expect(abs(sphere[0] - 2 * -0.5) < 1e-5 && abs(sphere[1] - 2 * cos30) < 1e-5, "\(sphere)")
        // m = 4, θ = 60°: k = ⌊240/180⌋ = 1, ψ = −cos 240° − 2 = −1.5.
        let sphere4 = run(head(.sphereFace(m: 4)).0)
        #expect(abs(sphere4[0] - 2 * -1.5) < 1e-5, "\(sphere4)")
        // Without labels (inference): no margin.
        var c = ForwardContext(training: false)
        let plain = head(.arcFace(scale: 10, margin: 0.3)).0.forward([f, Tensor([[0, 0, 0]])], context: &c)[0].scalars
        #expect(abs(plain[0] - 10 * cos60) < 1e-5)
        for margin in [AngularMargin.cosFace(scale: 4, margin: 0.3), .arcFace(scale: 4, margin: 0.4), .sphereFace(m: 3), .normalized(scale: 5)] {
            let (model, layer) = head(margin)
            let features = TestData.uniform([4, 2], seed: 3)
            let labels = Tensor.oneHot([0, 2, 1, 0], depth: 3)
            let r = checkGradients([features, layer.kernel.value.detached()]) { t in
                layer.kernel.value = t[1]
                var ctx = ForwardContext(training: true)
                return model.forward([t[0], labels], context: &ctx)[0]
            }
            #expect(r.passed, "\(margin): \(r)")
        }
        // Saves and loads.
        let (model, _) = head(.arcFace(scale: 16, margin: 0.25))
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-concepts-margin-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.save(to: dir)
        let loaded = try Model.load(from: dir)
        var c1 = ForwardContext(training: false), c2 = ForwardContext(training: false)
        #expect(loaded.forward([f, label], context: &c1)[0].scalars == model.forward([f, label], context: &c2)[0].scalars)
    }
}
