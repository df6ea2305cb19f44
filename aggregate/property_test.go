package aggregate

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
	"pgregory.net/rapid"
)

// Every strategy, element-wise, against its slow float64 version.
func TestStrategiesMatchSlowVersions(t *testing.T) {
	forEachKernelPath(t, func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			us := genUpdates(t, 1, 12)
			n := len(us)
			xs := flats(us, "g")
			scale := maxAbs(xs)
			samples := make([]float64, n)
			for i, u := range us {
				samples[i] = u.Meta.Samples
			}
			temp := rapid.SampledFrom([]float64{0, 0.1, 1, 10}).Draw(t, "temperature")
			beta := rapid.SampledFrom([]float64{0, 0.1, 0.2, 0.25, 0.34, 0.45}).Draw(t, "beta")
			workers := rapid.IntRange(1, 3).Draw(t, "workers")
			opts := Options{Temperature: temp, TrimFraction: beta, Workers: workers}
			T := opts.temperature()

			run := func(strategy string, o Options) []float64 {
				got, err := Aggregate(strategy, us, o)
				if err != nil {
					t.Fatalf("%s: %v", strategy, err)
				}
				return flat(got, "g")
			}
			assertClose(t, "weighted_average", run("weighted_average", opts), slowWeighted(xs, slowNormalise(samples)), 1e-5, scale)

			scores := make([]float64, n)
			for i, u := range us {
				q := u.Meta.Quality["g"]
				scores[i] = (q.PPLBefore - q.PPLAfter) / q.PPLBefore
			}
			assertClose(t, "quality_weighted", run("quality_weighted", opts), slowWeighted(xs, slowSoftmax(scores, T)), 1e-5, scale)
			acc := opts
			acc.Metric, acc.Task = TaskAccuracy, "qa"
			for i, u := range us {
				scores[i] = u.Meta.Quality["g"].TaskAccuracy["qa"]
			}
			assertClose(t, "quality_weighted accuracy", run("quality_weighted", acc), slowWeighted(xs, slowSoftmax(scores, T)), 1e-5, scale)

			if n-2*trimCount(beta, n) >= 1 {
				assertClose(t, "trimmed_mean", run("trimmed_mean", opts), slowTrimmedMean(xs, beta), 1e-5, scale)
			}
			assertClose(t, "median", run("median", opts), slowMedian(xs), 1e-6, scale)
			assertClose(t, "learned_attention", run("learned_attention", opts), slowAttention(xs, nil, T), 1e-4, scale)

			ref := genUpdates(t, 1, 1)[0]
			for _, k := range ref.Keys("g") { // same shapes as the updates
				ref.Set("g", k, us[0].Get("g", k).Clone())
				for e := range ref.Get("g", k).Data {
					ref.Get("g", k).Data[e] *= 0.5
				}
			}
			withRef := opts
			withRef.Reference = ref
			assertClose(t, "learned_attention with reference", run("learned_attention", withRef), slowAttention(xs, flat(ref, "g"), T), 1e-4, scale)

			if f := rapid.IntRange(0, 3).Draw(t, "f"); n > 2*f+2 {
				o := opts
				o.KrumF = f
				assertClose(t, "krum", run("krum", o), slowKrum(xs, f, 1), 1e-6, scale)
				assertClose(t, "multi_krum", run("multi_krum", o), slowKrum(xs, f, n-f), 1e-5, scale)
			}
			assertClose(t, "geometric_median", run("geometric_median", opts), slowGeometricMedian(xs, samples, 1e-6, 100), 1e-4, scale)
			assertClose(t, "centered_clip", run("centered_clip", opts), slowCenteredClip(xs, 0, 100), 1e-4, scale)
		})
	})
}

// The order-statistic kernels on many inputs and lengths that cross every
// block boundary.
func TestOrderKernelsMatchSorting(t *testing.T) {
	forEachKernelPath(t, func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			// Small n have their own kernels (3, 4, 5 and five with one cut).
			n := rapid.OneOf(rapid.IntRange(1, 8), rapid.IntRange(1, 60)).Draw(t, "n")
			length := rapid.IntRange(1, 2*clampBlock+3).Draw(t, "length")
			median := rapid.Bool().Draw(t, "median")
			k := 0
			if !median {
				k = rapid.IntRange(0, (n-1)/2).Draw(t, "k")
			}
			// Few distinct values force ties, the hard case for selection.
			distinct := rapid.SampledFrom([]int{3, 1000, 1 << 30}).Draw(t, "distinct")
			seed := rapid.Uint64().Draw(t, "seed")
			xs32 := make([][]float32, n)
			xs := make([][]float64, n)
			state := seed | 1
			for i := range xs32 {
				xs32[i] = make([]float32, length)
				xs[i] = make([]float64, length)
				for j := range xs32[i] {
					state ^= state << 13
					state ^= state >> 7
					state ^= state << 17
					v := float32(int(state%uint64(distinct))-distinct/2) / 7
					xs32[i][j], xs[i][j] = v, float64(v)
				}
			}
			dst := make([]float32, length)
			orderKernel(n, k, median)(dst, xs32, &orderScratch{})
			var want []float64
			if median {
				want = slowMedian(xs)
			} else {
				want = slowTrimmedMean(xs, float64(k)/float64(n))
			}
			got := make([]float64, length)
			for j, v := range dst {
				got[j] = float64(v)
			}
			assertClose(t, fmt.Sprintf("n=%d k=%d median=%v", n, k, median), got, want, 1e-5, maxAbs(xs))
		})
	})
}

func TestWeightedSumMatchesSlow(t *testing.T) {
	forEachKernelPath(t, func(t *testing.T) {
		rapid.Check(t, func(t *rapid.T) {
			n := rapid.IntRange(1, 60).Draw(t, "n")
			length := rapid.IntRange(1, 2*sumBlock+5).Draw(t, "length")
			xs32 := make([][]float32, n)
			xs := make([][]float64, n)
			w32 := make([]float32, n)
			w := make([]float64, n)
			for i := range xs {
				w32[i] = float32(rapid.Float64Range(-1, 1).Draw(t, "w"))
				w[i] = float64(w32[i])
				xs32[i] = make([]float32, length)
				xs[i] = make([]float64, length)
				for j := range xs[i] {
					v := float32(math.Sin(float64(i*length+j) * 0.7))
					xs32[i][j], xs[i][j] = v, float64(v)
				}
			}
			dst := make([]float32, length)
			weightedSum(dst, xs32, w32)
			got := make([]float64, length)
			for j, v := range dst {
				got[j] = float64(v)
			}
			assertClose(t, "weightedSum", got, slowWeighted(xs, w), 1e-5*float64(n), 1)
		})
	})
}

// The FMA kernel and weightedSumGo round differently, but each stays
// within the float32 bound of a sum of n products summed in order,
// (n+1)·(2⁻²⁴·Σ|wᵢxᵢ| + 2⁻¹⁴⁹), of the float64 sum, over magnitudes from 1e-30 to
// 1e30, zero weights, and lengths that leave partial vectors and blocks.
func TestWeightedSumFMAMatchesGo(t *testing.T) {
	if !haveSumAsm {
		t.Skip("no FMA assembly on this CPU or build")
	}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 64).Draw(t, "n")
		length := rapid.IntRange(1, 2*sumBlock+37).Draw(t, "length")
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		w := make([]float32, n)
		for i := range w {
			if rapid.IntRange(0, 3).Draw(t, "zero weight") > 0 {
				w[i] = float32(rapid.Float64Range(-1, 1).Draw(t, "w"))
			}
		}
		xs := make([][]float32, n)
		for i := range xs {
			xs[i] = make([]float32, length)
			for j := range xs[i] {
				v := float32(rng.Float64() * math.Pow(10, float64(rng.IntN(61)-30)))
				if rng.IntN(2) == 0 {
					v = -v
				}
				xs[i][j] = v
			}
		}
		fma := make([]float32, length)
		weightedSumFolded(fma, xs, w)
		scalar := make([]float32, length)
		weightedSumGo(scalar, xs, w)
		for j := range fma {
			var exact, bound float64
			for i, x := range xs {
				exact += float64(w[i]) * float64(x[j])
				bound += math.Abs(float64(w[i]) * float64(x[j]))
			}
			// Products and sums below the float32 normal range round to
			// multiples of 2⁻¹⁴⁹ instead.
			bound = float64(n+1) * (bound*0x1p-24 + 0x1p-149)
			for _, c := range []struct {
				name string
				v    float32
			}{{"fma", fma[j]}, {"scalar", scalar[j]}} {
				if d := math.Abs(float64(c.v) - exact); !(d <= bound) {
					t.Fatalf("%s: element %d of %d = %v, want %v ± %g", c.name, j, length, c.v, exact, bound)
				}
			}
		}
	})
}

// Results do not depend on how many goroutines split the work, bit for bit:
// every node must compute the same aggregate.
func TestDeterministicAcrossWorkers(t *testing.T) {
	forEachKernelPath(t, func(t *testing.T) {
		var us []*adapter.Update
		for i := 0; i < 7; i++ {
			v := make([]float32, 3*spanElems+17)
			for j := range v {
				v[j] = float32(math.Sin(float64(i*7919+j)) * 3)
			}
			us = append(us, vecUpdate(fmt.Sprint("n", i), float64(i+1), v...))
		}
		for _, s := range Strategies() {
			var first []float32
			for _, w := range []int{1, 2, 5} {
				got, err := Aggregate(s, us, Options{TrimFraction: 0.2, KrumF: 1, Workers: w})
				if err != nil {
					t.Fatalf("%s: %v", s, err)
				}
				d := got.Get("g", "w").Data
				if first == nil {
					first = d
					continue
				}
				for j := range d {
					if d[j] != first[j] {
						t.Fatalf("%s: workers=%d differs at %d: %v vs %v", s, w, j, d[j], first[j])
					}
				}
			}
		}
	})
}

func TestFlatKernels(t *testing.T) {
	forEachKernelPath(t, func(t *testing.T) {
		xs := [][]float32{{1, -4}, {2, 8}, {30, 0}, {4, 1}, {5, 2}}
		dst := make([]float32, 2)
		if err := MedianInto(dst, xs, 2); err != nil || dst[0] != 4 || dst[1] != 1 {
			t.Fatalf("median %v %v", dst, err)
		}
		if err := TrimmedMeanInto(dst, xs, 1, 2); err != nil || dst[0] != (2+4+5)/3.0 || dst[1] != 1 {
			t.Fatalf("trimmed %v %v", dst, err)
		}
		if err := WeightedSumInto(dst, xs, []float32{0.5, 0.5, 0, 0, 0}, 1); err != nil || dst[0] != 1.5 || dst[1] != 2 {
			t.Fatalf("weighted %v %v", dst, err)
		}
		if err := TrimmedMeanInto(dst, xs, 3, 1); !errors.Is(err, ErrTrimAll) {
			t.Fatalf("trim 3 of 5: %v", err)
		}
		if err := MedianInto(dst, [][]float32{{1}}, 1); !errors.Is(err, ErrMismatch) {
			t.Fatalf("short input: %v", err)
		}
	})
}
