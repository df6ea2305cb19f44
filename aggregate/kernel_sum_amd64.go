//go:build amd64 && !purego

package aggregate

import "golang.org/x/sys/cpu"

//go:generate go run gen_sum_amd64.go

// haveSumAsm: the assembly needs AVX2 and FMA (and the OS saving the YMM
// registers, which cpu.X86.HasAVX2 includes).
var haveSumAsm = cpu.X86.HasAVX2 && cpu.X86.HasFMA

// sumPass is sumPassAVX2 (only called when haveSumAsm).
var sumPass = sumPassAVX2

// sumPassAVX2 folds 1 ≤ len(xs) ≤ sumFold inputs into d: for every
// coordinate j, acc = d[j] (or, when first, w[0]·xs[0][off+j] rounded),
// then acc = fma(w[i], xs[i][off+j], acc) for each further input in order,
// and d[j] = acc. Inputs are prefetched aheadBytes (gen_sum_amd64.go)
// ahead of the loads. The caller guarantees len(w) ≥ len(xs) and
// len(xs[i]) ≥ off+len(d).
//
//go:noescape
func sumPassAVX2(d []float32, xs [][]float32, w []float32, off int, first bool)
