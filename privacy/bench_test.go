package privacy

import (
	"math/rand/v2"
	"testing"

	"github.com/dafnet/daf/adapter"
)

// The release path against a plain copy of the same values (the memory
// bandwidth baseline): report the ratio, not the absolute time.

const benchParams = 1 << 20

func benchUpdate() *adapter.Update {
	return randomUpdate(rand.New(rand.NewPCG(1, 2)), benchParams/6, 1)
}

func BenchmarkBaselineCopy(b *testing.B) {
	u := benchUpdate()
	dst := make([]float32, 0, u.NumParams())
	b.SetBytes(int64(4 * u.NumParams()))
	for b.Loop() {
		dst = dst[:0]
		for _, g := range u.GroupNames() {
			for _, k := range u.Keys(g) {
				dst = append(dst, u.Get(g, k).Data...)
			}
		}
	}
}

func BenchmarkClip(b *testing.B) {
	u := benchUpdate()
	b.SetBytes(int64(4 * u.NumParams()))
	for b.Loop() {
		// Alternate the bound so every iteration really scales.
		Clip(u, 0.5)
		Clip(u, 0.25)
	}
}

func BenchmarkPrepareReleasePublic(b *testing.B) {
	u := benchUpdate()
	rng := rand.New(rand.NewPCG(3, 4))
	b.SetBytes(int64(4 * u.NumParams()))
	for b.Loop() {
		if _, err := PrepareRelease(u, Public, 1, 1e-5, 1, rng); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAccountantCompose(b *testing.B) {
	for _, q := range []float64{1, 0.01, 0.5} {
		b.Run(map[float64]string{1: "q=1", 0.01: "q=0.01", 0.5: "q=0.5"}[q], func(b *testing.B) {
			for b.Loop() {
				a := NewAccountant(nil)
				if err := a.Compose(1.1, q, 1000); err != nil {
					b.Fatal(err)
				}
				a.Epsilon(1e-5)
			}
		})
	}
}

func BenchmarkLedgerCharge(b *testing.B) {
	l, err := NewLedger(&MemoryLedgerStore{}, 0, 1e-5)
	if err != nil {
		b.Fatal(err)
	}
	round := uint64(0)
	for b.Loop() {
		round++
		if err := l.Charge(Public, round, 3.73, 1); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAnalyticSigma(b *testing.B) {
	for b.Loop() {
		if _, err := AnalyticGaussianSigma(1, 1e-5, 1); err != nil {
			b.Fatal(err)
		}
	}
}
