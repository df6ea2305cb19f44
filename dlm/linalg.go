package dlm

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// The matrix products go through gonum's float32 BLAS, whose inner loops are
// SIMD assembly. Gonum starts goroutines for a product of four or more
// 64×64 blocks; we already run one sequence per core, so every call is cut
// into pieces of at most 64 rows × 192 columns, which gonum runs serially.
// Each output element is still one fixed-order sum, so results do not depend
// on how the calls are cut or on the number of cores.
const (
	gemmRows = 64
	gemmCols = 192
)

// mulAdd computes C (m×n) = beta·C + A·B, where A is m×k (or k×m when
// transA) and B is k×n (or n×k when transB); lda, ldb, ldc are row strides.
func mulAdd(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	ta, tb := blas.NoTrans, blas.NoTrans
	if transA {
		ta = blas.Trans
	}
	if transB {
		tb = blas.Trans
	}
	for i0 := 0; i0 < m; i0 += gemmRows {
		mi := min(gemmRows, m-i0)
		var aSub blas32.General
		if transA {
			aSub = blas32.General{Rows: k, Cols: mi, Stride: lda, Data: a[i0:]}
		} else {
			aSub = blas32.General{Rows: mi, Cols: k, Stride: lda, Data: a[i0*lda:]}
		}
		for j0 := 0; j0 < n; j0 += gemmCols {
			nj := min(gemmCols, n-j0)
			var bSub blas32.General
			if transB {
				bSub = blas32.General{Rows: nj, Cols: k, Stride: ldb, Data: b[j0*ldb:]}
			} else {
				bSub = blas32.General{Rows: k, Cols: nj, Stride: ldb, Data: b[j0:]}
			}
			cSub := blas32.General{Rows: mi, Cols: nj, Stride: ldc, Data: c[i0*ldc+j0:]}
			blas32.Gemm(ta, tb, 1, aSub, bSub, beta, cSub)
		}
	}
}

// matmul: C = A·B (+C when accumulate), all row-major and contiguous.
func matmul(c, a, b []float32, m, k, n int, accumulate bool) {
	beta := float32(0)
	if accumulate {
		beta = 1
	}
	mulAdd(false, false, m, n, k, a, k, b, n, beta, c, n)
}

// matmulTA: C (k×n) += Aᵀ·B for A m×k, B m×n — the weight-gradient shape.
func matmulTA(c, a, b []float32, m, k, n int) {
	mulAdd(true, false, k, n, m, a, k, b, n, 1, c, n)
}
