/// Transposed convolution ("deconvolution"), composed of recorded ops, so its gradient needs no
/// code of its own: insert stride − 1 zeros between input pixels, pad, convolve with the kernel
/// flipped in space and its channel axes swapped.
extension Tensor {
    /// Transposed 2-D convolution of an NHWC input, the adjoint of `conv2d` with the same kernel.
    ///
    /// - input: [N, H, W, C]; filter: [KH, KW, O, C] (Keras' Conv2DTranspose layout: output
    ///   channels third); bias: [O] or nil.
    /// - The "full" result has (H − 1)·stride + dilation·(KH − 1) + 1 rows; the returned
    ///   `outputSize` rows start at row `crop.top` of it (rows past its end are zeros plus bias),
    ///   and likewise for columns. PyTorch's `padding = p, output_padding = q` is crop p and
    ///   output size full − 2p + q.
    public static func conv2dTranspose(_ input: Tensor, filter: Tensor, bias: Tensor? = nil,
                                       strides: (Int, Int) = (1, 1), dilations: (Int, Int) = (1, 1),
                                       crop: (top: Int, left: Int) = (0, 0), outputSize: (Int, Int)) -> Tensor {
        require(input.rank == 4, "conv2dTranspose", "input must be NHWC (rank 4), got shape \(input.shape)")
        require(filter.rank == 4 && filter.shape[3] == input.shape[3], "conv2dTranspose",
                "filter must be [KH, KW, O, C] with C = \(input.shape[3]) input channels, got \(filter.shape)")
        require(strides.0 >= 1 && strides.1 >= 1 && dilations.0 >= 1 && dilations.1 >= 1, "conv2dTranspose",
                "strides \(strides) and dilations \(dilations) must be ≥ 1")
        require(outputSize.0 > 0 && outputSize.1 > 0 && crop.top >= 0 && crop.left >= 0, "conv2dTranspose",
                "output size \(outputSize) must be positive and crop \(crop) non-negative")
        let (n, h, w, c) = (input.shape[0], input.shape[1], input.shape[2], input.shape[3])
        let (kh, kw, o) = (filter.shape[0], filter.shape[1], filter.shape[2])
        if let b = bias { require(b.shape == [o], "conv2dTranspose", "bias shape \(b.shape) must be [\(o)]") }
        let (sh, sw) = strides
        // 1. Zeros between pixels: [N, (H−1)·sh + 1, (W−1)·sw + 1, C].
        var z = input
        if sh > 1 || sw > 1 {
            z = input.reshaped([n, h, 1, w, 1, c])
                .padded([(0, 0), (0, 0), (0, sh - 1), (0, 0), (0, sw - 1), (0, 0)])
                .reshaped([n, h * sh, w * sw, c])
                .sliced(starts: [0, 0, 0, 0], ends: [n, (h - 1) * sh + 1, (w - 1) * sw + 1, c])
        }
        // 2. Pad (or crop) so that a valid convolution yields exactly the requested window:
        //    before = e − 1 − crop, after = output + e − 1 − before − zeroInserted.
        let (ekh, ekw) = ((kh - 1) * dilations.0 + 1, (kw - 1) * dilations.1 + 1)
        let (zh, zw) = (z.shape[1], z.shape[2])
        let top = ekh - 1 - crop.top, left = ekw - 1 - crop.left
        let bottom = outputSize.0 + ekh - 1 - top - zh, right = outputSize.1 + ekw - 1 - left - zw
        if top < 0 || left < 0 || bottom < 0 || right < 0 {
            z = z.sliced(starts: [0, Swift.max(-top, 0), Swift.max(-left, 0), 0],
                         ends: [n, zh - Swift.max(-bottom, 0), zw - Swift.max(-right, 0), c])
        }
        z = z.padded([(0, 0), (Swift.max(top, 0), Swift.max(bottom, 0)), (Swift.max(left, 0), Swift.max(right, 0)), (0, 0)])
        // 3. The kernel flipped in space, [KH, KW, O, C] → [KH, KW, C, O].
        let flipped = filter.gathering(atIndices: Array((0..<kh).reversed()), alongAxis: 0)
            .gathering(atIndices: Array((0..<kw).reversed()), alongAxis: 1)
            .permuted([0, 1, 3, 2])
        return conv2d(z, filter: flipped, bias: bias, dilations: dilations)
    }
}
