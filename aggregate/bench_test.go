package aggregate

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// Benchmark grids: N updates × P float32 parameters. Bytes per op count
// what a kernel must move at least: N·P·4 read + P·4 written; the copy
// baseline moves P·4 read + P·4 written. Compare MB/s, not ns/op.
var benchNs = []int{5, 50}
var benchPs = []int{1 << 20, 4 << 20}

func benchInputs(n, p int) [][]float32 {
	rng := rand.New(rand.NewPCG(uint64(n), uint64(p)))
	xs := make([][]float32, n)
	for i := range xs {
		xs[i] = make([]float32, p)
		for j := range xs[i] {
			xs[i][j] = float32(rng.NormFloat64())
		}
	}
	return xs
}

// BenchmarkCopy is the bandwidth anchor: a parallel copy of P floats split
// the same way as the kernels.
func BenchmarkCopy(b *testing.B) {
	for _, p := range benchPs {
		b.Run(fmt.Sprintf("P=%dM", p>>20), func(b *testing.B) {
			src := benchInputs(1, p)[0]
			dst := make([]float32, p)
			spans := splitSpans([]int{p})
			b.SetBytes(int64(2 * 4 * p))
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				runSpans(spans, runtime.GOMAXPROCS(0), func(_ int, s span) { copy(dst[s.lo:s.hi], src[s.lo:s.hi]) })
			}
		})
	}
}

func benchKernel(b *testing.B, run func(xs [][][]float32, outs [][]float32)) {
	for _, n := range benchNs {
		for _, p := range benchPs {
			b.Run(fmt.Sprintf("N=%d/P=%dM", n, p>>20), func(b *testing.B) {
				raw := benchInputs(n, p)
				xs := [][][]float32{raw}
				outs := [][]float32{make([]float32, p)}
				b.SetBytes(int64(4 * p * (n + 1)))
				b.ResetTimer()
				for it := 0; it < b.N; it++ {
					run(xs, outs)
				}
			})
		}
	}
}

func BenchmarkWeightedAverageKernel(b *testing.B) {
	benchKernel(b, func(xs [][][]float32, outs [][]float32) {
		c := make([]float64, len(xs[0]))
		for i := range c {
			c[i] = float64(i+1) / float64(len(c)*(len(c)+1)/2)
		}
		runCombination(c, xs, outs, runtime.GOMAXPROCS(0))
	})
}

// BenchmarkTrimmedMeanKernel uses β = 0.2 (one cut per side at N = 5, ten
// at N = 50): the seed's 0.1 would cut nothing at N = 5.
func BenchmarkTrimmedMeanKernel(b *testing.B) {
	benchKernel(b, func(xs [][][]float32, outs [][]float32) {
		n := len(xs[0])
		runCoordinate(orderKernel(n, trimCount(0.2, n), false), xs, outs, runtime.GOMAXPROCS(0))
	})
}

func BenchmarkMedianKernel(b *testing.B) {
	benchKernel(b, func(xs [][][]float32, outs [][]float32) {
		runCoordinate(orderKernel(len(xs[0]), 0, true), xs, outs, runtime.GOMAXPROCS(0))
	})
}

// BenchmarkAggregate is the whole public call: validation (finiteness,
// shapes), kernels and output metadata, on one group of one tensor.
func BenchmarkAggregate(b *testing.B) {
	for _, s := range []string{"weighted_average", "trimmed_mean", "median"} {
		for _, n := range benchNs {
			p := 4 << 20
			b.Run(fmt.Sprintf("%s/N=%d/P=%dM", s, n, p>>20), func(b *testing.B) {
				raw := benchInputs(n, p)
				us := make([]*adapter.Update, n)
				for i := range us {
					us[i] = vecUpdate(fmt.Sprint("n", i), 1)
					us[i].Set("g", "w", &adapter.Tensor{Shape: []int{p}, Data: raw[i]})
				}
				b.SetBytes(int64(4 * p * (n + 1)))
				b.ResetTimer()
				for it := 0; it < b.N; it++ {
					if _, err := Aggregate(s, us, Options{TrimFraction: 0.2}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkRobust covers the distance-based strategies, whose cost is
// dominated by the N×N Gram matrix (N²/2 dot products over P).
func BenchmarkRobust(b *testing.B) {
	for _, s := range []string{"krum", "geometric_median", "centered_clip", "learned_attention"} {
		n, p := 20, 1<<20
		b.Run(fmt.Sprintf("%s/N=%d/P=%dM", s, n, p>>20), func(b *testing.B) {
			raw := benchInputs(n, p)
			us := make([]*adapter.Update, n)
			for i := range us {
				us[i] = vecUpdate(fmt.Sprint("n", i), 1)
				us[i].Set("g", "w", &adapter.Tensor{Shape: []int{p}, Data: raw[i]})
			}
			b.SetBytes(int64(4 * p * (n + 1)))
			b.ResetTimer()
			for it := 0; it < b.N; it++ {
				if _, err := Aggregate(s, us, Options{KrumF: 3}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAllFinite is the input check every Aggregate call pays (one
// core; Aggregate splits it over all).
func BenchmarkAllFinite(b *testing.B) {
	xs := benchInputs(1, 4<<20)[0]
	b.SetBytes(int64(4 * len(xs)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if !allFinite(xs) {
			b.Fatal("non-finite")
		}
	}
}

// BenchmarkOrderBlocks is one worker's network kernel on a span that stays
// in L2: the compute cost without memory bandwidth. ns/op per coordinate.
func BenchmarkOrderBlocks(b *testing.B) {
	const span = 4096
	for _, n := range []int{5, 50} {
		xs := benchInputs(n, span)
		dst := make([]float32, span)
		for _, c := range []struct {
			name string
			nw   *network
		}{{"trim", trimNetwork(n, trimCount(0.2, n))}, {"median", medianNetwork(n)}} {
			b.Run(fmt.Sprintf("%s/N=%d", c.name, n), func(b *testing.B) {
				var sc networkScratch
				b.SetBytes(int64(4 * span * (n + 1)))
				for it := 0; it < b.N; it++ {
					c.nw.run(dst, xs, &sc)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/span, "ns/coord")
				b.ReportMetric(float64(len(c.nw.pairs)/2), "comparators")
			})
		}
	}
}
