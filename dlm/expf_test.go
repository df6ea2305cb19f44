package dlm

import (
	"math"
	"testing"

	"pgregory.net/rapid"
)

func TestExpfMatchesMathExp(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		x := rapid.Float32Range(-100, 0).Draw(t, "x")
		got, want := float64(expf(x)), math.Exp(float64(x))
		if want < 1e-37 {
			if got > 1e-37 {
				t.Fatalf("expf(%v) = %v, want ≈ 0", x, got)
			}
			return
		}
		if math.Abs(got-want) > 4e-7*want {
			t.Fatalf("expf(%v) = %v, want %v (rel. error %.2g)", x, got, want, math.Abs(got-want)/want)
		}
	})
	for _, x := range []float32{0, -1e-30, -0.5, -87, -88, -1000} {
		got, want := float64(expf(x)), math.Exp(float64(x))
		if math.Abs(got-want) > 4e-7*want+1e-38 {
			t.Errorf("expf(%v) = %v, want %v", x, got, want)
		}
	}
}
