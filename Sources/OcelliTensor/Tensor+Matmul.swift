/// Matrix products. Rank-2 operands are matrices; higher ranks are stacks of matrices whose
/// leading (batch) dimensions broadcast as in NumPy's matmul. Rank-1 operands are not promoted:
/// reshape them to [1, K] or [K, 1] first.
extension Tensor {
    /// op(a) × op(b) for the last two axes, broadcasting the batch axes; no recording.
    static func matmulCore(_ a: Tensor, transposeA: Bool, _ b: Tensor, transposeB: Bool) -> Tensor {
        require(a.rank >= 2 && b.rank >= 2, "matmul", "needs operands of rank ≥ 2, got \(a.shape) and \(b.shape)")
        let (ar, ac) = (a.shape[a.rank - 2], a.shape[a.rank - 1])
        let (br, bc) = (b.shape[b.rank - 2], b.shape[b.rank - 1])
        let (m, k) = transposeA ? (ac, ar) : (ar, ac)
        let (k2, n) = transposeB ? (bc, br) : (br, bc)
        require(k == k2, "matmul", "inner dimensions differ: \(a.shape)\(transposeA ? "ᵀ" : "") × \(b.shape)\(transposeB ? "ᵀ" : "") (\(k) vs \(k2))")
        let batchA = Array(a.shape.dropLast(2)), batchB = Array(b.shape.dropLast(2))
        let batch = check { () throws(ShapeError) in try Shape.broadcast(batchA, batchB, op: "matmul") }
        let nb = Shape.count(batch)
        // Per-batch offsets of each operand (0 stride on broadcast axes).
        func offsets(_ s: [Int], _ size: Int) -> [Int] {
            let st = Shape.strides(s)
            let lead = batch.count - s.count
            return (0..<nb).map { idx in
                var rem = idx, off = 0
                for d in stride(from: batch.count - 1, through: 0, by: -1) {
                    let i = rem % batch[d]; rem /= batch[d]
                    let j = d - lead
                    if j >= 0 && s[j] != 1 { off += i * st[j] }
                }
                return off * size
            }
        }
        let oa = offsets(batchA, ar * ac), ob = offsets(batchB, br * bc)
        let (rsA, csA) = transposeA ? (1, ac) : (ac, 1)
        let (rsB, csB) = transposeB ? (1, bc) : (bc, 1)
        return a.scalars.withUnsafeBufferPointer { pa in
            b.scalars.withUnsafeBufferPointer { pb in
                Tensor.make(batch + [m, n]) { out in
                    for i in 0..<nb {
                        GEMM.sgemm(m: m, n: n, k: k, a: pa.baseAddress! + oa[i], rsA: rsA, csA: csA,
                                   b: pb.baseAddress! + ob[i], rsB: rsB, csB: csB,
                                   c: out.baseAddress! + i * m * n, ldc: n)
                    }
                }
            }
        }
    }
}

/// The matrix product a × b ([..., M, K] × [..., K, N] → [..., M, N], batch axes broadcast).
public func matmul(_ a: Tensor, _ b: Tensor) -> Tensor {
    Tensor.matmul(a, transposeA: false, b, transposeB: false)
}

extension Tensor {
    /// op(a) × op(b) where op transposes the last two axes when asked (no copy is made).
    public static func matmul(_ a: Tensor, transposeA: Bool = false, _ b: Tensor, transposeB: Bool = false) -> Tensor {
        let y = matmulCore(a, transposeA: transposeA, b, transposeB: transposeB)
        let ad = a.detached(), bd = b.detached()
        let needA = a.node != nil, needB = b.node != nil
        return record(y, [a, b]) { g in
            // C = op(A)·op(B): dop(A) = G·op(B)ᵀ, dop(B) = op(A)ᵀ·G, then undo the op.
            var da: Tensor? = nil, db: Tensor? = nil
            if needA {
                da = transposeA ? matmulCore(bd, transposeA: transposeB, g, transposeB: true)
                                : matmulCore(g, transposeA: false, bd, transposeB: !transposeB)
                da = da!.sumToShape(ad.shape)
            }
            if needB {
                db = transposeB ? matmulCore(g, transposeA: true, ad, transposeB: transposeA)
                                : matmulCore(ad, transposeA: !transposeA, g, transposeB: false)
                db = db!.sumToShape(bd.shape)
            }
            return [da, db]
        }
    }
}
