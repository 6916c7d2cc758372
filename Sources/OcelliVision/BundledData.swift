import Foundation

/// The files that ship in this package's `Data/` folder (MNIST, Darknet's photos and cfg files),
/// found from the source tree the binary was built from, so a fresh clone works with nothing
/// beside it.
public enum BundledData {
    /// The package's `Data/` folder: Sources/OcelliVision/BundledData.swift → package root → Data.
    public static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Data")

    /// A Darknet photo (`dog.jpg`, `horses.jpg`, …) in `Data/images`.
    public static func image(_ name: String) -> String { directory.appendingPathComponent("images/\(name)").path }

    /// A Darknet cfg or names file (`yolov3-tiny.cfg`, `coco.names`, …) in `Data/cfg`.
    public static func cfg(_ name: String) -> String { directory.appendingPathComponent("cfg/\(name)").path }

    /// The bundled cfg a bare name means (`yolov3-tiny`, `yolov3-tiny.cfg`), when `name` is not a
    /// path to an existing file and no folder part is given; nil otherwise.
    public static func cfgNamed(_ name: String) -> String? {
        guard !name.contains("/"), !FileManager.default.fileExists(atPath: name) else { return nil }
        for candidate in [name, name + ".cfg"] where candidate.hasSuffix(".cfg") {
            let path = cfg(candidate)
            if FileManager.default.fileExists(atPath: path) { return path }
        }
        return nil
    }

    /// The names of the bundled cfg files, sorted.
    public static var cfgNames: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("cfg").path)) ?? []
        return names.filter { $0.hasSuffix(".cfg") }.sorted()
    }
}
