import Dispatch
import OcelliTensor

/// Timings of the image front end, for `ocelli bench` and comparisons with OpenCV.
public enum VisionBenchmark {
    private static func milliseconds(_ body: () throws -> Void) rethrows -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        try body()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
    }

    /// Reads and decodes the image at `path` (file read + JPEG/PNG decode + orientation), then
    /// letterboxes it into `size` x `size` as Darknet does (bytes to Float [0, 1] + resize +
    /// placement on grey). Each step runs `repetitions` times; the fastest run of each is
    /// returned, in milliseconds.
    public static func decodeAndLetterbox(path: String, size: Int, repetitions: Int = 10) throws
        -> (decodeMs: Double, letterboxMs: Double) {
        precondition(repetitions >= 1 && size >= 1, "decodeAndLetterbox: repetitions and size must be positive")
        var image = try Image(contentsOf: path)  // warm-up: page cache, libjpeg tables
        var decodeMs = Double.infinity, letterboxMs = Double.infinity
        var checksum: Float = 0
        for _ in 0..<repetitions {
            decodeMs = min(decodeMs, try milliseconds { image = try Image(contentsOf: path) })
            letterboxMs = min(letterboxMs, milliseconds {
                let (tensor, _) = image.letterboxed(width: size, height: size)
                checksum += tensor.scalars[tensor.count / 2]
            })
        }
        precondition(checksum.isFinite)  // keeps the work observable
        return (decodeMs, letterboxMs)
    }
}
