//go:build amd64 && !purego

package aggregate

import "golang.org/x/sys/cpu"

//go:generate go run gen_network_amd64.go

// haveNetworkAsm: the assembly needs AVX2 (and the OS saving the YMM
// registers, which cpu.X86.HasAVX2 includes).
var haveNetworkAsm = cpu.X86.HasAVX2

// orderBlocksAVX2 is orderBlocksGo in AVX2 assembly: for each whole
// netBlock of dst it copies xs[i][block] into row i of rows (prefetching
// ahead bytes further), runs the comparators of pairs over all 64 lanes at
// once and writes float32(scale · Σ rows lo..hi-1) with the sum in
// float64. The caller guarantees len(xs[i]) ≥ len(dst),
// len(rows) ≥ len(xs)·netRow, every offset in pairs < len(xs)·netRowBytes,
// and 0 ≤ lo < hi ≤ len(xs).
//
//go:noescape
func orderBlocksAVX2(dst []float32, xs [][]float32, rows []float32, pairs []uint32, lo, hi int, scale float64, ahead int)

func init() {
	if haveNetworkAsm {
		orderBlocks = orderBlocksAVX2
	}
}
