import Foundation
import Testing
import OcelliDetection
import OcelliNN
import OcelliTensor
import OcelliVision
import OcelliTestSupport
@testable import OcelliDarknet

/// A Darknet cfg trained through `compile`/`fit` with Darknet's own loss, on the digits data.
@Suite(.serialized) struct DarknetTrainingTests {
    static let tinyDigitsCfg = """
        [net]
        width=64
        height=64
        channels=3

        [convolutional]
        batch_normalize=1
        filters=8
        size=3
        stride=1
        pad=1
        activation=leaky

        [maxpool]
        size=2
        stride=2

        [convolutional]
        batch_normalize=1
        filters=16
        size=3
        stride=1
        pad=1
        activation=leaky

        [maxpool]
        size=2
        stride=2

        [convolutional]
        batch_normalize=1
        filters=32
        size=3
        stride=1
        pad=1
        activation=leaky

        [maxpool]
        size=2
        stride=2

        [convolutional]
        size=1
        stride=1
        pad=1
        filters=45
        activation=linear

        [yolo]
        mask=0,1,2
        anchors=6,8, 12,14, 20,22
        classes=10
        num=3
        ignore_thresh=.5
        truth_thresh=1
        """

    @Test func yoloCfgTrainsThroughFitWithDarknetsLoss() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-yolo-fit-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: directory) }
        try DigitsDetection.write(split: .train, count: 32, seed: 4, digits: try DigitsDetection.Digits(), to: directory)
        let dataset = try DetectionDataset.load(directory, split: "train")
        let loader = DetectionLoader(dataset: dataset, batchSize: 8, inputSize: 64, seed: 1, prefetch: 0)
        try RandomSeed.withSeed(5) {
            let network = try DarknetNetwork(config: DarknetConfig(text: Self.tinyDigitsCfg, file: "tiny-digits.cfg"))
            let loss = try network.yoloLoss()
            network.model.compile(optimizer: .adam(learningRate: 3e-3), loss: loss)
            let before = try network.model.evaluate(loader)["loss"]!
            #expect(loss.seen == 0, "evaluate does not count as training")
            let history = try network.model.fit(loader, epochs: 12, verbose: .silent)
            // Darknet's statistics of the last training batch: the head found the digits it is
            // responsible for and learnt that most places hold none.
            let stats = try #require(loss.lastStatistics.first)
            let after = try network.model.evaluate(loader)["loss"]!
            let losses = history.history["loss"]!
            // Training-mode losses fall fast; evaluation (batch norm's running averages, which
            // lag behind after a few dozen steps) falls too.
            #expect(losses.count == 12 && losses.last! < losses.first! * 0.3 && after < before, "loss \(before) → \(after); per epoch \(losses)")
            #expect(loss.seen == 12 * 32)
            #expect(stats.count > 0 && stats.noObjectness < 0.1 && stats.objectness > stats.noObjectness && stats.darknetCost > 0, "\(stats)")
        }
    }

    @Test func lossOptionsComeFromTheCfgAndAreChecked() throws {
        let v2 = try DarknetNetwork(cfg: TestFiles.cfg("yolov2-voc.cfg"))
        let loss = try v2.yoloLoss()
        guard case .region(let r) = try #require(loss.heads.first) else { Issue.record("not a region head"); return }
        // yolov2-voc.cfg: thresh=.6, object_scale=5, rescore=1, bias_match=1, softmax=1.
        #expect(r.threshold == 0.6 && r.objectScale == 5 && r.noObjectScale == 1 && r.rescore && r.biasMatch && r.softmax)
        let tiny = try DarknetNetwork(cfg: TestFiles.cfg("yolov3-tiny.cfg"))
        let heads = try tiny.yoloLoss().heads
        #expect(heads.count == 2)
        if case .yolo(let y) = heads[0] { #expect(y.mask == [3, 4, 5] && y.ignoreThreshold == 0.7 && y.classes == 80) }
        let bad = Self.tinyDigitsCfg.replacingOccurrences(of: "ignore_thresh=.5", with: "ignore_thresh=-1")
        #expect(throws: DarknetError.self) { try DarknetNetwork(config: DarknetConfig(text: bad, file: "bad.cfg")).yoloLoss() }
    }
}
