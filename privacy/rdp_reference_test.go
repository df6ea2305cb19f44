package privacy

import (
	"math"
	"math/big"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// bigRDPInteger is the slow, obvious reference for the RDP of the
// Poisson-subsampled Gaussian mechanism at an integer order α ≥ 2: the
// binomial expansion
//
//	A_α = Σ_{i=0..α} C(α,i) q^i (1-q)^(α-i) exp((i²-i)/(2z²))
//
// summed term by term in big.Float at prec bits. Each term is held as its
// logarithm (exp of a large exponent is beyond even big.Float's range) and
// the sum is taken relative to its largest term. The only shared thing
// with the code under test is the formula.
func bigRDPInteger(q, z float64, alpha int, prec uint) float64 {
	if q == 1 {
		return float64(alpha) / (2 * z * z)
	}
	bq := new(big.Float).SetPrec(prec).SetFloat64(q)
	b1q := new(big.Float).SetPrec(prec).Sub(new(big.Float).SetPrec(prec).SetInt64(1), bq)
	logQ, log1mQ := bigLog(bq, prec), bigLog(b1q, prec)
	bz := new(big.Float).SetPrec(prec).SetFloat64(z)
	twoZ2 := new(big.Float).SetPrec(prec).Mul(bz, bz)
	twoZ2.Mul(twoZ2, new(big.Float).SetPrec(prec).SetInt64(2))

	logs := make([]*big.Float, alpha+1)
	binom := new(big.Int)
	for i := 0; i <= alpha; i++ {
		binom.Binomial(int64(alpha), int64(i))
		t := bigLog(new(big.Float).SetPrec(prec).SetInt(binom), prec)
		t.Add(t, new(big.Float).SetPrec(prec).Mul(new(big.Float).SetPrec(prec).SetInt64(int64(i)), logQ))
		t.Add(t, new(big.Float).SetPrec(prec).Mul(new(big.Float).SetPrec(prec).SetInt64(int64(alpha-i)), log1mQ))
		e := new(big.Float).SetPrec(prec).SetInt64(int64(i*i - i))
		t.Add(t, e.Quo(e, twoZ2))
		logs[i] = t
	}
	maxLog := logs[0]
	for _, t := range logs {
		if t.Cmp(maxLog) > 0 {
			maxLog = t
		}
	}
	// Terms more than prec bits below the largest cannot change the sum.
	cutoff := new(big.Float).SetPrec(prec).SetFloat64(-float64(prec+64) * math.Ln2)
	sum := new(big.Float).SetPrec(prec)
	for _, t := range logs {
		d := new(big.Float).SetPrec(prec).Sub(t, maxLog)
		if d.Cmp(cutoff) < 0 {
			continue
		}
		sum.Add(sum, bigExp(d, prec))
	}
	logA := new(big.Float).SetPrec(prec).Add(maxLog, bigLog(sum, prec))
	logA.Quo(logA, new(big.Float).SetPrec(prec).SetInt64(int64(alpha-1)))
	r, _ := logA.Float64()
	return r
}

// bigLn2 is log 2 = 2·atanh(1/3) to prec bits.
func bigLn2(prec uint) *big.Float {
	if v, ok := ln2Cache.Load(prec); ok {
		return v.(*big.Float)
	}
	third := new(big.Float).SetPrec(prec).Quo(big.NewFloat(1), big.NewFloat(3))
	v := new(big.Float).SetPrec(prec).Mul(bigAtanh(third, prec), big.NewFloat(2))
	ln2Cache.Store(prec, v)
	return v
}

var ln2Cache sync.Map

// bigAtanh sums x + x³/3 + x⁵/5 + ... for |x| ≤ 1/3.
func bigAtanh(x *big.Float, prec uint) *big.Float {
	x2 := new(big.Float).SetPrec(prec).Mul(x, x)
	pow := new(big.Float).SetPrec(prec).Set(x)
	sum := new(big.Float).SetPrec(prec).Set(x)
	for k := int64(3); ; k += 2 {
		pow.Mul(pow, x2)
		term := new(big.Float).SetPrec(prec).Quo(pow, new(big.Float).SetPrec(prec).SetInt64(k))
		if term.Sign() == 0 || term.MantExp(nil)-sum.MantExp(nil) < -int(prec)-8 {
			return sum
		}
		sum.Add(sum, term)
	}
}

// bigLog is log x for x > 0: x = m·2^e with m in [0.5, 1), log m =
// 2·atanh((m-1)/(m+1)).
func bigLog(x *big.Float, prec uint) *big.Float {
	m := new(big.Float).SetPrec(prec)
	e := x.MantExp(m)
	num := new(big.Float).SetPrec(prec).Sub(m, big.NewFloat(1))
	den := new(big.Float).SetPrec(prec).Add(m, big.NewFloat(1))
	out := bigAtanh(num.Quo(num, den), prec)
	out.Mul(out, big.NewFloat(2))
	return out.Add(out, new(big.Float).SetPrec(prec).Mul(bigLn2(prec), new(big.Float).SetPrec(prec).SetInt64(int64(e))))
}

// bigExp is exp x for x ≤ 0: x = k·log 2 + r with |r| ≤ log 2, then the
// Taylor series of exp r.
func bigExp(x *big.Float, prec uint) *big.Float {
	ln2 := bigLn2(prec)
	kf := new(big.Float).SetPrec(prec).Quo(x, ln2)
	k, _ := kf.Int64()
	r := new(big.Float).SetPrec(prec).Sub(x, new(big.Float).SetPrec(prec).Mul(ln2, new(big.Float).SetPrec(prec).SetInt64(k)))
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for n := int64(1); ; n++ {
		term.Mul(term, r)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(n))
		if term.Sign() == 0 || term.MantExp(nil) < -int(prec)-8 {
			break
		}
		sum.Add(sum, term)
	}
	return sum.SetMantExp(sum, int(k))
}

// precisionFor gives enough bits to resolve A_α - 1 ≈ C(α,2)q²·(e^{1/z²}-1)
// next to 1 when q is tiny.
func precisionFor(q float64) uint {
	return uint(160 + 2*max(0, -math.Log2(q)))
}

func TestBigReferenceSelfCheck(t *testing.T) {
	// q = 1/2, z = 1, α = 2: A = 1/4 + 1/2 + e/4.
	want := math.Log(0.75+math.E/4) / 1
	if got := bigRDPInteger(0.5, 1, 2, 200); math.Abs(got-want) > 1e-15 {
		t.Fatalf("reference: %v, want %v", got, want)
	}
	if got := bigLog(big.NewFloat(math.E), 200); math.Abs(mustF64(got)-1) > 1e-15 {
		t.Fatalf("bigLog(e) = %v", got)
	}
	if got := bigExp(big.NewFloat(-10), 200); relErr(mustF64(got), math.Exp(-10)) > 1e-15 {
		t.Fatalf("bigExp(-10) = %v", got)
	}
}

func mustF64(x *big.Float) float64 { f, _ := x.Float64(); return f }

// The fast integer-order RDP against the big.Float binomial expansion, on
// random inputs over the whole domain the accountant accepts: q from 1e-30
// to 1, z from 1e-3 to 1e4, orders up to 512.
func TestRDPIntegerAgainstBigReference(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := math.Pow(10, rapid.Float64Range(-30, 0).Draw(t, "log10q"))
		if rapid.Bool().Draw(t, "q=1") {
			q = 1
		}
		z := math.Pow(10, rapid.Float64Range(-3, 4).Draw(t, "log10z"))
		alpha := rapid.SampledFrom([]int{2, 3, 4, 5, 7, 10, 16, 32, 63, 128, 256, 512}).Draw(t, "alpha")
		got := rdpSubsampledGaussian(q, z, float64(alpha))
		want := bigRDPInteger(q, z, alpha, precisionFor(q))
		if math.IsInf(want, 1) {
			if !math.IsInf(got, 1) {
				t.Fatalf("q=%g z=%g α=%d: RDP %v, reference +Inf", q, z, alpha, got)
			}
			return
		}
		if math.IsNaN(got) || math.Abs(got-want) > 1e-9*math.Abs(want)+1e-300 {
			t.Fatalf("q=%g z=%g α=%d: RDP %.15g, reference %.15g (rel %.2g)", q, z, alpha, got, want, relErr(got, want))
		}
	})
}

// Noise multipliers so small that e^{(i²-i)/(2z²)} overflows float64 at
// several terms: the RDP is beyond float64, never a finite number.
func TestRDPIntegerOverflowIsInfinite(t *testing.T) {
	for _, z := range []float64{1e-155, 1e-160, 1e-200, 1e-300} {
		for _, alpha := range []float64{2, 3, 4, 63, 512, 1000, MaxOrder} {
			for _, q := range []float64{1e-9, 0.5, 0.999} {
				if r := rdpSubsampledGaussian(q, z, alpha); !math.IsInf(r, 1) {
					t.Errorf("q=%g z=%g α=%v: RDP %v, want +Inf", q, z, alpha, r)
				}
			}
		}
	}
	a := NewAccountant(nil)
	if err := a.Compose(1e-155, 0.5, 1); err != nil {
		t.Fatal(err)
	}
	if eps, _ := a.Epsilon(1e-5); !math.IsInf(eps, 1) {
		t.Errorf("z=1e-155: ε = %v, want +Inf", eps)
	}
}

// log A_α is convex in α (Hölder), so at a fractional order it lies under
// the chord of its integer neighbours and above the extension of the chord
// before them: checks the fractional series against the big reference.
func TestRDPFractionalBetweenBigReferenceChords(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		q := math.Pow(10, rapid.Float64Range(-8, -0.01).Draw(t, "log10q"))
		z := math.Pow(10, rapid.Float64Range(-0.3, 2).Draw(t, "log10z"))
		n := rapid.IntRange(3, 40).Draw(t, "n")
		frac := rapid.Float64Range(0.05, 0.95).Draw(t, "frac")
		alpha := float64(n) + frac
		logA := func(k int) float64 { return bigRDPInteger(q, z, k, precisionFor(q)) * float64(k-1) }
		prev, lo, hi := logA(n-1), logA(n), logA(n+1)
		got := rdpSubsampledGaussian(q, z, alpha) * (alpha - 1)
		upper := lo + frac*(hi-lo)
		lower := lo + frac*(lo-prev)
		slack := 1e-9*math.Abs(upper) + 1e-300
		if got > upper+slack || got < lower-slack {
			t.Fatalf("q=%g z=%g α=%v: log A = %.15g outside [%.15g, %.15g]", q, z, alpha, got, lower, upper)
		}
	})
}

// FuzzRDP: for any valid (q, z, α) the one-step RDP is a number ≥ 0 or
// +Inf, never NaN; at integer orders it matches the big.Float expansion,
// and at fractional orders it is not below the convexity lower bound
// computed from that expansion (it is never understated).
func FuzzRDP(f *testing.F) {
	f.Add(0.01, 2.5, 1.5)
	f.Add(1e-8, 100.0, 6.05)
	f.Add(0.5, 1e-155, 3.0)
	f.Add(1.0, 1e-200, 2.0)
	f.Add(1e-300, 1e300, 1.0001)
	f.Fuzz(func(t *testing.T, q, z, alpha float64) {
		if checkMechanism(z, q) != nil || ValidateOrders([]float64{alpha}) != nil || alpha > 64 {
			return
		}
		r := rdpSubsampledGaussian(q, z, alpha)
		if math.IsNaN(r) || r < 0 {
			t.Fatalf("q=%g z=%g α=%v: RDP %v", q, z, alpha, r)
		}
		if q < 1e-30 || z < 1e-3 || z > 1e6 {
			return
		}
		prec := precisionFor(q)
		if alpha == math.Trunc(alpha) {
			want := bigRDPInteger(q, z, int(alpha), prec)
			if math.IsInf(want, 1) != math.IsInf(r, 1) || (!math.IsInf(want, 1) && math.Abs(r-want) > 1e-9*want+1e-300) {
				t.Fatalf("q=%g z=%g α=%v: RDP %.15g, reference %.15g", q, z, alpha, r, want)
			}
			return
		}
		n := int(alpha)
		logA := func(k int) float64 {
			if k <= 1 {
				return 0
			}
			return bigRDPInteger(q, z, k, prec) * float64(k-1)
		}
		lo := logA(n)
		lower := lo + (alpha-float64(n))*(lo-logA(n-1))
		if got := r * (alpha - 1); got < lower*(1-1e-12) {
			t.Fatalf("q=%g z=%g α=%v: log A %.15g below the convexity bound %.15g", q, z, alpha, got, lower)
		}
	})
}
