import Foundation

/// A data set file that cannot be read or does not hold what it should. The description names
/// the file, then the line or the object, then what is wrong and what was expected, e.g.
/// `labels/000012.txt:3: expected 5 fields "class cx cy w h", found 4`.
public struct DatasetError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    /// The file (path as given or found).
    public var file: String
    /// The 1-based line, when the problem is on one line of a text file.
    public var line: Int?
    /// The object inside the file, e.g. `object 2` (VOC) or `annotations[5] (id 812)` (COCO).
    public var location: String?
    /// What is wrong.
    public var message: String

    public init(file: String, line: Int? = nil, location: String? = nil, _ message: String) {
        self.file = file
        self.line = line
        self.location = location
        self.message = message
    }

    public var description: String {
        var text = file
        if let line { text += ":\(line)" }
        if let location { text += ": \(location)" }
        return text + ": " + message
    }

    public var errorDescription: String? { description }
}
