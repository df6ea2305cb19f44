package dlm

import "math/rand/v2"

// drawJob picks a window of data, a time t uniform in [lo, hi) and the
// masked positions (each independently with probability MaskRate(t)). With
// atLeastOne a sequence that drew no mask gets one at a random position:
// training cannot learn from an unmasked sequence, while evaluation must
// keep the true distribution for the ELBO to stay a bound.
func drawJob(rng *rand.Rand, data []byte, seqLen int, lo, hi int, bank int, atLeastOne bool) seqJob {
	off := rng.IntN(len(data) - seqLen + 1)
	t := lo + rng.IntN(hi-lo)
	rate := noise.MaskRate(t)
	masked := make([]int32, 0, int(rate*float64(seqLen))+4)
	for i := 0; i < seqLen; i++ {
		if rng.Float64() < rate {
			masked = append(masked, int32(i))
		}
	}
	if atLeastOne && len(masked) == 0 {
		masked = append(masked, int32(rng.IntN(seqLen)))
	}
	return seqJob{target: data[off : off+seqLen], t: t, bucket: timeBucket(t), bank: bank, masked: masked}
}
