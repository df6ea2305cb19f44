package compress

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// bestRate tracks the fastest iteration. On a shared machine the mean
// measures the neighbours as much as the code; the best iteration is the
// closest to the code's own cost, so both are reported.
type bestRate struct{ best time.Duration }

func (r *bestRate) time(f func()) {
	t0 := time.Now()
	f()
	if d := time.Since(t0); r.best == 0 || d < r.best {
		r.best = d
	}
}

func (r *bestRate) report(b *testing.B) {
	b.ReportMetric(float64(4*benchN)/r.best.Seconds()/1e6, "best-MB/s")
}

// benchN is the benchmark size: 4 M float32 values (16 MiB).
const benchN = 4 << 20

func benchData(sparsity float64) []float32 {
	rng := rand.New(rand.NewPCG(9, 9))
	data := make([]float32, benchN)
	for i := range data {
		if sparsity == 0 || rng.Float64() >= sparsity {
			data[i] = float32(rng.NormFloat64() * 0.01)
		}
	}
	return data
}

// BenchmarkMemcpy is the baseline: copying the same 16 MiB once each way
// (one copy stands for the encode, one for the decode).
func BenchmarkMemcpy(b *testing.B) {
	src := benchData(0)
	dst := make([]float32, len(src))
	b.SetBytes(4 * benchN)
	var rate bestRate
	for b.Loop() {
		rate.time(func() {
			copy(dst, src)
			copy(src, dst)
		})
	}
	rate.report(b)
}

func benchRoundTrip(b *testing.B, sparsity float64, opt Options) {
	data := benchData(sparsity)
	b.SetBytes(4 * benchN)
	var enc []byte
	var dec []float32
	var rate bestRate
	for b.Loop() {
		rate.time(func() {
			var err error
			enc, err = EncodeTensor(data, opt)
			if err != nil {
				b.Fatal(err)
			}
			dec, err = DecodeTensor(enc, benchN)
			if err != nil {
				b.Fatal(err)
			}
		})
	}
	rate.report(b)
	var maxErr, sq float64
	for i, v := range data {
		e := math.Abs(float64(dec[i]) - float64(v))
		maxErr = max(maxErr, e)
		sq += e * e
	}
	b.ReportMetric(float64(4*benchN)/float64(len(enc)), "ratio")
	b.ReportMetric(maxErr, "maxerr")
	b.ReportMetric(math.Sqrt(sq/benchN), "rmse")
}

func BenchmarkRoundTrip(b *testing.B) {
	for _, c := range []struct {
		name     string
		sparsity float64
		opt      Options
	}{
		{"dense8", 0, Options{SparsityThreshold: 0.9, QuantizationBits: 8}},
		{"dense4", 0, Options{SparsityThreshold: 0.9, QuantizationBits: 4}},
		{"dense16", 0, Options{SparsityThreshold: 0.9, QuantizationBits: 16}},
		{"dense8-stochastic", 0, Options{SparsityThreshold: 0.9, QuantizationBits: 8, Stochastic: true, Rand: rand.New(rand.NewPCG(1, 1))}},
		{"raw32", 0, Options{SparsityThreshold: 0.9, QuantizationBits: RawBits}},
		{"sparse99-8", 0.99, Options{SparsityThreshold: 0.9, QuantizationBits: 8}},
		{"sparse99-raw", 0.99, Options{SparsityThreshold: 0.9, QuantizationBits: RawBits}},
	} {
		b.Run(c.name, func(b *testing.B) { benchRoundTrip(b, c.sparsity, c.opt) })
	}
}
