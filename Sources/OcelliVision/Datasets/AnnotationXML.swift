/// A reader of the XML that annotation tools write (Pascal VOC, LabelImg, CVAT): elements, text,
/// CDATA, comments, processing instructions, a DOCTYPE, the five predefined entities and
/// character references. Attributes are read past (VOC keeps everything in elements). Written for
/// VOC rather than taken from FoundationXML, whose libxml2 callbacks trap or dereference null on
/// damaged input (a processing instruction without data, an element name that is not UTF-8).
///
/// The input must be UTF-8; a mistake is an error with its line. The tree is built without
/// recursion, and nesting is limited, so no input can overflow the stack.
enum AnnotationXML {
    final class Node {
        let name: String
        let line: Int
        var text = ""
        var children: [Node] = []
        init(name: String, line: Int) { self.name = name; self.line = line }

        func child(_ name: String) -> Node? { children.first { $0.name == name } }
        func all(_ name: String) -> [Node] { children.filter { $0.name == name } }
        var value: String { text.trimmingCharacters(in: .whitespacesAndNewlines) }
    }

    struct Failure: Error {
        let line: Int
        let message: String
    }

    static let maximumDepth = 256

    static func parse(_ bytes: [UInt8]) throws(Failure) -> Node {
        var reader = Reader(bytes: bytes)
        return try reader.document()
    }

    private struct Reader {
        let bytes: [UInt8]
        var i = 0
        var line = 1

        init(bytes: [UInt8]) {
            self.bytes = bytes
            if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { i = 3 }  // a byte order mark
        }

        var atEnd: Bool { i >= bytes.count }

        func fail(_ message: String) -> Failure { Failure(line: line, message: message) }

        func peek(_ prefix: String) -> Bool {
            let p = Array(prefix.utf8)
            return i + p.count <= bytes.count && bytes[i..<(i + p.count)].elementsEqual(p)
        }

        mutating func advance(_ n: Int = 1) {
            for _ in 0..<n where i < bytes.count {
                if bytes[i] == 0x0A { line += 1 }
                i += 1
            }
        }

        mutating func skipWhitespace() {
            while !atEnd, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { advance() }
        }

        /// Skips past `terminator`; an error naming `what` if the input ends first.
        mutating func skip(past terminator: String, _ what: String) throws(Failure) {
            let start = line
            while !atEnd && !peek(terminator) { advance() }
            guard !atEnd else { throw Failure(line: start, message: "\(what) is not closed with '\(terminator)'") }
            advance(terminator.utf8.count)
        }

        /// Comments, processing instructions and a DOCTYPE: true if one was skipped.
        mutating func skipMarkup() throws(Failure) -> Bool {
            if peek("<!--") { try skip(past: "-->", "a comment"); return true }
            if peek("<?") { try skip(past: "?>", "a processing instruction"); return true }
            if peek("<!DOCTYPE") {
                let start = line
                var bracket = false
                while !atEnd {
                    let c = bytes[i]
                    advance()
                    if c == UInt8(ascii: "[") { bracket = true } else if c == UInt8(ascii: "]") { bracket = false } else if c == UInt8(ascii: ">") && !bracket { return true }
                }
                throw Failure(line: start, message: "the DOCTYPE is not closed")
            }
            return false
        }

        mutating func name() throws(Failure) -> String {
            let start = i
            while !atEnd {
                let c = bytes[i]
                if [0x20, 0x09, 0x0A, 0x0D, UInt8(ascii: ">"), UInt8(ascii: "/"), UInt8(ascii: "="), UInt8(ascii: "<")].contains(c) { break }
                advance()
            }
            guard i > start else { throw fail(atEnd ? "the document ends inside a tag" : "a tag without a name") }
            let first = bytes[start]
            guard first >= 0x80 || first == UInt8(ascii: "_") || first == UInt8(ascii: ":")
                    || (first | 0x20 >= UInt8(ascii: "a") && first | 0x20 <= UInt8(ascii: "z")) else {
                throw fail("'\(String(decoding: bytes[start..<i], as: UTF8.self))' is not an element name")
            }
            return String(decoding: bytes[start..<i], as: UTF8.self)
        }

        /// Past the attributes to '>' or '/>': true for an empty element ('/>').
        mutating func attributes() throws(Failure) -> Bool {
            while true {
                skipWhitespace()
                guard !atEnd else { throw fail("the document ends inside a tag") }
                if peek("/>") { advance(2); return true }
                if bytes[i] == UInt8(ascii: ">") { advance(); return false }
                _ = try name()
                skipWhitespace()
                guard !atEnd, bytes[i] == UInt8(ascii: "=") else { throw fail("malformed attribute (expected name=\"value\")") }
                advance()
                skipWhitespace()
                guard !atEnd, bytes[i] == UInt8(ascii: "\"") || bytes[i] == UInt8(ascii: "'") else {
                    throw fail("malformed attribute (its value needs quotes)")
                }
                let quote = bytes[i]
                advance()
                while !atEnd && bytes[i] != quote { advance() }
                guard !atEnd else { throw fail("the document ends inside an attribute value") }
                advance()
            }
        }

        /// Text up to the next '<', with entities and character references decoded.
        mutating func text() throws(Failure) -> [UInt8] {
            var out: [UInt8] = []
            while !atEnd && bytes[i] != UInt8(ascii: "<") {
                guard bytes[i] == UInt8(ascii: "&") else { out.append(bytes[i]); advance(); continue }
                let start = i
                while !atEnd && bytes[i] != UInt8(ascii: ";") && i - start < 12 { advance() }
                guard !atEnd, bytes[i] == UInt8(ascii: ";") else { throw fail("'&' in text (write it as &amp;)") }
                let entity = String(decoding: bytes[(start + 1)..<i], as: UTF8.self)
                advance()
                switch entity {
                case "lt": out.append(UInt8(ascii: "<"))
                case "gt": out.append(UInt8(ascii: ">"))
                case "amp": out.append(UInt8(ascii: "&"))
                case "quot": out.append(UInt8(ascii: "\""))
                case "apos": out.append(UInt8(ascii: "'"))
                default:
                    let hex = entity.hasPrefix("#x") || entity.hasPrefix("#X")
                    guard entity.hasPrefix("#"), let code = UInt32(entity.dropFirst(hex ? 2 : 1), radix: hex ? 16 : 10),
                          let scalar = Unicode.Scalar(code), code != 0 else {
                        throw fail("undeclared entity '&\(entity);' (write & as &amp;)")
                    }
                    out += Array(String(Character(scalar)).utf8)
                }
            }
            return out
        }

        mutating func document() throws(Failure) -> Node {
            // The prolog: whitespace, the declaration, comments, a DOCTYPE.
            while true {
                skipWhitespace()
                guard !atEnd else { throw fail("the document is empty") }
                if try !skipMarkup() { break }
            }
            guard bytes[i] == UInt8(ascii: "<") else { throw fail("text before the root element") }
            var stack: [Node] = []
            var root: Node?
            var text: [UInt8] = []
            while true {
                if atEnd {
                    guard let open = stack.last else { break }
                    throw Failure(line: line, message: "the document ends early (<\(open.name)> from line \(open.line) is not closed)")
                }
                if bytes[i] != UInt8(ascii: "<") {
                    let t = try self.text()
                    guard !stack.isEmpty else {
                        if t.allSatisfy({ [0x20, 0x09, 0x0A, 0x0D].contains($0) }) { continue }
                        throw fail("text after the root element")
                    }
                    text += t
                    continue
                }
                if peek("<![CDATA[") {
                    guard !stack.isEmpty else { throw fail("CDATA outside the root element") }
                    advance(9)
                    let start = i, startLine = line
                    while !atEnd && !peek("]]>") { advance() }
                    guard !atEnd else { throw Failure(line: startLine, message: "a CDATA section is not closed with ']]>'") }
                    text += bytes[start..<i]
                    advance(3)
                    continue
                }
                if try skipMarkup() { continue }
                if peek("</") {
                    advance(2)
                    let closing = try name()
                    skipWhitespace()
                    guard !atEnd, bytes[i] == UInt8(ascii: ">") else { throw fail("'>' expected after </\(closing)") }
                    advance()
                    guard let open = stack.popLast() else { throw fail("</\(closing)> closes nothing") }
                    guard open.name == closing else {
                        throw fail("the end tag </\(closing)> does not match <\(open.name)> from line \(open.line)")
                    }
                    open.text += String(decoding: text, as: UTF8.self)
                    text = []
                    continue
                }
                if peek("<!") { throw fail("unexpected '<!'") }
                // A start tag.
                advance()
                let startLine = line
                let node = Node(name: try name(), line: startLine)
                if let parent = stack.last {
                    parent.text += String(decoding: text, as: UTF8.self)
                    text = []
                    parent.children.append(node)
                } else {
                    guard root == nil else { throw fail("a second root element <\(node.name)>") }
                    root = node
                }
                if try !attributes() {
                    guard stack.count < AnnotationXML.maximumDepth else {
                        throw fail("elements are nested more than \(AnnotationXML.maximumDepth) deep")
                    }
                    stack.append(node)
                }
            }
            guard let root else { throw fail("no root element") }
            return root
        }
    }
}
