import Foundation

/// Darknet's class-names files (`coco.names`, `voc.names`, `obj.names`, `classes.txt`): one name
/// per line in class-index order, surrounding spaces trimmed, empty lines skipped, CRLF accepted.
public enum ClassNames {
    /// The names in the file at `path`; a missing or unreadable file is a `DatasetError` naming it.
    public static func read(_ path: String) throws -> [String] {
        try DatasetFiles.classNames(in: URL(fileURLWithPath: path))
    }
}

extension DetectionDataset {
    /// The same objects with class indices into `names`, matched by class name (Darknet's
    /// `.names` order instead of the data set's own, as when evaluating a network trained with
    /// that file); the COCO category ids become 1, 2, 3, …. `namesFile` is named in the error
    /// for an object whose class is not in `names`.
    public func relabeled(to names: [String], namesFile: String = "the class names") throws -> DetectionDataset {
        var index: [String: Int] = [:]
        for (i, n) in names.enumerated() where index[n] == nil { index[n] = i }
        var out = self
        for i in out.images.indices {
            for j in out.images[i].objects.indices {
                let name = out.images[i].objects[j].className
                guard let k = index[name] else {
                    throw DatasetError(file: namesFile, "has no class '\(name)' (an object of image \(out.images[i].id))")
                }
                out.images[i].objects[j].classIndex = k
            }
        }
        out.classNames = names
        out.categoryIDs = Array(1..<(names.count + 1))
        return out
    }
}
