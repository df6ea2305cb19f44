package dlm

import "math"

// expf is e^x in float32 for the softmaxes, whose arguments are ≤ 0 once
// the row maximum is subtracted. It splits x = k·ln2 + z with |z| ≤ ln2/2
// (Cody–Waite, so the reduction itself is exact to float32), evaluates e^z
// by its degree-6 Taylor polynomial (error < 1.3e-7 relative) and scales by
// 2^k through the exponent bits — several times faster than math.Exp, and
// the softmaxes call it tens of thousands of times per sequence.
func expf(x float32) float32 {
	const (
		log2e = 1.44269504088896341
		ln2hi = 0.693145751953125
		ln2lo = 1.42860682030941723212e-6
	)
	if x < -87 {
		return 0
	}
	if x > 0 {
		return float32(math.Exp(float64(x)))
	}
	k := int32(x*log2e - 0.5) // round half away from zero, x ≤ 0
	kf := float32(k)
	z := (x - kf*ln2hi) - kf*ln2lo
	p := 1 + z*(1+z*(1.0/2+z*(1.0/6+z*(1.0/24+z*(1.0/120+z*(1.0/720))))))
	return p * math.Float32frombits(uint32(k+127)<<23)
}
