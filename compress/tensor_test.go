package compress

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"pgregory.net/rapid"
)

// boundFor is the documented round-to-nearest bound for values in [mn, mx].
func boundFor(mn, mx float32, bits int) float64 {
	step := (float64(mx) - float64(mn)) / float64(uint32(1)<<bits-1)
	return step/2 + math.Ldexp(math.Max(math.Abs(float64(mn)), math.Abs(float64(mx))), -23)
}

func minMax(x []float32) (float32, float32) {
	mn, mx := x[0], x[0]
	for _, v := range x {
		mn, mx = min(mn, v), max(mx, v)
	}
	return mn, mx
}

// fataler is what both *testing.T and *rapid.T offer.
type fataler interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

func roundTrip(t fataler, data []float32, opt Options) ([]float32, []byte) {
	t.Helper()
	enc, err := EncodeTensor(data, opt)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeTensor(enc, len(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(dec) != len(data) {
		t.Fatalf("decoded %d values, want %d", len(dec), len(data))
	}
	return dec, enc
}

// referenceDense is the slow, obvious quantiser: divide by the step, round
// half up, multiply back, all in float64.
func referenceDense(data []float32, bits int) (out []float32, nearTie []bool) {
	mn, mx := minMax(data)
	lo, width := float64(mn), float64(mx)-float64(mn)
	levels := float64(uint32(1)<<bits - 1)
	out = make([]float32, len(data))
	nearTie = make([]bool, len(data))
	for i, v := range data {
		x := (float64(v) - lo) / width * levels
		q := math.Floor(x + 0.5)
		nearTie[i] = math.Abs(x-math.Floor(x)-0.5) < 1e-9
		out[i] = float32(lo + q*(width/levels))
	}
	return out, nearTie
}

func TestDenseMatchesReferenceAndBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bits := rapid.IntRange(1, 16).Draw(t, "bits")
		n := rapid.IntRange(2, 3000).Draw(t, "n")
		scale := rapid.Float64Range(1e-6, 1e6).Draw(t, "scale")
		offset := rapid.Float64Range(-1e3, 1e3).Draw(t, "offset")
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 1))
		data := make([]float32, n)
		for i := range data {
			data[i] = float32(offset + scale*rng.NormFloat64())
		}
		mn, mx := minMax(data)
		if mn == mx {
			return
		}
		dec, enc := roundTrip(t, data, Options{SparsityThreshold: 1, QuantizationBits: bits})
		if enc[0] != codecDense {
			t.Fatalf("codec %d, want dense", enc[0])
		}
		ref, tie := referenceDense(data, bits)
		bound := boundFor(mn, mx, bits)
		for i := range data {
			if e := math.Abs(float64(dec[i]) - float64(data[i])); e > bound {
				t.Fatalf("bits %d element %d: |%v − %v| = %g > bound %g", bits, i, data[i], dec[i], e, bound)
			}
			if dec[i] != ref[i] && !tie[i] {
				t.Fatalf("bits %d element %d: decoded %v, reference %v", bits, i, dec[i], ref[i])
			}
		}
	})
}

func TestSparseBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bits := rapid.SampledFrom([]int{1, 3, 8, 12, 16, RawBits}).Draw(t, "bits")
		n := rapid.IntRange(10, 5000).Draw(t, "n")
		rng := rand.New(rand.NewPCG(rapid.Uint64().Draw(t, "seed"), 2))
		data := make([]float32, n)
		var nz []float32
		for i := range data {
			if rng.Float64() < 0.03 {
				data[i] = float32(rng.NormFloat64())
				nz = append(nz, data[i])
			}
		}
		if len(nz) < 2 || float64(n-len(nz))/float64(n) <= 0.9 {
			return
		}
		dec, enc := roundTrip(t, data, Options{SparsityThreshold: 0.9, QuantizationBits: bits})
		if enc[0] != codecSparse {
			t.Fatalf("codec %d, want sparse", enc[0])
		}
		bound := 0.0
		if bits != RawBits {
			mn, mx := minMax(nz)
			bound = boundFor(mn, mx, bits)
		}
		for i := range data {
			if data[i] == 0 && dec[i] != 0 {
				t.Fatalf("zero at %d decoded as %v", i, dec[i])
			}
			if e := math.Abs(float64(dec[i]) - float64(data[i])); e > bound {
				t.Fatalf("element %d: error %g > %g", i, e, bound)
			}
		}
	})
}

func TestConstantAndEdgeTensorsExact(t *testing.T) {
	cases := map[string][]float32{
		"zeros":      make([]float32, 1000),
		"negative":   {-3.25, -3.25, -3.25},
		"one":        {7.5},
		"tiny":       {1e-30, 1e-30},
		"max float":  {math.MaxFloat32, math.MaxFloat32},
		"empty":      {},
		"subnormals": {math.SmallestNonzeroFloat32, math.SmallestNonzeroFloat32},
	}
	for name, data := range cases {
		for _, bits := range []int{1, 8, 16, RawBits} {
			dec, enc := roundTrip(t, data, Options{SparsityThreshold: 0.9, QuantizationBits: bits})
			for i := range data {
				if dec[i] != data[i] {
					t.Fatalf("%s at %d bits: element %d = %v, want %v", name, bits, i, dec[i], data[i])
				}
			}
			if len(data) > 0 && enc[0] != codecConstant {
				t.Fatalf("%s: codec %d, want constant", name, enc[0])
			}
		}
	}
	// Extremes of float32 in one tensor: the range overflows float32 but not
	// the float64 arithmetic, and nothing decodes to Inf.
	wide := []float32{-math.MaxFloat32, 0, math.MaxFloat32, 1}
	for _, bits := range []int{1, 8, 16} {
		dec, _ := roundTrip(t, wide, Options{SparsityThreshold: 1, QuantizationBits: bits})
		if dec[0] != -math.MaxFloat32 || dec[2] != math.MaxFloat32 {
			t.Fatalf("bits %d: extremes decoded as %v", bits, dec)
		}
	}
	// Lossless codec.
	data := []float32{1.1, -2.2, 3.3e-20, 0}
	dec, enc := roundTrip(t, data, Options{SparsityThreshold: 0.9, QuantizationBits: RawBits})
	if enc[0] != codecRaw || dec[0] != 1.1 || dec[2] != 3.3e-20 {
		t.Fatalf("raw: codec %d values %v", enc[0], dec)
	}
}

func TestNonFiniteRefused(t *testing.T) {
	for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
		data := []float32{1, 2, bad, 4}
		_, err := EncodeTensor(data, DefaultOptions())
		if !errors.Is(err, ErrNonFinite) {
			t.Fatalf("%v: err = %v", bad, err)
		}
		if want := "element 2"; !containsStr(err.Error(), want) {
			t.Fatalf("error %q does not name %q", err, want)
		}
	}
}

func containsStr(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestOptionsValidate(t *testing.T) {
	bad := []Options{
		{QuantizationBits: 0, SparsityThreshold: 0.9},
		{QuantizationBits: 17, SparsityThreshold: 0.9},
		{QuantizationBits: 8, SparsityThreshold: math.NaN()},
		{QuantizationBits: 8, SparsityThreshold: 1.5},
		{QuantizationBits: 8, SparsityThreshold: 0.5, Stochastic: true},
	}
	for _, o := range bad {
		if _, err := EncodeTensor([]float32{1, 2}, o); !errors.Is(err, ErrBadOptions) {
			t.Fatalf("%+v: err = %v", o, err)
		}
	}
}

func TestCodecChoice(t *testing.T) {
	data := make([]float32, 1000)
	for i := 0; i < 50; i++ { // 95 % zeros
		data[i*20] = float32(i + 1)
	}
	for _, c := range []struct {
		threshold float64
		want      byte
	}{{0.9, codecSparse}, {0.95, codecDense}, {0.949, codecSparse}, {1, codecDense}} {
		enc, err := EncodeTensor(data, Options{SparsityThreshold: c.threshold, QuantizationBits: 8})
		if err != nil {
			t.Fatal(err)
		}
		if enc[0] != c.want {
			t.Fatalf("threshold %v: codec %d, want %d", c.threshold, enc[0], c.want)
		}
	}
}

func sparseFixture(t *testing.T) []byte {
	data := make([]float32, 100)
	data[3], data[40], data[99] = 1, -2, 3
	enc, err := EncodeTensor(data, Options{SparsityThreshold: 0.5, QuantizationBits: 8})
	if err != nil || enc[0] != codecSparse {
		t.Fatalf("fixture: %v", err)
	}
	return enc
}

func TestSparseDecoderRejects(t *testing.T) {
	good := sparseFixture(t)
	idx := func(b []byte, j int, v uint32) []byte {
		c := append([]byte(nil), b...)
		binary.LittleEndian.PutUint32(c[headerLen+4+4*j:], v)
		return c
	}
	mod := func(f func(c []byte)) []byte {
		c := append([]byte(nil), good...)
		f(c)
		return c
	}
	le := binary.LittleEndian
	cases := map[string][]byte{
		"out of range":     idx(good, 2, 100),
		"duplicate":        idx(good, 1, 3),
		"unsorted":         idx(good, 1, 2),
		"count above n":    mod(func(c []byte) { le.PutUint32(c[headerLen:], 101) }),
		"count disagrees":  mod(func(c []byte) { le.PutUint32(c[headerLen:], 2) }),
		"truncated":        good[:len(good)-1],
		"trailing":         append(append([]byte(nil), good...), 0),
		"bits 0":           mod(func(c []byte) { c[1] = 0 }),
		"bits 17":          mod(func(c []byte) { c[1] = 17 }),
		"NaN min":          mod(func(c []byte) { le.PutUint32(c[headerLen+4+12:], 0x7fc00000) }),
		"min above max":    mod(func(c []byte) { le.PutUint32(c[headerLen+4+12:], math.Float32bits(10)) }),
		"unknown codec":    mod(func(c []byte) { c[0] = 9 }),
		"n over the limit": mod(func(c []byte) { le.PutUint32(c[2:], 1<<31) }),
	}
	for name, b := range cases {
		if _, err := DecodeTensor(b, 1<<20); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := DecodeTensor(good, 99); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("maxElems below n: err = %v", err)
	}
}

func TestDenseDecoderRejects(t *testing.T) {
	enc, _ := EncodeTensor([]float32{0, 1, 2}, Options{SparsityThreshold: 1, QuantizationBits: 3})
	// 3 values × 3 bits = 9 bits: the last byte has 7 pad bits.
	pad := append([]byte(nil), enc...)
	pad[len(pad)-1] |= 0x80
	if _, err := DecodeTensor(pad, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("pad bits: err = %v", err)
	}
	inf := append([]byte(nil), enc...)
	binary.LittleEndian.PutUint32(inf[headerLen+4:], math.Float32bits(float32(math.Inf(1))))
	if _, err := DecodeTensor(inf, 10); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("infinite max: err = %v", err)
	}
	raw, _ := EncodeTensor([]float32{1, 2}, Options{SparsityThreshold: 1, QuantizationBits: RawBits})
	binary.LittleEndian.PutUint32(raw[headerLen:], 0x7f800001)
	if _, err := DecodeTensor(raw, 10); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("NaN in raw tensor: err = %v", err)
	}
	for cut := 0; cut < len(enc); cut++ {
		if _, err := DecodeTensor(enc[:cut], 10); err == nil {
			t.Fatalf("cut at %d accepted", cut)
		}
	}
	le := binary.LittleEndian
	mod := func(f func(c []byte)) []byte {
		c := append([]byte(nil), enc...)
		f(c)
		return c
	}
	for name, b := range map[string][]byte{
		"bits 0":            mod(func(c []byte) { c[1] = 0 }),
		"bits 17":           mod(func(c []byte) { c[1] = 17 }),
		"bits 32":           mod(func(c []byte) { c[1] = RawBits }),
		"bits 2 (too long)": mod(func(c []byte) { c[1] = 2 }),
		"bits 8 (short)":    mod(func(c []byte) { c[1] = 8 }),
		"count above body":  mod(func(c []byte) { le.PutUint32(c[2:], 6) }),
		"count below body":  mod(func(c []byte) { le.PutUint32(c[2:], 1) }),
		"trailing byte":     append(append([]byte(nil), enc...), 0),
		"min above max":     mod(func(c []byte) { le.PutUint32(c[headerLen:], math.Float32bits(3)) }),
		"NaN min":           mod(func(c []byte) { le.PutUint32(c[headerLen:], 0xffc00000) }),
		"-Inf min":          mod(func(c []byte) { le.PutUint32(c[headerLen:], 0xff800000) }),
	} {
		if _, err := DecodeTensor(b, 10); !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNonFinite) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

// TestHugeCountsAllocateNothing: a header that claims the largest tensor
// the limit allows, followed by a short body, is refused before the output
// is allocated, whatever the codec.
func TestHugeCountsAllocateNothing(t *testing.T) {
	const limit = 16 << 20
	le := binary.LittleEndian
	headers := map[string][]byte{
		"dense 8-bit":  {codecDense, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 128, 63, 7},
		"dense 1-bit":  {codecDense, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 128, 63},
		"raw":          {codecRaw, RawBits, 0, 0, 0, 1, 1, 2, 3, 4},
		"sparse count": le.AppendUint32([]byte{codecSparse, 8, 0, 0, 0, 1}, 1<<24),
		"sparse n":     le.AppendUint32([]byte{codecSparse, 8, 0, 0, 0, 1}, 1),
	}
	for name, b := range headers {
		var err error
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err = DecodeTensor(b, limit)
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 64<<10 {
			t.Errorf("%s: %d bytes allocated before refusing (%v)", name, grew, err)
		}
	}
}

func TestStochasticRoundingUnbiased(t *testing.T) {
	// 0 and 3 fix the range; with 2 bits the levels are 0, 1, 2, 3, and 1.3
	// and 2.75 sit between levels.
	data := []float32{0, 1.3, 2.75, 3}
	rng := rand.New(rand.NewPCG(7, 8))
	opt := Options{SparsityThreshold: 1, QuantizationBits: 2, Stochastic: true, Rand: rng}
	const trials = 20000
	var sum [4]float64
	for i := 0; i < trials; i++ {
		dec, _ := roundTrip(t, data, opt)
		for j, v := range dec {
			sum[j] += float64(v)
			if math.Abs(float64(v)-float64(data[j])) >= 1 {
				t.Fatalf("stochastic error %v ≥ one step", v-data[j])
			}
		}
	}
	for j, v := range data {
		mean := sum[j] / trials
		// Bernoulli(p) steps of 1: σ of the mean ≤ 0.5/√trials ≈ 0.0035.
		if math.Abs(mean-float64(v)) > 0.02 {
			t.Fatalf("element %d: mean %v, want %v (biased)", j, mean, v)
		}
	}
	// Round to nearest is biased on the same input: 1.3 always goes to 1.
	dec, _ := roundTrip(t, data, Options{SparsityThreshold: 1, QuantizationBits: 2})
	if dec[1] != 1 || dec[2] != 3 {
		t.Fatalf("nearest: %v", dec)
	}
}

// TestStochasticRoundingUnbiasedManyValues checks unbiasedness element by
// element on a whole 8-bit tensor (the block path), against a bound derived
// from the variance: each decoded value is one of two levels s apart, so the
// mean of `trials` draws has σ ≤ s/(2√trials); 5σ is a false alarm once in
// 3.5 million per element at a fixed seed, i.e. never.
func TestStochasticRoundingUnbiasedManyValues(t *testing.T) {
	const n, trials = 500, 400
	rng := rand.New(rand.NewPCG(11, 12))
	data := make([]float32, n)
	for i := range data {
		data[i] = float32(rng.Float64()*2 - 1)
	}
	data[0], data[1] = -1, 1
	step := 2.0 / 255
	opt := Options{SparsityThreshold: 1, QuantizationBits: 8, Stochastic: true, Rand: rand.New(rand.NewPCG(13, 14))}
	sum := make([]float64, n)
	for range trials {
		dec, _ := roundTrip(t, data, opt)
		for i, v := range dec {
			if e := math.Abs(float64(v) - float64(data[i])); e >= step+1e-6 {
				t.Fatalf("element %d: stochastic error %g ≥ one step %g", i, e, step)
			}
			sum[i] += float64(v)
		}
	}
	tol := 5 * step / (2 * math.Sqrt(trials))
	var meanBias, nearestBias float64
	nearest, _ := roundTrip(t, data, Options{SparsityThreshold: 1, QuantizationBits: 8})
	for i, v := range data {
		bias := sum[i]/trials - float64(v)
		if math.Abs(bias) > tol {
			t.Fatalf("element %d (%v): mean of %d draws off by %g > %g", i, v, trials, bias, tol)
		}
		meanBias += math.Abs(bias)
		nearestBias += math.Abs(float64(nearest[i]) - float64(v))
	}
	// Round to nearest is off by s/4 on average for values spread over a
	// step; the stochastic mean must be far closer.
	if meanBias/n > nearestBias/n/3 {
		t.Fatalf("mean |bias| %g with stochastic rounding, %g with nearest", meanBias/n, nearestBias/n)
	}
}

func TestErrorFeedbackKeepsSumOnTrack(t *testing.T) {
	const rounds, n = 60, 64
	rng := rand.New(rand.NewPCG(1, 2))
	opt := Options{SparsityThreshold: 1, QuantizationBits: 2}
	fb := NewErrorFeedback()
	trueSum := make([]float64, n)
	fbSum := make([]float64, n)
	plainSum := make([]float64, n)
	for r := 0; r < rounds; r++ {
		delta := make([]float32, n)
		for i := range delta {
			delta[i] = float32(0.1*rng.NormFloat64() + 0.37)
		}
		delta[0], delta[1] = -1, 1 // fix the range so the step is coarse
		orig := append([]float32(nil), delta...)
		enc, err := fb.Encode("coarse/w", delta, opt)
		if err != nil {
			t.Fatal(err)
		}
		for i := range delta {
			if delta[i] != orig[i] {
				t.Fatal("Encode modified its input")
			}
		}
		sent, _ := DecodeTensor(enc, n)
		plain, _ := roundTrip(t, delta, opt)
		for i := range delta {
			trueSum[i] += float64(delta[i])
			fbSum[i] += float64(sent[i])
			plainSum[i] += float64(plain[i])
		}
	}
	// With feedback the cumulative error is the last residual: within one
	// round's error bound (a step of 2/3 → 1/3, plus the residual's own range
	// growth bounded by a step). Without it the error grows with rounds.
	var fbErr, plainErr float64
	for i := 2; i < n; i++ {
		fbErr = math.Max(fbErr, math.Abs(fbSum[i]-trueSum[i]))
		plainErr = math.Max(plainErr, math.Abs(plainSum[i]-trueSum[i]))
	}
	if fbErr > 0.7 {
		t.Fatalf("cumulative error with feedback %v, want within one step", fbErr)
	}
	if plainErr < 5*fbErr {
		t.Fatalf("feedback error %v not clearly below plain error %v", fbErr, plainErr)
	}
	if r := fb.Residual("coarse/w"); len(r) != n {
		t.Fatalf("residual length %d", len(r))
	}
	// A tensor that changes shape starts over instead of mixing residuals.
	if _, err := fb.Encode("coarse/w", []float32{1, 2, 3}, opt); err != nil {
		t.Fatal(err)
	}
	if len(fb.Residual("coarse/w")) != 3 {
		t.Fatal("residual not replaced after a shape change")
	}
	if err := fb.SetResidual("x", []float32{float32(math.NaN())}); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("NaN residual: err = %v", err)
	}
}

func TestCompressionRatios(t *testing.T) {
	const n = 1 << 16
	rng := rand.New(rand.NewPCG(3, 4))
	dense := make([]float32, n)
	sparse := make([]float32, n)
	for i := range dense {
		dense[i] = float32(rng.NormFloat64())
		if rng.Float64() < 0.01 {
			sparse[i] = float32(rng.NormFloat64())
		}
	}
	enc8, _ := EncodeTensor(dense, Options{SparsityThreshold: 0.9, QuantizationBits: 8})
	if r := float64(4*n) / float64(len(enc8)); r < 3.99 || r > 4 {
		t.Fatalf("8-bit dense ratio %v, want ≈ 4", r)
	}
	encS, _ := EncodeTensor(sparse, Options{SparsityThreshold: 0.9, QuantizationBits: 8})
	if r := float64(4*n) / float64(len(encS)); r < 40 {
		t.Fatalf("99%%-sparse ratio %v, want ≥ 40", r)
	}
}

func TestOrderKeySortsLikeFloats(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a := rapid.Float32().Draw(t, "a")
		b := rapid.Float32().Draw(t, "b")
		if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) {
			return
		}
		ka, kb := orderKey(math.Float32bits(a)), orderKey(math.Float32bits(b))
		if a < b && ka >= kb || a > b && ka <= kb {
			t.Fatalf("%v vs %v: keys %d, %d", a, b, ka, kb)
		}
		if math.Float32bits(fromOrderKey(ka)) != math.Float32bits(a) {
			t.Fatalf("key of %v does not invert", a)
		}
	})
	st, err := scan([]float32{3, -7.5, 0, 2e30, -1e-30})
	if err != nil || st.min != -7.5 || st.max != 2e30 || st.nonZero != 4 {
		t.Fatalf("scan: %+v %v", st, err)
	}
	if orderKey(math.Float32bits(float32(math.Inf(-1)))) != negInfKey || orderKey(math.Float32bits(float32(math.Inf(1)))) != posInfKey {
		t.Fatal("negInfKey or posInfKey is not the key of an infinity")
	}
}

// TestScanMatchesReference checks the word-at-a-time scan against an
// element-by-element one, on slices starting at every alignment and of odd
// and even lengths, with zeros of both signs and non-finite values at any
// position (first and last included, which the fast loop handles apart).
func TestScanMatchesReference(t *testing.T) {
	special := []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 1, 0x80000001, 0x7f7fffff, 0xff7fffff}
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 40).Draw(t, "n")
		off := rapid.IntRange(0, 3).Draw(t, "offset")
		backing := make([]float32, n+off)
		data := backing[off:]
		for i := range data {
			if rapid.Bool().Draw(t, "special") {
				data[i] = math.Float32frombits(rapid.SampledFrom(special).Draw(t, "bits"))
			} else {
				data[i] = float32(rapid.Float64Range(-1e6, 1e6).Draw(t, "v"))
			}
		}
		firstBad := -1
		mn, mx := float32(math.Inf(1)), float32(math.Inf(-1))
		nonZero := 0
		for i, v := range data {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				if firstBad < 0 {
					firstBad = i
				}
				continue
			}
			if v != 0 {
				nonZero++
			}
			mn, mx = min(mn, v), max(mx, v)
		}
		st, err := scan(data)
		if firstBad >= 0 {
			if !errors.Is(err, ErrNonFinite) || !containsStr(err.Error(), fmt.Sprintf("element %d ", firstBad)) {
				t.Fatalf("%v: err = %v, want element %d named", data, err, firstBad)
			}
			return
		}
		if err != nil {
			t.Fatalf("%v: %v", data, err)
		}
		if math.Float32bits(st.min) != math.Float32bits(mn) || math.Float32bits(st.max) != math.Float32bits(mx) || st.nonZero != nonZero {
			t.Fatalf("%v: scan %+v, reference min %v max %v non-zero %d", data, st, mn, mx, nonZero)
		}
	})
}
