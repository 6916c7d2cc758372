/// A small built-in bitmap font for labels: printable ASCII (32...126), each glyph 5 pixels wide
/// and 8 tall (rows 0-6 above the baseline, row 7 for descenders), drawn in a 6 x 9 cell so that
/// neighbouring glyphs and lines keep one pixel of space. Other characters draw as '?'.
/// The glyphs are Ocelli's own, kept in `Scripts/bitmap_font_5x8.txt`.
public enum BitmapFont {
    public static let glyphWidth = 5
    public static let glyphHeight = 8
    /// Horizontal advance per character, in unscaled pixels.
    public static let cellWidth = 6
    /// Line height, in unscaled pixels.
    public static let cellHeight = 9

    /// The glyph bits for `character`: row r in bits 8r..8r+7, column c in bit 4 − c.
    static func glyph(_ character: Character) -> UInt64 {
        guard let ascii = character.asciiValue, ascii >= 32, ascii <= 126 else { return glyphs[Int(63 - 32)] }
        return glyphs[Int(ascii) - 32]
    }

    /// Whether the glyph for `character` inks column `column` (0...4) of row `row` (0...7).
    public static func isInked(_ character: Character, column: Int, row: Int) -> Bool {
        guard (0..<glyphWidth).contains(column), (0..<glyphHeight).contains(row) else { return false }
        return (glyph(character) >> UInt64(8 * row + 4 - column)) & 1 == 1
    }

    /// The size of `text` drawn at `scale`: one line, `cellWidth · scale` per character minus
    /// the trailing space, `glyphHeight · scale` tall.
    public static func size(of text: String, scale: Int = 1) -> (width: Int, height: Int) {
        let count = text.count
        return (count == 0 ? 0 : (count * cellWidth - 1) * scale, glyphHeight * scale)
    }
}
