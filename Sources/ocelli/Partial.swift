import ArgumentParser
import Foundation
import Ocelli

/// `ocelli partial CFG WEIGHTS OUT N`: Darknet's `partial`, the first N layers' weights as a backbone.
struct Partial: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the weights of the layers before N (Darknet's `darknet partial cfg weights out N`, e.g. darknet53.conv.74), with seen reset to 0.")

    @Argument(help: "The .cfg file, or the name of a bundled one.")
    var cfg: String

    @Argument(help: "The weights to take the layers from.")
    var weights: String

    @Argument(help: "The weights file to write.")
    var out: String

    @Argument(help: "Layers to keep: those with an index below N.")
    var layers: Int

    func run() throws {
        guard layers >= 1 else { throw ValidationError("N must be at least 1, got \(layers)") }
        let source = URL(fileURLWithPath: weights).standardizedFileURL.resolvingSymlinksInPath().path
        guard URL(fileURLWithPath: out).standardizedFileURL.resolvingSymlinksInPath().path != source else {
            throw ValidationError("OUT is the input weights file: write the backbone to another file")
        }
        do {
            let network = try DarknetNetwork(cfg: BundledData.cfgNamed(cfg) ?? cfg)
            let (_, loaded) = try network.loadWeights(weights, partial: true)
            let kept = network.weightedLayers.filter { $0.index < layers }.count
            guard kept <= loaded else {
                throw DarknetError(file: weights, "holds \(loaded) weighted layers; the first \(layers) layers of the cfg have \(kept)")
            }
            network.seen = 0
            try network.saveWeights(out, upTo: layers)
            print("\(out): the weights of \(kept) layers (Darknet layers 0…\(min(layers, network.layers.count) - 1)), seen 0")
        } catch let e as ValidationError { throw e } catch { throw failure("\(error)") }
    }
}
