package dlm

import "math"

// expf is e^x in float32 for the softmaxes. Arguments are ≤ 0 after the max
// is subtracted; below -87 the result underflows to 0 as in float32 exp.
func expf(x float32) float32 {
	return float32(math.Exp(float64(x)))
}
