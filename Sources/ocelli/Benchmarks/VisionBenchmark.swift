import Dispatch
import Foundation
import Ocelli

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

// MARK: Augmentation

extension VisionBenchmark {
    /// One augmentation pipeline's throughput.
    public struct AugmentationTiming: Codable, Sendable {
        public var name: String
        /// Images per second on one thread (augmentation only; the image is decoded once).
        public var imagesPerSecond: Double
        /// The same per second of the thread's own CPU time: what one free core would do, less
        /// sensitive to other processes on a shared machine.
        public var imagesPerCPUSecond: Double
        /// Images per second with decoding (file read + JPEG decode) included, one thread.
        public var imagesPerSecondWithDecode: Double
        /// The same per second of the thread's CPU time.
        public var imagesPerCPUSecondWithDecode: Double
        /// Images per second with `threads` threads each running the pipeline (with decoding).
        public var imagesPerSecondAllThreads: Double
        public var threads: Int
    }

    /// The pipelines `ocelli bench augment` times, producing `size` x `size` network inputs:
    /// Darknet's (jitter 0.3 with its random flip, then HSV jitter 0.1/1.5/1.5, as yolov3-tiny.cfg)
    /// and an imgaug-style one (resize, flip, affine with rotation, HSV).
    public static func augmentationPipelines(size: Int) -> [(name: String, augmenter: any Augmenter)] {
        [
            ("darknet: jitter .3 (place, flip) + HSV .1/1.5/1.5",
             Augment.Sequential {
                 Augment.DarknetJitter(width: size, height: size, jitter: 0.3, mode: .place)
                 Augment.DarknetHSV(hue: 0.1, saturation: 1.5, exposure: 1.5)
             }),
            ("darknet: jitter .2 (crop, flip) + HSV .1/1.5/1.5",
             Augment.Sequential {
                 Augment.DarknetJitter(width: size, height: size, jitter: 0.2, mode: .crop)
                 Augment.DarknetHSV(hue: 0.1, saturation: 1.5, exposure: 1.5)
             }),
            ("imgaug-style: resize + flip + affine + HSV",
             Augment.Sequential {
                 Augment.Resize(width: size, height: size)
                 Augment.HorizontalFlip()
                 Augment.Affine(scale: 0.8...1.2, translateX: -0.1...0.1, translateY: -0.1...0.1, rotation: -10...10)
                 Augment.DarknetHSV(hue: 0.1, saturation: 1.5, exposure: 1.5)
             }),
        ]
    }

    /// Throughput of `augmentationPipelines(size:)` on the image at `path`, each measured for
    /// about `seconds` per mode (one thread without and with decoding, then `threads` threads).
    public static func augmentation(path: String, size: Int, seconds: Double = 1, threads: Int = 2) throws -> [AugmentationTiming] {
        precondition(size >= 1 && seconds > 0 && threads >= 1, "augmentation: size, seconds and threads must be positive")
        let image = try Image(contentsOf: path)
        let boxes = [ObjectAnnotation(classIndex: 16, className: "dog", xmin: 130, ymin: 220, xmax: 310, ymax: 540),
                     ObjectAnnotation(classIndex: 1, className: "bicycle", xmin: 125, ymin: 125, xmax: 570, ymax: 420),
                     ObjectAnnotation(classIndex: 7, className: "truck", xmin: 470, ymin: 75, xmax: 690, ymax: 170)]
        func threadCPUSeconds() -> Double {
            var t = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t)
            return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
        }
        // Runs `augmenter` for about `seconds`; returns images per second of wall and of CPU time.
        func rates(_ augmenter: any Augmenter, decode: Bool, seed: UInt64) throws -> (wall: Double, cpu: Double) {
            var rng = SeededGenerator(seed: seed)
            var count = 0, checksum = 0
            let startCPU = threadCPUSeconds()
            let start = DispatchTime.now().uptimeNanoseconds
            var elapsed = 0.0
            while elapsed < seconds {
                let source = decode ? try Image(contentsOf: path) : image
                let (out, kept) = augmenter.apply(source, boxes, using: &rng)
                checksum &+= Int(out.pixels[out.pixels.count / 2]) &+ kept.count
                count += 1
                elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
            }
            precondition(checksum >= 0)  // keeps the work observable
            return (Double(count) / elapsed, Double(count) / (threadCPUSeconds() - startCPU))
        }
        func rate(_ augmenter: any Augmenter, decode: Bool, seed: UInt64) throws -> Double {
            try rates(augmenter, decode: decode, seed: seed).wall
        }
        var timings: [AugmentationTiming] = []
        for (name, augmenter) in augmentationPipelines(size: size) {
            _ = try rate(augmenter, decode: false, seed: 0)  // warm-up
            let alone = try rates(augmenter, decode: false, seed: 1)
            let withDecode = try rates(augmenter, decode: true, seed: 2)
            final class Rates: @unchecked Sendable { var values: [Double]; init(_ n: Int) { values = Array(repeating: 0, count: n) } }
            let rates = Rates(threads)
            DispatchQueue.concurrentPerform(iterations: threads) { t in
                rates.values[t] = (try? rate(augmenter, decode: true, seed: 3 + UInt64(t))) ?? 0
            }
            timings.append(AugmentationTiming(name: name, imagesPerSecond: alone.wall, imagesPerCPUSecond: alone.cpu,
                                              imagesPerSecondWithDecode: withDecode.wall, imagesPerCPUSecondWithDecode: withDecode.cpu,
                                              imagesPerSecondAllThreads: rates.values.reduce(0, +), threads: threads))
        }
        return timings
    }
}
