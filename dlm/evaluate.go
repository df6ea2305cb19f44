package dlm

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/dafnet/daf/adapter"
)

// EvalResult is the held-out denoising quality of a model with banks.
type EvalResult struct {
	Loss    map[string]float64 // per group: nats per masked byte, t drawn inside the group
	Overall float64            // the groups' losses weighted by their share of the time axis
	// ELBO estimates the negative evidence lower bound in nats per byte,
	// Σ_t elboWeight(t)·E[Σ CE]/SeqLen, as Σ_groups width · mean over the
	// group's samples. It bounds −log p(x)/SeqLen when the groups tile
	// [0, MaxT) (the t = MaxT term, under 1e-5 nats, is left out).
	ELBO            float64
	PerplexityBound float64 // exp(ELBO): a per-byte perplexity upper bound
	MaskedTokens    map[string]int
}

// Evaluate measures the banks (nil = the base alone) on held-out text.
// Windows, times and masks depend only on seed, the text and the group
// ranges, never on the weights, so two models evaluated with one seed are
// compared on exactly the same masked bytes.
func Evaluate(b *Base, banks *adapter.Update, heldout []byte, samplesPerGroup int, seed uint64) (*EvalResult, error) {
	c := b.Config
	if samplesPerGroup < 1 {
		return nil, fmt.Errorf("%w: samples per group %d < 1", ErrConfig, samplesPerGroup)
	}
	if err := checkText(heldout, c.SeqLen, "held-out text"); err != nil {
		return nil, err
	}
	groups, err := bankGroups(banks)
	if err != nil {
		return nil, err
	}
	var lps []*loraParams
	bankOf := func(int) int { return -1 }
	if banks != nil {
		if lps, err = loadBanks(b, banks, groups); err != nil {
			return nil, err
		}
		bankOf = func(gi int) int { return gi }
	}
	var jobs []seqJob
	for gi, g := range groups {
		rng := rand.New(rand.NewPCG(seed, uint64(gi)+0xe7a1))
		for range samplesPerGroup {
			jobs = append(jobs, drawJob(rng, heldout, c.SeqLen, g.Start, g.End, bankOf(gi), false))
		}
	}
	newRunner(b).run(jobs, lps, nil, nil)
	res := &EvalResult{Loss: map[string]float64{}, MaskedTokens: map[string]int{}}
	var widthSum float64
	for gi, g := range groups {
		var ce, elbo float64
		var n int
		for _, j := range jobs[gi*samplesPerGroup : (gi+1)*samplesPerGroup] {
			ce += j.loss
			n += len(j.masked)
			elbo += elboWeight(j.t) * j.loss / float64(c.SeqLen)
		}
		if n == 0 {
			return nil, fmt.Errorf("%w: group %s drew no masked byte in %d samples; evaluate with more samples per group", ErrConfig, g.Name, samplesPerGroup)
		}
		width := float64(g.End - g.Start)
		res.Loss[g.Name] = ce / float64(n)
		res.MaskedTokens[g.Name] = n
		res.Overall += width * res.Loss[g.Name]
		res.ELBO += width * elbo / float64(samplesPerGroup)
		widthSum += width
	}
	res.Overall /= widthSum
	res.PerplexityBound = math.Exp(res.ELBO)
	return res, nil
}
