import Foundation

/// Winograd's minimal filtering for 3x3, stride-1 convolutions (Lavin & Gray 2016): inference,
/// and in training the forward pass and the input gradient (itself a stride-1 convolution).
///
/// F(m×m, 3×3) computes an m×m block of outputs from an (m+2)×(m+2) block of input with (m+2)²
/// multiplications per channel pair instead of 9m²: the filter becomes U = G g Gᵀ, each input tile
/// V = Bᵀ d B, and for each of the (m+2)² positions ξ the products over channels are one GEMM
/// M[ξ] = V[ξ] · U[ξ] (tiles × C by C × O); the outputs are Y = Aᵀ M A. m = 2 (4×4 tiles) and m = 4
/// (6×6 tiles) are provided: F(4, 3) needs 4× fewer multiplications than direct convolution,
/// F(2, 3) 2.25× with smaller transforms and smaller transformed weights (preferred for small maps).
///
/// Float32 error grows with m: F(4, 3) keeps results within ~1e-5 relative of the direct sum for
/// unit-scale data (tested against the Double reference).
struct WinogradTransform: Sendable {
    let m: Int
    var alpha: Int { m + 2 }
    let bt: [Float]   // α × α
    let g: [Float]    // α × 3
    let at: [Float]   // m × α

    static let f2 = WinogradTransform(
        m: 2,
        bt: [1, 0, -1, 0,
             0, 1, 1, 0,
             0, -1, 1, 0,
             0, 1, 0, -1],
        g: [1, 0, 0,
            0.5, 0.5, 0.5,
            0.5, -0.5, 0.5,
            0, 0, 1],
        at: [1, 1, 1, 0,
             0, 1, -1, -1])

    static let f4 = WinogradTransform(
        m: 4,
        bt: [4, 0, -5, 0, 1, 0,
             0, -4, -4, 1, 1, 0,
             0, 4, -4, -1, 1, 0,
             0, -2, -1, 2, 1, 0,
             0, 2, -1, -2, 1, 0,
             0, 4, 0, -5, 0, 1],
        g: [1.0 / 4, 0, 0,
            -1.0 / 6, -1.0 / 6, -1.0 / 6,
            -1.0 / 6, 1.0 / 6, -1.0 / 6,
            1.0 / 24, 1.0 / 12, 1.0 / 6,
            1.0 / 24, -1.0 / 12, 1.0 / 6,
            0, 0, 1],
        at: [1, 1, 1, 1, 1, 0,
             0, 1, -1, 2, -2, 0,
             0, 1, 1, 4, 4, 0,
             0, 1, -1, 8, -8, 1])

    /// dst[0..<count] = initial (or 0) + Σ_k coefficient(k) · source(k), skipping zero
    /// coefficients: every transform here is such a combination of vectors over channels.
    @inline(__always)
    static func combine(_ dst: UnsafeMutablePointer<Float>, count: Int, initial: UnsafePointer<Float>? = nil, terms: Int,
                        coefficient: (Int) -> Float, source: (Int) -> UnsafePointer<Float>) {
        if let initial { dst.update(from: initial, count: count) } else { dst.update(repeating: 0, count: count) }
        for k in 0..<terms {
            let coef = coefficient(k)
            if coef == 0 { continue }
            let src = source(k)
            for e in 0..<count { dst[e] += coef * src[e] }
        }
    }

    /// The transformed filter, one packed [C, O] matrix per position ξ = i·α + j.
    func transformFilter(_ w: [Float], channels c: Int, filters o: Int) -> [PackedMatrix] {
        let a = alpha, block = c * o
        var u = [Float](repeating: 0, count: block)
        var tmp = [Float](repeating: 0, count: 3 * block)   // (G g) row i: 3 columns l
        var out: [PackedMatrix] = []
        out.reserveCapacity(a * a)
        w.withUnsafeBufferPointer { wp in
            for i in 0..<a {
                // tmp[l] = Σ_k G[i][k] g[k][l]
                tmp.withUnsafeMutableBufferPointer { tp in
                    for l in 0..<3 {
                        WinogradTransform.combine(tp.baseAddress! + l * block, count: block, terms: 3,
                                                  coefficient: { g[i * 3 + $0] }, source: { wp.baseAddress! + ($0 * 3 + l) * block })
                    }
                }
                for j in 0..<a {
                    // U[i][j] = Σ_l tmp[l] G[j][l]
                    u.withUnsafeMutableBufferPointer { up in
                        tmp.withUnsafeBufferPointer { tp in
                            WinogradTransform.combine(up.baseAddress!, count: block, terms: 3,
                                                      coefficient: { g[j * 3 + $0] }, source: { tp.baseAddress! + $0 * block })
                        }
                    }
                    out.append(PackedMatrix(k: c, n: o, scalars: u, rsB: o, csB: 1))
                }
            }
        }
        return out
    }
}

extension Tensor {
    /// Whether Winograd applies: 3x3, stride 1, no dilation, no groups.
    static func winogradApplies(_ g: ConvGeometry) -> Bool {
        g.kh == 3 && g.kw == 3 && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 && g.groups == 1
    }

    /// `OCELLI_WINOGRAD=0` turns Winograd off everywhere (to compare kernels).
    static let winogradAllowed = ProcessInfo.processInfo.environment["OCELLI_WINOGRAD"] != "0"

    /// The tile Winograd uses for a geometry, or nil for the other kernels: 3x3 stride-1
    /// convolutions with at least 64 input and 32 output channels (measured: below that the
    /// transforms cost more than they save); F(4, 3) on maps of 20 × 20 and more, F(2, 3) below
    /// (fewer, smaller transformed filters where few tiles share them).
    static func winogradTile(_ g: ConvGeometry) -> WinogradTransform? {
        guard winogradAllowed, winogradApplies(g), g.c >= 64, g.o >= 32 else { return nil }
        return g.oh >= 20 && g.ow >= 20 ? .f4 : .f2
    }

    /// Inference convolution by Winograd F(m, 3) with filters transformed by `t.transformFilter`.
    static func winogradForward(_ x: [Float], _ u: [PackedMatrix], _ bias: [Float]?, _ g: ConvGeometry,
                                _ t: WinogradTransform, activation: FusedActivation) -> [Float] {
        let (m, a) = (t.m, t.alpha)
        let (c, o, oh, ow) = (g.c, g.o, g.oh, g.ow)
        let tilesY = (oh + m - 1) / m, tilesX = (ow + m - 1) / m
        let tiles = g.n * tilesY * tilesX
        let positions = a * a
        var v = uninitializedScalars(positions * tiles * c)     // [ξ][tile][C]
        var mm = uninitializedScalars(positions * tiles * o)    // [ξ][tile][O]
        var out = uninitializedScalars(g.n * oh * ow * o)
        let biasScalars = bias ?? [Float](repeating: 0, count: o)
        x.withUnsafeBufferPointer { xp in
            v.withUnsafeMutableBufferPointer { vp in
                mm.withUnsafeMutableBufferPointer { mp in
                    out.withUnsafeMutableBufferPointer { op in
                        biasScalars.withUnsafeBufferPointer { bp in
                            let p = UnsafeSendable((xp.baseAddress!, vp.baseAddress!, mp.baseAddress!, op.baseAddress!, bp.baseAddress!))
                            // 1. Input tiles: V = Bᵀ d B, per tile, vectorised over channels.
                            Parallel.forRanges(tiles, minimumChunk: Swift.max(1, 4096 / Swift.max(c, 1))) { r in
                                let (xb, vb, _, _, _) = p.value
                                let d = UnsafeMutablePointer<Float>.allocate(capacity: positions * c)
                                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: positions * c)
                                defer { d.deallocate(); tmp.deallocate() }
                                for tile in r {
                                    let n = tile / (tilesY * tilesX), ty = (tile / tilesX) % tilesY, tx = tile % tilesX
                                    for i in 0..<a {
                                        let y = ty * m - g.pt + i
                                        for j in 0..<a {
                                            let xcol = tx * m - g.pl + j
                                            let dst = d + (i * a + j) * c
                                            if y >= 0 && y < g.h && xcol >= 0 && xcol < g.w {
                                                dst.update(from: xb + ((n * g.h + y) * g.w + xcol) * c, count: c)
                                            } else {
                                                dst.update(repeating: 0, count: c)
                                            }
                                        }
                                    }
                                    // tmp[i][j] = Σ_k Bᵀ[i][k] d[k][j]
                                    for i in 0..<a {
                                        for j in 0..<a {
                                            WinogradTransform.combine(tmp + (i * a + j) * c, count: c, terms: a,
                                                                      coefficient: { t.bt[i * a + $0] }, source: { UnsafePointer(d + ($0 * a + j) * c) })
                                        }
                                    }
                                    // V[i][j] = Σ_k tmp[i][k] Bᵀ[j][k]
                                    for i in 0..<a {
                                        for j in 0..<a {
                                            WinogradTransform.combine(vb + ((i * a + j) * tiles + tile) * c, count: c, terms: a,
                                                                      coefficient: { t.bt[j * a + $0] }, source: { UnsafePointer(tmp + (i * a + $0) * c) })
                                        }
                                    }
                                }
                            }
                            // 2. One GEMM per position: M[ξ] = V[ξ] · U[ξ]. Positions are split
                            //    over the threads, so each transformed filter is read once.
                            Parallel.forRanges(positions) { r in
                                let (_, vb, mb, _, _) = p.value
                                for xi in r {
                                    GEMM.sgemmPacked(m: tiles, a: vb + xi * tiles * c, rsA: c, csA: 1, packed: u[xi],
                                                     c: mb + xi * tiles * o, ldc: o)
                                }
                            }
                            // 3. Output tiles: Y = Aᵀ M A, plus bias and activation, clipped to the map.
                            Parallel.forRanges(tiles, minimumChunk: Swift.max(1, 4096 / Swift.max(o, 1))) { r in
                                let (_, _, mb, ob, bb) = p.value
                                let tmp = UnsafeMutablePointer<Float>.allocate(capacity: m * a * o)
                                defer { tmp.deallocate() }
                                for tile in r {
                                    let n = tile / (tilesY * tilesX), ty = (tile / tilesX) % tilesY, tx = tile % tilesX
                                    // tmp[i][j] = Σ_k Aᵀ[i][k] M[k][j]
                                    for i in 0..<m {
                                        for j in 0..<a {
                                            WinogradTransform.combine(tmp + (i * a + j) * o, count: o, terms: a,
                                                                      coefficient: { t.at[i * a + $0] },
                                                                      source: { UnsafePointer(mb + (($0 * a + j) * tiles + tile) * o) })
                                        }
                                    }
                                    for i in 0..<m {
                                        let oy = ty * m + i
                                        if oy >= oh { break }
                                        for j in 0..<m {
                                            let ox = tx * m + j
                                            if ox >= ow { break }
                                            let dst = ob + ((n * oh + oy) * ow + ox) * o
                                            WinogradTransform.combine(dst, count: o, initial: bb, terms: a,
                                                                      coefficient: { t.at[j * a + $0] }, source: { UnsafePointer(tmp + (i * a + $0) * o) })
                                            if activation != .linear { finishRows(dst, count: o, activation) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        return out
    }
}
