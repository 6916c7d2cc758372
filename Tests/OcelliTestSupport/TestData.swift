import Foundation

/// Where the tests' inputs live. Photos and cfg files ship in the repository's `Data/`; only the
/// real 34 MB yolov3-tiny weights are looked up outside it: `OCELLI_MODELS` (a folder holding
/// `yolov3-tiny/yolov3-tiny.weights`), else `../shared/models` beside the repository. Tests
/// that need them are enabled with `.enabled(if: TestFiles.realWeightsAvailable, …)` and are
/// skipped, with that reason, when the file is absent.
public enum TestFiles {
    /// The repository root: Tests/OcelliTestSupport/TestData.swift → Tests → root.
    public static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A Darknet photo in `Data/images` (dog.jpg, horses.jpg, …).
    public static func image(_ name: String) -> String { repository.appendingPathComponent("Data/images/\(name)").path }

    /// A Darknet cfg or names file in `Data/cfg`.
    public static func cfg(_ name: String) -> String { repository.appendingPathComponent("Data/cfg/\(name)").path }

    /// The folder of real pretrained models: `OCELLI_MODELS`, else `<repo>/../shared/models`.
    public static var modelsDirectory: String {
        if let d = ProcessInfo.processInfo.environment["OCELLI_MODELS"], !d.isEmpty { return d }
        return repository.deletingLastPathComponent().appendingPathComponent("shared/models").path
    }

    /// The real yolov3-tiny weights (35,434,956 bytes), wherever `modelsDirectory` says.
    public static var yolov3TinyWeights: String { (modelsDirectory as NSString).appendingPathComponent("yolov3-tiny/yolov3-tiny.weights") }

    /// Whether the real weights are present; the tests that need them are skipped otherwise.
    public static var realWeightsAvailable: Bool { FileManager.default.fileExists(atPath: yolov3TinyWeights) }

    /// The reason printed for a skipped real-weights test.
    public static var realWeightsReason: String {
        "needs the real yolov3-tiny weights at \(yolov3TinyWeights) (set OCELLI_MODELS to a folder holding yolov3-tiny/yolov3-tiny.weights); the same code paths run with synthetic weights in the other tests"
    }
}
