import Foundation
import OcelliTensor

/// Reference values from PyTorch and Keras, made by Scripts/make_concept_fixtures.py
/// (Fixtures/concepts.json; tensors in NHWC / HWIO order).
enum ReferenceFixtures {
    static let root: [String: Any] = {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures").appendingPathComponent("concepts.json")
        guard let data = try? Data(contentsOf: url),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            fatalError("cannot read \(url.path): run Scripts/make_concept_fixtures.py")
        }
        return object
    }()

    static func entry(_ key: String) -> [String: Any] { root[key] as! [String: Any] }
    static func entries(_ key: String) -> [[String: Any]] { root[key] as! [[String: Any]] }

    static func tensor(_ value: Any?) -> Tensor {
        let d = value as! [String: Any]
        let shape = d["shape"] as! [Int]
        let data = (d["data"] as! [Any]).map { Float(($0 as! NSNumber).doubleValue) }
        return Tensor(shape: shape, scalars: data)
    }
}

/// Largest absolute difference between two tensors of one shape (∞ when the shapes differ).
func maxDifference(_ a: Tensor, _ b: Tensor) -> Float {
    guard a.shape == b.shape else { return .infinity }
    var worst: Float = 0
    for (x, y) in zip(a.scalars, b.scalars) {
        let d = Swift.abs(x - y)
        if !d.isFinite { return .infinity }  // NaN or ∞ never passes
        worst = Swift.max(worst, d)
    }
    return worst
}
