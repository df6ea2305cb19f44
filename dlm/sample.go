package dlm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// Sample generates n sequences of SeqLen bytes (returned concatenated) by
// reversing the masking process in steps: all positions start masked; going
// from time t to s < t, each still-masked byte is revealed with probability
// (m(t) − m(s)) / m(t), drawn from the denoiser's prediction at time t with
// the bank of t's group. The last step reveals every remaining byte.
func Sample(b *Base, banks *adapter.Update, n, steps int, seed uint64) ([]byte, error) {
	c := b.Config
	if n < 1 || steps < 1 {
		return nil, fmt.Errorf("%w: sample count %d and steps %d must be ≥ 1", ErrConfig, n, steps)
	}
	groups, err := bankGroups(banks)
	if err != nil {
		return nil, err
	}
	var lps []*loraParams
	if banks != nil {
		if lps, err = loadBanks(b, banks, groups); err != nil {
			return nil, err
		}
	}
	rng := rand.New(rand.NewPCG(seed, 0x5a3))
	w := newSeqWork(c)
	out := make([]byte, 0, n*c.SeqLen)
	seq := make([]byte, c.SeqLen)
	probs := make([]float64, ByteVocab)
	for range n {
		masked := make([]int32, c.SeqLen)
		for i := range masked {
			masked[i] = int32(i)
		}
		for k := 0; k < steps && len(masked) > 0; k++ {
			t := MaxT * (steps - k) / steps
			s := MaxT * (steps - k - 1) / steps
			var bank *loraParams
			if lps != nil {
				if gi := groupAt(groups, t); gi >= 0 {
					bank = lps[gi]
				}
			}
			job := seqJob{target: seq, t: t, bucket: timeBucket(t), masked: masked}
			w.load(&job)
			w.forward(b.p, bank)
			reveal := 1.0
			if mt := noise.MaskRate(t); k+1 < steps && mt > 0 {
				reveal = (mt - noise.MaskRate(s)) / mt
			}
			still := masked[:0]
			for i, pos := range masked {
				if rng.Float64() >= reveal {
					still = append(still, pos)
					continue
				}
				row := w.logits[i*ByteVocab : (i+1)*ByteVocab]
				seq[pos] = drawByte(rng, row, probs)
			}
			masked = still
		}
		out = append(out, seq...)
	}
	return out, nil
}

// groupAt finds the group holding t; t = MaxT belongs to the group that
// ends there, as in schedule.Group.Contains.
func groupAt(groups []adapter.GroupRange, t int) int {
	for i, g := range groups {
		if (t >= g.Start && t < g.End) || (t == MaxT && g.End == MaxT) {
			return i
		}
	}
	return -1
}

func drawByte(rng *rand.Rand, logits []float32, probs []float64) byte {
	mx := logits[0]
	for _, v := range logits[1:] {
		mx = max(mx, v)
	}
	var sum float64
	for j, v := range logits {
		probs[j] = math.Exp(float64(v - mx))
		sum += probs[j]
	}
	u := rng.Float64() * sum
	for j, p := range probs {
		u -= p
		if u < 0 {
			return byte(j)
		}
	}
	return byte(len(probs) - 1)
}
