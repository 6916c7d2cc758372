import ArgumentParser
import Foundation
import Ocelli

/// `ocelli summary`: a built-in architecture, a Darknet cfg or a saved Ocelli model, Keras-style,
/// with each layer's receptive field (size, jump, start) and optionally a map of what one
/// output cell sees.
struct Summary: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a model's summary and receptive fields: a built-in architecture (\(Architectures.names.joined(separator: ", "))), a Darknet .cfg (plus Darknet's layer table and BFLOPs) or a model saved with save(to:).")

    @Argument(help: "An architecture name, a Darknet .cfg file, or a folder holding model.json (+ model.safetensors).")
    var model: String

    @Option(help: "Input width and height (default: the architecture's or the cfg's [net]).")
    var size: Int?

    @Option(help: "Classes of a built-in architecture (default: 1000, 10 for wide ResNets; for ssd300 the object classes without the background, default 20).")
    var classes: Int?

    @Option(name: .customLong("receptive-field-map"), help: "Draw on this image the region that one output cell sees.")
    var receptiveFieldMap: String?

    @Option(help: "The output cell ROW,COL for --receptive-field-map (default: the centre cell).")
    var cell: String?

    @Option(help: "The layer whose cell is drawn (default: the last layer with a spatial output).")
    var layer: String?

    @Option(help: "The PNG to write for --receptive-field-map.")
    var out: String = "receptive_field.png"

    func run() throws {
        var isDir: ObjCBool = false
        let built: Model
        var darknetTable: String?
        if FileManager.default.fileExists(atPath: model, isDirectory: &isDir), isDir.boolValue {
            do { built = try Model.load(from: model) } catch { throw failure("\(error)") }
        } else if !FileManager.default.fileExists(atPath: model), SSDModels.names.contains(model.lowercased()) {
            if let size, size != 300 { throw failure("\(model) takes 300x300 images (its default boxes are laid out for them); --size \(size) is not possible") }
            do { built = try SSDModels.named(model, classes: classes).model } catch { throw failure("\(error)") }
        } else if !FileManager.default.fileExists(atPath: model), Architectures.names.contains(model.lowercased())
                    || model.lowercased().hasPrefix("wrn-") || model.lowercased().hasPrefix("mobilenet-") {
            do {
                built = try Architectures.named(model, classes: classes, inputShape: size.map { [$0, $0, 3] })
            } catch { throw failure("\(error)") }
        } else {
            let model = BundledData.cfgNamed(model) ?? model
            guard FileManager.default.fileExists(atPath: model) else {
                throw failure("\(model): no such file or folder, and not a built-in architecture (\(Architectures.names.joined(separator: ", ")); wrn-DEPTH-WIDTH and mobilenet-ALPHA take any numbers) or a bundled Darknet cfg (\(BundledData.cfgNames.joined(separator: ", ")))")
            }
            let network: DarknetNetwork
            do { network = try DarknetNetwork(cfg: model, width: size, height: size) } catch { throw failure("\(error)") }
            for w in network.config.warnings { printError("warning: \(w)") }
            built = network.model
            darknetTable = network.darknetTable()
        }
        print(built.summary())
        print("Receptive fields (input pixels; start = centre of cell 0):")
        print(built.receptiveFieldReport())
        if let darknetTable { print(darknetTable, terminator: "") }
        if let image = receptiveFieldMap {
            var target: (Int, Int)
            if let cell { target = try ReceptiveFieldMap.parseCell(cell) } else {
                let grid = built.receptiveFieldTable().last { $0.rows != nil && $0.outputShape.count == 3 }?.outputShape ?? [1, 1]
                target = (grid[0] / 2, grid[1] / 2)
            }
            do {
                print(try ReceptiveFieldMap.draw(model: built, imagePath: image, cell: target, layer: layer, out: out))
            } catch let e as ExitCode { throw e } catch { throw failure("\(error)") }
        }
    }
}
