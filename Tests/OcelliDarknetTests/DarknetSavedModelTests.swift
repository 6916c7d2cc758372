import Foundation
import Testing
@testable import OcelliNN
import OcelliTensor
import OcelliTestSupport
@testable import OcelliDarknet

/// Models built from a Darknet cfg, saved with `save(to:)`, load again: in this process once
/// `DarknetLayers.register()` ran, and in a fresh `ocelli` process, which registers them at start.
@Suite struct DarknetSavedModelTests {
    /// Every Darknet layer class Ocelli builds (conv with and without batch norm, maxpool,
    /// shortcut, reorg, upsample, a two-layer route) and a yolo head, on a 32x32 input.
    static let cfg = """
        [net]
        width=32
        height=32
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
        filters=8
        size=3
        stride=1
        pad=1
        activation=linear

        [shortcut]
        from=-2
        activation=linear

        [reorg]
        stride=2

        [convolutional]
        batch_normalize=1
        filters=16
        size=1
        stride=1
        pad=1
        activation=leaky

        [upsample]
        stride=2

        [route]
        layers=-1,3

        [convolutional]
        size=1
        stride=1
        pad=1
        filters=21
        activation=linear

        [yolo]
        mask=0,1,2
        anchors=10,14, 23,27, 37,58
        classes=2
        num=3

        """

    @Test func darknetLayersRoundTripTheirConfig() throws {
        DarknetLayers.register()
        let layers: [Layer] = [
            DarknetConvolutional(filters: 5, size: 3, stride: 2, padding: 1, groups: 5, dilation: 2, batchNormalize: true, activation: .mish),
            DarknetConnected(outputs: 7, batchNormalize: true, activation: .relie),
            DarknetReorg(stride: 3), DarknetShortcut(alpha: 0.5, beta: 2, activation: .leaky), DarknetAvgPool(),
        ]
        #expect(Set(layers.map(\.typeName)) == Set(DarknetLayers.types.keys))
        for layer in layers {
            let again = try LayerRegistry.layer(from: LayerConfig(layer.config, className: layer.typeName))
            #expect(type(of: again) == type(of: layer))
            #expect(again.config == layer.config, "\(layer.typeName)")
        }
        func failure(_ cls: String, _ values: [String: JSONValue]) -> String {
            do { _ = try LayerRegistry.layer(from: LayerConfig(values, className: cls, path: "model.json", index: 2)); return "no error" } catch {
                return "\(error)"
            }
        }
        #expect(failure("DarknetConvolutional", ["filters": .int(0), "size": .int(3)])
                == "model.json: layer 2 (DarknetConvolutional): 'filters' must be between 1 and 1048576, got 0")
        #expect(failure("DarknetConvolutional", ["filters": .int(4), "size": .int(3), "padding": .int(-1)])
                == "model.json: layer 2 (DarknetConvolutional): 'padding' must be between 0 and 1048576, got -1")
        #expect(failure("DarknetReorg", ["stride": .number(1e30)])
                == "model.json: layer 2 (DarknetReorg): 'stride' must be an integer, got 1e+30")
        #expect(failure("DarknetShortcut", ["activation": .string("sparkle")])
                == "model.json: layer 2 (DarknetShortcut): unknown Darknet activation 'sparkle' (\(DarknetActivation.allCases.map(\.rawValue).joined(separator: ", ")))")
        #expect(failure("DarknetConnected", [:]) == "model.json: layer 2 (DarknetConnected): missing integer 'output'")
    }

    @Test func registeringIsIdempotentFromAnyThread() {
        DispatchQueue.concurrentPerform(iterations: 8) { _ in DarknetLayers.register() }
        DarknetLayers.register()
        for name in DarknetLayers.types.keys { #expect(LayerRegistry.factory(name) != nil, "\(name)") }
    }

    /// The saved model of a small Darknet network, loaded by `ocelli summary` in a process of its
    /// own: nothing has built a `DarknetNetwork` there, so only the tool's explicit
    /// `DarknetLayers.register()` lets `Model.load` rebuild the Darknet layers.
    @Test func savedDarknetModelLoadsInAFreshProcess() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ocelli-darknet-saved-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let cfgPath = dir.appendingPathComponent("tiny.cfg").path
        try Data(Self.cfg.utf8).write(to: URL(fileURLWithPath: cfgPath))
        let net = try DarknetNetwork(cfg: cfgPath)
        _ = try net.loadWeights(syntheticWeights(net))
        let saved = dir.appendingPathComponent("saved").path
        try net.model.save(to: saved)
        let parameters = net.model.layers.reduce(0) { $0 + $1.parameterCount }
        #expect(parameters == 1933)

        let tool: String
        switch OcelliExecutable.path {
        case .success(let p): tool = p
        case .failure(let missing): Issue.record("\(missing)"); return
        }
        let result = try OcelliExecutable.run(["summary", saved])
        #expect(result.status == 0, "`\(tool) summary \(saved)` exited with \(result.status): \(result.error)")
        for name in ["conv_0 (DarknetConvolutional)", "maxpool_1 (MaxPooling2D)", "shortcut_3 (DarknetShortcut)",
                     "reorg_4 (DarknetReorg)", "upsample_6 (UpSampling2D)", "route_7 (Concatenate)", "conv_8 (DarknetConvolutional)"] {
            #expect(result.output.contains(name), "the summary should list \(name):\n\(result.output)")
        }
        #expect(result.output.contains("Total params: 1,933"), "\(result.output)")
    }
}
