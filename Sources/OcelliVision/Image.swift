import OcelliTensor

/// An 8-bit image: `height` rows of `width` pixels of `channels` bytes, row-major HWC
/// (interleaved, top row first, no padding between rows).
///
/// Channels: 1 = gray, 3 = RGB, 4 = RGBA (straight, not premultiplied, alpha). Pixel (x, y)
/// channel c is `pixels[(y * width + x) * channels + c]`.
public struct Image: Equatable, Sendable {
    public let width: Int
    public let height: Int
    /// 1 (gray), 3 (RGB) or 4 (RGBA).
    public let channels: Int
    /// `height * width * channels` bytes, HWC. Edit freely; the count must not change.
    public var pixels: [UInt8] {
        didSet {
            precondition(pixels.count == width * height * channels,
                         "Image: pixels must keep \(width * height * channels) bytes, got \(pixels.count)")
        }
    }

    /// Wraps `pixels` (HWC, row-major) as a `width` x `height` image of `channels` channels.
    public init(width: Int, height: Int, channels: Int, pixels: [UInt8]) {
        precondition(width >= 0 && height >= 0, "Image: negative size \(width)x\(height)")
        precondition([1, 3, 4].contains(channels), "Image: channels must be 1, 3 or 4, got \(channels)")
        precondition(pixels.count == width * height * channels,
                     "Image: \(width)x\(height)x\(channels) needs \(width * height * channels) bytes, got \(pixels.count)")
        self.width = width
        self.height = height
        self.channels = channels
        self.pixels = pixels
    }

    /// A `width` x `height` image with every pixel set to `value` (one byte per channel).
    public init(width: Int, height: Int, filledWith value: [UInt8]) {
        precondition([1, 3, 4].contains(value.count), "Image: fill value needs 1, 3 or 4 channels, got \(value.count)")
        let c = value.count
        let n = width * height * c
        let pixels = [UInt8](unsafeUninitializedCapacity: n) { buffer, initialized in
            for i in stride(from: 0, to: n, by: c) {
                for k in 0..<c { buffer[i + k] = value[k] }
            }
            initialized = n
        }
        self.init(width: width, height: height, channels: c, pixels: pixels)
    }

    /// Channel `channel` of pixel (`x`, `y`).
    public subscript(x x: Int, y y: Int, channel channel: Int) -> UInt8 {
        get {
            precondition(x >= 0 && x < width && y >= 0 && y < height && channel >= 0 && channel < channels,
                         "Image: (\(x), \(y), \(channel)) outside \(width)x\(height)x\(channels)")
            return pixels[(y * width + x) * channels + channel]
        }
        set {
            precondition(x >= 0 && x < width && y >= 0 && y < height && channel >= 0 && channel < channels,
                         "Image: (\(x), \(y), \(channel)) outside \(width)x\(height)x\(channels)")
            pixels[(y * width + x) * channels + channel] = newValue
        }
    }
}

// MARK: Tensors

extension Image {
    /// Bytes to Floats in [0, 1]: `Float(v) / 255`. A Float division is correctly rounded, and
    /// for every byte it equals Darknet's `(float)data[i] / 255.` (a Double division rounded to
    /// Float; a test checks all 256), so tensors match Darknet bit for bit. Unlike a lookup
    /// table, this loop vectorises.
    @inline(__always)
    static func unitValues(_ source: UnsafePointer<UInt8>, _ destination: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count { destination[i] = Float(source[i]) / 255 }
    }

    /// The image as a Float tensor of shape [height, width, channels] with values in [0, 1]
    /// (byte / 255).
    public func tensor() -> Tensor {
        let n = pixels.count
        let scalars = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            pixels.withUnsafeBufferPointer { source in
                if n > 0 { Image.unitValues(source.baseAddress!, out.baseAddress!, count: n) }
            }
            initialized = n
        }
        return Tensor(shape: [height, width, channels], scalars: scalars)
    }

    /// The image as a batch of one: shape [1, height, width, channels], values in [0, 1].
    public func batchTensor() -> Tensor {
        let t = tensor()
        return Tensor(shape: [1, height, width, channels], scalars: t.scalars)
    }

    /// Images of one size and channel count as a batch: shape [count, height, width, channels].
    public static func batchTensor(_ images: [Image]) -> Tensor {
        precondition(!images.isEmpty, "Image.batchTensor: no images")
        let first = images[0]
        precondition(images.allSatisfy { $0.width == first.width && $0.height == first.height && $0.channels == first.channels },
                     "Image.batchTensor: images differ in size or channels; resize or letterbox them first")
        let per = first.pixels.count
        let n = per * images.count
        let scalars = [Float](unsafeUninitializedCapacity: n) { out, initialized in
            for (b, image) in images.enumerated() where per > 0 {
                image.pixels.withUnsafeBufferPointer { source in
                    Image.unitValues(source.baseAddress!, out.baseAddress! + b * per, count: per)
                }
            }
            initialized = n
        }
        return Tensor(shape: [images.count, first.height, first.width, first.channels], scalars: scalars)
    }

    /// The image held in a Float tensor of shape [height, width, channels] or
    /// [1, height, width, channels] (channels 1, 3 or 4) with values in [0, 1]: each value is
    /// clamped to [0, 1] (NaN becomes 0), multiplied by 255 and rounded to the nearest byte.
    public init(tensor: Tensor) {
        let shape = tensor.shape
        precondition(shape.count == 3 || (shape.count == 4 && shape[0] == 1),
                     "Image(tensor:): expected shape [H, W, C] or [1, H, W, C], got \(shape)")
        let h = shape[shape.count - 3], w = shape[shape.count - 2], c = shape[shape.count - 1]
        precondition([1, 3, 4].contains(c), "Image(tensor:): channels must be 1, 3 or 4, got \(c) (shape \(shape))")
        let n = h * w * c
        let pixels = [UInt8](unsafeUninitializedCapacity: n) { out, initialized in
            tensor.scalars.withUnsafeBufferPointer { source in
                for i in 0..<n { out[i] = Image.byte(source[i]) }
            }
            initialized = n
        }
        self.init(width: w, height: h, channels: c, pixels: pixels)
    }

    /// A value in [0, 1] as the nearest byte; out-of-range values clamp, NaN gives 0.
    @inline(__always)
    static func byte(_ value: Float) -> UInt8 {
        let clamped = value > 0 ? (value < 1 ? value : 1) : 0
        return UInt8(clamped * 255 + 0.5)
    }
}
