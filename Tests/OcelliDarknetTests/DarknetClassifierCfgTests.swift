import Foundation
import Testing
import OcelliDarknet
import OcelliNN
import OcelliTensor

/// Darknet-19 and Tiny Darknet builders (issue 7, part 7) against Darknet's own cfg files, built
/// by OcelliDarknet. OcelliDarknet merges Darknet's batch normalization into its convolution
/// layer, so parameters are compared, not layers: weights + biases/β + scales/γ + rolling
/// mean and variance on both sides.
@Suite struct DarknetClassifierCfgTests {
    static func count(_ m: Model) -> Int { m.parameters.reduce(0) { $0 + $1.count } }

    @Test func darknet19MatchesDarknetsCfg() throws {
        let reference = try DarknetNetwork(cfg: Paths.cfg("darknet19.cfg"))
        let built = Architectures.darknet19()
        #expect(Self.count(built) == Self.count(reference.model))
        #expect(Self.count(built) == 20_856_776)  // weights, β, γ and rolling statistics of darknet19.cfg
        #expect(built.outputs[0].shape == [1000])
    }

    @Test func tinyDarknetMatchesDarknetsCfg() throws {
        let reference = try DarknetNetwork(cfg: Paths.cfg("tiny.cfg"))
        let built = Architectures.tinyDarknet()
        #expect(Self.count(built) == Self.count(reference.model))
    }
}
