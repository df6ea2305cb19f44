package compress

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// bestRate tracks the fastest iteration, by wall time and by the thread's
// CPU time. On a shared machine the mean measures the neighbours as much as
// the code; the best iteration is the closest to the code's own cost, and
// CPU time is what it costs one core (the "per core").
type bestRate struct{ wall, cpu time.Duration }

func (r *bestRate) time(f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	c0, haveCPU := threadCPU()
	t0 := time.Now()
	f()
	wall := time.Since(t0)
	c1, _ := threadCPU()
	if r.wall == 0 || wall < r.wall {
		r.wall = wall
	}
	if cpu := c1 - c0; haveCPU && cpu > 0 && (r.cpu == 0 || cpu < r.cpu) {
		r.cpu = cpu
	}
}

func mbPerSecond(d time.Duration) float64 { return float64(4*benchN) / d.Seconds() / 1e6 }

// report gives the codec's best rates and, when base (memcpy timed in the
// same loop) is set, the codec's speed as a fraction of memcpy's.
func (r *bestRate) report(b *testing.B, base *bestRate) {
	b.ReportMetric(mbPerSecond(r.wall), "best-MB/s")
	if r.cpu > 0 {
		b.ReportMetric(mbPerSecond(r.cpu), "cpu-MB/s")
	}
	if base == nil {
		return
	}
	b.ReportMetric(base.wall.Seconds()/r.wall.Seconds(), "x-memcpy")
	if r.cpu > 0 && base.cpu > 0 {
		b.ReportMetric(base.cpu.Seconds()/r.cpu.Seconds(), "cpu-x-memcpy")
	}
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

func memcpyBoth(dst, src []float32) {
	copy(dst, src)
	copy(src, dst)
}

// BenchmarkMemcpy is the baseline: copying the same 16 MiB once each way
// (one copy stands for the encode, one for the decode).
func BenchmarkMemcpy(b *testing.B) {
	src := benchData(0)
	dst := make([]float32, len(src))
	b.SetBytes(4 * benchN)
	var rate bestRate
	for b.Loop() {
		rate.time(func() { memcpyBoth(dst, src) })
	}
	rate.report(b, nil)
}

func benchRoundTrip(b *testing.B, sparsity float64, opt Options) {
	data := benchData(sparsity)
	b.SetBytes(4 * benchN)
	var enc []byte
	var dec []float32
	// memcpy is timed in the same loop, so the ratio compares the two under
	// the same load.
	src, dst := append([]float32(nil), data...), make([]float32, benchN)
	var rate, base bestRate
	for b.Loop() {
		b.StopTimer()
		base.time(func() { memcpyBoth(dst, src) })
		b.StartTimer()
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
	rate.report(b, &base)
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
